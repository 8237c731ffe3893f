"""The dev coordinator: routes invocations from clients to workers, journaled or in memory.

Delivery guarantee, with a journal (``agnt5 coordinator --data-dir DIR``, a `SqliteStore`; or
``--database postgresql://...``, an `agnt5.coordinator.postgres.PostgresStore` that several
coordinators share, each running the work it holds a lease on):

- **At-least-once execution.** An invocation the coordinator accepted runs until it has an
  outcome: a lost worker's attempts are delivered again at once, and after a coordinator
  restart every journaled invocation without an outcome is queued again and delivered when a
  worker of its service registers (``attempt + 1`` for one that was running); for 30 s after
  a start, a call to a service no worker has registered yet is ``UNAVAILABLE`` (clients retry
  it) rather than ``NOT_FOUND``, while the workers reconnect. A handler may
  therefore run more than once for one invocation (compare ``ctx.attempt``); make side
  effects idempotent.
- **Exactly one result per idempotency key.** The first outcome recorded for an invocation is
  final; later results of other attempts are ignored. A client that retries with the same
  idempotency key (``Client``/``AsyncClient`` do so by themselves on ``UNAVAILABLE``, with a
  generated key when none is given) is answered from the same invocation, so it sees exactly
  one result, for as long as finished results are retained (``--retention``).
- **Accepted means journaled.** A client gets an invocation id, or an outcome, only once it
  is committed to the journal, so an id a client holds survives a killed coordinator.
  Committed rows survive a killed process (WAL, ``synchronous=NORMAL``), not necessarily a
  power loss.
- **A failing disk.** While the journal cannot commit (full, read-only or failing disk), new
  invocations are refused with ``UNAVAILABLE`` (retryable), outcomes that finish meanwhile are
  shown as still running, and what needs no disk (results already committed, listing
  services, running work) goes on. The coordinator retries the commit every second or sooner
  and accepts work again as soon as it succeeds. An invocation refused this way while its
  submit was being committed may still run once the disk is back: retry with the same
  idempotency key to get its one result.

Without a journal (``--in-memory``, the embedded `Coordinator` default) everything is lost when
the coordinator stops.
"""

from __future__ import annotations

from agnt5.coordinator.journal import JournalError, SqliteStore
from agnt5.coordinator.server import DEFAULT_MAX_INPUT_BYTES, Coordinator
from agnt5.coordinator.store import MemoryStore, StateStore

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "Coordinator",
    "JournalError",
    "MemoryStore",
    "SqliteStore",
    "StateStore",
]
