"""Standalone runtime: the worker dials a coordinator over one gRPC stream and serves until stopped.

grpc loads when `run()` starts, so importing agnt5 stays light.

Lifecycle of ``await worker.run()``:

1. Connect (TLS for ``https://`` endpoints; ``authorization: Bearer <key>`` when an API key is
   set), send ``Register`` with every component, wait for ``RegisterAck``.
2. Serve: invocations run concurrently, async handlers as tasks, sync handlers in the worker's
   own bounded thread pool (or on the loop with ``@function(inline=True)``); results stream back
   in batches; heartbeats keep the session alive; ``Cancel`` and per-function timeouts apply.
3. If the coordinator is not up yet or goes away: log, wait a jittered exponential backoff
   (0.5 s doubling to 30 s) and reconnect, registering again. A refused connection never ends
   ``run()``; a refused key does (`UnauthenticatedError`): trying again cannot help.
4. On SIGINT/SIGTERM or `stop()`: take no new work, send ``Drain``, let in-flight work finish
   for up to ``drain_timeout`` seconds, cancel what remains (reported ``CANCELLED``, retryable,
   so the coordinator re-delivers it), unregister, close the stream and return normally.

Signals: the worker installs SIGINT/SIGTERM handlers on its loop while it runs. A handler the
application installed before calling ``run()`` (``signal.signal(SIGTERM, ...)``) is still
called after the worker starts draining, and is restored when ``run()`` returns. A second
signal while draining skips the rest of the drain wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from typing import TYPE_CHECKING, Any

from agnt5._pipeline import Pipeline
from agnt5.errors import UnauthenticatedError

if TYPE_CHECKING:
    from agnt5._registry import Registry
    from agnt5.config import WorkerConfig

__all__ = ["StandaloneRuntime", "reconnect_delay"]

_log = logging.getLogger("agnt5.worker")

_BACKOFF_INITIAL = 0.5
_BACKOFF_CAP = 30.0


def reconnect_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failed connections (jittered, capped)."""
    ceiling = min(_BACKOFF_CAP, _BACKOFF_INITIAL * 2 ** max(0, failures - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class StandaloneRuntime:
    """Serves ``registry``'s components to the coordinator ``config`` names, over one gRPC stream."""

    def __init__(self, config: WorkerConfig, registry: Registry) -> None:
        self._config = config
        self._registry = registry
        self._running = False
        self._registered = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._hurry: asyncio.Event | None = None
        self._stop_reason = "stop requested"

    def is_running(self) -> bool:
        """True from `run()`'s start until it begins to drain."""
        return self._running

    @property
    def registered(self) -> bool:
        """True while a session with the coordinator is registered (the readiness signal)."""
        return self._registered

    def stop(self, reason: str = "stop requested") -> None:
        """Begin draining; callable from any thread. A second call skips the drain wait."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
            loop.call_soon_threadsafe(self._request_stop, reason)

    def _request_stop(self, reason: str) -> None:
        assert self._stop is not None and self._hurry is not None
        if self._stop.is_set():
            _log.warning("second stop request: cancelling in-flight work now")
            self._hurry.set()
            return
        _log.info("stopping: %s", reason)
        self._stop_reason = reason
        self._running = False
        self._stop.set()

    async def run(self) -> None:
        """Serve until stopped; reconnects forever; returns normally after draining."""
        if self._loop is not None:
            raise RuntimeError("this worker is already running")
        from agnt5.runtimes._signals import ShutdownSignals

        self._loop = asyncio.get_running_loop()
        self._stop, self._hurry = asyncio.Event(), asyncio.Event()
        signals = ShutdownSignals(lambda signum: self._request_stop(signal.Signals(signum).name))
        signals.install(self._loop)
        pipeline = Pipeline.start(self._config, self._registry)
        health = await self._start_health(pipeline)
        self._running = True
        try:
            await self._serve_forever(pipeline)
        finally:
            self._running = self._registered = False
            signals.uninstall()
            if health is not None:
                await health.stop()
            pipeline.stop()
            self._loop = None

    async def _start_health(self, pipeline: Pipeline) -> Any:
        """The /health, /ready and /metrics server on ``health_host:health_port`` (port 0:
        none); a port that cannot be bound is a warning, and the worker serves without it."""
        config = self._config
        if config.health_port == 0:
            return None
        from agnt5.runtimes.health import HealthServer

        telemetry, threads = pipeline.telemetry, pipeline.executor
        exposition = None if telemetry is None else telemetry.exposition
        health = HealthServer(
            config.health_host,
            config.health_port,
            lambda: self._registered,
            None if exposition is None else exposition.render,
            details=lambda: {"threads": _thread_usage(threads)},
        )
        try:
            await health.start()
        except OSError as exc:
            _log.warning(
                "health endpoints not served: cannot listen on %s:%d (%s); set AGNT5_HEALTH_PORT "
                "to a free port, or 0 to turn them off",
                config.health_host,
                config.health_port,
                exc.strerror or exc,
            )
            return None
        _log.info(
            "health endpoints on %s:%d: /health /ready /metrics", config.health_host, health.port
        )
        return health

    async def _serve_forever(self, pipeline: Pipeline) -> None:
        assert self._stop is not None
        failures = 0
        while not self._stop.is_set():
            try:
                registered = await self._one_session(pipeline)
            except UnauthenticatedError:
                raise
            except Exception as exc:  # every connection failure ends in a retry, never in run()
                registered = False
                _log.warning("coordinator session failed: %s", _describe(exc))
            if self._stop.is_set():
                return
            failures = 1 if registered else failures + 1
            delay = reconnect_delay(failures)
            _log.info("reconnecting to %s in %.2fs", self._config.coordinator_endpoint, delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _one_session(self, pipeline: Pipeline) -> bool:
        """Connect, register and serve until the session ends; True if it registered."""
        import grpc

        from agnt5._wire.streams import worker_stream
        from agnt5.runtimes._session import Session

        assert self._stop is not None and self._hurry is not None
        config = self._config
        async with _channel(config) as channel:
            metadata = (("authorization", f"Bearer {config.api_key}"),) if config.api_key else None
            call = worker_stream(channel, metadata)
            session = Session(call, config, pipeline)
            try:
                count = await session.register()
            except grpc.aio.AioRpcError as exc:
                code, details = await _refusal(call, exc)
                if code == grpc.StatusCode.UNAUTHENTICATED:
                    raise UnauthenticatedError(
                        f"the coordinator at {config.coordinator_endpoint} refused this worker: "
                        f"{details} (a worker key goes in AGNT5_API_KEY or Worker(api_key=...))"
                    ) from None
                raise ConnectionError(f"{code.name}: {details}") from None
            self._registered = True
            _log.info(
                "registered %d component(s) of %s with %s as %s",
                count,
                config.service_name,
                config.coordinator_endpoint,
                config.worker_id,
            )
            try:
                ended = await _first(session.serve(), self._stop.wait())
                self._registered = False
                if ended is None:  # we were asked to stop
                    await _first(
                        session.drain(self._stop_reason, config.drain_timeout), self._hurry.wait()
                    )
                else:
                    _log.warning("session ended: %s", ended)
                    if ended == "coordinator drain":
                        await session.drain(ended, config.drain_timeout)
            finally:
                self._registered = False
                await session.close(self._stop_reason if self._stop.is_set() else "reconnecting")
        return True


def _thread_usage(threads: Any) -> dict[str, int]:
    """What ``/health`` says of the sync-handler threads (`agnt5._handler_threads.ThreadUsage`)."""
    return {"size": threads.size, "busy": threads.busy, "timed_out": threads.timed_out}


async def _first(primary: Any, interrupt: Any) -> Any:
    """Await ``primary`` unless ``interrupt`` finishes first; returns primary's result or None."""
    primary_task = asyncio.ensure_future(primary)
    interrupt_task = asyncio.ensure_future(interrupt)
    try:
        await asyncio.wait({primary_task, interrupt_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        interrupt_task.cancel()
        if not primary_task.done():
            primary_task.cancel()
        await asyncio.gather(primary_task, interrupt_task, return_exceptions=True)
    if primary_task.cancelled():
        return None
    return primary_task.result()


@contextlib.asynccontextmanager
async def _channel(config: Any) -> Any:
    import grpc

    endpoint = config.endpoint
    options = [
        ("grpc.max_send_message_length", -1),  # results are checked against the coordinator's
        ("grpc.max_receive_message_length", -1),  # limit (RegisterAck); invokes are its own
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
    ]
    if endpoint.secure:
        channel = grpc.aio.secure_channel(endpoint.target, grpc.ssl_channel_credentials(), options)
    else:
        channel = grpc.aio.insecure_channel(endpoint.target, options)
    try:
        yield channel
    finally:
        await channel.close(grace=None)


async def _refusal(call: Any, exc: Any) -> tuple[Any, str]:
    """Why the coordinator refused the stream, as (status code, details): a failed write can
    hide the real status."""
    try:
        code = await asyncio.wait_for(call.code(), 2.0)
        details = await asyncio.wait_for(call.details(), 2.0)
        return code, details
    except Exception:
        return exc.code(), exc.details()
    finally:
        call.cancel()


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    details = getattr(exc, "details", None)
    if callable(code) and callable(details):
        return f"{code().name}: {details()}"
    return f"{type(exc).__name__}: {exc}"
