"""Invocation records and the store that keeps them (`MemoryStore`; `journal.SqliteStore` persists)."""

from __future__ import annotations

import bisect
import dataclasses
import enum
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

from agnt5 import config
from agnt5.workflows.journal import Entry, Journal, JournalWriter

__all__ = [
    "PAGE_SCAN",
    "Invocation",
    "InvocationPage",
    "InvocationQuery",
    "InvocationState",
    "Listed",
    "MemoryStore",
    "RetryPolicy",
    "StateStore",
    "visible_state",
]

PAGE_SCAN = 2000
"""Most invocations one page of a filtered listing looks at (so no listing scans them all)."""


class InvocationState(enum.Enum):
    """Where an invocation is in its life (mirrors ``agnt5.v1.InvocationState``)."""

    PENDING = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    SUSPENDED = 5


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How many more attempts a retryable failure gets, and the backoff between them (seconds)."""

    retries: int = 3
    initial: float = 1.0
    multiplier: float = 2.0
    maximum: float = 60.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        try:
            return min(self.maximum, self.initial * self.multiplier ** max(0, retry - 1))
        except OverflowError:  # a huge multiplier: the maximum long before this
            return self.maximum


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclasses.dataclass(eq=False)
class Invocation:
    """One invocation: what to run, its current attempt and, once finished, its outcome."""

    id: str
    service: str
    function: str
    input: bytes
    metadata: dict[str, str]
    policy: RetryPolicy
    idempotency_key: str = ""
    deadline_unix_ms: int = 0
    created_unix_ms: int = dataclasses.field(default_factory=_now_ms)
    state: InvocationState = InvocationState.PENDING
    attempt: int = 1
    worker_id: str = ""
    output: bytes | None = None
    error: dict[str, Any] | None = None
    duration_us: int = 0
    updated_unix_ms: int = 0
    """When the store last saved a change of state (0: not yet)."""

    @property
    def finished(self) -> bool:
        return self.state in (InvocationState.SUCCEEDED, InvocationState.FAILED)

    @property
    def key(self) -> tuple[int, str]:
        """Where it is in a listing: newest first by creation time, then by id."""
        return (self.created_unix_ms, self.id)

    def listed(self) -> Listed:
        """Its row in a listing."""
        return Listed(
            self.id,
            self.service,
            self.function,
            self.state,
            self.attempt,
            self.created_unix_ms,
            self.updated_unix_ms or self.created_unix_ms,
            self.duration_us,
            self.error["code"] if self.error else "",
        )


class Listed(NamedTuple):
    """An invocation as a listing shows it (no input or output)."""

    id: str
    service: str
    function: str
    state: InvocationState
    attempt: int
    created_unix_ms: int
    updated_unix_ms: int
    duration_us: int
    error_code: str


@dataclasses.dataclass(frozen=True)
class InvocationQuery:
    """Which invocations a listing wants (every filter given must hold) and where its page
    starts: after ``after``, the `Invocation.key` of the last one the previous page saw."""

    services: frozenset[str] | None = None
    """Only these services (None: any)."""
    function: str = ""
    states: frozenset[InvocationState] = frozenset()
    created_after_unix_ms: int = 0
    created_before_unix_ms: int = 0
    limit: int = 50
    after: tuple[int, str] | None = None

    @property
    def service(self) -> str | None:
        """The one service asked for, if it is one."""
        return next(iter(self.services)) if self.services and len(self.services) == 1 else None

    @property
    def filtered(self) -> bool:
        """Whether rows in the creation range may still not match (function, states, several
        services): then a page looks at up to `PAGE_SCAN` of them."""
        return bool(self.function or self.states) or (
            self.services is not None and self.service is None
        )

    def matches(self, row: Listed) -> bool:
        return (
            (self.services is None or row.service in self.services)
            and (not self.function or row.function == self.function)
            and (not self.states or row.state in self.states)
        )


class InvocationPage(NamedTuple):
    """One page of a listing, newest first, and where the next starts (None: the end)."""

    invocations: list[Listed]
    next_after: tuple[int, str] | None


def page_of(
    query: InvocationQuery, newest_first: Iterable[tuple[tuple[int, str], Listed | None]]
) -> InvocationPage:
    """The page of ``query`` from candidates newest first (keys in its range, with their row,
    None for one gone meanwhile): up to ``limit`` matches among at most `PAGE_SCAN`."""
    found: list[Listed] = []
    seen = 0
    last: tuple[int, str] | None = None
    for key, row in newest_first:
        if len(found) == query.limit or seen == PAGE_SCAN:
            return InvocationPage(found, last)
        seen += 1
        last = key
        if row is not None and query.matches(row):
            found.append(row)
    return InvocationPage(found, None)


def visible_state(invocation: Invocation, settled: bool) -> InvocationState:
    """The state clients see: a finished invocation whose outcome is not saved yet runs on."""
    return invocation.state if settled or not invocation.finished else InvocationState.RUNNING


class StateStore(Protocol):
    """Where the coordinator keeps invocations. `save` is called after every state change."""

    failure: str | None
    """Why the store cannot commit changes right now (None while it can)."""
    durable: bool
    """Whether what it keeps outlives the coordinator (clients then retry across a restart)."""

    def add(self, invocation: Invocation) -> None: ...

    def get(self, invocation_id: str) -> Invocation | None: ...

    def find(self, service: str, function: str, idempotency_key: str) -> Invocation | None: ...

    def save(self, invocation: Invocation) -> None: ...

    def when_saved(
        self, callback: Callable[[], None], on_failure: Callable[[str], None] | None = None
    ) -> None:
        """Call ``callback()`` on the event loop once every change saved so far is durable.

        Never before: while the store cannot commit, the callback waits (and runs once the
        changes commit after all); ``on_failure(reason)`` is called, once, when an attempt to
        commit them fails.
        """
        ...

    def unfinished(self) -> list[Invocation]:
        """Invocations left unfinished by an earlier coordinator, to run again (once)."""
        ...

    def list(self, query: InvocationQuery) -> InvocationPage:
        """A page of the invocations it keeps that ``query`` matches, newest first; looks at
        no more than the page needs (at most `PAGE_SCAN` when ``query`` is `filtered`)."""
        ...

    def journal(self, invocation_id: str, *, create: bool = True) -> Journal | None:
        """The live journal of a workflow invocation (None without one, unless ``create``):
        its changes are kept with the invocation's, in order."""
        ...

    def steps(self, invocation_id: str) -> list[Entry]:
        """A workflow invocation's journal entries in seq order, also once it finished."""
        ...

    def next_signal_id(self) -> int:
        """A signal id not used before by this store."""
        ...

    def observe_commits(self, observer: Callable[[float, int], None]) -> None:
        """Call ``observer(seconds, changes)`` after each commit to durable storage (a store
        that commits nothing never calls it)."""
        ...

    def close(self) -> None:
        """Stop recording: changes after this are not kept."""
        ...


class MemoryStore:
    """A `StateStore` in process memory (lost on restart); keeps the newest finished results
    (see `save`)."""

    failure: str | None = None
    durable = False

    def __init__(
        self,
        max_finished: int = 100_000,
        max_finished_bytes: int = config.RESULT_CACHE_BYTES,
        *,
        journal_writer: Callable[[str], JournalWriter] | None = None,
        first_signal_id: int = 1,
    ) -> None:
        if max_finished < 1 or max_finished_bytes < 0:
            raise ValueError(
                f"need max_finished >= 1 and max_finished_bytes >= 0, got {max_finished!r} "
                f"and {max_finished_bytes!r}"
            )
        self._max_finished = max_finished
        self._max_finished_bytes = max_finished_bytes
        self._journal_writer = journal_writer  # a store that persists journals gives one
        self._journals: dict[str, Journal] = {}
        self._signal_ids = itertools.count(first_signal_id)
        self._by_id: dict[str, Invocation] = {}
        self._by_key: dict[tuple[str, str, str], Invocation] = {}
        self._finished: OrderedDict[str, int] = OrderedDict()  # id -> bytes held
        self._finished_bytes = 0
        self._timeline: list[tuple[int, str]] = []  # every key added, sorted; forgotten ones too

    def add(self, invocation: Invocation) -> None:
        self._by_id[invocation.id] = invocation
        if invocation.idempotency_key:
            self._by_key[_key(invocation)] = invocation
        timeline = self._timeline
        if timeline and invocation.key < timeline[-1]:  # a clock that went back
            bisect.insort(timeline, invocation.key)
        else:
            timeline.append(invocation.key)
        if len(timeline) > 2 * len(self._by_id) + 1024:  # drop forgotten keys, now and then
            self._timeline = [key for key in timeline if key[1] in self._by_id]

    def get(self, invocation_id: str) -> Invocation | None:
        return self._by_id.get(invocation_id)

    def find(self, service: str, function: str, idempotency_key: str) -> Invocation | None:
        return self._by_key.get((service, function, idempotency_key))

    def save(self, invocation: Invocation) -> None:
        """Note when it changed, and `keep` it."""
        invocation.updated_unix_ms = _now_ms()
        self.keep(invocation)

    def keep(self, invocation: Invocation) -> None:
        """Keep the newest finished invocations within ``max_finished`` and
        ``max_finished_bytes`` (input, output and a workflow's journal); forget the oldest
        beyond them."""
        if not invocation.finished or invocation.id in self._finished:
            return
        journal = self._journals.get(invocation.id)
        size = (
            len(invocation.input) + len(invocation.output or b"") + (journal.size if journal else 0)
        )
        self._finished[invocation.id] = size
        self._finished_bytes += size
        while (  # bounded: each turn forgets one
            len(self._finished) > self._max_finished
            or self._finished_bytes > self._max_finished_bytes
        ):
            oldest_id, oldest_size = self._finished.popitem(last=False)
            self._finished_bytes -= oldest_size
            oldest = self._by_id.pop(oldest_id)
            self._journals.pop(oldest_id, None)
            if oldest.idempotency_key:
                self._by_key.pop(_key(oldest), None)

    def when_saved(
        self, callback: Callable[[], None], on_failure: Callable[[str], None] | None = None
    ) -> None:
        callback()

    def unfinished(self) -> list[Invocation]:
        return []

    def list(self, query: InvocationQuery) -> InvocationPage:
        timeline = self._timeline
        end = len(timeline)
        if query.after is not None:
            end = bisect.bisect_left(timeline, query.after)
        if query.created_before_unix_ms:
            end = min(end, bisect.bisect_left(timeline, (query.created_before_unix_ms, "")))
        return page_of(query, self._newest_first(end, query.created_after_unix_ms))

    def _newest_first(
        self, end: int, created_after: int
    ) -> Iterable[tuple[tuple[int, str], Listed | None]]:
        """The keys before ``end`` down to ``created_after``, with their rows (None: forgotten)."""
        for index in range(end - 1, -1, -1):  # bounded: page_of stops early
            key = self._timeline[index]
            if key[0] < created_after:
                return
            invocation = self._by_id.get(key[1])
            yield key, None if invocation is None else invocation.listed()

    def journal(self, invocation_id: str, *, create: bool = True) -> Journal | None:
        journal = self._journals.get(invocation_id)
        if journal is None and create:
            writer = None if self._journal_writer is None else self._journal_writer(invocation_id)
            journal = self._journals[invocation_id] = Journal(writer=writer)
        return journal

    def load_journal(self, invocation_id: str, journal: Journal) -> None:
        """Hold ``journal`` (read back from a database) for ``invocation_id``."""
        self._journals[invocation_id] = journal

    def steps(self, invocation_id: str) -> list[Entry]:
        journal = self._journals.get(invocation_id)
        return journal.ordered() if journal is not None else []

    def next_signal_id(self) -> int:
        return next(self._signal_ids)

    def observe_commits(self, observer: Callable[[float, int], None]) -> None:
        """Nothing is committed: the observer is never called."""

    def close(self) -> None:
        """Nothing to release: memory is the store."""

    def __len__(self) -> int:
        return len(self._by_id)


def _key(invocation: Invocation) -> tuple[str, str, str]:
    return (invocation.service, invocation.function, invocation.idempotency_key)
