"""The span of each invocation: sampled before the SDK is touched, recorded cheaply, exported after.

`FastSpans` serves an SDK tracer whose sampler it can decide exactly (``always_on``,
``always_off``, ``traceidratio`` and ``parentbased_*`` of those, what ``OTEL_TRACES_SAMPLER``
names): it draws the trace id and decides as that sampler would, so

- an unsampled invocation creates no SDK object: with a parent (a ``traceparent`` in its
  metadata, or a span current where it runs) it runs under a non-recording child span, which
  carries the parent's trace and the not-sampled flag to whatever the handler calls; without
  one, under no span at all;
- a sampled one runs under a `_Recording`: an API span that keeps what is done to it. When the
  invocation ends it becomes the SDK span the tracer would have made: a ``ReadableSpan`` handed
  to the span processors' ``on_end`` when nothing but the invocation's own attributes were set
  and the processors do nothing on start (the SDK's batch and simple processors: the common
  case, a fraction of the cost of an SDK span), else an SDK span started, replayed and ended
  with the recorded times.

Any other tracer or sampler gets `SdkSpans`: the tracer's ``start_span`` per invocation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from time import time_ns
from types import MappingProxyType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, Tracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ParentBased,
    Sampler,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

__all__ = ["FastSpans", "SdkSpans", "make_spans"]

_log = logging.getLogger("agnt5.telemetry")

_SAMPLED = TraceFlags.SAMPLED
_RANDOM = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)  # W3C level 2 flag, newer SDKs set it
_PLAIN = (BatchSpanProcessor, SimpleSpanProcessor)
_UNSET = Status(StatusCode.UNSET)

Decide = Callable[[SpanContext | None, int], bool]
"""Whether to sample a span with this parent (None: a root) and trace id."""


def make_spans(tracer: Any, service_name: str) -> FastSpans | SdkSpans:
    """`FastSpans` where it decides exactly as ``tracer`` would, else `SdkSpans`."""
    if type(tracer) is Tracer:
        decide = _decider(tracer.sampler)
        if decide is not None and _span_class() is not None:
            return FastSpans(tracer, service_name, decide)
    return SdkSpans(tracer, service_name)


def _span_class() -> Any:
    try:
        from opentelemetry.sdk.trace import _Span
    except ImportError:  # an SDK that renamed it: every span through start_span
        return None
    return _Span


def _decider(sampler: Sampler) -> Decide | None:
    """A function deciding as ``sampler`` does, for the SDK's own samplers (None for others)."""
    kind = type(sampler)
    if isinstance(sampler, StaticSampler) and kind.should_sample is StaticSampler.should_sample:
        sampled = sampler.should_sample(None, 1, "").decision.is_sampled()
        return lambda parent, trace_id: sampled
    if kind is TraceIdRatioBased:
        bound, limit = sampler.bound, TraceIdRatioBased.TRACE_ID_LIMIT
        return lambda parent, trace_id: trace_id & limit < bound
    if isinstance(sampler, ParentBased) and kind.should_sample is ParentBased.should_sample:
        parts = [
            _decider(getattr(sampler, name, None))  # type: ignore[arg-type]
            for name in ("_root", "_remote_parent_sampled", "_remote_parent_not_sampled",
                         "_local_parent_sampled", "_local_parent_not_sampled")
        ]  # fmt: skip
        if any(part is None for part in parts):
            return None
        root, remote_yes, remote_no, local_yes, local_no = parts

        def parent_based(parent: SpanContext | None, trace_id: int) -> bool:
            if parent is None:
                return root(parent, trace_id)  # type: ignore[misc]
            if parent.is_remote:
                chosen = remote_yes if parent.trace_flags.sampled else remote_no
            else:
                chosen = local_yes if parent.trace_flags.sampled else local_no
            return chosen(parent, trace_id)  # type: ignore[misc]

        return parent_based
    return None


class _Recording(trace.Span):
    """A sampled invocation's span while it runs: keeps what is done to it, to replay later."""

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        parent_context: Any,
        attributes: dict[str, Any],
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.parent_context = parent_context
        self.attributes = attributes
        self.operations: list[tuple[str, tuple[Any, ...]]] = []
        self.outcome: tuple[str, str, BaseException | None] | None = None
        self.start_ns = time_ns()
        self.end_ns = 0

    def _keep(self, operation: str, *args: Any) -> None:
        if not self.end_ns:  # after the invocation the SDK span has ended: ignored, as there
            self.operations.append((operation, args))

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return not self.end_ns and not any(op == "end" for op, _ in self.operations)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self._keep("set_attributes", dict(attributes))

    def set_attribute(self, key: str, value: Any) -> None:
        self._keep("set_attribute", key, value)

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        self._keep("add_event", name, attributes, time_ns() if timestamp is None else timestamp)

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        self._keep("add_link", context, attributes)

    def update_name(self, name: str) -> None:
        self._keep("update_name", name)

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        self._keep("set_status", status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Any = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        stamp = time_ns() if timestamp is None else timestamp
        self._keep("record_exception", exception, attributes, stamp, escaped)

    def end(self, end_time: int | None = None) -> None:
        self._keep("end", time_ns() if end_time is None else end_time)


class FastSpans:
    """Spans for an SDK `Tracer` whose sampling ``decide`` reproduces."""

    def __init__(self, tracer: Tracer, service_name: str, decide: Decide) -> None:
        self._tracer = tracer
        self._service_name = service_name
        self._decide = decide
        self._ids = tracer.id_generator
        random_ids = getattr(self._ids, "is_trace_id_random", None)
        self._root_random = _RANDOM if random_ids is not None and random_ids() else 0
        processors = getattr(tracer.span_processor, "_span_processors", None)
        self._plain = processors is not None and all(_plain(p) for p in processors)
        limits = tracer._span_limits
        self._limits = limits
        self._small = limits.max_span_attribute_length is None and (
            limits.max_span_attributes is None or limits.max_span_attributes >= 8
        )

    def start(
        self, function_name: str, invocation_id: str, attempt: int, metadata: Mapping[str, str]
    ) -> tuple[_Recording | None, object]:
        """The span an invocation runs under, made current; returns it (None when unsampled)
        and the token to `finish` it with (None when nothing was made current)."""
        if "traceparent" in metadata:
            context = propagate.extract(metadata)
            parent = trace.get_current_span(context).get_span_context()
        else:
            context = None
            parent = trace.get_current_span().get_span_context()
        if parent.is_valid:
            trace_id = parent.trace_id
            flags = parent.trace_flags & _RANDOM
            trace_state = parent.trace_state
        else:
            parent = None
            trace_id = self._ids.generate_trace_id()
            flags = self._root_random
            trace_state = None
        if not self._decide(parent, trace_id):
            if parent is None:
                return None, None
            child = SpanContext(
                trace_id, self._ids.generate_span_id(), False, TraceFlags(flags), trace_state
            )
            return None, otel_context.attach(
                trace.set_span_in_context(NonRecordingSpan(child), context)
            )
        span_context = SpanContext(
            trace_id, self._ids.generate_span_id(), False, TraceFlags(flags | _SAMPLED), trace_state
        )
        attributes = {
            "agnt5.service": self._service_name,
            "agnt5.function": function_name,
            "agnt5.invocation_id": invocation_id,
            "agnt5.attempt": attempt,
            "agnt5.outcome": "success",
        }
        span = _Recording(f"invoke {function_name}", span_context, parent, context, attributes)
        return span, otel_context.attach(trace.set_span_in_context(span, context))

    def finish(
        self,
        span: _Recording | None,
        token: object,
        outcome: str,
        code: str,
        failure: BaseException | None,
    ) -> None:
        """End what `start` began; a sampled span goes to the span processors now."""
        if token is not None:
            otel_context.detach(token)
        if span is None:
            return
        span.end_ns = time_ns()
        span.outcome = (outcome, code, failure)
        try:
            if span.operations or outcome != "success" or not self._plain:
                self._replay(span)
            else:
                self._tracer.span_processor.on_end(self._readable(span))
        except Exception:  # a failing processor must not fail the invocation
            _log.exception("a span processor failed on the span of %s", span.name)

    def _readable(self, span: _Recording) -> ReadableSpan:
        """The span as the SDK would hand it to ``on_end`` (only the invocation's attributes)."""
        tracer = self._tracer
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=tracer.resource,
            attributes=MappingProxyType(span.attributes) if self._small else self._bounded(span),
            kind=SpanKind.SERVER,
            status=_UNSET,
            start_time=span.start_ns,
            end_time=span.end_ns,
            instrumentation_info=tracer.instrumentation_info,
            instrumentation_scope=tracer._instrumentation_scope,
        )

    def _bounded(self, span: _Recording) -> Any:
        from opentelemetry.attributes import BoundedAttributes

        limits = self._limits
        return BoundedAttributes(
            limits.max_span_attributes,
            span.attributes,
            immutable=True,
            max_value_len=limits.max_span_attribute_length,
        )

    def _replay(self, span: _Recording) -> None:
        """Make the SDK span: start it, apply what was recorded, end it, at the recorded times."""
        tracer = self._tracer
        made = _span_class()(
            name=span.name,
            context=span.context,
            parent=span.parent,
            sampler=tracer.sampler,
            resource=tracer.resource,
            attributes=MappingProxyType(span.attributes),
            span_processor=tracer.span_processor,
            kind=SpanKind.SERVER,
            links=(),
            instrumentation_info=tracer.instrumentation_info,
            limits=self._limits,
            instrumentation_scope=tracer._instrumentation_scope,
        )
        made.start(start_time=span.start_ns, parent_context=span.parent_context)
        for operation, args in span.operations:
            if operation == "add_event":
                made.add_event(args[0], args[1], timestamp=args[2])
            elif operation == "record_exception":
                made.record_exception(args[0], args[1], timestamp=args[2], escaped=args[3])
            elif operation == "end":
                made.end(end_time=args[0])
            else:
                getattr(made, operation)(*args)
        outcome, code, failure = span.outcome  # type: ignore[misc]
        finish_span(made, outcome, code, failure, timestamp=span.end_ns)
        made.end(end_time=span.end_ns)


class SdkSpans:
    """Spans through the tracer's ``start_span``, for tracers `FastSpans` cannot stand in for."""

    def __init__(self, tracer: Any, service_name: str) -> None:
        self._tracer = tracer
        self._service_name = service_name

    def start(
        self, function_name: str, invocation_id: str, attempt: int, metadata: Mapping[str, str]
    ) -> tuple[Any, object]:
        parent = propagate.extract(metadata) if "traceparent" in metadata else None
        span = self._tracer.start_span(
            f"invoke {function_name}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "agnt5.service": self._service_name,
                "agnt5.function": function_name,
                "agnt5.invocation_id": invocation_id,
                "agnt5.attempt": attempt,
                "agnt5.outcome": "success",
            },
        )
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    def finish(
        self, span: Any, token: object, outcome: str, code: str, failure: BaseException | None
    ) -> None:
        finish_span(span, outcome, code, failure)
        span.end()
        otel_context.detach(token)


def finish_span(
    span: Any, outcome: str, code: str, failure: BaseException | None, timestamp: int | None = None
) -> None:
    """Set the invocation's outcome on ``span`` (which started with outcome "success")."""
    if outcome != "success":
        span.set_attribute("agnt5.outcome", outcome)
    if code:
        span.set_attribute("agnt5.error_code", code)
        span.set_attribute("error.type", code)
        span.set_status(Status(StatusCode.ERROR, str(failure) if failure is not None else outcome))
    if failure is not None:
        span.record_exception(failure, timestamp=timestamp)


def _plain(processor: SpanProcessor) -> bool:
    """Whether ``processor`` does nothing until a span ends (so a ReadableSpan is all it needs)."""
    kind = type(processor)
    if kind in _PLAIN:
        return True
    return kind.on_start is SpanProcessor.on_start and getattr(kind, "_on_ending", None) is getattr(
        SpanProcessor, "_on_ending", None
    )
