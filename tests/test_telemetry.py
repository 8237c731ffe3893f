"""`agnt5.telemetry`: the decision at start, the span and metrics around each invocation, clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from _coordinator_support import PYTHON
from _metrics import check_with_promtool, samples
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from agnt5 import Context, function
from agnt5._pipeline import Pipeline
from agnt5._registry import REGISTRY
from agnt5.config import WorkerConfig
from agnt5.errors import AgntError
from agnt5.telemetry import Instrumentation, create_instrumentation, start_telemetry, stop_telemetry

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
_OTEL_ENV = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "AGNT5_DISABLE_TELEMETRY",
    "AGNT5_LOG_FORMAT",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _OTEL_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def instrumentation(
    spans: InMemorySpanExporter, reader: InMemoryMetricReader
) -> Iterator[Instrumentation]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    made = create_instrumentation(_config(), tracer_provider=provider, metric_readers=[reader])
    assert made is not None
    yield made
    made.shutdown()
    provider.shutdown()


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset((f"agnt5_{key}", value) for key, value in labels.items())


def _config(**options: Any) -> WorkerConfig:
    """A worker's settings; no health port (so no /metrics) unless ``options`` give one."""
    return WorkerConfig.resolve({}, service_name="orders", **{"health_port": 0, **options})


@pytest.fixture
def handlers(registry: None) -> None:
    @function(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @function(name="explode")
    def explode(ctx: Context) -> None:
        raise ValueError("Something went wrong")

    @function(name="wait")
    async def wait(ctx: Context) -> str:
        await asyncio.sleep(3600)
        return "never"


async def _invoke(
    instrumentation: Instrumentation,
    name: str,
    payload: bytes = b"",
    metadata: dict[str, str] | None = None,
    invocation_id: str = "inv-1",
) -> bytes:
    route = Pipeline("orders", REGISTRY, telemetry=instrumentation).route(name)
    return await route.run(payload, invocation_id, 2, metadata or {})


def _only(spans: InMemorySpanExporter) -> ReadableSpan:
    (span,) = spans.get_finished_spans()
    return span


@pytest.mark.asyncio
async def test_span_is_a_child_of_the_incoming_traceparent(
    handlers: None, instrumentation: Instrumentation, spans: InMemorySpanExporter
) -> None:
    assert await _invoke(instrumentation, "add", b"[1, 2]", {"traceparent": TRACEPARENT}) == b"3"
    span = _only(spans)
    assert span.name == "invoke add" and span.kind is SpanKind.SERVER
    assert span.parent is not None and span.parent.is_remote
    assert (f"{span.context.trace_id:032x}", f"{span.parent.span_id:016x}") == (TRACE_ID, PARENT_ID)
    assert dict(span.attributes or {}) == {
        "agnt5.service": "orders",
        "agnt5.function": "add",
        "agnt5.invocation_id": "inv-1",
        "agnt5.attempt": 2,
        "agnt5.outcome": "success",
    }
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.asyncio
async def test_without_traceparent_the_span_is_a_root(
    handlers: None, instrumentation: Instrumentation, spans: InMemorySpanExporter
) -> None:
    await _invoke(instrumentation, "add", b"[1, 2]", {"other": "x"})
    assert _only(spans).parent is None


@pytest.mark.asyncio
async def test_failed_invocation_span_has_outcome_error_code_and_exception(
    handlers: None, instrumentation: Instrumentation, spans: InMemorySpanExporter
) -> None:
    with pytest.raises(AgntError) as raised:
        await _invoke(instrumentation, "explode")
    assert raised.value.message == "Function explode failed: Something went wrong"
    span = _only(spans)
    attributes = dict(span.attributes or {})
    assert (attributes["agnt5.outcome"], attributes["agnt5.error_code"]) == (
        "error",
        "FUNCTION_FAILED",
    )
    assert attributes["error.type"] == "FUNCTION_FAILED"
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


def _points(reader: InMemoryMetricReader) -> dict[str, dict[frozenset[tuple[str, Any]], Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: {
            frozenset(point.attributes.items()): point for point in metric.data.data_points
        }
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def _key(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset((f"agnt5.{name}", value) for name, value in labels.items())


@pytest.mark.asyncio
async def test_metrics_after_n_invocations_including_failures(
    handlers: None, instrumentation: Instrumentation, reader: InMemoryMetricReader
) -> None:
    for n in range(3):
        await _invoke(instrumentation, "add", b"[%d, 1]" % n)
    for payload in (b"[1]", b'{"a": 1, "b": 2, "c": 3}'):
        with pytest.raises(AgntError):
            await _invoke(instrumentation, "add", payload)
    with pytest.raises(AgntError):
        await _invoke(instrumentation, "explode")
    points = _points(reader)
    counts = {key: point.value for key, point in points["agnt5.invocations"].items()}
    assert counts == {
        _key(function="add", outcome="success"): 3,
        _key(function="add", outcome="error", error_code="INVALID_ARGUMENT"): 2,
        _key(function="explode", outcome="error", error_code="FUNCTION_FAILED"): 1,
    }
    durations = points["agnt5.invocation.duration"]
    assert {key: point.count for key, point in durations.items()} == {
        _key(function="add", outcome="success"): 3,
        _key(function="add", outcome="error"): 2,
        _key(function="explode", outcome="error"): 1,
    }
    assert all(point.sum > 0 for point in durations.values())
    in_flight = {key: point.value for key, point in points["agnt5.invocations.in_flight"].items()}
    assert in_flight == {_key(function="add"): 0, _key(function="explode"): 0}


@pytest.mark.asyncio
async def test_in_flight_while_running_and_cancellation_outcome(
    handlers: None,
    instrumentation: Instrumentation,
    reader: InMemoryMetricReader,
    spans: InMemorySpanExporter,
) -> None:
    task = asyncio.create_task(_invoke(instrumentation, "wait"))
    await asyncio.sleep(0.01)
    assert _points(reader)["agnt5.invocations.in_flight"][_key(function="wait")].value == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    points = _points(reader)
    assert points["agnt5.invocations.in_flight"][_key(function="wait")].value == 0
    assert (
        points["agnt5.invocations"][
            _key(function="wait", outcome="cancelled", error_code="CANCELLED")
        ].value
        == 1
    )
    assert dict(_only(spans).attributes or {})["agnt5.outcome"] == "cancelled"


@pytest.mark.asyncio
async def test_timeout_raised_by_run_counts_as_timeout(
    handlers: None, instrumentation: Instrumentation, reader: InMemoryMetricReader
) -> None:
    route = Pipeline("orders", REGISTRY).route("wait")

    async def within_deadline() -> bytes:
        async with asyncio.timeout(0.01):
            return await route.run(b"", "inv-t")

    with pytest.raises(TimeoutError):
        await instrumentation.observe("wait", "inv-t", 1, {}, within_deadline)
    key = _key(function="wait", outcome="error", error_code="TIMEOUT")
    assert _points(reader)["agnt5.invocations"][key].value == 1


@pytest.mark.asyncio
async def test_metrics_text_is_prometheus_exposition(
    handlers: None, spans: InMemorySpanExporter
) -> None:
    made = create_instrumentation(_config(health_port=8000))
    assert made is not None and made.exposition is not None
    try:
        await _invoke(made, "add", b"[1, 2]", {"traceparent": TRACEPARENT})
        with pytest.raises(AgntError):
            await _invoke(made, "explode")
        text = made.exposition.render()[0].decode()
    finally:
        made.shutdown()
    check_with_promtool(text)
    found = samples(text)
    assert found["agnt5_invocations_total", _labels(function="add", outcome="success")] == 1
    failed = _labels(function="explode", outcome="error", error_code="FUNCTION_FAILED")
    assert found["agnt5_invocations_total", failed] == 1
    ok = _labels(function="add", outcome="success")
    assert found["agnt5_invocation_duration_seconds_count", ok] == 1
    assert found["agnt5_invocation_duration_seconds_bucket", ok | {("le", "+Inf")}] == 1
    assert found["agnt5_invocations_in_flight", _labels(function="add")] == 0
    assert ("target_info", frozenset()) not in found  # it carries the resource as labels
    assert any(
        name == "target_info" and ("service_name", "orders") in labels for name, labels in found
    )
    assert any(name == "agnt5_build_info" for name, _ in found)
    assert ("process_cpu_seconds_total", frozenset()) in found
    assert spans.get_finished_spans() == ()


def test_nothing_configured_means_no_instrumentation() -> None:
    assert create_instrumentation(_config()) is None


@pytest.mark.parametrize(
    ("variable", "options"),
    [
        ("AGNT5_DISABLE_TELEMETRY", {}),
        ("OTEL_SDK_DISABLED", {}),
        (None, {"disable_telemetry": True}),
    ],
)
def test_disabled_wins_over_everything(
    monkeypatch: pytest.MonkeyPatch, variable: str | None, options: dict[str, Any]
) -> None:
    if variable is not None:
        monkeypatch.setenv(variable, "true")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    config = WorkerConfig.resolve(
        None, service_name="orders", health_port=8000, log_format="json", **options
    )
    made = create_instrumentation(
        config, tracer_provider=TracerProvider(), metric_readers=[InMemoryMetricReader()]
    )
    assert made is None


def test_exporter_none_means_nothing_to_export(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", " none ")
    assert create_instrumentation(_config()) is None


@pytest.mark.asyncio
async def test_exporters_come_from_otel_environment(
    registry: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Any] = []

    @function(name="current")
    async def current() -> None:
        seen.append(trace.get_current_span())

    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "no_such_exporter")
    made = create_instrumentation(_config())
    assert made is not None and made.logger_provider is None
    try:
        await _invoke(made, "current")
    finally:
        made.shutdown()
        made.shutdown()
    (span,) = seen
    assert span.is_recording() is False  # ended by now, and it was recorded by an SDK provider
    assert span.name == "invoke current"
    assert span.resource.attributes["service.name"] == "orders"
    assert "exporter 'no_such_exporter' is not installed" in caplog.text


def test_start_and_stop_install_and_remove_the_sdk_handler() -> None:
    sdk_logger = logging.getLogger("agnt5")
    made = start_telemetry(_config(log_format="json", log_level="DEBUG"))
    try:
        assert made is not None
        assert len(sdk_logger.handlers) == 1 and sdk_logger.level == logging.DEBUG
    finally:
        stop_telemetry(made)
    assert sdk_logger.handlers == [] and sdk_logger.level == logging.NOTSET


def test_disable_flag_leaves_no_handler_span_or_metric(
    handlers: None, spans: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    config = _config(disable_telemetry=True, health_port=8000, log_format="json")
    made = start_telemetry(config)
    assert made is None
    assert logging.getLogger("agnt5").handlers == []
    assert create_instrumentation(config, metric_readers=[reader]) is None
    route = Pipeline("orders", REGISTRY, telemetry=made).route("add")
    assert asyncio.run(route.run(b"[1, 2]", "inv-d")) == b"3"
    assert spans.get_finished_spans() == ()
    assert reader.get_metrics_data() is None
    stop_telemetry(made)
    assert logging.getLogger("agnt5").handlers == []


def test_importing_the_layer_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, agnt5, agnt5.telemetry, agnt5.logging, agnt5.runtimes.health; "
        "loaded = [name for name in sys.modules if name.startswith('opentelemetry')]; "
        "assert not loaded, loaded"
    )
    subprocess.run([*PYTHON, "-c", code], check=True, timeout=60)


def test_declared_functions_have_series_at_zero_before_any_invocation(handlers: None) -> None:
    made = create_instrumentation(_config(health_port=8000))
    assert made is not None and made.exposition is not None
    try:
        made.declare(["add", "explode"])
        text = made.exposition.render()[0].decode()
    finally:
        made.shutdown()
    check_with_promtool(text)
    found = samples(text)
    for name in ("add", "explode"):
        assert found["agnt5_invocations_total", _labels(function=name, outcome="success")] == 0
        assert found["agnt5_invocations_in_flight", _labels(function=name)] == 0
