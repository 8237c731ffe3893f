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

``invoke`` and ``invoke_many`` travel on one ``InvokeStream`` per client, opened on first use
and kept open (batched frames both ways), not as an RPC per call. `Client` runs `AsyncClient`'s
methods on an event loop of its own, so it shares that stream across threads.

``invoke``, ``submit``, ``result`` and ``describe`` retry a call that failed with
``UNAVAILABLE`` (the coordinator unreachable, restarting or shutting down) after a jittered
exponential backoff, within the call's own deadline, resending the same idempotency key
(``invoke`` and ``submit`` generate one when given none): a coordinator restart during
``invoke`` yields the one result of the one invocation (see `agnt5.coordinator` for the
guarantee). With several endpoints (a list, or one string of them separated by commas, as
``AGNT5_COORDINATOR_ENDPOINT`` may hold), a call that failed with ``UNAVAILABLE`` is retried on
the next one, and later calls stay there. ``signal`` is not retried: a signal that failed with ``UNAVAILABLE`` may have been
delivered, so whether to send it again is the caller's choice.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import sys
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterable, Sequence
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

import grpc
from google.protobuf.json_format import MessageToDict

from agnt5 import config
from agnt5._proto import invocations_pb2, invocations_pb2_grpc
from agnt5._speedups import decode_json, encode_json
from agnt5._wire.status import error_from_rpc
from agnt5._wire.views import invocation_dict, service_dict, summary_dict
from agnt5.config import DEFAULT_ENDPOINT, Endpoint, parse_endpoints
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

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
"""Seconds `invoke` and `result` wait for an outcome when given no ``timeout``."""

_GRACE = 5.0  # the call deadline beyond the time the coordinator is asked to wait
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
_BACKOFF_INITIAL = 0.05  # seconds before the first retry of an UNAVAILABLE call (at most)
_BACKOFF_MAX = 1.0
_MAX_TRIES = 1000  # a bound on the retry loop; the call's deadline ends it long before
_CLOSE_TIMEOUT = 10.0  # seconds `Client.close` waits for its loop to wind down
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
        endpoint: str | Sequence[str] = DEFAULT_ENDPOINT,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        _milliseconds(timeout)
        self._targets = parse_endpoints(endpoint)
        self.endpoint = endpoint if isinstance(endpoint, str) else ",".join(endpoint)
        self._current = 0
        if api_key:
            try:
                api_key = config.api_key(api_key)
            except ValueError as exc:
                raise ValueError(f"invalid api_key: {exc}") from None
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._timeout = timeout

    @property
    def _target(self) -> Endpoint:
        """The coordinator calls go to now."""
        return self._targets[self._current]

    def _failover(self, error: AgntError) -> None:
        """After ``UNAVAILABLE``, send the next calls to the next endpoint of the list."""
        if isinstance(error, UnavailableError):
            self._current = (self._current + 1) % len(self._targets)

    def _request(
        self,
        service: str,
        function: str,
        input: Any,
        idempotency_key: str | None,
        timeout: float | None,
    ) -> invocations_pb2.InvokeRequest:
        return invocations_pb2.InvokeRequest(
            service=service,
            function=function,
            input=self._payload(input),
            idempotency_key=idempotency_key or os.urandom(16).hex(),  # so a retry is deduped
            timeout_ms=_milliseconds(timeout),
            metadata=_trace_context(),
        )

    @staticmethod
    def _payload(input: Any) -> bytes:
        try:
            return b"" if input is None else encode_json(input)
        except TypeError as exc:
            raise InvalidArgumentError(f"input is not JSON-serializable: {exc}") from None

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
        raise _still_running(result.invocation_id, waited)


class AsyncClient(_Base):
    """The asyncio client, with the same methods as `Client` as coroutines.

    Its channel opens on first use and belongs to that event loop; ``await close()`` it there.
    """

    def __init__(
        self,
        endpoint: str | Sequence[str] = DEFAULT_ENDPOINT,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(endpoint, api_key, timeout=timeout)
        self._channels: dict[
            int, tuple[grpc.aio.Channel, invocations_pb2_grpc.InvocationsStub]
        ] = {}
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
        """Run ``service/function`` and return its decoded result (see `Client.invoke`).

        The call travels on the client's open ``InvokeStream`` (opened on first use and shared
        with every other call), not as an RPC of its own.
        """
        payload = self._payload(input)
        key = idempotency_key or os.urandom(16).hex()  # so a retry is deduped
        timeout_ms = _milliseconds(timeout)
        wait = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + wait + _GRACE
        for retry in range(_MAX_TRIES):
            try:
                outcome = await self._on_stream(
                    service, function, payload, key, timeout_ms, deadline
                )
            except _StillRunning:  # the id, from the call's key: Submit dedupes it
                request = invocations_pb2.InvokeRequest(
                    service=service,
                    function=function,
                    input=payload,
                    idempotency_key=key,
                    metadata=_trace_context(),
                )
                submitted = await self._retried("Submit", request, self._timeout)
                raise _still_running(submitted.invocation_id, wait) from None
            except AgntError as error:
                await asyncio.sleep(_retry_pause(error, retry, deadline, None))
                continue
            if outcome.error is not None:
                raise error_from_dict(outcome.error._asdict())
            return _decoded(outcome.output, outcome.invocation_id)
        raise AssertionError("unreachable: _retry_pause raises on the last try")

    async def _on_stream(
        self,
        service: str,
        function: str,
        payload: bytes,
        key: str,
        timeout_ms: int,
        deadline: float,
    ) -> Any:
        """The outcome of one call on the stream; a refused call or a broken stream raises its
        agnt5 error, no outcome by ``deadline`` (monotonic) raises `_StillRunning`."""
        stream = await self._invoke_stream()
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        ref = stream.submit(
            service, function, payload, key, timeout_ms, functools.partial(_settle, done),
            _trace_context(),
        )  # fmt: skip
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                outcome = await done
        except TimeoutError:
            raise _StillRunning from None
        finally:
            stream.forget(ref)
        if isinstance(outcome, AgntError):
            raise outcome
        if outcome.error is not None and not outcome.invocation_id:  # refused before it started
            raise error_from_dict(outcome.error._asdict())
        return outcome

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

        if window < 1:
            raise ValueError(f"window must be >= 1, got {window!r}")
        timeout_ms = _milliseconds(timeout)
        wait = (self._timeout if timeout is None else timeout) + _GRACE
        keys = iter(idempotency_keys) if idempotency_keys is not None else None
        stream = await self._invoke_stream()
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

    async def _invoke_stream(self) -> Any:
        """The client's open ``InvokeStream``, opened anew when there is none or it broke (to
        the next endpoint when there are several)."""
        from agnt5._wire.client_stream import InvokeStream

        stream = self._stream
        if stream is None or stream.broken:
            if stream is not None:
                await stream.close()
                self._failover(UnavailableError("the invocation stream broke"))
            stream = self._stream = InvokeStream(self._open()[0], self._metadata)
        return stream

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.close()
            self._stream = None
        channels, self._channels = self._channels, {}
        for channel, _ in channels.values():
            await channel.close()

    def _open(self) -> tuple[grpc.aio.Channel, invocations_pb2_grpc.InvocationsStub]:
        """The current endpoint's channel and stub (opened on first use, on the running loop)."""
        found = self._channels.get(self._current)
        if found is None:
            target = self._target
            if target.secure:
                credentials = grpc.ssl_channel_credentials()
                channel = grpc.aio.secure_channel(target.target, credentials, _CHANNEL_OPTIONS)
            else:
                channel = grpc.aio.insecure_channel(target.target, _CHANNEL_OPTIONS)
            stub = invocations_pb2_grpc.InvocationsStub(channel)
            found = self._channels[self._current] = (channel, stub)
        return found

    async def _call(self, name: str, request: Any, timeout: float) -> Any:
        _, stub = self._open()
        try:
            return await getattr(stub, name)(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    async def _retried(self, name: str, request: Any, timeout: float) -> Any:
        """`_call`, retrying ``UNAVAILABLE`` (on the next endpoint) within ``timeout`` seconds
        in all, with the same request (so the same idempotency key)."""
        deadline = time.monotonic() + timeout
        for retry in range(_MAX_TRIES):
            try:
                return await self._call(name, request, max(0.001, deadline - time.monotonic()))
            except AgntError as error:
                self._failover(error)
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


class Client:
    """A blocking client: ``Client("http://localhost:9091").invoke("svc", "fn", {"x": 1})``.

    ``timeout`` (seconds) bounds every call that is not given its own. The methods are those of
    `AsyncClient`, run on an event loop of the client's own (a thread started on first use and
    stopped by `close`), so every call from every thread shares one connection and one open
    ``InvokeStream``.
    """

    def __init__(
        self,
        endpoint: str | Sequence[str] = DEFAULT_ENDPOINT,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = AsyncClient(endpoint, api_key, timeout=timeout)
        self.endpoint = self._client.endpoint
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

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
        return self._run(
            self._client.invoke(
                service, function, input, idempotency_key=idempotency_key, timeout=timeout
            )
        )

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
        return self._run(  # type: ignore[no-any-return]
            self._client.submit(
                service, function, input, idempotency_key=idempotency_key, timeout=timeout
            )
        )

    def result(self, invocation_id: str, timeout: float | None = None) -> Any:
        """Wait up to ``timeout`` seconds (default: the client's) for an invocation's result."""
        return self._run(self._client.result(invocation_id, timeout))

    def describe(self, invocation_id: str) -> dict[str, Any]:
        """An invocation as it stands: id, service, function, state, attempt, duration, its
        ``result`` once it succeeded or its ``error`` once it failed, and a workflow's ``steps``
        (its journal: seq, kind, name, state, attempt, duration, ...)."""
        return self._run(self._client.describe(invocation_id))

    def signal(self, invocation_id: str, name: str, payload: Any = None) -> bool:
        """Send the signal ``name`` to a workflow invocation; True when a waiting
        ``ctx.signal(name)`` received it, False when it is kept for a later one. An unknown
        invocation is `NotFoundError`, a finished one `FailedPreconditionError`."""
        return self._run(self._client.signal(invocation_id, name, payload))

    def list_services(self) -> list[dict[str, Any]]:
        """Every service the coordinator knows, with components, workers and queue length."""
        return self._run(self._client.list_services())  # type: ignore[no-any-return]

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
        return self._run(
            self._client.list_invocations(
                service,
                function,
                states=states,
                created_after=created_after,
                created_before=created_before,
                limit=limit,
                cursor=cursor,
            )
        )

    def cancel(self, invocation_id: str, reason: str = "") -> None:
        """Cancel an invocation: a queued one never runs, a running one is cancelled on its
        worker; it fails with ``CANCELLED``. `NotFoundError` for an unknown id,
        `FailedPreconditionError` once it finished. Not retried (a failed call may have
        cancelled it)."""
        self._run(self._client.cancel(invocation_id, reason))

    def close(self) -> None:
        """Close the connection and stop the client's thread (a later call starts them again)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._client.close(), loop).result(_CLOSE_TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_CLOSE_TIMEOUT)
            loop.close()

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        """Run ``call`` on the client's loop and wait for it here."""
        future = asyncio.run_coroutine_threadsafe(call, self._running_loop())
        try:
            return future.result()
        except BaseException:  # interrupted here (KeyboardInterrupt): stop the call there too
            future.cancel()
            raise

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="agnt5-client", daemon=True
                )
                self._thread.start()
            return self._loop

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


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


def _settle(done: asyncio.Future[Any], outcome: Any) -> None:
    if not done.done():
        done.set_result(outcome)


class _StillRunning(Exception):
    """No outcome within the call's wait: the invocation has not finished."""


def _still_running(invocation_id: str, waited: float) -> InvocationTimeoutError:
    return InvocationTimeoutError(
        f"Invocation {invocation_id} did not finish within {waited:g} s; it is still "
        f"running: fetch its outcome later with result({invocation_id!r})",
        retryable=True,
    )
