"""The standard ``OTEL_*`` environment variables agnt5 reads to decide what to export."""

from __future__ import annotations

import os

__all__ = ["exporter_names"]


def exporter_names(signal: str) -> list[str]:
    """Exporter names for ``signal`` from ``OTEL_<SIGNAL>_EXPORTER``, or ``otlp`` when an OTLP endpoint is set."""
    raw = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "").strip().lower()
    if not raw:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
            f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    return [name for name in (part.strip() for part in raw.split(",")) if name and name != "none"]
