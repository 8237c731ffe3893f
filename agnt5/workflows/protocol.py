"""Journal entries and workflow commands on the wire: the ``agnt5.v1`` messages of workflow.proto.

The worker's session and the coordinator speak these; everything else uses the records of
`agnt5.workflows.journal`. Imports protobuf: load it only where the wire is.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from google.protobuf.message import DecodeError

from agnt5._proto import common_pb2, workflow_pb2
from agnt5.workflows.journal import (
    COMPLETED,
    FAILED,
    KINDS,
    PENDING,
    STEP,
    VALUES,
    Command,
    Entry,
    JournalError,
    SignalWait,
    SleepStart,
    StepOutcome,
    TaskStart,
)

__all__ = [
    "Suspend",
    "command_message",
    "error_dict",
    "decode_journal",
    "encode_journal",
    "entry_from_message",
    "entry_message",
    "event_message",
    "read_command",
    "suspend_message",
]

_KIND_NUMBERS = {kind: number for number, kind in enumerate(KINDS, start=1)}
_KINDS_BY_NUMBER = {number: kind for kind, number in _KIND_NUMBERS.items()}
_STATE_NUMBERS = {PENDING: 1, COMPLETED: 2, FAILED: 3}
_STATES_BY_NUMBER = {number: state for state, number in _STATE_NUMBERS.items()}


class Suspend(NamedTuple):
    """A run giving its slot back while it waits on the entries at ``waiting``."""

    waiting: tuple[int, ...]


def entry_message(entry: Entry, *, with_output: bool = True) -> workflow_pb2.JournalEntry:
    """The ``JournalEntry`` for an entry (its output left out when ``with_output`` is false:
    the acknowledgement of a step whose output the worker has)."""
    message = workflow_pb2.JournalEntry(
        seq=entry.seq,
        kind=_KIND_NUMBERS[entry.kind],  # type: ignore[arg-type]
        name=entry.name,
        state=_STATE_NUMBERS[entry.state],  # type: ignore[arg-type]
        attempt=entry.attempt,
        started_unix_ms=entry.started_unix_ms,
        finished_unix_ms=entry.finished_unix_ms,
        duration_us=entry.duration_us,
        child_id=entry.child_id,
        fire_unix_ms=entry.fire_unix_ms,
        timeout_unix_ms=entry.timeout_unix_ms,
    )
    if entry.error is not None:
        message.error.CopyFrom(common_pb2.Error(**entry.error))
    elif entry.output is not None and with_output:
        message.output = entry.output
    return message


def entry_from_message(message: Any) -> Entry:
    """The `Entry` of a ``JournalEntry``; `JournalError` for an unknown kind or state."""
    kind = _KINDS_BY_NUMBER.get(message.kind)
    state = _STATES_BY_NUMBER.get(message.state)
    if kind is None or state is None:
        raise JournalError(f"journal entry {message.seq} has an unknown kind or state")
    outcome = message.WhichOneof("outcome")
    return Entry(
        message.seq,
        kind,
        message.name,
        state,
        message.output if outcome == "output" else None,
        error_dict(message.error) if outcome == "error" else None,
        message.attempt,
        message.started_unix_ms,
        message.finished_unix_ms,
        message.duration_us,
        message.child_id,
        message.fire_unix_ms,
        message.timeout_unix_ms,
    )


def encode_journal(entries: list[Entry]) -> bytes:
    """``Invoke.journal``: the entries as an encoded ``Journal`` (empty bytes for none)."""
    if not entries:
        return b""
    journal = workflow_pb2.Journal(entries=[entry_message(entry) for entry in entries])
    return bytes(journal.SerializeToString())


def decode_journal(data: bytes) -> list[Entry]:
    """The entries of an encoded ``Journal``; `JournalError` when it does not decode."""
    if not data:
        return []
    try:
        journal = workflow_pb2.Journal.FromString(data)
    except DecodeError:
        raise JournalError("the invocation's journal does not decode") from None
    return [entry_from_message(entry) for entry in journal.entries]


def command_message(
    invocation_id: str, attempt: int, command: Command
) -> workflow_pb2.WorkflowCommand:
    """The ``WorkflowCommand`` a running workflow sends for ``command``."""
    message = workflow_pb2.WorkflowCommand(
        invocation_id=invocation_id,
        attempt=attempt,
        seq=command.seq,
        kind=_KIND_NUMBERS[command.kind],  # type: ignore[arg-type]
        name=command.name,
    )
    if isinstance(command, StepOutcome):
        step = message.step
        if command.error is not None:
            step.error.CopyFrom(common_pb2.Error(**command.error))
        else:
            step.output = command.output or b""
        step.duration_us = command.duration_us
        step.step_attempt = command.attempt
    elif isinstance(command, TaskStart):
        message.task.service = command.service
        message.task.function = command.function
        message.task.input = command.input
    elif isinstance(command, SleepStart):
        message.sleep.delay_ms = command.delay_ms
    else:
        message.signal.has_timeout = command.timeout_ms is not None
        message.signal.timeout_ms = command.timeout_ms or 0
    return message


def suspend_message(
    invocation_id: str, attempt: int, waiting: list[int]
) -> workflow_pb2.WorkflowCommand:
    """The ``WorkflowCommand`` that ends a run as suspended, waiting on ``waiting``."""
    return workflow_pb2.WorkflowCommand(
        invocation_id=invocation_id,
        attempt=attempt,
        suspend=workflow_pb2.Suspend(waiting=waiting),
    )


def read_command(message: Any) -> Command | Suspend:
    """The command a ``WorkflowCommand`` carries; `JournalError` when it is malformed."""
    which = message.WhichOneof("command")
    if which == "suspend":
        return Suspend(tuple(message.suspend.waiting))
    kind = _KINDS_BY_NUMBER.get(message.kind)
    if kind is None or which is None:
        raise JournalError(f"command {message.seq} has an unknown kind or no body")
    seq, name = message.seq, message.name
    if which == "step":
        step = message.step
        if kind != STEP and kind not in VALUES:
            raise JournalError(f"a {kind} command cannot carry a step outcome")
        outcome = step.WhichOneof("outcome")
        return StepOutcome(
            seq,
            kind,
            name,
            step.output if outcome == "output" else None,
            error_dict(step.error) if outcome == "error" else None,
            step.step_attempt or 1,
            step.duration_us,
        )
    if which == "task":
        return TaskStart(seq, message.task.service, message.task.function, message.task.input)
    if which == "sleep":
        return SleepStart(seq, message.sleep.delay_ms)
    signal = message.signal
    return SignalWait(seq, name, signal.timeout_ms if signal.has_timeout else None)


def event_message(
    invocation_id: str, entry: Entry, *, with_output: bool = True
) -> workflow_pb2.WorkflowEvent:
    """The ``WorkflowEvent`` telling a running workflow that ``entry`` is committed."""
    return workflow_pb2.WorkflowEvent(
        invocation_id=invocation_id, entry=entry_message(entry, with_output=with_output)
    )


def error_dict(error: Any) -> dict[str, Any]:
    """An ``agnt5.v1.Error`` message as the error model's dict (every key present)."""
    return {
        "code": error.code,
        "message": error.message,
        "type": error.type,
        "retryable": error.retryable,
    }
