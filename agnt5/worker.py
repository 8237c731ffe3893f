"""`Worker`: resolves configuration and hands it, with the registry, to a runtime."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agnt5._registry import REGISTRY
from agnt5.config import WorkerConfig
from agnt5.decorators import Component
from agnt5.runtimes.standalone import StandaloneRuntime

__all__ = ["PyWorker", "Worker"]

PyWorker = StandaloneRuntime
"""The standalone runtime's earlier name; `Worker` looks it up here, so tests may patch it."""

_ASGI_ONLY = "is only available with runtime='asgi'"


class Worker:
    """Serve the registered functions and workflows.

    ``runtime="standalone"`` (the default): ``await worker.run()`` dials the coordinator over one
    gRPC stream and serves until SIGINT/SIGTERM or `stop`. ``runtime="asgi"``: the worker *is* an
    ASGI application (``uvicorn main:app``) exposing ``/health``, ``/functions`` and
    ``/invoke/{handler}``.

    Every setting resolves as constructor argument > ``AGNT5_*`` environment variable > default;
    see `agnt5.config.WorkerConfig` for the full list accepted as keyword ``options``.
    """

    def __init__(
        self,
        service_name: str | None = None,
        service_version: str | None = None,
        coordinator_endpoint: str | None = None,
        runtime: str | None = None,
        **options: Any,
    ) -> None:
        self.config = WorkerConfig.resolve(
            service_name=service_name,
            service_version=service_version,
            coordinator_endpoint=coordinator_endpoint,
            runtime=runtime,
            **options,
        )
        if self.config.runtime == "asgi":
            from agnt5.runtimes.asgi import AsgiRuntime

            self._runtime: Any = AsgiRuntime(self.config, REGISTRY)
        else:
            self._runtime = PyWorker(self.config, REGISTRY)

    @property
    def runtime(self) -> str:
        """``"standalone"`` or ``"asgi"``."""
        return self.config.runtime

    @property
    def service_name(self) -> str:
        return self.config.service_name

    @property
    def service_version(self) -> str:
        return self.config.service_version

    @property
    def coordinator_endpoint(self) -> str:
        return self.config.coordinator_endpoint

    @property
    def components(self) -> Mapping[str, Component]:
        """The components this worker serves: every registered function and workflow."""
        return REGISTRY

    def is_running(self) -> bool:
        """Whether the worker is serving (standalone: from `run` until it drains; ASGI: from
        startup to shutdown); False before."""
        # Only a real True counts: a runtime patched out in a test (``patch(
        # "agnt5.worker.PyWorker")``, as the docs' example does) answers with a truthy mock.
        return self._runtime.is_running() is True

    async def run(self) -> None:
        """Serve until stopped (standalone) — see the class docstring for the ASGI runtime."""
        await self._runtime.run()

    def stop(self) -> None:
        """Ask the worker to drain and stop; safe to call from any thread or signal handler."""
        self._runtime.stop()

    def _register_components(self) -> list[str]:
        """The names of the components this worker serves (what its tests check)."""
        return list(REGISTRY)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI 3 entry point (``runtime="asgi"`` only)."""
        if self.config.runtime != "asgi":
            raise TypeError(f"Worker({self.service_name!r}) is not an ASGI app: it {_ASGI_ONLY}")
        await self._runtime.app(scope, receive, send)  # the outermost app: no __call__ hop

    def enable_cors(self, origins: list[str] | None = None, **options: Any) -> None:
        """Allow browsers to call the worker: every origin by default, or only ``origins``."""
        self._asgi("enable_cors").enable_cors(origins, **options)

    def disable_cors(self) -> None:
        """Remove the CORS middleware."""
        self._asgi("disable_cors").disable_cors()

    def add_middleware(self, middleware_class: type, **options: Any) -> None:
        """Wrap the ASGI app in a Starlette-style middleware, e.g. ``GZipMiddleware``."""
        self._asgi("add_middleware").add_middleware(middleware_class, **options)

    def _asgi(self, method: str) -> Any:
        if self.config.runtime != "asgi":
            raise RuntimeError(f"Worker.{method}() {_ASGI_ONLY}")
        return self._runtime

    def __repr__(self) -> str:
        return (
            f"<Worker {self.service_name!r} v{self.service_version} runtime={self.runtime!r} "
            f"components={len(REGISTRY)}>"
        )
