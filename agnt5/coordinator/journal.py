"""`SqliteStore`: a `StateStore` journaled to SQLite (WAL) by a batching writer thread."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from agnt5 import config
from agnt5.coordinator._data_dir import DataDir, JournalError
from agnt5.coordinator._journaled import (
    COLUMNS,
    ENTRY_COLUMNS,
    FINISHED,
    LISTED,
    Batch,
    JournaledStore,
    Opened,
    Write,
    dropped,
    group_journals,
    invocation,
    listing_filters,
)
from agnt5.coordinator.store import InvocationQuery
from agnt5.errors import UnavailableError

__all__ = ["DEFAULT_RETENTION", "JournalError", "SqliteStore"]

DEFAULT_RETENTION = config.RETENTION

_IS_FINISHED = f"state IN {FINISHED}"  # literal, so the planner can use the partial index
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
-- listings page newest first, in all or by service (see `_SqliteBackend.listed`)
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
_STATEMENTS = {
    Write.INSERT: f"INSERT OR REPLACE INTO invocations ({COLUMNS}) VALUES ({', '.join('?' * 16)})",
    Write.UPDATE: (
        "UPDATE invocations SET updated_unix_ms = ?, state = ?, attempt = ?, worker_id = ?, "
        "output = ?, error = ?, duration_us = ? WHERE id = ?"
    ),
    Write.ENTRY: (
        f"INSERT OR REPLACE INTO journal_entries ({ENTRY_COLUMNS}) VALUES ({', '.join('?' * 14)})"
    ),
    Write.KEEP_SIGNAL: (
        "INSERT INTO signals (id, invocation_id, name, payload, created_unix_ms) "
        "VALUES (?, ?, ?, ?, ?)"
    ),
    Write.TAKE_SIGNAL: "DELETE FROM signals WHERE id = ?",
    Write.DROP_SIGNALS: "DELETE FROM signals WHERE invocation_id = ?",
}
# "!= ''" lets SQLite use the partial index (it cannot prove it of a parameter).
FIND_BY_KEY = "service = ? AND function = ? AND idempotency_key = ? AND idempotency_key != ''"
EXPIRED = f"{_IS_FINISHED} AND updated_unix_ms < ?"  # finished before a cutoff (ms)
_UNFINISHED = f"invocation_id IN (SELECT id FROM invocations WHERE state NOT IN {FINISHED})"


class SqliteStore(JournaledStore):
    """Every accepted invocation and each state change, journaled to ``<data_dir>/journal.db``.

    The directory is created ``0700`` and its files ``0600``; it is locked while the store is
    open, so a second store (a second coordinator) on it fails with `JournalError` naming the
    pid that holds it, as does a journal that cannot be read.

    Commits use WAL with ``synchronous=NORMAL``: a committed row survives a killed process, not
    necessarily a power loss. When a commit fails (a full, read-only or failing disk), `failure`
    says why until a commit succeeds again (see `JournaledStore`).
    """

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
        directory = DataDir(data_dir)
        self.path = directory.path / "journal.db"
        try:
            backend = _SqliteBackend(directory, self.path)
        except BaseException:
            directory.release()
            raise
        self._start(
            backend,
            backend.opened,
            retention=retention,
            max_finished=max_finished,
            max_finished_bytes=max_finished_bytes,
        )


class _SqliteBackend:
    """The journal file: a reader connection (the event loop's) and the writer thread's."""

    unstorable = (
        OverflowError,
        TypeError,
        ValueError,
        sqlite3.InterfaceError,
        sqlite3.ProgrammingError,
        sqlite3.DataError,
        sqlite3.IntegrityError,
    )

    def __init__(self, directory: DataDir, path: Path) -> None:
        self._directory = directory
        self.path = path
        self.where = f"the journal {path}"
        connections: list[sqlite3.Connection] = []
        try:
            directory.private_file(path.name)
            connections += [_connect(path), _connect(path)]
            self._reader, self._writer = connections
            _migrate(self._reader, path)
            self.opened = self._read_open()
        except JournalError:
            for connection in connections:
                connection.close()
            raise
        except (sqlite3.Error, OSError, ValueError, TypeError) as exc:
            for connection in connections:
                connection.close()
            raise JournalError(
                f"cannot read the journal {path} ({type(exc).__name__}: {exc}): restore it "
                "from a backup, or move it and its -wal and -shm files away to start empty"
            ) from None

    def _read_open(self) -> Opened:
        db = self._reader
        rows = db.execute(
            f"SELECT {COLUMNS} FROM invocations WHERE state NOT IN (?, ?)", FINISHED
        ).fetchall()
        (last_signal,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM signals").fetchone()
        entries = db.execute(
            f"SELECT {ENTRY_COLUMNS} FROM journal_entries WHERE {_UNFINISHED} ORDER BY seq"
        ).fetchall()
        signals = db.execute(
            f"SELECT invocation_id, id, name, payload FROM signals WHERE {_UNFINISHED} ORDER BY id"
        ).fetchall()
        return Opened([invocation(r) for r in rows], group_journals(entries, signals), last_signal)

    def commit(self, batches: Batch, cutoff: int | None, *, each: bool) -> None:
        db = self._writer
        with db:
            for kind, rows in batches:
                statement = _STATEMENTS[kind]
                if not each:
                    db.executemany(statement, rows)
                    continue
                for params in rows:
                    try:
                        db.execute(statement, params)
                    except self.unstorable as exc:
                        dropped(kind, params, exc)
            if cutoff is not None:
                expired = f"SELECT id FROM invocations WHERE {EXPIRED}"
                for table in ("journal_entries", "signals"):
                    db.execute(f"DELETE FROM {table} WHERE invocation_id IN ({expired})", (cutoff,))
                db.execute(f"DELETE FROM invocations WHERE {EXPIRED}", (cutoff,))

    def select(self, by_key: bool, params: tuple[str, ...]) -> tuple[Any, ...] | None:
        where = FIND_BY_KEY if by_key else "id = ?"
        try:
            return self._reader.execute(  # type: ignore[no-any-return]
                f"SELECT {COLUMNS} FROM invocations WHERE {where} LIMIT 1", params
            ).fetchone()
        except sqlite3.Error as exc:
            raise UnavailableError(f"the journal {self.path} cannot be read: {exc}") from None

    def listed(self, query: InvocationQuery, limit: int) -> list[tuple[Any, ...]]:
        where, params = listing_filters(query)
        index = "invocations_by_service" if query.service is not None else "invocations_by_created"
        sql = (
            f"SELECT {LISTED} FROM invocations INDEXED BY {index} "
            f"WHERE {' AND '.join(['1', *where])} ORDER BY created_unix_ms DESC, id DESC LIMIT ?"
        )
        try:
            return self._reader.execute(sql, [*params, limit]).fetchall()
        except sqlite3.Error as exc:
            raise UnavailableError(f"the journal {self.path} cannot be read: {exc}") from None

    def entries(self, invocation_id: str) -> list[tuple[Any, ...]]:
        return self._reader.execute(
            f"SELECT {ENTRY_COLUMNS} FROM journal_entries WHERE invocation_id = ? ORDER BY seq",
            (invocation_id,),
        ).fetchall()

    def close_writer(self) -> None:
        self._writer.close()

    def close(self) -> None:
        self._reader.close()
        self._directory.release()


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


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level="DEFERRED")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db
