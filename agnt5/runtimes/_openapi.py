"""The ASGI app's OpenAPI document: one ``POST /invoke/{name}`` operation per function."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from agnt5._wire.openapi import OpenApi, error_responses, json_body, json_response, path_segment

if TYPE_CHECKING:
    from agnt5.config import WorkerConfig
    from agnt5.decorators import Component

__all__ = ["asgi_openapi"]

_INVOKE_ERRORS = (400, 404, 413, 415, 429, 499, 500, 503, 504)
_WORKFLOW_ERRORS = (409, 422)  # ctx.task/ctx.signal need a coordinator; a diverged replay
_STRING = {"type": "string"}

_INVOCATION_ID = {
    "name": "X-Invocation-Id",
    "in": "header",
    "required": False,
    "description": "The invocation's id (else one is generated).",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
}
_TRACEPARENT = {
    "name": "traceparent",
    "in": "header",
    "required": False,
    "description": "W3C trace context: the invocation's span joins this trace.",
    "schema": _STRING,
}


def asgi_openapi(
    config: WorkerConfig, components: Iterable[Component], root_path: str = ""
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app serving ``components``, mounted at ``root_path``."""
    api = OpenApi(
        config.service_name,
        config.service_version,
        f"The functions of service {config.service_name}, served by agnt5.",
        root_path=root_path,
    )
    for component in sorted(components, key=lambda c: c.name):
        _add_invoke(api, component)
    api.add("get", "/health", _health_operation(api))
    api.add("get", "/functions", _functions_operation(api))
    return api.document()


def _add_invoke(api: OpenApi, component: Component) -> None:
    input_schema = api.embed(component.input_schema, f"{component.name}.input")
    output_schema = api.embed(component.output_schema, f"{component.name}.output")
    summary, _, details = (component.description or f"Invoke {component.name}").partition("\n")
    errors = _INVOKE_ERRORS + (_WORKFLOW_ERRORS if component.kind == "workflow" else ())
    operation: dict[str, Any] = {
        "operationId": api.operation_id(f"invoke_{component.name}"),
        "summary": summary.strip(),
        "tags": [component.kind],
        "parameters": [_INVOCATION_ID, _TRACEPARENT],
        "requestBody": json_body(
            input_schema,
            "The arguments, by parameter name.",
            required=bool(component.input_schema.get("required")),
        ),
        "responses": {
            "200": json_response(
                "The function's result.",
                {
                    "type": "object",
                    "properties": {"result": output_schema, "invocation_id": _STRING},
                    "required": ["result", "invocation_id"],
                },
            ),
            **error_responses(sorted(errors)),
        },
    }
    timeout = component.config.timeout
    notes = [details.strip(), f"Times out after {timeout:g} s." if timeout is not None else ""]
    if any(notes):
        operation["description"] = "\n\n".join(note for note in notes if note)
    api.add("post", f"/invoke/{path_segment(component.name)}", operation)


def _health_operation(api: OpenApi) -> dict[str, Any]:
    return {
        "operationId": api.operation_id("health"),
        "summary": "Whether the app serves",
        "tags": ["app"],
        "responses": {
            "200": json_response(
                "It serves.",
                {
                    "type": "object",
                    "properties": {
                        "status": _STRING,
                        "service": _STRING,
                        "version": _STRING,
                        "runtime": _STRING,
                    },
                },
            )
        },
    }


def _functions_operation(api: OpenApi) -> dict[str, Any]:
    return {
        "operationId": api.operation_id("functions"),
        "summary": "The functions served, with their JSON Schemas",
        "tags": ["app"],
        "responses": {
            "200": json_response(
                "Every function's name, kind, description, parameters and schemas.",
                {
                    "type": "object",
                    "properties": {
                        "functions": {"type": "array", "items": {"type": "object"}},
                        "count": {"type": "integer"},
                    },
                },
            )
        },
    }
