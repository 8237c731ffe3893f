"""Prometheus text exposition (format 0.0.4) of OpenTelemetry metrics collected by an in-memory reader."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.metrics.export import Histogram, Sum

__all__ = ["render"]

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_UNITS = {"s": "_seconds", "ms": "_milliseconds", "By": "_bytes"}


def render(data: Any) -> str:
    """Every metric in ``data`` (a ``MetricsData`` or ``None``) as Prometheus text."""
    if data is None:
        return ""
    lines = [
        line
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for line in _metric(metric)
    ]
    return "\n".join(lines) + "\n" if lines else ""


def _metric(metric: Any) -> Iterator[str]:
    name = _INVALID.sub("_", metric.name) + _UNITS.get(metric.unit, "")
    data = metric.data
    if isinstance(data, Histogram):
        kind = "histogram"
    elif isinstance(data, Sum) and data.is_monotonic:
        kind, name = "counter", name + "_total"
    else:
        kind = "gauge"
    yield f"# HELP {name} {_escape(metric.description, quote=False)}"
    yield f"# TYPE {name} {kind}"
    for point in data.data_points:
        labels = {
            _INVALID.sub("_", str(key)): str(value) for key, value in point.attributes.items()
        }
        if kind != "histogram":
            yield f"{name}{_labels(labels)} {_number(point.value)}"
            continue
        cumulative = 0
        bounds = [*map(_number, point.explicit_bounds), "+Inf"]
        for bound, count in zip(bounds, point.bucket_counts, strict=True):
            cumulative += count
            yield f"{name}_bucket{_labels({**labels, 'le': bound})} {cumulative}"
        yield f"{name}_sum{_labels(labels)} {_number(point.sum)}"
        yield f"{name}_count{_labels(labels)} {point.count}"


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return (
        "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items())) + "}"
    )


def _escape(text: str, *, quote: bool = True) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quote else text


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return "NaN" if math.isnan(value) else repr(value)
