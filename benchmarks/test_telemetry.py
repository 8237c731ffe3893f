"""In-process cost of the telemetry seam of the invocation pipeline, per no-op invocation.

Each round runs a batch of invocations in one coroutine, so the event loop's own overhead is
amortised and the medians compare the seam alone:

- ``floor``: the attempt's execution alone (the pipeline's ``_execute``), no seam at all;
- ``off``: `create_instrumentation` returned ``None``: ``Pipeline.run`` as runtimes call it (goal ≤ 3%);
- ``scope``: log correlation only (``log_format=json``, nothing exported);
- ``on``: a span and three metrics per invocation into in-memory exporters;
- ``parented``: as ``on``, with a W3C ``traceparent`` to extract.

    pytest benchmarks/test_telemetry.py --benchmark-only
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agnt5 import function
from agnt5._pipeline import Pipeline
from agnt5._registry import REGISTRY
from agnt5.config import WorkerConfig
from agnt5.telemetry import Instrumentation, create_instrumentation

BATCH = 200
TRACEPARENT = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


@function(name="bench_telemetry_noop")
def noop() -> None:
    return None


def _config(**options: Any) -> WorkerConfig:
    """A worker's settings without a health port (whose ``/metrics`` would turn metrics on)."""
    return WorkerConfig.resolve({}, service_name="bench", health_port=0, **options)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _batch(instrumentation: Instrumentation | None, metadata: dict[str, str]) -> Callable[[], Any]:
    """One round: ``BATCH`` invocations run exactly as a runtime runs them."""
    route = Pipeline("bench", REGISTRY, telemetry=instrumentation).route("bench_telemetry_noop")

    async def one_batch() -> None:
        for n in range(BATCH):
            await route.run(b"", str(n), 1, metadata)

    return one_batch


def _floor() -> Callable[[], Any]:
    """One round without any seam, in the same closure shape as `_batch`."""
    route = Pipeline("bench", REGISTRY).route("bench_telemetry_noop")

    async def one_batch() -> None:
        for n in range(BATCH):
            await route._execute(b"", None, str(n))

    return one_batch


@pytest.mark.parametrize("variant", ["floor", "off", "scope", "on", "parented"])
def test_seam(benchmark: Any, loop: asyncio.AbstractEventLoop, variant: str) -> None:
    benchmark.group = f"telemetry seam (per {BATCH} no-op invocations)"
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    instrumentation = None
    if variant == "off":
        instrumentation = create_instrumentation(_config())
        assert instrumentation is None
    elif variant == "scope":
        instrumentation = create_instrumentation(_config(log_format="json"))
    elif variant in ("on", "parented"):
        instrumentation = create_instrumentation(
            _config(), tracer_provider=provider, metric_readers=[InMemoryMetricReader()]
        )
    batch = (
        _floor()
        if variant == "floor"
        else _batch(instrumentation, TRACEPARENT if variant == "parented" else {})
    )

    def round_() -> None:
        loop.run_until_complete(batch())
        spans.clear()

    benchmark(round_)
    if instrumentation is not None:
        instrumentation.shutdown()
    provider.shutdown()


def test_off_against_floor_interleaved(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    """``off`` vs ``floor`` alternating round by round, so machine drift hits both alike.

    The medians and their ratio land in ``extra_info`` (``--benchmark-json``); the goal is ≤ 1.03.
    """
    benchmark.group = "telemetry seam off vs floor (interleaved rounds)"
    assert create_instrumentation(_config()) is None
    batches = {"floor": _floor(), "off": _batch(None, {})}
    times: dict[str, list[float]] = {"floor": [], "off": []}

    def ab_round() -> None:
        for name, batch in batches.items():
            started = time.perf_counter()
            loop.run_until_complete(batch())
            times[name].append(time.perf_counter() - started)

    benchmark.pedantic(ab_round, rounds=300, warmup_rounds=20)
    floor, off = (statistics.median(times[name]) for name in ("floor", "off"))
    benchmark.extra_info.update(
        floor_median_us=floor * 1e6, off_median_us=off * 1e6, off_over_floor=off / floor
    )
