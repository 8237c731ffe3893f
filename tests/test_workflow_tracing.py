"""Tracing of workflow runs: one span per run, a child per step, task, sleep and signal it runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agnt5 import workflow
from agnt5._pipeline import Pipeline
from agnt5._registry import REGISTRY
from agnt5.config import WorkerConfig
from agnt5.telemetry import Instrumentation, create_instrumentation
from agnt5.workflows import WorkflowContext, WorkflowSuspended
from agnt5.workflows.journal import COMPLETED, STEP, Command, Entry, StepOutcome

pytestmark = [pytest.mark.usefixtures("registry"), pytest.mark.asyncio]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def telemetry(spans: InMemorySpanExporter) -> Iterator[Instrumentation]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    config = WorkerConfig.resolve({}, service_name="orders", disable_telemetry=False)
    made = create_instrumentation(config, tracer_provider=provider)
    assert made is not None
    yield made
    made.shutdown()
    provider.shutdown()


class StepsOnly:
    """A host that acknowledges steps and leaves every wait waiting: runs suspend at once."""

    suspend_after = 0.0

    def send(self, ctx: WorkflowContext, command: Command) -> None:
        if isinstance(command, StepOutcome):
            ctx._resolve(Entry(command.seq, command.kind, command.name, COMPLETED))

    def release(self, ctx: WorkflowContext) -> None:
        """Nothing kept."""


def _by_name(spans: InMemorySpanExporter) -> dict[str, Any]:
    return {span.name: span for span in spans.get_finished_spans()}


async def test_each_call_the_run_performs_is_a_child_of_the_run(
    telemetry: Instrumentation, spans: InMemorySpanExporter
) -> None:
    def refuse() -> None:
        raise ValueError("no")

    @workflow
    async def traced(ctx) -> str:  # type: ignore[no-untyped-def]
        await ctx.step("a", lambda: 1)
        await ctx.parallel(ctx.step("b", lambda: 2), ctx.sleep(0))
        try:
            await ctx.step("refused", refuse)
        except Exception:
            pass
        ctx.now()  # a value: no span
        return "done"

    route = Pipeline("orders", REGISTRY, telemetry=telemetry).route("traced")
    assert await route.run(b"", "inv-1") == b'"done"'
    found = _by_name(spans)
    assert set(found) == {"invoke traced", "step a", "step b", "sleep", "step refused"}
    run = found["invoke traced"]
    for name, seq in (("step a", 0), ("step b", 1), ("sleep", 2), ("step refused", 3)):
        child = found[name]
        assert child.parent.span_id == run.context.span_id
        assert child.attributes["agnt5.workflow.seq"] == seq
    assert found["step refused"].status.status_code is StatusCode.ERROR
    assert found["step refused"].attributes["agnt5.outcome"] == "error"
    assert found["step a"].attributes["agnt5.outcome"] == "success"
    assert run.attributes["agnt5.outcome"] == "success"


async def test_a_suspended_run_is_not_an_error_and_replayed_calls_get_no_span(
    telemetry: Instrumentation, spans: InMemorySpanExporter
) -> None:
    @workflow
    async def waits(ctx) -> Any:  # type: ignore[no-untyped-def]
        await ctx.step("a", lambda: 1)
        return await ctx.signal("go")

    route = Pipeline("orders", REGISTRY, telemetry=telemetry).route("waits")
    journal = [Entry(0, STEP, "a", COMPLETED, b"1", attempt=1)]
    ctx = route.context("inv-2", 2, host=StepsOnly(), journal=journal)
    with pytest.raises(WorkflowSuspended) as suspended:
        await route.run(b"", "inv-2", 2, ctx=ctx)
    assert suspended.value.waiting == [1]
    found = _by_name(spans)
    assert set(found) == {"invoke waits", "signal go"}  # step "a" was replayed
    run = found["invoke waits"]
    assert run.attributes["agnt5.outcome"] == "suspended"
    assert run.status.status_code is StatusCode.UNSET
    assert found["signal go"].attributes["agnt5.outcome"] == "ended"
