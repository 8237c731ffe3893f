"""agnt5 errors over gRPC: a status code plus the error's wire form in trailing metadata.

A failed call carries the gRPC status from `status_of` and, in the trailing metadata key
``agnt5-error-bin``, the JSON of `AgntError.to_dict` (``{"code","message","type","retryable"}``).
`error_from_rpc` rebuilds the exact agnt5 error from that, and falls back to the status code
when the failure never reached agnt5 code (connection refused, deadline, a proxy).
"""

from __future__ import annotations

from typing import Any

import grpc
import orjson

from agnt5.errors import (
    AgntError,
    ErrorCode,
    FailedPreconditionError,
    InvalidArgumentError,
    InvocationCancelledError,
    InvocationTimeoutError,
    NotFoundError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    error_from_dict,
)

__all__ = ["ERROR_METADATA_KEY", "error_from_rpc", "error_trailer", "status_of"]

ERROR_METADATA_KEY = "agnt5-error-bin"

_STATUS_BY_CODE: dict[str, grpc.StatusCode] = {
    ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.FUNCTION_FAILED: grpc.StatusCode.UNKNOWN,
    ErrorCode.OUTPUT_NOT_SERIALIZABLE: grpc.StatusCode.INTERNAL,
    ErrorCode.TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorCode.CANCELLED: grpc.StatusCode.CANCELLED,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.PAYLOAD_TOO_LARGE: grpc.StatusCode.OUT_OF_RANGE,
    ErrorCode.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
}

_ERROR_BY_STATUS: dict[grpc.StatusCode, type[AgntError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.DEADLINE_EXCEEDED: InvocationTimeoutError,
    grpc.StatusCode.CANCELLED: InvocationCancelledError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: UnauthenticatedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
}


def status_of(error: AgntError) -> grpc.StatusCode:
    """The gRPC status a call failing with ``error`` ends with."""
    return _STATUS_BY_CODE.get(error.code, grpc.StatusCode.UNKNOWN)


def error_trailer(error: AgntError) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata carrying ``error`` in full."""
    return ((ERROR_METADATA_KEY, orjson.dumps(error.to_dict())),)


def error_from_rpc(exc: grpc.RpcError) -> AgntError:
    """The agnt5 error a failed gRPC call stands for."""
    call: Any = exc
    for key, value in call.trailing_metadata() or ():
        if key == ERROR_METADATA_KEY:
            try:
                data = orjson.loads(value)
            except orjson.JSONDecodeError:
                break
            if isinstance(data, dict):
                return error_from_dict(data)
    code: grpc.StatusCode = call.code()
    details = call.details() or code.name
    cls = _ERROR_BY_STATUS.get(code)
    if cls is not None:
        return cls(details, error_type=f"grpc.{code.name}")
    error = AgntError(details, error_type=f"grpc.{code.name}")
    error.code = code.name
    return error
