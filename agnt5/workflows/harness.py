"""`WorkflowRun`: a workflow invocation run in-process on an in-memory journal, for unit tests.

It journals by the coordinator's rules (`agnt5.workflows.journal.Journal`) and runs the worker's
code (`run_workflow`), so what a test sees is what a worker does: replay returns journaled
outcomes without running steps, a divergent replay fails with ``NON_DETERMINISTIC``, a run that
waits only for timers or signals ends as ``"suspended"``. Timers fire when the test says so,
signals arrive when it sends them, and ``ctx.task`` children run in the same process.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from agnt5._pipeline import NO_METADATA, Pipeline, Route
from agnt5._registry import REGISTRY
from agnt5._speedups import Handler, decode_json, encode_json
from agnt5._speedups._plan import read_signature
from agnt5.decorators import Component, FunctionConfig, component_of
from agnt5.errors import (
    AgntError,
    FailedPreconditionError,
    NotFoundError,
    ResourceExhaustedError,
)
from agnt5.workflows.context import WorkflowContext
from agnt5.workflows.journal import (
    SIGNAL,
    SLEEP,
    BufferedSignal,
    Command,
    Entry,
    Journal,
    JournalFull,
    TaskStart,
)
from agnt5.workflows.run import WorkflowSuspended

__all__ = ["WorkflowRun"]

NEW, COMPLETED, FAILED, SUSPENDED, STOPPED = "new", "completed", "failed", "suspended", "stopped"

_PIPELINE = Pipeline("testing", REGISTRY, id_prefix=f"test-{os.urandom(6).hex()}-")


class WorkflowRun:
    """One workflow invocation, run as often as a test likes on the journal it builds.

    ``run()`` (``await arun()`` in async tests) runs the workflow from the top and returns its
    state: ``"completed"``, ``"failed"``, ``"suspended"`` (waiting for a timer or a signal) or
    ``"stopped"`` (by ``stop_after``). ``stop_after=N`` ends the run once the journal holds N
    entries, ``stop_after="name"`` once the step or signal of that name is journaled, as a worker
    crash would. A later ``run()`` resumes by replay, ``replay()`` replays even a finished run.

    ``tasks`` maps ``"service/function"`` (or ``"function"``) to what ``ctx.task`` runs; other
    children run the function or workflow registered under that name. ``journal`` starts the
    run from a journal, e.g. one an older version of the workflow wrote. ``suspend_after`` is
    how long a run may wait for timers and signals before it suspends (0: as soon as it waits
    for nothing else; a worker waits a second, `AGNT5_WORKFLOW_SUSPEND_AFTER`).
    """

    def __init__(
        self,
        workflow: Callable[..., Any] | str,
        input: Any = None,
        *,
        tasks: Mapping[str, Callable[..., Any]] | None = None,
        journal: Iterable[Entry] = (),
        metadata: Mapping[str, str] | None = None,
        invocation_id: str | None = None,
        suspend_after: float = 0.0,
    ) -> None:
        if not suspend_after >= 0:
            raise ValueError(f"suspend_after must be >= 0 seconds, got {suspend_after!r}")
        self.suspend_after: float | None = suspend_after
        self._route = Route(_PIPELINE, component_of(workflow))
        if not self._route.workflow:
            raise TypeError(
                f"WorkflowRun runs an async @workflow that takes ctx; {self._route.name} is not one"
            )
        self._payload = b"" if input is None else encode_json(input)
        self._tasks = dict(tasks or {})
        self._journal = Journal(journal)
        self._metadata = metadata
        self.invocation_id = invocation_id or _PIPELINE.new_id()
        self.state = NEW
        self.runs = 0
        self._output: bytes | None = None
        self._error: AgntError | None = None
        self._live: WorkflowContext | None = None
        self._stop_after: int | str | None = None
        self._children: set[asyncio.Task[None]] = set()
        self._signal_ids = itertools.count(1)

    @property
    def journal(self) -> list[Entry]:
        """The journal's entries, in seq order."""
        return self._journal.ordered()

    @property
    def result(self) -> Any:
        """What the workflow returned; raises its error if it failed."""
        if self.state == COMPLETED:
            return decode_json(self._output or b"")
        if self.state == FAILED:
            assert self._error is not None
            raise self._error
        raise RuntimeError(f"the workflow has no result: it is {self.state}")

    @property
    def error(self) -> AgntError | None:
        """The error the workflow failed with, if it failed."""
        return self._error if self.state == FAILED else None

    def run(self, *, stop_after: int | str | None = None) -> str:
        """Run (or resume) the workflow until it finishes, suspends or is stopped."""
        return _sync(self.arun(stop_after=stop_after), "run", "arun")

    async def arun(self, *, stop_after: int | str | None = None) -> str:
        """`run` for async tests."""
        if self.state in (COMPLETED, FAILED):
            return self.state
        return await self._run(stop_after)

    def replay(self) -> str:
        """Run the workflow from the top on its journal, even when it has finished."""
        return _sync(self.areplay(), "replay", "areplay")

    async def areplay(self) -> str:
        """`replay` for async tests."""
        return await self._run(None)

    def fire_timers(self) -> int:
        """Fire every armed timer now (sleeps, and signal waits with a timeout); how many fired."""
        now = _now_ms()
        fired = 0
        for entry in self._journal.pending():
            if entry.kind == SLEEP or (entry.kind == SIGNAL and entry.timeout_unix_ms):
                self._completed(self._journal.complete(entry.seq, now))
                fired += 1
        return fired

    def send_signal(self, name: str, payload: Any = None) -> bool:
        """Send a signal: True when a waiting ``ctx.signal(name)`` took it, False when it is kept
        for a later wait."""
        if self.state in (COMPLETED, FAILED):
            raise FailedPreconditionError(f"workflow invocation {self.invocation_id} has finished")
        signal = BufferedSignal(next(self._signal_ids), name, encode_json(payload))
        entry = self._journal.deliver(signal, _now_ms())
        self._completed(entry)
        return entry is not None

    # WorkflowHost.

    def send(self, ctx: WorkflowContext, command: Command) -> None:
        if ctx._halted:  # a crashed worker sends nothing more
            return
        try:
            entry = self._journal.record(
                command, _now_ms(), child_id=f"{self.invocation_id}/{command.seq}"
            )
        except JournalFull as exc:  # a coordinator fails the invocation with this error
            raise ResourceExhaustedError(f"workflow {ctx.function_name}: {exc}") from None
        if isinstance(command, TaskStart):
            self._start_child(ctx, entry, command)
        elif entry.done:
            ctx._resolve(entry)
        stop = self._stop_after
        if stop is not None and (
            len(self._journal.entries) >= stop if isinstance(stop, int) else entry.name == stop
        ):
            ctx._halt()

    def release(self, ctx: WorkflowContext) -> None:
        """Nothing to forget: the journal outlives the run."""

    # Running.

    async def _run(self, stop_after: int | str | None) -> str:
        if isinstance(stop_after, int) and stop_after <= len(self._journal.entries):
            raise ValueError(
                f"stop_after={stop_after}: the journal already holds "
                f"{len(self._journal.entries)} entries"
            )
        self.runs += 1
        metadata = self._metadata or NO_METADATA
        ctx = self._live = self._route.context(
            self.invocation_id, self.runs, metadata, host=self, journal=self._journal.ordered()
        )
        assert isinstance(ctx, WorkflowContext)
        self._stop_after = stop_after
        try:
            self._output = await self._route.run(
                self._payload, self.invocation_id, self.runs, metadata, None, ctx
            )
            self.state = COMPLETED
        except WorkflowSuspended:
            self.state = SUSPENDED
        except asyncio.CancelledError:
            if not ctx._halted:
                raise
            self.state = STOPPED
        except AgntError as error:
            self.state, self._error = FAILED, error
        finally:
            self._live = None
            self._stop_after = None
            if self._children:  # children finish on their own, as on a coordinator
                await asyncio.gather(*self._children)
        return self.state

    def _completed(self, entry: Entry | None) -> None:
        if entry is not None and self._live is not None:
            self._live._resolve(entry)

    def _start_child(self, ctx: WorkflowContext, entry: Entry, command: TaskStart) -> None:
        ctx._hold()
        child = asyncio.ensure_future(self._child(entry.seq, command))
        self._children.add(child)
        child.add_done_callback(self._children.discard)
        child.add_done_callback(lambda _: ctx._unhold())

    async def _child(self, seq: int, command: TaskStart) -> None:
        try:
            output, error = await self._invoke_child(command), None
        except AgntError as failure:
            output, error = None, failure.to_dict()
        self._completed(self._journal.settle(seq, _now_ms(), output, error))

    async def _invoke_child(self, command: TaskStart) -> bytes:
        route = Route(_PIPELINE, self._target(command.service, command.function))
        child_id = f"{self.invocation_id}/{command.seq}"
        if not route.workflow:
            return await route.run(command.input, child_id)
        child = WorkflowRun(route.component.fn, tasks=self._tasks, invocation_id=child_id)
        child._payload = command.input
        state = await child.arun()
        if state == COMPLETED:
            return child._output or b""
        if child._error is not None:
            raise child._error
        raise FailedPreconditionError(
            f"child workflow {route.name} is {state}: WorkflowRun runs child workflows only to "
            f"completion; stand it in with tasks={{'{command.service}/{command.function}': ...}}"
        )

    def _target(self, service: str, function: str) -> Component:
        for key in (f"{service}/{function}", function):
            given = self._tasks.get(key)
            if given is not None:
                component = getattr(given, "__agnt5_component__", None)
                return component if component is not None else _stand_in(function, given)
        component = REGISTRY.get(function)
        if component is None:
            raise NotFoundError(
                f"ctx.task({service!r}, {function!r}): no function {function!r} is registered in "
                f"this process; pass tasks={{'{service}/{function}': ...}} to WorkflowRun"
            )
        return component


def _stand_in(name: str, fn: Callable[..., Any]) -> Component:
    """A function given in ``tasks``, as the component a worker would register for it."""
    signature = read_signature(fn)
    return Component(
        name=name,
        kind="function",
        fn=fn,
        description="",
        config=FunctionConfig(),
        signature=signature,
        handler=Handler(name, fn, signature),
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sync(coroutine: Awaitable[str], name: str, async_name: str) -> str:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    coroutine.close()  # type: ignore[attr-defined]
    raise RuntimeError(f"WorkflowRun.{name}() cannot run inside an event loop; use {async_name}()")
