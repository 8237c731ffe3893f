"""The journaling rules every workflow host applies (`agnt5.workflows.journal.Journal`)."""

from __future__ import annotations

import pytest

from agnt5.workflows.journal import (
    COMPLETED,
    FAILED,
    MAX_BYTES,
    MAX_ENTRIES,
    MAX_NAME,
    MAX_SIGNALS,
    NOW,
    PENDING,
    SIGNAL,
    SLEEP,
    STEP,
    TASK,
    BufferedSignal,
    Entry,
    Journal,
    JournalError,
    JournalFull,
    SignalWait,
    SleepStart,
    StepOutcome,
    TaskStart,
)

BOOM = {
    "code": "FUNCTION_FAILED",
    "message": "Step s failed: boom",
    "type": "ValueError",
    "retryable": False,
}


def test_a_step_outcome_is_a_finished_entry() -> None:
    journal = Journal()
    ok = journal.record(StepOutcome(0, STEP, "charge", b"42", None, 2, 3_000), 10_000)
    bad = journal.record(StepOutcome(1, STEP, "mail", None, BOOM), 10_001)
    assert ok == Entry(0, STEP, "charge", COMPLETED, b"42", None, 2, 9_997, 10_000, 3_000)
    assert (bad.state, bad.output, bad.error, bad.attempt) == (FAILED, None, BOOM, 1)
    assert journal.ordered() == [ok, bad]
    assert journal.pending() == []


def test_tasks_sleeps_and_signal_waits_start_pending_with_their_times() -> None:
    journal = Journal()
    task = journal.record(TaskStart(0, "orders", "validate", b"{}"), 1_000, child_id="child-0")
    sleep = journal.record(SleepStart(1, 5_000), 1_000)
    wait = journal.record(SignalWait(2, "approved", 60_000), 1_000)
    forever = journal.record(SignalWait(3, "approved", None), 1_000)
    assert (task.kind, task.name, task.state, task.child_id) == (
        TASK,
        "orders/validate",
        PENDING,
        "child-0",
    )
    assert (sleep.kind, sleep.fire_unix_ms) == (SLEEP, 6_000)
    assert (wait.kind, wait.name, wait.timeout_unix_ms) == (SIGNAL, "approved", 61_000)
    assert forever.timeout_unix_ms == 0
    assert [entry.seq for entry in journal.pending()] == [0, 1, 2, 3]


def test_complete_finishes_a_pending_entry_once() -> None:
    journal = Journal()
    journal.record(TaskStart(0, "s", "f", b""), 1_000)
    journal.record(SleepStart(1, 10), 1_000)
    failed = journal.complete(0, 2_000, error=BOOM)
    fired = journal.complete(1, 2_000)
    assert failed is not None and (failed.state, failed.error, failed.finished_unix_ms) == (
        FAILED,
        BOOM,
        2_000,
    )
    assert fired is not None and (fired.state, fired.output) == (COMPLETED, None)
    assert journal.complete(1, 3_000) is None  # already done
    assert journal.complete(7, 3_000) is None  # no such entry


def test_a_signal_completes_the_oldest_wait_of_its_name_or_is_kept() -> None:
    journal = Journal()
    journal.record(SignalWait(0, "go", None), 1)
    journal.record(SignalWait(1, "go", None), 1)
    journal.record(SignalWait(2, "other", None), 1)
    first = journal.deliver(BufferedSignal(1, "go", b'"a"'), 2)
    second = journal.deliver(BufferedSignal(2, "go", b'"b"'), 3)
    kept = journal.deliver(BufferedSignal(3, "go", b'"c"'), 4)
    assert first is not None and (first.seq, first.output) == (0, b'"a"')
    assert second is not None and (second.seq, second.output) == (1, b'"b"')
    assert kept is None and journal.signals == [BufferedSignal(3, "go", b'"c"')]
    assert [entry.seq for entry in journal.pending()] == [2]


def test_a_kept_signal_completes_the_next_wait_at_once_oldest_first() -> None:
    journal = Journal()
    journal.deliver(BufferedSignal(1, "go", b"1"), 5)
    journal.deliver(BufferedSignal(2, "stop", b"2"), 5)
    journal.deliver(BufferedSignal(3, "go", b"3"), 5)
    entry = journal.record(SignalWait(0, "go", 100), 10)
    assert (entry.state, entry.output, entry.finished_unix_ms) == (COMPLETED, b"1", 10)
    assert [signal.id for signal in journal.signals] == [2, 3]


def test_signals_kept_for_one_workflow_are_bounded() -> None:
    journal = Journal()
    for number in range(MAX_SIGNALS):
        journal.deliver(BufferedSignal(number, "s", b"null"), 1)
    with pytest.raises(JournalError, match=f"{MAX_SIGNALS} signals are already waiting"):
        journal.deliver(BufferedSignal(MAX_SIGNALS, "s", b"null"), 1)


def test_a_command_sent_twice_returns_the_entry_and_a_conflict_is_refused() -> None:
    journal = Journal()
    first = journal.record(StepOutcome(0, STEP, "a", b"1", None), 1)
    assert journal.record(StepOutcome(0, STEP, "a", b"2", None), 2) is first
    with pytest.raises(JournalError, match="seq 0 already holds step 'a', not step 'b'"):
        journal.record(StepOutcome(0, STEP, "b", b"1", None), 3)
    with pytest.raises(JournalError, match="seq 0 already holds step 'a', not sleep ''"):
        journal.record(SleepStart(0, 5), 3)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (StepOutcome(0, STEP, "a", None, None), "needs an output or an error"),
        (StepOutcome(0, STEP, "a", b"1", BOOM), "needs an output or an error"),
        (StepOutcome(0, TASK, "a", b"1", None), "'task' entry is not a step outcome"),
        (StepOutcome(0, STEP, "x" * (MAX_NAME + 1), b"1", None), f"at most {MAX_NAME} characters"),
        (StepOutcome(MAX_ENTRIES, STEP, "a", b"1", None), f"at most {MAX_ENTRIES} entries"),
        (StepOutcome(-1, STEP, "a", b"1", None), f"at most {MAX_ENTRIES} entries"),
    ],
)
def test_malformed_commands_are_refused(command: StepOutcome, message: str) -> None:
    journal = Journal()
    with pytest.raises(JournalError, match=message):
        journal.record(command, 1)
    assert journal.entries == {}


def test_values_are_step_outcomes_of_their_own_kind() -> None:
    entry = Journal().record(StepOutcome(0, NOW, "", b'"2024-01-01T00:00:00+00:00"', None), 1)
    assert (entry.kind, entry.state) == (NOW, COMPLETED)


def test_a_journal_rebuilt_from_its_entries_and_signals_is_the_same() -> None:
    journal = Journal()
    journal.record(StepOutcome(0, STEP, "a", b"1", None), 1)
    journal.record(SignalWait(1, "go", None), 1)
    journal.deliver(BufferedSignal(1, "later", b"2"), 1)
    copy = Journal(journal.ordered(), journal.signals)
    assert copy.ordered() == journal.ordered() and copy.signals == journal.signals


class Changes(list[tuple[str, object]]):
    """A `JournalWriter` that lists what it was told, in order."""

    def entry(self, entry: Entry) -> None:
        self.append(("entry", entry))

    def signal_kept(self, signal: BufferedSignal) -> None:
        self.append(("kept", signal))

    def signal_taken(self, signal: BufferedSignal) -> None:
        self.append(("taken", signal))


def test_the_writer_is_told_every_change_in_order_and_nothing_else() -> None:
    changes = Changes()
    journal = Journal(writer=changes)
    step = journal.record(StepOutcome(0, STEP, "a", b"1", None), 1)
    journal.record(StepOutcome(0, STEP, "a", b"1", None), 1)  # sent twice: no change
    early = BufferedSignal(7, "go", b"1")
    assert journal.deliver(early, 2) is None
    taken = journal.record(SignalWait(1, "go", None), 3)
    sleep = journal.record(SleepStart(2, 10), 3)
    fired = journal.complete(2, 13)
    assert journal.complete(2, 14) is None
    assert changes == [
        ("entry", step),
        ("kept", early),
        ("taken", early),
        ("entry", taken),
        ("entry", sleep),
        ("entry", fired),
    ]


def test_a_journal_holds_at_most_max_bytes_of_outputs() -> None:
    journal = Journal()
    half = b'"' + b"x" * (MAX_BYTES // 2 - 2) + b'"'
    journal.record(StepOutcome(0, STEP, "a", half, None), 1)
    journal.record(TaskStart(1, "svc", "f", b""), 1)
    journal.record(SignalWait(2, "go", None), 1)
    assert journal.size == len(half)
    with pytest.raises(JournalFull, match="step 3 would take the workflow's journal to"):
        journal.record(StepOutcome(3, STEP, "b", half + b" ", None), 1)
    with pytest.raises(JournalFull, match=f"over its limit of {MAX_BYTES}"):
        journal.complete(1, 2, half + b" ")
    with pytest.raises(JournalFull):
        journal.deliver(BufferedSignal(1, "go", half + b" "), 2)
    assert journal.size == len(half) and [e.state for e in journal.ordered()] == [
        COMPLETED,
        PENDING,
        PENDING,
    ]
    journal.deliver(BufferedSignal(2, "later", half + b" "), 3)  # kept: not in the journal yet
    with pytest.raises(JournalFull):
        journal.record(SignalWait(3, "later", None), 4)
    assert journal.signals == [BufferedSignal(2, "later", half + b" ")]  # still kept
    assert Journal(journal.ordered()).size == journal.size


def test_a_childs_output_that_does_not_fit_fails_its_entry() -> None:
    journal = Journal()
    journal.record(TaskStart(0, "svc", "f", b""), 1)
    entry = journal.settle(0, 2, b"x" * (MAX_BYTES + 1))
    assert entry is not None and entry.state == FAILED and entry.output is None
    assert entry.error is not None and entry.error["code"] == "RESOURCE_EXHAUSTED"
    assert (
        entry.error["retryable"] is False
        and f"over its limit of {MAX_BYTES}" in entry.error["message"]
    )
    assert journal.settle(0, 3, b"1") is None  # settled once
