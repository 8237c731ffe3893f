"""``WorkerCoordinator.Connect``: one session per worker stream, and dropping silent workers."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc

from agnt5._proto import worker_pb2, worker_pb2_grpc, workflow_pb2
from agnt5._wire.batching import Batcher, by_kind
from agnt5._wire.records import InvokeItem
from agnt5.coordinator._grpc_util import serve_call
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
        api_key: str | None,
        heartbeat_interval: float,
        heartbeat_timeout: float,
        register_timeout: float = 10.0,
    ) -> None:
        self._scheduler = scheduler
        self._registry = registry
        self._api_key = api_key
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat_timeout = heartbeat_timeout
        self._register_timeout = register_timeout

    async def Connect(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        register = await serve_call(context, self._api_key, lambda: self._read_register(context))
        worker = WorkerHandle.from_register(register)
        self._scheduler.worker_joined(worker)
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
        """Drop workers silent for longer than the heartbeat timeout (runs until cancelled)."""
        period = min(1.0, self._heartbeat_timeout / 4)
        while True:  # for the coordinator's lifetime; cancelled by stop()
            await asyncio.sleep(period)
            cutoff = time.monotonic() - self._heartbeat_timeout
            for worker in self._registry.workers():
                if worker.last_seen < cutoff:
                    _log.warning("worker %s missed its heartbeats: dropping it", worker.worker_id)
                    self._scheduler.worker_lost(worker)

    async def _read_register(self, context: grpc.aio.ServicerContext) -> worker_pb2.Register:
        try:
            message = await asyncio.wait_for(context.read(), self._register_timeout)
        except TimeoutError:
            raise InvalidArgumentError(
                f"no Register within {self._register_timeout:g} s of opening the stream"
            ) from None
        if message is grpc.aio.EOF or message[0] != "register":
            raise InvalidArgumentError("the first message on a worker stream must be Register")
        register: worker_pb2.Register = message[1]
        if not register.service_name or not register.worker_id:
            raise InvalidArgumentError("Register needs a service_name and a worker_id")
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

    @staticmethod
    async def _write(context: grpc.aio.ServicerContext, worker: WorkerHandle) -> None:
        frames = Batcher(worker.outbox, _OUTGOING, _item_size)
        while True:  # until CLOSE, which every way of ending a session puts on the outbox
            frame = await frames.next()
            if frame is CLOSE:
                return
            if type(frame) is list:
                for batch in by_kind(frame, _OUTGOING):
                    await context.write(batch)
            else:
                await context.write(frame)


_OUTGOING = (InvokeItem, workflow_pb2.WorkflowEvent)  # a frame's invocations before its events


def _item_size(item: Any) -> int:
    """About how many bytes an invocation or a workflow event adds to its frame."""
    if type(item) is InvokeItem:
        metadata = sum(len(k) + len(v) for k, v in item.metadata.items())
        return 96 + len(item.input) + len(item.journal) + metadata
    return 32 + int(item.ByteSize())
