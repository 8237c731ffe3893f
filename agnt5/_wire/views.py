"""The plain-dict view of a service, the one shape the Client and the HTTP gateway return.

The Client builds it from the ``ServiceInfo`` messages it receives (`service_dict`), the gateway
from the coordinator's registry directly (`service_view`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from agnt5._proto import common_pb2, invocations_pb2

__all__ = ["component_dict", "service_dict", "service_view", "worker_dict"]


def _schema(text: str) -> Any:
    try:
        return orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        return None


def component_dict(component: common_pb2.Component) -> dict[str, Any]:
    """Name, kind, description, JSON Schemas (decoded) and timeout/retry settings."""
    config = component.config
    return {
        "name": component.name,
        "kind": component.kind,
        "description": component.description,
        "input_schema": _schema(component.input_schema_json),
        "output_schema": _schema(component.output_schema_json),
        "timeout": config.timeout_ms / 1000 if config.timeout_ms else None,
        "retries": config.retries,
    }


def worker_dict(
    worker_id: str,
    version: str,
    max_concurrency: int,
    in_flight: int,
    draining: bool,
    last_seen_ms_ago: int,
) -> dict[str, Any]:
    """A connected worker: its id and version, its capacity and load, whether it drains, and
    how long ago it last sent anything (heartbeats included)."""
    return {
        "worker_id": worker_id,
        "version": version,
        "max_concurrency": max_concurrency,
        "in_flight": in_flight,
        "draining": draining,
        "last_seen_ms_ago": last_seen_ms_ago,
    }


def service_view(
    name: str,
    version: str,
    components: Iterable[common_pb2.Component],
    workers: Iterable[dict[str, Any]],
    queued: int,
) -> dict[str, Any]:
    """A service with its version, components, connected workers (`worker_dict`) and queue length."""
    return {
        "name": name,
        "version": version,
        "components": [component_dict(c) for c in components],
        "workers": list(workers),
        "queued": queued,
    }


def service_dict(service: invocations_pb2.ServiceInfo) -> dict[str, Any]:
    """`service_view` of a ``ServiceInfo`` message."""
    workers = (
        worker_dict(
            w.worker_id, w.version, w.max_concurrency, w.in_flight, w.draining, w.last_seen_ms_ago
        )
        for w in service.workers
    )
    return service_view(service.name, service.version, service.components, workers, service.queued)
