"""The ASGI apps the ASGI benchmarks compare, each serving ``POST /invoke/<name>``.

- ``worker``: an agnt5 ``Worker(runtime="asgi")`` serving ``noop`` (an async function),
  ``noop_sync`` (a plain ``def``, run in the worker's thread pool) and ``noop_inline``
  (a ``def`` with ``inline=True``, run on the event loop);
- ``raw``: a hand-written raw ASGI app (read body, ``orjson``, call, ``orjson``, send): the
  reference every rate is compared to;
- ``raw_hop``: ``raw`` with the call made through one bare ``asyncio.to_thread`` hop, the
  least a sync handler kept off the event loop can cost;
- ``starlette``: a Starlette ``Route`` + ``Request.json()`` + ``JSONResponse``.

Served by uvicorn as ``_asgi_apps:worker`` etc. ``AGNT5_BENCH_TELEMETRY=1`` gives the worker
telemetry into in-memory exporters (`_bench_otel`; ``AGNT5_BENCH_SAMPLE`` sets the share of
traces sampled).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agnt5 import Worker, function

__all__ = ["raw", "raw_hop", "starlette", "worker"]


@function(name="noop")
async def noop(name: str) -> str:
    return name


@function(name="noop_sync")
def noop_sync(name: str) -> str:
    return name


@function(name="noop_inline", inline=True)
def noop_inline(name: str) -> str:
    return name


TELEMETRY = os.environ.get("AGNT5_BENCH_TELEMETRY") == "1"
if TELEMETRY:
    from _bench_otel import install_in_memory_telemetry

    install_in_memory_telemetry()

worker = Worker("bench-asgi", runtime="asgi", disable_telemetry=not TELEMETRY)

_HEADERS = [(b"content-type", b"application/json")]


async def _body(receive: Any) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    while message.get("more_body"):
        message = await receive()
        body += message.get("body", b"")
    return body


async def _respond(send: Any, result: Any) -> None:
    output = orjson.dumps({"result": result})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_HEADERS, (b"content-length", str(len(output)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": output})


async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await _respond(send, await noop(**orjson.loads(await _body(receive))))


async def raw_hop(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        kwargs = orjson.loads(await _body(receive))
        await _respond(send, await asyncio.to_thread(noop_sync, **kwargs))


async def _endpoint(request: Request) -> JSONResponse:
    return JSONResponse({"result": await noop(**(await request.json()))})


starlette = Starlette(routes=[Route("/invoke/{name}", _endpoint, methods=["POST"])])
