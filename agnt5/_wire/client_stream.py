"""One open ``Invocations.InvokeStream`` shared by an `AsyncClient`'s `invoke_many` calls.

Calls are numbered (``ref``) and queued; a writer sends them in adaptive batches, a reader hands
each outcome to the callback registered under its ref. When the stream fails, every waiting
callback gets the failure as an agnt5 error and the stream is marked broken (the client then
opens a new one).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import grpc

from agnt5._wire.batching import Batcher
from agnt5._wire.records import StreamCall, StreamOutcome
from agnt5._wire.status import error_from_rpc
from agnt5._wire.streams import invoke_stream
from agnt5.errors import AgntError, UnavailableError

__all__ = ["Callback", "InvokeStream"]

Callback = Callable[[StreamOutcome | AgntError], None]
_NO_METADATA: dict[str, str] = {}  # never mutated


def _call_size(call: StreamCall) -> int:
    metadata = sum(len(key) + len(value) for key, value in call.metadata.items())
    return 64 + len(call.input) + len(call.idempotency_key) + metadata


class InvokeStream:
    """A live InvokeStream call with its writer and reader tasks (stop it with `close`)."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Any) -> None:
        self._call = invoke_stream(channel, metadata)
        self._outbox: asyncio.Queue[StreamCall] = asyncio.Queue()
        self._waiting: dict[int, Callback] = {}
        self._refs = itertools.count(1)
        self.broken = False
        self._tasks = [
            asyncio.create_task(self._write(), name="agnt5-invoke-stream-write"),
            asyncio.create_task(self._read(), name="agnt5-invoke-stream-read"),
        ]

    def submit(
        self,
        service: str,
        function: str,
        payload: bytes,
        idempotency_key: str,
        timeout_ms: int,
        callback: Callback,
        metadata: dict[str, str] = _NO_METADATA,
    ) -> None:
        """Queue one call (``metadata`` goes to the worker, e.g. the caller's ``traceparent``);
        ``callback`` gets its outcome (or the stream's failure) once."""
        ref = next(self._refs)
        self._waiting[ref] = callback
        self._outbox.put_nowait(
            StreamCall(ref, service, function, payload, idempotency_key, timeout_ms, metadata)
        )

    async def close(self) -> None:
        """Stop both tasks and cancel the call; calls still waiting get `UnavailableError`."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._call.cancel()
        self._fail(UnavailableError("the client closed the invocation stream"))

    async def _write(self) -> None:
        frames = Batcher(self._outbox, StreamCall, _call_size)
        try:
            while True:  # until cancelled by close() or the call fails
                await self._call.write(await frames.next())
        except (grpc.RpcError, asyncio.InvalidStateError):
            return  # the reader sees the call's status and fails the waiting calls

    async def _read(self) -> None:
        error: AgntError
        try:
            while True:  # one frame of outcomes per turn, until the stream ends
                outcomes = await self._call.read()
                if outcomes is grpc.aio.EOF:
                    error = UnavailableError("the coordinator ended the invocation stream")
                    break
                for outcome in outcomes:
                    callback = self._waiting.pop(outcome.ref, None)
                    if callback is not None:
                        callback(outcome)
        except grpc.RpcError as exc:
            error = error_from_rpc(exc)
        self._fail(error)

    def _fail(self, error: AgntError) -> None:
        self.broken = True
        waiting, self._waiting = self._waiting, {}
        for callback in waiting.values():
            callback(error)
