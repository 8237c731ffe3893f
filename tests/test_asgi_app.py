"""The ASGI Worker called in-process: the usage checks, websocket and lifespan messages, run()."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from agnt5 import Worker, function

pytestmark = [pytest.mark.usefixtures("registry"), pytest.mark.asyncio]


async def call(
    app: Any, scope: dict[str, Any], incoming: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    queue = list(incoming)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_an_asgi_worker_is_an_asgi_app() -> None:
    app = Worker("test-service", runtime="asgi")
    assert callable(app)
    asgi_app = app.__call__
    assert callable(asgi_app)
    assert app.runtime == "asgi"


async def test_websocket_scope_is_closed_cleanly() -> None:
    app = Worker("ws-service", runtime="asgi")
    sent = await call(
        app, {"type": "websocket", "path": "/ws", "headers": []}, [{"type": "websocket.connect"}]
    )
    assert sent == [{"type": "websocket.close", "code": 1003, "reason": "no websocket endpoints"}]


async def test_lifespan_registers_on_startup_and_stops_on_shutdown() -> None:
    app = Worker("life-service", runtime="asgi")

    @function()
    def late(x: int) -> int:
        return x

    sent = await call(
        app,
        {"type": "lifespan"},
        [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}],
    )
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert "late" in app.components
    assert not app.is_running()


async def test_cors_and_middleware_methods_are_asgi_only() -> None:
    worker = Worker("standalone-service")
    with pytest.raises(RuntimeError, match="only available with runtime='asgi'"):
        worker.enable_cors()
    with pytest.raises(TypeError, match="is not an ASGI app"):
        await worker({"type": "http"}, None, None)


async def test_run_serves_with_uvicorn_until_stopped() -> None:
    from _asgi_support import free_port

    @function()
    def ping() -> str:
        return "pong"

    port = free_port()
    app = Worker("run-service", runtime="asgi", http_port=port)
    server = asyncio.create_task(app.run())
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(200):  # bounded wait for the server to listen
                try:
                    response = await client.post(
                        f"http://127.0.0.1:{port}/invoke/ping",
                        headers={"content-type": "application/json"},
                    )
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.02)
        assert response.json()["result"] == "pong"
        assert app.is_running()
    finally:
        app.stop()
        await asyncio.wait_for(server, 10)
    assert not app.is_running()


async def test_mounted_under_a_starlette_prefix() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    @function()
    def shout(text: str) -> str:
        return text.upper()

    worker = Worker("mounted-service", runtime="asgi")
    site = Starlette(routes=[Mount("/agnt5", app=worker)])
    transport = httpx.ASGITransport(app=site)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        invoked = await client.post("/agnt5/invoke/shout", json={"text": "hi"})
        health = await client.get("/agnt5/health")
        functions = await client.get("/agnt5/functions")
        outside = await client.get("/health")
    assert invoked.status_code == 200, invoked.text
    assert invoked.json()["result"] == "HI"
    assert health.json()["service"] == "mounted-service"
    assert "shout" in {entry["name"] for entry in functions.json()["functions"]}
    assert outside.status_code == 404
