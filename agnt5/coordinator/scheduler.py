"""Routing: queue invocations, deliver them within each worker's capacity, retry, expire them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from agnt5 import config
from agnt5._proto import worker_pb2
from agnt5._wire.records import InvokeItem, ResultItem
from agnt5.coordinator.checks import check_metadata, check_name, result_problem
from agnt5.coordinator.events import EventFeed
from agnt5.coordinator.queues import QueueLimits, Queues
from agnt5.coordinator.registry import Registry, WorkerHandle, retry_policy
from agnt5.coordinator.store import (
    Invocation,
    InvocationPage,
    InvocationQuery,
    InvocationState,
    Listed,
    RetryPolicy,
    StateStore,
    visible_state,
)
from agnt5.coordinator.telemetry import CoordinatorTelemetry, ServiceState
from agnt5.coordinator.workflows import Workflows
from agnt5.errors import (
    AgntError,
    FailedPreconditionError,
    FunctionFailedError,
    InvalidArgumentError,
    InvocationCancelledError,
    InvocationTimeoutError,
    NotFoundError,
    OutputNotSerializableError,
    PayloadTooLargeError,
    UnavailableError,
)

__all__ = ["Scheduler"]

_NO_METADATA: Mapping[str, str] = {}
_FINISHED = (InvocationState.SUCCEEDED, InvocationState.FAILED)

_log = logging.getLogger("agnt5.coordinator")


class Scheduler:
    """Owns every unfinished invocation until it has an outcome.

    An invocation goes to the live worker of its service with the fewest in flight that has
    room below its ``max_concurrency``; with none free it waits in the service's queue, within
    the `QueueLimits` (else `ResourceExhaustedError` naming the limit). A retryable failure is retried
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
        limits: QueueLimits | None = None,
        max_input_bytes: int = config.MAX_BODY_BYTES,
        max_output_bytes: int = config.MAX_OUTPUT_BYTES,
    ) -> None:
        self._registry = registry
        self._store = store
        self._max_input_bytes = max_input_bytes
        self._max_output_bytes = max_output_bytes
        self._queues = Queues(limits or QueueLimits(), self._queue_expired)
        self._waiters: dict[str, asyncio.Event] = {}
        self._listeners: dict[str, list[Callable[[Invocation], None]]] = {}
        self._deadlines: dict[str, asyncio.TimerHandle] = {}
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self._follows: set[asyncio.Task[None]] = set()  # other coordinators' invocations
        self._reconnecting_until = 0.0  # monotonic; see `recover`
        self._closed = False
        self.events = EventFeed()
        """Every change of an invocation's state, and of the workers, for live watchers."""
        self.telemetry = CoordinatorTelemetry(self.service_states)
        """Counts and spans of what this scheduler does."""
        self.workflows = Workflows(self, store)
        store.on_finished_elsewhere(self._finished_elsewhere)

    @property
    def max_input_bytes(self) -> int:
        return self._max_input_bytes

    @property
    def max_output_bytes(self) -> int:
        return self._max_output_bytes

    def queued(self, service: str) -> int:
        """Invocations of ``service`` waiting for a worker."""
        return self._queues.count(service)

    def timers_pending(self, service: str) -> int:
        """Durable workflow timers (sleeps, signal timeouts) of ``service`` waiting to fire."""
        return self.workflows.timers_pending(service)

    def service_states(self) -> list[ServiceState]:
        """Every known service (registered, or with work waiting) as the metrics show it (from
        copies, as a metric reader may call this from its own thread)."""
        queues = self._queues
        entries = {entry.name: entry for entry in self._registry.services()}
        states = []
        for name in sorted({*entries, *queues.services()}):
            entry = entries.get(name)
            workers = [w for w in list(entry.workers.values()) if not w.closed] if entry else []
            states.append(
                ServiceState(
                    name,
                    workers=len(workers),
                    in_flight=sum(len(worker.in_flight) for worker in workers),
                    queued=queues.count(name),
                    queued_bytes=queues.bytes(name),
                    oldest_queued=queues.oldest_wait(name),
                    timers_pending=self.timers_pending(name),
                )
            )
        return states

    @property
    def accepting(self) -> str | None:
        """Why new invocations are refused now (shutting down, the store cannot commit), or
        None while they are accepted."""
        if self._closed:
            return "the coordinator is shutting down"
        failure = self._store.failure
        return None if failure is None else f"the journal cannot commit ({failure})"

    def submit(
        self,
        service: str,
        function: str,
        payload: bytes,
        *,
        idempotency_key: str = "",
        timeout: float | None = None,
        metadata: Mapping[str, str] = _NO_METADATA,
        invocation_id: str | None = None,
    ) -> tuple[Invocation, bool]:
        """Accept an invocation; returns it and whether it is an earlier one with the same key.

        ``invocation_id`` is for a workflow's child, whose id its parent derives (default: new).
        """
        if self._closed:
            raise UnavailableError("the coordinator is shutting down")
        check_name("service", service)
        check_name("function", function)
        check_name("idempotency key", idempotency_key)
        check_metadata(metadata)
        if idempotency_key:  # answered even while no worker serves it (e.g. after a restart)
            existing = self._store.find(service, function, idempotency_key)
            if existing is not None:
                return _same_input(existing, payload), True
        self._check_store()
        if self._registry.pick(service, function) is None and not self._serves(service, function):
            if self._store.served_elsewhere(service, function):  # another coordinator's workers
                return self._hand_off(service, function, payload, idempotency_key, timeout,
                                      metadata, invocation_id)  # fmt: skip
        entry = self._registry.service(service)
        if entry is None:
            if time.monotonic() < self._reconnecting_until:
                raise UnavailableError(
                    f"no worker of service {service!r} has registered since the coordinator "
                    "started: its workers may still be reconnecting; retry"
                )
            raise NotFoundError(f"Service {service!r} not found")
        component = self._registry.component(service, function)
        if component is None:
            raise NotFoundError(f"Function {function!r} not found in service {service!r}")
        if len(payload) > self._max_input_bytes:
            raise PayloadTooLargeError(
                f"input is {len(payload)} bytes, over the limit of {self._max_input_bytes} bytes"
            )
        worker = self._registry.pick(service, function)
        if worker is None:
            self._queues.admit(service, len(payload))
        invocation, deduplicated = self._new(
            service, function, payload, retry_policy(component), idempotency_key, timeout,
            metadata, invocation_id, hand_off=False,
        )  # fmt: skip
        if deduplicated:
            return invocation, True
        if timeout is not None:
            self._deadlines[invocation.id] = asyncio.get_running_loop().call_later(
                timeout, self._expire, invocation
            )
        self._store.add(invocation)
        self._waiters[invocation.id] = asyncio.Event()
        self.telemetry.accepted_invocation(invocation)
        if worker is not None:
            self._deliver(worker, invocation)
        else:
            self._queues.push(invocation)
            self.events.changed(invocation)
        return invocation, False

    def _serves(self, service: str, function: str) -> bool:
        """Whether a live worker here serves ``service/function`` (busy or not)."""
        entry = self._registry.service(service)
        workers = entry.workers.values() if entry is not None else ()
        return any(not w.closed and not w.draining and function in w.components for w in workers)

    def _hand_off(
        self,
        service: str,
        function: str,
        payload: bytes,
        idempotency_key: str,
        timeout: float | None,
        metadata: Mapping[str, str],
        invocation_id: str | None,
    ) -> tuple[Invocation, bool]:
        """Accept an invocation for the coordinator whose workers serve it (it claims it from
        the shared store, with the function's retry policy); waits for it follow the store.
        Returns it, or the one holding its idempotency key, and which it is (as `submit`)."""
        if len(payload) > self._max_input_bytes:
            raise PayloadTooLargeError(
                f"input is {len(payload)} bytes, over the limit of {self._max_input_bytes} bytes"
            )
        invocation, deduplicated = self._new(
            service, function, payload, RetryPolicy(), idempotency_key, timeout, metadata,
            invocation_id, hand_off=True,
        )  # fmt: skip
        if not deduplicated:
            self._store.hand_off(invocation)
            self.telemetry.accepted_invocation(invocation)
        return invocation, deduplicated

    def _new(
        self,
        service: str,
        function: str,
        payload: bytes,
        policy: RetryPolicy,
        idempotency_key: str,
        timeout: float | None,
        metadata: Mapping[str, str],
        invocation_id: str | None,
        *,
        hand_off: bool,
    ) -> tuple[Invocation, bool]:
        """A new invocation (with its deadline), or, on a shared store, the one that took its
        idempotency key meanwhile (True; `InvalidArgumentError` if its input differs): a keyed
        one is committed at once there (``hand_off``: for another coordinator to claim)."""
        invocation = Invocation(
            id=invocation_id or os.urandom(16).hex(),  # as random as uuid4, a fraction of its cost
            service=service,
            function=function,
            input=payload,
            metadata=dict(metadata),
            policy=policy,
            idempotency_key=idempotency_key,
        )
        if timeout is not None:
            invocation.deadline_unix_ms = invocation.created_unix_ms + int(timeout * 1000)
        if not idempotency_key or not self._store.shared:
            return invocation, False
        holder = self._store.claim_key(invocation, hand_off=hand_off)
        return (invocation, False) if holder is None else (_same_input(holder, payload), True)

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
            self.events.changed(invocation)
        self._dispatch(worker.service)

    def resume(self, invocation: Invocation) -> None:
        """Queue a workflow run again (first in line): something it waited for is done."""
        if invocation.finished:
            return
        invocation.state = InvocationState.PENDING
        invocation.worker_id = ""
        self._store.save(invocation)
        self.events.changed(invocation)
        self._requeue(invocation)
        self._dispatch(invocation.service)

    def fail(self, worker: WorkerHandle, invocation: Invocation, error: AgntError) -> None:
        """End ``invocation`` with ``error`` now (a worker broke the protocol for it)."""
        worker.in_flight.pop(invocation.id, None)
        if not invocation.finished:
            self._finish(invocation, error=error.to_dict())
        self._dispatch(worker.service)

    def get(self, invocation_id: str) -> Invocation:
        """The invocation with this id; `NotFoundError` if there is none."""
        check_name("invocation id", invocation_id)
        invocation = self._store.get(invocation_id)
        if invocation is None:
            raise NotFoundError(f"Invocation {invocation_id!r} not found")
        return invocation

    def list(self, query: InvocationQuery) -> InvocationPage:
        """A page of invocations, newest first (see `StateStore.list`), as clients see them."""
        page = self._store.list(query)
        unsaved = [row for row in page.invocations if row.id in self._waiters]
        if not unsaved:
            return page
        return page._replace(invocations=[self.visible(row) for row in page.invocations])

    def visible(self, row: Listed) -> Listed:
        """``row`` as clients see it: an outcome not saved yet is not shown (it runs on)."""
        if row.id in self._waiters and row.state in _FINISHED:
            return row._replace(state=InvocationState.RUNNING, error_code="")
        return row

    async def cancel(self, invocation_id: str, reason: str = "") -> Invocation:
        """Cancel an unfinished invocation: it leaves its queue, or its worker is sent a
        ``Cancel``; it fails with ``CANCELLED``, not retried. Returns it once that is saved.
        `FailedPreconditionError` once it has finished, `NotFoundError` for an unknown id.

        Another coordinator's invocation (a shared store) gets the outcome in the store, unless
        it finished there first (`FailedPreconditionError`); that coordinator hears of it and
        stops running it."""
        check_name("cancel reason", reason)
        invocation = self.get(invocation_id)
        self._check_unfinished(invocation)
        message = f"Invocation {invocation.id} of {invocation.service}/{invocation.function}"
        error = InvocationCancelledError(
            f"{message} was cancelled{f': {reason}' if reason else ''}", retryable=False
        ).to_dict()
        if not self.elsewhere(invocation):
            self._stop_attempt(invocation, reason or "cancelled")
            self._finish(invocation, error=error)
            await self.saved()
            return invocation
        invocation.state = InvocationState.FAILED
        invocation.error = error
        self._store.finish_elsewhere(invocation)
        await self.saved()
        held = self._store.get(invocation.id)  # the outcome committed first
        if held is not None and held is not invocation:
            _refresh(invocation, held)
        if invocation.error != error:
            self._check_unfinished(invocation)
        return invocation

    def _check_unfinished(self, invocation: Invocation) -> None:
        if invocation.finished:
            state = visible_state(invocation, self.settled(invocation))
            raise FailedPreconditionError(
                f"invocation {invocation.id} has finished ({state.name}): there is nothing "
                "to cancel"
            )

    def _finished_elsewhere(self, committed: Invocation) -> None:
        """Another coordinator gave an invocation running here its outcome (a cancel through
        it, or it took the work over): stop the attempt here and take that outcome."""
        invocation = self._store.get(committed.id)
        if invocation is None or invocation.finished:
            return
        reason = committed.error.get("message", "") if committed.error else ""
        self._stop_attempt(invocation, reason or "finished on another coordinator")
        self._finish(invocation, output=committed.output, error=committed.error)

    def settled(self, invocation: Invocation) -> bool:
        """Whether ``invocation``'s outcome is saved, so a client may see it."""
        return invocation.finished and invocation.id not in self._waiters

    async def wait(self, invocation: Invocation, timeout: float | None) -> bool:
        """Wait until ``invocation``'s outcome is saved or ``timeout`` seconds pass (None: no
        limit); returns whether it is `settled`."""
        if invocation.id in self._waiters or self.elsewhere(invocation):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._follow(invocation)
        return self.settled(invocation)

    def elsewhere(self, invocation: Invocation) -> bool:
        """Whether ``invocation`` is unfinished and another coordinator's (a copy read from a
        shared store)."""
        return not invocation.finished and self._store.get(invocation.id) is not invocation

    async def _follow(self, invocation: Invocation) -> None:
        """Until ``invocation`` has a saved outcome: its waiter's while this coordinator runs
        it; else (another coordinator runs it) refreshed from the store whenever that says it
        may have changed."""
        while not self._closed:  # bounded by the caller's timeout
            event = self._waiters.get(invocation.id)  # kept until the outcome is saved for good
            if event is None:  # what the store holds is saved
                held = self._store.get(invocation.id)
                if held is not None and held is not invocation:
                    _refresh(invocation, held)
                if invocation.finished:
                    return
            await (event.wait() if event is not None else self._store.changed(invocation.id))

    async def saved(self) -> None:
        """Return once every change made so far is durable in the store (an id handed out
        after this survives a coordinator crash); `UnavailableError` if the store cannot
        commit them now."""
        self._check_store()
        done = asyncio.get_running_loop().create_future()

        def saved() -> None:
            if not done.done():
                done.set_result(None)

        def failed(reason: str) -> None:
            if not done.done():
                done.set_exception(_store_unavailable(reason))

        self._store.when_saved(saved, failed)
        await done

    def on_finish(self, invocation: Invocation, callback: Callable[[Invocation], None]) -> None:
        """Call ``callback(invocation)`` once ``invocation``'s outcome is saved (at once if it is)."""
        if invocation.finished and invocation.id not in self._waiters:
            callback(invocation)
        elif self.elsewhere(invocation) and invocation.id not in self._waiters:
            follow = asyncio.get_running_loop().create_task(self._follow(invocation))
            self._follows.add(follow)
            follow.add_done_callback(functools.partial(self._followed, invocation, callback))
        else:
            self._listeners.setdefault(invocation.id, []).append(callback)

    def _followed(
        self,
        invocation: Invocation,
        callback: Callable[[Invocation], None],
        follow: asyncio.Task[None],
    ) -> None:
        self._follows.discard(follow)
        if not follow.cancelled() and invocation.finished:
            callback(invocation)

    def recover(self, invocations: Iterable[Invocation], *, reconnect_grace: float = 0.0) -> None:
        """Take back invocations a previous coordinator left unfinished (from its journal).

        Each waits in its service's queue until a worker of it registers; one that was running
        is delivered again with ``attempt + 1``; one past its deadline fails with ``TIMEOUT``. A
        suspended workflow stays suspended until what it waits for (its timers re-armed, its
        children followed) is done. For ``reconnect_grace`` seconds from now, while the previous
        coordinator's workers are still reconnecting, a service no worker registered yet is
        `UnavailableError` (which clients retry), not `NotFoundError`.
        """
        self._reconnecting_until = time.monotonic() + reconnect_grace
        self.adopt(invocations)

    def adopt(self, invocations: Iterable[Invocation]) -> None:
        """Run unfinished invocations taken over from another coordinator (see `recover`).

        On a shared store (called every few seconds), once the reconnect grace is over, work
        queued for a service no live worker here serves goes back to the store for the
        coordinators that have one (a coordinator restarted with none takes its predecessor's
        work at start).
        """
        loop = asyncio.get_running_loop()
        now_ms = time.time() * 1000
        invocations = list(invocations)
        for invocation in invocations:
            self._waiters[invocation.id] = asyncio.Event()
            component = self._registry.component(invocation.service, invocation.function)
            if component is not None:  # one handed off here carries no policy of its own
                invocation.policy = retry_policy(component)
            if invocation.deadline_unix_ms:
                delay = max(0.0, (invocation.deadline_unix_ms - now_ms) / 1000)
                self._deadlines[invocation.id] = loop.call_later(delay, self._expire, invocation)
            was_running = invocation.state is InvocationState.RUNNING
            self.telemetry.recovered(invocation, redelivery=was_running)
            if invocation.state is InvocationState.SUSPENDED:
                continue
            if was_running:
                invocation.attempt += 1
            invocation.state = InvocationState.PENDING
            invocation.worker_id = ""
            self._store.save(invocation)
            self._queues.push(invocation)
        self.workflows.recover(invocations)
        for service in {invocation.service for invocation in invocations}:
            self._dispatch(service)  # workers may be connected already
        if self._store.shared and time.monotonic() >= self._reconnecting_until:
            for service in self._queues.services():
                self._release_unserved(service)

    def worker_joined(self, worker: WorkerHandle) -> None:
        """A worker registered: route waiting work to it (a closed session of its id still
        known is dropped; a live one makes this `UnavailableError`, see `Registry.add`)."""
        previous = self._registry.add(worker)
        if previous is not None:
            self.worker_lost(previous)
        self.events.services_changed()
        self.telemetry.declare(worker.service, worker.components)
        self._store.serving(worker.service, list(worker.components))
        self._dispatch(worker.service)

    def served_here(self) -> list[str]:
        """The services a live worker connected here serves."""
        return [entry.name for entry in self._registry.services() if self._live(entry.name)]

    def _live(self, service: str) -> bool:
        """Whether a live worker of ``service`` is connected here."""
        entry = self._registry.service(service)
        workers = entry.workers.values() if entry is not None else ()
        return any(not worker.closed and not worker.draining for worker in workers)

    def worker_draining(self, worker: WorkerHandle) -> None:
        """A worker takes no new work from now on."""
        worker.draining = True

    def worker_lost(self, worker: WorkerHandle) -> None:
        """A worker is gone: forget it and re-deliver what it was running (idempotent). On a
        shared store, when it was the last live worker of its service here, the service's
        queued work goes to the coordinators that have some (`StateStore.release`)."""
        worker.close()
        self._registry.remove(worker)
        self.events.services_changed()
        lost = list(worker.in_flight.values())
        worker.in_flight.clear()
        for invocation in lost:
            if not invocation.finished:
                error = UnavailableError(
                    f"worker {worker.worker_id} was lost while running invocation {invocation.id}"
                )
                self._attempt_failed(invocation, error.to_dict(), backoff=False)
        self._release_unserved(worker.service)
        self._dispatch(worker.service)

    def _release_unserved(self, service: str) -> None:
        """On a shared store, with no live worker of ``service`` here, release its queued work."""
        if self._store.shared and not self._live(service):
            for invocation in self._queues.take(service):
                self._release(invocation)

    def _requeue(self, invocation: Invocation) -> None:
        """Queue accepted work again, first in line; on a shared store, with no live worker of
        its service here, release it to the coordinators that have one."""
        if self._store.shared and not self._live(invocation.service):
            self._release(invocation)
        else:
            self._queues.push(invocation, front=True)

    def _release(self, invocation: Invocation) -> None:
        """Let another coordinator sharing the store claim and run ``invocation`` (pending):
        forget it here; who waits here follows it in the store."""
        self._disarm(invocation)
        self._store.release(invocation)
        event = self._waiters.pop(invocation.id, None)
        if event is not None:
            event.set()  # a waiter follows it in the store from now on
        for callback in self._listeners.pop(invocation.id, ()):
            self.on_finish(invocation, callback)

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
            refusal = self._refusal(worker, result)
            if refusal is not None:
                self._finish(invocation, error=refusal.to_dict())
                continue
            invocation.duration_us = result.duration_us
            if result.error is not None:
                self._attempt_failed(invocation, result.error._asdict(), backoff=True)
            else:
                self._finish(invocation, output=result.output or b"")
        self._dispatch(worker.service)

    def undeliverable(self, worker: WorkerHandle, invocation_id: str, reason: str) -> None:
        """An invocation could not be sent to ``worker`` (and never can): it fails."""
        invocation = worker.in_flight.pop(invocation_id, None)
        if invocation is None or invocation.finished:
            return
        _log.error("invocation %s cannot be sent to a worker: %s", invocation_id, reason)
        error = InvalidArgumentError(
            f"invocation {invocation_id} cannot be sent to a worker: {reason}", retryable=False
        )
        self._finish(invocation, error=error.to_dict())
        self._dispatch(worker.service)

    def _refusal(self, worker: WorkerHandle, result: ResultItem) -> AgntError | None:
        """Why ``result`` cannot be its invocation's outcome (the invocation then fails with
        this error), or None."""
        output = result.output
        if output is not None and len(output) > self._max_output_bytes:
            return PayloadTooLargeError(
                f"the result of invocation {result.invocation_id} is {len(output)} bytes, over "
                f"the limit of {self._max_output_bytes} bytes (--max-output-bytes)"
            )
        if output:
            try:
                orjson.loads(output)
            except orjson.JSONDecodeError as exc:
                _log.warning("worker %s sent a result that is not JSON", worker.worker_id)
                return OutputNotSerializableError(
                    f"worker {worker.worker_id} sent a result for invocation "
                    f"{result.invocation_id} that is not valid JSON: {exc}"
                )
        problem = result_problem(result)
        if problem is None:
            return None
        _log.warning("worker %s sent an invalid result: %s", worker.worker_id, problem)
        return FunctionFailedError(
            f"worker {worker.worker_id} sent an invalid result for invocation "
            f"{result.invocation_id}: {problem}",
            error_type="InvalidResult",
        )

    def close(self) -> None:
        """Stop: every unfinished invocation fails with ``UNAVAILABLE`` and its waiters wake."""
        self._closed = True
        for follow in self._follows:
            follow.cancel()
        self.workflows.close()
        error = UnavailableError("the coordinator shut down before the invocation finished")
        for invocation_id in list(self._waiters):
            invocation = self._store.get(invocation_id)
            if invocation is not None and not invocation.finished:
                self._finish(invocation, error=error.to_dict())
        self._queues.clear()
        self.telemetry.close()

    def _check_store(self) -> None:
        """New work needs the store: refuse it (retryably) while the store cannot commit."""
        failure = self._store.failure
        if failure is not None:
            raise _store_unavailable(failure)

    def _deliver(self, worker: WorkerHandle, invocation: Invocation) -> None:
        invocation.state = InvocationState.RUNNING
        invocation.worker_id = worker.worker_id
        worker.in_flight[invocation.id] = invocation
        self._store.save(invocation)
        self.events.changed(invocation)
        worker.outbox.put_nowait(
            InvokeItem(
                invocation.id,
                invocation.function,
                invocation.input,
                self.telemetry.dispatched(invocation, worker.worker_id),
                invocation.attempt,
                invocation.deadline_unix_ms,
                self.workflows.journal_bytes(invocation),
            )
        )

    def _dispatch(self, service: str) -> None:
        """Deliver queued work of ``service`` to its free workers, oldest first."""
        self._queues.dispatch(service, self._offer)

    def _offer(self, invocation: Invocation) -> bool:
        worker = self._registry.pick(invocation.service, invocation.function)
        if worker is None:
            return False
        self._deliver(worker, invocation)
        return True

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
                self.events.changed(invocation)
                self.telemetry.retry(invocation, redelivery=not backoff)
                if delay > 0:
                    self._retries[invocation.id] = asyncio.get_running_loop().call_later(
                        delay, self._retry_due, invocation
                    )
                else:
                    self._requeue(invocation)
                return
        self._finish(invocation, error=error)

    def _retry_due(self, invocation: Invocation) -> None:
        self._retries.pop(invocation.id, None)
        if not invocation.finished:
            self._requeue(invocation)
            self._dispatch(invocation.service)

    def _expire(self, invocation: Invocation) -> None:
        """The deadline passed: fail with TIMEOUT and cancel the attempt on its worker."""
        self._deadlines.pop(invocation.id, None)
        if invocation.finished:
            return
        self._stop_attempt(invocation, "deadline exceeded")
        error = InvocationTimeoutError(
            f"Invocation {invocation.id} of {invocation.service}/{invocation.function} "
            "did not finish before its deadline",
            retryable=False,
        )
        self._finish(invocation, error=error.to_dict())

    def _stop_attempt(self, invocation: Invocation, reason: str) -> None:
        """Take an unfinished invocation out of its queue, or send its worker a ``Cancel``."""
        if invocation.state is InvocationState.PENDING:
            self._queues.remove(invocation)
        entry = self._registry.service(invocation.service)
        worker = entry.workers.get(invocation.worker_id) if entry else None
        if worker is not None and invocation.id in worker.in_flight:
            cancel = worker_pb2.Cancel(invocation_id=invocation.id, reason=reason)
            worker.outbox.put_nowait(worker_pb2.CoordinatorMessage(cancel=cancel))

    def _queue_expired(self, invocation: Invocation) -> None:
        """It waited ``queue_expiry`` seconds for a worker: fail with TIMEOUT."""
        error = InvocationTimeoutError(
            f"Invocation {invocation.id} of {invocation.service}/{invocation.function} waited "
            f"{self._queues.limits.queue_expiry:g} s for a worker (--queue-expiry)",
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
        self._disarm(invocation)
        self._store.save(invocation)
        self.telemetry.finished_invocation(invocation)
        self._store.when_saved(functools.partial(self._announce, invocation))

    def _disarm(self, invocation: Invocation) -> None:
        """Cancel ``invocation``'s deadline, retry and workflow timers here."""
        for timers in (self._deadlines, self._retries):
            timer = timers.pop(invocation.id, None)
            if timer is not None:
                timer.cancel()
        self.workflows.disarm(invocation)

    def _announce(self, invocation: Invocation) -> None:
        """The outcome is saved: wake its waiters (a client never sees an unsaved outcome)."""
        event = self._waiters.pop(invocation.id, None)
        if event is not None:
            event.set()
        for callback in self._listeners.pop(invocation.id, ()):
            callback(invocation)
        self.events.changed(invocation)


def _same_input(existing: Invocation, payload: bytes) -> Invocation:
    """``existing``, the invocation holding a key given again with ``payload``;
    `InvalidArgumentError` when the inputs differ."""
    if existing.input != payload:
        raise InvalidArgumentError(
            f"idempotency key {existing.idempotency_key!r} was used for "
            f"{existing.service}/{existing.function} with a different input: use a new key for "
            "a new input"
        )
    return existing


def _refresh(invocation: Invocation, held: Invocation) -> None:
    """Bring a copy of another coordinator's invocation up to what the store holds."""
    for field in ("state", "attempt", "worker_id", "output", "error", "duration_us"):
        setattr(invocation, field, getattr(held, field))


def _store_unavailable(reason: str) -> UnavailableError:
    return UnavailableError(
        f"the coordinator cannot write its journal ({reason}): it takes no new invocations "
        "until it can; retry later"
    )
