"""`run_workflow`: one run of a workflow, from the top of its code, on its journal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from agnt5.errors import AgntError, FunctionFailedError, wrap_exception
from agnt5.workflows.context import WorkflowContext

__all__ = ["WorkflowSuspended", "run_workflow"]


class WorkflowSuspended(Exception):  # noqa: N818 - an outcome, not a failure
    """The run ended waiting for the outside world: run it again once an entry in ``waiting``
    (their seqs) is done. The worker gives the invocation's slot back meanwhile."""

    def __init__(self, waiting: list[int]) -> None:
        super().__init__(f"suspended waiting for step(s) {', '.join(map(str, waiting))}")
        self.waiting = waiting


async def run_workflow(
    handler: Any,
    payload: bytes,
    ctx: WorkflowContext,
    fail: Callable[[BaseException], AgntError] | None = None,
) -> bytes:
    """Bind ``payload``, run the workflow's code with ``ctx`` and encode what it returns.

    Raises the workflow's error as an `AgntError` that is never retryable (a replay on the same
    journal would fail the same way), `NonDeterministicError` when the code diverged from the
    journal (whatever the code did with that error), or `WorkflowSuspended`. ``fail`` turns
    what the code raised into its `AgntError` (default: `wrap_exception`).
    """
    body: asyncio.Future[Any] | None = None
    try:
        args, kwargs = handler.bind(payload)
        body = ctx._body = asyncio.ensure_future(_body(handler.call(args, kwargs, ctx)))
        result = await body
    except asyncio.CancelledError:
        if ctx._suspended is not None:
            raise WorkflowSuspended(ctx._suspended) from None
        current = asyncio.current_task()
        if ctx._halted or (current is not None and current.cancelling()):
            raise
        error: AgntError = FunctionFailedError(
            f"Function {ctx.function_name} failed: it raised CancelledError itself",
            error_type="CancelledError",
        )
        raise error from None
    except BaseException as exc:  # SystemExit and the like fail the workflow, as a handler's do
        if ctx._fatal is not None:
            raise ctx._fatal from None
        raised = exc.exit if isinstance(exc, _Exit) else exc
        error = fail(raised) if fail is not None else wrap_exception(ctx.function_name, raised)
        error.retryable = False
        raise error  # noqa: B904 - wrapped errors carry their cause; agnt5 errors pass through
    finally:
        if body is not None and not body.done():  # the run was cancelled: its code goes too
            body.cancel()
            await asyncio.gather(body, return_exceptions=True)
        ctx._close()
    if ctx._fatal is not None:
        raise ctx._fatal
    ctx._replay_check()
    return handler.encode(result)  # type: ignore[no-any-return]


class _Exit(Exception):  # noqa: N818 - carries what the code raised, not a failure of its own
    """A ``SystemExit`` or ``KeyboardInterrupt`` the workflow's code raised, carried out of its
    task as an ordinary exception: asyncio lets those two out of the event loop itself."""

    def __init__(self, exit: BaseException) -> None:
        super().__init__(repr(exit))
        self.exit = exit


async def _body(code: Coroutine[Any, Any, Any]) -> Any:
    try:
        return await code
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _Exit(exc) from exc
