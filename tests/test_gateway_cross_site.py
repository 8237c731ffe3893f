"""The HTTP gateway refuses what a web page could send cross-site: bodies not declared JSON, and
Host names that are not its own (DNS rebinding)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from _coordinator_support import CoordinatorProcess, FakeWorker, coordinator_process, echo, unique

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def coordinator() -> Iterator[CoordinatorProcess]:
    with coordinator_process() as process:
        yield process


@pytest_asyncio.fixture
async def service(coordinator: CoordinatorProcess) -> AsyncIterator[str]:
    name = unique()
    async with FakeWorker(coordinator.endpoint, name, {"echo": echo}):
        yield name


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        (None, "the request has no content type"),
        ("text/plain", "the content type 'text/plain' is not JSON"),
        (
            "application/x-www-form-urlencoded",
            "the content type 'application/x-www-form-urlencoded' is not JSON",
        ),
        ("multipart/form-data; boundary=x", "the content type 'multipart/form-data' is not JSON"),
    ],
)
async def test_a_post_not_declared_json_is_415(
    coordinator: CoordinatorProcess, service: str, content_type: str | None, named: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    async with httpx.AsyncClient(base_url=coordinator.http_url, timeout=10) as http:
        for body in (b'{"a": 1}', b""):
            for action in ("invoke", "submit"):
                path = f"/v1/services/{service}/functions/echo/{action}"
                response = await http.post(path, content=body, headers=headers)
                assert response.status_code == 415
                assert response.json() == {
                    "error": f"{named}: add the header 'Content-Type: application/json'",
                    "status": 415,
                    "code": "INVALID_ARGUMENT",
                }


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/vnd.x+json"],
)
async def test_json_content_types_are_accepted(
    coordinator: CoordinatorProcess, service: str, content_type: str
) -> None:
    async with httpx.AsyncClient(base_url=coordinator.http_url, timeout=10) as http:
        response = await http.post(
            f"/v1/services/{service}/functions/echo/invoke",
            content=b"[1]",
            headers={"content-type": content_type},
        )
        assert response.status_code == 200 and response.json()["result"] == [1]


async def test_a_host_that_is_not_the_gateways_is_refused(
    coordinator: CoordinatorProcess, service: str
) -> None:
    port = coordinator.http_address.rpartition(":")[2]
    async with httpx.AsyncClient(base_url=coordinator.http_url, timeout=10) as http:
        for path in ("/v1/services", f"/v1/services/{service}/functions/echo/invoke"):
            response = await http.request(
                "GET" if path == "/v1/services" else "POST",
                path,
                json=1,
                headers={"host": f"rebound.example:{port}"},
            )
            assert response.status_code == 400
            assert response.json() == {
                "error": f"Host 'rebound.example:{port}' is not a name of this gateway (a guard "
                "against DNS rebinding): use localhost or an IP address, or start the "
                "coordinator with --allowed-host rebound.example",
                "status": 400,
                "code": "INVALID_ARGUMENT",
            }
        for host in ("localhost", "127.0.0.1", "[::1]", "api.localhost", "LOCALHOST."):
            response = await http.get("/v1/services", headers={"host": f"{host}:{port}"})
            assert response.status_code == 200, host


@pytest.mark.parametrize("allowed", [["my.dev", "other.dev"], ["*"]])
async def test_allowed_hosts_are_configurable(allowed: list[str]) -> None:
    flags = [part for name in allowed for part in ("--allowed-host", name)]
    with coordinator_process(*flags) as process:
        async with httpx.AsyncClient(base_url=process.http_url, timeout=10) as http:
            response = await http.get("/v1/services", headers={"host": "my.dev"})
            assert response.status_code == 200
            response = await http.get("/v1/services", headers={"host": "elsewhere.example"})
            assert response.status_code == (200 if allowed == ["*"] else 400)
