"""Misbehaving workers (garbage, forged, repeated or broken results, silence) harm no other
invocation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from _coordinator_support import (
    FakeWorker,
    RawWorker,
    answer,
    blocker,
    echo,
    result_message,
    unique,
)

from agnt5.client import AsyncClient
from agnt5.coordinator import Coordinator
from agnt5.errors import InvocationTimeoutError, OutputNotSerializableError

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def coordinator() -> AsyncIterator[Coordinator]:
    async with Coordinator(port=0, heartbeat_interval=0.1, heartbeat_timeout=0.6) as running:
        yield running


@pytest_asyncio.fixture
async def channel(coordinator: Coordinator) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(coordinator.endpoint.removeprefix("http://")) as opened:
        yield opened


@pytest_asyncio.fixture
async def registered_rogue(channel: grpc.aio.Channel) -> tuple[str, RawWorker]:
    """A hand-driven worker registered for a service of its own, and that service."""
    service, worker = unique(), RawWorker(channel)
    await worker.register(service)
    return service, worker


async def test_garbage_disconnects_the_worker_and_its_work_runs_elsewhere(
    coordinator: Coordinator, registered_rogue: tuple[str, RawWorker]
) -> None:
    service, rogue = registered_rogue
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
        rogue = RawWorker(channel)
        await rogue.register(service)
        await rogue.send(result_message(invocation_id, 1, b'"forged"'))
        await rogue.send(result_message("no-such-invocation", 1, b'"x"'))
        with pytest.raises(InvocationTimeoutError, match="did not finish"):
            await client.result(invocation_id, timeout=0.3)  # the forgery changed nothing
        release.set()
        assert await client.result(invocation_id) == "released"  # the honest worker's


async def test_a_duplicate_result_keeps_the_first(
    coordinator: Coordinator, registered_rogue: tuple[str, RawWorker]
) -> None:
    service, rogue = registered_rogue
    async with AsyncClient(coordinator.endpoint, timeout=20) as client:
        pending = asyncio.create_task(client.invoke(service, "f", idempotency_key="k"))
        (invoke,) = await rogue.invokes()
        await rogue.send(result_message(invoke.invocation_id, invoke.attempt, b'"first"'))
        await rogue.send(result_message(invoke.invocation_id, invoke.attempt, b'"again"'))
        assert await pending == "first"
        assert await client.result(invoke.invocation_id) == "first"
        assert await client.invoke(service, "f", idempotency_key="k") == "first"


async def test_a_silent_worker_is_dropped_and_its_work_redelivered(
    coordinator: Coordinator, registered_rogue: tuple[str, RawWorker]
) -> None:
    service, rogue = registered_rogue
    async with AsyncClient(coordinator.endpoint, timeout=20) as client:
        pending = asyncio.create_task(client.invoke(service, "f", "work"))
        assert len(await rogue.invokes()) == 1
        async with FakeWorker(coordinator.endpoint, service, {"f": echo}, max_concurrency=1):
            assert await rogue.ended(timeout=5)  # no heartbeat within 0.6 s
            assert await pending == "work"


async def test_a_result_that_is_not_json_fails_its_invocation(
    coordinator: Coordinator, registered_rogue: tuple[str, RawWorker]
) -> None:
    service, rogue = registered_rogue
    async with AsyncClient(coordinator.endpoint, timeout=20) as client:
        with pytest.raises(OutputNotSerializableError, match="that is not valid JSON"):
            await answer(client, rogue, service, b'{"broken')
        assert await answer(client, rogue, service, b'{"fine": 1}') == {"fine": 1}  # same stream
