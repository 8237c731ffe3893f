"""`HandlerThreads`: the worker's pool for synchronous handlers, and how it is used.

A sync handler that times out (or whose invocation is cancelled) cannot be interrupted: its
thread stays busy until the handler returns. The pool counts those jobs (`timed_out`) beside
the busy threads, for ``/health`` and ``/metrics``, and logs a warning when they hold more than
half of it, since new sync invocations then wait for a thread.

`ThreadUsage` is what the health server and the metrics read, so another pool can stand in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

__all__ = ["HandlerThreads", "ThreadUsage"]

_log = logging.getLogger("agnt5.worker")
T = TypeVar("T")


class ThreadUsage(Protocol):
    """A thread pool's use, read from any thread."""

    @property
    def size(self) -> int:
        """The most threads it runs."""

    @property
    def busy(self) -> int:
        """Threads running a job now."""

    @property
    def timed_out(self) -> int:
        """Busy threads whose caller stopped waiting (the invocation timed out or was cancelled)."""


class HandlerThreads(ThreadPoolExecutor):
    """A `ThreadPoolExecutor` of ``size`` threads that counts its busy threads and the jobs
    given up on with `abandon` while they still run."""

    def __init__(self, size: int, name: str) -> None:
        super().__init__(size, thread_name_prefix=name)
        self._size = size
        self._lock = threading.Lock()
        self._busy = 0
        self._abandoned: set[Future[Any]] = set()
        self._warned = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def timed_out(self) -> int:
        return len(self._abandoned)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return super().submit(self._counted, fn, args, kwargs)

    def abandon(self, job: Future[Any]) -> None:
        """The caller of ``job`` stopped waiting for it; while it still runs it holds a thread."""
        if not job.running():
            return
        with self._lock:
            self._abandoned.add(job)
            held = len(self._abandoned)
            warn = held * 2 > self._size and not self._warned
            self._warned = self._warned or warn
        job.add_done_callback(self._released)
        if warn:
            _log.warning(
                "%d of %d handler threads are held by sync handlers whose invocations timed out "
                "or were cancelled: new sync invocations wait for a free thread (check "
                "ctx.cancelled in long handlers, or raise thread_pool_size)",
                held,
                self._size,
            )

    def _released(self, job: Future[Any]) -> None:
        with self._lock:
            self._abandoned.discard(job)
            if len(self._abandoned) * 2 <= self._size:
                self._warned = False  # warn again the next time they take over half

    def _counted(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        with self._lock:
            self._busy += 1
        try:
            return fn(*args, **kwargs)
        finally:
            with self._lock:
                self._busy -= 1
