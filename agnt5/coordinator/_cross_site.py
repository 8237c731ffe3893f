"""What keeps a web page a developer visits from invoking their local functions through the
HTTP gateway: the ``Host`` must be one of the gateway's names, so a hostile domain re-resolved to
127.0.0.1 (DNS rebinding) is refused. POST bodies must also be declared JSON, which a page cannot
send cross-site without a CORS preflight the gateway never grants (`agnt5._wire.http`, shared
with the ASGI runtime)."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from agnt5._wire.http import error_body, respond
from agnt5.errors import AgntError, InvalidArgumentError

__all__ = ["HostCheck"]

_Scope = MutableMapping[str, Any]
_App = Callable[[_Scope, Any, Any], Awaitable[None]]


class HostCheck:
    """ASGI middleware refusing a request whose ``Host`` is not one of ``allowed`` names.

    IP addresses, ``localhost`` and ``*.localhost`` are always allowed (a rebinding attack
    needs a domain name); ``"*"`` in ``allowed`` allows any host. Each refusal is told to
    ``refused``.
    """

    def __init__(
        self,
        app: _App,
        allowed: Iterable[str],
        refused: Callable[[AgntError], None] = lambda error: None,
    ) -> None:
        self._app = app
        self._refused = refused
        names = {name.strip().lower().rstrip(".") for name in allowed}
        self._any = "*" in names
        self._allowed = frozenset(names)

    async def __call__(self, scope: _Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self._any:
            host = _host_header(scope)
            if host is not None and not self._allows(host):
                error = _foreign_host(host)
                self._refused(error)
                await respond(send, error.http_status, error_body(error))
                return
        await self._app(scope, receive, send)

    def _allows(self, host: str) -> bool:
        name = _name(host)
        if name in self._allowed or name == "localhost" or name.endswith(".localhost"):
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


def _host_header(scope: _Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"host":
            return str(value.decode("latin-1"))
    return None


def _name(host: str) -> str:
    """The name in a Host header: no port, no brackets, lower case, no trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0].rstrip(".") if ":" in host else host.rstrip(".")


def _foreign_host(host: str) -> InvalidArgumentError:
    name = _name(host)[:100]
    return InvalidArgumentError(
        f"Host {host[:100]!r} is not a name of this gateway (a guard against DNS rebinding): use "
        f"localhost or an IP address, or start the coordinator with --allowed-host {name}"
    )
