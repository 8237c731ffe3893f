"""`WorkflowContext`: the ``ctx`` of a workflow, whose calls are journaled and replayed.

Every call to ``ctx.step``, ``ctx.task``, ``ctx.sleep``/``ctx.timer``, ``ctx.signal``,
``ctx.now``, ``ctx.random`` and ``ctx.uuid4`` takes the next sequence number *when it is
called* (the awaitables are not coroutines), so concurrency inside ``ctx.parallel`` cannot
change the numbering. A call whose number the journal already holds returns (or raises) the
recorded outcome without running anything, after checking that the journal recorded the same
kind and name there; a call past the end of the journal runs for real and is journaled through
the run's `WorkflowHost`.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any, Protocol

from agnt5._speedups import decode_json, encode_json
from agnt5.context import Context
from agnt5.decorators import Backoff
from agnt5.errors import (
    AgntError,
    InvocationTimeoutError,
    NonDeterministicError,
    ResourceExhaustedError,
    error_from_dict,
    wrap_exception,
)
from agnt5.workflows.journal import (
    FAILED,
    MAX_ENTRIES,
    MAX_NAME,
    NOW,
    PENDING,
    RANDOM,
    SIGNAL,
    SLEEP,
    STEP,
    TASK,
    UUID,
    Command,
    Entry,
    SignalWait,
    SleepStart,
    StepOutcome,
    TaskStart,
)

__all__ = ["MAX_DELAY_MS", "Group", "Operation", "WorkflowContext", "WorkflowHost"]

MAX_DELAY_MS = 100 * 366 * 24 * 3600 * 1000
"""Longest ``ctx.sleep`` / ``ctx.timer`` / ``ctx.signal`` timeout: about a century."""

_SETTLE_TURNS = 20  # loop turns with no progress before an idle workflow counts as blocked
_NO_DEFAULT: Any = object()
_ABSENT: Any = object()


class WorkflowHost(Protocol):
    """Where a workflow's commands go, and how long an idle run may hold its slot.

    ``send`` journals a command (or refuses it by raising an `AgntError`) and answers later, or
    at once, by calling ``ctx._resolve(entry)`` with the committed entry: every `StepOutcome` is
    acknowledged so, and every other command once its entry is done. ``suspend_after`` is how
    many seconds a run may wait for nothing but timers, signals and tasks before it ends as
    suspended (None: never). ``release`` is called once the run is over.
    """

    suspend_after: float | None

    def send(self, ctx: WorkflowContext, command: Command) -> None: ...

    def release(self, ctx: WorkflowContext) -> None: ...


class WorkflowContext(Context):
    """The ``ctx`` a ``@workflow`` receives: a `Context` plus journaled, replayable calls."""

    __slots__ = (
        "_backoff",
        "_body",
        "_closed",
        "_executor",
        "_fatal",
        "_halted",
        "_host",
        "_idle_watch",
        "_progress",
        "_recorded",
        "_replay_until",
        "_retries",
        "_seq",
        "_suspended",
        "_tracer",
        "_waiters",
        "_waiting",
        "_working",
    )

    def __init__(
        self,
        invocation_id: str,
        function_name: str,
        *,
        host: WorkflowHost,
        journal: Iterable[Entry] = (),
        retries: int = 0,
        backoff: Backoff | None = None,
        executor: Executor | None = None,
        tracer: Any = None,
        service_name: str = "",
        attempt: int = 1,
        metadata: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> None:
        super().__init__(
            invocation_id,
            function_name,
            service_name=service_name,
            attempt=attempt,
            metadata=metadata,
            deadline=deadline,
        )
        self._host = host
        self._recorded: dict[int, Entry] = {entry.seq: entry for entry in journal}
        self._replay_until = max(self._recorded, default=-1)
        self._retries = retries
        self._backoff = backoff if backoff is not None else Backoff()
        self._executor = executor
        self._tracer = tracer
        self._seq = 0
        self._waiters: dict[int, asyncio.Future[Entry]] = {}
        self._waiting: dict[int, float | None] = {}  # seq -> when it may complete (Unix s)
        self._working = 0
        self._progress = 0
        self._idle_watch: asyncio.Task[None] | None = None
        self._body: asyncio.Future[Any] | None = None
        self._fatal: NonDeterministicError | None = None
        self._suspended: list[int] | None = None
        self._halted = False
        self._closed = False

    # The workflow API.

    def step(self, name: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Operation:
        """Run ``fn(*args, **kwargs)`` (sync or async) once and journal its JSON result or error.

        Retryable errors are retried with the workflow's ``retries`` and ``backoff`` before the
        outcome is journaled. On replay the journaled result is returned (or the journaled
        error raised) and ``fn`` does not run. The result is what its JSON decodes to, on the
        first run as on replays.
        """
        _check_name("step", name)
        if not callable(fn):
            raise TypeError(f"ctx.step({name!r}, ...) needs a callable, got {fn!r}")
        return Operation(self, STEP, name, (fn, args, kwargs))

    def task(self, service_name: str, handler_name: str, input: Any = None) -> Operation:
        """Invoke ``service_name``/``handler_name`` through the coordinator as a child
        invocation; its result (or error) is journaled, and replay never starts it again."""
        _check_name("service", service_name)
        _check_name("handler", handler_name)
        try:
            payload = b"" if input is None else encode_json(input)
        except TypeError as exc:
            raise TypeError(
                f"ctx.task({service_name!r}, {handler_name!r}) input is not JSON: {exc}"
            ) from None
        name = f"{service_name}/{handler_name}"
        return Operation(self, TASK, name, (service_name, handler_name, payload))

    def sleep(self, seconds: float) -> Operation:
        """Sleep durably: the fire time is journaled, and a long sleep gives the worker back."""
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise TypeError(f"ctx.sleep() needs a number of seconds, got {seconds!r}")
        if not 0 <= seconds <= MAX_DELAY_MS / 1000:
            raise ValueError(
                f"ctx.sleep() needs 0 <= seconds <= {MAX_DELAY_MS // 1000}, got {seconds!r}"
            )
        return Operation(self, SLEEP, "", math.ceil(seconds * 1000))

    def timer(self, *, delay_ms: int) -> Operation:
        """`sleep` in milliseconds."""
        return Operation(self, SLEEP, "", _milliseconds("ctx.timer() delay_ms", delay_ms))

    def signal(
        self, name: str, *, timeout_ms: int | None = None, default: Any = _NO_DEFAULT
    ) -> Operation:
        """Wait for the signal ``name`` and return its payload.

        A signal sent before the wait is kept for it. After ``timeout_ms`` the wait returns
        ``default``, or raises `InvocationTimeoutError` when no default is given.
        """
        _check_name("signal", name)
        if timeout_ms is not None:
            timeout_ms = _milliseconds("ctx.signal() timeout_ms", timeout_ms)
        return Operation(self, SIGNAL, name, (timeout_ms, default))

    def parallel(self, *awaitables: Operation | Group) -> Group:
        """Await every operation concurrently; their results as a list, in argument order.

        When some fail, the others still finish, then the error of the first failed one in
        argument order is raised.
        """
        return Group(self, awaitables, None)

    def gather(self, **awaitables: Operation | Group) -> Group:
        """`parallel` by name: a dict of results with the argument names as keys."""
        return Group(self, tuple(awaitables.values()), tuple(awaitables))

    def now(self) -> datetime:
        """The current time (UTC), journaled: a replay sees the time of the first run."""
        seq, recorded = self._call(NOW, "")
        if recorded is not None:
            return datetime.fromisoformat(decode_json(recorded.output))
        value = datetime.now(UTC)
        self._record_value(seq, NOW, value.isoformat())
        return value

    def random(self) -> float:
        """A random float in [0, 1), journaled."""
        seq, recorded = self._call(RANDOM, "")
        if recorded is not None:
            return float(decode_json(recorded.output))
        value = random.random()
        self._record_value(seq, RANDOM, value)
        return value

    def uuid4(self) -> uuid.UUID:
        """A random UUID, journaled."""
        seq, recorded = self._call(UUID, "")
        if recorded is not None:
            return uuid.UUID(decode_json(recorded.output))
        value = uuid.uuid4()
        self._record_value(seq, UUID, str(value))
        return value

    # The host's side.

    def _resolve(self, entry: Entry) -> None:
        """A committed entry for this run (an acknowledged step, a fired timer, a signal, a
        finished task): wake the call waiting on it. Entries nobody waits for are ignored."""
        self._progress += 1
        waiter = self._waiters.pop(entry.seq, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(entry)

    def _hold(self) -> None:
        """Count work the host does for this run (an in-process child): no suspension meanwhile."""
        self._working += 1
        self._changed()

    def _unhold(self) -> None:
        """The work counted by `_hold` is done."""
        self._working -= 1
        self._changed()

    def _halt(self) -> None:
        """End the run now, as a crash would: every later call raises `asyncio.CancelledError`."""
        self._halted = True
        if self._body is not None:
            self._body.cancel()

    # Running one call.

    def _call(self, kind: str, name: str) -> tuple[int, Entry | None]:
        """Take the next sequence number; the entry the journal holds there, if any."""
        if self._fatal is not None:
            raise self._fatal
        if self._halted or self._suspended is not None:
            raise asyncio.CancelledError("the workflow run has ended")
        seq = self._seq
        if seq >= MAX_ENTRIES:
            raise ResourceExhaustedError(
                f"workflow {self.function_name} made more than {MAX_ENTRIES} journaled calls",
                retryable=False,
            )
        self._seq = seq + 1
        if seq > self._replay_until:
            return seq, None
        recorded = self._recorded.get(seq)
        if recorded is not None and (recorded.kind != kind or recorded.name != name):
            self._fatal = NonDeterministicError(
                f"workflow {self.function_name} diverged from its journal at step {seq}: "
                f"the journal has {_describe(recorded.kind, recorded.name)}, "
                f"the code asked for {_describe(kind, name)}"
            )
            raise self._fatal
        return seq, recorded

    def _record_value(self, seq: int, kind: str, value: Any) -> None:
        """Journal a value made here (now/random/uuid); nothing waits for the acknowledgement:
        anything that depends on it is journaled after it, and a lost value is made again."""
        self._host.send(self, StepOutcome(seq, kind, "", encode_json(value), None))

    async def _perform(self, operation: Operation) -> Any:
        recorded = operation.recorded
        if recorded is None:
            work = _RUN[operation.kind](self, operation)
            if self._tracer is None:
                return await work
            from agnt5.workflows._spans import traced  # OpenTelemetry loads only with tracing

            return await traced(self._tracer, operation.kind, operation.name, operation.seq, work)
        if recorded.state == PENDING:
            recorded = await self._entry(recorded.seq, None, _wake(recorded), wait=True)
        return _outcome(operation, recorded)

    async def _run_step(self, operation: Operation) -> Any:
        fn, args, kwargs = operation.arguments
        self._working += 1
        try:
            started = time.perf_counter()
            attempt, output, failure = await self._attempts(operation.name, fn, args, kwargs)
            duration_us = int((time.perf_counter() - started) * 1e6)
            error = None if failure is None else failure.to_dict()
            outcome = StepOutcome(
                operation.seq, STEP, operation.name, output, error, attempt, duration_us
            )
            journaled = await self._entry(operation.seq, outcome, None, wait=False)
        finally:
            self._working -= 1
            self._changed()
        if error is None and journaled.state == FAILED:  # the host journaled it as a failure
            error = journaled.error or {}
        if error is not None:  # the error a replay raises, so both runs see the same type
            raise error_from_dict(error) from failure
        return decode_json(output)  # type: ignore[arg-type]

    async def _attempts(
        self, name: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[int, bytes | None, AgntError | None]:
        """Run a step until it succeeds, fails for good or runs out of retries."""
        attempt = 0
        while True:  # bounded by the retry budget
            attempt += 1
            try:
                value = await self._call_step(fn, args, kwargs)
                return attempt, encode_json(value), None
            except asyncio.CancelledError as exc:
                current = asyncio.current_task()
                if current is None or current.cancelling():
                    raise  # the run is cancelled: the step's outcome is not known
                failure = _step_error(name, exc)
            except BaseException as exc:  # contained: SystemExit from a step fails the step
                failure = _step_error(name, exc)
            if not failure.retryable or attempt > self._retries:
                return attempt, None, failure
            await asyncio.sleep(self._backoff.delay(attempt))

    async def _call_step(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if inspect.iscoroutinefunction(fn) or self._executor is None:
            value = fn(*args, **kwargs)
        else:
            run = contextvars.copy_context().run
            call = lambda: run(fn, *args, **kwargs)  # noqa: E731 - keeps the contextvars
            value = await asyncio.get_running_loop().run_in_executor(self._executor, call)
        if inspect.isawaitable(value):
            value = await value
        return value

    async def _run_task(self, operation: Operation) -> Any:
        service, handler, payload = operation.arguments
        command = TaskStart(operation.seq, service, handler, payload)
        return _outcome(operation, await self._entry(operation.seq, command, None, wait=True))

    async def _run_sleep(self, operation: Operation) -> None:
        delay_ms = operation.arguments
        command = SleepStart(operation.seq, delay_ms)
        await self._entry(operation.seq, command, time.time() + delay_ms / 1000, wait=True)

    async def _run_signal(self, operation: Operation) -> Any:
        timeout_ms = operation.arguments[0]
        command = SignalWait(operation.seq, operation.name, timeout_ms)
        entry = await self._entry(operation.seq, command, None, wait=True)
        return _outcome(operation, entry)

    async def _entry(
        self, seq: int, command: Command | None, wake: float | None, *, wait: bool
    ) -> Entry:
        """Send ``command`` (if any) and await the committed entry at ``seq``. A ``wait`` is on
        the outside world (timer, signal, task); ``wake`` is when it may end (None: unknown)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[seq] = waiter
        try:
            if command is not None:
                self._host.send(self, command)
            if waiter.done():
                return waiter.result()
            if wait:
                self._waiting[seq] = wake
                self._changed()
            return await waiter
        finally:
            self._waiters.pop(seq, None)
            if self._waiting.pop(seq, _ABSENT) is not _ABSENT:
                self._changed()

    # Suspension: a run that waits on nothing but the outside world gives its slot back.

    def _changed(self) -> None:
        self._progress += 1
        if self._closed or self._host.suspend_after is None:
            return
        if self._idle_watch is None and self._idle():
            self._idle_watch = asyncio.get_running_loop().create_task(self._watch_idle())

    def _idle(self) -> bool:
        return self._working == 0 and bool(self._waiting) and self._suspended is None

    async def _watch_idle(self) -> None:
        """Suspend once the run has been idle for ``suspend_after`` seconds; at once when all
        it waits for are timers further away than that."""
        try:
            while self._idle():  # every turn waits; ends when work resumes or the run suspends
                mark = self._progress
                await asyncio.sleep(self._idle_delay())
                for _ in range(_SETTLE_TURNS):
                    if self._progress != mark or not self._idle():
                        break
                    await asyncio.sleep(0)
                else:
                    self._suspend()
                    return
        finally:
            self._idle_watch = None

    def _idle_delay(self) -> float:
        threshold = self._host.suspend_after or 0.0
        wakes = self._waiting.values()
        if all(wake is not None for wake in wakes) and min(wakes) - time.time() > threshold:  # type: ignore[type-var]
            return 0.0
        return threshold

    def _suspend(self) -> None:
        self._suspended = sorted(self._waiting)
        if self._body is not None:
            self._body.cancel()

    def _replay_check(self) -> None:
        """At the end of a run: the journal must hold nothing past the last call."""
        extra = [seq for seq in self._recorded if seq >= self._seq]
        if extra:
            first = self._recorded[min(extra)]
            self._fatal = NonDeterministicError(
                f"workflow {self.function_name} diverged from its journal at step {first.seq}: "
                f"the journal has {_describe(first.kind, first.name)}, "
                "the code returned without asking for it"
            )
            raise self._fatal

    def _close(self) -> None:
        self._closed = True
        if self._idle_watch is not None:
            self._idle_watch.cancel()
        for waiter in self._waiters.values():
            waiter.cancel()
        self._host.release(self)


class _Once:
    """An awaitable for one ctx call (or group of calls) that may be awaited only once."""

    __slots__ = ("_claimed", "ctx")

    def __init__(self, ctx: WorkflowContext) -> None:
        self.ctx = ctx
        self._claimed = False

    def _claim(self) -> Awaitable[Any]:
        if self._claimed:
            raise RuntimeError(f"{self._what()} is already awaited: await each ctx call once")
        self._claimed = True
        return self._start()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._claim().__await__()

    def _start(self) -> Awaitable[Any]:
        raise NotImplementedError

    def _what(self) -> str:
        raise NotImplementedError


class Operation(_Once):
    """What ``ctx.step`` / ``ctx.task`` / ``ctx.sleep`` / ``ctx.signal`` return: await it once
    (or pass it to ``ctx.parallel`` / ``ctx.gather``). Its sequence number is already taken."""

    __slots__ = ("arguments", "kind", "name", "recorded", "seq")

    def __init__(self, ctx: WorkflowContext, kind: str, name: str, arguments: Any) -> None:
        self.seq, self.recorded = ctx._call(kind, name)
        super().__init__(ctx)
        self.kind = kind
        self.name = name
        self.arguments = arguments

    def _start(self) -> Awaitable[Any]:
        return self.ctx._perform(self)

    def _what(self) -> str:
        return f"{_describe(self.kind, self.name)} (step {self.seq})"

    def __repr__(self) -> str:
        return f"<Operation {self._what()}>"


class Group(_Once):
    """What ``ctx.parallel`` / ``ctx.gather`` return: await it for every result."""

    __slots__ = ("items", "names")

    def __init__(
        self,
        ctx: WorkflowContext,
        items: tuple[Operation | Group, ...],
        names: tuple[str, ...] | None,
    ) -> None:
        for item in items:
            if not isinstance(item, Operation | Group) or item.ctx is not ctx:
                raise TypeError(
                    "ctx.parallel and ctx.gather take what this ctx's step, task, sleep, signal, "
                    f"parallel and gather return (numbered when called), got {item!r}"
                )
        super().__init__(ctx)
        self.items = items
        self.names = names

    def _start(self) -> Awaitable[Any]:
        return _together(self.items, self.names)

    def _what(self) -> str:
        return "this ctx.parallel / ctx.gather"


async def _together(items: tuple[Operation | Group, ...], names: tuple[str, ...] | None) -> Any:
    """Run every item concurrently; results in order (or by name), the first error in order
    once all are done. Cancelling the group cancels and awaits every item."""
    tasks = [asyncio.ensure_future(item._claim()) for item in items]
    if tasks:
        try:
            await asyncio.wait(tasks)
        finally:
            pending = [task for task in tasks if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
    failures = [task.exception() for task in tasks]
    for failure in failures:
        if failure is not None:
            raise failure
    results = [task.result() for task in tasks]
    return results if names is None else dict(zip(names, results, strict=True))


def _outcome(operation: Operation, entry: Entry) -> Any:
    """What a call returns (or raises) for its committed entry."""
    if entry.state == FAILED:
        raise error_from_dict(entry.error or {})
    kind = operation.kind
    if kind == SLEEP:
        return None
    if kind == SIGNAL and entry.output is None:
        timeout_ms, default = operation.arguments
        if default is _NO_DEFAULT:
            raise InvocationTimeoutError(
                f"signal {operation.name!r} did not arrive within {timeout_ms} ms",
                retryable=False,
            )
        return default
    return decode_json(entry.output or b"")


def _wake(entry: Entry) -> float | None:
    """When a pending journaled entry may complete (Unix seconds), if known."""
    return entry.fire_unix_ms / 1000 if entry.kind == SLEEP and entry.fire_unix_ms else None


def _step_error(name: str, exc: BaseException) -> AgntError:
    return wrap_exception(name, exc, "Step")


def _check_name(what: str, name: Any) -> None:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise ValueError(
            f"a {what} name is a non-empty string of at most {MAX_NAME} characters, got {name!r}"
        )


def _milliseconds(what: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_DELAY_MS:
        raise ValueError(f"{what} must be an integer from 0 to {MAX_DELAY_MS}, got {value!r}")
    return value


def _describe(kind: str, name: str) -> str:
    return f"{kind} {name!r}" if name else kind


_RUN: dict[str, Callable[[WorkflowContext, Operation], Awaitable[Any]]] = {
    STEP: WorkflowContext._run_step,
    TASK: WorkflowContext._run_task,
    SLEEP: WorkflowContext._run_sleep,
    SIGNAL: WorkflowContext._run_signal,
}
