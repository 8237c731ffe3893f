"""The journal of one workflow invocation: its entries, the commands that build them, the rules.

A workflow's calls to ``ctx.step`` / ``ctx.task`` / ``ctx.sleep`` / ``ctx.signal`` /
``ctx.now`` / ``ctx.random`` / ``ctx.uuid4`` are numbered ``seq = 0, 1, 2, ...`` in call order.
The worker sends a command for each call past the end of the journal; the host (the
coordinator, or an in-process stand-in) turns it into an `Entry` with `Journal`, commits it and
answers with the committed entry. `Journal` holds the rules every host applies, so the
coordinator and the testing harness journal the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

__all__ = [
    "COMPLETED",
    "FAILED",
    "KINDS",
    "MAX_BYTES",
    "MAX_ENTRIES",
    "MAX_NAME",
    "MAX_SIGNALS",
    "NOW",
    "PENDING",
    "RANDOM",
    "SIGNAL",
    "SLEEP",
    "STEP",
    "TASK",
    "UUID",
    "BufferedSignal",
    "Command",
    "Entry",
    "Journal",
    "JournalError",
    "JournalFull",
    "JournalWriter",
    "SignalWait",
    "SleepStart",
    "StepOutcome",
    "TaskStart",
]

STEP, TASK, SLEEP, SIGNAL, NOW, RANDOM, UUID = (
    "step",
    "task",
    "sleep",
    "signal",
    "now",
    "random",
    "uuid",
)
KINDS = (STEP, TASK, SLEEP, SIGNAL, NOW, RANDOM, UUID)
VALUES = (NOW, RANDOM, UUID)
"""Kinds whose value the worker makes and journals without waiting for the commit."""

PENDING, COMPLETED, FAILED = "pending", "completed", "failed"

MAX_ENTRIES = 10_000
"""Most entries one workflow invocation may journal (a runaway loop fails instead of growing)."""
MAX_NAME = 256
"""Longest step, signal or "service/function" name, in characters."""
MAX_SIGNALS = 1_000
"""Most signals kept for one invocation before it waits for them."""
MAX_BYTES = 64 * 1024 * 1024
"""Most bytes of outputs and error messages one journal holds (each delivery carries it)."""


class Entry(NamedTuple):
    """One journal entry (``agnt5.v1.JournalEntry``).

    ``output`` is the value as JSON bytes, None when there is none (a fired timer, a signal wait
    that timed out, an unfinished entry); ``error`` the error dict of a failed entry. Times are
    Unix milliseconds of the host's clock; ``duration_us`` is the worker's time on a step.
    """

    seq: int
    kind: str
    name: str = ""
    state: str = PENDING
    output: bytes | None = None
    error: dict[str, Any] | None = None
    attempt: int = 0
    started_unix_ms: int = 0
    finished_unix_ms: int = 0
    duration_us: int = 0
    child_id: str = ""
    fire_unix_ms: int = 0
    timeout_unix_ms: int = 0

    @property
    def done(self) -> bool:
        return self.state != PENDING


class StepOutcome(NamedTuple):
    """A step (or a now/random/uuid value) finished: journal its output or error."""

    seq: int
    kind: str
    name: str
    output: bytes | None
    error: dict[str, Any] | None
    attempt: int = 1
    duration_us: int = 0


class TaskStart(NamedTuple):
    """Start a child invocation of ``service``/``function``; its outcome completes the entry."""

    seq: int
    service: str
    function: str
    input: bytes

    @property
    def kind(self) -> str:
        return TASK

    @property
    def name(self) -> str:
        return f"{self.service}/{self.function}"


class SleepStart(NamedTuple):
    """Arm a durable timer ``delay_ms`` from the host's clock."""

    seq: int
    delay_ms: int

    @property
    def kind(self) -> str:
        return SLEEP

    @property
    def name(self) -> str:
        return ""


class SignalWait(NamedTuple):
    """Wait for the signal ``name``, up to ``timeout_ms`` (None: for ever)."""

    seq: int
    name: str
    timeout_ms: int | None

    @property
    def kind(self) -> str:
        return SIGNAL


Command = StepOutcome | TaskStart | SleepStart | SignalWait


class BufferedSignal(NamedTuple):
    """A signal that arrived before the workflow waited for it."""

    id: int
    name: str
    payload: bytes


class JournalError(ValueError):
    """A command the journal refuses (a protocol error of the worker that sent it)."""


class JournalFull(JournalError):
    """An entry that would take the journal over `MAX_ENTRIES` entries or `MAX_BYTES` bytes."""


class JournalWriter(Protocol):
    """Where a journal's changes go to be kept (the coordinator's store), in the order made."""

    def entry(self, entry: Entry) -> None:
        """An entry was added or finished."""

    def signal_kept(self, signal: BufferedSignal) -> None:
        """A signal is kept until a wait takes it."""

    def signal_taken(self, signal: BufferedSignal) -> None:
        """A kept signal was taken by a wait (the wait's entry follows)."""


class Journal:
    """The entries of one workflow invocation by seq, and the signals kept for it.

    Every method returns the entry as it now stands, after telling the ``writer`` (if any);
    the caller commits the change before acting on it (answering the worker, arming a timer,
    starting a child).
    """

    __slots__ = ("entries", "signals", "size", "writer")

    def __init__(
        self,
        entries: Iterable[Entry] = (),
        signals: Iterable[BufferedSignal] = (),
        *,
        writer: JournalWriter | None = None,
    ) -> None:
        self.entries: dict[int, Entry] = {entry.seq: entry for entry in entries}
        self.signals: list[BufferedSignal] = list(signals)
        self.writer = writer
        self.size = sum(_size(entry) for entry in self.entries.values())
        """Bytes of outputs and error messages held (at most `MAX_BYTES`)."""

    def record(self, command: Command, now_ms: int, *, child_id: str = "") -> Entry:
        """The entry for a command: a finished step, a started task, an armed timer, a signal
        wait (completed at once by a kept signal of its name, which is then used up).

        A command for a seq that already has an entry of the same kind and name returns that
        entry unchanged (a command sent twice); anything else there is a `JournalError`.
        """
        seq = command.seq
        existing = self.entries.get(seq)
        if existing is not None:
            if existing.kind != command.kind or existing.name != command.name:
                raise JournalError(
                    f"seq {seq} already holds {existing.kind} {existing.name!r}, "
                    f"not {command.kind} {command.name!r}"
                )
            return existing
        self._check(command)
        if isinstance(command, StepOutcome):
            entry = Entry(
                seq,
                command.kind,
                command.name,
                FAILED if command.error is not None else COMPLETED,
                None if command.error is not None else command.output,
                command.error,
                command.attempt,
                max(0, now_ms - command.duration_us // 1000),
                now_ms,
                command.duration_us,
            )
        elif isinstance(command, TaskStart):
            entry = Entry(seq, TASK, command.name, started_unix_ms=now_ms, child_id=child_id)
        elif isinstance(command, SleepStart):
            entry = Entry(
                seq, SLEEP, started_unix_ms=now_ms, fire_unix_ms=now_ms + command.delay_ms
            )
        else:
            timeout = 0 if command.timeout_ms is None else now_ms + command.timeout_ms
            entry = Entry(
                seq, SIGNAL, command.name, started_unix_ms=now_ms, timeout_unix_ms=timeout
            )
            kept = next((kept for kept in self.signals if kept.name == command.name), None)
            if kept is not None:
                entry = _finished(entry, now_ms, kept.payload, None)
                self._fit(entry)
                self.signals.remove(kept)
                if self.writer is not None:
                    self.writer.signal_taken(kept)
        return self._put(entry)

    def complete(
        self,
        seq: int,
        now_ms: int,
        output: bytes | None = None,
        error: dict[str, Any] | None = None,
    ) -> Entry | None:
        """Finish a pending entry (a child's outcome, a fired timer, a signal wait that timed
        out); None when there is no pending entry at ``seq``."""
        entry = self.entries.get(seq)
        if entry is None or entry.done:
            return None
        return self._put(_finished(entry, now_ms, output, error))

    def settle(
        self,
        seq: int,
        now_ms: int,
        output: bytes | None = None,
        error: dict[str, Any] | None = None,
    ) -> Entry | None:
        """`complete` with a child's outcome; an output that does not fit the journal fails
        the entry with ``RESOURCE_EXHAUSTED`` instead."""
        try:
            return self.complete(seq, now_ms, output, error)
        except JournalFull as exc:
            full = {"code": "RESOURCE_EXHAUSTED", "message": str(exc), "type": "JournalFull"}
            return self.complete(seq, now_ms, None, {**full, "retryable": False})

    def deliver(self, signal: BufferedSignal, now_ms: int) -> Entry | None:
        """A signal arrived: it completes the oldest pending wait of its name (returned), or is
        kept for a later wait (None; at most `MAX_SIGNALS`, else `JournalError`)."""
        waits = (
            entry
            for entry in self.entries.values()
            if entry.kind == SIGNAL and entry.name == signal.name and not entry.done
        )
        waiting = min(waits, key=lambda entry: entry.seq, default=None)
        if waiting is not None:
            return self.complete(waiting.seq, now_ms, signal.payload)
        if len(self.signals) >= MAX_SIGNALS:
            raise JournalError(
                f"{MAX_SIGNALS} signals are already waiting to be received by this workflow"
            )
        self.signals.append(signal)
        if self.writer is not None:
            self.writer.signal_kept(signal)
        return None

    def pending(self) -> list[Entry]:
        """Unfinished entries, in seq order."""
        return sorted((e for e in self.entries.values() if not e.done), key=lambda e: e.seq)

    def ordered(self) -> list[Entry]:
        """Every entry, in seq order."""
        return [self.entries[seq] for seq in sorted(self.entries)]

    def _fit(self, entry: Entry) -> None:
        """`JournalFull` unless ``entry`` fits within `MAX_BYTES` in place of its seq's."""
        held = self.entries.get(entry.seq)
        size = self.size + _size(entry) - (_size(held) if held is not None else 0)
        if size > MAX_BYTES:
            raise JournalFull(
                f"{entry.kind} {entry.seq} would take the workflow's journal to {size} bytes, "
                f"over its limit of {MAX_BYTES}"
            )

    def _put(self, entry: Entry) -> Entry:
        """Hold ``entry`` (checked by `_fit`) and tell the writer."""
        self._fit(entry)
        held = self.entries.get(entry.seq)
        self.size += _size(entry) - (_size(held) if held is not None else 0)
        self.entries[entry.seq] = entry
        if self.writer is not None:
            self.writer.entry(entry)
        return entry

    def _check(self, command: Command) -> None:
        if not 0 <= command.seq < MAX_ENTRIES or len(self.entries) >= MAX_ENTRIES:
            raise JournalFull(f"a workflow journals at most {MAX_ENTRIES} entries")
        if len(command.name) > MAX_NAME:
            raise JournalError(f"names are at most {MAX_NAME} characters")
        if isinstance(command, StepOutcome):
            if command.kind != STEP and command.kind not in VALUES:
                raise JournalError(f"a {command.kind!r} entry is not a step outcome")
            if (command.output is None) == (command.error is None):
                raise JournalError(f"step {command.name!r} needs an output or an error")


def _size(entry: Entry) -> int:
    error = entry.error
    return len(entry.output or b"") + (len(str(error.get("message", ""))) if error else 0)


def _finished(
    entry: Entry, now_ms: int, output: bytes | None, error: dict[str, Any] | None
) -> Entry:
    return entry._replace(
        state=FAILED if error is not None else COMPLETED,
        output=None if error is not None else output,
        error=error,
        finished_unix_ms=now_ms,
    )
