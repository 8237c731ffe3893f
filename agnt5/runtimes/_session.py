"""One connected session of a standalone worker: register, run invocations, stream results back.

The session is also the `WorkflowHost` of the workflows it runs: their commands go out on the
stream (batched with results, each workflow's commands before its result), the committed
entries come back as events, and a run that suspends sends ``Suspend`` instead of a result,
freeing its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
import time
from typing import Any

import grpc
import orjson

from agnt5._pipeline import Pipeline, cancelled_itself
from agnt5._proto import common_pb2, worker_pb2, workflow_pb2
from agnt5._version import __version__
from agnt5._wire.batching import Batcher, by_kind
from agnt5._wire.records import ErrorItem, InvokeItem, ResultItem
from agnt5.config import WorkerConfig
from agnt5.context import Context
from agnt5.decorators import Component
from agnt5.errors import (
    AgntError,
    InvalidArgumentError,
    InvocationCancelledError,
    PayloadTooLargeError,
    ResourceExhaustedError,
    wrap_exception,
)
from agnt5.workflows.context import WorkflowContext
from agnt5.workflows.journal import Command, JournalError, StepOutcome, TaskStart
from agnt5.workflows.protocol import (
    command_message,
    decode_journal,
    entry_from_message,
    suspend_message,
)
from agnt5.workflows.run import WorkflowSuspended

__all__ = ["Session", "SessionLost"]

_log = logging.getLogger("agnt5.worker")

_REGISTER_TIMEOUT = 10.0
_CLOSE_TIMEOUT = 5.0
_OUTGOING = (workflow_pb2.WorkflowCommand, ResultItem)  # a frame's commands go before its results


class SessionLost(Exception):
    """The stream ended or failed; the worker reconnects."""


class Session:
    """A registered stream: reads invocations, runs them, writes results, heartbeats."""

    def __init__(self, call: Any, config: WorkerConfig, pipeline: Pipeline) -> None:
        self._call = call
        self._config = config
        self._pipeline = pipeline
        self._outbox: asyncio.Queue[Any] = asyncio.Queue()
        self._inflight: dict[str, tuple[asyncio.Task[bytes], Context | None]] = {}
        self._cancels: dict[str, InvocationCancelledError] = {}  # why this session cancelled one
        self._workflows: dict[str, WorkflowContext] = {}  # running workflows, for their events
        self.suspend_after: float | None = config.workflow_suspend_after
        self._heartbeat_interval = config.heartbeat_interval
        self._max_result_bytes = sys.maxsize  # until the coordinator says
        self._accepting = True
        self._lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    async def register(self) -> int:
        """Send Register (every registered component) and wait for RegisterAck; returns the count."""
        components = [_component_message(c) for c in self._pipeline.registry.values()]
        await self._call.write(
            worker_pb2.WorkerMessage(register=self._register_message(components))
        )
        reply = await asyncio.wait_for(self._call.read(), _REGISTER_TIMEOUT)
        if reply is grpc.aio.EOF or reply[0] != "register_ack":
            raise SessionLost("the coordinator closed the stream instead of acknowledging Register")
        ack = reply[1]
        self._max_result_bytes = ack.max_result_bytes or sys.maxsize
        if ack.heartbeat_interval_ms:
            self._heartbeat_interval = min(
                self._heartbeat_interval, ack.heartbeat_interval_ms / 1000
            )
        return len(components)

    async def serve(self) -> str:
        """Run until the stream is lost or the coordinator drains; returns why it ended."""
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="agnt5-read"),
            asyncio.create_task(self._write_loop(), name="agnt5-write"),
            asyncio.create_task(self._heartbeat_loop(), name="agnt5-heartbeat"),
        ]
        return await asyncio.shield(self._lost)

    async def drain(self, reason: str, timeout: float) -> None:
        """Take no new work, tell the coordinator, let in-flight work finish, cancel the rest."""
        self._accepting = False
        self._send(
            worker_pb2.WorkerMessage(
                drain=worker_pb2.Drain(reason=reason, timeout_ms=int(timeout * 1000))
            )
        )
        pending = [task for task, _ in self._inflight.values()]
        if pending:
            _log.info("draining: waiting up to %.1fs for %d invocation(s)", timeout, len(pending))
            await asyncio.wait(pending, timeout=timeout)
        self._cancel_all(retryable=True, reason=f"worker draining ({reason})")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._flush(), _CLOSE_TIMEOUT)

    async def close(self, reason: str) -> None:
        """Unregister (if the stream still works), stop every task, close the stream.

        After Unregister it waits for the coordinator to end the stream: cancelling the call
        sooner would drop results written but not yet read by a busy coordinator, which then
        runs those invocations again.
        """
        if not self._lost.done():
            self._send(worker_pb2.WorkerMessage(unregister=worker_pb2.Unregister(reason=reason)))
            with contextlib.suppress(asyncio.TimeoutError, grpc.aio.AioRpcError, SessionLost):
                await asyncio.wait_for(self._flush(), _CLOSE_TIMEOUT)
                await asyncio.wait_for(self._call.done_writing(), _CLOSE_TIMEOUT)
                await asyncio.wait_for(asyncio.shield(self._lost), _CLOSE_TIMEOUT)
        self._cancel_all(retryable=True, reason="session closed")
        invocations = [task for task, _ in self._inflight.values()]
        if invocations:
            await asyncio.wait(invocations, timeout=_CLOSE_TIMEOUT)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._call.cancel()

    # Reading.

    async def _read_loop(self) -> None:
        try:
            while True:
                message = await self._call.read()
                if message is grpc.aio.EOF:
                    self._end("the coordinator closed the stream")
                    return
                kind, body = message
                if kind == "invoke_batch":
                    for invoke in body:
                        self._start(invoke)
                elif kind == "workflow_events":
                    self._events(body.events)
                elif kind == "cancel":
                    self._cancel(body.invocation_id, body.reason)
                elif kind == "drain":
                    _log.info("coordinator is draining: %s", body.reason or "no reason")
                    self._accepting = False
                    self._end("coordinator drain")
                    return
        except grpc.aio.AioRpcError as exc:
            self._end(f"stream failed: {exc.code().name}: {exc.details()}")

    def _end(self, why: str) -> None:
        if not self._lost.done():
            self._lost.set_result(why)

    # Running invocations.

    def _start(self, invoke: InvokeItem) -> None:
        try:
            route = self._pipeline.route(invoke.component)
        except AgntError as error:
            self._fail(invoke, error, 0.0)
            return
        if not self._accepting or len(self._inflight) >= self._config.max_concurrency:
            error = ResourceExhaustedError(
                f"worker {self._config.worker_id} is at capacity or draining"
            )
            self._fail(invoke, error, 0.0)
            return
        invocation_id, attempt = invoke.invocation_id, invoke.attempt or 1
        deadline = invoke.deadline_unix_ms / 1000 if invoke.deadline_unix_ms else None
        if route.workflow:
            try:
                journal = decode_journal(invoke.journal)
            except JournalError as exc:
                self._fail(invoke, InvalidArgumentError(str(exc)), 0.0)
                return
            ctx = route.context(
                invocation_id, attempt, invoke.metadata, deadline, host=self, journal=journal
            )
            self._workflows[invocation_id] = ctx  # type: ignore[assignment]
        else:
            ctx = route.context(invocation_id, attempt, invoke.metadata, deadline)
        task = asyncio.create_task(
            route.run(invoke.input, invocation_id, attempt, invoke.metadata, deadline, ctx),
            name=f"agnt5-{invocation_id}",
        )
        self._inflight[invocation_id] = (task, ctx)
        task.add_done_callback(functools.partial(self._finished, invoke, time.perf_counter()))

    def _finished(self, invoke: InvokeItem, started: float, task: asyncio.Task[bytes]) -> None:
        """Free the attempt's slot and send what it came to, however it ended (a task cancelled
        before it started too)."""
        invocation_id = invoke.invocation_id
        self._inflight.pop(invocation_id, None)
        requested: AgntError | None = self._cancels.pop(invocation_id, None)
        seconds = time.perf_counter() - started
        if task.cancelled():
            if requested is None:  # the handler cancelled its own task: it fails like any
                # exception it raises, or the coordinator would count it running forever
                reason = asyncio.CancelledError("its task was cancelled, not by the worker")
                requested = cancelled_itself(invoke.component, invocation_id, reason)
            self._fail(invoke, requested, seconds)
            return
        error = task.exception()
        if isinstance(error, WorkflowSuspended):  # no outcome: the slot is free until it resumes
            self._send(suspend_message(invocation_id, invoke.attempt, error.waiting))
            return
        if error is None:
            output = task.result()
            if len(output) <= self._max_result_bytes:
                result = ResultItem(invocation_id, invoke.attempt, output, None, int(seconds * 1e6))
                self._send(result)
                return
            error = PayloadTooLargeError(
                f"the result of {invoke.component} is {len(output)} bytes, over the "
                f"coordinator's limit of {self._max_result_bytes} bytes"
            )
        if not isinstance(error, AgntError):  # the pipeline's own fault, not the handler's
            _log.error("invocation %s failed in the worker", invocation_id, exc_info=error)
            error = wrap_exception(invoke.component, error)
        self._fail(invoke, error, seconds)

    def _fail(self, invoke: InvokeItem, error: AgntError, seconds: float) -> None:
        failure = ErrorItem(
            _text(error.code), _text(error.message), _text(error.error_type), error.retryable
        )
        self._send(
            ResultItem(invoke.invocation_id, invoke.attempt, None, failure, int(seconds * 1e6))
        )

    def _cancel(self, invocation_id: str, reason: str, *, retryable: bool = False) -> None:
        entry = self._inflight.get(invocation_id)
        if entry is None:
            return
        task, ctx = entry
        text = reason or "cancelled by the coordinator"
        self._cancels.setdefault(invocation_id, InvocationCancelledError(text, retryable=retryable))
        if ctx is not None:
            ctx._cancel(text)
        task.cancel(text)

    def _cancel_all(self, *, retryable: bool, reason: str) -> None:
        for invocation_id in list(self._inflight):
            self._cancel(invocation_id, reason, retryable=retryable)

    # Workflows (the session is their `WorkflowHost`).

    def send(self, ctx: WorkflowContext, command: Command) -> None:
        """Journal ``command``; a step output over the coordinator's result limit is journaled
        as the step's failure, a task input over it refused (the stream could not carry it)."""
        limit = self._max_result_bytes
        if isinstance(command, StepOutcome) and command.output and len(command.output) > limit:
            error = PayloadTooLargeError(
                f"step {command.name!r} returned {len(command.output)} bytes, over the "
                f"coordinator's limit of {limit} bytes"
            )
            command = command._replace(output=None, error=error.to_dict())
        elif isinstance(command, TaskStart) and len(command.input) > limit:
            raise PayloadTooLargeError(
                f"the input of ctx.task({command.service!r}, {command.function!r}) is "
                f"{len(command.input)} bytes, over the coordinator's limit of {limit} bytes"
            )
        self._send(command_message(ctx.invocation_id, ctx.attempt, command))

    def release(self, ctx: WorkflowContext) -> None:
        if self._workflows.get(ctx.invocation_id) is ctx:
            del self._workflows[ctx.invocation_id]

    def _events(self, events: Any) -> None:
        """Committed entries of running workflows; those of runs that ended are dropped."""
        for event in events:
            ctx = self._workflows.get(event.invocation_id)
            if ctx is None:
                continue
            try:
                ctx._resolve(entry_from_message(event.entry))
            except JournalError as exc:
                _log.warning("ignoring an event for %s: %s", event.invocation_id, exc)

    # Writing.

    def _send(self, message: Any) -> None:
        self._outbox.put_nowait(message)

    async def _flush(self) -> None:
        await self._outbox.join()

    async def _write_loop(self) -> None:
        """Results and workflow commands go out in adaptive batches (a list of `ResultItem` is
        one ResultBatch, a list of commands one WorkflowCommands)."""
        frames = Batcher(self._outbox, _OUTGOING, _item_size)
        try:
            while True:
                frame = await frames.next()
                try:
                    if type(frame) is list:
                        for batch in by_kind(frame, _OUTGOING):
                            await self._call.write(batch)
                    else:
                        await self._call.write(frame)
                finally:
                    for _ in frame if type(frame) is list else (frame,):
                        self._outbox.task_done()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            self._end(f"write failed: {exc}")
            self._discard_outbox()

    def _discard_outbox(self) -> None:
        while not self._outbox.empty():
            self._outbox.get_nowait()
            self._outbox.task_done()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_interval)
            self._send(
                worker_pb2.WorkerMessage(
                    heartbeat=worker_pb2.Heartbeat(in_flight=len(self._inflight))
                )
            )

    def _register_message(self, components: list[Any]) -> Any:
        return worker_pb2.Register(
            service_name=self._config.service_name,
            service_version=self._config.service_version,
            worker_id=self._config.worker_id,
            components=components,
            max_concurrency=self._config.max_concurrency,
            sdk_version=__version__,
        )


def _text(value: str) -> str:
    """``value`` as text the stream can carry (a lone surrogate in a message becomes '?')."""
    return value.encode("utf-8", "replace").decode("utf-8")


def _item_size(item: Any) -> int:
    """About how many bytes a result or a workflow command adds to its frame."""
    if type(item) is ResultItem:
        error = item.error
        return 48 + len(item.output or b"") + (len(error.message) if error is not None else 0)
    return 32 + int(item.ByteSize())


def _component_message(component: Component) -> Any:
    config = component.config
    return common_pb2.Component(
        name=component.name,
        kind=component.kind,
        description=component.description,
        input_schema_json=orjson.dumps(component.input_schema).decode(),
        output_schema_json=orjson.dumps(component.output_schema).decode(),
        config=common_pb2.ComponentConfig(
            timeout_ms=int((config.timeout or 0) * 1000),
            retries=config.retries,
            backoff=common_pb2.Backoff(
                initial_ms=int(config.backoff.initial * 1000),
                multiplier=config.backoff.multiplier,
                max_ms=int(config.backoff.maximum * 1000),
            ),
        ),
    )
