"""Telemetry on, as the benchmarks measure it: spans and metrics into in-memory exporters.

Spans go through a `BatchSpanProcessor` (what a production setup uses) into an exporter that
keeps only the most recent spans, so a long run measures the cost of telemetry rather than
the growth of a list of millions of finished spans. ``AGNT5_BENCH_SAMPLE`` is the share of
traces sampled (``parentbased_traceidratio``), 1.0 unless set.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

__all__ = ["RecentSpanExporter", "install_in_memory_telemetry"]


class RecentSpanExporter(SpanExporter):
    """An in-memory span exporter holding the last ``keep`` spans."""

    def __init__(self, keep: int = 10_000) -> None:
        self.spans: deque[ReadableSpan] = deque(maxlen=keep)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def install_in_memory_telemetry(sample: float | None = None) -> None:
    """Set global tracer and meter providers that export into memory."""
    ratio = float(os.environ.get("AGNT5_BENCH_SAMPLE", "1")) if sample is None else sample
    tracing = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    tracing.add_span_processor(BatchSpanProcessor(RecentSpanExporter(), max_queue_size=65536))
    trace.set_tracer_provider(tracing)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
