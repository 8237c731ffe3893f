"""The benchmark's no-op service with every span and metric exported into in-memory exporters."""

from __future__ import annotations

from _bench_otel import install_in_memory_telemetry
from _noop import noop

__all__ = ["noop"]

install_in_memory_telemetry()
