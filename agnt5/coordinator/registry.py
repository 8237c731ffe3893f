"""Services -> workers -> components: who is connected, what they serve, how busy they are."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

from agnt5._proto import common_pb2, worker_pb2
from agnt5.coordinator.store import Invocation, RetryPolicy
from agnt5.errors import UnavailableError

__all__ = ["CLOSE", "Registry", "ServiceEntry", "WorkerHandle", "retry_policy"]

CLOSE: Any = object()
"""Put on a worker's outbox to end its stream."""


@dataclasses.dataclass(eq=False)
class WorkerHandle:
    """One connected worker: what it serves, its capacity, its in-flight work and its outbox."""

    worker_id: str
    service: str
    version: str
    components: dict[str, common_pb2.Component]
    max_concurrency: int
    outbox: asyncio.Queue[Any] = dataclasses.field(default_factory=asyncio.Queue)
    in_flight: dict[str, Invocation] = dataclasses.field(default_factory=dict)
    draining: bool = False
    closed: bool = False
    last_seen: float = dataclasses.field(default_factory=time.monotonic)

    @classmethod
    def from_register(cls, register: worker_pb2.Register) -> WorkerHandle:
        return cls(
            worker_id=register.worker_id,
            service=register.service_name,
            version=register.service_version,
            components={c.name: c for c in register.components},
            max_concurrency=max(1, register.max_concurrency),
        )

    def can_take(self, function: str) -> bool:
        """Open, not draining, serves ``function`` and below its ``max_concurrency``."""
        return (
            not self.closed
            and not self.draining
            and len(self.in_flight) < self.max_concurrency
            and function in self.components
        )

    def close(self) -> None:
        """Mark the worker gone and end its stream writer."""
        if not self.closed:
            self.closed = True
            self.outbox.put_nowait(CLOSE)


@dataclasses.dataclass(eq=False)
class ServiceEntry:
    """A service: the components and version its latest worker announced, and its live workers."""

    name: str
    version: str
    components: dict[str, common_pb2.Component]
    workers: dict[str, WorkerHandle] = dataclasses.field(default_factory=dict)
    idle_since: float | None = None  # monotonic time its last worker left, while it has none


_POLICY_CACHE_LIMIT = 4096
_policies: dict[int, tuple[common_pb2.Component, RetryPolicy]] = {}


def retry_policy(component: common_pb2.Component) -> RetryPolicy:
    """The retry budget and backoff a component declared (defaults when it sent no config).

    Memoized per component object (held, so its id cannot be reused): it runs per invocation.
    """
    cached = _policies.get(id(component))
    if cached is not None and cached[0] is component:
        return cached[1]
    policy = _read_policy(component)
    if len(_policies) >= _POLICY_CACHE_LIMIT:
        _policies.clear()
    _policies[id(component)] = (component, policy)
    return policy


def _read_policy(component: common_pb2.Component) -> RetryPolicy:
    default = RetryPolicy()
    if not component.HasField("config"):
        return default
    config = component.config
    backoff = config.backoff
    initial = backoff.initial_ms / 1000 if backoff.initial_ms else default.initial
    return RetryPolicy(
        retries=config.retries,
        initial=initial,
        multiplier=backoff.multiplier if backoff.multiplier >= 1 else default.multiplier,
        maximum=max(initial, backoff.max_ms / 1000 if backoff.max_ms else default.maximum),
    )


class Registry:
    """Every service the coordinator has seen and its workers; a service outlives its workers
    until `forget_idle` drops it."""

    def __init__(self) -> None:
        self._services: dict[str, ServiceEntry] = {}

    def add(self, worker: WorkerHandle) -> WorkerHandle | None:
        """Register ``worker``; returns an earlier, closed handle with its id (now replaced).

        A worker id serves one stream at a time: while a connected worker has the id, another
        Register with it is refused (`UnavailableError`), so nobody can take over a live
        worker by reusing its id.
        """
        entry = self._services.get(worker.service)
        previous = entry.workers.get(worker.worker_id) if entry is not None else None
        if previous is not None and not previous.closed:
            raise UnavailableError(
                f"worker id {worker.worker_id!r} is connected to service {worker.service!r} on "
                "another stream: use another worker id, or retry once that one disconnects"
            )
        if entry is None:
            entry = self._services[worker.service] = ServiceEntry(
                worker.service, worker.version, worker.components
            )
        entry.version, entry.components = worker.version, worker.components
        entry.workers[worker.worker_id] = worker
        entry.idle_since = None
        return previous

    def remove(self, worker: WorkerHandle) -> None:
        """Forget ``worker`` (its service and components stay known)."""
        entry = self._services.get(worker.service)
        if entry is not None and entry.workers.get(worker.worker_id) is worker:
            del entry.workers[worker.worker_id]
            if not entry.workers:
                entry.idle_since = time.monotonic()

    def forget_idle(self, before: float, keep: Callable[[str], bool]) -> None:
        """Drop the services without workers since before ``before`` (monotonic), except
        those ``keep`` names."""
        for name, entry in list(self._services.items()):
            if entry.idle_since is not None and entry.idle_since < before and not keep(name):
                del self._services[name]

    def service(self, name: str) -> ServiceEntry | None:
        return self._services.get(name)

    def component(self, service: str, function: str) -> common_pb2.Component | None:
        """How ``service/function`` was declared: by the service's newest registration, else
        by an older worker still connected that serves it."""
        entry = self._services.get(service)
        if entry is None:
            return None
        component = entry.components.get(function)
        if component is None:
            serving = (w for w in entry.workers.values() if function in w.components)
            component = next((w.components[function] for w in serving), None)
        return component

    def services(self) -> list[ServiceEntry]:
        return [self._services[name] for name in sorted(self._services)]

    def workers(self) -> Iterator[WorkerHandle]:
        for entry in list(self._services.values()):
            yield from list(entry.workers.values())

    def pick(self, service: str, function: str) -> WorkerHandle | None:
        """The free live worker of ``service`` serving ``function`` with the fewest in flight."""
        entry = self._services.get(service)
        if entry is None:
            return None
        best: WorkerHandle | None = None
        for worker in entry.workers.values():  # a plain loop: this runs once per invocation
            if worker.can_take(function) and (
                best is None or len(worker.in_flight) < len(best.in_flight)
            ):
                best = worker
        return best
