"""The compiled frame codec and its protobuf-backed twin agree on every frame and every record."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from _frames_support import DECODERS, HypothesisSource, compare, message, outcome, varint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agnt5._speedups as speedups
from agnt5._proto import common_pb2, invocations_pb2, worker_pb2
from agnt5._speedups import (
    ErrorItem,
    FrameError,
    InvokeItem,
    ResultItem,
    StreamCall,
    StreamOutcome,
    _frames_py,
)

pytestmark = pytest.mark.hot_path

try:
    from agnt5._speedups import _frames as compiled
except ImportError as exc:  # test_speedups_selection fails when the build was expected
    pytest.skip(
        f"compiled frame codec not built ({exc}); run `python setup.py build_ext --inplace`",
        allow_module_level=True,
    )

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ENCODERS = (
    "encode_invoke_batch",
    "encode_result_batch",
    "encode_stream_calls",
    "encode_stream_outcomes",
)

# Records as protobuf can carry them.

texts = st.text(st.characters(codec="utf-8"), max_size=20) | st.sampled_from(["", "x" * 70_000])
blobs = st.binary(max_size=40) | st.sampled_from([b"", b"\x00" * 128, b"\xff" * 300_000])
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
metadata = st.dictionaries(texts, texts, max_size=4)
errors = st.builds(ErrorItem, texts, texts, texts, st.booleans())
outputs = st.one_of(st.tuples(st.none(), st.none()), st.tuples(blobs, st.none()),
                    st.tuples(st.none(), errors))  # fmt: skip
invokes = st.builds(InvokeItem, texts, texts, blobs, metadata, u32, u64)
results = st.builds(lambda i, a, o, d: ResultItem(i, a, o[0], o[1], d), texts, u32, outputs, u64)
calls = st.builds(StreamCall, u64, texts, texts, blobs, texts, u64, metadata)
stream_outcomes = st.builds(lambda r, i, o: StreamOutcome(r, i, o[0], o[1]), u64, texts, outputs)
BATCHES = {
    "encode_invoke_batch": (invokes, "decode_coordinator_message", "invoke_batch"),
    "encode_result_batch": (results, "decode_worker_message", "result_batch"),
    "encode_stream_calls": (calls, "decode_stream_calls", None),
    "encode_stream_outcomes": (stream_outcomes, "decode_stream_outcomes", None),
}


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
def test_encoders_agree_and_round_trip(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(ENCODERS))
    records, decoder, kind = BATCHES[name]
    batch = data.draw(st.lists(records, max_size=5))
    status, encoded = both(name, batch)
    assert status == "ok"
    decoded = getattr(compiled, decoder)(encoded)
    assert decoded == ((kind, batch) if kind else batch)
    compare(decoder, encoded)


@SETTINGS
@given(st.data())
def test_encoders_match_protobuf_serialization(data: st.DataObject) -> None:
    batch = data.draw(st.lists(invokes, max_size=3))
    message = worker_pb2.CoordinatorMessage(
        invoke_batch=worker_pb2.InvokeBatch(
            invocations=[worker_pb2.Invoke(**item._asdict()) for item in batch]
        )
    )
    assert compiled.encode_invoke_batch(batch) == message.SerializeToString(deterministic=True)


@pytest.mark.parametrize(
    ("name", "batch"),
    [
        ("encode_invoke_batch", "not a list"),
        ("encode_invoke_batch", [("a", "b")]),
        ("encode_invoke_batch", [InvokeItem(attempt=-1)]),
        ("encode_invoke_batch", [InvokeItem(attempt=2**32)]),
        ("encode_invoke_batch", [InvokeItem(attempt=True)]),
        ("encode_invoke_batch", [InvokeItem(deadline_unix_ms=2**64)]),
        ("encode_invoke_batch", [InvokeItem(invocation_id=b"bytes")]),
        ("encode_invoke_batch", [InvokeItem(input="text")]),
        ("encode_invoke_batch", [InvokeItem(metadata={"k": 1})]),
        ("encode_invoke_batch", [InvokeItem(metadata=[("k", "v")])]),
        ("encode_invoke_batch", [InvokeItem(component="\ud800")]),
        ("encode_invoke_batch", [InvokeItem(metadata={"\udfff": "v"}), InvokeItem(attempt=-1)]),
        ("encode_result_batch", [ResultItem(output="text")]),
        ("encode_result_batch", [ResultItem(error=("c", "m", "t", False))]),
        ("encode_result_batch", [ResultItem(error=ErrorItem(retryable=1))]),
        ("encode_result_batch", [ResultItem(error=ErrorItem(code=5))]),
        ("encode_stream_calls", [StreamCall(ref=-5)]),
        ("encode_stream_outcomes", [StreamOutcome(ref=1, output=bytearray())]),
    ],
)
def test_encoders_refuse_the_same_records_the_same_way(name: str, batch: Any) -> None:
    status, text = both(name, batch)
    assert status == "error" and text.startswith(("cannot encode", "expected a list"))


def test_repeated_metadata_keys_last_wins() -> None:
    def entry(k: bytes, v: bytes) -> bytes:  # one metadata map entry of an Invoke
        return (
            b"\x22"
            + varint(4 + len(k) + len(v))
            + b"\x0a"
            + varint(len(k))
            + k
            + (b"\x12" + varint(len(v)) + v)
        )

    invoke = entry(b"k", b"1") + b"\x0a\x01a" + entry(b"k", b"2") + entry(b"j", b"")
    frame = b"\x12" + varint(len(invoke) + 2) + b"\x0a" + varint(len(invoke)) + invoke
    _, value = compare("decode_coordinator_message", frame)
    assert value == ("invoke_batch", [InvokeItem("a", metadata={"k": "2", "j": ""})])


def test_repeated_envelopes_and_oneofs_merge_like_protobuf() -> None:
    first = ResultItem("a", 1, None, ErrorItem("E", "m"), 0)
    second = ResultItem("b", 2, b"out", None, 7)
    frame = _frames_py.encode_result_batch([first]) + _frames_py.encode_result_batch([second])
    assert compare("decode_worker_message", frame) == ("ok", ("result_batch", [first, second]))
    error_twice = b"\x22\x03\x0a\x01X" + b"\x22\x03\x12\x01Y"  # error merges: code X, message Y
    result = b"\x1a\x01o" + error_twice
    frame = b"\x12" + varint(len(result) + 2) + b"\x0a" + varint(len(result)) + result
    expected = ResultItem(error=ErrorItem("X", "Y"))
    assert compare("decode_worker_message", frame) == ("ok", ("result_batch", [expected]))


@pytest.mark.parametrize("depth", [97, 98, 99, 100])
def test_nesting_limit_matches_protobuf(depth: int) -> None:
    invoke = b"\x0b" * depth + b"\x0c" * depth
    batch = b"\x0a" + varint(len(invoke)) + invoke
    frame = b"\x12" + varint(len(batch)) + batch
    status, _ = compare("decode_coordinator_message", frame)
    assert status == ("ok" if depth <= 98 else "error")


@pytest.mark.parametrize(
    "frame",
    [b"\x12", b"\x12\x05\x0a", b"\x12\x80", b"\x0c", b"\x00", b"\x12\x02\x0a\x01\xff" * 2,
     b"\x12\x0a" + b"\xff" * 10, b"\x12\x04\x0a\x02\x0a\x01", b"\x1f"],
)  # fmt: skip
def test_truncated_and_garbage_frames_are_frame_errors(frame: bytes) -> None:
    with pytest.raises(FrameError, match="malformed CoordinatorMessage frame"):
        compiled.decode_coordinator_message(frame)
    with pytest.raises(FrameError, match="malformed CoordinatorMessage frame"):
        _frames_py.decode_coordinator_message(frame)


def test_other_envelope_kinds_decode_as_protobuf_messages() -> None:
    cancel = worker_pb2.Cancel(invocation_id="i", reason="deadline")
    frame = worker_pb2.CoordinatorMessage(cancel=cancel).SerializeToString()
    assert compare("decode_coordinator_message", frame) == ("ok", ("cancel", cancel))
    assert compare("decode_coordinator_message", b"") == ("ok", (None, None))
    register = worker_pb2.Register(service_name="s", components=[common_pb2.Component(name="f")])
    frame = worker_pb2.WorkerMessage(register=register).SerializeToString()
    assert compare("decode_worker_message", frame) == ("ok", ("register", register))


def test_stream_frames_are_what_protobuf_reads() -> None:
    call = StreamCall(3, "svc", "fn", b"[1]", "key", 50, {"traceparent": "00-x"})
    parsed = invocations_pb2.InvokeStreamRequest.FromString(compiled.encode_stream_calls([call]))
    assert parsed.calls[0].ref == 3 and dict(parsed.calls[0].metadata) == call.metadata


@pytest.mark.parametrize("name", [d[0] for d in DECODERS])
def test_non_bytes_frames_are_type_errors(name: str) -> None:
    for implementation in (compiled, _frames_py):
        with pytest.raises(TypeError, match="a frame is bytes, got str"):
            getattr(implementation, name)("text")


def test_selector_exposes_one_implementation() -> None:
    expected = (
        "agnt5._speedups._frames" if speedups.USE_EXTENSIONS else "agnt5._speedups._frames_py"
    )
    module = importlib.import_module(expected)
    for name in (*ENCODERS, *(d[0] for d in DECODERS)):
        assert getattr(speedups, name) is getattr(module, name)
