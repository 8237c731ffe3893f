"""The three ASGI apps the ASGI benchmarks compare, each serving a no-op ``POST /invoke/noop``.

- ``worker``: an agnt5 ``Worker(runtime="asgi")`` with an async no-op function;
- ``raw``: a hand-written raw ASGI app (read body, ``orjson``, call, ``orjson``, send);
- ``starlette``: a Starlette ``Route`` + ``Request.json()`` + ``JSONResponse``.

Served by uvicorn as ``_asgi_apps:worker`` etc. With ``AGNT5_BENCH_TELEMETRY=1`` the worker
exports every span and metric into in-memory OpenTelemetry exporters (the cost of telemetry on).
"""

from __future__ import annotations

import os
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agnt5 import Worker, function

__all__ = ["raw", "starlette", "worker"]


@function(name="noop")
async def noop(name: str) -> str:
    return name


TELEMETRY = os.environ.get("AGNT5_BENCH_TELEMETRY") == "1"
if TELEMETRY:
    from _bench_otel import install_in_memory_telemetry

    install_in_memory_telemetry()

worker = Worker("bench-asgi", runtime="asgi", disable_telemetry=not TELEMETRY)

_HEADERS = [(b"content-type", b"application/json")]


async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    message = await receive()
    body = message.get("body", b"")
    while message.get("more_body"):
        message = await receive()
        body += message.get("body", b"")
    output = orjson.dumps({"result": await noop(**orjson.loads(body))})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_HEADERS, (b"content-length", str(len(output)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": output})


async def _endpoint(request: Request) -> JSONResponse:
    return JSONResponse({"result": await noop(**(await request.json()))})


starlette = Starlette(routes=[Route("/invoke/{name}", _endpoint, methods=["POST"])])
