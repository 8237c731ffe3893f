"""The benchmark's service: one no-op async function (served by ``agnt5 worker``)."""

from __future__ import annotations

from agnt5 import function

__all__ = ["noop"]


@function()
async def noop() -> None:
    """Do nothing: the cost measured is the path around it."""
