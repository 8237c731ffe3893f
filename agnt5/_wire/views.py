"""The plain-dict views of a service and of an invocation, the one shape the Client, the HTTP
gateway and the CLI show.

The Client builds a service's from the ``ServiceInfo`` messages it receives (`service_dict`),
the gateway from the coordinator's registry directly (`service_view`); an invocation's from an
``InvocationResult`` (`invocation_dict`); both build a listed invocation's from an
``InvocationSummary`` (`summary_dict`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from agnt5._proto import common_pb2, invocations_pb2
from agnt5._speedups import decode_json

__all__ = [
    "component_dict",
    "invocation_dict",
    "invocation_view",
    "service_dict",
    "service_view",
    "summary_dict",
    "worker_dict",
]


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
    worker_id: str, version: str, max_concurrency: int, in_flight: int, draining: bool
) -> dict[str, Any]:
    """A connected worker: its id and version, its capacity and load, whether it drains."""
    return {
        "worker_id": worker_id,
        "version": version,
        "max_concurrency": max_concurrency,
        "in_flight": in_flight,
        "draining": draining,
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
        worker_dict(w.worker_id, w.version, w.max_concurrency, w.in_flight, w.draining)
        for w in service.workers
    )
    return service_view(service.name, service.version, service.components, workers, service.queued)


def invocation_view(
    invocation_id: str,
    service: str,
    function: str,
    state: str,
    attempt: int,
    duration_us: int,
    output: Any = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An invocation: its id, target, state and attempt, its ``result`` (``output``, the
    function's return value) once it ``SUCCEEDED`` or its ``error`` once it failed."""
    data: dict[str, Any] = {
        "invocation_id": invocation_id,
        "service": service,
        "function": function,
        "state": state,
        "attempt": attempt,
        "duration_ms": duration_us / 1000,
    }
    if state == "SUCCEEDED":
        data["result"] = output
    elif error is not None:
        data["error"] = error
    return data


def invocation_dict(result: invocations_pb2.InvocationResult) -> dict[str, Any]:
    """`invocation_view` of an ``InvocationResult`` (its output decoded)."""
    outcome = result.WhichOneof("outcome")
    error = result.error
    return invocation_view(
        result.invocation_id,
        result.service,
        result.function,
        _state_name(result.state),
        result.attempt,
        result.duration_us,
        decode_json(result.output) if outcome == "output" else None,
        {"code": error.code, "message": error.message, "type": error.type,
         "retryable": error.retryable} if outcome == "error" else None,
    )  # fmt: skip


def _state_name(state: int) -> str:
    return invocations_pb2.InvocationState.Name(state).removeprefix("INVOCATION_STATE_")


def summary_dict(summary: invocations_pb2.InvocationSummary) -> dict[str, Any]:
    """A listed invocation: id, service, function, state, attempt, times (Unix milliseconds),
    the last attempt's duration, and a failed one's error code."""
    state = _state_name(summary.state)
    data: dict[str, Any] = {
        "invocation_id": summary.invocation_id,
        "service": summary.service,
        "function": summary.function,
        "state": state,
        "attempt": summary.attempt,
        "created_unix_ms": summary.created_unix_ms,
        "updated_unix_ms": summary.updated_unix_ms,
        "duration_ms": summary.duration_us / 1000,
    }
    if summary.error_code:
        data["error_code"] = summary.error_code
    return data
