"""`HealthServer`: ``/health``, ``/ready`` and ``/metrics`` over HTTP/1.1 for standalone workers.

It serves from its own thread and event loop, so a worker whose event loop is blocked still
gets an answer — ``503`` — instead of a hung probe. Loop health comes from a heartbeat task on
the worker's loop: ``/health`` is ``200`` while the last beat is at most ``max_lag`` seconds old.
One request per connection, a bounded request head, read/write timeouts and a connection cap.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http
import logging
import threading
import time
from collections.abc import Callable

import orjson

from agnt5._wire.http import error_body, http_error

__all__ = ["HealthServer"]

_log = logging.getLogger("agnt5.health")
_MAX_HEAD = 8 * 1024
_MAX_CLIENTS = 32
_IO_TIMEOUT = 5.0
_JSON = "application/json"
_METRICS = "text/plain; version=0.0.4; charset=utf-8"

_Response = tuple[int, str, bytes]


class HealthServer:
    """Probe endpoints for one worker; ``await start()`` on the worker's loop, ``await stop()`` when done."""

    def __init__(
        self,
        host: str,
        port: int,
        readiness: Callable[[], bool],
        metrics_text: Callable[[], str] | None = None,
        *,
        max_lag: float = 5.0,
    ) -> None:
        self._host = host
        self._port = port
        self._readiness = readiness
        self._metrics_text = metrics_text
        self._max_lag = max_lag
        self._last_beat = time.monotonic()
        self._heartbeat: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._clients: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The listening port (the ephemeral one chosen when constructed with ``0``)."""
        return self._port

    async def start(self) -> None:
        """Start the heartbeat on the running loop and the listener thread; raises if the port is taken."""
        if self._thread is not None:
            raise RuntimeError("this health server is already started")
        self._last_beat = time.monotonic()
        self._heartbeat = asyncio.create_task(self._beat(), name="agnt5-health-heartbeat")
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(started),), name="agnt5-health", daemon=True
        )
        self._thread.start()
        try:
            self._port = await asyncio.wait_for(asyncio.wrap_future(started), _IO_TIMEOUT)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the listener (open connections are dropped) and the heartbeat; safe to call twice."""
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the thread's loop already ended
                self._loop.call_soon_threadsafe(self._stopping.set)
        await asyncio.to_thread(thread.join, _IO_TIMEOUT)
        if thread.is_alive():
            _log.warning("health listener thread did not stop within %.0fs", _IO_TIMEOUT)

    async def _beat(self) -> None:
        interval = min(1.0, self._max_lag / 4)
        while True:
            self._last_beat = time.monotonic()
            await asyncio.sleep(interval)

    async def _serve(self, started: concurrent.futures.Future[int]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            server = await asyncio.start_server(
                self._client, self._host, self._port, limit=_MAX_HEAD
            )
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(server.sockets[0].getsockname()[1])
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._clients):
                task.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)
            await server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self._clients) >= _MAX_CLIENTS:
            writer.close()
            return
        self._clients.add(task)
        try:
            response = await self._read_request(reader)
            if response is not None:
                writer.write(response)
                await asyncio.wait_for(writer.drain(), _IO_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            _log.debug("health connection dropped: %r", exc)
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), _IO_TIMEOUT)

    async def _read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """The encoded response to one request; ``None`` when the client went away first."""
        try:
            async with asyncio.timeout(_IO_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            return _encode(*_error(431, "request head too large"), head_only=False)
        except TimeoutError:
            return _encode(*_error(408, "request timed out"), head_only=False)
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return _encode(*_error(400, "malformed request line"), head_only=False)
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return _encode(*_error(405, "only GET and HEAD"), head_only=False)
        try:
            status, content_type, body = self._route(target)
        except Exception:
            _log.exception("health endpoint %s failed", target)
            status, content_type, body = _error(500, "internal error")
        return _encode(status, content_type, body, head_only=method == "HEAD")

    def _route(self, path: str) -> _Response:
        if path == "/health":
            lag = time.monotonic() - self._last_beat
            if lag <= self._max_lag:
                return 200, *_json({"status": "healthy"})
            return 503, *_json({"status": "unhealthy", "loop_lag_seconds": round(lag, 3)})
        if path == "/ready":
            if self._readiness():
                return 200, *_json({"status": "ready"})
            return 503, *_json({"status": "not ready"})
        if path == "/metrics" and self._metrics_text is not None:
            return 200, _METRICS, self._metrics_text().encode()
        return _error(404, f"no such endpoint: {path}")


def _json(doc: dict[str, object]) -> tuple[str, bytes]:
    return _JSON, orjson.dumps(doc)


def _error(status: int, message: str) -> _Response:
    """The HTTP error document every agnt5 HTTP surface answers with."""
    return status, _JSON, error_body(http_error(status, message))


def _encode(status: int, content_type: str, body: bytes, *, head_only: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + (b"" if head_only else body)
