"""The plain-dict views of a service and of an invocation: the shapes the Client, the HTTP
gateway and the CLI return.

Services are built from ``ServiceInfo`` messages by both (`service_dict`); an invocation from
an ``InvocationResult`` by the Client (`invocation_dict`) and from the coordinator's state by the
gateway (`invocation_view`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from agnt5._proto import common_pb2, invocations_pb2
from agnt5._speedups import decode_json
from agnt5.workflows.journal import Entry

__all__ = [
    "component_dict",
    "invocation_dict",
    "invocation_view",
    "service_dict",
    "service_view",
    "step_dict",
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


def step_dict(entry: Entry) -> dict[str, Any]:
    """One journal entry of a workflow: seq, kind, name, state, attempt, times and durations,
    and per kind its child invocation, fire time or timeout; its error when it failed."""
    data: dict[str, Any] = {
        "seq": entry.seq,
        "kind": entry.kind,
        "name": entry.name,
        "state": entry.state,
        "attempt": entry.attempt,
        "started_unix_ms": entry.started_unix_ms,
        "finished_unix_ms": entry.finished_unix_ms,
        "duration_ms": entry.duration_us / 1000,
    }
    if entry.child_id:
        data["child_id"] = entry.child_id
    if entry.fire_unix_ms:
        data["fire_unix_ms"] = entry.fire_unix_ms
    if entry.timeout_unix_ms:
        data["timeout_unix_ms"] = entry.timeout_unix_ms
    if entry.error is not None:
        data["error"] = entry.error
    return data


def invocation_view(
    invocation_id: str,
    service: str,
    function: str,
    state: str,
    attempt: int,
    duration_us: int,
    output: Any = None,
    error: dict[str, Any] | None = None,
    steps: Iterable[Entry] | None = None,
) -> dict[str, Any]:
    """An invocation: its id, target, state and attempt, its ``result`` (``output``, the
    function's return value, decoded or an `orjson.Fragment`) once it ``SUCCEEDED`` or its
    ``error`` once it failed, and a workflow's ``steps`` (`step_dict`) when given."""
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
    if steps is not None:
        data["steps"] = [step_dict(entry) for entry in steps]
    return data


def invocation_dict(result: invocations_pb2.InvocationResult) -> dict[str, Any]:
    """`invocation_view` of an ``InvocationResult`` (its output decoded)."""
    from agnt5.workflows.protocol import entry_from_message, error_dict

    outcome = result.WhichOneof("outcome")
    return invocation_view(
        result.invocation_id,
        result.service,
        result.function,
        _state_name(result.state),
        result.attempt,
        result.duration_us,
        decode_json(result.output) if outcome == "output" and result.output else None,
        error_dict(result.error) if outcome == "error" else None,
        [entry_from_message(step) for step in result.steps] if result.steps else None,
    )


def _state_name(state: int) -> str:
    return invocations_pb2.InvocationState.Name(state).removeprefix("INVOCATION_STATE_")


def summary_dict(summary: invocations_pb2.InvocationSummary) -> dict[str, Any]:
    """A listed invocation: id, service, function, state, attempt, times (Unix milliseconds),
    the last attempt's duration, and a failed one's error code."""
    data: dict[str, Any] = {
        "invocation_id": summary.invocation_id,
        "service": summary.service,
        "function": summary.function,
        "state": _state_name(summary.state),
        "attempt": summary.attempt,
        "created_unix_ms": summary.created_unix_ms,
        "updated_unix_ms": summary.updated_unix_ms,
        "duration_ms": summary.duration_us / 1000,
    }
    if summary.error_code:
        data["error_code"] = summary.error_code
    return data
