"""A coordinator subprocess routes, queues, retries and re-delivers within worker capacity."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import pytest
from _coordinator_support import (
    CoordinatorProcess,
    FakeWorker,
    blocker,
    coordinator_process,
    echo,
    eventually,
    sleeper,
    unique,
)

from agnt5._proto import worker_pb2
from agnt5.client import AsyncClient
from agnt5.errors import (
    FunctionFailedError,
    InvocationTimeoutError,
    NotFoundError,
    ResourceExhaustedError,
    UnavailableError,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.hot_path]


@pytest.fixture(scope="module")
def coordinator() -> Iterator[CoordinatorProcess]:
    with coordinator_process(
        "--max-queue", "3", "--max-queue-per-service", "3", "--heartbeat-timeout", "1.5"
    ) as process:
        yield process


async def test_routes_to_workers_without_exceeding_max_concurrency(
    coordinator: CoordinatorProcess,
) -> None:
    service = unique()
    handlers = {"work": sleeper(0.02)}
    async with (
        FakeWorker(coordinator.endpoint, service, handlers, max_concurrency=3) as a,
        FakeWorker(coordinator.endpoint, service, handlers, max_concurrency=2) as b,
        AsyncClient(coordinator.endpoint) as client,
    ):
        # 2 workers x 5 slots and at most 3 queued: keep 8 requests open at a time
        limit = asyncio.Semaphore(8)

        async def one(i: int) -> object:
            async with limit:
                return await client.invoke(service, "work", {"i": i})

        results = await asyncio.gather(*(one(i) for i in range(80)))
    assert results == [{"i": i} for i in range(80)]
    assert a.max_in_flight <= 3 and b.max_in_flight <= 2
    assert len(a.invokes) + len(b.invokes) == 80
    assert a.invokes and b.invokes


async def test_full_queue_is_resource_exhausted(coordinator: CoordinatorProcess) -> None:
    service = unique()
    release = asyncio.Event()
    async with (
        FakeWorker(
            coordinator.endpoint, service, {"hold": blocker(release)}, max_concurrency=1
        ) as worker,
        AsyncClient(coordinator.endpoint) as client,
    ):
        accepted = [await client.submit(service, "hold") for _ in range(4)]  # 1 running + 3 queued
        with pytest.raises(ResourceExhaustedError) as caught:
            await client.submit(service, "hold")
        assert caught.value.retryable
        release.set()
        assert [await client.result(i, timeout=10) for i in accepted] == ["released"] * 4
        assert worker.max_in_flight == 1


async def test_lost_worker_work_is_redelivered_with_next_attempt(
    coordinator: CoordinatorProcess,
) -> None:
    service = unique()
    never = asyncio.Event()
    async with AsyncClient(coordinator.endpoint) as client:
        first = await FakeWorker(
            coordinator.endpoint, service, {"job": blocker(never)}, max_concurrency=2
        ).start()
        try:
            ids = [await client.submit(service, "job", {"n": n}) for n in range(2)]
            await first.wait_for_invokes(2)
        finally:
            await first.disconnect()
        async with FakeWorker(coordinator.endpoint, service, {"job": echo}) as second:
            assert [await client.result(i, timeout=10) for i in ids] == [{"n": 0}, {"n": 1}]
        assert sorted(inv.invocation_id for inv in second.invokes) == sorted(ids)
        assert {inv.attempt for inv in second.invokes} == {2}
        assert {inv.attempt for inv in first.invokes} == {1}


async def test_redelivery_stops_at_the_retry_budget(coordinator: CoordinatorProcess) -> None:
    service = unique()
    never = asyncio.Event()
    async with AsyncClient(coordinator.endpoint) as client:
        worker = await FakeWorker(
            coordinator.endpoint, service, {"job": blocker(never)}, retries=0
        ).start()
        try:
            invocation_id = await client.submit(service, "job")
            await worker.wait_for_invokes(1)
        finally:
            await worker.disconnect()
        with pytest.raises(UnavailableError, match="was lost"):
            await client.result(invocation_id, timeout=10)


async def test_retryable_failure_is_retried_after_backoff(coordinator: CoordinatorProcess) -> None:
    service = unique()

    async def flaky(invoke: worker_pb2.Invoke) -> bytes:
        if invoke.attempt < 3:
            raise FunctionFailedError("try again", retryable=True)
        return orjson.dumps({"attempt": invoke.attempt})

    async def broken(invoke: worker_pb2.Invoke) -> bytes:
        raise FunctionFailedError("Function broken failed: no")

    async with (
        FakeWorker(coordinator.endpoint, service, {"flaky": flaky, "broken": broken}) as worker,
        AsyncClient(coordinator.endpoint) as client,
    ):
        assert await client.invoke(service, "flaky", timeout=10) == {"attempt": 3}
        with pytest.raises(FunctionFailedError, match="Function broken failed: no"):
            await client.invoke(service, "broken", timeout=10)
    assert [i.attempt for i in worker.invokes if i.component == "flaky"] == [1, 2, 3]
    assert [i.attempt for i in worker.invokes if i.component == "broken"] == [1]


async def test_deadline_times_out_and_cancels_the_attempt(coordinator: CoordinatorProcess) -> None:
    service = unique()
    never = asyncio.Event()
    async with (
        FakeWorker(coordinator.endpoint, service, {"slow": blocker(never)}) as worker,
        AsyncClient(coordinator.endpoint) as client,
    ):
        with pytest.raises(InvocationTimeoutError, match="deadline") as caught:
            await client.invoke(service, "slow", timeout=0.3)
        assert caught.value.code == "TIMEOUT"
        await eventually(lambda: len(worker.cancelled) == 1)
        assert worker.invokes[0].deadline_unix_ms > 0
        await eventually(lambda: worker.in_flight == 0)


async def test_idempotency_key_dedupes(coordinator: CoordinatorProcess) -> None:
    service = unique()
    async with (
        FakeWorker(coordinator.endpoint, service, {"once": echo}) as worker,
        AsyncClient(coordinator.endpoint) as client,
    ):
        first = await client.submit(service, "once", {"v": 1}, idempotency_key="k1")
        again = await client.submit(service, "once", {"v": 1}, idempotency_key="k1")
        assert first == again
        assert await client.invoke(service, "once", {"v": 1}, idempotency_key="k1") == {"v": 1}
        assert await client.invoke(service, "once", {"v": 4}, idempotency_key="k2") == {"v": 4}
    assert [i.input for i in worker.invokes] == [b'{"v":1}', b'{"v":4}']


async def test_unknown_service_function_or_invocation_is_not_found(
    coordinator: CoordinatorProcess,
) -> None:
    service = unique()
    async with (
        FakeWorker(coordinator.endpoint, service, {"known": echo}),
        AsyncClient(coordinator.endpoint) as client,
    ):
        with pytest.raises(NotFoundError, match="Service"):
            await client.invoke(unique("nope"), "known")
        with pytest.raises(NotFoundError, match="Function 'missing'"):
            await client.submit(service, "missing")
        with pytest.raises(NotFoundError, match="Invocation"):
            await client.result("no-such-id", timeout=1)


async def test_silent_worker_is_dropped_and_its_work_redelivered(
    coordinator: CoordinatorProcess,
) -> None:
    service = unique()
    never = asyncio.Event()
    async with AsyncClient(coordinator.endpoint) as client:
        silent_worker = FakeWorker(
            coordinator.endpoint, service, {"job": blocker(never)}, heartbeat=None
        )
        async with silent_worker as silent:
            invocation_id = await client.submit(service, "job", [1])
            await silent.wait_for_invokes(1)
            async with FakeWorker(coordinator.endpoint, service, {"job": echo}) as alive:
                assert await client.result(invocation_id, timeout=10) == [1]
                assert [i.attempt for i in alive.invokes] == [2]
                services = {s["name"]: s for s in await client.list_services()}
                assert [w["worker_id"] for w in services[service]["workers"]] == [alive.worker_id]


async def test_draining_worker_gets_no_new_work(coordinator: CoordinatorProcess) -> None:
    service = unique()
    async with (
        FakeWorker(coordinator.endpoint, service, {"f": echo}) as draining,
        FakeWorker(coordinator.endpoint, service, {"f": echo}) as other,
        AsyncClient(coordinator.endpoint) as client,
    ):
        await draining.drain()
        for _ in range(500):  # until the coordinator has read the Drain (bounded: ~10 s)
            services = {s["name"]: s for s in await client.list_services()}
            if {w["worker_id"]: w["draining"] for w in services[service]["workers"]}[
                draining.worker_id
            ]:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the coordinator never marked the worker as draining")
        for n in range(10):
            assert await client.invoke(service, "f", n) == n
    assert not draining.invokes and len(other.invokes) == 10
