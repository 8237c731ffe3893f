"""`SqliteStore`: a `StateStore` journaled to SQLite (WAL) by a batching writer thread."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from agnt5 import config
from agnt5.coordinator._data_dir import DataDir, JournalError
from agnt5.coordinator.store import (
    PAGE_SCAN,
    Invocation,
    InvocationPage,
    InvocationQuery,
    InvocationState,
    Listed,
    MemoryStore,
    RetryPolicy,
    page_of,
)
from agnt5.errors import UnavailableError
from agnt5.workflows.journal import BufferedSignal, Entry, Journal

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
-- listings page newest first, in all or by service (see `SqliteStore.list`)
CREATE INDEX IF NOT EXISTS invocations_by_created ON invocations (created_unix_ms, id);
CREATE INDEX IF NOT EXISTS invocations_by_service ON invocations (service, created_unix_ms, id);
-- schema 2: the journals of workflow invocations, and the signals they have not taken yet
CREATE TABLE IF NOT EXISTS journal_entries (
    invocation_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    state TEXT NOT NULL, output BLOB, error BLOB, attempt INTEGER NOT NULL,
    started_unix_ms INTEGER NOT NULL, finished_unix_ms INTEGER NOT NULL,
    duration_us INTEGER NOT NULL, child_id TEXT NOT NULL, fire_unix_ms INTEGER NOT NULL,
    timeout_unix_ms INTEGER NOT NULL, PRIMARY KEY (invocation_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS signals (
    id INTEGER PRIMARY KEY, invocation_id TEXT NOT NULL, name TEXT NOT NULL,
    payload BLOB NOT NULL, created_unix_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS signals_by_invocation ON signals (invocation_id, name, id);
"""
SCHEMA_VERSION = 2
"""``PRAGMA user_version`` of a journal this code writes (1: no workflow tables; 0: as 1)."""
_ENTRY_COLUMNS = (
    "invocation_id, seq, kind, name, state, output, error, attempt, started_unix_ms, "
    "finished_unix_ms, duration_us, child_id, fire_unix_ms, timeout_unix_ms"
)
_PUT_ENTRY = (
    f"INSERT OR REPLACE INTO journal_entries ({_ENTRY_COLUMNS}) VALUES ({', '.join('?' * 14)})"
)
_KEEP_SIGNAL = (
    "INSERT INTO signals (id, invocation_id, name, payload, created_unix_ms) VALUES (?, ?, ?, ?, ?)"
)
_TAKE_SIGNAL = "DELETE FROM signals WHERE id = ?"
_DROP_SIGNALS = "DELETE FROM signals WHERE invocation_id = ?"
_IN_ORDER = (_PUT_ENTRY, _KEEP_SIGNAL, _TAKE_SIGNAL, _DROP_SIGNALS)  # executed as queued
# "!= ''" lets SQLite use the partial index (it cannot prove it of a parameter).
FIND_BY_KEY = "service = ? AND function = ? AND idempotency_key = ? AND idempotency_key != ''"
EXPIRED = f"{_IS_FINISHED} AND updated_unix_ms < ?"  # finished before a cutoff (ms)
_INSERT = f"INSERT OR REPLACE INTO invocations ({_COLUMNS}) VALUES ({', '.join('?' * 16)})"
_UPDATE = (
    "UPDATE invocations SET updated_unix_ms = ?, state = ?, attempt = ?, worker_id = ?, "
    "output = ?, error = ?, duration_us = ? WHERE id = ?"
)
_CHANGED = 9  # the columns before the ones an _UPDATE sets (updated_unix_ms ... duration_us)
_LISTED = (
    "id, service, function, state, attempt, created_unix_ms, updated_unix_ms, duration_us, error"
)
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
        self._writes: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._closed = False
        try:
            opened = self._open()
        except BaseException:
            self._directory.release()
            raise
        self._reader, self._writer_db, self._unfinished = (
            opened.reader,
            opened.writer,
            opened.unfinished,
        )
        self._memory = MemoryStore(
            max_finished,
            max_finished_bytes,
            journal_writer=functools.partial(_JournalRows, self),
            first_signal_id=opened.last_signal + 1,
        )
        for invocation in self._unfinished:
            self._memory.add(invocation)
        for invocation_id, (entries, kept) in opened.journals.items():
            journal = Journal(entries, kept, writer=_JournalRows(self, invocation_id))
            self._memory.load_journal(invocation_id, journal)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer = threading.Thread(target=self._write, name="agnt5-journal", daemon=True)
        self._writer.start()

    def _open(self) -> _Opened:
        """The connections, the unfinished invocations and their workflows' journals; a
        journal that cannot be read is a `JournalError` saying what to do (never an empty
        start)."""
        connections: list[sqlite3.Connection] = []
        try:
            self._directory.private_file(self.path.name)
            connections += [_connect(self.path), _connect(self.path)]
            reader = connections[0]
            _migrate(reader, self.path)
            rows = reader.execute(
                f"SELECT {_COLUMNS} FROM invocations WHERE state NOT IN (?, ?)", _FINISHED
            ).fetchall()
            (last_signal,) = reader.execute("SELECT COALESCE(MAX(id), 0) FROM signals").fetchone()
            return _Opened(
                reader,
                connections[1],
                [_invocation(row) for row in rows],
                _read_journals(reader),
                last_signal,
            )
        except JournalError:
            for connection in connections:
                connection.close()
            raise
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
        invocation.updated_unix_ms = _now_ms()
        self._writes.put((_UPDATE, _changes(invocation)))
        if invocation.finished:  # leaves memory only once the journal has it
            self._writes.put((_DROP_SIGNALS, (invocation.id,)))  # nobody will take them
            self.when_saved(functools.partial(self._memory.keep, invocation))

    def when_saved(
        self, callback: Callable[[], None], on_failure: Callable[[str], None] | None = None
    ) -> None:
        if self._closed:
            callback()
            return
        self._loop = asyncio.get_running_loop()
        self._writes.put((_NOTIFY, _Notice(callback, on_failure)))

    def journal(self, invocation_id: str, *, create: bool = True) -> Journal | None:
        return self._memory.journal(invocation_id, create=create)

    def steps(self, invocation_id: str) -> list[Entry]:
        if self._memory.journal(invocation_id, create=False) is not None or self._closed:
            return self._memory.steps(invocation_id)
        rows = self._reader.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM journal_entries WHERE invocation_id = ? ORDER BY seq",
            (invocation_id,),
        ).fetchall()
        return [_entry(row) for row in rows]

    def next_signal_id(self) -> int:
        return self._memory.next_signal_id()

    def observe_commits(self, observer: Callable[[float, int], None]) -> None:
        """Call ``observer(seconds, changes)`` after each commit, from the writer thread."""
        self._observe_commit = observer

    def unfinished(self) -> list[Invocation]:
        """Invocations the journal held unfinished when it opened (handed out once)."""
        found, self._unfinished = self._unfinished, []
        return found

    def list(self, query: InvocationQuery) -> InvocationPage:
        """A page from the journal (the committed invocations; those still in memory as they
        are now), walking an index newest first: by service when one is asked for, else by
        creation time."""
        if self._closed:
            return self._memory.list(query)
        where, params = ["1"], []
        service = query.service
        if service is not None:
            index = "invocations_by_service"
            where.append("service = ?")
            params.append(service)
        else:
            index = "invocations_by_created"
        if query.after is not None:
            where.append("(created_unix_ms, id) < (?, ?)")
            params += query.after
        if query.created_before_unix_ms:
            where.append("created_unix_ms < ?")
            params.append(query.created_before_unix_ms)
        if query.created_after_unix_ms:
            where.append("created_unix_ms >= ?")
            params.append(query.created_after_unix_ms)
        params.append(
            (PAGE_SCAN if query.filtered else query.limit) + 1
        )  # one more: is it the end?
        sql = (
            f"SELECT {_LISTED} FROM invocations INDEXED BY {index} WHERE {' AND '.join(where)} "
            "ORDER BY created_unix_ms DESC, id DESC LIMIT ?"
        )
        try:
            rows = self._reader.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise UnavailableError(f"the journal {self.path} cannot be read: {exc}") from None
        return page_of(query, (self._listed(row) for row in rows))

    def _listed(self, row: tuple[Any, ...]) -> tuple[tuple[int, str], Listed]:
        invocation = self._memory.get(row[0])
        if invocation is not None:
            return invocation.key, invocation.listed()
        id_, service, function, state, attempt, created, updated, duration_us, error = row
        code = orjson.loads(error).get("code", "") if error is not None else ""
        listed = Listed(
            id_, service, function, InvocationState(state), attempt, created, updated,
            duration_us, code,
        )  # fmt: skip
        return (created, id_), listed

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

    def _put(self, statement: str, params: tuple[Any, ...]) -> None:
        if not self._closed:
            self._writes.put((statement, params))

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
        in_order = [write for write in writes if write[0] in _IN_ORDER]
        cutoff = int(time.time() * 1000) - self._retention_ms if prune else None
        try:
            with db:
                _apply(db, inserts, updates, in_order, cutoff, each=False)
        except _UNSTORABLE:  # find the changes the database cannot store; commit the others
            with db:
                _apply(db, inserts, updates, in_order, cutoff, each=True)

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


_Kept = tuple[list[Entry], list[BufferedSignal]]


class _Opened(NamedTuple):
    """What `SqliteStore` reads when it opens a journal."""

    reader: sqlite3.Connection
    writer: sqlite3.Connection
    unfinished: list[Invocation]
    journals: dict[str, _Kept]  # the workflows' entries and kept signals, by invocation
    last_signal: int


class _JournalRows:
    """A workflow journal's changes, queued as rows for the store's writer (a `JournalWriter`)."""

    __slots__ = ("_invocation_id", "_store")

    def __init__(self, store: SqliteStore, invocation_id: str) -> None:
        self._store = store
        self._invocation_id = invocation_id

    def entry(self, entry: Entry) -> None:
        self._store._put(_PUT_ENTRY, (
            self._invocation_id, entry.seq, entry.kind, entry.name, entry.state, entry.output,
            orjson.dumps(entry.error) if entry.error is not None else None, entry.attempt,
            entry.started_unix_ms, entry.finished_unix_ms, entry.duration_us, entry.child_id,
            entry.fire_unix_ms, entry.timeout_unix_ms,
        ))  # fmt: skip

    def signal_kept(self, signal: BufferedSignal) -> None:
        row = (signal.id, self._invocation_id, signal.name, signal.payload, _now_ms())
        self._store._put(_KEEP_SIGNAL, row)

    def signal_taken(self, signal: BufferedSignal) -> None:
        self._store._put(_TAKE_SIGNAL, (signal.id,))


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
    in_order: list[tuple[str, Any]],
    cutoff: int | None,
    *,
    each: bool,
) -> None:
    """Write the rows (``each``: one by one, dropping any that cannot be stored), then the
    workflow journals' changes in the order they were made; with a ``cutoff`` (ms), delete the
    finished invocations older than it, with their journals."""
    batches = [(_INSERT, inserts), (_UPDATE, updates)]
    batches += [
        (statement, [params for _, params in group])
        for statement, group in itertools.groupby(in_order, key=lambda write: write[0])
    ]
    for statement, rows in batches:
        if not each:
            db.executemany(statement, rows)
            continue
        for row in rows:
            try:
                db.execute(statement, row)
            except _UNSTORABLE as exc:
                invocation_id = row[0] if statement in (_INSERT, _PUT_ENTRY) else row[-1]
                _log.error("the journal dropped a change of invocation %s: %s", invocation_id, exc)
    if cutoff is not None:
        expired = f"SELECT id FROM invocations WHERE {EXPIRED}"
        for table in ("journal_entries", "signals"):
            db.execute(f"DELETE FROM {table} WHERE invocation_id IN ({expired})", (cutoff,))
        db.execute(f"DELETE FROM invocations WHERE {EXPIRED}", (cutoff,))


def _read_journals(db: sqlite3.Connection) -> dict[str, _Kept]:
    """The journal entries and kept signals of the unfinished invocations, by invocation."""
    unfinished = f"invocation_id IN (SELECT id FROM invocations WHERE state NOT IN {_FINISHED})"
    journals: dict[str, _Kept] = {}
    entries = db.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM journal_entries WHERE {unfinished} ORDER BY seq"
    )
    for row in entries:
        journals.setdefault(row[0], ([], []))[0].append(_entry(row))
    signals = db.execute(
        f"SELECT invocation_id, id, name, payload FROM signals WHERE {unfinished} ORDER BY id"
    )
    for invocation_id, *signal in signals:
        journals.setdefault(invocation_id, ([], []))[1].append(BufferedSignal(*signal))
    return journals


def _entry(row: tuple[Any, ...]) -> Entry:
    (_invocation_id, seq, kind, name, state, output, error, *rest) = row
    return Entry(seq, kind, name, state, output, orjson.loads(error) if error else None, *rest)


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the journal's schema to `SCHEMA_VERSION` (tables added, none changed)."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"the journal {path} was written by a newer agnt5 (schema {version}, this one "
            f"knows {SCHEMA_VERSION}): upgrade agnt5, or start with another --data-dir"
        )
    db.executescript(_SCHEMA)
    if version < SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


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
        invocation.updated_unix_ms or invocation.created_unix_ms, invocation.state.value,
        invocation.attempt, invocation.worker_id, invocation.output, _error(invocation),
        invocation.duration_us,
    )  # fmt: skip


def _changes(invocation: Invocation) -> tuple[Any, ...]:
    return (
        invocation.updated_unix_ms, invocation.state.value, invocation.attempt,
        invocation.worker_id, invocation.output, _error(invocation), invocation.duration_us,
        invocation.id,
    )  # fmt: skip


def _invocation(row: tuple[Any, ...]) -> Invocation:
    (id_, service, function, input_, metadata, policy, key, deadline, created, updated,
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
        updated_unix_ms=updated,
    )
