"""Run one invocation through the hot path: async handlers awaited, sync ones inline or pooled."""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import Executor
from typing import Any

__all__ = ["execute"]


async def execute(handler: Any, payload: bytes, ctx: Any, executor: Executor | None) -> bytes:
    """Decode, bind, call and encode; returns the result bytes or raises an agnt5 error.

    Sync handlers run in ``executor`` (the worker's bounded pool), or on the calling thread when
    it is ``None`` (handlers registered with ``inline=True``, and the in-process test harness).
    """
    if handler.is_async:
        args, kwargs = handler.bind(payload)
        try:
            result = await handler.call(args, kwargs, ctx)
        except Exception as exc:
            raise handler.fail(exc) from exc
        return handler.encode(result)
    if executor is None:
        return handler.invoke(payload, ctx)
    run_in_context = contextvars.copy_context().run  # the span and log scope follow the call
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, run_in_context, handler.invoke, payload, ctx)
