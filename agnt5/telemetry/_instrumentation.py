"""`Instrumentation`: the span, metrics and log scope around one invocation."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from agnt5.errors import AgntError, ErrorCode
from agnt5.telemetry._logs import bind_invocation, unbind_invocation
from agnt5.workflows.run import WorkflowSuspended

if TYPE_CHECKING:
    from agnt5._handler_threads import ThreadUsage
    from agnt5.telemetry._exposition import Exposition

__all__ = ["Instrumentation"]

_DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class _Metrics:
    """The duration histogram, and outcome/in-flight counts kept as plain ints the SDK reads when it collects."""

    __slots__ = ("duration", "finished", "running")

    def __init__(self, meter: Any) -> None:
        self.finished: dict[tuple[str, str, str], int] = {}
        self.running: dict[str, int] = {}
        self.duration = meter.create_histogram(
            "agnt5.invocation.duration",
            unit="s",
            description="Invocation duration in seconds, by function and outcome.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        meter.create_observable_counter(
            "agnt5.invocations",
            callbacks=[self._observe_finished],
            unit="{invocation}",
            description="Invocations finished, by function and outcome.",
        )
        meter.create_observable_up_down_counter(
            "agnt5.invocations.in_flight",
            callbacks=[self._observe_running],
            unit="{invocation}",
            description="Invocations running now, by function.",
        )

    def _observe_finished(self, options: CallbackOptions) -> list[Observation]:
        return [
            Observation(count, _labels(function, outcome, code))
            for (function, outcome, code), count in self.finished.copy().items()
        ]

    def _observe_running(self, options: CallbackOptions) -> list[Observation]:
        return [
            Observation(count, _labels(function)) for function, count in self.running.copy().items()
        ]


class Instrumentation:
    """What a runtime wraps every invocation in; create it with `agnt5.telemetry.create_instrumentation`."""

    def __init__(
        self,
        service_name: str,
        *,
        tracer: Any,
        meter: Any,
        logger_provider: Any,
        exposition: Exposition | None = None,
        owned: list[Any],
    ) -> None:
        self.service_name = service_name
        self.logger_provider = logger_provider
        self.exposition = exposition
        """What ``/metrics`` renders (a standalone worker serving health endpoints), or None."""
        self._tracer = tracer
        self._meter = meter
        self._metrics = None if meter is None else _Metrics(meter)
        self._owned = owned

    @property
    def tracer(self) -> Any:
        """The OpenTelemetry tracer spans are made with, or None when tracing is off."""
        return self._tracer

    def observe_threads(self, threads: ThreadUsage) -> None:
        """Report the sync-handler thread pool's use: its size, busy threads, and threads held
        by handlers whose invocations timed out."""
        if self._meter is None:
            return
        gauges = (
            ("agnt5.threads.limit", "size", "Threads the worker runs sync handlers on, at most."),
            ("agnt5.threads.busy", "busy", "Threads running a sync handler now."),
            ("agnt5.threads.timed_out", "timed_out",
             "Busy threads whose invocation timed out or was cancelled: a sync handler cannot "
             "be interrupted, so it holds its thread until it returns."),
        )  # fmt: skip
        for name, field, description in gauges:
            self._meter.create_observable_gauge(
                name,
                callbacks=[lambda options, field=field: [Observation(getattr(threads, field))]],
                unit="{thread}",
                description=description,
            )

    def declare(self, functions: Iterable[str]) -> None:
        """Start the invocation counts of ``functions`` at zero, so their series exist before
        their first invocation."""
        if self._metrics is not None:
            for function in functions:
                self._metrics.finished.setdefault((function, "success", ""), 0)
                self._metrics.running.setdefault(function, 0)

    async def observe(
        self,
        function_name: str,
        invocation_id: str,
        attempt: int,
        metadata: Mapping[str, str],
        run: Callable[[], Awaitable[bytes]],
    ) -> bytes:
        """Await ``run()`` inside the invocation's log scope, span and metrics; its result or error passes through.

        The span is a child of a W3C ``traceparent`` in ``metadata``. ``run`` should raise agnt5
        errors (``TimeoutError`` counts as ``TIMEOUT``); a cancellation is recorded as ``CANCELLED``.
        """
        scope = bind_invocation(invocation_id, self.service_name, function_name)
        try:
            if self._tracer is None and self._metrics is None:
                return await run()
            return await self._measured(function_name, invocation_id, attempt, metadata, run)
        finally:
            unbind_invocation(scope)

    async def _measured(
        self,
        function_name: str,
        invocation_id: str,
        attempt: int,
        metadata: Mapping[str, str],
        run: Callable[[], Awaitable[bytes]],
    ) -> bytes:
        metrics = self._metrics
        if metrics is not None:
            metrics.running[function_name] = metrics.running.get(function_name, 0) + 1
        span = token = None
        if self._tracer is not None:
            parent = propagate.extract(metadata) if "traceparent" in metadata else None
            span = self._tracer.start_span(
                f"invoke {function_name}",
                context=parent,
                kind=SpanKind.SERVER,
                attributes={
                    "agnt5.service": self.service_name,
                    "agnt5.function": function_name,
                    "agnt5.invocation_id": invocation_id,
                    "agnt5.attempt": attempt,
                    "agnt5.outcome": "success",
                },
            )
            token = otel_context.attach(trace.set_span_in_context(span, parent))
        started = time.perf_counter()
        outcome, code, failure = "success", "", None
        try:
            return await run()
        except asyncio.CancelledError:
            outcome, code = "cancelled", ErrorCode.CANCELLED
            raise
        except WorkflowSuspended:
            outcome = "suspended"
            raise
        except Exception as exc:
            outcome, code, failure = "error", _error_code(exc), exc
            raise
        finally:
            elapsed = time.perf_counter() - started
            if span is not None:
                _finish_span(span, outcome, code, failure)
                otel_context.detach(token)
            if metrics is not None:
                metrics.running[function_name] -= 1
                key = (function_name, outcome, code)
                metrics.finished[key] = metrics.finished.get(key, 0) + 1
                metrics.duration.record(elapsed, _duration_labels(function_name, outcome))

    def shutdown(self) -> None:
        """Flush and shut down the providers this instrumentation created (never ones passed in)."""
        owned, self._owned = self._owned, []
        for provider in owned:
            provider.shutdown()


@functools.lru_cache(maxsize=1024)
def _duration_labels(function: str, outcome: str) -> dict[str, str]:
    return _labels(function, outcome)


def _labels(function: str, outcome: str = "", code: str = "") -> dict[str, str]:
    labels = {"agnt5.function": function}
    if outcome:
        labels["agnt5.outcome"] = outcome
    if code:
        labels["agnt5.error_code"] = code
    return labels


def _error_code(exc: Exception) -> str:
    if isinstance(exc, AgntError):
        return exc.code
    if isinstance(exc, TimeoutError):
        return ErrorCode.TIMEOUT
    return ErrorCode.FUNCTION_FAILED


def _finish_span(span: Any, outcome: str, code: str, failure: Exception | None) -> None:
    if outcome != "success":  # the span started with outcome "success"
        span.set_attribute("agnt5.outcome", outcome)
    if code:
        span.set_attribute("agnt5.error_code", code)
        span.set_attribute("error.type", code)
        span.set_status(Status(StatusCode.ERROR, str(failure) if failure is not None else outcome))
    if failure is not None:
        span.record_exception(failure)
    span.end()
