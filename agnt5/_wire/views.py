"""Plain-dict views of protocol messages, shared by the Client and the HTTP gateway."""

from __future__ import annotations

from typing import Any

import orjson

from agnt5._proto import common_pb2, invocations_pb2

__all__ = ["component_dict", "service_dict"]


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


def service_dict(service: invocations_pb2.ServiceInfo) -> dict[str, Any]:
    """A service with its version, components, connected workers and queue length."""
    return {
        "name": service.name,
        "version": service.version,
        "components": [component_dict(c) for c in service.components],
        "workers": [
            {
                "worker_id": w.worker_id,
                "version": w.version,
                "max_concurrency": w.max_concurrency,
                "in_flight": w.in_flight,
                "draining": w.draining,
            }
            for w in service.workers
        ],
        "queued": service.queued,
    }
