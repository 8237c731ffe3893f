"""`Coordinator`: the dev coordinator's lifecycle — gRPC server, HTTP gateway, liveness checks."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import grpc

from agnt5 import config
from agnt5._wire.batching import MAX_BYTES
from agnt5._wire.serving import EmbeddedServer
from agnt5._wire.streams import add_services
from agnt5.coordinator.auth import Credentials, Key
from agnt5.coordinator.gateway import build_gateway
from agnt5.coordinator.invocations_service import InvocationsService
from agnt5.coordinator.queues import QueueLimits
from agnt5.coordinator.registry import Registry
from agnt5.coordinator.scheduler import Scheduler
from agnt5.coordinator.store import MemoryStore, StateStore
from agnt5.coordinator.worker_sessions import WorkerSessions

__all__ = ["DEFAULT_MAX_INPUT_BYTES", "DEFAULT_MAX_OUTPUT_BYTES", "Coordinator"]

_log = logging.getLogger("agnt5.coordinator")

DEFAULT_MAX_INPUT_BYTES = config.MAX_BODY_BYTES
DEFAULT_MAX_OUTPUT_BYTES = config.MAX_OUTPUT_BYTES
_FRAME_ROOM = 2 * MAX_BYTES  # a batch frame: full batches up to MAX_BYTES, plus one item
_WORKER_RECONNECT = 30.0  # seconds: a standalone worker tries to reconnect at least this often


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_free(host: str, port: int) -> None:
    """Raise our `OSError` for a port already in use, before gRPC logs its own error."""
    try:
        socket.create_server((host, port), family=_family(host)).close()
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve the coordinator's host {host!r} (--host): {exc}") from None
    except OSError:
        raise _unbound(host, port) from None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _gateway_server(app: Any, host: str, port: int) -> EmbeddedServer:
    """The gateway's server, its socket bound; a busy port is an `OSError` naming it."""
    try:
        return EmbeddedServer(app, host, port)
    except OSError as exc:
        error = OSError(
            f"cannot bind the HTTP gateway to {_address(host, port)} ({exc.strerror}): is the "
            "port in use? (choose another with --http-port)"
        )
        error.errno = exc.errno
        raise error from None


def _unbound(host: str, port: int) -> OSError:
    return OSError(
        f"cannot bind the coordinator to {_address(host, port)}: is the port in use? "
        "(choose another with --port)"
    )


class Coordinator:
    """The dev coordinator: gRPC (``WorkerCoordinator`` and ``Invocations``) plus an HTTP gateway.

    Embeddable: ``async with Coordinator(port=0, http_port=0) as c: ...`` serves on ephemeral
    ports (read `port` / `http_port` after `start`); ``http_port=None`` runs no gateway.

    Workers and clients are separate principals (`agnt5.coordinator.auth`): ``keys`` lists
    worker keys and client keys, each optionally limited to some services, and ``api_key`` is
    a key for both. A role with no key is open to anyone; with keys, a caller must send
    ``authorization: Bearer <key>`` with one valid for its role. The gateway answers requests
    whose ``Host`` is an IP address, localhost or one of ``allowed_hosts`` (default: ``host``;
    ``"*"``: any), so a web page cannot reach it by DNS rebinding.

    Invocations with no free worker wait in a queue bounded in count and in input bytes, in
    all and per service (per service: half of each total unless given); ``queue_expiry``
    (seconds, default none) fails one that waited that long with ``TIMEOUT``. A worker's
    result larger than ``max_output_bytes`` fails its invocation with ``PAYLOAD_TOO_LARGE``
    (workers learn the limit when they register and check it themselves). A service with no
    worker and nothing queued for ``forget_services_after`` seconds (default: a day, as the
    journal's retention) is forgotten.

    State lives in memory (a `MemoryStore`) unless ``store`` is given, e.g. a
    `agnt5.coordinator.journal.SqliteStore`: then invocations the store holds unfinished are
    queued again at `start` (see `agnt5.coordinator` for the delivery guarantee), and `stop`
    closes the store before failing waiting clients, so a stop is not journaled as failures.
    Services are never stored: workers re-register when they reconnect.

    The gateway's port also serves the console (``/console``; ``console=False``: not) and the
    API's description (``/openapi.json`` and the ``/docs`` page; ``docs=False``: not).
    """

    def __init__(
        self,
        host: str = config.LOCALHOST,
        port: int = config.COORDINATOR_PORT,
        http_port: int | None = None,
        *,
        api_key: str | None = None,
        keys: Iterable[Key] = (),
        allowed_hosts: Iterable[str] | None = None,
        max_queue: int = config.MAX_QUEUE,
        max_queue_per_service: int | None = None,
        max_queued_bytes: int = config.MAX_QUEUED_BYTES,
        max_queued_bytes_per_service: int | None = None,
        queue_expiry: float | None = None,
        max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        heartbeat_interval: float = config.HEARTBEAT_INTERVAL,
        heartbeat_timeout: float = config.HEARTBEAT_TIMEOUT,
        forget_services_after: float = config.RETENTION,
        http_wait_timeout: float = config.GATEWAY_WAIT,
        console: bool = True,
        docs: bool = True,
        store: StateStore | None = None,
    ) -> None:
        if max_input_bytes < 1 or max_output_bytes < 1:
            raise ValueError(
                f"max_input_bytes and max_output_bytes must be >= 1, got {max_input_bytes!r} "
                f"and {max_output_bytes!r}"
            )
        if not 0 < heartbeat_interval < heartbeat_timeout:
            raise ValueError("need 0 < heartbeat_interval < heartbeat_timeout")
        if not 0 <= http_wait_timeout < float("inf"):
            raise ValueError(f"http_wait_timeout must be >= 0 seconds, got {http_wait_timeout!r}")
        if not forget_services_after > 0:
            raise ValueError(f"forget_services_after must be > 0, got {forget_services_after!r}")
        self.host = host
        self._requested = (port, http_port)
        both = [Key(api_key, worker=True, client=True)] if api_key else []
        self._credentials = Credentials([*keys, *both])
        self._allowed_hosts = [host] if allowed_hosts is None else list(allowed_hosts)
        self._message_limit = max(2 * max_input_bytes, max_output_bytes) + _FRAME_ROOM
        self._http_wait_timeout = http_wait_timeout
        self._pages = {"console": console, "docs": docs}
        self._registry = Registry()
        self._store: StateStore = store if store is not None else MemoryStore()
        limits = QueueLimits(
            max_queue=max_queue,
            max_queue_per_service=max_queue_per_service,
            max_queued_bytes=max_queued_bytes,
            max_queued_bytes_per_service=max_queued_bytes_per_service,
            queue_expiry=queue_expiry,
        )
        self._scheduler = Scheduler(
            self._registry,
            self._store,
            limits=limits,
            max_input_bytes=max_input_bytes,
            max_output_bytes=max_output_bytes,
        )
        self._sessions = WorkerSessions(
            self._scheduler,
            self._registry,
            credentials=self._credentials,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            forget_after=forget_services_after,
        )
        self._grpc: grpc.aio.Server | None = None
        self._http: EmbeddedServer | None = None
        self._providers: list[Any] = []  # OpenTelemetry providers made at start
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
    def console_url(self) -> str | None:
        """The console's address (after `start`), or None without a gateway or console."""
        if self._http is None or not self._pages["console"]:
            return None
        host = "localhost" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{_address(host, self._http.port)}/console"

    @property
    def endpoint(self) -> str:
        """``http://host:port`` for `agnt5.client.Client` and workers."""
        return f"http://{_address(self.host, self.port)}"

    async def start(self) -> None:
        """Bind and serve; raises if a port cannot be bound. A coordinator starts once."""
        if self._grpc is not None or self._stopped:
            raise RuntimeError("a coordinator starts once: create a new one")
        port, http_port = self._requested
        if port:
            _check_free(self.host, port)
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", self._message_limit),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),  # a second coordinator on a busy port must fail
            ]
        )
        add_services(
            server,
            self._sessions,
            InvocationsService(self._scheduler, self._registry, self._credentials),
        )
        try:
            bound = server.add_insecure_port(_address(self.host, port))
        except RuntimeError:
            bound = 0
        if not bound:
            raise _unbound(self.host, port)
        await server.start()
        self._grpc, self._port = server, bound
        try:
            metrics = self._start_telemetry(with_exposition=http_port is not None)
            if http_port is not None:
                app = build_gateway(
                    self._scheduler,
                    self._registry,
                    self._credentials,
                    allowed_hosts=self._allowed_hosts,
                    wait_timeout=self._http_wait_timeout,
                    metrics=metrics,
                    **self._pages,
                )
                self._http = _gateway_server(app, self.host, http_port)
                await self._http.start()
            self._reaper = asyncio.create_task(self._sessions.reap())
            grace = _WORKER_RECONNECT if self._store.durable else 0.0
            self._scheduler.recover(self._store.unfinished(), reconnect_grace=grace)
            self._store.on_orphans(self._scheduler.adopt, self._scheduler.served_here)
        except BaseException:
            await self.stop(grace=0)
            raise
        self._warn_open_roles()
        _log.info(
            "coordinator serving gRPC on %s, HTTP gateway on %s",
            _address(self.host, bound),
            _address(self.host, self._http.port) if self._http is not None else "(none)",
        )

    def _start_telemetry(self, *, with_exposition: bool) -> Any:
        """Spans and metrics where ``OTEL_*`` says; the gateway's ``/metrics`` renderer when
        ``with_exposition`` (None when telemetry is disabled, as for workers)."""
        if config.env_flag("AGNT5_DISABLE_TELEMETRY") or config.env_flag("OTEL_SDK_DISABLED"):
            return None
        from agnt5.telemetry._exposition import Exposition
        from agnt5.telemetry._providers import coordinator_providers

        exposition = Exposition() if with_exposition else None
        instance = f"{socket.gethostname()}-{os.getpid()}"
        tracer, meter, self._providers = coordinator_providers(instance, exposition)
        telemetry = self._scheduler.telemetry
        telemetry.attach(meter, tracer)
        self._store.observe_commits(telemetry.committed)
        return None if exposition is None else exposition.render

    def _warn_open_roles(self) -> None:
        """Say so when a role anyone may take looks unintended: the other role has keys, or
        the coordinator listens beyond this machine."""
        open_roles = self._credentials.open_roles()
        if not open_roles or (len(open_roles) == 2 and _loopback(self.host)):
            return
        for role in open_roles:
            _log.warning(
                "no %s key is set (--%s-key or --api-key): anyone who can reach %s may connect "
                "as a %s",
                role,
                role,
                _address(self.host, self.port),
                role,
            )

    async def stop(self, grace: float = 1.0) -> None:
        """Drain workers, fail unfinished invocations with UNAVAILABLE, stop both servers."""
        self._stopped = True
        self._sessions.drain_all("coordinator shutting down", grace)
        self._store.close()
        self._scheduler.close()
        self._scheduler.events.close()  # event streams end, so the gateway stops at once
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
        providers, self._providers = self._providers, []
        for provider in providers:
            provider.shutdown()

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
