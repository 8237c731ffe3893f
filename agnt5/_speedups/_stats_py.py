"""Invocation counts and durations of one function, in pure Python; its API, documented.

The compiled twin (`_stats`) has the same class with the same results and errors; select one
with `agnt5._speedups`. The worker's telemetry keeps one `FunctionStats` per function, updates
it on the event loop around every invocation (``started``, ``finished``) and reads it when a
metric reader collects (``counts``, ``durations``). Durations fall in the histogram bucket of
the first bound they do not exceed (as the OpenTelemetry SDK's explicit-bucket histogram does).
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left
from collections.abc import Sequence

__all__ = ["CANCELLED", "ERROR", "MAX_BOUNDS", "OUTCOMES", "SUCCESS", "SUSPENDED", "FunctionStats"]

OUTCOMES = ("success", "error", "cancelled", "suspended")
"""The ``agnt5.outcome`` of a finished invocation (a workflow's attempt may end suspended), by
its number."""
SUCCESS, ERROR, CANCELLED, SUSPENDED = range(len(OUTCOMES))
MAX_BOUNDS = 32
"""The most histogram bounds a `FunctionStats` takes."""


def check_bounds(bounds: Sequence[float]) -> tuple[float, ...]:
    """``bounds`` as floats, or `ValueError` unless they are 1 to `MAX_BOUNDS` finite,
    strictly increasing numbers."""
    values = tuple(float(bound) for bound in bounds)
    if not 0 < len(values) <= MAX_BOUNDS:
        raise ValueError(f"need 1 to {MAX_BOUNDS} histogram bounds, got {len(values)}")
    if not all(map(math.isfinite, values)) or any(a >= b for a, b in itertools.pairwise(values)):
        raise ValueError(f"histogram bounds must be finite and increasing, got {list(values)}")
    return values


class FunctionStats:
    """Since creation: invocations running now, finished ones by outcome and error code, and
    a histogram of their durations in seconds per outcome over ``bounds``."""

    __slots__ = ("_bounds", "_buckets", "_codes", "_max", "_min", "_sum", "running")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = check_bounds(bounds)
        self._buckets = [[0] * (len(self._bounds) + 1) for _ in OUTCOMES]
        self._sum = [0.0] * len(OUTCOMES)
        self._min = [math.inf] * len(OUTCOMES)
        self._max = [-math.inf] * len(OUTCOMES)
        self._codes: dict[tuple[int, str], int] = {}
        self.running = 0
        """Invocations started and not finished."""

    def started(self) -> None:
        """An invocation began."""
        self.running += 1

    def finished(self, seconds: float, outcome: int, code: str) -> None:
        """An invocation that `started` ended after ``seconds`` with ``outcome`` (`SUCCESS`,
        `ERROR`, `CANCELLED` or `SUSPENDED`) and error ``code`` ("" unless an error)."""
        if type(code) is not str:
            raise TypeError(f"code must be a str, got {type(code).__name__}")
        if not 0 <= outcome < len(OUTCOMES):
            raise ValueError(f"outcome must be 0 to {len(OUTCOMES) - 1}, got {outcome!r}")
        self.running -= 1
        self._buckets[outcome][bisect_left(self._bounds, seconds)] += 1
        self._sum[outcome] += seconds
        if seconds < self._min[outcome]:
            self._min[outcome] = seconds
        if seconds > self._max[outcome]:
            self._max[outcome] = seconds
        key = (outcome, code)
        self._codes[key] = self._codes.get(key, 0) + 1

    @property
    def bounds(self) -> tuple[float, ...]:
        return self._bounds

    def counts(self) -> list[tuple[int, str, int]]:
        """``(outcome, error code, invocations)`` for every pair seen, sorted."""
        return sorted((outcome, code, count) for (outcome, code), count in self._codes.items())

    def durations(self) -> list[tuple[int, int, float, float, float, tuple[int, ...]]]:
        """``(outcome, count, sum, min, max, bucket counts)`` for every outcome seen; the last
        bucket counts durations above the last bound."""
        found = []
        for outcome, buckets in enumerate(self._buckets):
            counts = tuple(buckets)
            total = sum(counts)
            if total:
                found.append(
                    (
                        outcome,
                        total,
                        self._sum[outcome],
                        self._min[outcome],
                        self._max[outcome],
                        counts,
                    )
                )
        return found
