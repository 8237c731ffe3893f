"""The HTTP gateway's OpenAPI document: its routes, and an invoke and a submit operation for
each function of the services the caller may reach, with that function's schemas."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from agnt5._proto import common_pb2
from agnt5._wire.openapi import OpenApi, error_responses, json_body, json_response, path_segment
from agnt5.coordinator.registry import ServiceEntry

__all__ = ["gateway_openapi"]

_STRING = {"type": "string"}
_ANY: dict[str, Any] = {}
_SUBMIT_ERRORS = (400, 401, 404, 413, 415, 429, 503)
_INVOKE_ERRORS = (*_SUBMIT_ERRORS, 409, 422, 499, 500, 504)
_READ_ERRORS = (400, 401, 404)
_STATES = ["PENDING", "RUNNING", "SUSPENDED", "SUCCEEDED", "FAILED"]


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": _STRING,
    }


_SECONDS = {"type": "number", "minimum": 0}
_WAIT = _query("wait", "Seconds to wait for the outcome (default 60; then 202).", _SECONDS)
_TIMEOUT = _query("timeout", "The invocation's deadline, in seconds from now.", _SECONDS)
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "The same key (with the same input) gives the same invocation.",
    "schema": _STRING,
}
_TRACEPARENT = {
    "name": "traceparent",
    "in": "header",
    "required": False,
    "description": "W3C trace context the invocation joins.",
    "schema": _STRING,
}
_INVOCATION_ID = _path("invocation_id", "The invocation's id.")


_INVOCATION_FIELDS = {
    "invocation_id": _STRING,
    "service": _STRING,
    "function": _STRING,
    "state": {"type": "string", "enum": _STATES},
    "attempt": {"type": "integer"},
    "duration_ms": {"type": "number"},
}
_INVOCATION_REQUIRED = ["invocation_id", "service", "function", "state", "attempt"]
_SUMMARY = {
    "type": "object",
    "description": "A listed invocation (no input or output); 'error_code' once it FAILED.",
    "properties": {
        **_INVOCATION_FIELDS,
        "created_unix_ms": {"type": "integer"},
        "updated_unix_ms": {"type": "integer"},
        "error_code": _STRING,
    },
    "required": _INVOCATION_REQUIRED,
}


def _invocation_schema(result: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "An invocation: 'result' once it SUCCEEDED, 'error' once it FAILED, "
        "a workflow's 'steps'.",
        "properties": {
            **_INVOCATION_FIELDS,
            "result": result,
            "error": {"type": "object"},
            "steps": {"type": "array", "items": {"type": "object"}},
        },
        "required": _INVOCATION_REQUIRED,
    }


def gateway_openapi(
    services: Iterable[ServiceEntry],
    root_path: str = "",
    *,
    bearer: bool = False,
    metrics: bool = False,
) -> dict[str, Any]:
    """The gateway's OpenAPI 3.1 document, with the functions of ``services`` (``bearer``:
    client keys are needed; ``metrics``: it serves ``/metrics``)."""
    api = OpenApi(
        "agnt5 coordinator",
        "v1",
        "Invoke functions and follow invocations through the coordinator's HTTP gateway.",
        root_path=root_path,
        bearer=bearer,
    )
    for entry in services:
        for component in sorted(entry.components.values(), key=lambda c: c.name):
            _add_function(api, entry.name, component)
    _add_routes(api)
    _add_probes(api, metrics)
    return api.document()


def _schema(text: str) -> Any:
    try:
        return orjson.loads(text) if text else _ANY
    except orjson.JSONDecodeError:
        return _ANY


def _add_function(api: OpenApi, service: str, component: common_pb2.Component) -> None:
    name = f"{service}.{component.name}"
    input_schema = _schema(component.input_schema_json)
    body = json_body(
        api.embed(input_schema, f"{name}.input"),
        "The arguments, by parameter name.",
        required=bool(isinstance(input_schema, dict) and input_schema.get("required")),
    )
    output = api.embed(_schema(component.output_schema_json), f"{name}.output")
    summary, _, details = (component.description or f"Invoke {name}").partition("\n")
    path = f"/v1/services/{path_segment(service)}/functions/{path_segment(component.name)}"
    common = {"tags": [service], "requestBody": body}
    if details.strip():
        common["description"] = details.strip()
    api.add(
        "post",
        f"{path}/invoke",
        {
            **common,
            "operationId": api.operation_id(f"invoke_{name}"),
            "summary": summary.strip(),
            "parameters": [_WAIT, _TIMEOUT, _IDEMPOTENCY_KEY, _TRACEPARENT],
            "responses": {
                "200": json_response(
                    "It succeeded: 'result' is the return value.", _invocation_schema(output)
                ),
                "202": json_response(
                    "Still running after 'wait' seconds: follow the Location.",
                    _invocation_schema(output),
                    headers={"Location": {"schema": _STRING}},
                ),
                **error_responses(_INVOKE_ERRORS),
            },
        },
    )
    api.add(
        "post",
        f"{path}/submit",
        {
            **common,
            "operationId": api.operation_id(f"submit_{name}"),
            "summary": f"Submit {name} without waiting",
            "parameters": [_TIMEOUT, _IDEMPOTENCY_KEY, _TRACEPARENT],
            "responses": {
                "202": json_response(
                    "Accepted (and journaled).",
                    {
                        "type": "object",
                        "properties": {
                            "invocation_id": _STRING,
                            "deduplicated": {"type": "boolean"},
                        },
                        "required": ["invocation_id", "deduplicated"],
                    },
                ),
                **error_responses(_SUBMIT_ERRORS),
            },
        },
    )


def _add_routes(api: OpenApi) -> None:
    unix_seconds = {"type": "number", "minimum": 0}
    api.add(
        "get",
        "/v1/invocations",
        {
            "operationId": api.operation_id("list_invocations"),
            "summary": "Invocations, newest first, a page at a time",
            "tags": ["invocations"],
            "parameters": [
                _query("service", "Only this service's.", _STRING),
                _query("function", "Only this function's.", _STRING),
                {
                    **_query(
                        "state",
                        "Only in these states (repeated, or comma-separated).",
                        {
                            "type": "array",
                            "items": {"type": "string", "enum": _STATES},
                        },
                    ),
                    "style": "form",
                    "explode": True,
                },
                _query("created_after", "Created at or after, Unix seconds.", unix_seconds),
                _query("created_before", "Created before, Unix seconds.", unix_seconds),
                _query(
                    "limit",
                    "At most this many (default and most: the coordinator's page).",
                    {"type": "integer", "minimum": 0},
                ),
                _query("cursor", "Where the page starts: a listing's 'next_cursor'.", _STRING),
            ],
            "responses": {
                "200": json_response(
                    "A page; 'next_cursor' is null on the last.",
                    {
                        "type": "object",
                        "properties": {
                            "invocations": {"type": "array", "items": _SUMMARY},
                            "next_cursor": {"type": ["string", "null"]},
                        },
                        "required": ["invocations", "next_cursor"],
                    },
                ),
                **error_responses(_READ_ERRORS),
            },
        },
    )
    api.add(
        "get",
        "/v1/invocations/{invocation_id}",
        {
            "operationId": api.operation_id("get_invocation"),
            "summary": "An invocation, in any state",
            "tags": ["invocations"],
            "parameters": [
                _INVOCATION_ID,
                _query("wait", "Seconds to wait for it to finish (default 0).", _SECONDS),
                _query(
                    "detail",
                    "Add its input, metadata, creation time, deadline, worker, trace id and "
                    "idempotency key.",
                    {"type": "boolean"},
                ),
            ],
            "responses": {
                "200": json_response("The invocation.", _invocation_schema(_ANY)),
                **error_responses(_READ_ERRORS),
            },
        },
    )
    api.add(
        "post",
        "/v1/invocations/{invocation_id}/cancel",
        {
            "operationId": api.operation_id("cancel"),
            "summary": "Cancel an unfinished invocation",
            "description": "It leaves its queue, or its worker is told to stop it; it fails "
            "with CANCELLED (not retried).",
            "tags": ["invocations"],
            "parameters": [_INVOCATION_ID],
            "requestBody": json_body(
                {"type": "object", "properties": {"reason": _STRING}},
                "Why (optional: an empty body will do).",
                required=False,
            ),
            "responses": {
                "200": json_response("The cancelled invocation.", _invocation_schema(_ANY)),
                **error_responses((*_READ_ERRORS, 409, 415, 503)),
            },
        },
    )
    api.add(
        "post",
        "/v1/invocations/{invocation_id}/signals/{name}",
        {
            "operationId": api.operation_id("signal"),
            "summary": "Send a workflow a signal",
            "description": "The body is the signal's payload (empty: null). A waiting "
            "ctx.signal(name) takes it ('delivered': true), else it is kept for a later wait.",
            "tags": ["invocations"],
            "parameters": [_INVOCATION_ID, _path("name", "The signal's name.")],
            "requestBody": json_body(_ANY, "The payload.", required=False),
            "responses": {
                "200": json_response(
                    "The signal is journaled.",
                    {
                        "type": "object",
                        "properties": {
                            "invocation_id": _STRING,
                            "signal": _STRING,
                            "delivered": {"type": "boolean"},
                        },
                        "required": ["invocation_id", "signal", "delivered"],
                    },
                ),
                **error_responses((*_READ_ERRORS, 409, 413, 415, 429, 503)),
            },
        },
    )
    api.add(
        "get",
        "/v1/services",
        {
            "operationId": api.operation_id("list_services"),
            "summary": "Services, their functions, workers and queues",
            "tags": ["services"],
            "responses": {
                "200": json_response(
                    "Every service the key may reach.",
                    {
                        "type": "object",
                        "properties": {"services": {"type": "array", "items": {"type": "object"}}},
                    },
                ),
                **error_responses((401,)),
            },
        },
    )
    api.add(
        "get",
        "/v1/events",
        {
            "operationId": api.operation_id("events"),
            "summary": "Live changes, as server-sent events",
            "description": "Event 'invocation' (a listed invocation, each time its state "
            "changes), 'services' (the services' view, when workers change), 'reset' (changes "
            "were lost: read the state afresh). Comments keep the connection alive.",
            "tags": ["invocations"],
            "responses": {
                "200": {
                    "description": "The event stream (text/event-stream).",
                    "content": {"text/event-stream": {"schema": _STRING}},
                },
                **error_responses((401, 429)),
            },
        },
    )


def _add_probes(api: OpenApi, metrics: bool) -> None:
    status = {"type": "object", "properties": {"status": _STRING, "reason": _STRING}}
    api.add(
        "get",
        "/health",
        {
            "operationId": api.operation_id("health"),
            "summary": "Whether the coordinator answers (liveness)",
            "tags": ["probes"],
            "security": [],
            "responses": {"200": json_response("It answers.", status)},
        },
    )
    api.add(
        "get",
        "/ready",
        {
            "operationId": api.operation_id("ready"),
            "summary": "Whether it accepts work (readiness)",
            "tags": ["probes"],
            "security": [],
            "responses": {
                "200": json_response("It accepts work.", status),
                "503": json_response("It does not, and says why.", status),
            },
        },
    )
    if metrics:
        api.add(
            "get",
            "/metrics",
            {
                "operationId": api.operation_id("metrics"),
                "summary": "Prometheus metrics",
                "description": "With client keys: a key not limited to some services.",
                "tags": ["probes"],
                "responses": {
                    "200": {
                        "description": "The Prometheus text exposition.",
                        "content": {"text/plain": {"schema": _STRING}},
                    },
                    **error_responses((401,)),
                },
            },
        )
