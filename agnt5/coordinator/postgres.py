"""`PostgresStore`: a `StateStore` journaled to PostgreSQL, which several coordinators share.

The driver is asyncpg (binary protocol, statements prepared and cached per connection): on
the journal's workload, batches of 1,024 inserts and 1,024 updates, it commits about twice as
many rows per second as psycopg 3 on this machine (see the README). It runs on an event loop of
its own, in its own thread, so the coordinator's loop never waits on a commit.

Each coordinator holds a lease on the work it runs (``coordinators.lease_until_ms``, renewed
every second by its writer); invocations carry their ``owner``. On start, and every
``lease / 3`` seconds after, a coordinator claims the unfinished invocations whose owner's
lease expired (``FOR UPDATE SKIP LOCKED``, so two never claim the same one) and runs them again.
An outcome is written only over an unfinished row: the first outcome committed is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from agnt5 import config
from agnt5.coordinator._data_dir import JournalError
from agnt5.coordinator._journaled import (
    COLUMNS,
    ENTRY_COLUMNS,
    FINISHED,
    LISTED,
    Batch,
    JournaledStore,
    Opened,
    Write,
    changes,
    dropped,
    group_journals,
    invocation,
    listing_filters,
    row,
    signal_row,
)
from agnt5.coordinator.store import Invocation, InvocationQuery
from agnt5.errors import UnavailableError
from agnt5.workflows.journal import BufferedSignal

__all__ = ["DEFAULT_LEASE", "SCHEMA_VERSION", "PostgresStore", "check_database_url"]

DEFAULT_LEASE = config.LEASE
"""Seconds a coordinator's claim on its work outlives its last renewal (it renews every second)."""
SCHEMA_VERSION = 2
"""The newest schema this code knows (``agnt5_schema.version``)."""
_CONNECT_TIMEOUT = 10.0
_COMMAND_TIMEOUT = 30.0
_READ_TIMEOUT = 10.0
_RENEW_EVERY = 1.0
_CLAIM_ROWS = 1000  # most orphaned invocations one claim takes
_POLL = 1.0  # seconds between reads of another coordinator's invocation a client waits for
_FINISHED_CHANNEL = "agnt5_finished"  # NOTIFY payload: comma-separated invocation ids
_HANDED_OFF_CHANNEL = "agnt5_handed_off"  # NOTIFY: invocations wait to be claimed
_SIGNAL_CHANNEL = "agnt5_signal"  # NOTIFY payload: comma-separated ids of signalled workflows
_NOTIFY_IDS = 200  # ids per notification (a payload holds at most 8,000 bytes)
_SIGNAL_BLOCK = 1 << 32  # signal ids per coordinator start (a sequence hands out blocks)
_CLAIM_KEY_TRIES = 3  # a key's holder can vanish (retention) between the insert and the read
_T = TypeVar("_T")
_log = logging.getLogger("agnt5.coordinator")

_MIGRATIONS = {
    1: f"""
CREATE TABLE invocations (
    id TEXT PRIMARY KEY, service TEXT NOT NULL, function TEXT NOT NULL, input BYTEA NOT NULL,
    metadata BYTEA NOT NULL, policy BYTEA NOT NULL, idempotency_key TEXT NOT NULL,
    deadline_unix_ms BIGINT NOT NULL, created_unix_ms BIGINT NOT NULL,
    updated_unix_ms BIGINT NOT NULL, state SMALLINT NOT NULL, attempt INTEGER NOT NULL,
    worker_id TEXT NOT NULL, output BYTEA, error BYTEA, duration_us BIGINT NOT NULL,
    owner TEXT NOT NULL
);
CREATE INDEX invocations_by_key
    ON invocations (service, function, idempotency_key) WHERE idempotency_key != '';
CREATE INDEX invocations_finished ON invocations (updated_unix_ms) WHERE state IN {FINISHED};
CREATE INDEX invocations_unfinished ON invocations (owner) WHERE state NOT IN {FINISHED};
CREATE TABLE journal_entries (
    invocation_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    state TEXT NOT NULL, output BYTEA, error BYTEA, attempt INTEGER NOT NULL,
    started_unix_ms BIGINT NOT NULL, finished_unix_ms BIGINT NOT NULL,
    duration_us BIGINT NOT NULL, child_id TEXT NOT NULL, fire_unix_ms BIGINT NOT NULL,
    timeout_unix_ms BIGINT NOT NULL, PRIMARY KEY (invocation_id, seq)
);
CREATE TABLE signals (
    id BIGINT PRIMARY KEY, invocation_id TEXT NOT NULL, name TEXT NOT NULL,
    payload BYTEA NOT NULL, created_unix_ms BIGINT NOT NULL
);
CREATE INDEX signals_by_invocation ON signals (invocation_id, name, id);
CREATE TABLE coordinators (id TEXT PRIMARY KEY, lease_until_ms BIGINT NOT NULL);
CREATE TABLE services (
    service TEXT NOT NULL, function TEXT NOT NULL, coordinator TEXT NOT NULL,
    PRIMARY KEY (service, function, coordinator)
);
CREATE INDEX invocations_handed_off ON invocations (service) WHERE owner = '';
CREATE SEQUENCE signal_blocks;
""",
    2: """
-- one invocation a key, across coordinators: a key a race gave twice keeps its oldest
UPDATE invocations SET idempotency_key = '' WHERE idempotency_key != '' AND id NOT IN (
    SELECT DISTINCT ON (service, function, idempotency_key) id FROM invocations
    WHERE idempotency_key != '' ORDER BY service, function, idempotency_key, created_unix_ms, id);
DROP INDEX invocations_by_key;
CREATE UNIQUE INDEX invocations_by_key
    ON invocations (service, function, idempotency_key) WHERE idempotency_key != '';
-- listings page newest first, in all or by service
CREATE INDEX invocations_by_created ON invocations (created_unix_ms, id);
CREATE INDEX invocations_by_service ON invocations (service, created_unix_ms, id);
""",
}
_NOT_FINISHED = f"state NOT IN {FINISHED}"
_OUTCOME_OPEN = f"invocations.{_NOT_FINISHED}"  # the first outcome committed is final
_INSERT = f"""
INSERT INTO invocations ({COLUMNS}, owner)
SELECT *, $17::text FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[],
    $6::bytea[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::smallint[],
    $12::int[], $13::text[], $14::bytea[], $15::bytea[], $16::bigint[])
ON CONFLICT (id) DO UPDATE SET updated_unix_ms = EXCLUDED.updated_unix_ms,
    state = EXCLUDED.state, attempt = EXCLUDED.attempt, worker_id = EXCLUDED.worker_id,
    output = EXCLUDED.output, error = EXCLUDED.error, duration_us = EXCLUDED.duration_us
WHERE {_OUTCOME_OPEN}
"""
_UPDATE = f"""
UPDATE invocations SET updated_unix_ms = u.t, state = u.s, attempt = u.a, worker_id = u.w,
    output = u.o, error = u.e, duration_us = u.d
FROM unnest($1::bigint[], $2::smallint[], $3::int[], $4::text[], $5::bytea[], $6::bytea[],
    $7::bigint[], $8::text[]) AS u(t, s, a, w, o, e, d, id)
WHERE invocations.id = u.id AND {_OUTCOME_OPEN}
"""
_EACH = {  # executemany, row after row in order
    Write.ENTRY: f"""
INSERT INTO journal_entries ({ENTRY_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (invocation_id, seq) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name,
    state = EXCLUDED.state, output = EXCLUDED.output, error = EXCLUDED.error,
    attempt = EXCLUDED.attempt, started_unix_ms = EXCLUDED.started_unix_ms,
    finished_unix_ms = EXCLUDED.finished_unix_ms, duration_us = EXCLUDED.duration_us,
    child_id = EXCLUDED.child_id, fire_unix_ms = EXCLUDED.fire_unix_ms,
    timeout_unix_ms = EXCLUDED.timeout_unix_ms
""",
    Write.KEEP_SIGNAL: (
        "INSERT INTO signals (id, invocation_id, name, payload, created_unix_ms) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING"
    ),
}
_EACH[Write.FORWARD_SIGNAL] = _EACH[Write.KEEP_SIGNAL]
_BY_KEY = "service = $1 AND function = $2 AND idempotency_key = $3 AND idempotency_key != ''"
# A keyed invocation committed at once unless its key is taken (the unique index decides).
_CLAIM_KEY = f"""
INSERT INTO invocations ({COLUMNS}, owner)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (service, function, idempotency_key) WHERE idempotency_key != '' DO NOTHING
RETURNING id
"""
_HAND_OFF = f"""
INSERT INTO invocations ({COLUMNS}, owner)
SELECT *, '' FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[],
    $6::bytea[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::smallint[],
    $12::int[], $13::text[], $14::bytea[], $15::bytea[], $16::bigint[])
ON CONFLICT (id) DO NOTHING
"""
_SERVING = """
INSERT INTO services (service, function, coordinator)
SELECT $1, unnest($2::text[]), $3 ON CONFLICT DO NOTHING
"""
_SERVED_ELSEWHERE = """
SELECT EXISTS (SELECT 1 FROM services s JOIN coordinators c ON c.id = s.coordinator
    WHERE s.service = $1 AND s.function = $2 AND c.id != $3 AND c.lease_until_ms >= $4)
"""
_BY_IDS = {  # one statement for all the ids
    Write.TAKE_SIGNAL: "DELETE FROM signals WHERE id = ANY($1::bigint[])",
    Write.DROP_SIGNALS: "DELETE FROM signals WHERE invocation_id = ANY($1::text[])",
    Write.RELEASE: (
        f"UPDATE invocations SET owner = '' WHERE id = ANY($1::text[]) AND {_NOT_FINISHED}"
    ),
}
_EXPIRED = f"state IN {FINISHED} AND updated_unix_ms < $1"
_PRUNE = (
    f"DELETE FROM journal_entries WHERE invocation_id IN (SELECT id FROM invocations WHERE {_EXPIRED})",
    f"DELETE FROM signals WHERE invocation_id IN (SELECT id FROM invocations WHERE {_EXPIRED})",
    f"DELETE FROM invocations WHERE {_EXPIRED}",
)
_RENEW = """
INSERT INTO coordinators (id, lease_until_ms) VALUES ($1, $2)
ON CONFLICT (id) DO UPDATE SET lease_until_ms = EXCLUDED.lease_until_ms
"""
# Claimed for $1: unfinished invocations whose owner holds no live lease (of the services in
# $3, those it has workers for; NULL: all, at start), and those handed off for the services in
# $3 (locked rows skipped: another coordinator is claiming them).
_CLAIM = f"""
UPDATE invocations SET owner = $1 WHERE id IN (
    SELECT id FROM invocations WHERE {_NOT_FINISHED}
        AND ($3::text[] IS NULL OR service = ANY($3::text[])) AND owner NOT IN ('', $1)
        AND owner NOT IN (
            SELECT id FROM coordinators WHERE lease_until_ms >= $2)
    LIMIT {_CLAIM_ROWS} FOR UPDATE SKIP LOCKED)
OR id IN (
    SELECT id FROM invocations WHERE owner = '' AND service = ANY($3::text[])
    LIMIT {_CLAIM_ROWS} FOR UPDATE SKIP LOCKED)
RETURNING {COLUMNS}
"""
_OF_CLAIMED = "invocation_id = ANY($1::text[])"
_SELECT = f"SELECT {COLUMNS} FROM invocations"
_SELECT_BY_ID = f"{_SELECT} WHERE id = $1"


def check_database_url(url: str) -> str:
    """``url`` if it is a ``postgresql://`` (or ``postgres://``) URL; else `ValueError`."""
    scheme = url.partition("://")[0]
    if not url.startswith(("postgresql://", "postgres://")) or len(url) <= len(scheme) + 3:
        raise ValueError(
            f"a database URL must look like postgresql://user@host:5432/dbname, got one starting "
            f"{scheme[:16]!r}"
        )
    return url


def _public(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class PostgresStore(JournaledStore):
    """Every accepted invocation and each state change, journaled to the PostgreSQL database at
    ``url``; the schema is created or migrated on open (a newer schema than this code knows is
    a `JournalError`, as is a database that cannot be reached).

    Several coordinators may share one database: each claims the unfinished work whose owner's
    lease (``lease`` seconds) expired — at open, and every ``lease / 3`` seconds while
    `on_orphans` has a callback for it.
    """

    shared = True

    def __init__(
        self,
        url: str,
        *,
        retention: float = config.RETENTION,
        max_finished: int = 100_000,
        max_finished_bytes: int = config.RESULT_CACHE_BYTES,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        if not retention > 0:
            raise ValueError(f"retention must be > 0 seconds, got {retention!r}")
        if not 3 * _RENEW_EVERY <= lease <= 3600:
            raise ValueError(f"lease must be 3 to 3600 seconds, got {lease!r}")
        backend = _PostgresBackend(check_database_url(url), lease)
        self.owner = backend.owner
        self._start(
            backend,
            backend.opened,
            retention=retention,
            max_finished=max_finished,
            max_finished_bytes=max_finished_bytes,
        )
        self._orphans: asyncio.Task[None] | None = None
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._handed_off = asyncio.Event()
        self._signalled: Callable[[str], None] = lambda invocation_id: None
        self._finished_elsewhere: Callable[[Invocation], None] | None = None
        self._reads: set[asyncio.Task[None]] = set()
        backend.heard = self._heard

    async def changed(self, invocation_id: str) -> None:
        """Return when the invocation finished on another coordinator (its ``NOTIFY``), or
        after `_POLL` seconds (in case a notification was lost with a connection)."""
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        watchers = self._watchers.setdefault(invocation_id, set())
        watchers.add(event)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_POLL):
                    await event.wait()
        finally:
            watchers.discard(event)
            if not watchers:
                del self._watchers[invocation_id]

    def _heard(self, channel: str, invocation_ids: list[str]) -> None:
        """What a notification said (called on the database's thread): invocations finished,
        were signalled, or work was handed off."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed without closing us
                self._loop.call_soon_threadsafe(self._wake, channel, invocation_ids)

    def _wake(self, channel: str, invocation_ids: list[str]) -> None:
        if channel == _HANDED_OFF_CHANNEL:  # claim now
            self._handed_off.set()
            return
        if channel == _SIGNAL_CHANNEL:
            for invocation_id in invocation_ids:
                self._signalled(invocation_id)
            return
        for invocation_id in invocation_ids:
            for event in self._watchers.get(invocation_id, ()):
                event.set()
            held = self._memory.get(invocation_id)
            if held is not None and not held.finished and self._finished_elsewhere is not None:
                read = asyncio.get_running_loop().create_task(self._outcome_of(invocation_id))
                self._reads.add(read)
                read.add_done_callback(self._reads.discard)

    async def _outcome_of(self, invocation_id: str) -> None:
        """An invocation running here may have got an outcome elsewhere: read it, and if so
        pass it to the `on_finished_elsewhere` callback."""
        backend: _PostgresBackend = self._backend  # type: ignore[assignment]
        try:
            async with asyncio.timeout(_READ_TIMEOUT):
                found = await asyncio.wrap_future(
                    backend.submit(backend.fetch(_SELECT_BY_ID, (invocation_id,)))
                )
        except Exception as exc:  # the outcome stays in the database; ours cannot replace it
            _log.warning("%s: cannot read invocation %s (%s)", backend.where, invocation_id, exc)
            return
        held = self._memory.get(invocation_id)
        committed = invocation(tuple(found[0])) if found else None
        if committed is None or not committed.finished or held is None or held.finished:
            return
        if self._finished_elsewhere is not None:
            self._finished_elsewhere(committed)

    def on_orphans(
        self, callback: Callable[[list[Invocation]], None], serving: Callable[[], list[str]]
    ) -> None:
        """Every ``lease / 3`` seconds (at once when another coordinator hands work off),
        claim the unfinished invocations of coordinators whose lease expired and those handed
        off for the services ``serving()`` names; pass them to ``callback`` on this loop (added
        to this store first)."""
        self._loop = asyncio.get_running_loop()
        self._orphans = self._loop.create_task(self._claim_orphans(callback, serving))

    def serving(self, service: str, functions: list[str]) -> None:
        """Record it, and claim what waits for the service at once."""
        self._put(Write.SERVING, (service, functions))
        self._handed_off.set()

    def served_elsewhere(self, service: str, function: str) -> bool:
        backend: _PostgresBackend = self._backend  # type: ignore[assignment]
        return backend.served_elsewhere(service, function)

    def hand_off(self, invocation: Invocation) -> None:
        self._put(Write.HAND_OFF, row(invocation))

    def release(self, invocation: Invocation) -> None:
        self._memory.forget(invocation.id)
        self._put(Write.RELEASE, (invocation.id,))

    def forward_signal(self, invocation_id: str, signal: BufferedSignal) -> None:
        self._put(Write.FORWARD_SIGNAL, signal_row(invocation_id, signal))

    def on_signals(self, callback: Callable[[str], None]) -> None:
        self._signalled = callback

    def kept_signals(self, invocation_id: str) -> list[BufferedSignal]:
        backend: _PostgresBackend = self._backend  # type: ignore[assignment]
        return backend.kept_signals(invocation_id)

    def claim_key(self, invocation: Invocation, *, hand_off: bool) -> Invocation | None:
        backend: _PostgresBackend = self._backend  # type: ignore[assignment]
        return backend.claim_key(row(invocation), "" if hand_off else self.owner)

    def finish_elsewhere(self, invocation: Invocation) -> None:
        invocation.updated_unix_ms = int(time.time() * 1000)
        self._put(Write.FINISH_ELSEWHERE, changes(invocation))

    def on_finished_elsewhere(self, callback: Callable[[Invocation], None]) -> None:
        self._finished_elsewhere = callback

    async def _claim_orphans(
        self, callback: Callable[[list[Invocation]], None], serving: Callable[[], list[str]]
    ) -> None:
        backend: _PostgresBackend = self._backend  # type: ignore[assignment]
        while not self._closed:  # bounded: ends with the store
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backend.lease / 3):
                    await self._handed_off.wait()
            self._handed_off.clear()
            try:
                opened = await asyncio.wrap_future(backend.submit(backend.claim(serving())))
            except Exception as exc:  # the database is away: try again next time
                _log_claim_failure(backend.where, exc)
                continue
            if not self._closed:
                self._adopt(opened)
                callback(opened.unfinished)  # also when empty: the scheduler sweeps its queues

    def close(self) -> None:
        if self._orphans is not None:
            self._orphans.cancel()
        for read in self._reads:
            read.cancel()
        super().close()


def _log_claim_failure(where: str, exc: Exception) -> None:
    _log.warning(
        "%s: cannot claim orphaned work (%s: %s); retrying", where, type(exc).__name__, exc
    )


class _PostgresBackend:
    """The database: an asyncpg pool on an event loop in a thread of its own."""

    def __init__(self, url: str, lease: float) -> None:
        try:
            import asyncpg
        except ImportError:
            raise JournalError(
                "a PostgreSQL journal needs asyncpg: pip install 'agnt5[postgres]'"
            ) from None

        self.where = f"the database {_public(url)}"
        self.lease = lease
        self.owner = os.urandom(8).hex()
        self.unstorable = (
            OverflowError,
            TypeError,
            ValueError,
            asyncpg.DataError,
            asyncpg.IntegrityConstraintViolationError,
        )
        self._url = url
        self._renewed = 0.0
        self._listener: Any = None
        self.heard: Callable[[str, list[str]], None] = lambda channel, invocation_ids: None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="agnt5-postgres", daemon=True
        )
        self._thread.start()
        self._pool: Any = None
        try:
            self.opened = self.run(self._open(), _CONNECT_TIMEOUT + _COMMAND_TIMEOUT)
        except JournalError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise JournalError(
                f"cannot use {self.where} ({type(exc).__name__}: {exc}): check that it runs and "
                "that the URL, user and password are right"
            ) from None

    def submit(self, work: Awaitable[_T]) -> Any:
        """Run ``work`` on the database's loop; a `concurrent.futures.Future` of its result."""
        return asyncio.run_coroutine_threadsafe(work, self._loop)  # type: ignore[arg-type]

    def run(self, work: Awaitable[_T], timeout: float) -> _T:
        """Run ``work`` on the database's loop and wait for it, cancelling it after
        ``timeout`` seconds (`TimeoutError`)."""
        future = self.submit(work)
        try:
            return future.result(timeout)  # type: ignore[no-any-return]
        except TimeoutError:
            future.cancel()
            raise

    async def _open(self) -> Opened:
        import asyncpg

        self._pool = await asyncpg.create_pool(
            self._url,
            min_size=1,
            max_size=4,
            timeout=_CONNECT_TIMEOUT,
            command_timeout=_COMMAND_TIMEOUT,
        )
        async with self._pool.acquire(timeout=_CONNECT_TIMEOUT) as db, db.transaction():
            await _migrate(db, self.where)
            (block,) = await db.fetchrow("SELECT nextval('signal_blocks')")
            await db.execute(_RENEW, self.owner, _now_ms() + int(self.lease * 1000))
        self._renewed = time.monotonic()
        await self._listen()
        opened = await self.claim(None)
        return opened._replace(last_signal=block * _SIGNAL_BLOCK)

    async def _listen(self) -> None:
        """Hear the ids of invocations that finish (on any coordinator), on a connection of its
        own; with it lost, `PostgresStore.changed` polls until `claim` listens again."""
        import asyncpg

        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = await asyncpg.connect(self._url, timeout=_CONNECT_TIMEOUT)
        for channel in (_FINISHED_CHANNEL, _HANDED_OFF_CHANNEL, _SIGNAL_CHANNEL):
            await self._listener.add_listener(channel, self._notified)

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self.heard(channel, payload.split(",") if payload else [])

    def kept_signals(self, invocation_id: str) -> list[BufferedSignal]:
        """The signals kept for ``invocation_id``, in id order."""
        query = "SELECT id, name, payload FROM signals WHERE invocation_id = $1 ORDER BY id"
        return [BufferedSignal(*found) for found in self._read(query, (invocation_id,))]

    def claim_key(self, found: tuple[Any, ...], owner: str) -> Invocation | None:
        """Commit the keyed invocation row ``found`` for ``owner`` now, unless an invocation
        holds its key: then that one."""
        try:
            return self.run(self._claim_key(found, owner), _READ_TIMEOUT)
        except Exception as exc:
            raise UnavailableError(
                f"{self.where} cannot take the invocation ({type(exc).__name__}: {exc}); retry"
            ) from None

    async def _claim_key(self, found: tuple[Any, ...], owner: str) -> Invocation | None:
        async with self._pool.acquire(timeout=_CONNECT_TIMEOUT) as db:
            for _ in range(_CLAIM_KEY_TRIES):
                if await db.fetchval(_CLAIM_KEY, *found, owner) is not None:
                    return None
                key = (found[1], found[2], found[6])
                holder = await db.fetchrow(f"{_SELECT} WHERE {_BY_KEY} LIMIT 1", *key)
                if holder is not None:
                    return invocation(tuple(holder))
        raise RuntimeError(f"the key's invocation vanished {_CLAIM_KEY_TRIES} times")

    def served_elsewhere(self, service: str, function: str) -> bool:
        """Whether another live coordinator has a worker for ``service/function``."""
        found = self._read(_SERVED_ELSEWHERE, (service, function, self.owner, _now_ms()))
        return bool(found[0][0])

    async def claim(self, services: list[str] | None) -> Opened:
        """Claim the unfinished invocations of expired leases and those handed off, of
        ``services`` (None: orphans of every service), with their journals (and listen again
        if the listening connection was lost)."""
        with contextlib.suppress(Exception):  # polling stands in meanwhile
            await self._listen()
        async with self._pool.acquire(timeout=_CONNECT_TIMEOUT) as db, db.transaction():
            rows = await db.fetch(_CLAIM, self.owner, _now_ms(), services)
            ids = [found[0] for found in rows]
            entries = signals = []
            if ids:
                entries = await db.fetch(
                    f"SELECT {ENTRY_COLUMNS} FROM journal_entries WHERE {_OF_CLAIMED} "
                    "ORDER BY invocation_id, seq",
                    ids,
                )
                signals = await db.fetch(
                    f"SELECT invocation_id, id, name, payload FROM signals WHERE {_OF_CLAIMED} "
                    "ORDER BY id",
                    ids,
                )
        return Opened(
            [invocation(tuple(found)) for found in rows],
            group_journals([tuple(e) for e in entries], [tuple(s) for s in signals]),
            0,
        )

    def commit(self, batches: Batch, cutoff: int | None, *, each: bool) -> None:
        self.run(self._commit(batches, cutoff, each), _CONNECT_TIMEOUT + _COMMAND_TIMEOUT)

    async def _commit(self, batches: Batch, cutoff: int | None, each: bool) -> None:
        async with self._pool.acquire(timeout=_CONNECT_TIMEOUT) as db, db.transaction():
            for kind, rows in batches:
                if not rows:
                    continue
                if each:
                    for params in rows:
                        try:
                            async with db.transaction():  # a savepoint
                                await self._write(db, kind, [params])
                        except self.unstorable as exc:
                            dropped(kind, params, exc)
                else:
                    await self._write(db, kind, rows)
            if any(kind in (Write.HAND_OFF, Write.RELEASE) and rows for kind, rows in batches):
                await db.execute("SELECT pg_notify($1, '')", _HANDED_OFF_CHANNEL)
            signalled = [params[1] for kind, rows in batches for params in rows
                         if kind is Write.FORWARD_SIGNAL]  # fmt: skip
            await _notify(db, _SIGNAL_CHANNEL, signalled)
            await _notify(db, _FINISHED_CHANNEL, _finished_ids(batches))
            if time.monotonic() - self._renewed >= _RENEW_EVERY:
                await db.execute(_RENEW, self.owner, _now_ms() + int(self.lease * 1000))
                self._renewed = time.monotonic()
            if cutoff is not None:
                for statement in _PRUNE:
                    await db.execute(statement, cutoff)

    async def _write(self, db: Any, kind: Write, rows: list[tuple[Any, ...]]) -> None:
        if kind is Write.INSERT:
            await db.execute(_INSERT, *_columns(rows, 16), self.owner)
        elif kind in (Write.UPDATE, Write.FINISH_ELSEWHERE):
            await db.execute(_UPDATE, *_columns(rows, 8))
        elif kind is Write.HAND_OFF:
            await db.execute(_HAND_OFF, *_columns(rows, 16))
        elif kind is Write.SERVING:
            for service, functions in rows:
                await db.execute(_SERVING, service, functions, self.owner)
        elif kind in _BY_IDS:
            await db.execute(_BY_IDS[kind], [params[0] for params in rows])
        else:
            await db.executemany(_EACH[kind], rows)

    def select(self, by_key: bool, params: tuple[str, ...]) -> tuple[Any, ...] | None:
        query = f"{_SELECT} WHERE {_BY_KEY} LIMIT 1" if by_key else _SELECT_BY_ID
        found = self._read(query, params)
        return tuple(found[0]) if found else None

    def listed(self, query: InvocationQuery, limit: int) -> list[tuple[Any, ...]]:
        where, params = listing_filters(query, lambda number: f"${number}")
        sql = (
            f"SELECT {LISTED} FROM invocations WHERE {' AND '.join(['TRUE', *where])} "
            f"ORDER BY created_unix_ms DESC, id DESC LIMIT ${len(params) + 1}"
        )
        return [tuple(found) for found in self._read(sql, (*params, limit))]

    def entries(self, invocation_id: str) -> list[tuple[Any, ...]]:
        query = f"SELECT {ENTRY_COLUMNS} FROM journal_entries WHERE invocation_id = $1 ORDER BY seq"
        return [tuple(found) for found in self._read(query, (invocation_id,))]

    def _read(self, query: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            return self.run(self.fetch(query, params), _READ_TIMEOUT)
        except Exception as exc:
            raise UnavailableError(
                f"{self.where} cannot be read ({type(exc).__name__}: {exc}); retry"
            ) from None

    async def fetch(self, query: str, params: tuple[Any, ...]) -> list[Any]:
        """The rows ``query`` returns (on the database's loop)."""
        async with self._pool.acquire(timeout=_CONNECT_TIMEOUT) as db:
            return await db.fetch(query, *params)  # type: ignore[no-any-return]

    def close_writer(self) -> None:
        """Nothing: the writer shares the pool, closed with the rest."""

    def close(self) -> None:
        if self._pool is not None:
            with contextlib.suppress(Exception):
                self.run(self._release(), _COMMAND_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=_COMMAND_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()

    async def _release(self) -> None:
        """Give up the lease (others claim what is left at once) and close the connections."""
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.close(), _COMMAND_TIMEOUT)
        pool, self._pool = self._pool, None
        with contextlib.suppress(Exception):
            await pool.execute("DELETE FROM services WHERE coordinator = $1", self.owner)
            await pool.execute("DELETE FROM coordinators WHERE id = $1", self.owner)
        await asyncio.wait_for(pool.close(), _COMMAND_TIMEOUT)


async def _migrate(db: Any, where: str) -> None:
    """Bring the schema to `SCHEMA_VERSION` (one coordinator at a time: an advisory lock)."""
    await db.execute("SELECT pg_advisory_xact_lock(hashtext('agnt5 schema'))")
    await db.execute("CREATE TABLE IF NOT EXISTS agnt5_schema (version INTEGER NOT NULL)")
    version = await db.fetchval("SELECT max(version) FROM agnt5_schema") or 0
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"{where} holds schema {version}, written by a newer agnt5 (this one knows "
            f"{SCHEMA_VERSION}): upgrade agnt5 on every coordinator, or use another database"
        )
    for number in range(version + 1, SCHEMA_VERSION + 1):
        await db.execute(_MIGRATIONS[number])
        await db.execute("INSERT INTO agnt5_schema (version) VALUES ($1)", number)


async def _notify(db: Any, channel: str, invocation_ids: list[str]) -> None:
    """Notify ``channel`` of ``invocation_ids`` (sent when the transaction commits)."""
    for start in range(0, len(invocation_ids), _NOTIFY_IDS):
        chunk = ",".join(invocation_ids[start : start + _NOTIFY_IDS])
        await db.execute("SELECT pg_notify($1, $2)", channel, chunk)


def _finished_ids(batches: Batch) -> list[str]:
    """The invocations a batch gives an outcome."""
    finished = []
    for kind, rows in batches:
        if kind is Write.INSERT:
            finished += [params[0] for params in rows if params[10] in FINISHED]
        elif kind in (Write.UPDATE, Write.FINISH_ELSEWHERE):
            finished += [params[-1] for params in rows if params[1] in FINISHED]
    return finished


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as columns (one array per parameter of an unnest statement)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


def _now_ms() -> int:
    return int(time.time() * 1000)
