"""`Client` (blocking) and `AsyncClient` (asyncio): invoke functions through a coordinator.

Both speak the coordinator's ``agnt5.v1.Invocations`` gRPC service (``https://`` endpoints use
TLS; an ``api_key`` is sent as ``authorization: Bearer <key>``). Each invocation carries the
caller's current OpenTelemetry trace context (W3C ``traceparent``), so a span the caller has
open is the parent of the coordinator's and the worker's spans. Inputs are any JSON-able value
(encoded as handlers' results are: bytes as base64 text, integers of any size) and results
come back decoded (integers of any size too). Failures raise agnt5 errors: the outcome
of a failed invocation is rebuilt from its ``{"code","message","type","retryable"}`` error, a
refused request from the ``agnt5-error-bin`` trailing metadata of the call, and a transport
failure from its gRPC status (``UNAVAILABLE`` -> `UnavailableError`, ``DEADLINE_EXCEEDED`` ->
`InvocationTimeoutError`, ...). Every call has a deadline.

``invoke``, ``submit``, ``result`` and ``describe`` retry a call that failed with
``UNAVAILABLE`` (the coordinator unreachable, restarting or shutting down) after a jittered
exponential backoff, within the call's own deadline, resending the same idempotency key
(``invoke`` and ``submit`` generate one when given none): a coordinator restart during
``invoke`` yields the one result of the one invocation (see `agnt5.coordinator` for the
guarantee). ``signal`` is not retried: a signal that failed with ``UNAVAILABLE`` may have been
delivered, so whether to send it again is the caller's choice.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Any, NamedTuple

import grpc
from google.protobuf.json_format import MessageToDict

from agnt5._proto import invocations_pb2, invocations_pb2_grpc
from agnt5._speedups import decode_json, encode_json
from agnt5._wire.status import error_from_rpc
from agnt5._wire.views import invocation_dict, service_dict, summary_dict
from agnt5.config import DEFAULT_ENDPOINT, parse_endpoint
from agnt5.errors import (
    AgntError,
    InvalidArgumentError,
    InvocationTimeoutError,
    OutputNotSerializableError,
    UnavailableError,
    error_from_dict,
)

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_TIMEOUT",
    "AsyncClient",
    "BatchResult",
    "Client",
    "InvocationList",
]

DEFAULT_TIMEOUT = 60.0
"""Seconds `invoke` and `result` wait for an outcome when given no ``timeout``."""

_GRACE = 5.0  # the call deadline beyond the time the coordinator is asked to wait
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
_BACKOFF_INITIAL = 0.05  # seconds before the first retry of an UNAVAILABLE call (at most)
_BACKOFF_MAX = 1.0
_MAX_TRIES = 1000  # a bound on the retry loop; the call's deadline ends it long before
_SUCCEEDED = invocations_pb2.INVOCATION_STATE_SUCCEEDED
_FAILED = invocations_pb2.INVOCATION_STATE_FAILED


class BatchResult(NamedTuple):
    """One outcome of `AsyncClient.invoke_many`: which input, and its output or its error."""

    index: int
    """Position of the input in ``inputs``."""
    invocation_id: str
    """The invocation's id ("" when the coordinator refused the call before creating one)."""
    output: Any
    """The decoded result (None when the invocation failed)."""
    error: AgntError | None
    """Why it failed, or None."""

    def result(self) -> Any:
        """The decoded output; raises the error if the invocation failed."""
        if self.error is not None:
            raise self.error
        return self.output


class InvocationList(NamedTuple):
    """One page of `Client.list_invocations`."""

    invocations: list[dict[str, Any]]
    """Newest first: ``invocation_id``, ``service``, ``function``, ``state``, ``attempt``,
    ``created_unix_ms``, ``updated_unix_ms``, ``duration_ms`` and a failed one's
    ``error_code``."""
    next_cursor: str | None
    """Pass it as ``cursor`` for the next page; None at the end."""


def _backoff(retry: int) -> float:
    """A full-jitter pause before retry number ``retry`` (0 for the first)."""
    return random.uniform(0.0, min(_BACKOFF_MAX, _BACKOFF_INITIAL * 2**retry))


def _retry_pause(error: AgntError, retry: int, deadline: float, request: Any) -> float:
    """Seconds to pause before calling again, or raise ``error`` if it is final.

    Only ``UNAVAILABLE`` is retried, and only while the pause leaves time before ``deadline``
    (monotonic). A request that asks the coordinator to wait is asked to wait less, so the
    coordinator answers before the call's shortened deadline.
    """
    pause = _backoff(retry)
    remaining = deadline - time.monotonic() - pause
    if not isinstance(error, UnavailableError) or retry + 1 >= _MAX_TRIES or remaining <= 0:
        raise error
    if getattr(request, "wait_ms", 0):
        request.wait_ms = max(1, int((remaining - _GRACE) * 1000))
    return pause


def _unix_ms(name: str, seconds: float | None) -> int:
    """Unix milliseconds of a time in Unix seconds (None: 0, no bound)."""
    if seconds is None:
        return 0
    if not 0 <= seconds < 1e13:
        raise ValueError(f"{name} must be a Unix time in seconds, got {seconds!r}")
    return int(seconds * 1000)


def _trace_context() -> dict[str, str]:
    """The caller's current trace context as W3C headers (``traceparent``, ``tracestate``, and
    whatever else the configured OpenTelemetry propagators write), to send with an invocation
    so the caller's span becomes the parent of the coordinator's and the worker's. Empty when
    OpenTelemetry is not in use or no span is current."""
    if "opentelemetry.context" not in sys.modules:  # nothing can be current without it
        return {}
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def _milliseconds(seconds: float | None) -> int:
    if seconds is None:
        return 0
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"timeout must be a positive number of seconds, got {seconds!r}")
    return max(1, round(seconds * 1000))


class _Base:
    """What both clients share: the endpoint, credentials, request building and result decoding."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        _milliseconds(timeout)
        self.endpoint = endpoint
        self._target = parse_endpoint(endpoint)
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._timeout = timeout

    def _request(
        self,
        service: str,
        function: str,
        input: Any,
        idempotency_key: str | None,
        timeout: float | None,
        wait: float | None = None,
    ) -> invocations_pb2.InvokeRequest:
        """``wait``: how long the coordinator holds an Invoke (None: until the outcome)."""
        return invocations_pb2.InvokeRequest(
            service=service,
            function=function,
            input=self._payload(input),
            idempotency_key=idempotency_key or os.urandom(16).hex(),  # so a retry is deduped
            timeout_ms=_milliseconds(timeout),
            wait_ms=_milliseconds(wait),
            metadata=_trace_context(),
        )

    @staticmethod
    def _payload(input: Any) -> bytes:
        try:
            return b"" if input is None else encode_json(input)
        except TypeError as exc:
            raise InvalidArgumentError(f"input is not JSON-serializable: {exc}") from None

    def _invoke_request(
        self,
        service: str,
        function: str,
        input: Any,
        idempotency_key: str | None,
        timeout: float | None,
    ) -> tuple[invocations_pb2.InvokeRequest, float]:
        """The Invoke request and how long it may take: its deadline, else the client timeout."""
        if timeout is not None:  # the deadline bounds the wait, so the outcome is final
            return self._request(service, function, input, idempotency_key, timeout), timeout
        wait = self._timeout
        return self._request(service, function, input, idempotency_key, None, wait), wait

    def _signal_request(
        self, invocation_id: str, name: str, payload: Any
    ) -> invocations_pb2.SignalRequest:
        return invocations_pb2.SignalRequest(
            invocation_id=invocation_id, name=name, payload=self._payload(payload)
        )

    @staticmethod
    def _describe_request(invocation_id: str) -> invocations_pb2.GetResultRequest:
        return invocations_pb2.GetResultRequest(invocation_id=invocation_id, include_steps=True)

    def _result_request(
        self, invocation_id: str, timeout: float | None
    ) -> tuple[invocations_pb2.GetResultRequest, float]:
        wait = self._timeout if timeout is None else timeout
        request = invocations_pb2.GetResultRequest(
            invocation_id=invocation_id, wait_ms=_milliseconds(wait)
        )
        return request, wait

    @staticmethod
    def _list_request(
        service: str | None,
        function: str | None,
        states: Iterable[str] | None,
        created_after: float | None,
        created_before: float | None,
        limit: int,
        cursor: str | None,
    ) -> invocations_pb2.ListInvocationsRequest:
        try:
            state_numbers = [
                invocations_pb2.InvocationState.Value(f"INVOCATION_STATE_{state.upper()}")
                for state in states or ()
            ]
        except ValueError as exc:
            raise InvalidArgumentError(f"unknown state: {exc}") from None
        return invocations_pb2.ListInvocationsRequest(
            service=service or "",
            function=function or "",
            states=state_numbers,
            created_after_unix_ms=_unix_ms("created_after", created_after),
            created_before_unix_ms=_unix_ms("created_before", created_before),
            limit=limit,
            cursor=cursor or "",
        )

    @staticmethod
    def _listing(response: invocations_pb2.ListInvocationsResponse) -> InvocationList:
        invocations = [summary_dict(summary) for summary in response.invocations]
        return InvocationList(invocations, response.next_cursor or None)

    @staticmethod
    def _outcome(result: invocations_pb2.InvocationResult, waited: float) -> Any:
        if result.state == _SUCCEEDED:
            return _decoded(result.output, result.invocation_id)
        if result.state == _FAILED:
            raise error_from_dict(MessageToDict(result.error, preserving_proto_field_name=True))
        raise InvocationTimeoutError(
            f"Invocation {result.invocation_id} did not finish within {waited:g} s; it is still "
            f"running: fetch its outcome later with result({result.invocation_id!r})",
            retryable=True,
        )


class Client(_Base):
    """A blocking client: ``Client("http://localhost:9091").invoke("svc", "fn", {"x": 1})``.

    ``timeout`` (seconds) bounds every call that is not given its own.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(endpoint, api_key, timeout=timeout)
        if self._target.secure:
            credentials = grpc.ssl_channel_credentials()
            self._channel = grpc.secure_channel(self._target.target, credentials, _CHANNEL_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(self._target.target, _CHANNEL_OPTIONS)
        self._stub = invocations_pb2_grpc.InvocationsStub(self._channel)

    def invoke(
        self,
        service: str,
        function: str,
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Run ``service/function`` and return its decoded result.

        ``timeout`` is the invocation's deadline (past it: `InvocationTimeoutError`); without
        one the call waits up to the client's timeout and the invocation itself has no deadline.
        """
        request, wait = self._invoke_request(service, function, input, idempotency_key, timeout)
        return self._outcome(self._retried(self._stub.Invoke, request, wait + _GRACE), wait)

    def submit(
        self,
        service: str,
        function: str,
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Start ``service/function`` (``timeout``: its deadline) and return the invocation id."""
        request = self._request(service, function, input, idempotency_key, timeout)
        return str(self._retried(self._stub.Submit, request, self._timeout).invocation_id)

    def result(self, invocation_id: str, timeout: float | None = None) -> Any:
        """Wait up to ``timeout`` seconds (default: the client's) for an invocation's result."""
        request, wait = self._result_request(invocation_id, timeout)
        return self._outcome(self._retried(self._stub.GetResult, request, wait + _GRACE), wait)

    def describe(self, invocation_id: str) -> dict[str, Any]:
        """An invocation as it stands: id, service, function, state, attempt, duration, its
        ``result`` once it succeeded or its ``error`` once it failed, and a workflow's ``steps``
        (its journal: seq, kind, name, state, attempt, duration, ...)."""
        request = self._describe_request(invocation_id)
        return invocation_dict(self._retried(self._stub.GetResult, request, self._timeout))

    def signal(self, invocation_id: str, name: str, payload: Any = None) -> bool:
        """Send the signal ``name`` to a workflow invocation; True when a waiting
        ``ctx.signal(name)`` received it, False when it is kept for a later one. An unknown
        invocation is `NotFoundError`, a finished one `FailedPreconditionError`."""
        request = self._signal_request(invocation_id, name, payload)
        return bool(self._call(self._stub.Signal, request, self._timeout).delivered)

    def list_services(self) -> list[dict[str, Any]]:
        """Every service the coordinator knows, with components, workers and queue length."""
        response = self._call(
            self._stub.ListServices, invocations_pb2.ListServicesRequest(), self._timeout
        )
        return [service_dict(service) for service in response.services]

    def list_invocations(
        self,
        service: str | None = None,
        function: str | None = None,
        *,
        states: Iterable[str] | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> InvocationList:
        """A page of recent invocations, newest first, with these filters (states by name:
        ``"PENDING"``, ``"RUNNING"``, ``"SUCCEEDED"``, ``"FAILED"``; times in Unix seconds).
        A page may hold fewer than ``limit`` and still have a ``next_cursor``: page on until
        it is None."""
        request = self._list_request(
            service, function, states, created_after, created_before, limit, cursor
        )
        return self._listing(self._retried(self._stub.ListInvocations, request, self._timeout))

    def cancel(self, invocation_id: str, reason: str = "") -> None:
        """Cancel an invocation: a queued one never runs, a running one is cancelled on its
        worker; it fails with ``CANCELLED``. `NotFoundError` for an unknown id,
        `FailedPreconditionError` once it finished. Not retried (a failed call may have
        cancelled it)."""
        request = invocations_pb2.CancelRequest(invocation_id=invocation_id, reason=reason)
        self._call(self._stub.Cancel, request, self._timeout)

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Any, request: Any, timeout: float) -> Any:
        try:
            return method(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    def _retried(self, method: Any, request: Any, timeout: float) -> Any:
        """`_call`, retrying ``UNAVAILABLE`` within ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        for retry in range(_MAX_TRIES):
            try:
                return self._call(method, request, max(0.001, deadline - time.monotonic()))
            except AgntError as error:
                time.sleep(_retry_pause(error, retry, deadline, request))
        raise AssertionError("unreachable: _retry_pause raises on the last try")

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_Base):
    """The asyncio client, with the same methods as `Client` as coroutines.

    Its channel opens on first use and belongs to that event loop; ``await close()`` it there.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(endpoint, api_key, timeout=timeout)
        self._channel: grpc.aio.Channel | None = None
        self._stub: invocations_pb2_grpc.InvocationsStub | None = None
        self._stream: Any = None  # agnt5._wire.client_stream.InvokeStream, opened by invoke_many

    async def invoke(
        self,
        service: str,
        function: str,
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Run ``service/function`` and return its decoded result (see `Client.invoke`)."""
        request, wait = self._invoke_request(service, function, input, idempotency_key, timeout)
        return self._outcome(await self._retried("Invoke", request, wait + _GRACE), wait)

    async def submit(
        self,
        service: str,
        function: str,
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Start ``service/function`` and return the invocation id (see `Client.submit`)."""
        request = self._request(service, function, input, idempotency_key, timeout)
        return str((await self._retried("Submit", request, self._timeout)).invocation_id)

    async def result(self, invocation_id: str, timeout: float | None = None) -> Any:
        """Wait up to ``timeout`` seconds (default: the client's) for an invocation's result."""
        request, wait = self._result_request(invocation_id, timeout)
        return self._outcome(await self._retried("GetResult", request, wait + _GRACE), wait)

    async def describe(self, invocation_id: str) -> dict[str, Any]:
        """An invocation as it stands, with a workflow's ``steps`` (see `Client.describe`)."""
        request = self._describe_request(invocation_id)
        return invocation_dict(await self._retried("GetResult", request, self._timeout))

    async def signal(self, invocation_id: str, name: str, payload: Any = None) -> bool:
        """Send a signal to a workflow invocation (see `Client.signal`)."""
        request = self._signal_request(invocation_id, name, payload)
        return bool((await self._call("Signal", request, self._timeout)).delivered)

    async def list_services(self) -> list[dict[str, Any]]:
        """Every service the coordinator knows, with components, workers and queue length."""
        request = invocations_pb2.ListServicesRequest()
        response = await self._call("ListServices", request, self._timeout)
        return [service_dict(service) for service in response.services]

    async def list_invocations(
        self,
        service: str | None = None,
        function: str | None = None,
        *,
        states: Iterable[str] | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> InvocationList:
        """A page of recent invocations (see `Client.list_invocations`)."""
        request = self._list_request(
            service, function, states, created_after, created_before, limit, cursor
        )
        return self._listing(await self._retried("ListInvocations", request, self._timeout))

    async def cancel(self, invocation_id: str, reason: str = "") -> None:
        """Cancel an invocation (see `Client.cancel`)."""
        request = invocations_pb2.CancelRequest(invocation_id=invocation_id, reason=reason)
        await self._call("Cancel", request, self._timeout)

    async def invoke_many(
        self,
        service: str,
        function: str,
        inputs: Iterable[Any],
        *,
        idempotency_keys: Iterable[str | None] | None = None,
        timeout: float | None = None,
        window: int = 256,
    ) -> AsyncIterator[BatchResult]:
        """Run ``service/function`` once per input; yield each `BatchResult` as it completes.

        All calls share one ``InvokeStream`` (batched frames both ways), with at most ``window``
        unfinished at a time. ``idempotency_keys`` pairs a key (or None) with each input.
        ``timeout`` is each invocation's deadline (past it: a TIMEOUT result), as in `invoke`;
        without one the invocations have none and each outcome is awaited up to the client's
        timeout (then `InvocationTimeoutError`). A failed invocation is a result with its error,
        not an exception. A broken stream fails its unfinished calls with `UnavailableError`;
        the next call opens a new stream.
        """
        from agnt5._wire.client_stream import InvokeStream

        if window < 1:
            raise ValueError(f"window must be >= 1, got {window!r}")
        timeout_ms = _milliseconds(timeout)
        wait = (self._timeout if timeout is None else timeout) + _GRACE
        keys = iter(idempotency_keys) if idempotency_keys is not None else None
        if self._stream is None or self._stream.broken:
            if self._stream is not None:
                await self._stream.close()
            self._stream = InvokeStream(self._open(), self._metadata)
        stream = self._stream
        done: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        pending = 0
        for index, input in enumerate(inputs):
            key = next(keys, None) if keys is not None else None
            stream.submit(
                service, function, self._payload(input), key or "", timeout_ms,
                functools.partial(_deliver, done, index), _trace_context(),
            )  # fmt: skip
            pending += 1
            while pending >= window:  # bounded: each turn takes one outcome
                yield await self._next_result(done, wait)
                pending -= 1
        for _ in range(pending):
            yield await self._next_result(done, wait)

    @staticmethod
    async def _next_result(done: asyncio.Queue[tuple[int, Any]], wait: float) -> BatchResult:
        if done.empty():
            try:
                async with asyncio.timeout(wait):
                    index, outcome = await done.get()
            except TimeoutError:
                raise InvocationTimeoutError(
                    f"no outcome from the invocation stream within {wait:g} s", retryable=True
                ) from None
        else:
            index, outcome = done.get_nowait()
        if isinstance(outcome, AgntError):
            return BatchResult(index, "", None, outcome)
        if outcome.error is not None:
            error = error_from_dict(outcome.error._asdict())
            return BatchResult(index, outcome.invocation_id, None, error)
        try:
            output = _decoded(outcome.output, outcome.invocation_id)
        except OutputNotSerializableError as error:
            return BatchResult(index, outcome.invocation_id, None, error)
        return BatchResult(index, outcome.invocation_id, output, None)

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.close()
            self._stream = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    def _open(self) -> grpc.aio.Channel:
        """The channel (opened on first use, on the running loop)."""
        if self._channel is None:
            if self._target.secure:
                credentials = grpc.ssl_channel_credentials()
                self._channel = grpc.aio.secure_channel(
                    self._target.target, credentials, _CHANNEL_OPTIONS
                )
            else:
                self._channel = grpc.aio.insecure_channel(self._target.target, _CHANNEL_OPTIONS)
            self._stub = invocations_pb2_grpc.InvocationsStub(self._channel)
        return self._channel

    async def _call(self, name: str, request: Any, timeout: float) -> Any:
        self._open()
        try:
            return await getattr(self._stub, name)(
                request, timeout=timeout, metadata=self._metadata
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    async def _retried(self, name: str, request: Any, timeout: float) -> Any:
        """`_call`, retrying ``UNAVAILABLE`` within ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        for retry in range(_MAX_TRIES):
            try:
                return await self._call(name, request, max(0.001, deadline - time.monotonic()))
            except AgntError as error:
                await asyncio.sleep(_retry_pause(error, retry, deadline, request))
        raise AssertionError("unreachable: _retry_pause raises on the last try")

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _decoded(output: bytes | None, invocation_id: str) -> Any:
    """A result's value; bytes that are not JSON are an `OutputNotSerializableError`."""
    if not output:
        return None
    try:
        return decode_json(output)
    except InvalidArgumentError as exc:
        raise OutputNotSerializableError(
            f"the result of invocation {invocation_id} is not valid JSON ({exc.message})"
        ) from None


def _deliver(done: asyncio.Queue[tuple[int, Any]], index: int, outcome: Any) -> None:
    done.put_nowait((index, outcome))
