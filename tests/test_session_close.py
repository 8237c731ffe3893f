"""A draining worker's last results reach a coordinator that is slow to read them.

The coordinator here is a real gRPC server speaking the worker protocol, which pauses after
the worker's Drain before it reads on: a worker that cancelled its stream right after its
last write lost the results still unread (the coordinator then ran those invocations again).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from _coordinator_support import unique

from agnt5 import Worker, function
from agnt5._proto import invocations_pb2_grpc, worker_pb2
from agnt5._wire.records import InvokeItem
from agnt5._wire.streams import add_services

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("registry")]

_PAUSE = 1.0  # seconds the coordinator reads nothing after the worker's Drain


class SlowCoordinator:
    """Acknowledges Register, sends one Invoke, and after the worker's Drain waits `_PAUSE`
    before reading the rest of the stream: the result ids it read, then how it ended."""

    def __init__(self, invocation_id: str) -> None:
        self.invocation_id = invocation_id
        self.results: list[str] = []
        self.ended = ""

    async def Connect(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        kind, _ = await context.read()
        assert kind == "register"
        ack = worker_pb2.RegisterAck(heartbeat_interval_ms=60_000)
        await context.write(worker_pb2.CoordinatorMessage(register_ack=ack))
        await context.write([InvokeItem(self.invocation_id, "nap", b"0.2", {}, 1)])
        while True:  # bounded by the stream: until Unregister or its end
            message = await context.read()
            if message is grpc.aio.EOF:
                self.ended = "EOF"
                return
            kind, body = message
            if kind == "drain":
                await asyncio.sleep(_PAUSE)
            elif kind == "result_batch":
                self.results += [result.invocation_id for result in body]
            elif kind == "unregister":
                self.ended = "unregister"
                return


async def test_a_draining_worker_waits_for_the_coordinator_to_read_its_results() -> None:
    started = asyncio.Event()

    @function()
    async def nap(seconds: float) -> str:
        started.set()
        await asyncio.sleep(seconds)
        return "rested"

    coordinator = SlowCoordinator(unique("inv"))
    server = grpc.aio.server()
    add_services(server, coordinator, invocations_pb2_grpc.InvocationsServicer())
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        worker = Worker(unique(), coordinator_endpoint=f"http://127.0.0.1:{port}")
        serving = asyncio.create_task(worker.run())
        await asyncio.wait_for(started.wait(), 20)
        worker.stop()
        await asyncio.wait_for(serving, 30)
    finally:
        await server.stop(None)
    assert coordinator.results == [coordinator.invocation_id]
    assert coordinator.ended == "unregister"
