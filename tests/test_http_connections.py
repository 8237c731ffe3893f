"""Every HTTP server agnt5 starts (the coordinator's gateway, ``Worker.run()`` for ASGI, the
health server) closes idle connections and caps open ones without letting idle sockets lock
clients out. Real sockets on 127.0.0.1 against real servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from test_standalone_worker import free_port

from agnt5 import Worker, function
from agnt5._wire import serving
from agnt5._wire.serving import ConnectionLimits
from agnt5.coordinator import Coordinator
from agnt5.runtimes import health
from agnt5.runtimes.health import HealthServer

pytestmark = pytest.mark.asyncio

Server = Callable[[], contextlib.AbstractAsyncContextManager[str]]


@contextlib.asynccontextmanager
async def gateway() -> AsyncIterator[str]:
    async with Coordinator(port=0, http_port=0) as coordinator:
        yield f"http://127.0.0.1:{coordinator.http_port}/v1/services"


@contextlib.asynccontextmanager
async def asgi_worker() -> AsyncIterator[str]:
    port = free_port()
    worker = Worker("conn-web", runtime="asgi", http_port=port, log_level="WARNING")
    running = asyncio.create_task(worker.run())
    url = f"http://127.0.0.1:{port}/health"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):  # bounded: up to 10 s for uvicorn to listen
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(url)).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield url
    finally:
        worker.stop()
        await running


@contextlib.asynccontextmanager
async def health_server() -> AsyncIterator[str]:
    server = HealthServer("127.0.0.1", 0, lambda: True)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}/health"
    finally:
        await server.stop()


SERVERS = [
    pytest.param(gateway, id="gateway"),
    pytest.param(asgi_worker, id="asgi"),
    pytest.param(health_server, id="health"),
]


@pytest.fixture
def limit(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set the connection limits every server here starts with."""

    def set_limits(**options: Any) -> None:
        limits = ConnectionLimits(**options)
        monkeypatch.setattr(serving, "DEFAULT_LIMITS", limits)
        monkeypatch.setattr(health, "_LIMITS", limits)

    return set_limits


def _port(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


def _open_idle(url: str, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", _port(url)), timeout=5) for _ in range(count)]


@pytest.mark.parametrize("server", SERVERS)
async def test_hundreds_of_idle_sockets_do_not_lock_clients_out(
    server: Server, limit: Callable[..., None]
) -> None:
    limit(max_connections=50, idle_timeout=30.0)
    async with server() as url, httpx.AsyncClient(timeout=5) as client:
        idle = _open_idle(url, 300)
        try:
            for _ in range(5):
                assert (await client.get(url)).status_code == 200
        finally:
            for sock in idle:
                sock.close()


@pytest.mark.parametrize("server", SERVERS)
async def test_idle_connections_are_closed_after_the_timeout(
    server: Server, limit: Callable[..., None]
) -> None:
    limit(max_connections=50, idle_timeout=0.5)
    async with server() as url:
        host = url.split("/")[2]
        with socket.create_connection(("127.0.0.1", _port(url)), timeout=5) as sock:
            sock.sendall(f"GET /{url.split('/', 3)[3]} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            started = time.monotonic()
            answer = await asyncio.to_thread(_read_until_closed, sock)
        assert answer.startswith(b"HTTP/1.1 200 ")  # answered, kept alive, then closed when idle
        assert 0.3 < time.monotonic() - started < 4.0
        with socket.create_connection(("127.0.0.1", _port(url)), timeout=5) as silent:
            started = time.monotonic()  # a connection that never sends a request is closed too
            assert await asyncio.to_thread(_read_until_closed, silent) == b""
        assert 0.3 < time.monotonic() - started < 4.0


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):  # bounded by the server closing (or the socket timeout)
        chunks.append(chunk)
    return b"".join(chunks)


async def test_a_newcomer_gets_503_only_when_every_connection_is_busy(
    registry: None, limit: Callable[..., None]
) -> None:
    release = asyncio.Event()

    @function(name="hold")
    async def hold() -> str:
        await release.wait()
        return "released"

    limit(max_connections=2, idle_timeout=30.0)
    async with asgi_worker() as url, httpx.AsyncClient(timeout=10) as client:
        invoke = url.replace("/health", "/invoke/hold")
        held = [
            asyncio.create_task(client.post(invoke, json={}, headers={"connection": "close"}))
            for _ in range(2)
        ]
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(timeout=5) as other:
            refused = await other.get(url)
        assert refused.status_code == 503
        assert orjson.loads(refused.content)["error"].startswith("the server is at its connection")
        release.set()
        assert [(await task).status_code for task in held] == [200, 200]
        async with httpx.AsyncClient(timeout=5) as other:
            assert (await other.get(url)).status_code == 200
