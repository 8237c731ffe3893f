"""The HTTP gateway: a small Starlette app over the scheduler (JSON in, JSON out).

``POST /v1/services/{service}/functions/{function}/invoke`` waits for the outcome: 200 with the
invocation (``output`` holds the return value), the error's HTTP status with an error body, or
202 with the still-running invocation after ``?wait=`` seconds (default 60). ``.../submit`` is
202 ``{"invocation_id", "deduplicated"}``; ``GET /v1/invocations/{id}[?wait=s]`` is 200 with
the invocation in any state; ``GET /v1/services`` lists services. ``?timeout=s`` sets an
invocation deadline; the ``Idempotency-Key`` header dedupes. Errors are
``{"error", "status", "code"}`` (plus ``invocation_id`` when there is one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agnt5._wire.views import service_dict
from agnt5.coordinator.auth import check_authorization
from agnt5.coordinator.invocations_service import services_message
from agnt5.coordinator.registry import Registry
from agnt5.coordinator.scheduler import Scheduler
from agnt5.coordinator.store import Invocation, InvocationState
from agnt5.errors import AgntError, InvalidArgumentError, PayloadTooLargeError, error_from_dict

__all__ = ["build_gateway"]

_Endpoint = Callable[[Request], Awaitable[Response]]
_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def _error(error: AgntError, invocation_id: str | None = None) -> Response:
    body: dict[str, Any] = {"error": error.message, "status": error.http_status, "code": error.code}
    if invocation_id is not None:
        body["invocation_id"] = invocation_id
    return _json(body, error.http_status)


def _invocation(invocation: Invocation) -> dict[str, Any]:
    data: dict[str, Any] = {
        "invocation_id": invocation.id,
        "service": invocation.service,
        "function": invocation.function,
        "state": invocation.state.name,
        "attempt": invocation.attempt,
        "duration_ms": invocation.duration_us / 1000,
    }
    if invocation.state is InvocationState.SUCCEEDED:
        data["output"] = orjson.Fragment(invocation.output or b"null")
    elif invocation.error is not None:
        data["error"] = invocation.error
    return data


def _seconds(request: Request, name: str, default: float | None) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise InvalidArgumentError(f"query parameter {name!r} must be a number of seconds >= 0")
    return value


async def _read_input(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes, checked to be JSON (empty means no input)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise PayloadTooLargeError(f"input is {length} bytes, over the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # ends by the limit at the latest
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"input is over the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if body.strip():
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgumentError(f"input is not valid JSON: {exc}") from None
    return body


def build_gateway(
    scheduler: Scheduler, registry: Registry, *, api_key: str | None, wait_timeout: float = 60.0
) -> Starlette:
    """The gateway app; with ``api_key`` every route needs ``Authorization: Bearer <key>``."""

    def guarded(endpoint: _Endpoint) -> _Endpoint:
        async def handle(request: Request) -> Response:
            try:
                check_authorization(api_key, request.headers.get("authorization"))
                return await endpoint(request)
            except AgntError as error:
                return _error(error)

        return handle

    async def submit(request: Request) -> tuple[Invocation, bool]:
        payload = await _read_input(request, scheduler.max_input_bytes)
        return scheduler.submit(
            request.path_params["service"],
            request.path_params["function"],
            payload,
            idempotency_key=request.headers.get("idempotency-key", ""),
            timeout=_seconds(request, "timeout", None),
            metadata={
                k: request.headers[k] for k in ("traceparent", "tracestate") if k in request.headers
            },
        )

    async def invoke_endpoint(request: Request) -> Response:
        invocation, _ = await submit(request)
        await scheduler.wait(invocation, _seconds(request, "wait", wait_timeout))
        if invocation.error is not None:
            return _error(error_from_dict(invocation.error), invocation.id)
        if not invocation.finished:
            location = {"location": f"/v1/invocations/{invocation.id}"}
            return _json(_invocation(invocation), 202, location)
        return _json(_invocation(invocation))

    async def submit_endpoint(request: Request) -> Response:
        invocation, deduplicated = await submit(request)
        await scheduler.saved()
        return _json({"invocation_id": invocation.id, "deduplicated": deduplicated}, 202)

    async def result_endpoint(request: Request) -> Response:
        invocation = scheduler.get(request.path_params["invocation_id"])
        await scheduler.wait(invocation, _seconds(request, "wait", 0.0))
        return _json(_invocation(invocation))

    async def services_endpoint(request: Request) -> Response:
        services = services_message(registry, scheduler).services
        return _json({"services": [service_dict(service) for service in services]})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        return _json(
            {"error": exc.detail, "status": exc.status_code, "code": code}, exc.status_code
        )

    function_path = "/v1/services/{service}/functions/{function}"
    return Starlette(
        routes=[
            Route(f"{function_path}/invoke", guarded(invoke_endpoint), methods=["POST"]),
            Route(f"{function_path}/submit", guarded(submit_endpoint), methods=["POST"]),
            Route("/v1/invocations/{invocation_id}", guarded(result_endpoint), methods=["GET"]),
            Route("/v1/services", guarded(services_endpoint), methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
