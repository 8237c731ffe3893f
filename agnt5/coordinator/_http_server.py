"""Serve an ASGI app with uvicorn inside a running event loop, on a socket bound up front."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

__all__ = ["EmbeddedServer"]


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the embedding process owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class EmbeddedServer:
    """uvicorn serving ``app`` on ``host:port`` (0: ephemeral) until `stop`."""

    def __init__(self, app: Any, host: str, port: int, *, grace: float = 1.0) -> None:
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            error = OSError(
                f"cannot bind the HTTP gateway to {host}:{port} ({exc.strerror}): is the port "
                "in use? (choose another with --http-port)"
            )
            error.errno = exc.errno
            raise error from None
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=max(1, round(grace)),
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 10.0) -> None:
        """Start serving; returns once uvicorn accepts connections."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        async with asyncio.timeout(timeout):
            while not self._server.started:  # bounded by the timeout
                if self._task.done():
                    await self._task
                    raise RuntimeError("the HTTP gateway stopped while starting")
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop accepting, let open requests finish within the grace period, close the socket."""
        if self._task is not None:
            self._server.should_exit = True
            await self._task
            self._task = None
        self._sock.close()
