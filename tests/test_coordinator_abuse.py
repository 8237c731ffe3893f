"""Misbehaving workers (garbage, forged or repeated results, silence) harm no other invocation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import orjson
import pytest
import pytest_asyncio
from _coordinator_support import FakeWorker, blocker, echo, unique

from agnt5._proto import common_pb2, worker_pb2
from agnt5.client import AsyncClient
from agnt5.coordinator import Coordinator
from agnt5.errors import InvocationTimeoutError

pytestmark = pytest.mark.asyncio

_CONNECT = "/agnt5.v1.WorkerCoordinator/Connect"


def _identity(data: bytes) -> bytes:
    return data


def _register(service: str) -> worker_pb2.WorkerMessage:
    config = common_pb2.ComponentConfig(retries=3)
    component = common_pb2.Component(name="f", kind="function", config=config)
    register = worker_pb2.Register(
        service_name=service, worker_id=unique("rogue"), max_concurrency=4, components=[component]
    )
    return worker_pb2.WorkerMessage(register=register)


def _result(invocation_id: str, attempt: int, output: Any) -> worker_pb2.WorkerMessage:
    result = worker_pb2.Result(
        invocation_id=invocation_id, attempt=attempt, output=orjson.dumps(output)
    )
    return worker_pb2.WorkerMessage(result_batch=worker_pb2.ResultBatch(results=[result]))


class _Rogue:
    """A worker stream driven by hand: raw bytes out, raw frames in, heartbeats never sent."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        method = channel.stream_stream(
            _CONNECT, request_serializer=_identity, response_deserializer=_identity
        )
        self.call: Any = method()

    async def register(self, service: str) -> None:
        await self.send(_register(service).SerializeToString())
        assert _kind(await self.read()) == "register_ack"

    async def send(self, data: bytes) -> None:
        await self.call.write(data)

    async def read(self, timeout: float = 10.0) -> Any:
        return await asyncio.wait_for(self.call.read(), timeout)

    async def invokes(self) -> list[worker_pb2.Invoke]:
        """The invocations of the next InvokeBatch (other frames skipped; bounded)."""
        for _ in range(100):
            message = worker_pb2.CoordinatorMessage.FromString(await self.read())
            if message.WhichOneof("message") == "invoke_batch":
                return list(message.invoke_batch.invocations)
        raise AssertionError("no InvokeBatch in 100 frames")

    async def ended(self, timeout: float = 10.0) -> bool:
        """Whether the coordinator ends the stream within ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            for _ in range(1000):  # drain whatever it still sends
                try:
                    if await self.call.read() is grpc.aio.EOF:
                        return True
                except grpc.aio.AioRpcError:
                    return True
        return False


def _kind(frame: bytes) -> str | None:
    return worker_pb2.CoordinatorMessage.FromString(frame).WhichOneof("message")


@pytest_asyncio.fixture
async def coordinator() -> AsyncIterator[Coordinator]:
    async with Coordinator(port=0, heartbeat_interval=0.1, heartbeat_timeout=0.6) as running:
        yield running


@pytest_asyncio.fixture
async def channel(coordinator: Coordinator) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(coordinator.endpoint.removeprefix("http://")) as opened:
        yield opened


async def test_garbage_disconnects_the_worker_and_its_work_runs_elsewhere(
    coordinator: Coordinator, channel: grpc.aio.Channel
) -> None:
    service = unique()
    rogue = _Rogue(channel)
    await rogue.register(service)
    async with AsyncClient(coordinator.endpoint, timeout=20) as client:
        pending = asyncio.create_task(client.invoke(service, "f", {"n": 1}))
        assert len(await rogue.invokes()) == 1
        async with FakeWorker(coordinator.endpoint, service, {"f": echo}) as good:
            await rogue.send(b"\xff\xfe not a protobuf \x00\x01" * 8)
            assert await rogue.ended()
            assert await pending == {"n": 1}
            assert len(good.invokes) == 1 and good.invokes[0].attempt == 2
            assert await client.invoke(service, "f", [2]) == [2]


async def test_forged_and_unknown_results_are_ignored(
    coordinator: Coordinator, channel: grpc.aio.Channel
) -> None:
    service = unique()
    release = asyncio.Event()
    async with (
        FakeWorker(coordinator.endpoint, service, {"f": blocker(release)}) as honest,
        AsyncClient(coordinator.endpoint, timeout=20) as client,
    ):
        invocation_id = await client.submit(service, "f")
        await honest.wait_for_invokes(1)
        rogue = _Rogue(channel)
        await rogue.register(service)
        await rogue.send(_result(invocation_id, 1, "forged").SerializeToString())
        await rogue.send(_result("no-such-invocation", 1, "x").SerializeToString())
        with pytest.raises(InvocationTimeoutError, match="did not finish"):
            await client.result(invocation_id, timeout=0.3)  # the forgery changed nothing
        release.set()
        assert await client.result(invocation_id) == "released"  # the honest worker's


async def test_a_duplicate_result_keeps_the_first(
    coordinator: Coordinator, channel: grpc.aio.Channel
) -> None:
    service = unique()
    rogue = _Rogue(channel)
    await rogue.register(service)
    async with AsyncClient(coordinator.endpoint, timeout=20) as client:
        pending = asyncio.create_task(client.invoke(service, "f", idempotency_key="k"))
        (invoke,) = await rogue.invokes()
        await rogue.send(_result(invoke.invocation_id, invoke.attempt, "first").SerializeToString())
        await rogue.send(_result(invoke.invocation_id, invoke.attempt, "again").SerializeToString())
        assert await pending == "first"
        assert await client.result(invoke.invocation_id) == "first"
        assert await client.invoke(service, "f", idempotency_key="k") == "first"


async def test_a_silent_worker_is_dropped_and_its_work_redelivered(
    coordinator: Coordinator, channel: grpc.aio.Channel
) -> None:
    service = unique()
    rogue = _Rogue(channel)
    await rogue.register(service)
    async with AsyncClient(coordinator.endpoint, timeout=20) as client:
        pending = asyncio.create_task(client.invoke(service, "f", "work"))
        assert len(await rogue.invokes()) == 1
        async with FakeWorker(coordinator.endpoint, service, {"f": echo}, max_concurrency=1):
            assert await rogue.ended(timeout=5)  # no heartbeat within 0.6 s
            assert await pending == "work"
