"""`HealthServer` over real sockets on 127.0.0.1: probes, a blocked loop, idle sockets, bad requests."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import AsyncIterator

import orjson
import pytest
import pytest_asyncio

from agnt5.runtimes import health
from agnt5.runtimes.health import HealthServer

pytestmark = pytest.mark.asyncio

_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """A blocking request from the calling thread (so it works while the test's loop is blocked)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


async def _aget(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(_get, port, path, method)


def _raw(port: int, payload: bytes) -> bytes:
    """What the server answers ``payload`` with before closing (a reset ends the answer)."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(payload)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:  # closed with our bytes unread
            pass
    return b"".join(chunks)


class _Ready:
    def __init__(self) -> None:
        self.value = False

    def __call__(self) -> bool:
        return self.value


def _metrics(accept: str) -> tuple[bytes, str]:
    return f"agnt5_up 1\n# accept: {accept}\n".encode(), _TEXT


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[HealthServer, _Ready]]:
    ready = _Ready()
    server = HealthServer(
        "127.0.0.1", 0, ready, _metrics, details=lambda: {"threads": {"busy": 0}}, max_lag=0.3
    )
    await server.start()
    try:
        yield server, ready
    finally:
        await server.stop()


async def test_health_answers_200_with_json(served: tuple[HealthServer, _Ready]) -> None:
    server, _ = served
    assert server.port > 0
    status, headers, body = await _aget(server.port, "/health")
    assert (status, orjson.loads(body)) == (200, {"status": "healthy", "threads": {"busy": 0}})
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"


async def test_ready_flips_with_the_flag(served: tuple[HealthServer, _Ready]) -> None:
    server, ready = served
    assert (await _aget(server.port, "/ready"))[0] == 503
    ready.value = True
    assert (await _aget(server.port, "/ready"))[0] == 200
    ready.value = False
    status, _, body = await _aget(server.port, "/ready?probe=1")
    assert (status, orjson.loads(body)) == (503, {"status": "not ready"})


async def test_metrics_and_unknown_paths(served: tuple[HealthServer, _Ready]) -> None:
    server, _ = served
    status, headers, body = await _aget(server.port, "/metrics")
    assert status == 200 and body.startswith(b"agnt5_up 1\n")
    assert headers["content-type"] == _TEXT
    status, _, body = await _aget(server.port, "/nope")
    assert (status, orjson.loads(body)["code"]) == (404, "NOT_FOUND")
    status, headers, body = await _aget(server.port, "/health", "POST")
    assert (status, headers["allow"]) == (405, "GET, HEAD")
    status, headers, body = await _aget(server.port, "/health", "HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) > 0


async def test_metrics_get_the_scrapers_accept_header(served: tuple[HealthServer, _Ready]) -> None:
    server, _ = served

    def scrape() -> bytes:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            connection.request(
                "GET", "/metrics", headers={"Accept": "application/openmetrics-text"}
            )
            return connection.getresponse().read()
        finally:
            connection.close()

    assert b"# accept: application/openmetrics-text" in await asyncio.to_thread(scrape)


async def test_blocked_loop_answers_503_then_recovers(served: tuple[HealthServer, _Ready]) -> None:
    server, _ = served
    probe = asyncio.get_running_loop().run_in_executor(None, _probe_after, 0.6, server.port)
    time.sleep(1.0)  # noqa: ASYNC251 - blocks the event loop the heartbeat runs on, on purpose
    status, body = await probe
    assert status == 503
    document = orjson.loads(body)
    assert document["status"] == "unhealthy" and document["loop_lag_seconds"] > 0.3
    await asyncio.sleep(0.1)
    assert (await _aget(server.port, "/health"))[0] == 200


def _probe_after(delay: float, port: int) -> tuple[int, bytes]:
    time.sleep(delay)
    status, _, body = _get(port, "/health")
    return status, body


async def test_answers_with_hundreds_of_idle_connections_open(
    served: tuple[HealthServer, _Ready],
) -> None:
    """Idle sockets past the connection cap make room for the probe instead of starving it
    (the hand-written server let 32 idle sockets block every probe)."""
    server, _ = served
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(40)]
    try:
        assert (await _aget(server.port, "/health"))[0] == 200
        idle += [
            socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(260)
        ]
        for _ in range(3):
            assert (await _aget(server.port, "/health"))[0] == 200
    finally:
        for sock in idle:
            sock.close()


async def test_idle_and_trickling_connections_are_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        health, "_LIMITS", health.ConnectionLimits(max_connections=100, idle_timeout=0.3)
    )
    server = HealthServer("127.0.0.1", 0, lambda: True)
    await server.start()
    try:
        head = b"GET /health HTTP/1.1\r\nHost: x\r\n"

        def trickle() -> int:
            """Send a request head a byte every 0.1 s; how many bytes went before the server
            closed the connection (the idle timeout ends it however slowly bytes come)."""
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                for sent, byte in enumerate(head):
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:  # reset: closed
                        return sent
                    time.sleep(0.1)
                return len(head)

        sent = await asyncio.to_thread(trickle)
        assert sent < len(head)  # closed before the head was whole, not answered
        silent = await asyncio.to_thread(_raw, server.port, b"")
        assert silent == b""
        assert (await _aget(server.port, "/health"))[0] == 200
    finally:
        await server.stop()


async def test_bad_requests_get_errors_and_the_server_keeps_serving(
    served: tuple[HealthServer, _Ready],
) -> None:
    server, _ = served
    garbage = await asyncio.to_thread(_raw, server.port, b"\x00\xffnot http at all\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400 ")
    huge = b"GET /health HTTP/1.1\r\nX: " + b"a" * 200_000 + b"\r\n\r\n"
    answer = await asyncio.to_thread(_raw, server.port, huge)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400 ")  # refused, never served
    dropped = await asyncio.to_thread(_raw_close_early, server.port)
    assert dropped == b""
    assert (await _aget(server.port, "/health"))[0] == 200


def _raw_close_early(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /hea")
        sock.shutdown(socket.SHUT_WR)
        return sock.recv(65536)


async def test_failing_callbacks_answer_500() -> None:
    def broken() -> bool:
        raise RuntimeError("readiness exploded")

    server = HealthServer("127.0.0.1", 0, broken, None)
    await server.start()
    try:
        status, _, body = await _aget(server.port, "/ready")
        assert (status, orjson.loads(body)["status"]) == (500, 500)
        assert (await _aget(server.port, "/metrics"))[0] == 404
        assert (await _aget(server.port, "/health"))[0] == 200
    finally:
        await server.stop()


async def test_port_in_use_raises_and_leaves_no_thread() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        before = _health_threads()
        server = HealthServer("127.0.0.1", taken.getsockname()[1], lambda: True)
        with pytest.raises(OSError):
            await server.start()
        assert _health_threads() == before
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "agnt5-health-heartbeat"]


async def test_stop_ends_thread_and_heartbeat_and_is_idempotent() -> None:
    server = HealthServer("127.0.0.1", 0, lambda: True)
    await server.start()
    port = server.port
    await server.stop()
    await server.stop()
    assert _health_threads() == 0
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "agnt5-health-heartbeat"]
    with pytest.raises(OSError):
        _get(port, "/health")


def _health_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "agnt5-health")
