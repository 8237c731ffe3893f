"""With an API key, the coordinator refuses workers and clients that do not send it."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest
from _coordinator_support import CoordinatorProcess, FakeWorker, coordinator_process, echo, unique

from agnt5._wire.status import error_from_rpc
from agnt5.client import AsyncClient
from agnt5.errors import UnauthenticatedError

pytestmark = pytest.mark.asyncio

KEY = "s3cret"


@pytest.fixture(scope="module")
def coordinator() -> Iterator[CoordinatorProcess]:
    with coordinator_process("--api-key", KEY) as process:
        yield process


@pytest.mark.parametrize("api_key", [None, "wrong"])
async def test_worker_without_the_key_is_refused(
    coordinator: CoordinatorProcess, api_key: str | None
) -> None:
    worker = FakeWorker(coordinator.endpoint, unique(), {"f": echo}, api_key=api_key)
    refusal = await worker.refusal()
    assert refusal.code() == grpc.StatusCode.UNAUTHENTICATED
    assert isinstance(error_from_rpc(refusal), UnauthenticatedError)


@pytest.mark.parametrize("api_key", [None, "wrong"])
async def test_client_without_the_key_is_refused(
    coordinator: CoordinatorProcess, api_key: str | None
) -> None:
    async with AsyncClient(coordinator.endpoint, api_key) as client:
        with pytest.raises(UnauthenticatedError, match="API key"):
            await client.list_services()
        with pytest.raises(UnauthenticatedError):
            await client.invoke("any", "thing")


async def test_with_the_key_everything_works(coordinator: CoordinatorProcess) -> None:
    service = unique()
    async with (
        FakeWorker(coordinator.endpoint, service, {"f": echo}, api_key=KEY),
        AsyncClient(coordinator.endpoint, KEY) as client,
        httpx.AsyncClient(base_url=coordinator.http_url, timeout=10) as http,
    ):
        assert await client.invoke(service, "f", {"ok": True}) == {"ok": True}
        path = f"/v1/services/{service}/functions/f/invoke"
        refused = await http.post(path, json=1)
        assert refused.status_code == 401
        assert refused.json() == {
            "error": "missing or wrong API key: send the 'authorization: Bearer <key>' header",
            "status": 401,
            "code": "UNAUTHENTICATED",
        }
        wrong = await http.get("/v1/services", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        allowed = await http.post(path, json=1, headers={"Authorization": f"Bearer {KEY}"})
        assert allowed.status_code == 200 and allowed.json()["result"] == 1
