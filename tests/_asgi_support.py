"""A real uvicorn (or hypercorn/gunicorn) process serving an ASGI Worker, for the ASGI tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
from _coordinator_support import agnt5_env
from _processes import spawn, stop
from _raising import RAISING

__all__ = ["APP", "SPANS_TO_FILE", "free_port", "serve"]

SPANS_TO_FILE = textwrap.dedent(
    """
    import os

    if os.environ.get("SPANS"):  # the application configures OpenTelemetry itself, as users do
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

        class FileExporter(SpanExporter):
            def export(self, spans):
                with open(os.environ["SPANS"], "a") as out:
                    for span in spans:
                        out.write(span.to_json(indent=None) + "\\n")
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
        trace.set_tracer_provider(provider)
    """
)

APP = (
    SPANS_TO_FILE
    + textwrap.dedent(
        """
    import asyncio
    import time

    from starlette.middleware.gzip import GZipMiddleware

    from agnt5 import Worker, function, workflow


    @function()
    async def nap(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds


    @function()
    def sync_nap(seconds: float) -> float:
        time.sleep(seconds)
        return seconds


    _arrived = {}


    @function()
    async def rendezvous(key: str, count: int) -> bool:
        # True once `count` calls with `key` are in flight together; False after 20 s.
        _arrived[key] = _arrived.get(key, 0) + 1
        for _ in range(2000):  # bounded: 20 s
            if _arrived[key] >= count:
                return True
            await asyncio.sleep(0.01)
        return False


    @function()
    def hold(started: str, release: str) -> str:
        # Block a pool thread: mark `started`, then wait (up to 20 s) for `release` to exist.
        open(started, "w").close()
        for _ in range(2000):  # bounded: 20 s
            if os.path.exists(release):
                return "released"
            time.sleep(0.01)
        return "timed out"


    @function()
    def failing_function(data: dict) -> dict:
        raise ValueError("Something went wrong")


    @function()
    def web_handler(request: dict) -> dict:
        return {"message": "Hello from AGNT5!", "data": request}


    @function()
    def total(prices: list[float]) -> float:
        return sum(prices)


    @function(timeout=0.2)
    async def too_slow() -> None:
        await asyncio.sleep(5)


    @function()
    def whoami(ctx) -> dict:
        return {"invocation_id": ctx.invocation_id, "metadata": dict(ctx.metadata)}


    @function()
    def text(size: int) -> str:
        return "x" * size


    def _write(path, text):
        with open(path, "a") as out:
            out.write(text + "\\n")


    @function()
    def mark(path: str, note: str = "ran") -> None:
        _write(path, note)


    @function()
    async def until_cancelled(started: str, outcome: str) -> None:
        _write(started, "started")
        try:
            await asyncio.sleep(20)
        except asyncio.CancelledError:
            _write(outcome, "cancelled")
            raise
        _write(outcome, "finished")


    @function()
    def until_ctx_cancelled(ctx, started: str, outcome: str) -> None:
        _write(started, "started")
        for _ in range(2000):  # bounded: 20 s
            if ctx.cancelled:
                _write(outcome, f"cancelled: {ctx.cancel_reason}")
                return
            time.sleep(0.01)
        _write(outcome, "finished")


    @workflow
    async def local_order(ctx, order_id: str) -> dict:
        total = await ctx.step("price", lambda: 42)
        await ctx.sleep(0.01)
        pair = await ctx.parallel(ctx.step("a", lambda: "a"), ctx.step("b", lambda: "b"))
        return {"order_id": order_id, "total": total, "pair": pair, "after_2000": ctx.now().year > 2000}


    @workflow
    async def needs_coordinator(ctx, call: str):
        if call == "task":
            return await ctx.task("orders", "validate")
        return await ctx.signal("approved")


    @function()
    def twins() -> bool:
        from agnt5._speedups import USE_EXTENSIONS

        return USE_EXTENSIONS


    app = Worker("web-service", runtime="asgi", max_body_size=int(os.environ.get("MAX_BODY", "1048576")))
    assert callable(app)
    asgi_app = app.__call__
    if os.environ.get("CORS") == "*":
        app.enable_cors()
    elif os.environ.get("CORS"):
        app.enable_cors(origins=os.environ["CORS"].split(","))
    if os.environ.get("GZIP"):
        app.add_middleware(GZipMiddleware, minimum_size=100)
    if os.environ.get("BASE_HTTP_MIDDLEWARE"):
        from starlette.middleware.base import BaseHTTPMiddleware

        class Tagged(BaseHTTPMiddleware):
            async def dispatch(self, request, call_next):
                response = await call_next(request)
                response.headers["x-tagged"] = "yes"
                return response

        app.add_middleware(Tagged)
    """
    )
    + RAISING
)  # registered after the app is made: served all the same


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _command(server: str, port: int, args: Sequence[str]) -> list[str]:
    bind = f"127.0.0.1:{port}"
    if server == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "web_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--log-level",
            "warning",
            *args,
        ]
    if server == "hypercorn":
        return [sys.executable, "-m", "hypercorn", "web_app:app", "--bind", bind]
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-k",
        "uvicorn_worker.UvicornWorker",
        "-w",
        "1",
        "-b",
        bind,
        "web_app:app",
    ]


@contextmanager
def serve(
    directory: Path, server: str = "uvicorn", *, args: Sequence[str] = (), **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve `APP` from ``directory``; yields (base URL, process); stopped with its process group
    (gunicorn's and hypercorn's workers included). ``args``: more uvicorn options."""
    (directory / "web_app.py").write_text(APP)
    port = free_port()
    log = open(directory / f"{server}.log", "wb")
    process = spawn(
        _command(server, port, args),
        cwd=directory,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=agnt5_env(**env),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:  # bounded by the deadline
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{server} did not start:\n{(directory / f'{server}.log').read_text()}"
                )
            time.sleep(0.05)
        yield base, process
    finally:
        stop(process, grace=0)
        log.close()
