"""Workflow journals and kept signals in the coordinator's stores (memory and SQLite)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest
from _coordinator_support import eventually

from agnt5.coordinator import MemoryStore, SqliteStore
from agnt5.coordinator.journal import SCHEMA_VERSION, JournalError
from agnt5.coordinator.store import Invocation, InvocationState, RetryPolicy
from agnt5.workflows.journal import (
    COMPLETED,
    FAILED,
    STEP,
    BufferedSignal,
    SignalWait,
    SleepStart,
    StepOutcome,
)

pytestmark = pytest.mark.asyncio

BOOM = {"code": "FUNCTION_FAILED", "message": "m", "type": "ValueError", "retryable": False}


def _invocation(invocation_id: str) -> Invocation:
    return Invocation(invocation_id, "svc", "wf", b"", {}, RetryPolicy())


async def _committed(store: SqliteStore) -> None:
    done = asyncio.Event()
    store.when_saved(done.set)
    await asyncio.wait_for(done.wait(), 5)


def _write_a_journal(store: MemoryStore | SqliteStore, invocation_id: str) -> None:
    store.add(_invocation(invocation_id))
    journal = store.journal(invocation_id)
    assert journal is not None
    journal.record(StepOutcome(0, STEP, "ok", b'{"a": 1}', None, 2, 1500), 1_000)
    journal.record(StepOutcome(1, STEP, "bad", None, BOOM), 1_001)
    journal.record(SleepStart(2, 60_000), 1_002)
    journal.record(SignalWait(3, "go", 5_000), 1_003)
    for name in ("later", "go-too"):
        journal.deliver(BufferedSignal(store.next_signal_id(), name, b"[1]"), 1_004)


async def test_journals_and_kept_signals_come_back_after_a_restart(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    _write_a_journal(store, "wf-1")
    before = store.steps("wf-1")
    kept = store.journal("wf-1").signals  # type: ignore[union-attr]
    await _committed(store)
    store.close()
    again = SqliteStore(tmp_path)
    try:
        journal = again.journal("wf-1", create=False)
        assert journal is not None
        assert journal.ordered() == before
        assert [(e.state, e.error) for e in before[:2]] == [(COMPLETED, None), (FAILED, BOOM)]
        assert journal.signals == kept
        assert again.next_signal_id() > max(signal.id for signal in kept)
        assert again.journal("not-a-workflow", create=False) is None
    finally:
        again.close()


async def test_a_finished_workflow_keeps_its_steps_and_drops_its_signals(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path, max_finished=1)
    try:
        _write_a_journal(store, "wf-1")
        steps = store.steps("wf-1")
        for invocation_id in ("wf-1", "other"):
            invocation = store.get(invocation_id) or _invocation(invocation_id)
            if invocation_id == "other":
                store.add(invocation)
            invocation.state, invocation.output = InvocationState.SUCCEEDED, b"1"
            store.save(invocation)  # "other" pushes wf-1 out of memory
        await _committed(store)
        assert store.journal("wf-1", create=False) is None
        assert store.steps("wf-1") == steps  # read back from the database
        with contextlib.closing(sqlite3.connect(store.path)) as db:
            assert db.execute("SELECT COUNT(*) FROM signals").fetchone() == (0,)
    finally:
        store.close()


async def test_retention_prunes_a_journal_with_its_invocation(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path, retention=0.01, max_finished=1)
    try:
        _write_a_journal(store, "wf-1")
        invocation = store.get("wf-1")
        assert invocation is not None
        invocation.state, invocation.error = InvocationState.FAILED, BOOM
        store.save(invocation)

        def gone() -> bool:
            with contextlib.closing(sqlite3.connect(store.path)) as db:
                return db.execute("SELECT COUNT(*) FROM journal_entries").fetchone() == (0,)

        await eventually(gone, timeout=5)
    finally:
        store.close()


async def test_the_memory_store_keeps_journals_as_long_as_their_invocations() -> None:
    store = MemoryStore(max_finished=1)
    _write_a_journal(store, "wf-1")
    assert [entry.seq for entry in store.steps("wf-1")] == [0, 1, 2, 3]
    for invocation_id in ("wf-1", "other"):
        invocation = store.get(invocation_id) or _invocation(invocation_id)
        store.add(invocation)
        invocation.state = InvocationState.SUCCEEDED
        store.save(invocation)
    assert store.steps("wf-1") == [] and store.journal("wf-1", create=False) is None


async def test_an_older_journal_gains_the_workflow_tables(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path)
    first.add(_invocation("from-before"))
    await _committed(first)
    first.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "journal.db")) as db:  # as schema 1 was
        db.executescript("DROP TABLE journal_entries; DROP TABLE signals; PRAGMA user_version = 0")
    store = SqliteStore(tmp_path)
    try:
        assert [invocation.id for invocation in store.unfinished()] == ["from-before"]
        _write_a_journal(store, "wf-1")
        await _committed(store)
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "journal.db")) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert db.execute("SELECT COUNT(*) FROM journal_entries").fetchone() == (4,)


async def test_a_journal_from_a_newer_agnt5_is_refused(tmp_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / "journal.db")) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(JournalError, match="written by a newer agnt5 .schema 3, this one knows 2"):
        SqliteStore(tmp_path)
    with contextlib.closing(sqlite3.connect(tmp_path / "journal.db")) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    SqliteStore(tmp_path).close()  # the refusal let the directory's lock go
