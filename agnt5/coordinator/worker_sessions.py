"""``WorkerCoordinator.Connect``: one session per worker stream, and dropping silent workers."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc

from agnt5._proto import worker_pb2, worker_pb2_grpc, workflow_pb2
from agnt5._wire.batching import Batcher, by_kind
from agnt5._wire.records import FrameError, InvokeItem
from agnt5.coordinator._grpc_util import serve_call
from agnt5.coordinator.auth import Credentials, Grant
from agnt5.coordinator.checks import check_register
from agnt5.coordinator.registry import CLOSE, Registry, WorkerHandle
from agnt5.coordinator.scheduler import Scheduler
from agnt5.errors import InvalidArgumentError

__all__ = ["WorkerSessions"]

_log = logging.getLogger("agnt5.coordinator")


class WorkerSessions(worker_pb2_grpc.WorkerCoordinatorServicer):
    """Serves worker streams: Register -> RegisterAck, then batches both ways until the stream ends.

    Invokes queued for a worker go out in adaptive batches (`agnt5._wire.batching.Batcher`), read
    and written through the frame codec (`agnt5._wire.streams`). A worker
    that sends nothing for ``heartbeat_timeout`` seconds is dropped by `reap` and its in-flight
    work re-delivered.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        registry: Registry,
        *,
        credentials: Credentials,
        heartbeat_interval: float,
        heartbeat_timeout: float,
        forget_after: float,
        register_timeout: float = 10.0,
    ) -> None:
        self._scheduler = scheduler
        self._registry = registry
        self._authorize = credentials.worker
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat_timeout = heartbeat_timeout
        self._forget_after = forget_after
        self._register_timeout = register_timeout

    async def Connect(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        worker = await serve_call(
            context,
            self._authorize,
            lambda grant: self._join(context, grant),
            self._scheduler.telemetry.refused,
        )
        _log.info(
            "worker %s joined service %s (%d components, max_concurrency %d)",
            worker.worker_id,
            worker.service,
            len(worker.components),
            worker.max_concurrency,
        )
        reader = asyncio.create_task(self._read(context, worker))
        try:
            ack = worker_pb2.RegisterAck(
                worker_id=worker.worker_id,
                heartbeat_interval_ms=int(self._heartbeat_interval * 1000),
                heartbeat_timeout_ms=int(self._heartbeat_timeout * 1000),
                max_result_bytes=self._scheduler.max_output_bytes,
            )
            await context.write(worker_pb2.CoordinatorMessage(register_ack=ack))
            await self._write(context, worker)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self._scheduler.worker_lost(worker)
            _log.info("worker %s left service %s", worker.worker_id, worker.service)

    def drain_all(self, reason: str, timeout: float) -> None:
        """Tell every worker the coordinator is going away, then end their streams."""
        drain = worker_pb2.Drain(reason=reason, timeout_ms=int(timeout * 1000))
        for worker in self._registry.workers():
            worker.outbox.put_nowait(worker_pb2.CoordinatorMessage(drain=drain))
            worker.close()

    async def reap(self) -> None:
        """Drop workers silent for longer than the heartbeat timeout, and services with no
        worker (and no queued work) for longer than ``forget_after`` (runs until cancelled)."""
        period = min(1.0, self._heartbeat_timeout / 4)
        while True:  # for the coordinator's lifetime; cancelled by stop()
            await asyncio.sleep(period)
            now = time.monotonic()
            for worker in self._registry.workers():
                if worker.last_seen < now - self._heartbeat_timeout:
                    _log.warning("worker %s missed its heartbeats: dropping it", worker.worker_id)
                    self._scheduler.worker_lost(worker)
            self._registry.forget_idle(now - self._forget_after, self._scheduler.queued)

    async def _join(self, context: grpc.aio.ServicerContext, grant: Grant) -> WorkerHandle:
        worker = WorkerHandle.from_register(await self._read_register(context, grant))
        self._scheduler.worker_joined(worker)
        return worker

    async def _read_register(
        self, context: grpc.aio.ServicerContext, grant: Grant
    ) -> worker_pb2.Register:
        try:
            message = await asyncio.wait_for(context.read(), self._register_timeout)
        except TimeoutError:
            raise InvalidArgumentError(
                f"no Register within {self._register_timeout:g} s of opening the stream"
            ) from None
        if message is grpc.aio.EOF or message[0] != "register":
            raise InvalidArgumentError("the first message on a worker stream must be Register")
        register: worker_pb2.Register = message[1]
        check_register(register)
        grant.check(register.service_name, "register workers for")
        return register

    async def _read(self, context: grpc.aio.ServicerContext, worker: WorkerHandle) -> None:
        try:
            while not worker.closed:  # one message per turn until EOF, Unregister or drop
                message = await context.read()
                if message is grpc.aio.EOF:
                    return
                worker.last_seen = time.monotonic()
                kind, body = message
                if kind == "result_batch":
                    self._scheduler.results(worker, body)
                elif kind == "workflow_commands":
                    self._scheduler.workflows.commands(worker, body.commands)
                elif kind == "heartbeat":
                    ack = worker_pb2.HeartbeatAck(unix_ms=int(time.time() * 1000))
                    worker.outbox.put_nowait(worker_pb2.CoordinatorMessage(heartbeat_ack=ack))
                elif kind == "drain":
                    self._scheduler.worker_draining(worker)
                elif kind == "unregister":
                    return
                else:
                    _log.warning("ignoring a %s message from worker %s", kind, worker.worker_id)
        finally:
            worker.close()

    async def _write(self, context: grpc.aio.ServicerContext, worker: WorkerHandle) -> None:
        frames = Batcher(worker.outbox, _OUTGOING, _item_size)
        while True:  # until CLOSE, which every way of ending a session puts on the outbox
            frame = await frames.next()
            if frame is CLOSE:
                return
            if type(frame) is not list:
                await context.write(frame)
                continue
            for batch in by_kind(frame, _OUTGOING):
                try:
                    await context.write(batch)
                except FrameError:  # a record the codec cannot encode fails alone, not the stream
                    await self._write_each(context, worker, batch)

    async def _write_each(
        self, context: grpc.aio.ServicerContext, worker: WorkerHandle, invokes: list[InvokeItem]
    ) -> None:
        for invoke in invokes:
            try:
                await context.write([invoke])
            except FrameError as exc:
                self._scheduler.undeliverable(worker, invoke.invocation_id, str(exc))


_OUTGOING = (InvokeItem, workflow_pb2.WorkflowEvent)  # a frame's invocations before its events


def _item_size(item: Any) -> int:
    """About how many bytes an invocation or a workflow event adds to its frame."""
    if type(item) is InvokeItem:
        metadata = sum(len(k) + len(v) for k, v in item.metadata.items())
        return 96 + len(item.input) + len(item.journal) + metadata
    return 32 + int(item.ByteSize())
