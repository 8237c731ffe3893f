"""Per-request cost of ``POST /invoke/noop`` called in-process (no sockets), three apps side by side.

The reference (``floor`` in the summary) is the hand-written raw ASGI app. Each round runs a
batch of requests in one event-loop pass; times are per request.

    pytest benchmarks/test_asgi.py --benchmark-only
    python benchmarks/asgi_http.py        # the same three apps over HTTP under uvicorn + wrk
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _asgi_apps

BATCH = 500
BODY = b'{"name":"Ada"}'
SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/invoke/noop",
    "raw_path": b"/invoke/noop",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"14")],
    "client": ("127.0.0.1", 1),
    "server": ("127.0.0.1", 8000),
}
APPS = {"worker": "worker", "raw": "floor", "starlette": "starlette"}


async def _batch(app: Any) -> bytes:
    last = b""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal last
        if message["type"] == "http.response.body":
            last = message["body"]

    for _ in range(BATCH):
        await app(dict(SCOPE), receive, send)
    return last


@pytest.mark.parametrize("name", list(APPS))
def test_in_process_request(benchmark: Any, name: str) -> None:
    app = getattr(_asgi_apps, name)
    loop = asyncio.new_event_loop()
    try:
        body = loop.run_until_complete(_batch(app))
        benchmark.group = f"asgi in-process (per {BATCH} requests)"
        benchmark.name = f"asgi[{APPS[name]}]"
        benchmark.pedantic(loop.run_until_complete, setup=lambda: ((_batch(app),), {}), rounds=30)
    finally:
        loop.close()
    assert b'"result":"Ada"' in body
