"""Telemetry decided once at worker start: ``None`` means the hot path never calls OpenTelemetry.

A runtime calls `start_telemetry` when it starts, `Instrumentation.observe` around each
invocation when it got an instrumentation (else it runs the invocation directly), and
`stop_telemetry` when it stops. OpenTelemetry itself is imported only by `create_instrumentation`,
so importing this module stays cheap.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agnt5.config import env_flag
from agnt5.telemetry._env import exporter_names
from agnt5.telemetry._logs import install_worker_logging, remove_worker_logging

if TYPE_CHECKING:
    from agnt5.config import WorkerConfig
    from agnt5.telemetry._instrumentation import Instrumentation

__all__ = ["Instrumentation", "create_instrumentation", "start_telemetry", "stop_telemetry"]

_GLOBAL_APIS = ("opentelemetry.trace", "opentelemetry.metrics", "opentelemetry._logs")


def create_instrumentation(
    config: WorkerConfig,
    *,
    tracer_provider: Any = None,
    metric_readers: Sequence[Any] = (),
    logger_provider: Any = None,
) -> Instrumentation | None:
    """The worker's instrumentation, or ``None`` when there is nothing to do per invocation.

    ``None`` when telemetry is disabled (``AGNT5_DISABLE_TELEMETRY``, ``OTEL_SDK_DISABLED``), or
    when nothing would receive a span, a metric or a correlated log line: no provider or metric
    reader passed in, none set globally, no ``OTEL_*`` exporter configured, no ``/metrics`` to
    serve (a standalone worker's ``health_port`` is 0, or an ASGI worker) and ``log_format`` is
    not ``json``.
    """
    if config.disable_telemetry or env_flag("OTEL_SDK_DISABLED"):
        return None
    wanted = (
        tracer_provider is not None
        or bool(metric_readers)
        or logger_provider is not None
        or config.serves_metrics
        or config.log_format == "json"
        or any(exporter_names(signal) for signal in ("traces", "metrics", "logs"))
        or any(name in sys.modules for name in _GLOBAL_APIS)
    )
    if not wanted:
        return None
    from agnt5.telemetry._providers import build_instrumentation

    return build_instrumentation(
        config,
        tracer_provider=tracer_provider,
        metric_readers=list(metric_readers),
        logger_provider=logger_provider,
    )


def start_telemetry(config: WorkerConfig) -> Instrumentation | None:
    """At worker start: install the worker's log handler (unless telemetry is disabled; see
    `agnt5.telemetry._logs.install_worker_logging`), then instrument."""
    instrumentation = create_instrumentation(config)
    if not config.disable_telemetry:
        install_worker_logging(
            config.log_level,
            config.log_format,
            config.service_name,
            None if instrumentation is None else instrumentation.logger_provider,
        )
    return instrumentation


def stop_telemetry(instrumentation: Instrumentation | None) -> None:
    """At worker stop: remove the worker's log handler, then flush and shut down what was created."""
    remove_worker_logging()
    if instrumentation is not None:
        instrumentation.shutdown()


def __getattr__(name: str) -> Any:
    if name == "Instrumentation":
        from agnt5.telemetry._instrumentation import Instrumentation

        return Instrumentation
    raise AttributeError(f"module 'agnt5.telemetry' has no attribute {name!r}")
