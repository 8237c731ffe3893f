"""One attempt of one component on these bytes: the path every invocation takes.

Both runtimes and `agnt5.testing` run invocations through a `Pipeline`, so they share one
`Context` builder, one deadline rule (the earlier of the function's timeout and the
invocation's deadline), one timeout message, one logging rule (a handler's own exception is
logged once, with its traceback; agnt5 errors are outcomes, not logged) and one mapping from
exceptions to agnt5 errors. That mapping takes every exception a handler raises, ``SystemExit``,
``KeyboardInterrupt``, ``GeneratorExit`` and a ``CancelledError`` of its own included: a handler
fails its invocation, never the process or the runtime's bookkeeping. Only a cancellation asked
of the attempt (by its runtime, a time limit or a gone client) passes through as one. The
runtimes keep only their transport: headers, bodies and responses (ASGI); frames, cancellation
and durations (standalone).

A workflow (``@workflow`` on an ``async def`` taking ``ctx``) gets a `WorkflowContext` on its
journal and runs through `run_workflow`; its commands go to the attempt's `WorkflowHost` (the
standalone session passes itself; otherwise the pipeline's ``workflow_host``, a `LocalHost`
that keeps nothing past the attempt).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import logging
import os
import time
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import Executor
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from agnt5._handler_threads import HandlerThreads
from agnt5.context import Context
from agnt5.errors import AgntError, InvocationTimeoutError, wrap_exception
from agnt5.telemetry._logs import INVOCATION_SCOPE as _SCOPE
from agnt5.workflows.context import WorkflowContext, WorkflowHost
from agnt5.workflows.journal import Entry
from agnt5.workflows.local import LocalHost
from agnt5.workflows.run import run_workflow

if TYPE_CHECKING:
    from agnt5._registry import Registry
    from agnt5.config import WorkerConfig
    from agnt5.decorators import Component
    from agnt5.telemetry import Instrumentation

__all__ = ["NO_METADATA", "Pipeline", "Route"]

_log = logging.getLogger("agnt5.invocation")

NO_METADATA: Mapping[str, str] = MappingProxyType({})


class Pipeline:
    """Runs attempts of the registry's components: sync handlers in ``executor`` (on the
    calling thread without one, and with ``inline=True``), every attempt inside ``telemetry``.
    """

    __slots__ = (
        "_ids",
        "_routes",
        "executor",
        "id_prefix",
        "log_scope",
        "registry",
        "service_name",
        "telemetry",
        "workflow_host",
    )

    def __init__(
        self,
        service_name: str,
        registry: Registry,
        executor: Executor | None = None,
        telemetry: Instrumentation | None = None,
        *,
        id_prefix: str | None = None,
        log_scope: bool = False,
        workflow_host: WorkflowHost | None = None,
    ) -> None:
        self.service_name = service_name
        self.registry = registry
        self.executor = executor
        self.telemetry = telemetry
        self.log_scope = log_scope
        """Whether attempts bind their identity for log records (``telemetry`` does it too)."""
        self.workflow_host = workflow_host if workflow_host is not None else LocalHost()
        self.id_prefix = os.urandom(11).hex() if id_prefix is None else id_prefix
        self._ids = itertools.count(10**9)  # with the default prefix: 32 characters per id
        self._routes: dict[str, Route] = {}

    def new_id(self) -> str:
        """A fresh invocation id: this pipeline's random prefix and a counter."""
        return self.id_prefix + str(next(self._ids))

    @classmethod
    def start(cls, config: WorkerConfig, registry: Registry) -> Pipeline:
        """A serving worker's pipeline: its bounded thread pool and its telemetry, started."""
        from agnt5.telemetry import start_telemetry

        executor = HandlerThreads(config.pool_size, f"agnt5-{config.service_name}")
        telemetry = start_telemetry(config)
        if telemetry is not None:
            telemetry.declare(registry)
            telemetry.observe_threads(executor)
        logs = not config.disable_telemetry  # the worker's log handler reads the identity
        return cls(config.service_name, registry, executor, telemetry, log_scope=logs)

    def stop(self) -> None:
        """Stop what `start` started: the thread pool (queued work dropped) and the telemetry."""
        from agnt5.telemetry import stop_telemetry

        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
        stop_telemetry(self.telemetry)

    def route(self, name: str) -> Route:
        """How the component registered as ``name`` runs here (`Registry.lookup`'s error if none)."""
        route = self._routes.get(name)
        if route is None or route.component is not self.registry.get(name):
            route = self._routes[name] = Route(self, self.registry.lookup(name))
        return route


class Route:
    """One component as its pipeline runs it: handler, thread pool, timeout and telemetry."""

    __slots__ = (
        "component",
        "executor",
        "handler",
        "is_async",
        "log_scope",
        "name",
        "new_id",
        "service_name",
        "takes_ctx",
        "telemetry",
        "timeout",
        "workflow",
        "workflow_host",
    )

    def __init__(self, pipeline: Pipeline, component: Component) -> None:
        self.component = component
        self.name = component.name
        self.handler = component.handler
        self.is_async = component.handler.is_async
        self.takes_ctx = component.handler.takes_ctx
        self.timeout = component.config.timeout
        self.executor = None if component.config.inline else pipeline.executor
        self.telemetry = pipeline.telemetry
        self.log_scope = pipeline.log_scope and pipeline.telemetry is None
        self.service_name = pipeline.service_name
        self.new_id = pipeline.new_id
        self.workflow = component.kind == "workflow" and self.is_async and self.takes_ctx
        self.workflow_host = pipeline.workflow_host

    def context(
        self,
        invocation_id: str,
        attempt: int = 1,
        metadata: Mapping[str, str] = NO_METADATA,
        deadline: float | None = None,
        *,
        host: WorkflowHost | None = None,
        journal: Iterable[Entry] = (),
    ) -> Context | None:
        """The `Context` of one attempt, or None when the handler takes none.

        ``deadline`` is a Unix time in seconds. A runtime that cancels attempts builds the
        context first (to cancel it) and hands it to `run`. A workflow's context journals
        through ``host`` (default: the pipeline's) and replays ``journal``.
        """
        if not self.takes_ctx:
            return None
        if self.workflow:
            config = self.component.config
            return WorkflowContext(
                invocation_id,
                self.name,
                host=host if host is not None else self.workflow_host,
                journal=journal,
                retries=config.retries,
                backoff=config.backoff,
                executor=self.executor,
                tracer=self.telemetry.tracer if self.telemetry is not None else None,
                service_name=self.service_name,
                attempt=attempt,
                metadata=metadata,
                deadline=deadline,
            )
        return Context(
            invocation_id,
            self.name,
            service_name=self.service_name,
            attempt=attempt,
            metadata=metadata,
            deadline=deadline,
        )

    def run(
        self,
        payload: bytes,
        invocation_id: str,
        attempt: int = 1,
        metadata: Mapping[str, str] = NO_METADATA,
        deadline: float | None = None,
        ctx: Context | None = None,
    ) -> Coroutine[Any, Any, bytes]:
        """One attempt: awaiting it gives the encoded result or raises an `AgntError` (or the
        `asyncio.CancelledError` of a cancellation asked of the awaiting task).

        It runs under the earlier of the function's timeout and ``deadline`` (``TIMEOUT`` past
        it) and inside the telemetry (span, metrics, log scope). ``ctx`` is the `context` the
        caller built, else one is built here when the handler takes it.
        """
        if ctx is None and self.takes_ctx:
            ctx = self.context(invocation_id, attempt, metadata, deadline)
        limit = self.timeout if deadline is None else _limit(self.timeout, deadline)
        if self.telemetry is not None:
            attempt_run = functools.partial(self._limited, payload, ctx, invocation_id, limit)
            return self.telemetry.observe(self.name, invocation_id, attempt, metadata, attempt_run)
        if limit is not None:
            return self._limited(payload, ctx, invocation_id, limit)
        return self._execute(payload, ctx, invocation_id)

    def call(
        self,
        payload: bytes,
        invocation_id: str | None = None,
        ctx: Context | None = None,
        metadata: Mapping[str, str] = NO_METADATA,
    ) -> bytes:
        """One attempt of a synchronous handler on this thread, with no time limit or telemetry:
        what `run` does for ``inline=True``, for callers without an event loop. Without an
        ``invocation_id``, the attempt gets a `new_id` once it needs one."""
        if ctx is None and self.takes_ctx:
            invocation_id = invocation_id or self.new_id()
            ctx = self.context(invocation_id, 1, metadata)
        try:
            return self.handler.invoke(payload, ctx)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt, ...: nothing can cancel it
            raise _failure(self.name, invocation_id or self.new_id(), exc)  # noqa: B904 - see _failure

    async def _limited(
        self, payload: bytes, ctx: Context | None, invocation_id: str, limit: float | None
    ) -> bytes:
        if limit is None:
            return await self._execute(payload, ctx, invocation_id)
        try:
            async with asyncio.timeout(limit):
                return await self._execute(payload, ctx, invocation_id)
        except TimeoutError:
            if ctx is not None:
                ctx._cancel("timeout")
            raise InvocationTimeoutError(
                f"Function {self.name} timed out after {round(limit, 3):g}s"
            ) from None

    async def _execute(self, payload: bytes, ctx: Context | None, invocation_id: str) -> bytes:
        scope = (
            _SCOPE.set((invocation_id, self.service_name, self.name)) if self.log_scope else None
        )
        try:
            handler = self.handler
            if self.workflow:
                fail = functools.partial(_failure, self.name, invocation_id)
                return await run_workflow(handler, payload, ctx, fail)  # type: ignore[arg-type]
            if not self.is_async:
                if self.executor is None:
                    return self.call(payload, invocation_id, ctx)
                run_in_context = contextvars.copy_context().run  # the span and log scope follow
                job = self.executor.submit(run_in_context, self.call, payload, invocation_id, ctx)
                try:
                    return await asyncio.wrap_future(job)
                except asyncio.CancelledError:  # timed out or cancelled: the thread runs on
                    if isinstance(self.executor, HandlerThreads):
                        self.executor.abandon(job)
                    raise
            try:
                args, kwargs = handler.bind(payload)
                return handler.encode(await handler.call(args, kwargs, ctx))
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError) and _cancel_requested():
                    raise
                raise _failure(self.name, invocation_id, exc)  # noqa: B904 - see _failure
        finally:
            if scope is not None:
                _SCOPE.reset(scope)


def _limit(timeout: float | None, deadline: float) -> float:
    """Seconds the attempt may take: the earlier of ``timeout`` and the Unix ``deadline``."""
    remaining = max(0.0, deadline - time.time())
    return remaining if timeout is None else min(timeout, remaining)


def _cancel_requested() -> bool:
    """Whether this task was asked to stop (by its runtime, a time limit or a gone client):
    only such a cancellation passes through an attempt; one a handler raises of its own fails it.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def cancelled_itself(name: str, invocation_id: str, cancelled: asyncio.CancelledError) -> AgntError:
    """The failure of an attempt whose task was cancelled, though not by its runtime (the
    handler cancelled its own task, or a server gave up on it): as if the handler raised it."""
    return _failure(name, invocation_id, cancelled)


def _failure(name: str, invocation_id: str, exc: BaseException) -> AgntError:
    """The agnt5 error for what an attempt raised; a handler's own exception is logged here.

    Raise the result without ``from exc``: an agnt5 error comes back as itself, and would
    become its own cause (which is how an expected error got logged as a traceback).
    """
    error = wrap_exception(name, exc)
    if error is not exc:
        identity = {"invocation_id": invocation_id, "function_name": name}
        _log.error("%s", error.message, exc_info=exc, extra=identity)
    return error
