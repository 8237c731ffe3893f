"""uvicorn as every HTTP server agnt5 starts runs it: connections bounded, signals left to the embedder.

The coordinator's gateway, ``Worker.run()`` for ASGI and the standalone worker's health server
all serve through uvicorn with `guard_connections`:

- a connection with no request in progress (before its first request, between keep-alive
  requests, or while a request head trickles in) is closed ``idle_timeout`` seconds after it
  went idle; sending a byte at a time does not extend that;
- at most ``max_connections`` are open at once. A connection beyond the cap closes the one that
  has been idle the longest, so idle sockets can never lock clients out; only when every open
  connection has a request in progress does the newcomer get ``503``.

uvicorn's own ``limit_concurrency`` counts idle connections too (a few hundred idle sockets
would answer every client ``503``), and it times out a connection only after a response, so
neither is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import threading
from collections.abc import Generator
from typing import Any

import uvicorn

from agnt5._wire.http import error_body, http_error, respond

__all__ = [
    "DEFAULT_LIMITS",
    "BackgroundServer",
    "ConnectionLimits",
    "EmbeddedServer",
    "guard_connections",
]

_log = logging.getLogger("agnt5.http")


@dataclasses.dataclass(frozen=True)
class ConnectionLimits:
    """How many connections a server keeps open, and how long one may sit idle (seconds)."""

    max_connections: int = 1000
    idle_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {self.max_connections!r}")
        if not 0 < self.idle_timeout < float("inf"):
            raise ValueError(f"idle_timeout must be > 0 seconds, got {self.idle_timeout!r}")


DEFAULT_LIMITS = ConnectionLimits()
"""The gateway's and ``Worker.run()``'s: 1000 connections, closed after 5 s idle."""


async def _busy(scope: Any, receive: Any, send: Any) -> None:
    """The app a connection beyond the cap gets when no open connection is idle."""
    error = http_error(503, "the server is at its connection limit: retry shortly")
    await respond(send, 503, error_body(error), [(b"connection", b"close")])


class _Connections:
    """The connections of one server: how many are open, and the idle ones, oldest first."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open = 0
        self.idle: dict[Any, None] = {}

    def make_room(self) -> bool:
        """Before a new connection counts: close the longest-idle one if at the cap; False
        when at the cap with none idle."""
        if self.open < self.limits.max_connections:
            return True
        if not self.idle:
            return False
        oldest = next(iter(self.idle))
        oldest.close_idle()
        return True


def guard_connections(config: uvicorn.Config, limits: ConnectionLimits) -> uvicorn.Config:
    """Load ``config`` and make its HTTP connections obey ``limits`` (whichever HTTP
    implementation uvicorn picked); returns ``config``."""
    if not config.loaded:
        config.load()
    config.timeout_keep_alive = limits.idle_timeout  # type: ignore[assignment]
    config.http_protocol_class = _guarded(config.http_protocol_class, _Connections(limits))
    return config


def _guarded(base: type, connections: _Connections) -> type:
    timeout = connections.limits.idle_timeout

    class Guarded(base):  # type: ignore[valid-type, misc]
        """uvicorn's HTTP protocol, counted, timed out when idle, evicted when the oldest idle."""

        _idle_timer: asyncio.TimerHandle | None = None
        _counted = False

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if not connections.make_room():
                self.app = _busy
            connections.open += 1
            self._counted = True
            self._went_idle()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._in_request():
                self._not_idle()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self._in_request() and not self.transport.is_closing():
                self._went_idle()

        def connection_lost(self, exc: Exception | None) -> None:
            self._not_idle()
            if self._counted:
                self._counted = False
                connections.open -= 1
            super().connection_lost(exc)

        def close_idle(self) -> None:
            """Close this idle connection (its idle time is up, or room is needed)."""
            self._not_idle()
            if not self._in_request() and not self.transport.is_closing():
                self.transport.close()

        def _in_request(self) -> bool:
            cycle = self.cycle
            return cycle is not None and not cycle.response_complete

        def _went_idle(self) -> None:
            self._not_idle()
            connections.idle[self] = None
            self._idle_timer = self.loop.call_later(timeout, self.close_idle)

        def _not_idle(self) -> None:
            connections.idle.pop(self, None)
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the embedding process owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class EmbeddedServer:
    """uvicorn serving ``app`` on ``host:port`` (0: ephemeral) inside the running loop until `stop`.

    The socket is bound when constructed, so a busy port is an `OSError` there.
    """

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        grace: float = 1.0,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self._sock = _bind(host, port)
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            interface="asgi3",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=max(1, round(grace)),
        )
        self._server = _Server(guard_connections(config, limits or DEFAULT_LIMITS))
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 10.0) -> None:
        """Start serving; returns once uvicorn accepts connections."""
        task = self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        try:
            async with asyncio.timeout(timeout):
                while not self._server.started:  # bounded by the timeout
                    if task.done():
                        await task
                        raise RuntimeError("the HTTP server stopped while starting")
                    await asyncio.sleep(0.01)
        except BaseException:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self._task = None
            self._sock.close()
            raise

    def request_stop(self) -> None:
        """Ask the server to stop (safe from any thread); `stop` waits for it."""
        self._server.should_exit = True

    async def stop(self) -> None:
        """Stop accepting, let open requests finish within the grace period, close the socket."""
        self.request_stop()
        await self.closed()

    async def closed(self) -> None:
        """Return once the server has stopped (after `request_stop`) and its socket is closed."""
        if self._task is not None:
            await self._task
            self._task = None
        self._sock.close()


class BackgroundServer:
    """An `EmbeddedServer` on a thread and event loop of its own, so it answers even while the
    caller's loop is blocked. The socket is bound when constructed (`OSError` if busy)."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        name: str,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self._server = EmbeddedServer(app, host, port, limits=limits)
        self.port = self._server.port
        self._name = name
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread; returns once the server accepts connections (raises if it cannot)."""
        if self._thread is not None:
            raise RuntimeError(f"{self._name} is already started")
        ready = _Outcome()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(ready, timeout),), name=self._name, daemon=True
        )
        self._thread.start()
        try:
            ready.wait(timeout + 1.0)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server and join its thread (open requests get a second); safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._server.request_stop()
        thread.join(timeout)
        if thread.is_alive():
            _log.warning("%s did not stop within %.0fs", self._name, timeout)

    async def _serve(self, ready: _Outcome, timeout: float) -> None:
        try:
            await self._server.start(timeout)
        except BaseException as exc:  # handed to the thread that waits in start()
            ready.fail(exc)
            return
        ready.done()
        await self._server.closed()  # once stop() asks it to


class _Outcome:
    """A one-shot result handed from the server's thread to the one waiting for it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._error: BaseException | None = None

    def done(self) -> None:
        self._event.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._event.set()

    def wait(self, timeout: float) -> None:
        if not self._event.wait(timeout):
            raise TimeoutError(f"the server did not start within {timeout:g}s")
        if self._error is not None:
            raise self._error
