"""`Instrumentation`: the span, metrics and log scope around one invocation.

Per invocation the hot path sets the log scope, counts the invocation in its function's
`FunctionStats` (compiled), and asks the spans (`_spans`) for a span, which for an unsampled
invocation without a parent is nothing at all. The OpenTelemetry SDK sees the metrics when a
reader collects (`_metrics`), and sampled spans as their invocation ends.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import Observation

from agnt5._speedups._stats_py import CANCELLED, ERROR, OUTCOMES, SUCCESS, SUSPENDED
from agnt5.errors import AgntError, ErrorCode
from agnt5.telemetry._logs import bind_invocation, unbind_invocation
from agnt5.telemetry._metrics import InvocationMetrics
from agnt5.telemetry._spans import make_spans
from agnt5.workflows.run import WorkflowSuspended

if TYPE_CHECKING:
    from agnt5._handler_threads import ThreadUsage
    from agnt5.telemetry._exposition import Exposition

__all__ = ["Instrumentation"]


class Instrumentation:
    """What a runtime wraps every invocation in; create it with `agnt5.telemetry.create_instrumentation`."""

    def __init__(
        self,
        service_name: str,
        *,
        tracer: Any,
        meter: Any,
        meter_provider: Any = None,
        logger_provider: Any,
        exposition: Exposition | None = None,
        owned: list[Any],
    ) -> None:
        self.service_name = service_name
        self.logger_provider = logger_provider
        self.exposition = exposition
        """What ``/metrics`` renders (a standalone worker serving health endpoints), or None."""
        self._meter = meter
        self._tracer = tracer
        self._spans = None if tracer is None else make_spans(tracer, service_name)
        self._metrics = None if meter is None else InvocationMetrics(meter, meter_provider)
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
                self._metrics.stats(function)

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
        metrics, spans = self._metrics, self._spans
        stats = None if metrics is None else metrics.stats(function_name)
        if stats is not None:
            stats.started()
        span = token = None
        if spans is not None:
            span, token = spans.start(function_name, invocation_id, attempt, metadata)
        started = time.perf_counter()
        outcome, code, failure = SUCCESS, "", None
        try:
            return await run()
        except asyncio.CancelledError:
            outcome, code = CANCELLED, ErrorCode.CANCELLED
            raise
        except WorkflowSuspended:
            outcome = SUSPENDED
            raise
        except Exception as exc:
            outcome, code, failure = ERROR, _error_code(exc), exc
            raise
        finally:
            elapsed = time.perf_counter() - started
            if spans is not None:
                spans.finish(span, token, OUTCOMES[outcome], code, failure)
            if stats is not None:
                stats.finished(elapsed, outcome, code)
                if metrics.recorded_duration is not None:  # type: ignore[union-attr]
                    labels = _duration_labels(function_name, OUTCOMES[outcome])
                    metrics.recorded_duration.record(elapsed, labels)  # type: ignore[union-attr]
            unbind_invocation(scope)

    def shutdown(self) -> None:
        """Give the metric readers back, then flush and shut down the providers this
        instrumentation created (never ones passed in)."""
        if self._metrics is not None:
            self._metrics.close()
        owned, self._owned = self._owned, []
        for provider in owned:
            provider.shutdown()


@functools.lru_cache(maxsize=1024)
def _duration_labels(function: str, outcome: str) -> dict[str, str]:
    return {"agnt5.function": function, "agnt5.outcome": outcome}


def _error_code(exc: Exception) -> str:
    if isinstance(exc, AgntError):
        return str(exc.code)
    if isinstance(exc, TimeoutError):
        return ErrorCode.TIMEOUT
    return ErrorCode.FUNCTION_FAILED
