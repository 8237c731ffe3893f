"""Workflows on `LocalHost` (no coordinator: the ASGI runtime's host) and through `run_workflow`."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from agnt5 import workflow
from agnt5.decorators import component_of
from agnt5.errors import FailedPreconditionError
from agnt5.workflows import WorkflowContext, WorkflowSuspended, run_workflow
from agnt5.workflows.local import LocalHost

pytestmark = pytest.mark.usefixtures("registry")

REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="")


async def _run(fn: Any, payload: bytes = b"", executor: ThreadPoolExecutor | None = None) -> bytes:
    component = component_of(fn)
    host = LocalHost()
    ctx = WorkflowContext("inv-1", component.name, host=host, executor=executor)
    return await run_workflow(component.handler, payload, ctx)


def test_steps_sleeps_and_values_run_in_process() -> None:
    @workflow
    async def local(ctx, n: int) -> list[Any]:  # type: ignore[no-untyped-def]
        doubled = await ctx.step("double", lambda: n * 2)
        await ctx.sleep(0.01)
        await ctx.timer(delay_ms=5)
        pair = await ctx.parallel(ctx.step("a", lambda: "a"), ctx.sleep(0.005))
        return [
            doubled,
            pair,
            type(ctx.now()).__name__,
            0 <= ctx.random() < 1,
            len(str(ctx.uuid4())),
        ]

    assert asyncio.run(_run(local, b'{"n": 21}')) == b'[42,["a",null],"datetime",true,36]'


@pytest.mark.parametrize("call", ["task", "signal"])
def test_task_and_signal_need_a_coordinator(call: str) -> None:
    @workflow
    async def needs_coordinator(ctx) -> Any:  # type: ignore[no-untyped-def]
        if call == "task":
            return await ctx.task("svc", "f")
        return await ctx.signal("approved")

    with pytest.raises(FailedPreconditionError) as raised:
        asyncio.run(_run(needs_coordinator))
    assert raised.value.message == (
        f"ctx.{call} needs a coordinator: workflow needs_coordinator runs in-process under the "
        "ASGI runtime, which keeps no journal; serve it from a standalone worker (agnt5 worker) "
        "to use ctx.task and ctx.signal"
    )
    assert raised.value.retryable is False


def test_a_long_sleep_never_suspends_and_a_cancelled_run_stops_waiting() -> None:
    @workflow
    async def sleeper(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.sleep(3600)

    async def cancel_soon() -> None:
        run = asyncio.ensure_future(_run(sleeper))
        await asyncio.sleep(0.05)
        assert not run.done()  # still sleeping: LocalHost runs never suspend
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(cancel_soon())


def test_sync_steps_run_in_the_executor_with_the_callers_context() -> None:
    seen: list[tuple[str, str]] = []

    def where() -> str:
        seen.append((threading.current_thread().name, REQUEST.get()))
        return "done"

    @workflow
    async def pooled(ctx) -> str:  # type: ignore[no-untyped-def]
        REQUEST.set("r-1")
        return await ctx.step("where", where)

    with ThreadPoolExecutor(1, thread_name_prefix="agnt5-test") as executor:
        assert asyncio.run(_run(pooled, executor=executor)) == b'"done"'
    assert seen == [("agnt5-test_0", "r-1")]


def test_a_workflow_suspension_names_what_it_waits_for() -> None:
    error = WorkflowSuspended([3, 5])
    assert error.waiting == [3, 5] and str(error) == "suspended waiting for step(s) 3, 5"


def test_the_engine_package_leaves_the_workflow_decorator_in_place() -> None:
    import agnt5
    import agnt5.workflows
    from agnt5.decorators import workflow as decorator

    assert agnt5.workflow is decorator and agnt5.WorkflowContext is WorkflowContext
