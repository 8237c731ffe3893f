"""`HandlerThreads`: the worker's pool for synchronous handlers, and how it is used.

A bounded set of worker threads takes jobs from one queue. A finished job's outcome goes on
its loop's inbox, and the loop is woken once for whatever the inbox holds, not once per job:
under load one wake-up delivers many outcomes. Compared with ``loop.run_in_executor`` there is
no `concurrent.futures.Future` to chain to the asyncio future, no executor bookkeeping per job
and one ``call_soon_threadsafe`` per batch instead of one per job.

A sync handler that times out (or whose invocation is cancelled) cannot be interrupted: its
thread stays busy until the handler returns. The pool counts those jobs (`timed_out`) beside
the busy threads, for ``/health`` and ``/metrics``, and logs a warning when they hold more than
half of it, since new sync invocations then wait for a thread.

`ThreadUsage` is what the health server and the metrics read, so another pool can stand in.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

__all__ = ["HandlerThreads", "ThreadUsage"]

_log = logging.getLogger("agnt5.worker")
T = TypeVar("T")

_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


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


class _Inbox:
    """Outcomes waiting for one event loop, and whether a wake-up is already on its way."""

    __slots__ = ("loop", "outcomes", "waking")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.outcomes: collections.deque[_Outcome] = collections.deque()
        self.waking = False

    def put(self, outcome: _Outcome) -> None:
        """From a pool thread: add ``outcome``; wake the loop unless a wake-up is pending."""
        self.outcomes.append(outcome)
        if not self.waking:  # deliver() clears the flag before it empties the deque
            self.waking = True
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits these
                self.loop.call_soon_threadsafe(self.deliver)

    def deliver(self) -> None:
        """On the loop: resolve every future whose job finished."""
        self.waking = False
        outcomes = self.outcomes
        while outcomes:  # bounded: a batch is at most what the pool finished meanwhile
            future, result, error = outcomes.popleft()
            if future.done():  # cancelled while it ran
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


class HandlerThreads:
    """At most ``size`` threads (started as needed) running functions for asyncio callers,
    counting the busy ones and the jobs given up on with `abandon` while they still run."""

    def __init__(self, size: int, name: str = "agnt5") -> None:
        if size < 1:
            raise ValueError(f"a thread pool needs at least one thread, got {size!r}")
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a job, less jobs queued for them (under _lock)
        self._lock = threading.Lock()
        self._running: set[asyncio.Future[Any]] = set()  # (under _lock)
        self._abandoned: set[asyncio.Future[Any]] = set()  # running, nobody waiting (under _lock)
        self._warned = False
        self._inbox: _Inbox | None = None
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def busy(self) -> int:
        return len(self._running)

    @property
    def timed_out(self) -> int:
        return len(self._abandoned)

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``fn(*args)`` in a pool thread, in a copy of the current context; await the
        returned future for its result. Cancelling the future before the job starts skips it
        (a running job cannot be interrupted and its result is dropped)."""
        if self._closed:
            raise RuntimeError("the thread pool is closed")
        loop = asyncio.get_running_loop()
        inbox = self._inbox
        if inbox is None or inbox.loop is not loop:
            inbox = self._inbox = _Inbox(loop)
        future = loop.create_future()
        with self._lock:
            self._idle -= 1
            start = self._idle < 0 and len(self._threads) < self._size
            if start:
                self._idle += 1  # the new thread takes this job
        if start:
            self._start_thread()
        self._jobs.put((inbox, future, contextvars.copy_context(), fn, args))
        return future

    def abandon(self, job: asyncio.Future[Any]) -> None:
        """The caller of ``job`` (a future from `run`) stopped waiting; while it still runs it
        holds a thread."""
        with self._lock:
            if job not in self._running:
                return
            self._abandoned.add(job)
            held = len(self._abandoned)
            warn = held * 2 > self._size and not self._warned
            self._warned = self._warned or warn
        if warn:
            _log.warning(
                "%d of %d handler threads are held by sync handlers whose invocations timed out "
                "or were cancelled: new sync invocations wait for a free thread (check "
                "ctx.cancelled in long handlers, or raise thread_pool_size)",
                held,
                self._size,
            )

    def close(self) -> None:
        """Stop taking jobs: queued ones are cancelled, running ones finish, threads exit."""
        if self._closed:
            return
        self._closed = True
        while True:  # bounded: nothing is queued after _closed is set
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            inbox, future = job[0], job[1]
            with contextlib.suppress(RuntimeError):  # its loop is closed
                inbox.loop.call_soon_threadsafe(future.cancel)
        for _ in self._threads:
            self._jobs.put(None)

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        jobs, lock = self._jobs, self._lock
        while True:  # until close() queues the None that ends this thread
            job = jobs.get()
            if job is None:
                return
            inbox, future, context, fn, args = job
            if not future.done():  # not cancelled while it waited
                with lock:
                    self._running.add(future)
                try:
                    outcome = (future, context.run(fn, *args), None)
                except BaseException as error:  # the caller's future carries it, as an executor's
                    outcome = (future, None, error)
                with lock:
                    self._running.discard(future)
                    self._abandoned.discard(future)
                    if len(self._abandoned) * 2 <= self._size:
                        self._warned = False  # warn again the next time they take over half
                inbox.put(outcome)
                del outcome
            del job, inbox, future, context, fn, args  # hold no result while idle
            with lock:
                self._idle += 1
