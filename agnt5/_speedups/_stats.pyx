"""Invocation counts and durations of one function, compiled (API: see `_stats_py`).

Updating is plain C arithmetic on fixed arrays (the error-code counts are a dict, touched only
by failures); reading builds the same Python values as the twin.
"""

from agnt5._speedups._stats_py import MAX_BOUNDS, OUTCOMES, check_bounds

cdef enum:
    _MAX_BOUNDS = 32
    _OUTCOMES = 4

assert MAX_BOUNDS == _MAX_BOUNDS and len(OUTCOMES) == _OUTCOMES

__all__ = ["FunctionStats"]


cdef class FunctionStats:
    """Since creation: invocations running now, finished ones by outcome and error code, and
    a histogram of their durations in seconds per outcome over ``bounds``."""

    cdef public long long running
    cdef double _bounds[_MAX_BOUNDS]
    cdef int _size
    cdef long long _buckets[_OUTCOMES][_MAX_BOUNDS + 1]
    cdef long long _successes
    cdef double _sum[_OUTCOMES]
    cdef double _min[_OUTCOMES]
    cdef double _max[_OUTCOMES]
    cdef dict _codes
    cdef tuple _bounds_tuple

    def __init__(self, bounds):
        cdef int i, j
        self._bounds_tuple = check_bounds(bounds)
        self._size = len(self._bounds_tuple)
        for i in range(self._size):
            self._bounds[i] = self._bounds_tuple[i]
        for i in range(_OUTCOMES):
            for j in range(_MAX_BOUNDS + 1):
                self._buckets[i][j] = 0
            self._sum[i] = 0.0
            self._min[i] = float("inf")
            self._max[i] = float("-inf")
        self._codes = {}
        self._successes = 0
        self.running = 0

    def started(self):
        """An invocation began."""
        self.running += 1

    def finished(self, double seconds, int outcome, code):
        """An invocation that `started` ended after ``seconds`` with ``outcome`` and ``code``."""
        cdef int index = 0
        if type(code) is not str:
            raise TypeError(f"code must be a str, got {type(code).__name__}")
        if outcome < 0 or outcome >= _OUTCOMES:
            raise ValueError(f"outcome must be 0 to {_OUTCOMES - 1}, got {outcome!r}")
        self.running -= 1
        while index < self._size and self._bounds[index] < seconds:
            index += 1
        self._buckets[outcome][index] += 1
        self._sum[outcome] += seconds
        if seconds < self._min[outcome]:
            self._min[outcome] = seconds
        if seconds > self._max[outcome]:
            self._max[outcome] = seconds
        if outcome == 0 and not code:
            self._successes += 1  # the common case, kept out of the dict
        else:
            key = (outcome, code)
            self._codes[key] = self._codes.get(key, 0) + 1

    @property
    def bounds(self):
        return self._bounds_tuple

    def counts(self):
        """``(outcome, error code, invocations)`` for every pair seen, sorted."""
        found = list(self._codes.items())
        if self._successes:
            found.append(((0, ""), self._successes))
        return sorted([(outcome, code, count) for (outcome, code), count in found])

    def durations(self):
        """``(outcome, count, sum, min, max, bucket counts)`` for every outcome seen."""
        cdef int outcome, index
        cdef long long total
        found = []
        for outcome in range(_OUTCOMES):
            total = 0
            for index in range(self._size + 1):
                total += self._buckets[outcome][index]
            if total:
                counts = tuple([self._buckets[outcome][index] for index in range(self._size + 1)])
                found.append(
                    (outcome, total, self._sum[outcome], self._min[outcome], self._max[outcome], counts)
                )
        return found
