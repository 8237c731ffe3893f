"""`JournaledStore`: a `StateStore` served from memory and journaled to a database in batches.

The database is a `Backend` (SQLite in `journal`, PostgreSQL in `postgres`): this module owns
what they share — the write queue, the writer thread that commits it in batches, coalescing,
retries after a failed commit, `when_saved` notices and the rows' encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import functools
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import orjson

from agnt5 import config
from agnt5.coordinator._data_dir import JournalError
from agnt5.coordinator.store import (
    PAGE_SCAN,
    Invocation,
    InvocationPage,
    InvocationQuery,
    InvocationState,
    Listed,
    MemoryStore,
    RetryPolicy,
    Unshared,
    page_of,
)
from agnt5.workflows.journal import BufferedSignal, Entry, Journal

__all__ = ["Backend", "JournalError", "JournaledStore", "Opened", "Write"]

_log = logging.getLogger("agnt5.coordinator")

_BATCH_ROWS = 1024  # most rows one commit takes; the writer commits as soon as its queue is empty
_BUSY_ROWS = 32  # a batch this big means load: the next one lingers to gather more
_LINGER = 0.002  # seconds a batch under load waits once for company (see _take)
_PRUNE_EVERY = 1.0  # seconds between deletions of finished rows past their retention
_RETRY_FIRST = 0.05  # seconds before committing again after a failed commit, doubling ...
_RETRY_MAX = 1.0  # ... up to this
FINISHED = (InvocationState.SUCCEEDED.value, InvocationState.FAILED.value)
CHANGED = 9  # the columns of an invocation row before those an update sets


class Write(enum.Enum):
    """What a queued write does; the rows of one kind in a batch go to the database together."""

    INSERT = "insert"  # an invocation row (replacing one with its id)
    UPDATE = "update"  # an invocation's changing columns
    ENTRY = "entry"  # a workflow journal entry (replacing one with its seq)
    KEEP_SIGNAL = "keep_signal"  # a signal its workflow has not taken yet
    TAKE_SIGNAL = "take_signal"  # ... taken, by id
    DROP_SIGNALS = "drop_signals"  # an invocation's untaken signals, once it finished
    HAND_OFF = "hand_off"  # an invocation row for another coordinator to claim (shared stores)
    RELEASE = "release"  # an invocation given up for another coordinator to claim (shared)
    FORWARD_SIGNAL = "forward_signal"  # a signal kept for another coordinator's workflow
    FINISH_ELSEWHERE = "finish_elsewhere"  # an outcome for another coordinator's invocation
    SERVING = "serving"  # a service's functions this coordinator has workers for (shared stores)
    NOTIFY = "notify"  # not a write: a `when_saved` request


IN_ORDER = (
    Write.ENTRY,
    Write.KEEP_SIGNAL,
    Write.TAKE_SIGNAL,
    Write.DROP_SIGNALS,
    Write.HAND_OFF,
    Write.RELEASE,
    Write.SERVING,
    Write.FORWARD_SIGNAL,
    Write.FINISH_ELSEWHERE,
)
Batch = list[tuple[Write, list[tuple[Any, ...]]]]
Kept = tuple[list[Entry], list[BufferedSignal]]


class Opened(NamedTuple):
    """What a backend reads when it opens: the unfinished invocations, their workflows'
    entries and kept signals (by invocation) and the highest signal id used."""

    unfinished: list[Invocation]
    journals: dict[str, Kept]
    last_signal: int


class Backend(Protocol):
    """A database a `JournaledStore` writes to. `commit` runs on the writer thread only."""

    where: str
    """Where the journal is, for messages ("the journal /x/journal.db")."""
    unstorable: tuple[type[BaseException], ...]
    """Errors of a row's values rather than of the database: that row can never be stored."""

    def commit(self, batches: Batch, cutoff: int | None, *, each: bool) -> None:
        """Write ``batches`` in one transaction (``each``: row by row, logging and skipping
        the rows that are `unstorable`); with a ``cutoff`` (ms), delete the invocations that
        finished before it, with their journals and signals."""
        ...

    def select(self, by_key: bool, params: tuple[str, ...]) -> tuple[Any, ...] | None:
        """The invocation row with this id (``by_key``: service, function, idempotency key)."""
        ...

    def entries(self, invocation_id: str) -> list[tuple[Any, ...]]:
        """The journal entry rows of an invocation in seq order."""
        ...

    def listed(self, query: InvocationQuery, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` `LISTED` rows in ``query``'s service, creation range and page,
        newest first, read down an index."""
        ...

    def close_writer(self) -> None:
        """Release what the writer thread used (called on it, last)."""
        ...

    def close(self) -> None:
        """Release everything else (after the writer thread ended)."""
        ...


class JournaledStore(Unshared):
    """Every accepted invocation and each state change, journaled by a `Backend`.

    Reads are served from memory (unfinished invocations and the newest finished ones, within
    ``max_finished`` and ``max_finished_bytes``), older finished ones from the database. Writes
    go to a queue that one thread commits in batches; a write reaches the database within
    milliseconds of the state change, and `when_saved` callbacks run once the writes queued
    before them are committed. Finished rows are deleted ``retention`` seconds after they
    finished.

    When a commit fails, `failure` says why, the changes are kept and committed again every
    second or sooner, and callbacks wait: nothing is reported saved until it is. The writer
    thread survives any error; a change the database cannot store at all (none should reach
    it) is logged and dropped, never blocking others.
    """

    failure: str | None = None
    durable = True
    _observe_commit: Callable[[float, int], None] = staticmethod(lambda seconds, changes: None)

    def _start(
        self,
        backend: Backend,
        opened: Opened,
        *,
        retention: float,
        max_finished: int,
        max_finished_bytes: int,
    ) -> None:
        """Serve ``opened`` from memory and start the writer (the subclass opened ``backend``)."""
        self._backend = backend
        self._retention_ms = int(retention * 1000)
        self._writes: queue.SimpleQueue[tuple[Write, Any] | None] = queue.SimpleQueue()
        self._closed = False
        self._unfinished = opened.unfinished
        self._memory = MemoryStore(
            max_finished,
            max_finished_bytes,
            journal_writer=functools.partial(_JournalRows, self),
            first_signal_id=opened.last_signal + 1,
        )
        self._adopt(opened)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer = threading.Thread(target=self._write, name="agnt5-journal", daemon=True)
        self._writer.start()

    def _adopt(self, opened: Opened) -> None:
        """Hold the unfinished invocations ``opened`` read, and their journals, in memory."""
        for found in opened.unfinished:
            self._memory.add(found)
        for invocation_id, (entries, kept) in opened.journals.items():
            journal = Journal(entries, kept, writer=_JournalRows(self, invocation_id))
            self._memory.load_journal(invocation_id, journal)

    def add(self, invocation: Invocation) -> None:
        self._memory.add(invocation)
        self._put(Write.INSERT, row(invocation))

    def get(self, invocation_id: str) -> Invocation | None:
        found = self._memory.get(invocation_id)
        if found is None and not self._closed:
            found = self._select(False, (invocation_id,))
        return found

    def find(self, service: str, function: str, idempotency_key: str) -> Invocation | None:
        found = self._memory.find(service, function, idempotency_key)
        if found is None and not self._closed:
            found = self._select(True, (service, function, idempotency_key))
        return found

    def save(self, invocation: Invocation) -> None:
        if self._closed:
            self._memory.save(invocation)
            return
        invocation.updated_unix_ms = _now_ms()
        self._writes.put((Write.UPDATE, changes(invocation)))
        if invocation.finished:  # leaves memory only once the journal has it
            self._writes.put((Write.DROP_SIGNALS, (invocation.id,)))  # nobody will take them
            self.when_saved(functools.partial(self._memory.keep, invocation))

    def when_saved(
        self, callback: Callable[[], None], on_failure: Callable[[str], None] | None = None
    ) -> None:
        if self._closed:
            callback()
            return
        self._loop = asyncio.get_running_loop()
        self._writes.put((Write.NOTIFY, _Notice(callback, on_failure)))

    def journal(self, invocation_id: str, *, create: bool = True) -> Journal | None:
        return self._memory.journal(invocation_id, create=create)

    def steps(self, invocation_id: str) -> list[Entry]:
        if self._memory.journal(invocation_id, create=False) is not None or self._closed:
            return self._memory.steps(invocation_id)
        return [entry(found) for found in self._backend.entries(invocation_id)]

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
        """A page from the database (the committed invocations; those still in memory as they
        are now), walking an index newest first: by service when one is asked for, else by
        creation time."""
        if self._closed:
            return self._memory.list(query)
        limit = (PAGE_SCAN if query.filtered else query.limit) + 1  # one more: is it the end?
        return page_of(query, map(self._listed, self._backend.listed(query, limit)))

    def _listed(self, found: tuple[Any, ...]) -> tuple[tuple[int, str], Listed]:
        held = self._memory.get(found[0])
        if held is not None:
            return held.key, held.listed()
        id_, service, function, state, attempt, created, updated, duration_us, error = found
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
        self._backend.close()

    def __len__(self) -> int:
        return len(self._memory)

    def _put(self, kind: Write, params: tuple[Any, ...]) -> None:
        if not self._closed:
            self._writes.put((kind, params))

    def _select(self, by_key: bool, params: tuple[str, ...]) -> Invocation | None:
        found = self._backend.select(by_key, params)
        return invocation(found) if found is not None else None

    def _write(self) -> None:
        """The writer thread: commit queued writes in batches, then run their callbacks on the
        loop; prune expired rows now and then. Stops at the ``None`` `close` queues.

        Writes a failed commit leaves are kept, with those queued since, for the next attempt.
        """
        pending: list[tuple[Write, Any]] = []
        retry = _Retry()
        pruned = 0.0
        running = True
        busy = False
        try:
            while running:
                batch = self._take(retry.wait() if self.failure else _PRUNE_EVERY, linger=busy)
                busy = len(batch) >= _BUSY_ROWS
                running = None not in batch
                pending.extend(item for item in batch if item is not None)
                if self.failure and running and not retry.due():
                    continue
                prune = time.monotonic() - pruned >= _PRUNE_EVERY
                started = time.perf_counter()
                try:
                    self._commit(pending, prune)
                except Exception as exc:  # whatever it is, the writer keeps going
                    self._failed(exc, pending, retry, closing=not running)
                    continue
                self._observe_commit(
                    time.perf_counter() - started,
                    sum(kind is not Write.NOTIFY for kind, _ in pending),
                )
                if prune:
                    pruned = time.monotonic()
                self._committed(pending)
                pending = []
        finally:
            self._backend.close_writer()

    def _take(self, timeout: float, *, linger: bool) -> list[tuple[Write, Any] | None]:
        """The next writes: the first within ``timeout`` seconds, then all queued (bounded).

        Under load (``linger``: the last batch was big) a batch that is not full waits once,
        `_LINGER` seconds, for more: an invocation that starts and finishes within one batch is
        one row written, not an insert and an update, which about halves the journal's work
        per invocation. An idle journal commits at once.
        """
        try:
            batch = [self._writes.get(timeout=timeout)]
        except queue.Empty:
            return []
        for wait in (linger, False):  # bounded: one linger at most
            while len(batch) < _BATCH_ROWS and not self._writes.empty():
                batch.append(self._writes.get_nowait())
            if not wait or len(batch) >= _BATCH_ROWS or None in batch:
                break
            time.sleep(_LINGER)
        return batch

    def _commit(self, writes: list[tuple[Write, Any]], prune: bool) -> None:
        inserts, updates = coalesce(writes)
        batches: Batch = [(Write.INSERT, inserts), (Write.UPDATE, updates)]
        batches += [
            (kind, [params for _, params in group])
            for kind, group in itertools.groupby(
                (write for write in writes if write[0] in IN_ORDER), key=lambda write: write[0]
            )
        ]
        cutoff = int(time.time() * 1000) - self._retention_ms if prune else None
        try:
            self._backend.commit(batches, cutoff, each=False)
        except self._backend.unstorable:  # find the changes it cannot store; commit the others
            self._backend.commit(batches, cutoff, each=True)

    def _failed(
        self, exc: Exception, writes: list[tuple[Write, Any]], retry: _Retry, *, closing: bool
    ) -> None:
        """A commit failed: keep the writes, tell who waits on them, retry after a pause."""
        reason = f"{type(exc).__name__}: {exc}"
        where = self._backend.where
        if closing:
            _log.error(
                "%s could not commit %d changes before closing (%s); invocations without a "
                "journaled outcome run again after a restart",
                where,
                len(writes),
                reason,
            )
            return
        if self.failure is None:
            _log.error(
                "%s cannot commit (%s): new invocations are refused with UNAVAILABLE until it "
                "can; retrying",
                where,
                reason,
            )
        retry.schedule(first=self.failure is None)
        self.failure = reason
        failed = [notice.fail() for kind, notice in writes if kind is Write.NOTIFY]
        self._on_loop([callback for callback in failed if callback is not None], reason)

    def _committed(self, writes: list[tuple[Write, Any]]) -> None:
        if self.failure is not None:
            _log.warning("%s commits again; new invocations are accepted", self._backend.where)
            self.failure = None
        self._on_loop([notice.saved for kind, notice in writes if kind is Write.NOTIFY])

    def _on_loop(self, callbacks: list[Callable[..., None]], *args: Any) -> None:
        if callbacks and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed without closing us
                self._loop.call_soon_threadsafe(_run_all, callbacks, args)


def dropped(kind: Write, params: tuple[Any, ...], exc: BaseException) -> None:
    """Log a change a backend cannot store (committing row by row, it skips it)."""
    invocation_id = params[0] if kind in (Write.INSERT, Write.ENTRY) else params[-1]
    _log.error("the journal dropped a change of invocation %s: %s", invocation_id, exc)


class _JournalRows:
    """A workflow journal's changes, queued as rows for the store's writer (a `JournalWriter`)."""

    __slots__ = ("_invocation_id", "_store")

    def __init__(self, store: JournaledStore, invocation_id: str) -> None:
        self._store = store
        self._invocation_id = invocation_id

    def entry(self, entry: Entry) -> None:
        self._store._put(Write.ENTRY, (
            self._invocation_id, entry.seq, entry.kind, entry.name, entry.state, entry.output,
            orjson.dumps(entry.error) if entry.error is not None else None, entry.attempt,
            entry.started_unix_ms, entry.finished_unix_ms, entry.duration_us, entry.child_id,
            entry.fire_unix_ms, entry.timeout_unix_ms,
        ))  # fmt: skip

    def signal_kept(self, signal: BufferedSignal) -> None:
        self._store._put(Write.KEEP_SIGNAL, signal_row(self._invocation_id, signal))

    def signal_taken(self, signal: BufferedSignal) -> None:
        self._store._put(Write.TAKE_SIGNAL, (signal.id,))


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


def signal_row(invocation_id: str, signal: BufferedSignal) -> tuple[Any, ...]:
    """A kept signal's row: id, invocation id, name, payload, when it was kept (ms)."""
    return (signal.id, invocation_id, signal.name, signal.payload, _now_ms())


def _run_all(callbacks: list[Callable[..., None]], args: tuple[Any, ...]) -> None:
    for callback in callbacks:
        callback(*args)


def coalesce(
    writes: list[tuple[Write, Any]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """One write per invocation for a batch: rows to insert and changes to apply.

    An invocation inserted and changed within the batch is inserted once, in its final state;
    of several changes to one invocation only the last is kept (each carries every column it
    changes).
    """
    inserts: dict[str, tuple[Any, ...]] = {}
    updates: dict[str, tuple[Any, ...]] = {}
    for kind, params in writes:
        if kind is Write.INSERT:
            inserts[params[0]] = params
            updates.pop(params[0], None)
        elif kind is Write.UPDATE:
            invocation_id = params[-1]
            found = inserts.get(invocation_id)
            if found is None:
                updates[invocation_id] = params
            else:
                inserts[invocation_id] = (*found[:CHANGED], *params[:-1])
    return list(inserts.values()), list(updates.values())


def group_journals(
    entry_rows: list[tuple[Any, ...]], signal_rows: list[tuple[Any, ...]]
) -> dict[str, Kept]:
    """Entries (seq order) and kept signals ((invocation_id, id, name, payload), id order) by
    invocation."""
    journals: dict[str, Kept] = {}
    for found in entry_rows:
        journals.setdefault(found[0], ([], []))[0].append(entry(found))
    for invocation_id, *signal in signal_rows:
        journals.setdefault(invocation_id, ([], []))[1].append(BufferedSignal(*signal))
    return journals


def entry(found: tuple[Any, ...]) -> Entry:
    (_invocation_id, seq, kind, name, state, output, error, *rest) = found
    return Entry(seq, kind, name, state, output, orjson.loads(error) if error else None, *rest)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _error(invocation: Invocation) -> bytes | None:
    return orjson.dumps(invocation.error) if invocation.error is not None else None


@functools.lru_cache(maxsize=256)
def _policy_json(policy: RetryPolicy) -> bytes:
    return orjson.dumps(dataclasses.asdict(policy))  # few distinct policies: one per function


def row(invocation: Invocation) -> tuple[Any, ...]:
    """An invocation's row, in `COLUMNS` order."""
    return (
        invocation.id, invocation.service, invocation.function, invocation.input,
        orjson.dumps(invocation.metadata), _policy_json(invocation.policy),
        invocation.idempotency_key, invocation.deadline_unix_ms, invocation.created_unix_ms,
        invocation.updated_unix_ms or invocation.created_unix_ms, invocation.state.value,
        invocation.attempt, invocation.worker_id, invocation.output, _error(invocation),
        invocation.duration_us,
    )  # fmt: skip


def changes(invocation: Invocation) -> tuple[Any, ...]:
    """The columns an update sets, then the id."""
    return (
        invocation.updated_unix_ms, invocation.state.value, invocation.attempt,
        invocation.worker_id, invocation.output, _error(invocation), invocation.duration_us,
        invocation.id,
    )  # fmt: skip


def invocation(found: tuple[Any, ...]) -> Invocation:
    """The invocation a row holds."""
    (id_, service, function, input_, metadata, policy, key, deadline, created, updated,
     state, attempt, worker_id, output, error, duration_us) = found  # fmt: skip
    return Invocation(
        id=id_,
        service=service,
        function=function,
        input=bytes(input_),
        metadata=orjson.loads(metadata),
        policy=RetryPolicy(**orjson.loads(policy)),
        idempotency_key=key,
        deadline_unix_ms=deadline,
        created_unix_ms=created,
        state=InvocationState(state),
        attempt=attempt,
        worker_id=worker_id,
        output=bytes(output) if output is not None else None,
        error=orjson.loads(error) if error is not None else None,
        duration_us=duration_us,
        updated_unix_ms=updated,
    )


def listing_filters(
    query: InvocationQuery, mark: Callable[[int], str] = lambda number: "?"
) -> tuple[list[str], list[Any]]:
    """The conditions and parameters of a listing's walk down an index: its one service,
    where its page starts and its creation range (the other filters are checked on the rows,
    see `page_of`). ``mark(n)`` writes the n-th parameter's placeholder."""
    where: list[str] = []
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return mark(len(params))

    if query.service is not None:
        where.append(f"service = {param(query.service)}")
    if query.after is not None:
        created, after_id = query.after
        where.append(f"(created_unix_ms, id) < ({param(created)}, {param(after_id)})")
    if query.created_before_unix_ms:
        where.append(f"created_unix_ms < {param(query.created_before_unix_ms)}")
    if query.created_after_unix_ms:
        where.append(f"created_unix_ms >= {param(query.created_after_unix_ms)}")
    return where, params


COLUMNS = (
    "id, service, function, input, metadata, policy, idempotency_key, deadline_unix_ms, "
    "created_unix_ms, updated_unix_ms, state, attempt, worker_id, output, error, duration_us"
)
LISTED = (
    "id, service, function, state, attempt, created_unix_ms, updated_unix_ms, duration_us, error"
)
ENTRY_COLUMNS = (
    "invocation_id, seq, kind, name, state, output, error, attempt, started_unix_ms, "
    "finished_unix_ms, duration_us, child_id, fire_unix_ms, timeout_unix_ms"
)
DEFAULT_RETENTION = config.RETENTION
