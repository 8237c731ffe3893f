"""A bounded run of the frame codec fuzzer: mutated frames decode the same in both, or fail cleanly.

The long run is ``python tests/fuzz_frames.py 1000000``; this is its short CI version.
"""

from __future__ import annotations

from typing import Any

import pytest
from _frames_support import HypothesisSource, compare, frame, fuzz, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.c_extension, pytest.mark.hot_path]  # compiled twin vs pure one


@pytest.mark.parametrize("seed", [1, 2])
def test_seeded_mutation_fuzz(seed: int) -> None:
    counts = fuzz(3_000, seed)
    assert counts["ok"] > 0 and counts["error"] > 0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_driven_mutation(data: Any) -> None:
    source = HypothesisSource(data.draw)
    name, payload = frame(source)
    for _ in range(source.randint(1, 3)):
        payload = mutate(source, payload, frame(source)[1])
    compare(name, payload)
