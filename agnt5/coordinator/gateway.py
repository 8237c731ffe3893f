"""The HTTP gateway: a small Starlette app over the scheduler (JSON in, JSON out).

``POST /v1/services/{service}/functions/{function}/invoke`` waits for the outcome: 200 with the
invocation (``result`` holds the return value, as in the ASGI runtime's answer), the error's
HTTP status with an error body, or 202 with the still-running invocation after ``?wait=``
seconds (default 60). ``.../submit`` is 202 ``{"invocation_id", "deduplicated"}``;
``GET /v1/invocations/{id}[?wait=s]`` is 200 with the invocation in any state (a workflow's
with its ``steps``; ``?detail=true`` adds its input, metadata, times, worker and trace id);
``POST /v1/invocations/{id}/cancel`` cancels it (200 with the cancelled invocation; 409 once it
finished); ``POST /v1/invocations/{id}/signals/{name}`` sends a workflow the JSON body as the
signal's payload, 200 ``{"invocation_id", "signal", "delivered"}``; ``GET /v1/invocations``
lists invocations newest first (``?service= &function= &state= &created_after=
&created_before= &limit= &cursor=``, times in Unix seconds): ``{"invocations",
"next_cursor"}``; ``GET /v1/services`` lists services; ``GET /v1/events`` streams changes as
server-sent events (see `agnt5.coordinator.events`). ``?timeout=s`` sets an invocation
deadline; the ``Idempotency-Key`` header dedupes. Errors are
``{"error", "status", "code"}`` (plus ``invocation_id`` when there is one).
``GET /openapi.json`` describes all this (OpenAPI 3.1, an operation per function), and the
console (``/console``) and the docs page (``/docs``) are served beside it
(`agnt5.coordinator.console`).

Probes and metrics: ``GET /health`` is 200 while the coordinator's loop answers (liveness);
``GET /ready`` is 200 while it accepts work (its journal commits, it is not shutting down), else
503 with the reason; ``GET /metrics`` is the Prometheus exposition (`agnt5.coordinator.telemetry`)
and, once client keys are configured, needs one that is not limited to some services.

A POST must declare a JSON body (``Content-Type: application/json`` or ``application/*+json``,
else 415) and every request must name the gateway in its ``Host`` (see `_cross_site`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from agnt5 import config
from agnt5._wire.http import (
    check_content_type,
    check_declared_length,
    error_body,
    http_error,
    read_body,
)
from agnt5._wire.views import invocation_view, service_dict, summary_dict
from agnt5.coordinator._cross_site import HostCheck
from agnt5.coordinator.auth import Credentials, Grant
from agnt5.coordinator.checks import invocation_query, seconds
from agnt5.coordinator.console import web_routes
from agnt5.coordinator.events import event_stream
from agnt5.coordinator.invocations_service import (
    listing_message,
    services_message,
    summary_message,
)
from agnt5.coordinator.openapi import gateway_openapi
from agnt5.coordinator.registry import Registry
from agnt5.coordinator.scheduler import Scheduler
from agnt5.coordinator.store import Invocation, visible_state
from agnt5.errors import AgntError, InvalidArgumentError, UnauthenticatedError, error_from_dict
from agnt5.workflows.journal import Entry

__all__ = ["build_gateway"]

_Endpoint = Callable[[Request, Grant], Awaitable[Response]]
_NO_STORE = {"cache-control": "no-store"}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def _error(error: AgntError, invocation_id: str | None = None) -> Response:
    body = error_body(error, invocation_id)
    return Response(body, error.http_status, media_type="application/json")


def _invocation(
    invocation: Invocation, settled: bool, steps: list[Entry] | None = None
) -> dict[str, Any]:
    """The invocation's view (one whose outcome is not saved yet shows as running)."""
    return invocation_view(
        invocation.id,
        invocation.service,
        invocation.function,
        visible_state(invocation, settled).name,
        invocation.attempt,
        invocation.duration_us,
        orjson.Fragment(invocation.output or b"null"),
        invocation.error if settled else None,
        steps or None,
    )


def _detail(invocation: Invocation) -> dict[str, Any]:
    """What ``?detail=true`` adds to an invocation: its input, metadata, times, worker, trace
    id and idempotency key."""
    traceparent = invocation.metadata.get("traceparent", "").split("-")
    return {
        "input": orjson.Fragment(invocation.input) if invocation.input.strip() else None,
        "metadata": invocation.metadata,
        "created_unix_ms": invocation.created_unix_ms,
        "deadline_unix_ms": invocation.deadline_unix_ms or None,
        "worker_id": invocation.worker_id or None,
        "trace_id": traceparent[1] if len(traceparent) == 4 else None,
        "idempotency_key": invocation.idempotency_key or None,
    }


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "false").lower()
    if raw not in ("true", "1", "false", "0"):
        raise InvalidArgumentError(
            f"query parameter {name!r} must be true or false, got {raw[:32]!r}"
        )
    return raw in ("true", "1")


def _seconds(request: Request, name: str, default: float | None) -> float | None:
    raw = request.query_params.get(name)
    return default if raw is None else seconds(name, raw)


def _check_json(request: Request) -> None:
    """A POST must declare a JSON body (see `check_content_type`)."""
    check_content_type(request.headers.get("content-type", "").encode("latin-1") or None)


def _unix_ms(request: Request, name: str) -> int:
    """Unix milliseconds from query parameter ``name``, in Unix seconds (0 when absent)."""
    raw = request.query_params.get(name)
    if raw is None:
        return 0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e13:
        raise InvalidArgumentError(
            f"query parameter {name!r} must be a Unix time in seconds, got {raw[:32]!r}"
        )
    return int(value * 1000)


def _count(request: Request, name: str) -> int:
    raw = request.query_params.get(name, "0")
    if not raw.isdigit() or len(raw) > 6:
        raise InvalidArgumentError(f"query parameter {name!r} must be a count, got {raw[:32]!r}")
    return int(raw)


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
    credentials: Credentials,
    *,
    allowed_hosts: Iterable[str] = (),
    wait_timeout: float = config.GATEWAY_WAIT,
    metrics: Callable[[str], tuple[bytes, str]] | None = None,
    console: bool = True,
    docs: bool = True,
) -> HostCheck:
    """The gateway app; with client keys every route but the probes and the pages needs
    ``Authorization: Bearer <key>`` with one of them, and reaches only the services its key is
    limited to. ``allowed_hosts``: the names it answers to besides IP addresses and localhost
    (``"*"``: any). ``metrics(accept)``: the body and content type ``/metrics`` serves (none:
    404). ``console``: serve the console; ``docs``: serve ``/openapi.json`` and ``/docs``."""
    refused = scheduler.telemetry.refused
    keyed = "client" not in credentials.open_roles()

    def guarded(endpoint: _Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                grant = credentials.client(request.headers.get("authorization"))
                return await endpoint(request, grant)
            except AgntError as error:
                refused(error)
                return _error(error)

        return handle

    async def submit(request: Request, grant: Grant) -> tuple[Invocation, bool]:
        grant.check(request.path_params["service"], "invoke")
        _check_json(request)
        timeout = _seconds(request, "timeout", None)
        payload = await _read_input(request, scheduler.max_input_bytes)
        return scheduler.submit(
            request.path_params["service"],
            request.path_params["function"],
            payload,
            idempotency_key=request.headers.get("idempotency-key", ""),
            timeout=timeout,
            metadata={
                k: request.headers[k] for k in ("traceparent", "tracestate") if k in request.headers
            },
        )

    async def invoke_endpoint(request: Request, grant: Grant) -> Response:
        wait = _seconds(request, "wait", wait_timeout)
        invocation, _ = await submit(request, grant)
        if not await scheduler.wait(invocation, wait):
            await scheduler.saved()  # its id goes out only once it is journaled
            location = {"location": f"/v1/invocations/{invocation.id}"}
            return _json(_invocation(invocation, False), 202, location)
        if invocation.error is not None:
            return _error(error_from_dict(invocation.error), invocation.id)
        return _json(_invocation(invocation, True))

    async def submit_endpoint(request: Request, grant: Grant) -> Response:
        invocation, deduplicated = await submit(request, grant)
        if not scheduler.settled(invocation):
            await scheduler.saved()
        return _json({"invocation_id": invocation.id, "deduplicated": deduplicated}, 202)

    async def result_endpoint(request: Request, grant: Grant) -> Response:
        wait = _seconds(request, "wait", 0.0)
        detail = _flag(request, "detail")
        invocation = scheduler.get(request.path_params["invocation_id"])
        grant.check(invocation.service, "read results of")
        settled = await scheduler.wait(invocation, wait)
        data = _invocation(invocation, settled, scheduler.workflows.steps(invocation))
        return _json({**data, **_detail(invocation)} if detail else data)

    async def signal_endpoint(request: Request, grant: Grant) -> Response:
        invocation = scheduler.get(request.path_params["invocation_id"])
        grant.check(invocation.service, "send signals to")
        _check_json(request)
        name = request.path_params["name"]
        payload = await _read_input(request, scheduler.max_input_bytes)
        delivered = await scheduler.workflows.signal(invocation, name, payload)
        return _json({"invocation_id": invocation.id, "signal": name, "delivered": delivered})

    async def list_endpoint(request: Request, grant: Grant) -> Response:
        service = request.query_params.get("service", "")
        if service:
            grant.check(service, "list invocations of")
        states = [s for v in request.query_params.getlist("state") for s in v.split(",") if s]
        query = invocation_query(
            service=service,
            function=request.query_params.get("function", ""),
            states=states,
            created_after_unix_ms=_unix_ms(request, "created_after"),
            created_before_unix_ms=_unix_ms(request, "created_before"),
            limit=_count(request, "limit"),
            cursor=request.query_params.get("cursor", ""),
            allowed=grant.services,
        )
        page = listing_message(scheduler.list(query))
        invocations = [summary_dict(summary) for summary in page.invocations]
        return _json({"invocations": invocations, "next_cursor": page.next_cursor or None})

    async def cancel_endpoint(request: Request, grant: Grant) -> Response:
        _check_json(request)
        invocation = scheduler.get(request.path_params["invocation_id"])
        grant.check(invocation.service, "cancel invocations of")
        body = await _read_input(request, 64 * 1024)
        data = orjson.loads(body) if body.strip() else {}
        reason = data.get("reason", "") if isinstance(data, dict) else None
        if not isinstance(reason, str):
            raise InvalidArgumentError('the body must be empty or {"reason": "why"}')
        invocation = await scheduler.cancel(invocation.id, reason)  # returns once journaled
        return _json(_invocation(invocation, scheduler.settled(invocation)))

    def services(grant: Grant) -> list[dict[str, Any]]:
        listed = services_message(registry, scheduler, grant).services
        return [service_dict(service) for service in listed]

    async def services_endpoint(request: Request, grant: Grant) -> Response:
        return _json({"services": services(grant)})

    async def events_endpoint(request: Request, grant: Grant) -> Response:
        watcher = scheduler.events.watch(grant.allows)
        stream = event_stream(
            scheduler.events,
            watcher,
            lambda invocation: summary_dict(
                summary_message(scheduler.visible(invocation.listed()))
            ),
            lambda: {"services": services(grant)},
        )
        headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    async def openapi_endpoint(request: Request, grant: Grant) -> Response:
        allowed = (entry for entry in registry.services() if grant.allows(entry.name))
        root = str(request.scope.get("root_path", ""))
        return _json(gateway_openapi(allowed, root, bearer=keyed, metrics=metrics is not None))

    async def health_endpoint(request: Request) -> Response:
        return _json({"status": "healthy"}, headers=_NO_STORE)

    async def ready_endpoint(request: Request) -> Response:
        reason = scheduler.accepting
        if reason is None:
            return _json({"status": "ready"}, headers=_NO_STORE)
        return _json({"status": "not ready", "reason": reason}, 503, _NO_STORE)

    async def metrics_endpoint(request: Request, grant: Grant) -> Response:
        if grant.services is not None:
            raise UnauthenticatedError(
                "this key is limited to some services: /metrics needs one that is not"
            )
        assert metrics is not None
        body, content_type = metrics(request.headers.get("accept", ""))
        return Response(body, headers=_NO_STORE, media_type=content_type)

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(http_error(exc.status_code, exc.detail))

    function_path = "/v1/services/{service}/functions/{function}"
    app = Starlette(
        routes=[
            Route(f"{function_path}/invoke", guarded(invoke_endpoint), methods=["POST"]),
            Route(f"{function_path}/submit", guarded(submit_endpoint), methods=["POST"]),
            Route("/v1/invocations", guarded(list_endpoint), methods=["GET"]),
            Route("/v1/invocations/{invocation_id}", guarded(result_endpoint), methods=["GET"]),
            Route(
                "/v1/invocations/{invocation_id}/cancel",
                guarded(cancel_endpoint),
                methods=["POST"],
            ),
            Route(
                "/v1/invocations/{invocation_id}/signals/{name}",
                guarded(signal_endpoint),
                methods=["POST"],
            ),
            Route("/v1/services", guarded(services_endpoint), methods=["GET"]),
            Route("/v1/events", guarded(events_endpoint), methods=["GET"]),
            Route("/health", health_endpoint, methods=["GET"]),
            Route("/ready", ready_endpoint, methods=["GET"]),
            *([Route("/metrics", guarded(metrics_endpoint), methods=["GET"])] if metrics else []),
            *([Route("/openapi.json", guarded(openapi_endpoint), methods=["GET"])] if docs else []),
            *web_routes(console=console, docs=docs),
        ],
        exception_handlers={HTTPException: on_http_exception},
    )
    return HostCheck(app, allowed_hosts, refused)
