"""Handlers raising each `BaseException` a handler should never get through, as source text for
the apps tests serve from subprocesses (a standalone worker's module, the ASGI test app)."""

from __future__ import annotations

import textwrap

__all__ = ["BASE_EXCEPTIONS", "RAISING", "failure"]

BASE_EXCEPTIONS = ("SystemExit", "KeyboardInterrupt", "CancelledError", "GeneratorExit")

RAISING = textwrap.dedent(
    """
    import asyncio
    import sys

    from agnt5 import function

    RAISE = {
        "SystemExit": lambda: sys.exit(3),
        "KeyboardInterrupt": KeyboardInterrupt,
        "CancelledError": asyncio.CancelledError,
        "GeneratorExit": GeneratorExit,
    }


    @function()
    async def raise_async(name: str) -> None:
        await asyncio.sleep(0)
        raise RAISE[name]()


    @function()
    def raise_sync(name: str) -> None:
        raise RAISE[name]()


    @function(inline=True)
    def raise_inline(name: str) -> None:
        raise RAISE[name]()


    @function()
    async def raise_when_cancelled(name: str) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise RAISE[name]() from None


    @function()
    async def cancel_itself(name: str) -> None:
        asyncio.current_task().cancel()
        await asyncio.sleep(0)


    @function()
    def greet(name: str) -> str:
        return f"Hello, {name}!"
    """
)


def failure(handler: str, name: str) -> str:
    """The message of the ``FUNCTION_FAILED`` that ``handler`` raising ``name`` comes to."""
    return f"Function {handler} failed: {name}" + (": 3" if name == "SystemExit" else "")
