"""`AsyncClient.invoke` and `invoke_many` over one ``InvokeStream``: batched both ways."""

from __future__ import annotations

import asyncio

import pytest
from _coordinator_support import FakeWorker, blocker, echo, sleeper, unique

from agnt5._proto import worker_pb2
from agnt5.client import AsyncClient, BatchResult
from agnt5.coordinator import Coordinator
from agnt5.errors import (
    InvalidArgumentError,
    InvocationTimeoutError,
    NotFoundError,
    UnauthenticatedError,
    UnavailableError,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.hot_path]


async def collect(client: AsyncClient, *args: object, **kwargs: object) -> list[BatchResult]:
    results = [r async for r in client.invoke_many(*args, **kwargs)]  # type: ignore[arg-type]
    return sorted(results, key=lambda r: r.index)


async def test_every_input_gets_its_output_in_batches() -> None:
    service = unique()
    async with (
        Coordinator(port=0) as coordinator,
        FakeWorker(coordinator.endpoint, service, {"f": echo}, max_concurrency=64) as worker,
        AsyncClient(coordinator.endpoint) as client,
    ):
        results = await collect(client, service, "f", [{"n": n} for n in range(300)], window=100)
        assert [r.result() for r in results] == [{"n": n} for n in range(300)]
        assert len({r.invocation_id for r in results}) == 300
        assert worker.max_in_flight <= 64
        again = await collect(client, service, "f", ["once more"])  # the stream is reused
        assert again[0].output == "once more"


async def test_invoke_rides_the_one_open_stream() -> None:
    service = unique()
    async with (
        Coordinator(port=0) as coordinator,
        FakeWorker(coordinator.endpoint, service, {"f": echo}, max_concurrency=64),
        AsyncClient(coordinator.endpoint) as client,
    ):
        assert await client.invoke(service, "f", {"n": 0}) == {"n": 0}
        stream = client._stream
        outputs = await asyncio.gather(*(client.invoke(service, "f", n) for n in range(200)))
        batch = await collect(client, service, "f", ["many"])
        assert outputs == list(range(200)) and batch[0].output == "many"
        assert client._stream is stream and not stream.broken
        with pytest.raises(NotFoundError, match="nope"):
            await client.invoke(service, "nope")
        assert client._stream is stream  # a refused call leaves the stream open


async def test_failures_are_results_not_exceptions() -> None:
    service = unique()

    async def refuse(invoke: worker_pb2.Invoke) -> bytes:
        raise InvalidArgumentError("no thanks")

    async with (
        Coordinator(port=0) as coordinator,
        FakeWorker(coordinator.endpoint, service, {"f": echo, "bad": refuse}),
        AsyncClient(coordinator.endpoint) as client,
    ):
        [bad] = await collect(client, service, "bad", [1])
        [missing] = await collect(client, service, "nope", [1])
        [ok] = await collect(client, service, "f", [None])
    assert isinstance(bad.error, InvalidArgumentError) and bad.error.message == "no thanks"
    with pytest.raises(InvalidArgumentError, match="no thanks"):
        bad.result()
    assert isinstance(missing.error, NotFoundError) and missing.invocation_id == ""
    assert ok.error is None and ok.output is None


async def test_idempotency_keys_dedupe_per_item() -> None:
    service = unique()
    async with (
        Coordinator(port=0) as coordinator,
        FakeWorker(coordinator.endpoint, service, {"f": echo}) as worker,
        AsyncClient(coordinator.endpoint) as client,
    ):
        results = await collect(client, service, "f", [1, 2, 1], idempotency_keys=["k", None, "k"])
        assert results[0].invocation_id == results[2].invocation_id != results[1].invocation_id
        assert len(worker.invokes) == 2


async def test_deadline_passes_as_timeout_result() -> None:
    service = unique()
    async with (
        Coordinator(port=0) as coordinator,
        FakeWorker(coordinator.endpoint, service, {"slow": sleeper(5)}),
        AsyncClient(coordinator.endpoint) as client,
    ):
        [result] = await collect(client, service, "slow", [1], timeout=0.2)
    assert isinstance(result.error, InvocationTimeoutError)


async def test_lost_coordinator_fails_unfinished_calls_and_the_next_call_reconnects() -> None:
    service = unique()
    never = asyncio.Event()
    coordinator = Coordinator(port=0)
    await coordinator.start()
    try:
        async with FakeWorker(coordinator.endpoint, service, {"f": blocker(never)}) as worker:
            client = AsyncClient(coordinator.endpoint)
            try:
                results = asyncio.create_task(collect(client, service, "f", [1, 2]))
                await worker.wait_for_invokes(2)
                await coordinator.stop(grace=0.5)
                done = await asyncio.wait_for(results, 10)
                assert all(isinstance(r.error, UnavailableError) for r in done)
                [again] = await collect(client, service, "f", [1], timeout=1)
                assert isinstance(again.error, UnavailableError)
            finally:
                await client.close()
    finally:
        await coordinator.stop()


async def test_stream_needs_the_api_key() -> None:
    async with (
        Coordinator(port=0, api_key="secret") as coordinator,
        AsyncClient(coordinator.endpoint) as client,
    ):
        [result] = await collect(client, "svc", "f", [1])
    assert isinstance(result.error, UnauthenticatedError)


async def test_window_must_be_positive() -> None:
    async with AsyncClient("http://127.0.0.1:1") as client:
        with pytest.raises(ValueError, match="window"):
            await collect(client, "svc", "f", [1], window=0)
