"""Telemetry on, as the benchmarks measure it: every span and metric into in-memory exporters.

The span exporter keeps only the most recent spans, so a long run measures the cost of
telemetry rather than the growth of a list of millions of finished spans.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

__all__ = ["RecentSpanExporter", "install_in_memory_telemetry"]


class RecentSpanExporter(SpanExporter):
    """An in-memory span exporter holding the last ``keep`` spans."""

    def __init__(self, keep: int = 10_000) -> None:
        self.spans: deque[ReadableSpan] = deque(maxlen=keep)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def install_in_memory_telemetry() -> None:
    """Set global tracer and meter providers that export into memory."""
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(RecentSpanExporter()))
    trace.set_tracer_provider(tracing)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
