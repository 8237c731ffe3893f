"""Per-request cost of ``POST /invoke/<name>`` called in-process (no sockets), apps side by side.

The reference (``floor`` in the summary) is the hand-written raw ASGI app; ``hop`` is the same
app calling through one bare ``asyncio.to_thread``, what a sync handler kept off the event loop
costs at least. The worker serves an async handler (``async``), a plain ``def`` run in its thread
pool (``sync``, compared to ``hop``: goal <= 1.5x) and one with ``inline=True`` (``inline``).
Each round runs a batch of requests one after another in one event-loop pass; times are per
batch.

    pytest benchmarks/test_asgi.py --benchmark-only
    python benchmarks/asgi_http.py        # the same apps over HTTP under uvicorn + wrk
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _asgi_apps

BATCH = 200
BODY = b'{"name":"Ada"}'
SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"14")],
    "client": ("127.0.0.1", 1),
    "server": ("127.0.0.1", 8000),
}
APPS = {
    "floor": ("raw", "noop"),
    "hop": ("raw_hop", "noop_sync"),
    "async": ("worker", "noop"),
    "sync": ("worker", "noop_sync"),
    "inline": ("worker", "noop_inline"),
    "starlette": ("starlette", "noop"),
}


async def _batch(app: Any, function: str) -> bytes:
    last = b""
    path = f"/invoke/{function}"
    scope = {**SCOPE, "path": path, "raw_path": path.encode()}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal last
        if message["type"] == "http.response.body":
            last = message["body"]

    for _ in range(BATCH):
        await app(dict(scope), receive, send)
    return last


@pytest.mark.parametrize("label", list(APPS))
def test_in_process_request(benchmark: Any, label: str) -> None:
    name, function = APPS[label]
    app = getattr(_asgi_apps, name)
    loop = asyncio.new_event_loop()
    try:
        body = loop.run_until_complete(_batch(app, function))
        benchmark.group = f"asgi in-process (per {BATCH} requests)"
        benchmark.name = f"asgi[{label}]"
        benchmark.pedantic(
            loop.run_until_complete, setup=lambda: ((_batch(app, function),), {}), rounds=30
        )
    finally:
        loop.close()
    assert b'"result":"Ada"' in body
