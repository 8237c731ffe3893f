"""Run handlers in-process through the full hot path, for unit tests and benchmarks.

``invoke(hello, {"name": "Ada"})`` encodes the input to JSON bytes and runs exactly what a
worker runs (decode, look up, bind, call, encode) before decoding the result, so a test sees
the same conversions and the same errors a real caller would. `WorkflowRun` runs a workflow
on an in-memory journal: stop it after any step, replay it, fire its timers, send it signals.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from agnt5._execution import execute
from agnt5._speedups import decode_json, encode_json, lookup
from agnt5.context import Context
from agnt5.decorators import HANDLERS, component_of
from agnt5.workflows.harness import WorkflowRun

__all__ = ["WorkflowRun", "ainvoke", "ainvoke_raw", "invoke", "invoke_raw"]

Target = Callable[..., Any] | str


def invoke(
    fn_or_name: Target, input: Any = None, *, metadata: Mapping[str, str] | None = None
) -> Any:
    """Invoke a registered handler with a JSON-able ``input``; returns the decoded result."""
    return decode_json(invoke_raw(_name(fn_or_name), _encode(input), metadata=metadata))


def invoke_raw(name: str, payload: bytes, *, metadata: Mapping[str, str] | None = None) -> bytes:
    """Invoke with raw JSON ``payload`` bytes; returns the encoded result bytes."""
    handler = lookup(HANDLERS, name)
    if handler.is_async:
        return _run_coroutine(ainvoke_raw(name, payload, metadata=metadata))
    return handler.invoke(payload, _context(handler, metadata) if handler.takes_ctx else None)


async def ainvoke(
    fn_or_name: Target, input: Any = None, *, metadata: Mapping[str, str] | None = None
) -> Any:
    """`invoke` for async tests."""
    return decode_json(await ainvoke_raw(_name(fn_or_name), _encode(input), metadata=metadata))


async def ainvoke_raw(
    name: str, payload: bytes, *, metadata: Mapping[str, str] | None = None
) -> bytes:
    """`invoke_raw` for async tests."""
    handler = lookup(HANDLERS, name)
    ctx = _context(handler, metadata) if handler.takes_ctx else None
    return await execute(handler, payload, ctx, None)


def _name(fn_or_name: Target) -> str:
    return fn_or_name if isinstance(fn_or_name, str) else component_of(fn_or_name).name


def _encode(value: Any) -> bytes:
    return b"" if value is None else encode_json(value)


def _context(handler: Any, metadata: Mapping[str, str] | None) -> Context:
    return Context(
        f"test-{uuid.uuid4().hex}",
        handler.name,
        service_name="testing",
        metadata=metadata,
    )


def _run_coroutine(coroutine: Any) -> bytes:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    coroutine.close()
    raise RuntimeError(
        "invoke() cannot run an async handler inside a running event loop; use ainvoke()"
    )
