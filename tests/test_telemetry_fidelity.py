"""The cheap telemetry exports what the OpenTelemetry SDK itself would have exported.

Spans: each case runs once with a sampler the fast path reproduces and once through the SDK's
own ``start_span`` (the same sampler behind a wrapper the fast path does not know), into the
SDK's in-memory exporter; the exported spans must match field for field (ids and times aside).
Metrics: the histogram produced at collection must match the one the SDK builds when every
duration is recorded on it (which a view on the provider forces).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from agnt5 import Context, function
from agnt5._pipeline import Pipeline
from agnt5._registry import REGISTRY
from agnt5.config import WorkerConfig
from agnt5.errors import AgntError
from agnt5.telemetry import Instrumentation, create_instrumentation
from agnt5.telemetry._spans import FastSpans, SdkSpans, _decider

pytestmark = pytest.mark.usefixtures("registry")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = {
    "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
    "tracestate": "vendor=abc,other=1",
}


class Delegating(Sampler):
    """The same decisions, from a sampler type the fast path does not know: the SDK's path."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return self.inner.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return self.inner.get_description()


class Stamping(SpanProcessor):
    """A processor that acts on start (so the fast path must replay into an SDK span)."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        span.set_attribute("stamped", True)


@pytest.fixture(autouse=True)
def handlers(registry: None) -> None:
    @function(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @function(name="explode")
    def explode(ctx: Context) -> None:
        raise ValueError("Something went wrong")

    @function(name="slow", timeout=0.01)
    async def slow() -> None:
        await asyncio.sleep(10)

    @function(name="annotate")
    async def annotate() -> str:
        span = trace.get_current_span()
        span.set_attribute("order.id", "o-1")
        span.add_event("checked", {"items": 3})
        span.set_attributes({"order.total": 9.5})
        return "ok"

    @function(name="current")
    async def current() -> list[Any]:
        context = trace.get_current_span().get_span_context()
        return [
            f"{context.trace_id:x}",
            f"{context.span_id:x}",
            context.trace_flags,
            context.is_valid,
        ]


def _instrumentation(
    sampler: Sampler, *processors: SpanProcessor, limits: SpanLimits | None = None
) -> Iterator[tuple[Instrumentation, InMemorySpanExporter]]:
    spans = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, span_limits=limits)
    for processor in (*processors, SimpleSpanProcessor(spans)):
        provider.add_span_processor(processor)
    made = create_instrumentation(
        WorkerConfig.resolve({}, service_name="orders"), tracer_provider=provider
    )
    assert made is not None
    try:
        yield made, spans
    finally:
        made.shutdown()
        provider.shutdown()


async def _run(made: Instrumentation, name: str, payload: bytes, metadata: dict[str, str]) -> Any:
    route = Pipeline("orders", REGISTRY, telemetry=made).route(name)
    try:
        return orjson.loads(await route.run(payload, "inv-1", 2, metadata))
    except AgntError as error:
        return error.code


def _exported(span: ReadableSpan, parented: bool) -> dict[str, Any]:
    """Everything an exporter reads from ``span`` but its own ids and times."""
    context = span.context
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind,
        "trace_id": context.trace_id if parented else None,
        "flags": int(context.trace_flags),
        "trace_state": list(context.trace_state.items()),
        "parent": None if span.parent is None else (span.parent.trace_id, span.parent.span_id),
        "attributes": dict(span.attributes or {}),
        "dropped": (span.dropped_attributes, span.dropped_events, span.dropped_links),
        "status": (span.status.status_code, span.status.description),
        "events": [
            (event.name, dict(event.attributes or {}), event.timestamp >= span.start_time)
            for event in span.events
        ],
        "links": list(span.links),
        "resource": dict(span.resource.attributes),
        "scope": span.instrumentation_scope,
        "ordered": span.start_time <= span.end_time,
    }


CASES = {
    "success": ("add", b"[1, 2]", {}),
    "parented": ("add", b"[1, 2]", TRACEPARENT),
    "error": ("explode", b"", {}),
    "timeout": ("slow", b"", TRACEPARENT),
    "handler annotates": ("annotate", b"", {}),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("setup", ["plain", "processor acting on start", "attribute limits"])
async def test_spans_match_the_sdks(case: str, setup: str) -> None:
    name, payload, metadata = CASES[case]
    processors = (Stamping(),) if setup == "processor acting on start" else ()
    limits = SpanLimits(max_span_attribute_length=4) if setup == "attribute limits" else None
    exported = []
    for sampler in (ALWAYS_ON, Delegating(ALWAYS_ON)):
        for made, spans in _instrumentation(sampler, *processors, limits=limits):
            kind = FastSpans if sampler is ALWAYS_ON else SdkSpans
            assert isinstance(made._spans, kind)
            outcome = await _run(made, name, payload, metadata)
            (span,) = spans.get_finished_spans()
            exported.append((outcome, _exported(span, parented=bool(metadata))))
    fast, sdk = exported
    assert fast == sdk


@pytest.mark.asyncio
async def test_an_unsampled_root_runs_under_no_span() -> None:
    for made, spans in _instrumentation(ParentBased(TraceIdRatioBased(0.0))):
        assert await _run(made, "current", b"", {}) == ["0", "0", 0, False]
        assert spans.get_finished_spans() == ()


@pytest.mark.asyncio
async def test_an_unsampled_child_carries_its_parents_trace_unsampled() -> None:
    unsampled = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-00"}
    for made, spans in _instrumentation(ParentBased(ALWAYS_ON)):
        trace_id, span_id, flags, valid = await _run(made, "current", b"", unsampled)
        assert (trace_id, flags, valid) == (TRACE_ID, 0, True)
        assert span_id not in ("0", "f067aa0ba902b7")  # a child of its own, as the SDK makes
        assert spans.get_finished_spans() == ()


@pytest.mark.asyncio
async def test_a_span_current_where_the_invocation_runs_is_its_parent() -> None:
    outer = SpanContext(int(TRACE_ID, 16), 0x1234, False, TraceFlags(TraceFlags.SAMPLED))
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(outer)))
    try:
        for made, spans in _instrumentation(ParentBased(ALWAYS_OFF)):
            await _run(made, "add", b"[1, 2]", {})
            (span,) = spans.get_finished_spans()
            assert span.parent == outer and span.context.trace_id == outer.trace_id
    finally:
        otel_context.detach(token)


SAMPLERS = [
    ALWAYS_ON,
    ALWAYS_OFF,
    TraceIdRatioBased(0.3),
    ParentBased(TraceIdRatioBased(0.3)),
    ParentBased(ALWAYS_OFF, remote_parent_not_sampled=ALWAYS_ON, local_parent_sampled=ALWAYS_OFF),
]


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda s: s.get_description())
def test_sampling_decisions_are_the_samplers(sampler: Sampler) -> None:
    decide = _decider(sampler)
    assert decide is not None
    draw = random.Random(7)
    for _ in range(2000):
        trace_id = draw.getrandbits(128) or 1
        parent = _parent(draw, trace_id)
        context = None if parent is None else trace.set_span_in_context(NonRecordingSpan(parent))
        expected = sampler.should_sample(context, trace_id, "invoke add").decision.is_sampled()
        assert decide(parent, trace_id) is expected


def _parent(draw: random.Random, trace_id: int) -> SpanContext | None:
    choice = draw.randrange(5)
    if choice == 0:
        return None
    flags = TraceFlags(TraceFlags.SAMPLED if choice % 2 else TraceFlags.DEFAULT)
    return SpanContext(trace_id, draw.getrandbits(64) or 1, choice > 2, flags, TraceState())


def test_samplers_the_fast_path_cannot_reproduce_go_through_the_sdk() -> None:
    assert _decider(Delegating(ALWAYS_ON)) is None
    assert _decider(ParentBased(Delegating(ALWAYS_ON))) is None


# Metrics: produced at collection vs recorded on the SDK histogram.


def _meter_run(views: Sequence[View], *, produced: bool) -> MetricsData:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], views=views)
    made = Instrumentation(
        "orders",
        tracer=None,
        meter=provider.get_meter("agnt5", "1"),
        meter_provider=provider,
        logger_provider=None,
        owned=[provider],
    )
    assert (made._metrics.recorded_duration is None) is produced  # type: ignore[union-attr]
    durations = [0.0004, 0.003, 0.003, 0.07, 2.0, 45.0, 100.0]
    for seconds, (function_name, outcome, code) in zip(
        durations * 3,
        [("add", 0, ""), ("add", 1, "TIMEOUT"), ("sub", 2, "CANCELLED")] * 7,
        strict=True,
    ):
        stats = made._metrics.stats(function_name)  # type: ignore[union-attr]
        stats.started()
        stats.finished(seconds, outcome, code)
        if made._metrics.recorded_duration is not None:  # type: ignore[union-attr]
            labels = {
                "agnt5.function": function_name,
                "agnt5.outcome": ["success", "error", "cancelled"][outcome],
            }
            made._metrics.recorded_duration.record(seconds, labels)  # type: ignore[union-attr]
    try:
        data = reader.get_metrics_data()
        assert data is not None
        return data
    finally:
        made.shutdown()


def _points(data: MetricsData) -> dict[str, Any]:
    found = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = sorted(
                    (
                        tuple(sorted(p.attributes.items())),
                        getattr(p, "value", None),
                        getattr(p, "count", None),
                        round(getattr(p, "sum", 0.0), 9),
                        tuple(getattr(p, "bucket_counts", ())),
                        tuple(getattr(p, "explicit_bounds", ())),
                        getattr(p, "min", None),
                        getattr(p, "max", None),
                    )
                    for p in metric.data.data_points
                )
                found[metric.name] = (
                    scope.scope.name,
                    metric.unit,
                    metric.description,
                    type(metric.data).__name__,
                    getattr(metric.data, "aggregation_temporality", None),
                    points,
                )
    return found


def test_the_produced_histogram_is_the_recorded_one() -> None:
    produced = _meter_run(views=(), produced=True)
    recorded = _meter_run(views=[View(instrument_name="unrelated.*")], produced=False)
    assert set(_points(produced)) == {
        "agnt5.invocations",
        "agnt5.invocations.in_flight",
        "agnt5.invocation.duration",
    }
    assert _points(produced) == _points(recorded)
