"""`Exposition`: OpenTelemetry metrics for a Prometheus scrape, through the official reader.

Each worker and coordinator that serves ``/metrics`` owns one: a private ``prometheus_client``
registry holding

- the OpenTelemetry SDK's metrics, read at each scrape by ``opentelemetry-exporter-prometheus``'s
  ``PrometheusMetricReader`` (give `reader` to the ``MeterProvider``): Prometheus names and
  units, ``_total`` on counters, and ``target_info`` from the resource (``service_name``,
  ``service_version``, ``service_instance_id``, ...). Scope labels are off, so every series
  keeps the labels its instrument records;
- ``agnt5_build_info`` (always 1): the agnt5 version, whether the hot path is compiled, and
  the Python implementation and version;
- ``prometheus_client``'s standard collectors: ``process_*`` (CPU, memory, open files, start
  time), ``python_info`` and ``python_gc_*``.
"""

from __future__ import annotations

import platform

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Info,
)
from prometheus_client.exposition import choose_encoder

from agnt5._version import __version__

__all__ = ["Exposition"]


class Exposition:
    """The registry a ``/metrics`` endpoint renders; `reader` joins it to a ``MeterProvider``."""

    def __init__(self) -> None:
        from agnt5._speedups import USE_EXTENSIONS

        self.registry = CollectorRegistry()
        self.reader = PrometheusMetricReader(scope_info_enabled=False, registry=self.registry)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        Info(
            "agnt5_build",
            "The agnt5 build serving these metrics (always 1).",
            registry=self.registry,
        ).info(
            {
                "version": __version__,
                "compiled": str(USE_EXTENSIONS).lower(),
                "python_implementation": platform.python_implementation(),
                "python_version": platform.python_version(),
            }
        )

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The scrape body and its content type: OpenMetrics when ``accept`` asks for it, else
        the Prometheus text format."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type
