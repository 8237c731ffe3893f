"""`FunctionStats`, both twins: the counts and duration histograms behind the invocation metrics."""

from __future__ import annotations

import bisect
import importlib
import math
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agnt5._speedups._stats_py import CANCELLED, ERROR, SUCCESS

BOUNDS = (0.001, 0.01, 0.1, 1.0)


def test_counts_and_durations_by_outcome(impl: SimpleNamespace) -> None:
    stats = impl.FunctionStats(BOUNDS)
    for _ in range(3):
        stats.started()
    assert stats.running == 3
    stats.finished(0.0005, SUCCESS, "")
    stats.finished(0.01, SUCCESS, "")  # on a bound: that bound's bucket, as the SDK counts it
    stats.finished(2.5, ERROR, "TIMEOUT")
    assert stats.running == 0
    assert stats.counts() == [(SUCCESS, "", 2), (ERROR, "TIMEOUT", 1)]
    assert stats.durations() == [
        (SUCCESS, 2, 0.0105, 0.0005, 0.01, (1, 1, 0, 0, 0)),
        (ERROR, 1, 2.5, 2.5, 2.5, (0, 0, 0, 0, 1)),
    ]
    assert stats.bounds == BOUNDS


def test_nothing_finished_reads_empty(impl: SimpleNamespace) -> None:
    stats = impl.FunctionStats(BOUNDS)
    assert (stats.counts(), stats.durations(), stats.running) == ([], [], 0)


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ((), "need 1 to 32 histogram bounds, got 0"),
        (tuple(range(33)), "need 1 to 32 histogram bounds, got 33"),
        ((1.0, 1.0), "histogram bounds must be finite and increasing, got [1.0, 1.0]"),
        ((1.0, math.inf), "histogram bounds must be finite and increasing, got [1.0, inf]"),
    ],
)
def test_bad_bounds_are_refused(
    impl: SimpleNamespace, bounds: tuple[float, ...], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        impl.FunctionStats(bounds)
    assert str(caught.value) == message


def test_bad_outcomes_and_codes_are_refused(impl: SimpleNamespace) -> None:
    stats = impl.FunctionStats(BOUNDS)
    with pytest.raises(ValueError, match="^outcome must be 0 to 3, got 4$"):
        stats.finished(0.1, 4, "")
    with pytest.raises(TypeError, match="^code must be a str, got NoneType$"):
        stats.finished(0.1, ERROR, None)
    assert stats.durations() == []


finishes = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=100, allow_nan=False),
        st.sampled_from([SUCCESS, ERROR, CANCELLED]),
        st.sampled_from(["", "TIMEOUT", "FUNCTION_FAILED"]),
    ),
    max_size=50,
)


@pytest.mark.c_extension
@given(finishes)
def test_the_twins_agree(finished: list[tuple[float, int, str]]) -> None:
    made = [importlib.import_module(name).FunctionStats(BOUNDS) for name in
            ("agnt5._speedups._stats", "agnt5._speedups._stats_py")]  # fmt: skip
    for stats in made:
        for seconds, outcome, code in finished:
            stats.started()
            stats.finished(seconds, outcome, code)
    compiled, pure = made
    assert compiled.counts() == pure.counts()
    assert compiled.running == pure.running
    for left, right in zip(compiled.durations(), pure.durations(), strict=True):
        assert left[:2] == right[:2] and left[3:] == right[3:]
        assert left[2] == pytest.approx(right[2])


@given(finishes)
def test_buckets_match_the_sdk_rule(finished: list[tuple[float, int, str]]) -> None:
    from agnt5._speedups import FunctionStats

    stats = FunctionStats(BOUNDS)
    expected = {}
    for seconds, outcome, code in finished:
        stats.started()
        stats.finished(seconds, outcome, code)
        buckets = expected.setdefault(outcome, [0] * (len(BOUNDS) + 1))
        buckets[bisect.bisect_left(BOUNDS, seconds)] += 1
    assert {row[0]: list(row[5]) for row in stats.durations()} == expected
