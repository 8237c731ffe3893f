"""Coordinator memory is bounded in bytes: queued inputs, per-service quotas, queue expiry and
the results kept in memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import httpx
import pytest
from _coordinator_support import (
    FakeWorker,
    RawWorker,
    answer,
    blocker,
    coordinator_process,
    registered,
    unique,
)

from agnt5 import Worker, function
from agnt5._proto import worker_pb2
from agnt5.client import AsyncClient
from agnt5.coordinator import Coordinator, SqliteStore
from agnt5.errors import InvocationTimeoutError, PayloadTooLargeError

pytestmark = pytest.mark.asyncio

_MB = 1_000_000


async def test_queued_input_bytes_are_bounded_in_all_and_per_service() -> None:
    limits = ("--max-queued-bytes", str(3 * _MB), "--max-queued-bytes-per-service", str(2 * _MB))
    busy, other = unique(), unique()
    release = asyncio.Event()
    with coordinator_process(*limits) as process:
        async with (
            FakeWorker(process.endpoint, busy, {"f": blocker(release)}, max_concurrency=1),
            FakeWorker(process.endpoint, other, {"f": blocker(release)}, max_concurrency=1),
            httpx.AsyncClient(base_url=process.http_url, timeout=10) as http,
        ):
            megabyte = b'"' + b"x" * (_MB - 2) + b'"'

            async def submit(service: str) -> httpx.Response:
                return await http.post(
                    f"/v1/services/{service}/functions/f/submit",
                    content=megabyte,
                    headers={"content-type": "application/json"},
                )

            statuses = [(await submit(busy)).status_code for _ in range(4)]
            assert statuses == [202, 202, 202, 429]  # one runs, two wait: the service's quota
            refused = (await submit(busy)).json()
            assert refused["code"] == "RESOURCE_EXHAUSTED"
            assert refused["error"] == (
                f"the coordinator's queue is full: {2 * _MB} bytes of input of service "
                f"'{busy}' wait for workers and this input has {_MB}, the limit is {2 * _MB} "
                "(--max-queued-bytes-per-service); retry later"
            )
            statuses = [(await submit(other)).status_code for _ in range(3)]
            assert statuses == [202, 202, 429]  # another service still queues, to the total
            assert "(--max-queued-bytes)" in (await submit(other)).json()["error"]
            release.set()


async def test_one_service_cannot_fill_the_queue_for_all() -> None:
    busy, other = unique(), unique()
    with coordinator_process("--max-queue", "4") as process:
        async with (
            FakeWorker(process.endpoint, busy, {"f": blocker(asyncio.Event())}, max_concurrency=1),
            FakeWorker(process.endpoint, other, {"f": blocker(asyncio.Event())}, max_concurrency=1),
            httpx.AsyncClient(base_url=process.http_url, timeout=10) as http,
        ):
            path = "/v1/services/{}/functions/f/submit"
            statuses = [(await http.post(path.format(busy), json=n)).status_code for n in range(4)]
            assert statuses == [202, 202, 202, 429]  # 1 running, 2 waiting: half the queue
            refused = await http.post(path.format(busy), json=0)
            assert "(--max-queue-per-service)" in refused.json()["error"]
            assert (await http.post(path.format(other), json=0)).status_code == 202


async def test_work_waiting_past_the_queue_expiry_fails() -> None:
    service = unique()
    release = asyncio.Event()
    async with Coordinator(port=0, queue_expiry=0.3) as coordinator:
        async with (
            FakeWorker(coordinator.endpoint, service, {"f": blocker(release)}, max_concurrency=1),
            AsyncClient(coordinator.endpoint, timeout=10) as client,
        ):
            running = await client.submit(service, "f")
            with pytest.raises(InvocationTimeoutError, match=r"waited 0.3 s for a worker"):
                await client.invoke(service, "f")
            release.set()
            assert await client.result(running) == "released"


async def _big(invoke: worker_pb2.Invoke) -> bytes:
    return b'"' + b"y" * 100_000 + b'"'


async def test_results_past_the_memory_budget_are_read_from_the_journal(tmp_path: Path) -> None:
    service = unique()
    store = SqliteStore(tmp_path, max_finished_bytes=250_000)
    async with Coordinator(port=0, store=store) as coordinator:
        async with (
            FakeWorker(coordinator.endpoint, service, {"f": _big}),
            AsyncClient(coordinator.endpoint, timeout=10) as client,
        ):
            ids = [await client.submit(service, "f", idempotency_key=str(n)) for n in range(6)]
            outputs = [await client.result(i) for i in ids]
            assert len(store) <= 2  # memory holds what fits the budget
            assert outputs == ["y" * 100_000] * 6
            assert await client.invoke(service, "f", idempotency_key="0") == "y" * 100_000


async def test_a_result_over_the_limit_fails_its_invocation_not_the_stream(registry: None) -> None:
    @function()
    def huge() -> str:
        return "z" * 2_000_000

    @function()
    def small() -> str:
        return "ok"

    async with Coordinator(port=0, max_output_bytes=1_000_000) as coordinator:
        worker = Worker(unique(), coordinator_endpoint=coordinator.endpoint)
        running = asyncio.create_task(worker.run())
        try:
            async with AsyncClient(coordinator.endpoint, timeout=10) as client:
                await registered(client, worker.service_name)
                with pytest.raises(PayloadTooLargeError) as caught:
                    await client.invoke(worker.service_name, "huge")
                assert caught.value.message == (
                    "the result of huge is 2000002 bytes, over the coordinator's limit of "
                    "1000000 bytes"
                )
                assert await client.invoke(worker.service_name, "small") == "ok"
                (service,) = await client.list_services()
                assert [w["worker_id"] for w in service["workers"]] == [worker.config.worker_id]
        finally:
            worker.stop()
            await running


async def test_the_coordinator_refuses_a_result_over_its_limit() -> None:
    service = unique()
    with coordinator_process("--max-output-bytes", "1000") as process:
        async with (
            grpc.aio.insecure_channel(process.grpc_address) as channel,
            AsyncClient(process.endpoint, timeout=10) as client,
        ):
            rogue = RawWorker(channel)
            await rogue.register(service)
            with pytest.raises(PayloadTooLargeError, match=r"2002 bytes, over the limit of 1000"):
                await answer(client, rogue, service, b'"' + b"z" * 2000 + b'"')
            assert await answer(client, rogue, service, b"1") == 1  # the same stream
