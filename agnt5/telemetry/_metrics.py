"""The invocation metrics: counted on the hot path by the twins, handed to the SDK when it collects.

Per function, a `FunctionStats` (compiled, or its pure twin) counts what runs and what finished
and keeps a histogram of durations; nothing on the hot path calls OpenTelemetry. When a metric
reader collects:

- ``agnt5.invocations`` (finished, by function, outcome and error code) and
  ``agnt5.invocations.in_flight`` are observable instruments reading the counts;
- ``agnt5.invocation.duration`` is produced for the reader as the histogram the SDK would have
  built from the same durations (buckets, sum, count, min, max; cumulative). The Python SDK has
  no public metric-producer interface yet, so this joins the reader's collection through the
  callback its meter provider registered with it. Where that cannot be done exactly (a reader
  that wants delta temporality or another aggregation for histograms, views on the provider, a
  provider that is not the SDK's), every duration is recorded on an SDK histogram instead, as
  before, at the SDK's cost.

Histogram exemplars are not produced (a recorded histogram gets them only for sampled spans).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import DefaultAggregation

from agnt5._speedups import FunctionStats
from agnt5._speedups._stats_py import OUTCOMES, SUCCESS

__all__ = ["DURATION_BUCKETS", "InvocationMetrics"]

_log = logging.getLogger("agnt5.telemetry")

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)  # fmt: skip
DURATION = "agnt5.invocation.duration"
_DURATION_UNIT = "s"
_DURATION_DESCRIPTION = "Invocation duration in seconds, by function and outcome."
_NONE_YET = [(SUCCESS, "", 0)]


class InvocationMetrics:
    """The three invocation metrics of one worker on ``meter`` (from ``provider``)."""

    def __init__(self, meter: Any, provider: Any) -> None:
        self._stats: dict[str, FunctionStats] = {}
        self._started_ns: dict[str, int] = {}
        self._scope = (meter.name, meter.version)  # where the SDK puts the meter's metrics
        self._hooked: list[tuple[Any, Any]] = []  # (reader, the collect callback it had)
        meter.create_observable_counter(
            "agnt5.invocations",
            callbacks=[self._observe_finished],
            unit="{invocation}",
            description="Invocations finished, by function and outcome.",
        )
        meter.create_observable_up_down_counter(
            "agnt5.invocations.in_flight",
            callbacks=[self._observe_running],
            unit="{invocation}",
            description="Invocations running now, by function.",
        )
        readers = _producible_readers(provider)
        self.recorded_duration: Any = None
        """The SDK histogram every duration is recorded on, when it cannot be produced."""
        if readers is None:
            self.recorded_duration = meter.create_histogram(
                DURATION,
                unit=_DURATION_UNIT,
                description=_DURATION_DESCRIPTION,
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )
        else:
            for reader in readers:
                collect = reader._collect
                reader._set_collect_callback(functools.partial(self._collect, collect))
                self._hooked.append((reader, collect))

    def stats(self, function: str) -> FunctionStats:
        """The counts of ``function``'s invocations (made on first use, or when declared: its
        series then start at zero)."""
        found = self._stats.get(function)
        if found is None:
            found = self._stats[function] = FunctionStats(DURATION_BUCKETS)
            self._started_ns[function] = time.time_ns()
        return found

    def close(self) -> None:
        """Give the readers back the collect callbacks they had."""
        hooked, self._hooked = self._hooked, []
        for reader, collect in hooked:
            reader._set_collect_callback(collect)

    def _observe_finished(self, options: CallbackOptions) -> list[Observation]:
        return [
            Observation(count, _labels(function, OUTCOMES[outcome], code))
            for function, stats in list(self._stats.items())
            for outcome, code, count in stats.counts() or _NONE_YET  # a series from the start
        ]

    def _observe_running(self, options: CallbackOptions) -> list[Observation]:
        return [
            Observation(stats.running, {"agnt5.function": function})
            for function, stats in list(self._stats.items())
        ]

    def _collect(self, collect: Any, reader: Any, timeout_millis: float = 10_000) -> Any:
        """The reader's collection, with the duration histogram added to agnt5's scope."""
        data = collect(reader, timeout_millis=timeout_millis)
        if data is None:
            return None
        return _with_metric(data, self._scope, self._duration_metric())

    def _duration_metric(self) -> Metric:
        now = time.time_ns()
        points = [
            HistogramDataPoint(
                attributes=_labels(function, OUTCOMES[outcome]),
                start_time_unix_nano=self._started_ns[function],
                time_unix_nano=now,
                count=count,
                sum=total,
                bucket_counts=list(buckets),
                explicit_bounds=list(DURATION_BUCKETS),
                min=least,
                max=most,
                exemplars=[],
            )
            for function, stats in list(self._stats.items())
            for outcome, count, total, least, most, buckets in stats.durations()
        ]
        return Metric(
            name=DURATION,
            description=_DURATION_DESCRIPTION,
            unit=_DURATION_UNIT,
            data=Histogram(
                data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE
            ),
        )


def _labels(function: str, outcome: str = "", code: str = "") -> dict[str, str]:
    labels = {"agnt5.function": function}
    if outcome:
        labels["agnt5.outcome"] = outcome
    if code:
        labels["agnt5.error_code"] = code
    return labels


def _producible_readers(provider: Any) -> list[Any] | None:
    """The readers of ``provider`` if the duration histogram can be produced for each exactly."""
    if not isinstance(provider, MeterProvider):
        return None
    try:
        config = provider._sdk_config
        readers = list(getattr(provider, "_metric_readers", None) or config.metric_readers)
        views = list(config.views)
        wanted = [
            (
                _for_histograms(reader._instrument_class_temporality),
                _for_histograms(reader._instrument_class_aggregation),
            )
            for reader in readers
        ]
        hookable = all(callable(reader._collect) for reader in readers)
    except (AttributeError, StopIteration, TypeError):  # an SDK whose internals moved
        _log.debug("recording invocation durations on the SDK (readers not reachable)")
        return None
    exact = all(
        temporality is AggregationTemporality.CUMULATIVE and type(aggregation) is DefaultAggregation
        for temporality, aggregation in wanted
    )
    return readers if exact and hookable and not views else None


def _for_histograms(by_instrument: dict[type, Any]) -> Any:
    """A reader's setting for histogram instruments (keyed by the SDK's private subclass)."""
    return next(
        value for kind, value in by_instrument.items() if issubclass(kind, HistogramInstrument)
    )


def _with_metric(data: MetricsData, scope: tuple[str, str], metric: Metric) -> MetricsData:
    """``data`` with ``metric`` added to the metrics of the instrumentation ``scope``."""
    if not metric.data.data_points:
        return data
    resources = []
    for resource in data.resource_metrics:
        scopes = [
            dataclasses.replace(found, metrics=[*found.metrics, metric])
            if (found.scope.name, found.scope.version) == scope
            else found
            for found in resource.scope_metrics
        ]
        resources.append(dataclasses.replace(resource, scope_metrics=scopes))
    return dataclasses.replace(data, resource_metrics=resources)
