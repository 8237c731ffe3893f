"""The dev coordinator: routes invocations from clients to workers, journaled or in memory.

Delivery guarantee, with a journal (``agnt5 coordinator --data-dir DIR``, a `SqliteStore`):

- **At-least-once execution.** An invocation the coordinator accepted runs until it has an
  outcome: a lost worker's attempts are delivered again at once, and after a coordinator
  restart every journaled invocation without an outcome is queued again and delivered when a
  worker of its service registers (``attempt + 1`` for one that was running). A handler may
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

Without a journal (``--in-memory``, the embedded `Coordinator` default) everything is lost when
the coordinator stops.
"""

from __future__ import annotations

from agnt5.coordinator.journal import SqliteStore
from agnt5.coordinator.server import DEFAULT_MAX_INPUT_BYTES, Coordinator
from agnt5.coordinator.store import MemoryStore, StateStore

__all__ = ["DEFAULT_MAX_INPUT_BYTES", "Coordinator", "MemoryStore", "SqliteStore", "StateStore"]
