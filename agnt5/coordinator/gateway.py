"""The HTTP gateway: a small Starlette app over the scheduler (JSON in, JSON out).

``POST /v1/services/{service}/functions/{function}/invoke`` waits for the outcome: 200 with the
invocation (``output`` holds the return value), the error's HTTP status with an error body, or
202 with the still-running invocation after ``?wait=`` seconds (default 60). ``.../submit`` is
202 ``{"invocation_id", "deduplicated"}``; ``GET /v1/invocations/{id}[?wait=s]`` is 200 with
the invocation in any state (a workflow's with its ``steps``);
``POST /v1/invocations/{id}/signals/{name}`` sends a workflow the JSON body as the signal's
payload, 200 ``{"invocation_id", "signal", "delivered"}``; ``GET /v1/services`` lists services.
``?timeout=s`` sets an invocation deadline; the ``Idempotency-Key`` header dedupes. Errors are
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

from agnt5 import config
from agnt5._wire.http import check_declared_length, error_body, http_error, read_body
from agnt5._wire.views import invocation_view, service_view, worker_dict
from agnt5.coordinator.auth import check_authorization
from agnt5.coordinator.registry import Registry
from agnt5.coordinator.scheduler import Scheduler
from agnt5.coordinator.store import Invocation
from agnt5.errors import AgntError, InvalidArgumentError, error_from_dict
from agnt5.workflows.journal import Entry

__all__ = ["build_gateway"]

_Endpoint = Callable[[Request], Awaitable[Response]]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def _error(error: AgntError, invocation_id: str | None = None) -> Response:
    body = error_body(error, invocation_id)
    return Response(body, error.http_status, media_type="application/json")


def _invocation(invocation: Invocation, steps: list[Entry] | None = None) -> dict[str, Any]:
    return invocation_view(
        invocation.id,
        invocation.service,
        invocation.function,
        invocation.state.name,
        invocation.attempt,
        invocation.duration_us,
        orjson.Fragment(invocation.output or b"null"),
        invocation.error,
        steps or None,
    )


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
    check_declared_length(request.headers.get("content-length", "").encode("latin-1"), limit)
    body = await read_body(request.receive, limit)
    if body.strip():
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgumentError(f"input is not valid JSON: {exc}") from None
    return body


def build_gateway(
    scheduler: Scheduler,
    registry: Registry,
    *,
    api_key: str | None,
    wait_timeout: float = config.GATEWAY_WAIT,
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
        return _json(_invocation(invocation, scheduler.workflows.steps(invocation)))

    async def signal_endpoint(request: Request) -> Response:
        invocation_id, name = request.path_params["invocation_id"], request.path_params["name"]
        payload = await _read_input(request, scheduler.max_input_bytes)
        delivered = await scheduler.workflows.signal(invocation_id, name, payload)
        return _json({"invocation_id": invocation_id, "signal": name, "delivered": delivered})

    async def services_endpoint(request: Request) -> Response:
        services = [
            service_view(
                entry.name,
                entry.version,
                entry.components.values(),
                (
                    worker_dict(
                        w.worker_id, w.version, w.max_concurrency, len(w.in_flight), w.draining
                    )
                    for w in entry.workers.values()
                ),
                scheduler.queued(entry.name),
            )
            for entry in registry.services()
        ]
        return _json({"services": services})

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(http_error(exc.status_code, exc.detail))

    function_path = "/v1/services/{service}/functions/{function}"
    return Starlette(
        routes=[
            Route(f"{function_path}/invoke", guarded(invoke_endpoint), methods=["POST"]),
            Route(f"{function_path}/submit", guarded(submit_endpoint), methods=["POST"]),
            Route("/v1/invocations/{invocation_id}", guarded(result_endpoint), methods=["GET"]),
            Route(
                "/v1/invocations/{invocation_id}/signals/{name}",
                guarded(signal_endpoint),
                methods=["POST"],
            ),
            Route("/v1/services", guarded(services_endpoint), methods=["GET"]),
        ],
        exception_handlers={HTTPException: on_http_exception},
    )
