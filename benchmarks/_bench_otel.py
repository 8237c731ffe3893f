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
    """An in-memory span exporter holding the last ``keep`` spans and a count of all."""

    def __init__(self, keep: int = 10_000) -> None:
        self.spans: deque[ReadableSpan] = deque(maxlen=keep)
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


def install_in_memory_telemetry() -> RecentSpanExporter:
    """Set global tracer and meter providers that export into memory; returns the span exporter."""
    exporter = RecentSpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tracing)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    return exporter
