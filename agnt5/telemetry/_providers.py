"""Resolve the tracer, meter and logger providers: passed in > set globally > built from ``OTEL_*`` variables."""

from __future__ import annotations

import importlib.metadata
import logging
import os
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from agnt5._version import __version__
from agnt5.config import WorkerConfig
from agnt5.telemetry._env import exporter_names
from agnt5.telemetry._exposition import Exposition
from agnt5.telemetry._instrumentation import Instrumentation

__all__ = ["build_instrumentation", "coordinator_providers"]

_log = logging.getLogger("agnt5.telemetry")
_OTLP_HINT = "pip install opentelemetry-exporter-otlp-proto-grpc (or -proto-http)"


def build_instrumentation(
    config: WorkerConfig,
    *,
    tracer_provider: Any,
    metric_readers: list[Any],
    logger_provider: Any,
) -> Instrumentation | None:
    """Build the instrumentation from what resolves; ``None`` when nothing does and logs stay uncorrelated."""
    resource = _resource(config.service_name, config.service_version, config.worker_id)
    owned: list[Any] = []
    tracer = _tracer(tracer_provider, resource, owned)
    exposition = Exposition() if config.serves_metrics else None
    meter = _meter(metric_readers + ([exposition.reader] if exposition else []), resource, owned)
    logs = logger_provider if logger_provider is not None else _logger_provider(resource, owned)
    if tracer is None and meter is None and logs is None and config.log_format != "json":
        return None
    return Instrumentation(
        config.service_name,
        tracer=tracer,
        meter=meter,
        logger_provider=logs,
        exposition=exposition,
        owned=owned,
    )


def coordinator_providers(
    instance_id: str, exposition: Exposition | None
) -> tuple[Any, Any, list[Any]]:
    """The coordinator's tracer and meter (None where nothing would receive them) and the
    providers made for them, to shut down when it stops: spans and metrics go where the
    ``OTEL_*`` variables or a global provider say, metrics to ``exposition`` too."""
    resource = _resource("agnt5-coordinator", __version__, instance_id)
    owned: list[Any] = []
    tracer = _tracer(None, resource, owned)
    readers = [exposition.reader] if exposition is not None else []
    return tracer, _meter(readers, resource, owned), owned


def _tracer(given: Any, resource: Resource, owned: list[Any]) -> Any:
    provider = given if given is not None else _global(trace.get_tracer_provider(), TracerProvider)
    if provider is None:
        exporters = _exporters("traces")
        if not exporters:
            return None
        provider = TracerProvider(resource=resource)
        for exporter in exporters:
            provider.add_span_processor(BatchSpanProcessor(exporter()))
        owned.append(provider)
    return provider.get_tracer("agnt5", __version__)


def _meter(readers: list[Any], resource: Resource, owned: list[Any]) -> Any:
    for exporter in _exporters("metrics"):
        readers.append(
            exporter()
            if issubclass(exporter, MetricReader)
            else PeriodicExportingMetricReader(exporter())
        )
    if readers:
        provider = MeterProvider(metric_readers=readers, resource=resource)
        owned.append(provider)
    else:
        provider = _global(metrics.get_meter_provider(), MeterProvider)
        if provider is None:
            return None
    return provider.get_meter("agnt5", __version__)


def _logger_provider(resource: Resource, owned: list[Any]) -> Any:
    provider = _global(_logs.get_logger_provider(), LoggerProvider)
    if provider is None:
        exporters = _exporters("logs")
        if not exporters:
            return None
        provider = LoggerProvider(resource=resource)
        for exporter in exporters:
            provider.add_log_record_processor(BatchLogRecordProcessor(exporter()))
        owned.append(provider)
    return provider


def _global(provider: Any, sdk_type: type) -> Any:
    """The global provider when the application configured an SDK one (not the API's proxy or no-op)."""
    return provider if isinstance(provider, sdk_type) else None


def _exporters(signal: str) -> list[Any]:
    """The exporter classes named by ``OTEL_<SIGNAL>_EXPORTER`` that are installed (entry points)."""
    found = []
    for name in exporter_names(signal):
        entry = _entry_point(signal, _otlp_flavour(signal) if name == "otlp" else name)
        if entry is None:
            hint = f" ({_OTLP_HINT})" if name.startswith("otlp") else ""
            _log.warning(
                "OTEL_%s_EXPORTER: exporter %r is not installed%s", signal.upper(), name, hint
            )
        else:
            found.append(entry.load())
    return found


def _entry_point(signal: str, name: str) -> importlib.metadata.EntryPoint | None:
    matches = importlib.metadata.entry_points(group=f"opentelemetry_{signal}_exporter", name=name)
    return next(iter(matches), None)


def _otlp_flavour(signal: str) -> str:
    protocol = (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    )
    return "otlp_proto_http" if protocol.strip().startswith("http") else "otlp_proto_grpc"


def _resource(service_name: str, version: str, instance_id: str) -> Resource:
    attributes = {"service.version": version, "service.instance.id": instance_id}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = service_name
    return Resource.create(attributes)
