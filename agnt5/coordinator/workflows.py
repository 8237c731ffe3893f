"""The coordinator's side of durable workflows: journal, timers, signals, children, suspension.

A running workflow's commands arrive on its worker's stream. Each becomes a journal entry
(`agnt5.workflows.journal.Journal`, mirrored to the store), and nothing acts on an entry before
the store has committed it: a step is acknowledged, a timer armed and a signal's sender answered
only from ``when_saved``. A child is accepted just before its entry: its id derives from the
parent's and the seq, so a replay or a restart finds it instead of starting another. A finished
entry reaches the run that waits for it as a ``WorkflowEvent``; a suspended invocation is
queued again instead, and its next delivery carries the journal. After a restart, `recover`
arms the journaled timers (at once when their time passed), re-attaches children and resumes
what can go on.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

from agnt5.coordinator.store import Invocation, InvocationState, StateStore
from agnt5.errors import (
    AgntError,
    FailedPreconditionError,
    InvalidArgumentError,
    PayloadTooLargeError,
    ResourceExhaustedError,
)
from agnt5.workflows.journal import (
    MAX_NAME,
    SIGNAL,
    SLEEP,
    STEP,
    TASK,
    BufferedSignal,
    Entry,
    JournalError,
    JournalFull,
    SleepStart,
    StepOutcome,
    TaskStart,
)
from agnt5.workflows.protocol import Suspend, encode_journal, event_message, read_command

if TYPE_CHECKING:
    from agnt5.coordinator.registry import WorkerHandle
    from agnt5.coordinator.scheduler import Scheduler

__all__ = ["Workflows", "child_id"]

_log = logging.getLogger("agnt5.coordinator")


def child_id(parent_id: str, seq: int) -> str:
    """The id of the child a workflow starts at ``seq``: the same on every replay and restart."""
    return hashlib.sha256(f"{parent_id}/{seq}".encode()).hexdigest()[:32]


class Workflows:
    """What the scheduler does for workflow invocations beyond running them."""

    def __init__(self, scheduler: Scheduler, store: StateStore) -> None:
        self._scheduler = scheduler
        self._store = store
        self._timers: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self._armed: collections.Counter[str] = collections.Counter()  # timers by service
        self._forwarded_ids: dict[str, set[int]] = {}  # signals other coordinators forwarded
        store.on_signals(self._forwarded)

    # From the worker stream.

    def commands(self, worker: WorkerHandle, messages: Iterable[Any]) -> None:
        """Journal the commands of the workflows ``worker`` runs; those of attempts it does not
        run (stale, or lost meanwhile) are ignored. A malformed one fails its invocation."""
        now = _now_ms()
        done: list[tuple[Invocation, Entry, bool]] = []  # to announce once committed
        later: list[Callable[[], None]] = []  # to do once committed
        for message in messages:
            invocation = worker.in_flight.get(message.invocation_id)
            if invocation is None or invocation.attempt != message.attempt:
                continue
            try:
                command = read_command(message)
                if isinstance(command, Suspend):
                    self._suspend(worker, invocation, command.waiting)
                    continue
                self._check(command)
                child = child_id(invocation.id, command.seq)
                if isinstance(command, TaskStart):  # accepted before its entry: see above
                    later.append(self._start_child(invocation, child, command))
                entry = self._store.journal(invocation.id).record(command, now, child_id=child)
            except (JournalError, AgntError) as exc:
                self._refuse(worker, invocation, exc)
                continue
            self._scheduler.events.changed(invocation)  # its timeline grew
            if isinstance(command, StepOutcome):
                if command.kind == STEP:  # now/random/uuid: nobody waits for them
                    done.append((invocation, entry, False))
            elif entry.done:  # a signal kept for this wait
                done.append((invocation, entry, True))
            elif isinstance(command, SleepStart) or entry.timeout_unix_ms:
                later.append(functools.partial(self._arm, invocation, entry))
        if done or later:
            self._store.when_saved(functools.partial(self._committed, done, later))

    def journal_bytes(self, invocation: Invocation) -> bytes:
        """What ``Invoke.journal`` carries for this delivery of ``invocation`` (b"" for none)."""
        journal = self._store.journal(invocation.id, create=False)
        if journal is None or not journal.entries:
            return b""
        return encode_journal(journal.ordered())

    # From clients.

    async def signal(self, invocation: Invocation, name: str, payload: bytes) -> bool:
        """Deliver a signal once it is committed: True when a waiting ``ctx.signal`` took it,
        False when it is kept for a later one."""
        if invocation.finished:
            raise FailedPreconditionError(
                f"invocation {invocation.id} has finished: it takes no more signals"
            )
        if not isinstance(name, str) or not name or len(name) > MAX_NAME:
            raise InvalidArgumentError(
                f"a signal name is 1 to {MAX_NAME} characters, got {len(name)}"
            )
        payload = self._payload(payload)
        signal = BufferedSignal(self._store.next_signal_id(), name, payload)
        if self._scheduler.elsewhere(invocation):  # the coordinator that runs it takes it
            self._store.forward_signal(invocation.id, signal)
            await self._scheduler.saved()
            return False
        try:
            entry = self._store.journal(invocation.id).deliver(signal, _now_ms())
        except JournalError as exc:
            raise ResourceExhaustedError(f"invocation {invocation.id}: {exc}") from None
        if entry is not None:  # wakes the workflow once committed, even after a failed commit
            self._store.when_saved(functools.partial(self._announce, invocation, entry, True))
        await self._scheduler.saved()  # UNAVAILABLE while the journal cannot commit
        return entry is not None

    def _forwarded(self, invocation_id: str) -> None:
        """Signals for ``invocation_id`` reached the store through another coordinator: if
        this one runs the workflow, deliver those it has not seen (else whoever takes the
        workflow over finds them kept)."""
        invocation = self._store.get(invocation_id)
        journal = self._store.journal(invocation_id, create=False)
        if invocation is None or journal is None or invocation.finished:
            return
        seen = self._forwarded_ids.setdefault(invocation_id, set())
        known = seen | {signal.id for signal in journal.signals}
        for signal in self._store.kept_signals(invocation_id):
            if signal.id in known:
                continue
            seen.add(signal.id)
            try:
                entry = journal.deliver(signal, _now_ms())
            except JournalError as exc:
                _log.warning("a forwarded signal for %s is dropped: %s", invocation_id, exc)
                continue
            if entry is not None:  # taken at once: its row goes
                if journal.writer is not None:
                    journal.writer.signal_taken(signal)
                self._store.when_saved(functools.partial(self._announce, invocation, entry, True))

    def steps(self, invocation: Invocation) -> list[Entry]:
        """The journal of ``invocation`` in seq order (empty for a function)."""
        return self._store.steps(invocation.id)

    # From the scheduler.

    def recover(self, invocations: Iterable[Invocation]) -> None:
        """Arm the timers, re-attach the children and resume the suspended invocations an
        earlier coordinator left (their journals came back with the store)."""
        for invocation in invocations:
            journal = self._store.journal(invocation.id, create=False)
            if journal is None:
                continue
            for entry in journal.pending():
                if entry.kind == TASK:
                    self._attach_child(invocation, entry)
                elif entry.kind == SLEEP or (entry.kind == SIGNAL and entry.timeout_unix_ms):
                    self._arm(invocation, entry)
            if invocation.state is InvocationState.SUSPENDED and not journal.pending():
                self._scheduler.resume(invocation)

    def disarm(self, invocation: Invocation) -> None:
        """``invocation`` finished, or went to another coordinator: its timers go here (its
        journal stays readable)."""
        self._forwarded_ids.pop(invocation.id, None)
        journal = self._store.journal(invocation.id, create=False)
        if journal is None:
            return
        for entry in journal.pending():
            self._disarm(invocation, entry.seq)

    def timers_pending(self, service: str) -> int:
        """Timers of ``service``'s workflows waiting to fire (read by the metrics)."""
        return self._armed[service]

    def close(self) -> None:
        """Disarm every timer."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._armed.clear()

    # Inside.

    def _check(self, command: Any) -> None:
        """What the journal cannot check itself: a step's output and a task's input are JSON
        within the coordinator's limits for results and for inputs."""
        if isinstance(command, StepOutcome) and command.output is not None:
            limit = self._scheduler.max_output_bytes
            self._payload(command.output, f"the output of step {command.seq}", limit)
        elif isinstance(command, TaskStart) and command.input:
            self._payload(command.input, f"the input of task {command.seq}")

    def _payload(self, data: bytes, what: str = "a signal's payload", limit: int = 0) -> bytes:
        limit = limit or self._scheduler.max_input_bytes
        if len(data) > limit:
            raise PayloadTooLargeError(f"{what} is {len(data)} bytes, over the limit of {limit}")
        if not data:
            return b"null"
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgumentError(f"{what} is not valid JSON: {exc}") from None
        return data

    def _refuse(self, worker: WorkerHandle, invocation: Invocation, exc: Exception) -> None:
        """A command refused fails its invocation: the journal is full, or the worker broke the
        protocol."""
        if isinstance(exc, AgntError):
            error = exc
        elif isinstance(exc, JournalFull):
            error = ResourceExhaustedError(f"workflow {invocation.function}: {exc}")
        else:
            _log.warning("worker %s sent a bad workflow command: %s", worker.worker_id, exc)
            error = InvalidArgumentError(str(exc))
        error.retryable = False
        self._scheduler.fail(worker, invocation, error)

    def _suspend(
        self, worker: WorkerHandle, invocation: Invocation, waiting: tuple[int, ...]
    ) -> None:
        """A run gave its slot back: keep the invocation until what it waits for is done (at
        once when something already is: an event it did not see)."""
        journal = self._store.journal(invocation.id)
        entries = [journal.entries.get(seq) for seq in waiting]
        if not entries or any(entry is None or entry.done for entry in entries):
            self._scheduler.release(worker, invocation, InvocationState.PENDING)
        else:
            self._scheduler.release(worker, invocation, InvocationState.SUSPENDED)

    def _committed(
        self, done: list[tuple[Invocation, Entry, bool]], later: list[Callable[[], None]]
    ) -> None:
        for invocation, entry, with_output in done:
            self._announce(invocation, entry, with_output)
        for action in later:
            action()

    def _announce(self, invocation: Invocation, entry: Entry, with_output: bool) -> None:
        """A committed entry reaches the run that waits for it, or wakes a suspended one."""
        if invocation.finished:
            return
        if invocation.state is InvocationState.SUSPENDED:
            self._scheduler.resume(invocation)
            return
        self._scheduler.events.changed(invocation)  # one of its entries is done
        worker = self._scheduler.worker_of(invocation)
        if worker is not None:
            worker.outbox.put_nowait(event_message(invocation.id, entry, with_output=with_output))

    def _arm(self, invocation: Invocation, entry: Entry) -> None:
        at = entry.fire_unix_ms if entry.kind == SLEEP else entry.timeout_unix_ms
        delay = max(0.0, (at - _now_ms()) / 1000)
        self._disarm(invocation, entry.seq)
        self._timers[invocation.id, entry.seq] = asyncio.get_running_loop().call_later(
            delay, self._fire, invocation, entry.seq
        )
        self._armed[invocation.service] += 1

    def _disarm(self, invocation: Invocation, seq: int) -> None:
        timer = self._timers.pop((invocation.id, seq), None)
        if timer is not None:
            timer.cancel()
            self._armed[invocation.service] -= 1

    def _fire(self, invocation: Invocation, seq: int) -> None:
        """A timer fired, or a signal wait timed out."""
        self._disarm(invocation, seq)
        if invocation.finished:
            return
        entry = self._store.journal(invocation.id).complete(seq, _now_ms())
        if entry is not None:
            self._store.when_saved(functools.partial(self._announce, invocation, entry, True))

    def _start_child(
        self, parent: Invocation, identity: str, command: TaskStart
    ) -> Callable[[], None]:
        """Accept the child (or find it: the same id on a replay) now; what to do once the
        parent's entry is committed: follow the child, or fail the entry if it was refused."""
        try:
            child = self._scheduler.submit_child(
                parent, identity, command.service, command.function, command.input
            )
        except AgntError as error:
            return functools.partial(self._complete, parent, command.seq, None, error.to_dict())
        return functools.partial(self._follow, parent, command.seq, child)

    def _follow(self, parent: Invocation, seq: int, child: Invocation) -> None:
        self._scheduler.on_finish(child, functools.partial(self._child_done, parent, seq))

    def _attach_child(self, parent: Invocation, entry: Entry) -> None:
        """After a restart: follow the child the entry started."""
        child = self._store.get(entry.child_id)
        if child is None:  # committed before the entry, so gone only past its retention
            error = FailedPreconditionError(
                f"child invocation {entry.child_id} of step {entry.seq} is no longer known"
            )
            self._complete(parent, entry.seq, None, error.to_dict())
            return
        self._follow(parent, entry.seq, child)

    def _child_done(self, parent: Invocation, seq: int, child: Invocation) -> None:
        output = None if child.error is not None else child.output or b"null"
        self._complete(parent, seq, output, child.error)

    def _complete(
        self, parent: Invocation, seq: int, output: bytes | None, error: dict[str, Any] | None
    ) -> None:
        if parent.finished:
            return
        entry = self._store.journal(parent.id).settle(seq, _now_ms(), output, error)
        if entry is not None:
            self._store.when_saved(functools.partial(self._announce, parent, entry, True))


def _now_ms() -> int:
    return int(time.time() * 1000)
