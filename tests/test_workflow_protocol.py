"""Journal entries and workflow commands survive the wire (workflow.proto) unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agnt5._proto import workflow_pb2
from agnt5.workflows.journal import (
    COMPLETED,
    FAILED,
    KINDS,
    NOW,
    PENDING,
    STEP,
    Entry,
    JournalError,
    SignalWait,
    SleepStart,
    StepOutcome,
    TaskStart,
)
from agnt5.workflows.protocol import (
    Suspend,
    command_message,
    decode_journal,
    encode_journal,
    entry_from_message,
    event_message,
    read_command,
    suspend_message,
)

U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)
TEXT = st.text(max_size=20)
ERRORS = st.fixed_dictionaries(
    {"code": TEXT, "message": TEXT, "type": TEXT, "retryable": st.booleans()}
)


@st.composite
def entries(draw: Any) -> Entry:
    state = draw(st.sampled_from([PENDING, COMPLETED, FAILED]))
    error = draw(ERRORS) if state == FAILED else None
    output = draw(st.none() | st.binary(max_size=20)) if state == COMPLETED else None
    return Entry(
        draw(U32),
        draw(st.sampled_from(KINDS)),
        draw(TEXT),
        state,
        output,
        error,
        draw(U32),
        draw(U64),
        draw(U64),
        draw(U64),
        draw(TEXT),
        draw(U64),
        draw(U64),
    )


@given(st.lists(entries(), max_size=5))
def test_a_journal_round_trips(journal: list[Entry]) -> None:
    assert decode_journal(encode_journal(journal)) == journal


def test_an_empty_journal_is_empty_bytes_and_garbage_is_refused() -> None:
    assert encode_journal([]) == b"" and decode_journal(b"") == []
    with pytest.raises(JournalError, match="does not decode"):
        decode_journal(b"\xff\xff\xff")


def test_an_entry_of_unknown_kind_or_state_is_refused() -> None:
    with pytest.raises(JournalError, match="journal entry 4 has an unknown kind or state"):
        entry_from_message(workflow_pb2.JournalEntry(seq=4, kind=99, state=1))  # type: ignore[arg-type]
    with pytest.raises(JournalError):
        entry_from_message(workflow_pb2.JournalEntry(seq=4, kind=1))


def test_a_step_acknowledgement_leaves_the_output_out() -> None:
    entry = Entry(3, STEP, "charge", COMPLETED, b'{"big": "output"}', attempt=1)
    event = event_message("inv", entry, with_output=False)
    assert event.invocation_id == "inv"
    assert entry_from_message(event.entry) == entry._replace(output=None)
    assert entry_from_message(event_message("inv", entry).entry) == entry


COMMANDS = [
    StepOutcome(0, STEP, "charge", b"42", None, 2, 1_500),
    StepOutcome(
        1, STEP, "mail", None, {"code": "X", "message": "m", "type": "T", "retryable": True}
    ),
    StepOutcome(2, NOW, "", b'"2024-01-01T00:00:00+00:00"', None),
    StepOutcome(3, STEP, "empty", b"", None),
    TaskStart(4, "orders", "validate", b'{"id": 1}'),
    TaskStart(5, "orders", "validate", b""),
    SleepStart(6, 3_600_000),
    SignalWait(7, "approved", 86_400_000),
    SignalWait(8, "approved", 0),
    SignalWait(9, "forever", None),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{type(c).__name__}-{c.seq}")
def test_every_command_round_trips(command: Any) -> None:
    message = command_message("inv-1", 3, command)
    again = workflow_pb2.WorkflowCommand.FromString(message.SerializeToString())
    assert (again.invocation_id, again.attempt) == ("inv-1", 3)
    assert read_command(again) == command


def test_a_suspension_carries_what_it_waits_on() -> None:
    message = suspend_message("inv-1", 2, [4, 9])
    assert read_command(message) == Suspend((4, 9))
    assert (message.invocation_id, message.attempt) == ("inv-1", 2)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (workflow_pb2.WorkflowCommand(seq=1, kind=1), "command 1 has an unknown kind or no body"),
        (workflow_pb2.WorkflowCommand(seq=1, kind=42, sleep={}), "unknown kind"),  # type: ignore[arg-type]
        (workflow_pb2.WorkflowCommand(seq=1, kind=2, step={}), "a task command cannot carry"),
    ],
)
def test_malformed_commands_are_refused(message: Any, error: str) -> None:
    with pytest.raises(JournalError, match=error):
        read_command(message)
