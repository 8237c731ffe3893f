"""A span around each step, task, sleep and signal a workflow run performs (not on replay)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

__all__ = ["traced"]


async def traced(tracer: Any, kind: str, name: str, seq: int, work: Awaitable[Any]) -> Any:
    """Await ``work`` inside a child span of the run's span (when that one is recording)."""
    if not trace.get_current_span().is_recording():
        return await work
    span = tracer.start_span(
        f"{kind} {name}" if name else kind,
        attributes={
            "agnt5.workflow.kind": kind,
            "agnt5.workflow.seq": seq,
            "agnt5.outcome": "success",
        },
    )
    with trace.use_span(
        span, end_on_exit=True, record_exception=False, set_status_on_exception=False
    ):
        try:
            return await work
        except asyncio.CancelledError:
            span.set_attribute("agnt5.outcome", "ended")  # the run suspended or was cancelled
            raise
        except Exception as exc:
            span.set_attribute("agnt5.outcome", "error")
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            span.record_exception(exc)
            raise
