"""The coordinator's web pages, on the gateway's port: the console (``/console``: services,
workers, invocations live, one invocation's detail and a workflow's timeline, and forms to
invoke, cancel, re-submit and signal) and the API docs page (``/docs``).

The pages hold no data: their scripts read it from the gateway's API (``/v1/...``), sending the
client key, when one is needed, as an ``Authorization`` header (see ``static/api.js``), so the
pages themselves need no key and no cookie exists that another site could ride on. Their
files ship in the package (`agnt5._web`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from agnt5._web import Reply, asset_reply, page, page_reply
from agnt5._wire.http import error_body
from agnt5.errors import NotFoundError

__all__ = ["web_routes"]


def _response(reply: Reply) -> Response:
    return Response(reply.body, reply.status, reply.headers)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


async def _asset(request: Request) -> Response:
    reply = asset_reply(request.path_params["name"], request.headers.get("if-none-match"))
    if reply is None:
        body = error_body(NotFoundError(f"no file {request.url.path}"))
        return Response(body, 404, media_type="application/json")
    return _response(reply)


async def _console(request: Request) -> Response:
    root = _root(request)
    return _response(page_reply(page("console", root=root, static=f"{root}/console/static")))


async def _docs(request: Request) -> Response:
    root = _root(request)
    body = page("docs", root=root, static=f"{root}/console/static", title="agnt5 coordinator")
    return _response(page_reply(body))


async def _to_console(request: Request) -> Response:
    return RedirectResponse(f"{_root(request)}/console", 307)


def web_routes(*, console: bool, docs: bool) -> list[BaseRoute]:
    """The routes of the console (and ``/`` leading to it) and of the docs page."""
    routes: list[BaseRoute] = []
    if console:
        routes += [
            Route("/", _to_console, methods=["GET"]),
            Route("/console", _console, methods=["GET"]),
        ]
    if docs:
        routes.append(Route("/docs", _docs, methods=["GET"]))
    if console or docs:
        routes.append(Route("/console/static/{name}", _asset, methods=["GET"]))
    return routes
