"""ASGI runtime: a ``Worker(runtime="asgi")`` is itself an ASGI 3 application.

Endpoints: ``GET /health``, ``GET /functions`` and ``POST /invoke/{handler}``, and unless
``docs=False`` (``AGNT5_DOCS=0``) ``GET /openapi.json`` (OpenAPI 3.1: an operation per function,
its schemas from the function's) and ``GET /docs`` (a page to read and try them, its files in
the package). ``/invoke`` runs on
a raw ASGI fast path (read the body, hand the bytes to the hot path, write the encoded bytes);
Starlette supplies the middleware (CORS, and anything given to ``add_middleware``), which wraps
every endpoint.

Request rules for ``/invoke/{handler}``:

- The body is JSON, and says so: ``Content-Type: application/json`` (or ``application/*+json``).
  Anything else, or none, is 415 naming the header to add (a web page cannot send JSON to
  another site without the CORS preflight only `enable_cors` answers).
- Bodies over ``max_body_size`` (10 MiB by default, ``AGNT5_MAX_BODY_SIZE``) are 413, refused
  from ``Content-Length`` before reading, or as soon as the streamed body passes the limit.
- A client that disconnects before its body is complete gets no invocation; one that
  disconnects while the handler runs cancels it (an async handler is cancelled; a sync one in
  the thread pool sees ``ctx.cancelled``); its answer, 499 ``CANCELLED``, goes nowhere.
- ``X-Invocation-Id`` sets the invocation id (1 to 128 of ``A-Z a-z 0-9 . _ : -``, else one is
  generated). ``traceparent``, ``tracestate`` and every ``x-agnt5-*`` header reach the handler
  as ``ctx.metadata``.
- Mounted under a prefix (Starlette's ``Mount("/agnt5", app=worker)``, ``uvicorn
  --root-path /api``), the routes are below the scope's ``root_path``, as Starlette's are.
- Success is ``200 {"result": ..., "invocation_id": ...}``; errors are
  ``{"error", "status", "code", "invocation_id"}`` with the status of the error's code
  (400, 404, 413, 415, 429, 500, 503, 504, ...), whatever the handler raised (``SystemExit``
  too). Tracebacks are logged, never returned.

Lifespan: startup starts the invocation pipeline (the thread pool for sync handlers and the
telemetry); shutdown waits for in-flight requests up to ``drain_timeout``, then stops it. Every
function registered in the process is served, whenever it was registered. Servers that skip lifespan get
the same start on the first request. ``await worker.run()`` serves the app with uvicorn on
``http_host:http_port`` (``AGNT5_HTTP_HOST``/``AGNT5_HTTP_PORT``, default 127.0.0.1:8000).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from agnt5._pipeline import NO_METADATA, Pipeline, Route, cancelled_itself
from agnt5._web import Reply, asset_reply, page, page_reply
from agnt5._wire.http import (
    ClientDisconnected,
    MethodNotAllowed,
    check_content_type,
    check_declared_length,
    error_body,
    http_parser,
    read_body,
    respond,
    response_start,
)
from agnt5.errors import AgntError, NotFoundError, UnavailableError
from agnt5.runtimes._openapi import asgi_openapi

if TYPE_CHECKING:
    from agnt5._registry import Registry
    from agnt5.config import WorkerConfig
    from agnt5.context import Context

__all__ = ["AsgiRuntime"]

_log = logging.getLogger("agnt5.asgi")

_INVOKE_PREFIX = "/invoke/"
_ROUTES = {"/health": "GET", "/functions": "GET"}
_DOCS_ROUTES = ("/openapi.json", "/docs")
_DOCS_STATIC = "/docs/static/"
_VALID_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")  # the whole value (fullmatch)
_METADATA_HEADERS = (b"traceparent", b"tracestate")
_WATCH_AFTER = 0.05  # seconds into an attempt before a disconnect is watched for


class AsgiRuntime:
    """The ASGI application serving ``registry``'s components (what an ASGI `Worker` is)."""

    def __init__(self, config: WorkerConfig, registry: Registry) -> None:
        self._config = config
        self._registry = registry
        self._middleware: list[Middleware] = []
        self._cors: Middleware | None = None
        self.app: Any = self._endpoints
        """The outermost ASGI app: the endpoints inside the middleware (what `Worker` calls)."""
        self._routes: dict[str, Route] = {}  # "/invoke/{name}" -> route, once looked up
        self._body_limit = config.max_body_size
        self._body_limit_digits = len(str(self._body_limit))
        self._pipeline: Pipeline | None = None
        self._started = False
        self._in_flight = 0
        self._watches = _Watches()
        self._forced_exit = False

    # The Worker's public surface.

    def is_running(self) -> bool:
        """True between startup (lifespan, or the first request) and shutdown."""
        return self._started

    async def run(self) -> None:
        """Serve this app with uvicorn on ``http_host:http_port`` until SIGINT/SIGTERM (or
        `stop`): in-flight requests get ``drain_timeout`` to finish, then it returns. A second
        signal cancels them and returns at once. Idle connections are closed after 5 s and at
        most 1000 are open (`agnt5._wire.serving`).

        The HTTP parser is httptools where it is installed (``pip install 'agnt5[standard]'``),
        else h11; the event loop is the caller's (``uvloop.run(main())`` makes it uvloop's).
        """
        import uvicorn

        from agnt5._wire import serving
        from agnt5.runtimes._uvicorn import Server

        config = uvicorn.Config(
            self,
            interface="asgi3",
            host=self._config.http_host,
            port=self._config.http_port,
            http=http_parser(),
            log_level=self._config.log_level.lower(),
            timeout_graceful_shutdown=int(self._config.drain_timeout) or None,
        )
        self._server = server = Server(serving.guard_connections(config, serving.DEFAULT_LIMITS))
        loop = type(asyncio.get_running_loop())
        _log.info("HTTP parser %s, event loop %s.%s", config.http, loop.__module__, loop.__name__)
        await server.serve()
        if server.force_exit and self._started:  # uvicorn skipped the lifespan shutdown
            self._forced_exit = True  # the requests cancelled now are answered 503
            for task in server.server_state.tasks:
                task.cancel()
            await server.lifespan.shutdown()

    def stop(self) -> None:
        """Ask a server started by `run` to shut down gracefully."""
        server = getattr(self, "_server", None)
        if server is not None:
            server.should_exit = True

    def enable_cors(self, origins: list[str] | None = None, **options: Any) -> None:
        """CORS for every origin, or only ``origins``; other CORSMiddleware options pass through."""
        settings = {"allow_methods": ["GET", "POST", "OPTIONS"], "allow_headers": ["*"], **options}
        settings["allow_origins"] = list(origins) if origins is not None else ["*"]
        self._cors = Middleware(CORSMiddleware, **settings)
        self._build()

    def disable_cors(self) -> None:
        self._cors = None
        self._build()

    def add_middleware(self, middleware_class: type, **options: Any) -> None:
        """The last middleware added is the outermost (as in Starlette); CORS wraps them all."""
        self._middleware.insert(0, Middleware(middleware_class, **options))
        self._build()

    # ASGI.

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        return self.app(scope, receive, send)  # type: ignore[no-any-return]

    def _build(self) -> None:
        """Wrap the endpoints in the middleware stack (CORS outermost)."""
        app: Any = self._endpoints
        stack = ([self._cors] if self._cors is not None else []) + self._middleware
        for middleware in reversed(stack):
            app = middleware.cls(app, *middleware.args, **middleware.kwargs)
        self.app = app

    def _endpoints(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        kind = scope["type"]
        if kind == "http":
            if scope.get("root_path"):
                scope = _below_root(scope)
            if scope["method"] == "POST":
                route = self._routes.get(scope["path"])  # empty until startup
                if route is not None:
                    return self._invoke(route.name, route, scope, receive, send)
            return self._http(scope, receive, send)
        if kind == "lifespan":
            return self._lifespan(receive, send)
        return self._refuse_websocket(receive, send)

    async def _refuse_websocket(self, receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1003, "reason": "no websocket endpoints"})

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not self._started:
            await self._startup()
        path, method = scope["path"], scope["method"]
        if path.startswith(_INVOKE_PREFIX):
            if method == "POST":
                name = path[len(_INVOKE_PREFIX) :]
                await self._invoke(name, self._routes.get(path), scope, receive, send)
            else:
                await self._not_allowed(send, "POST")
            return
        if self._config.docs and (path in _DOCS_ROUTES or path.startswith(_DOCS_STATIC)):
            if method in ("GET", "HEAD"):
                await _reply(send, self._docs_reply(scope), method == "HEAD")
            else:
                await self._not_allowed(send, "GET")
            return
        allowed = _ROUTES.get(path)
        if allowed is None:
            error = NotFoundError(
                f"no route for {path}: use /health, /functions or /invoke/{{handler}}"
                + (", /openapi.json or /docs" if self._config.docs else "")
            )
            await respond(send, 404, error_body(error, None))
        elif method not in (allowed, "HEAD"):
            await self._not_allowed(send, allowed)
        elif path == "/health":
            await respond(send, 200, self._health_body())
        else:
            await respond(send, 200, self._functions_body())

    async def _not_allowed(self, send: Any, allowed: str) -> None:
        error = MethodNotAllowed(f"method not allowed; use {allowed}")
        await respond(send, 405, error_body(error, None), [(b"allow", allowed.encode())])

    # /invoke/{handler}: the fast path.

    async def _invoke(
        self,
        name: str,
        route: Route | None,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
    ) -> None:
        content_type, content_length, invocation_id, metadata = _request_headers(scope)
        pipeline = self._pipeline
        assert pipeline is not None  # started before the first request gets here
        if invocation_id is None:
            invocation_id = pipeline.new_id()
        self._in_flight += 1
        try:
            if route is None:
                route = self._routes[scope["path"]] = pipeline.route(name)
            if content_type != b"application/json":
                check_content_type(content_type)
            if content_length is not None and len(content_length) >= self._body_limit_digits:
                check_declared_length(content_length, self._body_limit)
            message = await receive()  # uvicorn answers "Expect: 100-continue" here, not before
            body = message.get("body", b"")
            if (
                message.get("more_body", False)
                or len(body) > self._body_limit
                or message["type"] != "http.request"
            ):
                body = await read_body(receive, self._body_limit, message)
            if route.is_async or route.threads is not None:
                output = await self._run_watched(route, body, invocation_id, metadata, receive)
            else:  # an inline handler holds the event loop: nothing could stop it anyway
                output = await route.run(body, invocation_id, 1, metadata)
        except asyncio.CancelledError:
            if not self._forced_exit:
                raise
            error = UnavailableError("the worker stopped before the invocation finished")
            await respond(send, error.http_status, error_body(error, invocation_id))
        except AgntError as error:
            if type(error) is ClientDisconnected:
                _log.info("invocation %s of %s: %s", invocation_id, name, error.message)
            # answered even then (servers drop it): middleware such as Starlette's
            # BaseHTTPMiddleware fails a request that got no response
            await respond(send, error.http_status, error_body(error, invocation_id))
        else:
            output = b"".join(
                (b'{"result":', output, b',"invocation_id":"', invocation_id.encode(), b'"}')
            )
            await send(response_start(200, len(output)))
            await send({"type": "http.response.body", "body": output})
        finally:
            self._in_flight -= 1

    # Lifecycle.

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:  # bounded: the server sends startup, then shutdown, then stops
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._startup()
                except Exception as exc:
                    _log.exception("ASGI startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _startup(self) -> None:
        if self._started:
            return
        self._started = True
        self._pipeline = Pipeline.start(self._config, self._registry)
        _log.info(
            "serving %d component(s) of %s over ASGI",
            len(self._registry),
            self._config.service_name,
        )

    async def _shutdown(self) -> None:
        if not self._started:
            return
        if self._in_flight:
            _log.info("draining %d in-flight request(s)", self._in_flight)
            deadline = time.monotonic() + self._config.drain_timeout
            while self._in_flight and time.monotonic() < deadline:  # noqa: ASYNC110 - bounded poll of a plain counter
                await asyncio.sleep(0.01)
            if self._in_flight:
                _log.warning("drain timeout: %d request(s) still in flight", self._in_flight)
        assert self._pipeline is not None
        self._pipeline.stop()
        self._pipeline = None
        self._routes.clear()
        self._started = False

    def _docs_reply(self, scope: dict[str, Any]) -> Reply:
        """``/openapi.json``, ``/docs`` or one of the docs page's files."""
        path, root = scope["path"], scope.get("root_path", "").rstrip("/")
        if path == "/openapi.json":
            document = asgi_openapi(self._config, self._registry.values(), root)
            return Reply(200, {"content-type": "application/json"}, orjson.dumps(document))
        if path == "/docs":
            title = self._config.service_name
            return page_reply(page("docs", root=root, static=f"{root}/docs/static", title=title))
        headers = dict(scope["headers"])
        etag = headers.get(b"if-none-match")
        found = asset_reply(path[len(_DOCS_STATIC) :], etag.decode("latin-1") if etag else None)
        if found is None:
            error = NotFoundError(f"no file {path}")
            return Reply(404, {"content-type": "application/json"}, error_body(error, None))
        return found

    async def _run_watched(
        self,
        route: Route,
        body: bytes,
        invocation_id: str,
        metadata: Mapping[str, str],
        receive: Any,
    ) -> bytes:
        """`Route.run`, cancelled (and its ``ctx``) if the client disconnects meanwhile."""
        watch = _DisconnectWatch(receive, route.context(invocation_id, 1, metadata), self._watches)
        try:
            return await route.run(body, invocation_id, 1, metadata, None, watch.ctx)
        except asyncio.CancelledError as cancelled:
            if watch.client_left:
                raise ClientDisconnected(
                    "the client disconnected; the invocation was cancelled"
                ) from None
            if self._forced_exit:  # a second stop request: answered 503 by the caller
                raise
            # the handler cancelled its own task (or the server gave up on it): the client
            # still gets the JSON error, and the task ends right after
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            raise cancelled_itself(route.name, invocation_id, cancelled) from None
        finally:
            watch.stop()

    def _functions_body(self) -> bytes:
        metadata = [component.metadata() for component in self._registry.values()]
        return orjson.dumps({"functions": metadata, "count": len(metadata)})

    def _health_body(self) -> bytes:
        return orjson.dumps(
            {
                "status": "healthy",
                "service": self._config.service_name,
                "version": self._config.service_version,
                "runtime": "asgi",
            }
        )


def _below_root(scope: dict[str, Any]) -> dict[str, Any]:
    """The scope with its path relative to its ``root_path``, as Starlette routes: under
    ``Mount("/agnt5", app=worker)`` or ``uvicorn --root-path /api`` the path is the full one, and
    ``/agnt5/invoke/greet`` is the route ``/invoke/greet``. A path outside the root is kept."""
    path, root = scope["path"], scope["root_path"].rstrip("/")
    if path == root:
        return {**scope, "path": "/"}
    if path.startswith(root) and path[len(root)] == "/":
        return {**scope, "path": path[len(root) :]}
    return scope


class _Watches:
    """The attempts not yet watched for their client leaving, and the one timer for them all:
    each tick (every `_WATCH_AFTER` seconds while there are any) starts the watches of the
    attempts that were already waiting at the previous tick, so a watch starts between one and
    two `_WATCH_AFTER` into its attempt, and a request costs a dict entry, not a timer."""

    __slots__ = ("_loop", "_old", "_timer", "_young")

    def __init__(self) -> None:
        self._young: dict[_DisconnectWatch, None] = {}
        self._old: dict[_DisconnectWatch, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, watch: _DisconnectWatch) -> None:
        loop = watch.loop
        if loop is not self._loop:  # served from another loop now: what was pending is gone
            self._loop, self._timer = loop, None
            self._young, self._old = {}, {}
        self._young[watch] = None
        if self._timer is None:
            self._timer = loop.call_later(_WATCH_AFTER, self._tick)

    def discard(self, watch: _DisconnectWatch) -> None:
        self._young.pop(watch, None)
        self._old.pop(watch, None)

    def _tick(self) -> None:
        due, self._old, self._young = self._old, self._young, {}
        for watch in due:
            watch.start()
        self._timer = None
        if self._old and self._loop is not None:
            self._timer = self._loop.call_later(_WATCH_AFTER, self._tick)


class _DisconnectWatch:
    """While an attempt runs in this task: if the client disconnects, cancel the task (and
    ``ctx``), as `asyncio.timeout` does; `stop` undoes that cancellation once it is handled.

    The watch starts between one and two ``_WATCH_AFTER`` into the attempt (`_Watches`): most
    attempts are over by then, and cost no watching task.
    """

    __slots__ = ("_receive", "_task", "_watch", "_watches", "client_left", "ctx", "loop")

    def __init__(self, receive: Any, ctx: Context | None, watches: _Watches) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self.loop = task.get_loop()
        self._receive = receive
        self.ctx = ctx
        self.client_left = False
        self._watch: asyncio.Task[None] | None = None
        self._watches = watches
        watches.add(self)

    def start(self) -> None:
        self._watch = asyncio.create_task(self._wait())

    async def _wait(self) -> None:
        # With the body read, a server's next message is http.disconnect, when the client leaves.
        if (await self._receive())["type"] == "http.disconnect":
            self.client_left = True
            reason = "the client disconnected"
            if self.ctx is not None:
                self.ctx._cancel(reason)
            self._task.cancel(reason)

    def stop(self) -> None:
        self._watches.discard(self)
        if self._watch is not None:
            self._watch.cancel()
        if self.client_left:
            self._task.uncancel()


async def _reply(send: Any, reply: Reply, head: bool) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    headers.append((b"content-length", b"%d" % len(reply.body)))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else reply.body})


def _request_headers(
    scope: dict[str, Any],
) -> tuple[bytes | None, bytes | None, str | None, Mapping[str, str]]:
    """Content type, content length, a valid ``X-Invocation-Id`` and the ``ctx.metadata`` headers."""
    content_type = content_length = invocation_id = None
    metadata: Mapping[str, str] = NO_METADATA
    for key, value in scope["headers"]:
        if key == b"content-type":
            content_type = value
        elif key == b"content-length":
            content_length = value
        elif key == b"x-invocation-id":
            text = value.decode("latin-1")
            if _VALID_ID.fullmatch(text):
                invocation_id = text
        elif key in _METADATA_HEADERS or key.startswith(b"x-agnt5-"):
            if metadata is NO_METADATA:
                metadata = {}
            metadata[key.decode("latin-1")] = value.decode("latin-1")  # type: ignore[index]
    return content_type, content_length, invocation_id, metadata
