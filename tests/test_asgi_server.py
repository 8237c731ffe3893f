"""The ASGI runtime served by a real uvicorn process: endpoints, errors, concurrency, lifespan."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _asgi_support import serve

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("asgi")) as (url, _):
        yield url


def test_health(base: str) -> None:
    response = httpx.get(f"{base}/health", timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "service": "web-service",
        "version": "1.0.0",
        "runtime": "asgi",
    }


def test_functions_lists_every_component(base: str) -> None:
    body = httpx.get(f"{base}/functions", timeout=10).json()
    names = {entry["name"] for entry in body["functions"]}
    assert {"nap", "sync_nap", "failing_function", "web_handler", "total", "whoami"} <= names
    assert body["count"] == len(body["functions"])
    total = next(entry for entry in body["functions"] if entry["name"] == "total")
    assert total["kind"] == "function"
    assert total["input_schema"]["properties"]["prices"] == {
        "type": "array",
        "items": {"type": "number"},
    }
    assert total["output_schema"]["type"] == "number"


def test_invoke(base: str) -> None:
    response = httpx.post(f"{base}/invoke/web_handler", json={"user": "ada"}, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["result"] == {"message": "Hello from AGNT5!", "data": {"user": "ada"}}
    assert len(body["invocation_id"]) == 32


def test_invocation_id_and_metadata_headers_reach_the_handler(base: str) -> None:
    headers = {
        "X-Invocation-Id": "inv-123",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "X-Agnt5-Tenant": "acme",
        "X-Other": "ignored",
    }
    body = httpx.post(f"{base}/invoke/whoami", headers={**headers, **JSON}, timeout=10).json()
    assert body["invocation_id"] == "inv-123"
    assert body["result"] == {
        "invocation_id": "inv-123",
        "metadata": {
            "traceparent": headers["traceparent"],
            "x-agnt5-tenant": "acme",
            "service_name": "web-service",
            "function_name": "whoami",
            "invocation_id": "inv-123",
        },
    }


def test_handler_error_body(base: str) -> None:
    response = httpx.post(f"{base}/invoke/failing_function", json={}, timeout=10)
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "Function failing_function failed: Something went wrong"
    assert body["status"] == 500
    assert body["code"] == "FUNCTION_FAILED"
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "fragment"),
    [
        ("/invoke/missing", {"json": {}}, 404, "Function 'missing' not found"),
        ("/invoke/total", {"content": b'{"prices": [', "headers": JSON}, 400, "invalid JSON input"),
        ("/invoke/total", {"content": b'{"prices": ["\xff"]}', "headers": JSON}, 400, "UTF-8"),
        (
            "/invoke/total",
            {"json": {"prices": [1, "2"]}},
            400,
            "prices[1]: expected float, got string",
        ),
        ("/invoke/total", {"json": {"price": []}}, 400, "unknown parameter 'price'"),
        ("/invoke/too_slow", {"headers": JSON}, 504, "timed out"),
        ("/nowhere", {}, 404, "no route"),
    ],
)
def test_error_statuses(base: str, path: str, kwargs: dict, status: int, fragment: str) -> None:  # type: ignore[type-arg]
    response = httpx.post(f"{base}{path}", timeout=10, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    assert fragment in body["error"]


def test_wrong_method_names_the_allowed_one(base: str) -> None:
    get_invoke = httpx.get(f"{base}/invoke/total", timeout=10)
    assert (get_invoke.status_code, get_invoke.headers["allow"]) == (405, "POST")
    post_health = httpx.post(f"{base}/health", timeout=10)
    assert (post_health.status_code, post_health.headers["allow"]) == (405, "GET")


def test_oversized_bodies_are_refused(base: str) -> None:
    declared = httpx.post(
        f"{base}/invoke/total", content=b"[" + b"1," * 600_000 + b"1]", headers=JSON, timeout=10
    )
    assert declared.status_code == 413
    assert declared.json()["code"] == "PAYLOAD_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
        yield b'{"prices": ['
        for _ in range(300):
            yield b"1," * 2000
        yield b"1]}"

    streamed = httpx.post(f"{base}/invoke/total", content=chunks(), headers=JSON, timeout=10)
    assert streamed.status_code == 413
    assert (
        httpx.post(f"{base}/invoke/total", json={"prices": [1]}, timeout=10).json()["result"] == 1.0
    )


def test_declared_oversize_is_refused_before_100_continue(base: str) -> None:
    host, port = base.removeprefix("http://").split(":")
    request = (
        b"POST /invoke/total HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2000000\r\nExpect: 100-continue\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(request)  # and no body: a server that said 100 Continue would wait
        head = connection.recv(4096)
    assert head.startswith(b"HTTP/1.1 413 "), head


def test_one_hundred_requests_run_at_once(base: str) -> None:
    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            body = {"key": "burst", "count": 100}
            calls = [client.post(f"{base}/invoke/rendezvous", json=body) for _ in range(100)]
            return await asyncio.gather(*calls)

    responses = asyncio.run(burst())
    assert [(r.status_code, r.json()["result"]) for r in responses] == [(200, True)] * 100


def test_a_blocked_sync_handler_does_not_stall_health(base: str, tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    body = {"started": str(started), "release": str(release)}
    result: dict[str, httpx.Response] = {}
    holder = threading.Thread(
        target=lambda: result.setdefault(
            "hold", httpx.post(f"{base}/invoke/hold", json=body, timeout=30)
        )
    )
    holder.start()
    try:
        for _ in range(2000):  # bounded: until the handler runs on its pool thread
            if started.exists():
                break
            time.sleep(0.01)
        assert httpx.get(f"{base}/health", timeout=10).status_code == 200  # while it is held
    finally:
        release.touch()
        holder.join(30)
    assert result["hold"].json()["result"] == "released"


def test_lifespan_shutdown_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    with serve(tmp_path) as (url, process):
        result: dict[str, httpx.Response] = {}
        request = threading.Thread(
            target=lambda: result.setdefault(
                "response", httpx.post(f"{url}/invoke/nap", json={"seconds": 1.0}, timeout=10)
            )
        )
        request.start()
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        request.join(10)
        assert process.wait(10) in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM once drained
    assert result["response"].status_code == 200
    assert result["response"].json()["result"] == 1.0


def test_gzip_middleware(tmp_path: Path) -> None:
    with serve(tmp_path, GZIP="1") as (url, _):
        response = httpx.post(
            f"{url}/invoke/text",
            json={"size": 5000},
            headers={"accept-encoding": "gzip"},
            timeout=10,
        )
        raw = httpx.post(f"{url}/invoke/text", json={"size": 10}, timeout=10)
    assert response.headers["content-encoding"] == "gzip"
    assert response.json()["result"] == "x" * 5000
    assert "content-encoding" not in raw.headers
    assert len(gzip.compress(response.content)) < 5000


@pytest.mark.parametrize("server", ["hypercorn", "gunicorn"])
def test_other_asgi_servers(tmp_path: Path, server: str) -> None:
    if importlib.util.find_spec(server) is None:
        pytest.skip(f"{server} is not installed (pip install {server})")
    with serve(tmp_path, server) as (url, _):
        response = httpx.post(f"{url}/invoke/total", json={"prices": [1, 2]}, timeout=10)
    assert response.json()["result"] == 3.0


def test_invocation_span_is_a_child_of_the_request_traceparent(tmp_path: Path) -> None:
    spans = tmp_path / "spans.jsonl"
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with serve(tmp_path, SPANS=str(spans)) as (url, _):
        response = httpx.post(
            f"{url}/invoke/total",
            json={"prices": [1, 2]},
            headers={"traceparent": f"00-{trace_id}-{parent_id}-01", "X-Invocation-Id": "span-1"},
            timeout=10,
        )
        failed = httpx.post(f"{url}/invoke/failing_function", json={}, timeout=10)
    assert (response.status_code, failed.status_code) == (200, 500)
    records = [json.loads(line) for line in spans.read_text().splitlines()]
    by_name = {record["name"]: record for record in records}
    span = by_name["invoke total"]
    assert span["context"]["trace_id"] == f"0x{trace_id}"
    assert span["parent_id"] == f"0x{parent_id}"
    assert span["attributes"]["agnt5.invocation_id"] == "span-1"
    assert span["attributes"]["agnt5.outcome"] == "success"
    failure = by_name["invoke failing_function"]
    assert failure["attributes"]["agnt5.error_code"] == "FUNCTION_FAILED"
    assert failure["parent_id"] is None


def test_uvicorn_root_path(tmp_path: Path) -> None:
    with serve(tmp_path, args=["--root-path", "/api"]) as (url, _):
        # behind a proxy that strips /api, uvicorn puts the root path back in front
        response = httpx.post(f"{url}/invoke/total", json={"prices": [1, 2]}, timeout=10)
        functions = httpx.get(f"{url}/functions", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == 3.0
    assert functions.status_code == 200
