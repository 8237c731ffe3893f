"""The coordinator's metrics and spans: what its ``/metrics`` shows, one span per invocation.

Counts are plain integers kept on the event loop as things happen; OpenTelemetry reads them,
and the state of every service (queues, workers, work in flight), when a metric reader
collects, so the per-invocation cost is a dictionary update. Every service the coordinator
knows has its series, at zero until something happens, as does every rejection reason.

A span per invocation (``invocation SERVICE/FUNCTION``, when a tracer provider is configured)
starts when the invocation is accepted, as a child of the caller's W3C ``traceparent``, marks
each delivery to a worker with a ``dispatch`` event, and ends with the outcome. The worker is
sent the span's own ``traceparent``, so the worker's span is its child: one trace from the
caller through the coordinator to the handler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry import propagate, trace
from opentelemetry.metrics import Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from agnt5.errors import AgntError, ErrorCode

if TYPE_CHECKING:
    from agnt5.coordinator.store import Invocation

__all__ = ["REJECTION_REASONS", "CoordinatorTelemetry", "ServiceState"]

REJECTION_REASONS = {
    ErrorCode.UNAUTHENTICATED: "auth",
    ErrorCode.RESOURCE_EXHAUSTED: "quota",
    ErrorCode.PAYLOAD_TOO_LARGE: "quota",
    ErrorCode.INVALID_ARGUMENT: "validation",
    ErrorCode.NOT_FOUND: "not_found",
    ErrorCode.UNAVAILABLE: "unavailable",
}
"""The ``agnt5.reason`` of a refused request, by its error's code (any other: ``other``)."""
_REASONS = (*dict.fromkeys(REJECTION_REASONS.values()), "other")
_DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SIZE_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServiceState(NamedTuple):
    """One service as the metrics see it when they are collected."""

    name: str
    workers: int
    in_flight: int
    queued: int
    queued_bytes: int
    oldest_queued: float | None
    """Seconds the longest-waiting queued invocation has waited (None: nothing queued)."""
    timers_pending: int


def _keyed(service: str, function: str) -> dict[str, str]:
    return {"agnt5.service": service, "agnt5.function": function}


class CoordinatorTelemetry:
    """Counts what the coordinator does; after `attach`, reports the counts as OpenTelemetry
    instruments and traces invocations. ``services()`` gives the state of every known service
    when the metrics are collected."""

    def __init__(self, services: Callable[[], Iterable[ServiceState]]) -> None:
        self._services = services
        self._tracer: Any = None
        self._spans: dict[str, Any] = {}
        self.accepted: dict[tuple[str, str], int] = {}
        self.finished: dict[tuple[str, str, str, str], int] = {}
        self.retried: dict[tuple[str, str], int] = {}
        self.redelivered: dict[tuple[str, str], int] = {}
        self.rejected: dict[str, int] = dict.fromkeys(_REASONS, 0)
        self._commit_duration: Any = None
        self._commit_size: Any = None

    def attach(self, meter: Any, tracer: Any) -> None:
        """Report the counts as instruments on ``meter`` and trace invocations with ``tracer``
        from now on (either None: not that one)."""
        self._tracer = tracer
        if meter is not None:
            self._instruments(meter)

    # What happens, as it happens (on the event loop).

    def declare(self, service: str, functions: Iterable[str]) -> None:
        """A worker registered these functions: their counts start at zero."""
        for function in functions:
            key = (service, function)
            if key not in self.accepted:
                self.accepted[key] = self.retried[key] = self.redelivered[key] = 0
                self.finished.setdefault((service, function, "success", ""), 0)

    def accepted_invocation(self, invocation: Invocation) -> None:
        """A new invocation was accepted: counted, and its span starts."""
        key = (invocation.service, invocation.function)
        self.accepted[key] = self.accepted.get(key, 0) + 1
        if self._tracer is not None:
            self._start_span(invocation)

    def recovered(self, invocation: Invocation, redelivery: bool) -> None:
        """An invocation an earlier coordinator left unfinished is taken back."""
        if redelivery:
            self.retry(invocation, redelivery=True)
        if self._tracer is not None:
            self._start_span(invocation, recovered=True)

    def dispatched(self, invocation: Invocation, worker_id: str) -> Mapping[str, str]:
        """An attempt goes to ``worker_id``: the metadata to send it with (carrying the
        invocation's span as the worker's parent)."""
        span = self._spans.get(invocation.id)
        if span is None:
            return invocation.metadata
        event = {"agnt5.worker_id": worker_id, "agnt5.attempt": invocation.attempt}
        span.add_event("dispatch", event)
        carrier = dict(invocation.metadata)
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        return carrier

    def retry(self, invocation: Invocation, *, redelivery: bool) -> None:
        """A failed attempt is tried again: after a retryable error (``redelivery=False``), or
        because its worker was lost or the coordinator restarted."""
        counts = self.redelivered if redelivery else self.retried
        key = (invocation.service, invocation.function)
        counts[key] = counts.get(key, 0) + 1

    def finished_invocation(self, invocation: Invocation) -> None:
        """An invocation has its outcome: counted, and its span ends."""
        error = invocation.error
        outcome, code = ("success", "") if error is None else ("error", str(error["code"]))
        key = (invocation.service, invocation.function, outcome, code)
        self.finished[key] = self.finished.get(key, 0) + 1
        span = self._spans.pop(invocation.id, None)
        if span is not None:
            _end_span(span, invocation, outcome, code)

    def refused(self, error: AgntError) -> None:
        """A request was refused with ``error`` (counted by reason)."""
        reason = REJECTION_REASONS.get(error.code, "other")
        self.rejected[reason] += 1

    def close(self) -> None:
        """End the spans of invocations still unfinished (the coordinator stops)."""
        spans, self._spans = self._spans, {}
        for span in spans.values():
            span.set_attribute("agnt5.outcome", "unfinished")
            span.end()

    # Spans.

    def _start_span(self, invocation: Invocation, recovered: bool = False) -> None:
        metadata = invocation.metadata
        parent = propagate.extract(metadata) if "traceparent" in metadata else None
        attributes: dict[str, Any] = {
            "agnt5.service": invocation.service,
            "agnt5.function": invocation.function,
            "agnt5.invocation_id": invocation.id,
        }
        if recovered:
            attributes["agnt5.recovered"] = True
        self._spans[invocation.id] = self._tracer.start_span(
            f"invocation {invocation.service}/{invocation.function}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
        )

    # Metrics, read when a reader collects.

    def _instruments(self, meter: Any) -> None:
        counters = (
            ("agnt5.coordinator.invocations", "{invocation}", self._observe_finished,
             "Invocations finished, by service, function, outcome and error code."),
            ("agnt5.coordinator.invocations.accepted", "{invocation}", self._counts(self.accepted),
             "Invocations accepted, by service and function."),
            ("agnt5.coordinator.retries", "{attempt}", self._counts(self.retried),
             "Attempts retried after a retryable error, by service and function."),
            ("agnt5.coordinator.redeliveries", "{attempt}", self._counts(self.redelivered),
             "Attempts delivered again because their worker was lost or the coordinator "
             "restarted, by service and function."),
            ("agnt5.coordinator.rejected", "{request}", self._observe_rejected,
             "Requests refused, by reason: auth, quota, validation, not_found, unavailable, other."),
        )  # fmt: skip
        for name, unit, callback, description in counters:
            meter.create_observable_counter(
                name, callbacks=[callback], unit=unit, description=description
            )
        gauges = (
            ("agnt5.coordinator.queue.depth", "{invocation}", "queued",
             "Invocations waiting for a worker, by service."),
            ("agnt5.coordinator.queue.bytes", "By", "queued_bytes",
             "Input bytes waiting for a worker, by service."),
            ("agnt5.coordinator.queue.oldest_age", "s", "oldest_queued",
             "Seconds the longest-waiting queued invocation has waited (0: none), by service."),
            ("agnt5.coordinator.invocations.in_flight", "{invocation}", "in_flight",
             "Invocations running on workers, by service."),
            ("agnt5.coordinator.workers", "{worker}", "workers",
             "Connected workers, by service."),
            ("agnt5.coordinator.workflow.timers_pending", "{timer}", "timers_pending",
             "Durable workflow timers waiting to fire, by service."),
        )  # fmt: skip
        for name, unit, field, description in gauges:
            meter.create_observable_gauge(
                name, callbacks=[self._gauge(field)], unit=unit, description=description
            )
        self._commit_duration = meter.create_histogram(
            "agnt5.coordinator.journal.commit.duration",
            unit="s",
            description="Seconds one journal commit took (a batch of changes, or pruning).",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._commit_size = meter.create_histogram(
            "agnt5.coordinator.journal.commit.size",
            unit="{change}",
            description="Changes written by one journal commit.",
            explicit_bucket_boundaries_advisory=_SIZE_BUCKETS,
        )

    def committed(self, seconds: float, changes: int) -> None:
        """The journal committed ``changes`` in ``seconds`` (called from its writer thread)."""
        if self._commit_duration is not None:
            self._commit_duration.record(seconds)
            self._commit_size.record(changes)

    @staticmethod
    def _counts(counts: dict[tuple[str, str], int]) -> Callable[[Any], list[Any]]:
        def observe(options: Any) -> list[Any]:
            return [Observation(n, _keyed(*key)) for key, n in list(counts.items())]

        return observe

    def _observe_finished(self, options: Any) -> list[Any]:
        found = []
        for (service, function, outcome, code), count in list(self.finished.items()):
            labels = {**_keyed(service, function), "agnt5.outcome": outcome}
            if code:
                labels["agnt5.error_code"] = code
            found.append(Observation(count, labels))
        return found

    def _observe_rejected(self, options: Any) -> list[Any]:
        return [Observation(n, {"agnt5.reason": r}) for r, n in list(self.rejected.items())]

    def _gauge(self, field: str) -> Callable[[Any], list[Any]]:
        def observe(options: Any) -> list[Any]:
            return [
                Observation(getattr(state, field) or 0, {"agnt5.service": state.name})
                for state in self._services()
            ]

        return observe


def _end_span(span: Any, invocation: Invocation, outcome: str, code: str) -> None:
    span.set_attribute("agnt5.outcome", outcome)
    span.set_attribute("agnt5.attempt", invocation.attempt)
    if code:
        span.set_attribute("agnt5.error_code", code)
        span.set_attribute("error.type", code)
        message = str((invocation.error or {}).get("message", ""))
        span.set_status(Status(StatusCode.ERROR, message[:1000]))
    span.end()
