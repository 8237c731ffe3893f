"""Run handlers in-process through the invocation pipeline workers use, for tests and benchmarks.

``invoke(hello, {"name": "Ada"})`` encodes the input to JSON bytes and runs one attempt exactly
as a worker does (look up, decode, bind, call, encode; the function's timeout; the same errors,
the same log line for a handler's exception) before decoding the result. Synchronous handlers
run on the calling thread, as with ``inline=True``. `WorkflowRun` runs a workflow on an
in-memory journal: stop it after any step, replay it, fire its timers, send it signals.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from agnt5._pipeline import NO_METADATA, Pipeline
from agnt5._registry import REGISTRY
from agnt5._speedups import decode_json, encode_json
from agnt5.decorators import component_of
from agnt5.workflows.harness import WorkflowRun

__all__ = ["WorkflowRun", "ainvoke", "ainvoke_raw", "invoke", "invoke_raw"]

Target = Callable[..., Any] | str

_PIPELINE = Pipeline("testing", REGISTRY, id_prefix=f"test-{os.urandom(6).hex()}-")


def invoke(
    fn_or_name: Target, input: Any = None, *, metadata: Mapping[str, str] | None = None
) -> Any:
    """Invoke a registered handler with a JSON-able ``input``; returns the decoded result."""
    return decode_json(invoke_raw(_name(fn_or_name), _encode(input), metadata=metadata))


def invoke_raw(name: str, payload: bytes, *, metadata: Mapping[str, str] | None = None) -> bytes:
    """Invoke with raw JSON ``payload`` bytes; returns the encoded result bytes."""
    route = _PIPELINE.route(name)
    if route.is_async:
        return _run(ainvoke_raw(name, payload, metadata=metadata))
    return route.call(payload, None, None, metadata or NO_METADATA)


async def ainvoke(
    fn_or_name: Target, input: Any = None, *, metadata: Mapping[str, str] | None = None
) -> Any:
    """`invoke` for async tests."""
    return decode_json(await ainvoke_raw(_name(fn_or_name), _encode(input), metadata=metadata))


async def ainvoke_raw(
    name: str, payload: bytes, *, metadata: Mapping[str, str] | None = None
) -> bytes:
    """`invoke_raw` for async tests."""
    route = _PIPELINE.route(name)
    return await route.run(payload, route.new_id(), 1, metadata or NO_METADATA)


def _name(fn_or_name: Target) -> str:
    return fn_or_name if isinstance(fn_or_name, str) else component_of(fn_or_name).name


def _encode(value: Any) -> bytes:
    return b"" if value is None else encode_json(value)


def _run(coroutine: Coroutine[Any, Any, bytes]) -> bytes:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    coroutine.close()
    raise RuntimeError(
        "invoke() cannot run an async handler inside a running event loop; use ainvoke()"
    )
