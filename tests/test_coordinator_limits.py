"""Out-of-range numbers from clients and workers are refused where they enter, naming the field,
and never reach the journal or a worker's stream."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio
from _coordinator_support import (
    FakeWorker,
    RawWorker,
    answer,
    coordinator_process,
    echo,
    register_message,
    registered,
    results_after_restart,
    unique,
)

from agnt5 import Worker, function
from agnt5._proto import common_pb2, invocations_pb2, invocations_pb2_grpc
from agnt5.client import AsyncClient
from agnt5.coordinator import Coordinator
from agnt5.errors import FunctionFailedError, InvalidArgumentError, UnavailableError

pytestmark = pytest.mark.asyncio

_YEAR_MS = 365 * 24 * 3600 * 1000


async def test_http_numbers_out_of_range_are_refused_and_the_journal_goes_on(
    tmp_path: Path,
) -> None:
    service, data = unique(), str(tmp_path / "data")
    with coordinator_process("--data-dir", data) as first:
        async with (
            FakeWorker(first.endpoint, service, {"f": echo}),
            httpx.AsyncClient(base_url=first.http_url, timeout=10) as http,
        ):
            path = f"/v1/services/{service}/functions/f"
            for query in ("timeout=1e300", "timeout=nan", "timeout=-1", "wait=inf"):
                refused = await http.post(f"{path}/invoke?{query}", json=1)
                assert refused.status_code == 400, query
                name = query.partition("=")[0]
                assert refused.json()["error"].startswith(
                    f"query parameter {name!r} must be a number of seconds from 0 to 31536000"
                )
            refused = await http.get("/v1/invocations/x?wait=1e400")
            assert refused.status_code == 400 and "'wait'" in refused.json()["error"]
            accepted = await http.post(f"{path}/submit?timeout=31536000", json=7)
            invocation_id = accepted.json()["invocation_id"]
        first.kill()
    assert await results_after_restart(data, service, [invocation_id]) == [7]


@pytest_asyncio.fixture
async def coordinator() -> AsyncIterator[Coordinator]:
    async with Coordinator(port=0) as running:
        yield running


async def test_grpc_numbers_out_of_range_are_refused(coordinator: Coordinator) -> None:
    service = unique()
    target = coordinator.endpoint.removeprefix("http://")
    async with (
        FakeWorker(coordinator.endpoint, service, {"f": echo}) as worker,
        grpc.aio.insecure_channel(target) as channel,
        AsyncClient(coordinator.endpoint, timeout=10) as client,
    ):
        stub = invocations_pb2_grpc.InvocationsStub(channel)
        calls = [
            (stub.Submit, invocations_pb2.InvokeRequest(service=service, function="f", timeout_ms=2**63), "timeout_ms"),
            (stub.Invoke, invocations_pb2.InvokeRequest(service=service, function="f", wait_ms=2**64 - 1), "wait_ms"),
            (stub.GetResult, invocations_pb2.GetResultRequest(invocation_id="x", wait_ms=_YEAR_MS + 1), "wait_ms"),
        ]  # fmt: skip
        for method, request, field in calls:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await method(request, timeout=10)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert caught.value.details().startswith(
                f"{field} must be 0 to {_YEAR_MS} milliseconds"
            )
        with pytest.raises(InvalidArgumentError, match="invocation id must be at most 256"):
            await client.result("x" * 100_000)
        outcomes = [r async for r in client.invoke_many(service, "f", [1, 2], timeout=1e13)]
        assert all(isinstance(r.error, InvalidArgumentError) for r in outcomes)
        assert "timeout_ms must be 0 to" in str(outcomes[0].error)
        assert [r.output async for r in client.invoke_many(service, "f", [3])] == [3]
        assert len(worker.invokes) == 1  # nothing bad reached the worker


@pytest.mark.parametrize(
    ("backoff", "field"),
    [
        (common_pb2.Backoff(initial_ms=2**64 - 1), "backoff.initial_ms"),
        (common_pb2.Backoff(max_ms=_YEAR_MS + 1), "backoff.max_ms"),
        (common_pb2.Backoff(multiplier=math.inf), "backoff.multiplier"),
    ],
)
async def test_a_register_out_of_range_is_refused(
    coordinator: Coordinator, backoff: common_pb2.Backoff, field: str
) -> None:
    async with grpc.aio.insecure_channel(coordinator.endpoint.removeprefix("http://")) as channel:
        worker = RawWorker(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await worker.register(unique(), common_pb2.ComponentConfig(backoff=backoff))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"Register.components['f'].config.{field} must be" in caught.value.details()


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("service_name", "svc\n2026-01-01 INFO forged", "Register.service_name must not contain"),
        ("worker_id", "w\x00", "Register.worker_id must not contain control characters"),
        ("service_version", "1.0\r", "Register.service_version must not contain control"),
        ("name", "f\x1b[2J", "Register.components['f\\x1b[2J'].name must not contain control"),
        ("name", "", "Register.components: a component needs a name"),
    ],
)
async def test_a_register_name_that_is_not_printable_is_refused(
    coordinator: Coordinator, field: str, value: str, problem: str
) -> None:
    """Names reach the coordinator's log and listings: a newline in one would forge log lines."""
    message = register_message(unique())
    setattr(message.register.components[0] if field == "name" else message.register, field, value)
    async with grpc.aio.insecure_channel(coordinator.endpoint.removeprefix("http://")) as channel:
        worker = RawWorker(channel)
        await worker.send(message)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await worker.read()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert problem in caught.value.details()


async def test_a_huge_backoff_multiplier_caps_at_the_maximum(coordinator: Coordinator) -> None:
    service = unique()
    attempts = []

    async def flaky(invoke: object) -> bytes:
        attempts.append(invoke)
        if len(attempts) < 4:
            raise UnavailableError("try again")
        return b'"done"'

    async with (
        FakeWorker(coordinator.endpoint, service, {"f": flaky}, multiplier=1e300),
        AsyncClient(coordinator.endpoint, timeout=20) as client,
    ):
        assert await client.invoke(service, "f") == "done"
        assert len(attempts) == 4


async def test_a_result_out_of_range_fails_its_invocation_only(tmp_path: Path) -> None:
    service = unique()
    with coordinator_process("--data-dir", str(tmp_path)) as process:
        async with (
            grpc.aio.insecure_channel(process.grpc_address) as channel,
            AsyncClient(process.endpoint, timeout=10) as client,
        ):
            rogue = RawWorker(channel)
            await rogue.register(service)
            with pytest.raises(FunctionFailedError, match="duration_us must be 0 to"):
                await answer(client, rogue, service, b"1", duration_us=2**64 - 1)
            # answered once journaled: the journal still commits
            assert await answer(client, rogue, service, b"2", duration_us=5) == 2


async def test_an_invocation_the_codec_cannot_encode_fails_alone(coordinator: Coordinator) -> None:
    service = unique()
    async with (
        FakeWorker(coordinator.endpoint, service, {"f": echo}) as worker,
        AsyncClient(coordinator.endpoint, timeout=10) as client,
    ):
        scheduler = coordinator._scheduler  # no client can send this: it bypasses the edge
        broken, _ = scheduler.submit(service, "f", b"1", metadata={"k": "\ud800"})
        assert await scheduler.wait(broken, 10)
        assert broken.error is not None and broken.error["code"] == "INVALID_ARGUMENT"
        assert "cannot be sent to a worker" in broken.error["message"]
        assert await client.invoke(service, "f", 2) == 2
        assert [invoke.input for invoke in worker.invokes] == [b"2"]  # same stream, never broken


async def test_a_worker_error_that_is_not_utf8_fails_its_invocation_only(
    coordinator: Coordinator, registry: None
) -> None:
    @function()
    def garbled() -> None:
        raise ValueError("broken \udc80 text")

    @function()
    def fine() -> str:
        return "ok"

    worker = Worker(unique(), coordinator_endpoint=coordinator.endpoint)
    running = asyncio.create_task(worker.run())
    try:
        async with AsyncClient(coordinator.endpoint, timeout=10) as client:
            await registered(client, worker.service_name)
            with pytest.raises(FunctionFailedError, match=r"broken \? text"):
                await client.invoke(worker.service_name, "garbled")
            assert await client.invoke(worker.service_name, "fine") == "ok"
    finally:
        worker.stop()
        await running
