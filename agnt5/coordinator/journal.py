"""`SqliteStore`: a `StateStore` journaled to SQLite (WAL) by a batching writer thread."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from agnt5 import config
from agnt5.coordinator._data_dir import DataDir, JournalError
from agnt5.coordinator.store import (
    Invocation,
    InvocationState,
    MemoryStore,
    RetryPolicy,
)
from agnt5.errors import UnavailableError

__all__ = ["DEFAULT_RETENTION", "JournalError", "SqliteStore"]

_log = logging.getLogger("agnt5.coordinator")

DEFAULT_RETENTION = config.RETENTION

_BATCH_ROWS = 1024  # most rows one commit takes; the writer commits as soon as its queue is empty
_PRUNE_EVERY = 1.0  # seconds between deletions of finished rows past their retention
_COLUMNS = (
    "id, service, function, input, metadata, policy, idempotency_key, deadline_unix_ms, "
    "created_unix_ms, updated_unix_ms, state, attempt, worker_id, output, error, duration_us"
)
_FINISHED = (InvocationState.SUCCEEDED.value, InvocationState.FAILED.value)
_IS_FINISHED = f"state IN {_FINISHED}"  # literal, so the planner can use the partial index
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS invocations (
    id TEXT PRIMARY KEY, service TEXT NOT NULL, function TEXT NOT NULL, input BLOB NOT NULL,
    metadata BLOB NOT NULL, policy BLOB NOT NULL, idempotency_key TEXT NOT NULL,
    deadline_unix_ms INTEGER NOT NULL, created_unix_ms INTEGER NOT NULL,
    updated_unix_ms INTEGER NOT NULL, state INTEGER NOT NULL, attempt INTEGER NOT NULL,
    worker_id TEXT NOT NULL, output BLOB, error BLOB, duration_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS invocations_by_key
    ON invocations (service, function, idempotency_key) WHERE idempotency_key != '';
-- journals written before the index below kept one updated on every state change
DROP INDEX IF EXISTS invocations_by_state;
CREATE INDEX IF NOT EXISTS invocations_finished
    ON invocations (updated_unix_ms) WHERE {_IS_FINISHED};
"""
# "!= ''" lets SQLite use the partial index (it cannot prove it of a parameter).
FIND_BY_KEY = "service = ? AND function = ? AND idempotency_key = ? AND idempotency_key != ''"
EXPIRED = f"{_IS_FINISHED} AND updated_unix_ms < ?"  # finished before a cutoff (ms)
_INSERT = f"INSERT OR REPLACE INTO invocations ({_COLUMNS}) VALUES ({', '.join('?' * 16)})"
_UPDATE = (
    "UPDATE invocations SET updated_unix_ms = ?, state = ?, attempt = ?, worker_id = ?, "
    "output = ?, error = ?, duration_us = ? WHERE id = ?"
)
_CHANGED = 9  # the columns before the ones an _UPDATE sets (updated_unix_ms ... duration_us)
_NOTIFY = ""  # a queued write with this statement is a `when_saved` request
_RETRY_FIRST = 0.05  # seconds before committing again after a failed commit, doubling ...
_RETRY_MAX = 1.0  # ... up to this
# Errors of the values in a change rather than of the database: the change can never be stored.
_UNSTORABLE = (
    OverflowError,
    TypeError,
    ValueError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.DataError,
    sqlite3.IntegrityError,
)


class SqliteStore:
    """Every accepted invocation and each state change, journaled to ``<data_dir>/journal.db``.

    The directory is created ``0700`` and its files ``0600``; it is locked while the store is
    open, so a second store (a second coordinator) on it fails with `JournalError` naming the
    pid that holds it, as does a journal that cannot be read.

    Reads are served from memory (unfinished invocations and the newest finished ones, within
    ``max_finished`` and ``max_finished_bytes``), older finished ones from the database. Writes go to a queue that one
    thread commits in batches (WAL, ``synchronous=NORMAL``: a committed row survives a killed
    process, not necessarily a power loss); a write reaches disk within milliseconds of the
    state change, and `when_saved` callbacks run once the writes queued before them are
    committed. Finished rows are deleted ``retention`` seconds after they finished.

    When a commit fails (a full, read-only or failing disk), `failure` says why, the changes
    are kept and committed again every second or sooner, and callbacks wait: nothing is
    reported saved until it is. The writer thread survives any error; a change the database
    cannot store at all (none should reach it) is logged and dropped, never blocking others.
    """

    failure: str | None = None
    durable = True
    _observe_commit: Callable[[float, int], None] = staticmethod(lambda seconds, changes: None)

    def __init__(
        self,
        data_dir: str | Path,
        *,
        retention: float = DEFAULT_RETENTION,
        max_finished: int = 100_000,
        max_finished_bytes: int = config.RESULT_CACHE_BYTES,
    ) -> None:
        if not retention > 0:
            raise ValueError(f"retention must be > 0 seconds, got {retention!r}")
        self._directory = DataDir(data_dir)
        self.path = self._directory.path / "journal.db"
        self._retention_ms = int(retention * 1000)
        self._memory = MemoryStore(max_finished, max_finished_bytes)
        try:
            self._reader, self._writer_db, self._unfinished = self._open()
        except BaseException:
            self._directory.release()
            raise
        for invocation in self._unfinished:
            self._memory.add(invocation)
        self._writes: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._writer = threading.Thread(target=self._write, name="agnt5-journal", daemon=True)
        self._writer.start()

    def _open(self) -> tuple[sqlite3.Connection, sqlite3.Connection, list[Invocation]]:
        """The reader and writer connections and the unfinished invocations; a journal that
        cannot be read is a `JournalError` saying what to do (never an empty start)."""
        connections: list[sqlite3.Connection] = []
        try:
            self._directory.private_file(self.path.name)
            connections += [_connect(self.path), _connect(self.path)]
            reader = connections[0]
            reader.executescript(_SCHEMA)
            rows = reader.execute(
                f"SELECT {_COLUMNS} FROM invocations WHERE state NOT IN (?, ?)", _FINISHED
            ).fetchall()
            return reader, connections[1], [_invocation(row) for row in rows]
        except (sqlite3.Error, OSError, ValueError, TypeError) as exc:
            for connection in connections:
                connection.close()
            raise JournalError(
                f"cannot read the journal {self.path} ({type(exc).__name__}: {exc}): restore it "
                "from a backup, or move it and its -wal and -shm files away to start empty"
            ) from None

    def add(self, invocation: Invocation) -> None:
        self._memory.add(invocation)
        if not self._closed:
            self._writes.put((_INSERT, _row(invocation)))

    def get(self, invocation_id: str) -> Invocation | None:
        found = self._memory.get(invocation_id)
        if found is None and not self._closed:
            found = self._select("id = ?", (invocation_id,))
        return found

    def find(self, service: str, function: str, idempotency_key: str) -> Invocation | None:
        found = self._memory.find(service, function, idempotency_key)
        if found is None and not self._closed:
            found = self._select(FIND_BY_KEY, (service, function, idempotency_key))
        return found

    def save(self, invocation: Invocation) -> None:
        if self._closed:
            self._memory.save(invocation)
            return
        self._writes.put((_UPDATE, _changes(invocation)))
        if invocation.finished:  # leaves memory only once the journal has it
            self.when_saved(functools.partial(self._memory.save, invocation))

    def when_saved(
        self, callback: Callable[[], None], on_failure: Callable[[str], None] | None = None
    ) -> None:
        if self._closed:
            callback()
            return
        self._loop = asyncio.get_running_loop()
        self._writes.put((_NOTIFY, _Notice(callback, on_failure)))

    def observe_commits(self, observer: Callable[[float, int], None]) -> None:
        """Call ``observer(seconds, changes)`` after each commit, from the writer thread."""
        self._observe_commit = observer

    def unfinished(self) -> list[Invocation]:
        """Invocations the journal held unfinished when it opened (handed out once)."""
        found, self._unfinished = self._unfinished, []
        return found

    def close(self) -> None:
        """Commit what is queued and close; later changes are not journaled (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._writes.put(None)
        self._writer.join(timeout=30.0)
        self._reader.close()
        self._directory.release()

    def __len__(self) -> int:
        return len(self._memory)

    def _select(self, where: str, params: tuple[str, ...]) -> Invocation | None:
        try:
            row = self._reader.execute(
                f"SELECT {_COLUMNS} FROM invocations WHERE {where} LIMIT 1", params
            ).fetchone()
        except sqlite3.Error as exc:
            raise UnavailableError(f"the journal {self.path} cannot be read: {exc}") from None
        return _invocation(row) if row is not None else None

    def _write(self) -> None:
        """The writer thread: commit queued writes in batches, then run their callbacks on the
        loop; prune expired rows now and then. Stops at the ``None`` `close` queues.

        Writes a failed commit leaves are kept, with those queued since, for the next attempt.
        """
        db = self._writer_db
        pending: list[tuple[str, Any]] = []
        retry = _Retry()
        pruned = 0.0
        running = True
        while running:
            batch = self._take(retry.wait() if self.failure else _PRUNE_EVERY)
            running = None not in batch
            pending.extend(item for item in batch if item is not None)
            if self.failure and running and not retry.due():
                continue
            prune = time.monotonic() - pruned >= _PRUNE_EVERY
            started = time.perf_counter()
            try:
                self._commit(db, pending, prune)
            except Exception as exc:  # whatever it is, the writer keeps going
                self._failed(exc, pending, retry, closing=not running)
                continue
            self._observe_commit(
                time.perf_counter() - started, sum(kind != _NOTIFY for kind, _ in pending)
            )
            if prune:
                pruned = time.monotonic()
            self._committed(pending)
            pending = []
        db.close()

    def _take(self, timeout: float) -> list[tuple[str, Any] | None]:
        """The next writes: the first within ``timeout`` seconds, then all queued (bounded)."""
        try:
            batch = [self._writes.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(batch) < _BATCH_ROWS and not self._writes.empty():
            batch.append(self._writes.get_nowait())
        return batch

    def _commit(self, db: sqlite3.Connection, writes: list[tuple[str, Any]], prune: bool) -> None:
        inserts, updates = _coalesce(writes)
        cutoff = int(time.time() * 1000) - self._retention_ms if prune else None
        try:
            with db:
                _apply(db, inserts, updates, cutoff, each=False)
        except _UNSTORABLE:  # find the changes the database cannot store; commit the others
            with db:
                _apply(db, inserts, updates, cutoff, each=True)

    def _failed(
        self, exc: Exception, writes: list[tuple[str, Any]], retry: _Retry, *, closing: bool
    ) -> None:
        """A commit failed: keep the writes, tell who waits on them, retry after a pause."""
        reason = f"{type(exc).__name__}: {exc}"
        if closing:
            _log.error(
                "the journal %s could not commit %d changes before closing (%s); invocations "
                "without a journaled outcome run again after a restart",
                self.path,
                len(writes),
                reason,
            )
            return
        if self.failure is None:
            _log.error(
                "the journal %s cannot commit (%s): new invocations are refused with "
                "UNAVAILABLE until it can; retrying",
                self.path,
                reason,
            )
        retry.schedule(first=self.failure is None)
        self.failure = reason
        failed = [notice.fail() for kind, notice in writes if kind == _NOTIFY]
        self._on_loop([callback for callback in failed if callback is not None], reason)

    def _committed(self, writes: list[tuple[str, Any]]) -> None:
        if self.failure is not None:
            _log.warning("the journal %s commits again; new invocations are accepted", self.path)
            self.failure = None
        self._on_loop([notice.saved for kind, notice in writes if kind == _NOTIFY])

    def _on_loop(self, callbacks: list[Callable[..., None]], *args: Any) -> None:
        if callbacks and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed without closing us
                self._loop.call_soon_threadsafe(_run_all, callbacks, args)


class _Notice:
    """A `when_saved` request: what to call once saved, and (once) if a commit fails first."""

    __slots__ = ("on_failure", "saved")

    def __init__(self, saved: Callable[[], None], on_failure: Callable[[str], None] | None):
        self.saved = saved
        self.on_failure = on_failure

    def fail(self) -> Callable[[str], None] | None:
        """The failure callback, the first time only."""
        callback, self.on_failure = self.on_failure, None
        return callback


class _Retry:
    """When the writer tries a failed commit again: soon at first, then every second."""

    def __init__(self) -> None:
        self._delay = 0.0
        self._at = 0.0

    def schedule(self, *, first: bool) -> None:
        self._delay = _RETRY_FIRST if first else min(_RETRY_MAX, self._delay * 2)
        self._at = time.monotonic() + self._delay

    def due(self) -> bool:
        return time.monotonic() >= self._at

    def wait(self) -> float:
        return max(0.0, self._at - time.monotonic())


def _apply(
    db: sqlite3.Connection,
    inserts: list[tuple[Any, ...]],
    updates: list[tuple[Any, ...]],
    cutoff: int | None,
    *,
    each: bool,
) -> None:
    """Write the rows (``each``: one by one, dropping any that cannot be stored); with a
    ``cutoff`` (ms), delete the finished rows older than it."""
    for statement, rows in ((_INSERT, inserts), (_UPDATE, updates)):
        if not each:
            db.executemany(statement, rows)
            continue
        for row in rows:
            try:
                db.execute(statement, row)
            except _UNSTORABLE as exc:
                invocation_id = row[0] if statement == _INSERT else row[-1]
                _log.error("the journal dropped a change of invocation %s: %s", invocation_id, exc)
    if cutoff is not None:
        db.execute(f"DELETE FROM invocations WHERE {EXPIRED}", (cutoff,))


def _run_all(callbacks: list[Callable[..., None]], args: tuple[Any, ...]) -> None:
    for callback in callbacks:
        callback(*args)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level="DEFERRED")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def _coalesce(
    writes: list[tuple[str, Any]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """One write per invocation for a batch: rows to insert and changes to apply.

    An invocation inserted and changed within the batch is inserted once, in its final state;
    of several changes to one invocation only the last is kept (each carries every column it
    changes).
    """
    inserts: dict[str, tuple[Any, ...]] = {}
    updates: dict[str, tuple[Any, ...]] = {}
    for statement, params in writes:
        if statement == _INSERT:
            inserts[params[0]] = params
            updates.pop(params[0], None)
        elif statement == _UPDATE:
            invocation_id = params[-1]
            row = inserts.get(invocation_id)
            if row is None:
                updates[invocation_id] = params
            else:
                inserts[invocation_id] = (*row[:_CHANGED], *params[:-1])
    return list(inserts.values()), list(updates.values())


def _now_ms() -> int:
    return int(time.time() * 1000)


def _error(invocation: Invocation) -> bytes | None:
    return orjson.dumps(invocation.error) if invocation.error is not None else None


@functools.lru_cache(maxsize=256)
def _policy_json(policy: RetryPolicy) -> bytes:
    return orjson.dumps(dataclasses.asdict(policy))  # few distinct policies: one per function


def _row(invocation: Invocation) -> tuple[Any, ...]:
    return (
        invocation.id, invocation.service, invocation.function, invocation.input,
        orjson.dumps(invocation.metadata), _policy_json(invocation.policy),
        invocation.idempotency_key, invocation.deadline_unix_ms, invocation.created_unix_ms,
        _now_ms(), invocation.state.value, invocation.attempt, invocation.worker_id,
        invocation.output, _error(invocation), invocation.duration_us,
    )  # fmt: skip


def _changes(invocation: Invocation) -> tuple[Any, ...]:
    return (
        _now_ms(), invocation.state.value, invocation.attempt, invocation.worker_id,
        invocation.output, _error(invocation), invocation.duration_us, invocation.id,
    )  # fmt: skip


def _invocation(row: tuple[Any, ...]) -> Invocation:
    (id_, service, function, input_, metadata, policy, key, deadline, created, _updated,
     state, attempt, worker_id, output, error, duration_us) = row  # fmt: skip
    return Invocation(
        id=id_,
        service=service,
        function=function,
        input=input_,
        metadata=orjson.loads(metadata),
        policy=RetryPolicy(**orjson.loads(policy)),
        idempotency_key=key,
        deadline_unix_ms=deadline,
        created_unix_ms=created,
        state=InvocationState(state),
        attempt=attempt,
        worker_id=worker_id,
        output=output,
        error=orjson.loads(error) if error is not None else None,
        duration_us=duration_us,
    )
