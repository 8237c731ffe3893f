"""`LocalHost`: workflows run in this process with nothing kept past the run (the ASGI runtime).

Steps run once per run and are acknowledged at once, ``ctx.sleep`` sleeps on the event loop,
``ctx.now``/``ctx.random``/``ctx.uuid4`` work, and ``ctx.task`` / ``ctx.signal`` raise
`FailedPreconditionError`: they need a coordinator. A run never suspends.
"""

from __future__ import annotations

import asyncio

from agnt5.errors import FailedPreconditionError
from agnt5.workflows.context import WorkflowContext
from agnt5.workflows.journal import COMPLETED, Command, Entry, SleepStart, StepOutcome

__all__ = ["LocalHost"]


class LocalHost:
    """A `WorkflowHost` for runs that live and die with one request."""

    suspend_after: float | None = None

    def __init__(self) -> None:
        self._timers: dict[WorkflowContext, list[asyncio.TimerHandle]] = {}

    def send(self, ctx: WorkflowContext, command: Command) -> None:
        done = Entry(command.seq, command.kind, command.name, COMPLETED)
        if isinstance(command, StepOutcome):
            ctx._resolve(done)
        elif isinstance(command, SleepStart):
            timer = asyncio.get_running_loop().call_later(
                command.delay_ms / 1000, ctx._resolve, done
            )
            self._timers.setdefault(ctx, []).append(timer)
        else:
            raise FailedPreconditionError(
                f"ctx.{command.kind} needs a coordinator: workflow {ctx.function_name} runs "
                "in-process under the ASGI runtime, which keeps no journal; serve it from a "
                "standalone worker (agnt5 worker) to use ctx.task and ctx.signal"
            )

    def release(self, ctx: WorkflowContext) -> None:
        for timer in self._timers.pop(ctx, ()):
            timer.cancel()
