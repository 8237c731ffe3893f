"""The one error model shared by the hot path, both runtimes, the coordinator and the client.

An error travels as four fields, ``code``, ``message``, ``type`` and ``retryable``: in protobuf
(``agnt5.v1.Error``), in frames (`agnt5._wire.records.ErrorItem`) and in JSON. `AgntError.to_dict`
and `error_from_dict` are the one conversion pair between those fields and an `AgntError`;
`wrap_exception` is the one mapping from any other exception to an agnt5 error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "AgntError",
    "ErrorCode",
    "FailedPreconditionError",
    "FunctionFailedError",
    "InvalidArgumentError",
    "InvocationCancelledError",
    "InvocationTimeoutError",
    "NonDeterministicError",
    "NotFoundError",
    "OutputNotSerializableError",
    "PayloadTooLargeError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "error_from_dict",
    "wrap_exception",
]


class ErrorCode:
    """The error codes every layer speaks (strings, so they cross JSON and protobuf unchanged)."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    FUNCTION_FAILED = "FUNCTION_FAILED"
    OUTPUT_NOT_SERIALIZABLE = "OUTPUT_NOT_SERIALIZABLE"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    UNAVAILABLE = "UNAVAILABLE"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    NON_DETERMINISTIC = "NON_DETERMINISTIC"


class AgntError(Exception):
    """Base of every agnt5 error: a code, a message, the original exception type and `retryable`."""

    code: str = ErrorCode.FUNCTION_FAILED
    http_status: int = 500
    default_retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type if error_type is not None else type(self).__name__
        self.retryable = self.default_retryable if retryable is None else retryable

    def to_dict(self) -> dict[str, Any]:
        """The wire form: ``{"code", "message", "type", "retryable"}``."""
        return {
            "code": self.code,
            "message": self.message,
            "type": self.error_type,
            "retryable": self.retryable,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.code, self.message, self.error_type, self.retryable))


class InvalidArgumentError(AgntError):
    """The input does not fit the handler: bad JSON, unknown key, missing parameter, wrong type."""

    code = ErrorCode.INVALID_ARGUMENT
    http_status = 400


class NotFoundError(AgntError):
    """No such service, function or invocation."""

    code = ErrorCode.NOT_FOUND
    http_status = 404


class FunctionFailedError(AgntError):
    """The handler raised."""

    code = ErrorCode.FUNCTION_FAILED
    http_status = 500


class OutputNotSerializableError(AgntError):
    """The handler returned something that cannot be encoded as JSON."""

    code = ErrorCode.OUTPUT_NOT_SERIALIZABLE
    http_status = 500


class InvocationTimeoutError(AgntError):
    """The invocation ran past its deadline."""

    code = ErrorCode.TIMEOUT
    http_status = 504
    default_retryable = True


class InvocationCancelledError(AgntError):
    """The invocation was cancelled (by a caller, or by a draining worker)."""

    code = ErrorCode.CANCELLED
    http_status = 499


class UnavailableError(AgntError):
    """No coordinator or worker can take the invocation right now."""

    code = ErrorCode.UNAVAILABLE
    http_status = 503
    default_retryable = True


class ResourceExhaustedError(AgntError):
    """A queue or limit is full."""

    code = ErrorCode.RESOURCE_EXHAUSTED
    http_status = 429
    default_retryable = True


class UnauthenticatedError(AgntError):
    """A missing or wrong API key."""

    code = ErrorCode.UNAUTHENTICATED
    http_status = 401


class PayloadTooLargeError(AgntError):
    """The input is over the configured size limit."""

    code = ErrorCode.PAYLOAD_TOO_LARGE
    http_status = 413


class FailedPreconditionError(AgntError):
    """The target is not in a state that allows the request (e.g. a signal to a finished workflow)."""

    code = ErrorCode.FAILED_PRECONDITION
    http_status = 409


class NonDeterministicError(AgntError):
    """A workflow's replay called something other than what its journal recorded at that step."""

    code = ErrorCode.NON_DETERMINISTIC
    http_status = 500


_BY_CODE: dict[str, type[AgntError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        FunctionFailedError,
        OutputNotSerializableError,
        InvocationTimeoutError,
        InvocationCancelledError,
        UnavailableError,
        ResourceExhaustedError,
        UnauthenticatedError,
        PayloadTooLargeError,
        FailedPreconditionError,
        NonDeterministicError,
    )
}


def _rebuild(code: str, message: str, error_type: str, retryable: bool) -> AgntError:
    cls = _BY_CODE.get(code, AgntError)
    return cls(message, error_type=error_type, retryable=retryable)


def error_from_dict(data: Mapping[str, Any]) -> AgntError:
    """Rebuild an error from its wire form (unknown codes become a plain `AgntError`)."""
    error = _rebuild(
        str(data.get("code", ErrorCode.FUNCTION_FAILED)),
        str(data.get("message", "")),
        str(data.get("type", "")),
        bool(data.get("retryable", False)),
    )
    if type(error) is AgntError:
        error.code = str(data.get("code", ErrorCode.FUNCTION_FAILED))
    return error


def wrap_exception(function_name: str, exc: BaseException, what: str = "Function") -> AgntError:
    """Turn what a handler (or a workflow's step: ``what="Step"``) raised into an agnt5 error;
    agnt5 errors pass through unwrapped."""
    if isinstance(exc, AgntError):
        return exc
    detail = str(exc)
    if not detail:
        detail = type(exc).__name__
    elif not isinstance(exc, Exception):  # sys.exit(3) says only "3"
        detail = f"{type(exc).__name__}: {detail}"
    error = FunctionFailedError(
        f"{what} {function_name} failed: {detail}", error_type=type(exc).__name__
    )
    error.__cause__ = exc
    return error
