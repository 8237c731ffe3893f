"""The frame codec, each twin against protobuf: round trips, refusals, merges, limits, errors."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

import pytest
from _frames_support import BAD_BATCHES, BATCHES, DECODERS, ENCODERS, invokes, varint
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agnt5._speedups as speedups
from agnt5._proto import common_pb2, invocations_pb2, worker_pb2, workflow_pb2
from agnt5._wire.records import (
    ErrorItem,
    FrameError,
    InvokeItem,
    ResultItem,
    StreamCall,
    StreamOutcome,
)

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def batch_frame(batch_field: int, records: bytes) -> bytes:
    """A Coordinator/WorkerMessage whose batch (field ``batch_field``) holds ``records``."""
    return bytes([batch_field << 3 | 2]) + varint(len(records)) + records


@SETTINGS
@given(st.data())
def test_encoded_batches_decode_to_themselves(impl: SimpleNamespace, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(ENCODERS))
    records, decoder, kind = BATCHES[name]
    batch = data.draw(st.lists(records, max_size=5))
    decoded = getattr(impl, decoder)(getattr(impl, name)(batch))
    assert decoded == ((kind, batch) if kind else batch)


@SETTINGS
@given(st.lists(invokes, max_size=3))
def test_encoders_write_what_protobuf_writes(impl: SimpleNamespace, batch: list[Any]) -> None:
    message = worker_pb2.CoordinatorMessage(
        invoke_batch=worker_pb2.InvokeBatch(
            invocations=[worker_pb2.Invoke(**item._asdict()) for item in batch]
        )
    )
    assert impl.encode_invoke_batch(batch) == message.SerializeToString(deterministic=True)


@pytest.mark.parametrize(("name", "batch"), BAD_BATCHES)
def test_bad_records_are_refused_naming_the_slot(
    impl: SimpleNamespace, name: str, batch: Any
) -> None:
    with pytest.raises(FrameError, match="^(cannot encode|expected a list)"):
        getattr(impl, name)(batch)


def test_repeated_metadata_keys_last_wins(impl: SimpleNamespace) -> None:
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
    frame = batch_frame(2, b"\x0a" + varint(len(invoke)) + invoke)
    expected = ("invoke_batch", [InvokeItem("a", metadata={"k": "2", "j": ""})])
    assert impl.decode_coordinator_message(frame) == expected


def test_repeated_envelopes_and_oneofs_merge_like_protobuf(impl: SimpleNamespace) -> None:
    first = ResultItem("a", 1, None, ErrorItem("E", "m"), 0)
    second = ResultItem("b", 2, b"out", None, 7)
    frame = impl.encode_result_batch([first]) + impl.encode_result_batch([second])
    assert impl.decode_worker_message(frame) == ("result_batch", [first, second])
    error_twice = b"\x22\x03\x0a\x01X" + b"\x22\x03\x12\x01Y"  # error merges: code X, message Y
    result = b"\x1a\x01o" + error_twice
    frame = batch_frame(2, b"\x0a" + varint(len(result)) + result)
    expected = ResultItem(error=ErrorItem("X", "Y"))
    assert impl.decode_worker_message(frame) == ("result_batch", [expected])


@pytest.mark.parametrize("depth", [97, 98, 99, 100])
def test_nesting_limit_matches_protobuf(impl: SimpleNamespace, depth: int) -> None:
    invoke = b"\x0b" * depth + b"\x0c" * depth
    frame = batch_frame(2, b"\x0a" + varint(len(invoke)) + invoke)
    try:
        worker_pb2.CoordinatorMessage.FromString(frame)
    except DecodeError:
        with pytest.raises(FrameError):
            impl.decode_coordinator_message(frame)
    else:
        assert impl.decode_coordinator_message(frame) == ("invoke_batch", [InvokeItem()])


@pytest.mark.parametrize(
    "frame",
    [b"\x12", b"\x12\x05\x0a", b"\x12\x80", b"\x0c", b"\x00", b"\x12\x02\x0a\x01\xff" * 2,
     b"\x12\x0a" + b"\xff" * 10, b"\x12\x04\x0a\x02\x0a\x01", b"\x1f"],
)  # fmt: skip
def test_truncated_and_garbage_frames_are_frame_errors(impl: SimpleNamespace, frame: bytes) -> None:
    with pytest.raises(FrameError, match="^malformed CoordinatorMessage frame$"):
        impl.decode_coordinator_message(frame)


def test_other_envelope_kinds_decode_as_protobuf_messages(impl: SimpleNamespace) -> None:
    cancel = worker_pb2.Cancel(invocation_id="i", reason="deadline")
    frame = worker_pb2.CoordinatorMessage(cancel=cancel).SerializeToString()
    assert impl.decode_coordinator_message(frame) == ("cancel", cancel)
    assert impl.decode_coordinator_message(b"") == (None, None)
    register = worker_pb2.Register(service_name="s", components=[common_pb2.Component(name="f")])
    frame = worker_pb2.WorkerMessage(register=register).SerializeToString()
    assert impl.decode_worker_message(frame) == ("register", register)


def test_workflow_kinds_decode_as_protobuf_messages(impl: SimpleNamespace) -> None:
    commands = workflow_pb2.WorkflowCommands(
        commands=[workflow_pb2.WorkflowCommand(invocation_id="i", seq=2, suspend={"waiting": [1]})]
    )
    frame = worker_pb2.WorkerMessage(workflow_commands=commands).SerializeToString()
    assert impl.decode_worker_message(frame) == ("workflow_commands", commands)
    events = workflow_pb2.WorkflowEvents(
        events=[workflow_pb2.WorkflowEvent(invocation_id="i", entry={"seq": 2, "state": 2})]
    )
    frame = worker_pb2.CoordinatorMessage(workflow_events=events).SerializeToString()
    assert impl.decode_coordinator_message(frame) == ("workflow_events", events)


def test_an_invoke_carries_its_journal(impl: SimpleNamespace) -> None:
    invoke = InvokeItem("i", "wf", b"{}", {}, 2, 0, b"\x0a\x02\x08\x01")
    frame = impl.encode_invoke_batch([invoke])
    parsed = worker_pb2.CoordinatorMessage.FromString(frame).invoke_batch.invocations[0]
    assert parsed.journal == invoke.journal
    assert impl.decode_coordinator_message(frame) == ("invoke_batch", [invoke])


def test_stream_frames_are_what_protobuf_reads(impl: SimpleNamespace) -> None:
    call = StreamCall(3, "svc", "fn", b"[1]", "key", 50, {"traceparent": "00-x"})
    parsed = invocations_pb2.InvokeStreamRequest.FromString(impl.encode_stream_calls([call]))
    assert parsed.calls[0].ref == 3 and dict(parsed.calls[0].metadata) == call.metadata
    outcome = StreamOutcome(3, "inv", None, ErrorItem("E", "m", "T", True))
    parsed = invocations_pb2.InvokeStreamResponse.FromString(impl.encode_stream_outcomes([outcome]))
    assert parsed.outcomes[0].error.retryable is True


@pytest.mark.parametrize("name", [d[0] for d in DECODERS])
def test_non_bytes_frames_are_type_errors(impl: SimpleNamespace, name: str) -> None:
    with pytest.raises(TypeError, match="^a frame is bytes, got str$"):
        getattr(impl, name)("text")


def test_selector_exposes_one_implementation() -> None:
    expected = (
        "agnt5._speedups._frames" if speedups.USE_EXTENSIONS else "agnt5._speedups._frames_py"
    )
    module = importlib.import_module(expected)
    for name in (*ENCODERS, *(d[0] for d in DECODERS)):
        assert getattr(speedups, name) is getattr(module, name)
