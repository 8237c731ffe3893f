"""Adaptive batching of a stream's outgoing items: at once when idle, coalesced under load.

`Batcher` turns a queue of items into frames. Consecutive batchable items (records) become one
list, bounded by count and bytes; any other item (a control message) is a frame of its own, in
queue order. A stream with several kinds of records batches them together; `by_kind` splits
such a frame into one batch per kind for the writer. After a frame of one (idle), the next item goes out as soon as it is queued. After
a frame of several (load), a frame that is not full once the queue is drained waits once,
``max_hold`` seconds, for more (what arrives meanwhile joins it), so no item waits longer than
that for company.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_BYTES", "MAX_HOLD", "MAX_ITEMS", "Batcher", "by_kind"]

MAX_ITEMS = 64
MAX_BYTES = 4 * 1024 * 1024
MAX_HOLD = 0.001


class Batcher:
    """Frames from ``queue``: a list of ``batched`` items (of one type, or of any of a tuple of
    types), or one item of any other type."""

    def __init__(
        self,
        queue: asyncio.Queue[Any],
        batched: type | tuple[type, ...],
        size_of: Callable[[Any], int],
        *,
        max_items: int = MAX_ITEMS,
        max_bytes: int = MAX_BYTES,
        max_hold: float = MAX_HOLD,
    ) -> None:
        if max_items < 1 or max_bytes < 1 or max_hold < 0:
            raise ValueError("need max_items >= 1, max_bytes >= 1 and max_hold >= 0")
        self._queue = queue
        self._batched = batched
        self._size_of = size_of
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._max_hold = max_hold
        self._held: Any = None
        self._busy = False

    async def next(self) -> Any:
        """The next frame (waits for the first item); its items are taken off the queue."""
        first = self._held if self._held is not None else await self._queue.get()
        self._held = None
        if not isinstance(first, self._batched):
            return first
        queue, batched = self._queue, self._batched
        batch = [first]
        size = self._size_of(first)
        lingered = not self._busy
        while len(batch) < self._max_items and size < self._max_bytes:  # bounded by both limits
            if queue.empty():
                if lingered:
                    break
                lingered = True
                await asyncio.sleep(self._max_hold)
                continue
            item = queue.get_nowait()
            if not isinstance(item, batched):
                self._held = item
                break
            batch.append(item)
            size += self._size_of(item)
        self._busy = len(batch) > 1
        return batch


def by_kind(frame: list[Any], kinds: tuple[type, ...]) -> list[list[Any]]:
    """A frame of several kinds of records as one list per kind present, in ``kinds`` order
    (each keeping its records' order): what goes first must be listed first."""
    first = type(frame[0])
    if all(type(item) is first for item in frame):
        return [frame]
    groups: dict[type, list[Any]] = {kind: [] for kind in kinds}
    for item in frame:
        groups[type(item)].append(item)
    return [group for group in groups.values() if group]
