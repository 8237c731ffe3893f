"""Routing: queue invocations, deliver them within each worker's capacity, retry, expire them."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from agnt5 import config
from agnt5._proto import worker_pb2
from agnt5._wire.records import InvokeItem, ResultItem
from agnt5.coordinator.registry import Registry, WorkerHandle, retry_policy
from agnt5.coordinator.store import Invocation, InvocationState, StateStore
from agnt5.coordinator.workflows import Workflows
from agnt5.errors import (
    AgntError,
    InvocationTimeoutError,
    NotFoundError,
    PayloadTooLargeError,
    ResourceExhaustedError,
    UnavailableError,
)

__all__ = ["Scheduler"]

_log = logging.getLogger("agnt5.coordinator")


class Scheduler:
    """Owns every unfinished invocation until it has an outcome.

    An invocation goes to the live worker of its service with the fewest in flight that has
    room below its ``max_concurrency``; with none free it waits in the service's queue (at most
    ``max_queue`` waiting in all, else `ResourceExhaustedError`). A retryable failure is retried
    after the function's backoff, and the in-flight work of a lost worker is re-delivered at
    once, each with ``attempt + 1`` while the function's retry budget lasts. Past its deadline
    an invocation fails with ``TIMEOUT`` and its worker is sent a ``Cancel``. A workflow's
    journal, timers, signals and children are `workflows`' (a `Workflows`); a workflow run that
    suspends gives its slot back and is queued again when it can go on (`resume`).
    """

    def __init__(
        self,
        registry: Registry,
        store: StateStore,
        *,
        max_queue: int = config.MAX_QUEUE,
        max_input_bytes: int = config.MAX_BODY_BYTES,
    ) -> None:
        self._registry = registry
        self._store = store
        self._max_queue = max_queue
        self._max_input_bytes = max_input_bytes
        self._queues: dict[str, deque[Invocation]] = {}
        self._queued = 0
        self._waiters: dict[str, asyncio.Event] = {}
        self._listeners: dict[str, list[Callable[[Invocation], None]]] = {}
        self._deadlines: dict[str, asyncio.TimerHandle] = {}
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self._closed = False
        self.workflows = Workflows(self, store)

    @property
    def max_input_bytes(self) -> int:
        return self._max_input_bytes

    def queued(self, service: str) -> int:
        """Invocations of ``service`` waiting for a worker."""
        return len(self._queues.get(service, ()))

    def submit(
        self,
        service: str,
        function: str,
        payload: bytes,
        *,
        idempotency_key: str = "",
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
        invocation_id: str | None = None,
    ) -> tuple[Invocation, bool]:
        """Accept an invocation; returns it and whether it is an earlier one with the same key.

        ``invocation_id`` is for a workflow's child, whose id its parent derives (default: new).
        """
        if self._closed:
            raise UnavailableError("the coordinator is shutting down")
        if idempotency_key:  # answered even while no worker serves it (e.g. after a restart)
            existing = self._store.find(service, function, idempotency_key)
            if existing is not None:
                return existing, True
        entry = self._registry.service(service)
        if entry is None:
            raise NotFoundError(f"Service {service!r} not found")
        component = entry.components.get(function)
        if component is None:  # an older worker still connected may serve it
            serving = (w for w in entry.workers.values() if function in w.components)
            component = next((w.components[function] for w in serving), None)
        if component is None:
            raise NotFoundError(f"Function {function!r} not found in service {service!r}")
        if len(payload) > self._max_input_bytes:
            raise PayloadTooLargeError(
                f"input is {len(payload)} bytes, over the limit of {self._max_input_bytes} bytes"
            )
        worker = self._registry.pick(service, function)
        if worker is None and self._queued >= self._max_queue:
            raise ResourceExhaustedError(
                f"no free worker for {service}/{function} and the queue is full "
                f"({self._max_queue} invocations waiting)"
            )
        invocation = Invocation(
            id=invocation_id or os.urandom(16).hex(),  # as random as uuid4, a fraction of its cost
            service=service,
            function=function,
            input=payload,
            metadata=dict(metadata or {}),
            policy=retry_policy(component),
            idempotency_key=idempotency_key,
        )
        if timeout is not None:
            invocation.deadline_unix_ms = invocation.created_unix_ms + int(timeout * 1000)
            self._deadlines[invocation.id] = asyncio.get_running_loop().call_later(
                timeout, self._expire, invocation
            )
        self._store.add(invocation)
        self._waiters[invocation.id] = asyncio.Event()
        if worker is not None:
            self._deliver(worker, invocation)
        else:
            self._enqueue(invocation)
        return invocation, False

    def submit_child(
        self, parent: Invocation, child_id: str, service: str, function: str, payload: bytes
    ) -> Invocation:
        """A workflow's child invocation: the one with ``child_id`` if it exists, else a new one
        with the parent's metadata and at most the parent's time left."""
        existing = self._store.get(child_id)
        if existing is not None:
            return existing
        timeout = None
        if parent.deadline_unix_ms:
            timeout = max(0.001, (parent.deadline_unix_ms - time.time() * 1000) / 1000)
        child, _ = self.submit(
            service,
            function,
            payload,
            timeout=timeout,
            metadata=parent.metadata,
            invocation_id=child_id,
        )
        return child

    def worker_of(self, invocation: Invocation) -> WorkerHandle | None:
        """The worker running ``invocation`` now, if any."""
        entry = self._registry.service(invocation.service)
        worker = entry.workers.get(invocation.worker_id) if entry is not None else None
        return worker if worker is not None and invocation.id in worker.in_flight else None

    def release(self, worker: WorkerHandle, invocation: Invocation, state: InvocationState) -> None:
        """A workflow run ended without an outcome: ``SUSPENDED`` until `resume`, or ``PENDING``
        (queued again at once). Its slot on ``worker`` is free."""
        worker.in_flight.pop(invocation.id, None)
        if state is InvocationState.PENDING:
            self.resume(invocation)
        else:
            invocation.state = state
            invocation.worker_id = ""
            self._store.save(invocation)
        self._dispatch(worker.service)

    def resume(self, invocation: Invocation) -> None:
        """Queue a workflow run again (first in line): something it waited for is done."""
        if invocation.finished:
            return
        invocation.state = InvocationState.PENDING
        invocation.worker_id = ""
        self._store.save(invocation)
        self._enqueue(invocation, front=True)
        self._dispatch(invocation.service)

    def fail(self, worker: WorkerHandle, invocation: Invocation, error: AgntError) -> None:
        """End ``invocation`` with ``error`` now (a worker broke the protocol for it)."""
        worker.in_flight.pop(invocation.id, None)
        if not invocation.finished:
            self._finish(invocation, error=error.to_dict())
        self._dispatch(worker.service)

    def get(self, invocation_id: str) -> Invocation:
        """The invocation with this id; `NotFoundError` if there is none."""
        invocation = self._store.get(invocation_id)
        if invocation is None:
            raise NotFoundError(f"Invocation {invocation_id!r} not found")
        return invocation

    async def wait(self, invocation: Invocation, timeout: float | None) -> Invocation:
        """Wait until ``invocation`` finishes or ``timeout`` seconds pass (None: no limit)."""
        event = self._waiters.get(invocation.id)  # kept until the outcome is saved for good
        if event is None:
            return invocation
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass
        return invocation

    async def saved(self) -> None:
        """Return once every change made so far is durable in the store (an id handed out
        after this survives a coordinator crash)."""
        done = asyncio.get_running_loop().create_future()
        self._store.when_saved(lambda: done.done() or done.set_result(None))
        await done

    def on_finish(self, invocation: Invocation, callback: Callable[[Invocation], None]) -> None:
        """Call ``callback(invocation)`` once ``invocation``'s outcome is saved (at once if it is)."""
        if invocation.finished and invocation.id not in self._waiters:
            callback(invocation)
        else:
            self._listeners.setdefault(invocation.id, []).append(callback)

    def recover(self, invocations: Iterable[Invocation]) -> None:
        """Take back invocations a previous coordinator left unfinished (from its journal).

        Each waits in its service's queue until a worker of it registers; one that was running
        is delivered again with ``attempt + 1``; one past its deadline fails with ``TIMEOUT``. A
        suspended workflow stays suspended until what it waits for (its timers re-armed, its
        children followed) is done.
        """
        loop = asyncio.get_running_loop()
        now_ms = time.time() * 1000
        invocations = list(invocations)
        for invocation in invocations:
            self._waiters[invocation.id] = asyncio.Event()
            if invocation.deadline_unix_ms:
                delay = max(0.0, (invocation.deadline_unix_ms - now_ms) / 1000)
                self._deadlines[invocation.id] = loop.call_later(delay, self._expire, invocation)
            if invocation.state is InvocationState.SUSPENDED:
                continue
            if invocation.state is InvocationState.RUNNING:
                invocation.attempt += 1
            invocation.state = InvocationState.PENDING
            invocation.worker_id = ""
            self._store.save(invocation)
            self._enqueue(invocation)
        self.workflows.recover(invocations)

    def worker_joined(self, worker: WorkerHandle) -> None:
        """A worker registered: route waiting work to it (a stale session of its id is dropped)."""
        previous = self._registry.add(worker)
        if previous is not None and previous is not worker:
            self.worker_lost(previous)
        self._dispatch(worker.service)

    def worker_draining(self, worker: WorkerHandle) -> None:
        """A worker takes no new work from now on."""
        worker.draining = True

    def worker_lost(self, worker: WorkerHandle) -> None:
        """A worker is gone: forget it and re-deliver what it was running (idempotent)."""
        worker.close()
        self._registry.remove(worker)
        lost = list(worker.in_flight.values())
        worker.in_flight.clear()
        for invocation in lost:
            if not invocation.finished:
                error = UnavailableError(
                    f"worker {worker.worker_id} was lost while running invocation {invocation.id}"
                )
                self._attempt_failed(invocation, error.to_dict(), backoff=False)
        self._dispatch(worker.service)

    def results(self, worker: WorkerHandle, results: Iterable[ResultItem]) -> None:
        """Outcomes of attempts ``worker`` ran; stale or unknown ones are ignored."""
        for result in results:
            invocation = worker.in_flight.get(result.invocation_id)
            if invocation is None or invocation.attempt != result.attempt:
                _log.debug(
                    "ignoring a result for %s attempt %d", result.invocation_id, result.attempt
                )
                continue
            del worker.in_flight[invocation.id]
            if invocation.finished:
                continue
            invocation.duration_us = result.duration_us
            if result.error is not None:
                self._attempt_failed(invocation, result.error._asdict(), backoff=True)
            else:
                self._finish(invocation, output=result.output or b"")
        self._dispatch(worker.service)

    def close(self) -> None:
        """Stop: every unfinished invocation fails with ``UNAVAILABLE`` and its waiters wake."""
        self._closed = True
        self.workflows.close()
        error = UnavailableError("the coordinator shut down before the invocation finished")
        for invocation_id in list(self._waiters):
            invocation = self._store.get(invocation_id)
            if invocation is not None and not invocation.finished:
                self._finish(invocation, error=error.to_dict())
        self._queues.clear()
        self._queued = 0

    def _deliver(self, worker: WorkerHandle, invocation: Invocation) -> None:
        invocation.state = InvocationState.RUNNING
        invocation.worker_id = worker.worker_id
        worker.in_flight[invocation.id] = invocation
        self._store.save(invocation)
        worker.outbox.put_nowait(
            InvokeItem(
                invocation.id,
                invocation.function,
                invocation.input,
                invocation.metadata,
                invocation.attempt,
                invocation.deadline_unix_ms,
                self.workflows.journal_bytes(invocation),
            )
        )

    def _enqueue(self, invocation: Invocation, *, front: bool = False) -> None:
        queue = self._queues.setdefault(invocation.service, deque())
        if front:
            queue.appendleft(invocation)
        else:
            queue.append(invocation)
        self._queued += 1

    def _dispatch(self, service: str) -> None:
        """Deliver queued work of ``service`` to its free workers, oldest first."""
        queue = self._queues.get(service)
        if not queue:
            return
        for _ in range(len(queue)):
            invocation = queue.popleft()
            worker = self._registry.pick(service, invocation.function)
            if worker is None:
                queue.append(invocation)
                continue
            self._queued -= 1
            self._deliver(worker, invocation)

    def _attempt_failed(
        self, invocation: Invocation, error: dict[str, Any], *, backoff: bool
    ) -> None:
        """Retry a retryable failure while the budget and deadline allow; else fail for good."""
        policy = invocation.policy
        if error["retryable"] and invocation.attempt <= policy.retries:
            delay = policy.delay(invocation.attempt) if backoff else 0.0
            deadline = invocation.deadline_unix_ms
            if not deadline or time.time() * 1000 + delay * 1000 < deadline:
                invocation.attempt += 1
                invocation.state = InvocationState.PENDING
                invocation.worker_id = ""
                self._store.save(invocation)
                if delay > 0:
                    self._retries[invocation.id] = asyncio.get_running_loop().call_later(
                        delay, self._retry_due, invocation
                    )
                else:
                    self._enqueue(invocation, front=True)
                return
        self._finish(invocation, error=error)

    def _retry_due(self, invocation: Invocation) -> None:
        self._retries.pop(invocation.id, None)
        if not invocation.finished:
            self._enqueue(invocation, front=True)
            self._dispatch(invocation.service)

    def _expire(self, invocation: Invocation) -> None:
        """The deadline passed: fail with TIMEOUT and cancel the attempt on its worker."""
        self._deadlines.pop(invocation.id, None)
        if invocation.finished:
            return
        queue = self._queues.get(invocation.service)
        if invocation.state is InvocationState.PENDING and queue and invocation in queue:
            queue.remove(invocation)
            self._queued -= 1
        entry = self._registry.service(invocation.service)
        worker = entry.workers.get(invocation.worker_id) if entry else None
        if worker is not None and invocation.id in worker.in_flight:
            cancel = worker_pb2.Cancel(invocation_id=invocation.id, reason="deadline exceeded")
            worker.outbox.put_nowait(worker_pb2.CoordinatorMessage(cancel=cancel))
        error = InvocationTimeoutError(
            f"Invocation {invocation.id} of {invocation.service}/{invocation.function} "
            "did not finish before its deadline",
            retryable=False,
        )
        self._finish(invocation, error=error.to_dict())

    def _finish(
        self,
        invocation: Invocation,
        *,
        output: bytes | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        invocation.state = (
            InvocationState.FAILED if error is not None else InvocationState.SUCCEEDED
        )
        invocation.output = output
        invocation.error = error
        for timers in (self._deadlines, self._retries):
            timer = timers.pop(invocation.id, None)
            if timer is not None:
                timer.cancel()
        self.workflows.finished(invocation)
        self._store.save(invocation)
        self._store.when_saved(functools.partial(self._announce, invocation))

    def _announce(self, invocation: Invocation) -> None:
        """The outcome is saved: wake its waiters (a client never sees an unsaved outcome)."""
        event = self._waiters.pop(invocation.id, None)
        if event is not None:
            event.set()
        for callback in self._listeners.pop(invocation.id, ()):
            callback(invocation)
