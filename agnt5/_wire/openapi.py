"""OpenAPI 3.1 documents for both HTTP surfaces, built from the functions' JSON Schemas.

A function's schemas are JSON Schema 2020-12 documents (`agnt5.schema`) whose references point
into their own ``$defs``; `OpenApi.embed` moves those definitions into the document's
``components/schemas`` (under a prefix naming the function) and rewrites the references, so a
schema means the same inside the document as on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

__all__ = [
    "ERROR_STATUSES",
    "OpenApi",
    "error_responses",
    "json_body",
    "json_response",
    "path_segment",
]

OPENAPI_VERSION = "3.1.0"

ERROR_STATUSES: dict[int, str] = {
    400: "INVALID_ARGUMENT: the input or a parameter is not acceptable",
    401: "UNAUTHENTICATED: a missing or wrong key",
    404: "NOT_FOUND: no such function or invocation",
    409: "FAILED_PRECONDITION: the invocation is not in a state that allows this",
    413: "PAYLOAD_TOO_LARGE: the body is over the size limit",
    415: "The body is not declared as JSON (send 'Content-Type: application/json')",
    422: "NON_DETERMINISTIC: a workflow's replay diverged from its journal",
    429: "RESOURCE_EXHAUSTED: a queue or another limit is full; retry later",
    499: "CANCELLED: the invocation was cancelled",
    500: "FUNCTION_FAILED or OUTPUT_NOT_SERIALIZABLE: the function raised, or returned what "
    "is not JSON",
    503: "UNAVAILABLE: no worker, or shutting down; retry later",
    504: "TIMEOUT: the invocation did not finish before its deadline",
}
"""Every status an agnt5 error document comes with, and what it means."""

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "What went wrong: the message, the HTTP status and the agnt5 error code.",
    "properties": {
        "error": {"type": "string", "description": "A message for a person."},
        "status": {"type": "integer", "description": "The HTTP status of the response."},
        "code": {
            "type": "string",
            "description": "The agnt5 error code, e.g. INVALID_ARGUMENT, NOT_FOUND, TIMEOUT.",
        },
        "invocation_id": {"type": "string", "description": "The invocation it concerns."},
    },
    "required": ["error", "status", "code"],
}

_COMPONENT_NAME = re.compile(r"[^A-Za-z0-9._-]")
_LOCAL_REF = "#/$defs/"


def path_segment(name: str) -> str:
    """``name`` as one literal path segment (percent-encoded where it must be)."""
    return quote(name, safe="")


def _component_name(text: str) -> str:
    return _COMPONENT_NAME.sub("_", text) or "_"


class OpenApi:
    """One OpenAPI 3.1 document, built up operation by operation."""

    def __init__(
        self,
        title: str,
        version: str,
        description: str = "",
        *,
        root_path: str = "",
        bearer: bool = False,
    ) -> None:
        self._info = {"title": title, "version": version}
        if description:
            self._info["description"] = description
        self._root_path = root_path.rstrip("/")
        self._bearer = bearer
        self._paths: dict[str, dict[str, Any]] = {}
        self._schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
        self._operation_ids: set[str] = set()

    def embed(self, schema: Any, prefix: str) -> Any:
        """A function's JSON Schema document as a schema of this one: its ``$defs`` become
        ``components/schemas`` named ``<prefix>.<name>``, and its references point there."""
        if not isinstance(schema, dict):
            return {} if schema is None else schema
        schema = dict(schema)
        schema.pop("$schema", None)
        definitions = schema.pop("$defs", None) or {}
        prefix = _component_name(prefix)
        renamed = {
            name: self._free_name(f"{prefix}.{_component_name(name)}") for name in definitions
        }
        for name, definition in definitions.items():
            self._schemas[renamed[name]] = _rewrite(definition, renamed)
        return _rewrite(schema, renamed)

    def _free_name(self, name: str) -> str:
        candidate, number = name, 1
        while candidate in self._schemas:  # bounded: each turn tries a new suffix
            number += 1
            candidate = f"{name}_{number}"
        self._schemas[candidate] = {}
        return candidate

    def operation_id(self, text: str) -> str:
        """A unique operationId made of ``text``."""
        base = _component_name(text)
        candidate, number = base, 1
        while candidate in self._operation_ids:  # bounded: each turn tries a new suffix
            number += 1
            candidate = f"{base}_{number}"
        self._operation_ids.add(candidate)
        return candidate

    def add(self, method: str, path: str, operation: dict[str, Any]) -> None:
        """Add ``operation`` (an Operation Object) as ``method`` of ``path``."""
        self._paths.setdefault(path, {})[method.lower()] = operation

    def document(self) -> dict[str, Any]:
        """The OpenAPI document (a plain dict, ready for JSON)."""
        components: dict[str, Any] = {"schemas": self._schemas}
        document: dict[str, Any] = {
            "openapi": OPENAPI_VERSION,
            "info": self._info,
            "servers": [{"url": self._root_path or "/"}],
            "paths": self._paths,
            "components": components,
        }
        if self._bearer:
            components["securitySchemes"] = {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A client key: 'Authorization: Bearer <key>'.",
                }
            }
            document["security"] = [{"bearer": []}]
        return document


def json_body(schema: Any, description: str = "", *, required: bool = True) -> dict[str, Any]:
    """A Request Body Object of JSON described by ``schema``."""
    body: dict[str, Any] = {
        "required": required,
        "content": {"application/json": {"schema": schema}},
    }
    if description:
        body["description"] = description
    return body


def json_response(description: str, schema: Any, **extra: Any) -> dict[str, Any]:
    """A Response Object of JSON described by ``schema``."""
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def error_responses(statuses: Iterable[int]) -> dict[str, Any]:
    """Response Objects of the error document for each of ``statuses``."""
    error = {"$ref": "#/components/schemas/Error"}
    return {str(status): json_response(ERROR_STATUSES[status], error) for status in statuses}


def _rewrite(schema: Any, renamed: dict[str, str]) -> Any:
    """A copy of ``schema`` whose references into its ``$defs`` point to ``renamed`` components."""
    if isinstance(schema, dict):
        copied = {}
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_LOCAL_REF):
                name = renamed.get(value[len(_LOCAL_REF) :])
                copied[key] = f"#/components/schemas/{name}" if name is not None else value
            else:
                copied[key] = _rewrite(value, renamed)
        return copied
    if isinstance(schema, list):
        return [_rewrite(item, renamed) for item in schema]
    return schema
