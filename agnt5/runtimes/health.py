"""`HealthServer`: a standalone worker's ``/health``, ``/ready`` and ``/metrics``.

uvicorn serves them on a thread and event loop of their own (`agnt5._wire.serving`), so a
worker whose event loop is blocked still gets an answer — ``503`` — instead of a hung probe.
Loop health comes from a heartbeat task on the worker's loop: ``/health`` is ``200`` while the
last beat is at most ``max_lag`` seconds old. A connection idle for 5 s is closed, and when 100
are open a new one closes the one idle the longest, so idle sockets cannot starve the probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from agnt5._wire.http import JSON, error_body, http_error, response_start
from agnt5._wire.serving import BackgroundServer, ConnectionLimits

__all__ = ["HealthServer"]

_log = logging.getLogger("agnt5.health")
_LIMITS = ConnectionLimits(max_connections=100, idle_timeout=5.0)
_START_TIMEOUT = 10.0
_NO_STORE = (b"cache-control", b"no-store")

Metrics = Callable[[str], tuple[bytes, str]]
"""The metrics exposition for an ``Accept`` header: the body and its content type."""


class HealthServer:
    """Probe endpoints for one worker; ``await start()`` on the worker's loop, ``await stop()`` when done.

    ``readiness()`` answers ``/ready``; ``details()`` adds fields to the ``/health`` document;
    ``metrics`` serves ``/metrics`` (404 without it). ``port`` 0 binds an ephemeral port.
    """

    def __init__(
        self,
        host: str,
        port: int,
        readiness: Callable[[], bool],
        metrics: Metrics | None = None,
        *,
        details: Callable[[], Mapping[str, Any]] | None = None,
        max_lag: float = 5.0,
    ) -> None:
        self._host = host
        self._port = port
        self._readiness = readiness
        self._metrics = metrics
        self._details = details
        self._max_lag = max_lag
        self._last_beat = time.monotonic()
        self._heartbeat: asyncio.Task[None] | None = None
        self._server: BackgroundServer | None = None

    @property
    def port(self) -> int:
        """The listening port (the ephemeral one chosen when constructed with ``0``)."""
        return self._port

    async def start(self) -> None:
        """Start the heartbeat on the running loop and the server's thread; `OSError` if the
        port cannot be bound."""
        if self._server is not None:
            raise RuntimeError("this health server is already started")
        server = BackgroundServer(
            self._app, self._host, self._port, name="agnt5-health", limits=_LIMITS
        )
        self._server, self._port = server, server.port
        self._last_beat = time.monotonic()
        self._heartbeat = asyncio.create_task(self._beat(), name="agnt5-health-heartbeat")
        try:
            await asyncio.to_thread(server.start, _START_TIMEOUT)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the server (open connections are dropped) and the heartbeat; safe to call twice."""
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.stop)

    async def _beat(self) -> None:
        interval = min(1.0, self._max_lag / 4)
        while True:  # until stop() cancels it
            self._last_beat = time.monotonic()
            await asyncio.sleep(interval)

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The ASGI app on the server's thread: GET or HEAD one of the three paths."""
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method not in ("GET", "HEAD"):
            error = http_error(405, f"{method} is not allowed: use GET or HEAD")
            await _send(send, method, 405, error_body(error), JSON, [(b"allow", b"GET, HEAD")])
            return
        try:
            status, body, content_type = self._route(path, _header(scope, b"accept"))
        except Exception:
            _log.exception("health endpoint %s failed", path)
            status, body, content_type = 500, error_body(http_error(500, "internal error")), JSON
        await _send(send, method, status, body, content_type)

    def _route(self, path: str, accept: str) -> tuple[int, bytes, bytes]:
        """Status, body and content type of a GET of ``path``."""
        if path == "/health":
            lag = time.monotonic() - self._last_beat
            healthy = lag <= self._max_lag
            document: dict[str, Any] = {"status": "healthy" if healthy else "unhealthy"}
            if not healthy:
                document["loop_lag_seconds"] = round(lag, 3)
            if self._details is not None:
                document.update(self._details())
            return (200 if healthy else 503), orjson.dumps(document), JSON
        if path == "/ready":
            if self._readiness():
                return 200, b'{"status":"ready"}', JSON
            return 503, b'{"status":"not ready"}', JSON
        if path == "/metrics" and self._metrics is not None:
            body, content_type = self._metrics(accept)
            return 200, body, content_type.encode("latin-1")
        return 404, error_body(http_error(404, f"no such endpoint: {path}")), JSON


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _send(
    send: Any,
    method: str,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """A response that is never cached; a HEAD gets the headers of the GET and no body."""
    start = response_start(status, len(body), [_NO_STORE, *headers], content_type)
    await send(start)
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
