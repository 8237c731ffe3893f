"""The workflow benchmark's service: a no-op function and a workflow of ten no-op steps."""

from __future__ import annotations

from agnt5 import function, workflow

__all__ = ["noop", "nothing", "ten_steps"]


@function()
async def noop() -> None:
    """Do nothing: one plain invocation, the unit a step is compared with."""


async def nothing() -> None:
    """A step that does nothing: the cost measured is the journaling around it."""


@workflow()
async def ten_steps(ctx) -> int:  # type: ignore[no-untyped-def]
    """Ten no-op steps, one after the other."""
    for _ in range(10):
        await ctx.step("nothing", nothing)
    return 10
