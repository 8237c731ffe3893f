"""Workers and clients are different principals: worker keys, client keys, keys limited to some
services, and no taking over a connected worker's id."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from _coordinator_support import CoordinatorProcess, FakeWorker, coordinator_process, echo, unique

from agnt5.client import AsyncClient
from agnt5.errors import UnauthenticatedError

pytestmark = pytest.mark.asyncio

WORKER_KEY, CLIENT_KEY, SCOPED_WORKER, SCOPED_CLIENT = "w0rker", "cl1ent", "w-for-a", "c-for-a"
SERVICE_A = unique("a")


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoordinatorProcess]:
    """Keys from a flag, a file and the environment; none of them on the command line twice."""
    key_file = tmp_path_factory.mktemp("keys") / "workers"
    key_file.write_text(f"# worker keys\n{WORKER_KEY}\n\n{SCOPED_WORKER} {SERVICE_A}\n")
    env = {"AGNT5_CLIENT_KEY": f"{CLIENT_KEY}\n{SCOPED_CLIENT} {SERVICE_A}"}
    with coordinator_process("--worker-key-file", str(key_file), env=env) as process:
        yield process


def _command_line(process: CoordinatorProcess) -> str:
    return Path(f"/proc/{process.process.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


async def test_keys_from_a_file_or_the_environment_stay_out_of_ps(
    coordinator: CoordinatorProcess,
) -> None:
    command_line = _command_line(coordinator)
    assert "--worker-key-file" in command_line
    assert all(key not in command_line for key in (WORKER_KEY, CLIENT_KEY, SCOPED_CLIENT))


async def _refused_worker(coordinator: CoordinatorProcess, service: str, key: str | None) -> str:
    refusal = await FakeWorker(coordinator.endpoint, service, {"f": echo}, api_key=key).refusal()
    assert refusal.code() == grpc.StatusCode.UNAUTHENTICATED
    return refusal.details() or ""


async def test_only_a_worker_key_registers_workers(coordinator: CoordinatorProcess) -> None:
    service = unique()
    assert await _refused_worker(coordinator, service, CLIENT_KEY) == "this key is not a worker key"
    assert "missing or wrong API key" in await _refused_worker(coordinator, service, None)
    async with (
        FakeWorker(coordinator.endpoint, service, {"f": echo}, api_key=WORKER_KEY),
        AsyncClient(coordinator.endpoint, CLIENT_KEY, timeout=10) as client,
    ):
        assert await client.invoke(service, "f", 1) == 1


async def test_only_a_client_key_invokes(coordinator: CoordinatorProcess) -> None:
    service = unique()
    async with (
        FakeWorker(coordinator.endpoint, service, {"f": echo}, api_key=WORKER_KEY),
        AsyncClient(coordinator.endpoint, WORKER_KEY, timeout=10) as impostor,
        httpx.AsyncClient(base_url=coordinator.http_url, timeout=10) as http,
    ):
        with pytest.raises(UnauthenticatedError, match="this key is not a client key"):
            await impostor.invoke(service, "f", 1)
        with pytest.raises(UnauthenticatedError, match="this key is not a client key"):
            await impostor.list_services()  # the worker ids it would read are not its to see
        path = f"/v1/services/{service}/functions/f/invoke"
        refused = await http.post(path, json=1, headers={"authorization": f"Bearer {WORKER_KEY}"})
        assert refused.status_code == 401
        allowed = await http.post(path, json=1, headers={"authorization": f"Bearer {CLIENT_KEY}"})
        assert allowed.status_code == 200 and allowed.json()["result"] == 1


async def test_keys_limited_to_a_service_reach_only_it(coordinator: CoordinatorProcess) -> None:
    other = unique()
    refusal = await _refused_worker(coordinator, other, SCOPED_WORKER)
    assert refusal == f"this key may not register workers for service {other!r}"
    async with (
        FakeWorker(coordinator.endpoint, SERVICE_A, {"f": echo}, api_key=SCOPED_WORKER),
        FakeWorker(coordinator.endpoint, other, {"f": echo}, api_key=WORKER_KEY),
        AsyncClient(coordinator.endpoint, SCOPED_CLIENT, timeout=10) as scoped,
        AsyncClient(coordinator.endpoint, CLIENT_KEY, timeout=10) as full,
    ):
        assert await scoped.invoke(SERVICE_A, "f", "a") == "a"
        with pytest.raises(UnauthenticatedError, match=f"may not invoke service {other!r}"):
            await scoped.invoke(other, "f", "b")
        outcomes = [r async for r in scoped.invoke_many(other, "f", [1])]
        assert isinstance(outcomes[0].error, UnauthenticatedError)
        assert [s["name"] for s in await scoped.list_services()] == [SERVICE_A]
        elsewhere = await full.submit(other, "f", "c")
        with pytest.raises(UnauthenticatedError, match="may not read results of"):
            await scoped.result(elsewhere)
        assert {s["name"] for s in await full.list_services()} >= {SERVICE_A, other}


async def test_a_connected_workers_id_cannot_be_taken_over(coordinator: CoordinatorProcess) -> None:
    service = unique()
    async with (
        FakeWorker(coordinator.endpoint, service, {"f": echo}, api_key=WORKER_KEY) as honest,
        AsyncClient(coordinator.endpoint, CLIENT_KEY, timeout=10) as client,
    ):
        rogue = FakeWorker(coordinator.endpoint, service, {"f": echo}, api_key=WORKER_KEY)
        rogue.worker_id = honest.worker_id
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await rogue.start()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert f"worker id {honest.worker_id!r} is connected" in (caught.value.details() or "")
        assert await client.invoke(service, "f", 2) == 2
        assert len(honest.invokes) == 1
        await honest.disconnect()
        successor = await _start_as(coordinator, service, honest.worker_id)
        try:  # the id is free once its worker is gone
            assert await client.invoke(service, "f", 3) == 3
        finally:
            await successor.disconnect()


async def _start_as(coordinator: CoordinatorProcess, service: str, worker_id: str) -> FakeWorker:
    """A worker registered with ``worker_id``, once the coordinator lets the id go."""
    for _ in range(50):  # bounded: the coordinator notices a closed stream within moments
        worker = FakeWorker(coordinator.endpoint, service, {"f": echo}, api_key=WORKER_KEY)
        worker.worker_id = worker_id
        try:
            return await worker.start()
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
            await asyncio.sleep(0.1)
    raise AssertionError(f"worker id {worker_id} was never free again")
