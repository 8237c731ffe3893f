"""The compiled frame codec and its protobuf-backed twin agree on every frame and every record."""

from __future__ import annotations

from typing import Any

import pytest
from _frames_support import (
    BAD_BATCHES,
    BATCHES,
    DECODERS,
    ENCODERS,
    HypothesisSource,
    compare,
    message,
    outcome,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agnt5._speedups import _frames_py

pytestmark = pytest.mark.hot_path

try:
    from agnt5._speedups import _frames as compiled
except ImportError:  # these tests are c_extension: deselected where the twins are pure
    compiled = None

pytestmark = pytest.mark.c_extension

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def both(name: str, *args: Any) -> Any:
    """Call ``name`` on both implementations; same value or same `FrameError` message."""
    expected = outcome(lambda _: getattr(_frames_py, name)(*args), b"")
    actual = outcome(lambda _: getattr(compiled, name)(*args), b"")
    assert actual == expected
    return expected


@st.composite
def frames(draw: Any) -> tuple[str, bytes]:
    source = HypothesisSource(draw)
    name, spec, favour = source.choice(DECODERS)
    return name, message(source, spec, 0, favour)


@SETTINGS
@given(frames())
def test_decoders_agree_on_generated_frames(case: tuple[str, bytes]) -> None:
    compare(*case)


@SETTINGS
@given(st.sampled_from([d[0] for d in DECODERS]), st.binary(max_size=64))
def test_decoders_agree_on_garbage(name: str, data: bytes) -> None:
    compare(name, data)


@SETTINGS
@given(st.data())
def test_encoders_agree(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(ENCODERS))
    records, decoder, _ = BATCHES[name]
    status, encoded = both(name, data.draw(st.lists(records, max_size=5)))
    assert status == "ok"
    compare(decoder, encoded)


@pytest.mark.parametrize(("name", "batch"), BAD_BATCHES)
def test_encoders_refuse_the_same_records_the_same_way(name: str, batch: Any) -> None:
    status, text = both(name, batch)
    assert status == "error" and text.startswith(("cannot encode", "expected a list"))
