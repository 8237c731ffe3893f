"""HTTP for both HTTP surfaces (the ASGI runtime and the coordinator's gateway).

The one error document (`error_body`), the one bounded body reader (`check_declared_length`,
`read_body`, which refuses a body cut short by a disconnect), the JSON content-type rule, and
raw ASGI byte responses for the ASGI fast path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson

from agnt5.errors import (
    AgntError,
    InvalidArgumentError,
    InvocationCancelledError,
    NotFoundError,
    PayloadTooLargeError,
)

__all__ = [
    "JSON",
    "ClientDisconnected",
    "MethodNotAllowed",
    "UnsupportedMediaType",
    "http_error",
    "check_content_type",
    "check_declared_length",
    "error_body",
    "read_body",
    "respond",
    "response_start",
]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

JSON = b"application/json"
_ADD_HEADER = "add the header 'Content-Type: application/json'"


class UnsupportedMediaType(InvalidArgumentError):
    """A request body that is not JSON (HTTP 415)."""

    http_status = 415


class ClientDisconnected(InvocationCancelledError):
    """The client went away before its request was answered: there is nobody to answer."""


class MethodNotAllowed(AgntError):
    """A route asked for with a method it does not take (HTTP 405)."""

    code = "METHOD_NOT_ALLOWED"
    http_status = 405


def http_error(status: int, message: str) -> AgntError:
    """The agnt5 error for an HTTP failure outside agnt5's own (a router's 404 or 405, ...)."""
    if status == 404:
        return NotFoundError(message)
    if status == 405:
        return MethodNotAllowed(message)
    error = AgntError(message)
    error.code, error.http_status = f"HTTP_{status}", status
    return error


def check_content_type(value: bytes | None) -> None:
    """Accept ``application/json`` and any ``application/*+json`` (parameters allowed).

    A POST must say it is JSON: a web page can send a body without a content type, or as
    ``text/plain``, to any address without asking (no CORS preflight), but not as JSON.
    """
    media = (value or b"").split(b";", 1)[0].strip().lower()
    if media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    ):
        return
    if not media:
        raise UnsupportedMediaType(f"the request has no content type: {_ADD_HEADER}")
    raise UnsupportedMediaType(
        f"the content type {media.decode('latin-1')[:100]!r} is not JSON: {_ADD_HEADER}"
    )


def check_declared_length(declared: bytes | None, limit: int) -> None:
    """Refuse a ``Content-Length`` over ``limit`` before any of the body is received."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


async def read_body(receive: Receive, limit: int, first: dict[str, Any] | None = None) -> bytes:
    """The whole request body, refusing one over ``limit`` bytes without buffering it, and one
    the client abandoned (`ClientDisconnected`: a cut-short body is not the input).

    ``first`` is the first message when the caller already received it. The declared length is
    the caller's to check first (`check_declared_length`).
    """
    message = first if first is not None else await receive()
    chunks = []
    size = 0
    while True:  # bounded: ends with the body, past the limit or with the client gone
        if message["type"] != "http.request":
            raise ClientDisconnected("the client disconnected before the request body was complete")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"request body is over the {limit}-byte limit")


def response_start(
    status: int,
    length: int,
    headers: Iterable[tuple[bytes, bytes]] = (),
    content_type: bytes = JSON,
) -> dict[str, Any]:
    """The ``http.response.start`` message of a response of ``length`` bytes (JSON unless
    ``content_type`` says otherwise)."""
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type), (b"content-length", b"%d" % length), *headers],
    }


async def respond(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send a complete JSON response."""
    await send(response_start(status, len(body), headers))
    await send({"type": "http.response.body", "body": body})


def error_body(error: AgntError, invocation_id: str | None = None) -> bytes:
    """The HTTP error document: ``{"error", "status", "code"[, "invocation_id"]}``."""
    document: dict[str, Any] = {
        "error": error.message,
        "status": error.http_status,
        "code": error.code,
    }
    if invocation_id is not None:
        document["invocation_id"] = invocation_id
    return orjson.dumps(document)
