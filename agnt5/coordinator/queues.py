"""Invocations waiting for a worker, per service, within count and byte limits, with expiry."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Callable

from agnt5 import config
from agnt5.coordinator.store import Invocation
from agnt5.errors import ResourceExhaustedError

__all__ = ["QueueLimits", "Queues"]


@dataclasses.dataclass(frozen=True)
class QueueLimits:
    """How much may wait for workers: invocations and input bytes, in all and per service
    (by default half of each, so one service cannot fill the queue for all), and how long one
    may wait (None: no limit)."""

    max_queue: int = config.MAX_QUEUE
    max_queued_bytes: int = config.MAX_QUEUED_BYTES
    max_queue_per_service: int | None = None
    max_queued_bytes_per_service: int | None = None
    queue_expiry: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_queue", "max_queued_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("max_queue_per_service", "max_queued_bytes_per_service"):
            value = getattr(self, name)
            if value is None:
                total = getattr(self, name.removesuffix("_per_service"))
                object.__setattr__(self, name, (total + 1) // 2)
            elif value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if self.queue_expiry is not None and not 0 < self.queue_expiry < float("inf"):
            raise ValueError(f"queue_expiry must be > 0 seconds, got {self.queue_expiry!r}")


class _Queue:
    """One service's waiting invocations and their input bytes."""

    __slots__ = ("bytes", "items")

    def __init__(self) -> None:
        self.items: deque[Invocation] = deque()
        self.bytes = 0


class Queues:
    """The waiting invocations of every service. `admit` checks the limits for a new one;
    `push` never refuses (work already accepted comes back here on retry or restart). With a
    ``queue_expiry``, an invocation waiting that long is taken out and given to ``expired``."""

    def __init__(self, limits: QueueLimits, expired: Callable[[Invocation], None]) -> None:
        self.limits = limits
        self._expired = expired
        self._queues: dict[str, _Queue] = {}
        self._count = 0
        self._bytes = 0
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._since: dict[str, float] = {}  # invocation id -> when it (re)entered (monotonic)

    def __len__(self) -> int:
        return self._count

    def count(self, service: str) -> int:
        """Invocations of ``service`` waiting."""
        queue = self._queues.get(service)
        return len(queue.items) if queue is not None else 0

    def services(self) -> list[str]:
        """The services with invocations waiting."""
        return list(self._queues)

    def bytes(self, service: str) -> int:
        """Input bytes of ``service``'s waiting invocations."""
        queue = self._queues.get(service)
        return queue.bytes if queue is not None else 0

    def oldest_wait(self, service: str) -> float | None:
        """Seconds the longest-waiting invocation of ``service`` has waited (None: none waits)."""
        queue = self._queues.get(service)
        now = time.monotonic()
        waiting = list(queue.items) if queue is not None else []  # a copy: metric readers may
        since = [self._since.get(invocation.id, now) for invocation in waiting]  # run on a thread
        return now - min(since) if since else None

    def admit(self, service: str, size: int) -> None:
        """Raise `ResourceExhaustedError` naming the limit a new invocation of ``service`` with
        ``size`` bytes of input would pass."""
        limits = self.limits
        queue = self._queues.get(service) or _Queue()
        if self._count >= limits.max_queue:
            raise _full(
                f"{self._count} invocations wait for workers", "--max-queue", limits.max_queue
            )
        if len(queue.items) >= limits.max_queue_per_service:  # type: ignore[operator]
            raise _full(
                f"{len(queue.items)} invocations of service {service!r} wait for workers",
                "--max-queue-per-service",
                limits.max_queue_per_service,
            )
        if self._bytes + size > limits.max_queued_bytes:
            raise _full(
                f"{self._bytes} bytes of input wait for workers and this input has {size}",
                "--max-queued-bytes",
                limits.max_queued_bytes,
            )
        if queue.bytes + size > limits.max_queued_bytes_per_service:  # type: ignore[operator]
            raise _full(
                f"{queue.bytes} bytes of input of service {service!r} wait for workers and this "
                f"input has {size}",
                "--max-queued-bytes-per-service",
                limits.max_queued_bytes_per_service,
            )

    def push(self, invocation: Invocation, *, front: bool = False) -> None:
        queue = self._queues.get(invocation.service)
        if queue is None:
            queue = self._queues[invocation.service] = _Queue()
        if front:
            queue.items.appendleft(invocation)
        else:
            queue.items.append(invocation)
        self._counted(queue, invocation, 1)
        self._since[invocation.id] = time.monotonic()
        if self.limits.queue_expiry is not None:
            self._timers[invocation.id] = asyncio.get_running_loop().call_later(
                self.limits.queue_expiry, self._expire, invocation
            )

    def dispatch(self, service: str, deliver: Callable[[Invocation], bool]) -> None:
        """Offer the waiting invocations of ``service`` to ``deliver``, oldest first; those it
        takes (returns True for) leave the queue."""
        queue = self._queues.get(service)
        if queue is None:
            return
        items = queue.items
        for _ in range(len(items)):
            invocation = items.popleft()
            if deliver(invocation):
                self._left(queue, invocation)
            else:
                items.append(invocation)
        if not items:
            del self._queues[service]

    def remove(self, invocation: Invocation) -> bool:
        """Take ``invocation`` out if it waits; whether it did."""
        queue = self._queues.get(invocation.service)
        if queue is None or invocation not in queue.items:
            return False
        queue.items.remove(invocation)
        self._left(queue, invocation)
        if not queue.items:
            del self._queues[invocation.service]
        return True

    def clear(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._since.clear()
        self._queues.clear()
        self._count = self._bytes = 0

    def _expire(self, invocation: Invocation) -> None:
        self._timers.pop(invocation.id, None)
        if self.remove(invocation):
            self._expired(invocation)

    def _left(self, queue: _Queue, invocation: Invocation) -> None:
        self._counted(queue, invocation, -1)
        self._since.pop(invocation.id, None)
        timer = self._timers.pop(invocation.id, None)
        if timer is not None:
            timer.cancel()

    def _counted(self, queue: _Queue, invocation: Invocation, sign: int) -> None:
        size = len(invocation.input) * sign
        queue.bytes += size
        self._bytes += size
        self._count += sign


def _full(what: str, flag: str, limit: int | None) -> ResourceExhaustedError:
    return ResourceExhaustedError(
        f"the coordinator's queue is full: {what}, the limit is {limit} ({flag}); retry later"
    )
