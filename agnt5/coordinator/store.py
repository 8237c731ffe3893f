"""Invocation records and the store that keeps them (`MemoryStore`; `journal.SqliteStore` persists)."""

from __future__ import annotations

import dataclasses
import enum
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from agnt5 import config
from agnt5.workflows.journal import Entry, Journal, JournalWriter

__all__ = [
    "Invocation",
    "InvocationState",
    "MemoryStore",
    "RetryPolicy",
    "StateStore",
    "visible_state",
]


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

    @property
    def finished(self) -> bool:
        return self.state in (InvocationState.SUCCEEDED, InvocationState.FAILED)


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

    def add(self, invocation: Invocation) -> None:
        self._by_id[invocation.id] = invocation
        if invocation.idempotency_key:
            self._by_key[_key(invocation)] = invocation

    def get(self, invocation_id: str) -> Invocation | None:
        return self._by_id.get(invocation_id)

    def find(self, service: str, function: str, idempotency_key: str) -> Invocation | None:
        return self._by_key.get((service, function, idempotency_key))

    def save(self, invocation: Invocation) -> None:
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
