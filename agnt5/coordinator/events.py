"""Live changes for watchers (the console's server-sent events): invocations as they change
state, and a note when the services' workers changed.

Publishing never waits and costs nothing without watchers. Each `Watcher` keeps the
invocations changed since it last read, one entry per invocation (its newest state is read when
it is sent), at most ``buffer`` of them: a watcher that falls further behind (a slow or stalled
client) is told to start over (`Changes.reset`) rather than slowing the coordinator or holding
more memory.

`event_stream` writes a watcher's changes as server-sent events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple

import orjson

from agnt5.coordinator.store import Invocation
from agnt5.errors import ResourceExhaustedError

__all__ = ["Changes", "EventFeed", "Watcher", "event_stream"]

DEFAULT_WATCHERS = 64
DEFAULT_BUFFER = 1000
KEEP_ALIVE = 15.0  # seconds between comments on an idle event stream
SERVICES_EVERY = 2.0  # seconds between looks at the services' view (workers' load changes)


class Changes(NamedTuple):
    """What changed since a watcher last read."""

    invocations: list[Invocation]
    services: bool
    """Workers joined or left since."""
    reset: bool
    """The watcher fell behind and lost changes: it should read the state afresh."""

    def __bool__(self) -> bool:
        return bool(self.invocations or self.services or self.reset)


class Watcher:
    """One watcher's changes, for the services ``allows`` lets it see."""

    def __init__(self, allows: Callable[[str], bool], buffer: int) -> None:
        self._allows = allows
        self._buffer = buffer
        self._changed: dict[str, Invocation] = {}
        self._services = False
        self._reset = False
        self._wake = asyncio.Event()
        self.closed = False

    def offer(self, invocation: Invocation) -> None:
        if self._reset or not self._allows(invocation.service):
            return
        if len(self._changed) >= self._buffer and invocation.id not in self._changed:
            self._changed.clear()  # behind by more than the buffer: start over
            self._reset = True
        else:
            self._changed[invocation.id] = invocation
        self._wake.set()

    def services_changed(self) -> None:
        self._services = True
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def next(self, timeout: float) -> Changes:
        """The changes since the last call, once there are some or ``timeout`` seconds passed
        (then none); none either once `closed`."""
        if not (self._changed or self._services or self._reset or self.closed):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
        self._wake.clear()
        changes = Changes(list(self._changed.values()), self._services, self._reset)
        self._changed = {}
        self._services = self._reset = False
        return changes


class EventFeed:
    """The coordinator's watchers: at most ``max_watchers`` at once, each buffering at most
    ``buffer`` changed invocations."""

    def __init__(self, max_watchers: int = DEFAULT_WATCHERS, buffer: int = DEFAULT_BUFFER) -> None:
        if max_watchers < 1 or buffer < 1:
            raise ValueError(
                f"need max_watchers >= 1 and buffer >= 1, got {max_watchers}, {buffer}"
            )
        self._max_watchers = max_watchers
        self._buffer = buffer
        self._watchers: list[Watcher] = []
        self._closed = False

    def __len__(self) -> int:
        return len(self._watchers)

    def changed(self, invocation: Invocation) -> None:
        """``invocation`` changed state (called by the scheduler; never waits)."""
        for watcher in self._watchers:
            watcher.offer(invocation)

    def services_changed(self) -> None:
        """A worker joined or left."""
        for watcher in self._watchers:
            watcher.services_changed()

    def watch(self, allows: Callable[[str], bool]) -> Watcher:
        """A new watcher of the services ``allows`` lets it see; `unwatch` it when done.
        `ResourceExhaustedError` when ``max_watchers`` are watching already."""
        if self._closed:
            watcher = Watcher(allows, self._buffer)
            watcher.close()
            return watcher
        if len(self._watchers) >= self._max_watchers:
            raise ResourceExhaustedError(
                f"{self._max_watchers} clients are watching already: close one and retry"
            )
        watcher = Watcher(allows, self._buffer)
        self._watchers.append(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        with contextlib.suppress(ValueError):
            self._watchers.remove(watcher)
        watcher.close()

    def close(self) -> None:
        """End every watch (the coordinator stops); later ones end at once."""
        self._closed = True
        for watcher in self._watchers:
            watcher.close()
        self._watchers.clear()


def _event(kind: bytes, data: bytes) -> bytes:
    """One server-sent event (orjson writes no newline: one data line)."""
    return b"event: %s\ndata: %s\n\n" % (kind, data)


async def event_stream(
    feed: EventFeed,
    watcher: Watcher,
    invocation_view: Callable[[Invocation], Any],
    services_view: Callable[[], Any],
) -> AsyncIterator[bytes]:
    """``watcher``'s changes as server-sent events, until it is closed (the coordinator
    stops) or the stream is (the client left), then it is unwatched.

    ``services`` (``services_view()``) first, and again when it changed (looked at when workers
    join or leave and every `SERVICES_EVERY` seconds); ``invocation`` (``invocation_view``) for
    each changed invocation; ``reset`` when the watcher fell behind; a comment every
    `KEEP_ALIVE` seconds of silence.
    """
    try:
        sent = orjson.dumps(services_view())
        yield b"retry: 2000\n" + _event(b"services", sent)
        looked = quiet_since = time.monotonic()
        while not watcher.closed:  # one batch of changes a turn
            changes = await watcher.next(min(SERVICES_EVERY, KEEP_ALIVE))
            chunks = [_event(b"reset", b"{}")] if changes.reset else []
            chunks += [
                _event(b"invocation", orjson.dumps(invocation_view(invocation)))
                for invocation in changes.invocations
            ]
            now = time.monotonic()
            if changes.services or now - looked >= SERVICES_EVERY:
                looked = now
                view = orjson.dumps(services_view())
                if view != sent:
                    sent = view
                    chunks.append(_event(b"services", view))
            if not chunks and now - quiet_since >= KEEP_ALIVE:
                chunks.append(b": keep-alive\n\n")
            if chunks:
                quiet_since = now
                yield b"".join(chunks)
    finally:
        feed.unwatch(watcher)
