"""`Coordinator`: the dev coordinator's lifecycle — gRPC server, HTTP gateway, liveness checks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

import grpc

from agnt5 import config
from agnt5._wire.streams import add_services
from agnt5.coordinator._http_server import EmbeddedServer
from agnt5.coordinator.gateway import build_gateway
from agnt5.coordinator.invocations_service import InvocationsService
from agnt5.coordinator.registry import Registry
from agnt5.coordinator.scheduler import Scheduler
from agnt5.coordinator.store import MemoryStore, StateStore
from agnt5.coordinator.worker_sessions import WorkerSessions

__all__ = ["DEFAULT_MAX_INPUT_BYTES", "Coordinator"]

_log = logging.getLogger("agnt5.coordinator")

DEFAULT_MAX_INPUT_BYTES = config.MAX_BODY_BYTES
_MIN_MESSAGE_BYTES = 64 * 1024 * 1024


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Coordinator:
    """The dev coordinator: gRPC (``WorkerCoordinator`` and ``Invocations``) plus an HTTP gateway.

    Embeddable: ``async with Coordinator(port=0, http_port=0) as c: ...`` serves on ephemeral
    ports (read `port` / `http_port` after `start`); ``http_port=None`` runs no gateway. With
    ``api_key`` set, workers and clients must send ``authorization: Bearer <api_key>``.

    State lives in memory (a `MemoryStore`) unless ``store`` is given, e.g. a
    `agnt5.coordinator.journal.SqliteStore`: then invocations the store holds unfinished are
    queued again at `start` (see `agnt5.coordinator` for the delivery guarantee), and `stop`
    closes the store before failing waiting clients, so a stop is not journaled as failures.
    Services are never stored: workers re-register when they reconnect.
    """

    def __init__(
        self,
        host: str = config.LOCALHOST,
        port: int = config.COORDINATOR_PORT,
        http_port: int | None = None,
        *,
        api_key: str | None = None,
        max_queue: int = config.MAX_QUEUE,
        max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        heartbeat_interval: float = config.HEARTBEAT_INTERVAL,
        heartbeat_timeout: float = config.HEARTBEAT_TIMEOUT,
        http_wait_timeout: float = config.GATEWAY_WAIT,
        store: StateStore | None = None,
    ) -> None:
        if max_queue < 0 or max_input_bytes < 1:
            raise ValueError("max_queue must be >= 0 and max_input_bytes >= 1")
        if not 0 < heartbeat_interval < heartbeat_timeout:
            raise ValueError("need 0 < heartbeat_interval < heartbeat_timeout")
        self.host = host
        self._requested = (port, http_port)
        self._api_key = api_key or None
        self._max_input_bytes = max_input_bytes
        self._http_wait_timeout = http_wait_timeout
        self._registry = Registry()
        self._store: StateStore = store if store is not None else MemoryStore()
        self._scheduler = Scheduler(
            self._registry,
            self._store,
            max_queue=max_queue,
            max_input_bytes=max_input_bytes,
        )
        self._sessions = WorkerSessions(
            self._scheduler,
            self._registry,
            api_key=self._api_key,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
        )
        self._grpc: grpc.aio.Server | None = None
        self._http: EmbeddedServer | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._port: int | None = None
        self._stopped = False

    @property
    def port(self) -> int:
        """The bound gRPC port (after `start`)."""
        if self._port is None:
            raise RuntimeError("the coordinator is not started")
        return self._port

    @property
    def http_port(self) -> int | None:
        """The bound HTTP gateway port (after `start`), or None without a gateway."""
        return self._http.port if self._http is not None else None

    @property
    def endpoint(self) -> str:
        """``http://host:port`` for `agnt5.client.Client` and workers."""
        return f"http://{_address(self.host, self.port)}"

    async def start(self) -> None:
        """Bind and serve; raises if a port cannot be bound. A coordinator starts once."""
        if self._grpc is not None or self._stopped:
            raise RuntimeError("a coordinator starts once: create a new one")
        port, http_port = self._requested
        message_limit = max(_MIN_MESSAGE_BYTES, 2 * self._max_input_bytes)
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", message_limit),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),  # a second coordinator on a busy port must fail
            ]
        )
        add_services(
            server,
            self._sessions,
            InvocationsService(self._scheduler, self._registry, api_key=self._api_key),
        )
        try:
            bound = server.add_insecure_port(_address(self.host, port))
        except RuntimeError:
            bound = 0
        if not bound:
            raise OSError(f"cannot bind the coordinator to {_address(self.host, port)}")
        await server.start()
        self._grpc, self._port = server, bound
        try:
            if http_port is not None:
                app = build_gateway(
                    self._scheduler,
                    self._registry,
                    api_key=self._api_key,
                    wait_timeout=self._http_wait_timeout,
                )
                self._http = EmbeddedServer(app, self.host, http_port)
                await self._http.start()
            self._reaper = asyncio.create_task(self._sessions.reap())
            self._scheduler.recover(self._store.unfinished())
        except BaseException:
            await self.stop(grace=0)
            raise
        _log.info(
            "coordinator serving gRPC on %s, HTTP gateway on %s",
            _address(self.host, bound),
            _address(self.host, self._http.port) if self._http is not None else "(none)",
        )

    async def stop(self, grace: float = 1.0) -> None:
        """Drain workers, fail unfinished invocations with UNAVAILABLE, stop both servers."""
        self._stopped = True
        self._sessions.drain_all("coordinator shutting down", grace)
        self._store.close()
        self._scheduler.close()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        if self._http is not None:
            await self._http.stop()
            self._http = None
        if self._grpc is not None:
            await self._grpc.stop(grace)
            self._grpc = self._port = None

    async def __aenter__(self) -> Coordinator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
