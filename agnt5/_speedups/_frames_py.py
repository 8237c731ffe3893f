"""The frame codec in pure Python, through the generated protobuf classes (twin of `_frames.pyx`).

Decoders take one gRPC message's bytes and return ``(kind, body)``: ``kind`` is the name of the
oneof member set (None for an empty message); ``body`` is a list of records for the batched
kinds and the generated protobuf submessage for the others. Encoders take a list of records
and return the bytes of the whole message (deterministic serialization: map keys sorted).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError

from agnt5._proto import common_pb2, invocations_pb2, worker_pb2
from agnt5._wire.records import (
    INVOKE,
    RESULT,
    STREAM_CALL,
    STREAM_OUTCOME,
    FrameError,
    InvokeItem,
    Layout,
    ResultItem,
    StreamCall,
    StreamOutcome,
    check_record,
    corrupt,
    record_from_message,
    record_to_message,
)

__all__ = [
    "decode_coordinator_message",
    "decode_stream_calls",
    "decode_stream_outcomes",
    "decode_worker_message",
    "encode_invoke_batch",
    "encode_result_batch",
    "encode_stream_calls",
    "encode_stream_outcomes",
]


def _parse(message_cls: Any, data: bytes) -> Any:
    if not isinstance(data, bytes):
        raise TypeError(f"a frame is bytes, got {type(data).__name__}")
    try:
        return message_cls.FromString(data)
    except DecodeError:
        raise corrupt(message_cls.DESCRIPTOR.name) from None


def _envelope(message: Any, batched: str, layout: Layout, field: str) -> tuple[str | None, Any]:
    kind = message.WhichOneof("message")
    if kind != batched:
        return kind, None if kind is None else getattr(message, kind)
    items = getattr(getattr(message, kind), field)
    return kind, [record_from_message(item, layout) for item in items]


def _checked(records: Any, layout: Layout) -> Any:
    if not isinstance(records, list):
        raise FrameError(f"expected a list of {layout.name}, got {type(records).__name__}")
    for record in records:
        check_record(record, layout)
    return records


def _serialize(message: Any, layout: Layout) -> bytes:
    try:
        return bytes(message.SerializeToString(deterministic=True))
    except UnicodeError:
        raise FrameError(f"cannot encode {layout.name}: a string is not valid UTF-8") from None


def _messages(records: list[Any], layout: Layout, message_cls: Any) -> list[Any]:
    try:
        return [record_to_message(r, layout, message_cls, common_pb2.Error) for r in records]
    except UnicodeError:
        raise FrameError(f"cannot encode {layout.name}: a string is not valid UTF-8") from None


def decode_coordinator_message(data: bytes) -> tuple[str | None, Any]:
    """A ``CoordinatorMessage``; ``invoke_batch`` comes as a list of `InvokeItem`."""
    message = _parse(worker_pb2.CoordinatorMessage, data)
    return _envelope(message, "invoke_batch", INVOKE, "invocations")


def decode_worker_message(data: bytes) -> tuple[str | None, Any]:
    """A ``WorkerMessage``; ``result_batch`` comes as a list of `ResultItem`."""
    message = _parse(worker_pb2.WorkerMessage, data)
    return _envelope(message, "result_batch", RESULT, "results")


def decode_stream_calls(data: bytes) -> list[StreamCall]:
    """An ``InvokeStreamRequest`` as its list of `StreamCall`."""
    message = _parse(invocations_pb2.InvokeStreamRequest, data)
    return [record_from_message(call, STREAM_CALL) for call in message.calls]


def decode_stream_outcomes(data: bytes) -> list[StreamOutcome]:
    """An ``InvokeStreamResponse`` as its list of `StreamOutcome`."""
    message = _parse(invocations_pb2.InvokeStreamResponse, data)
    return [record_from_message(outcome, STREAM_OUTCOME) for outcome in message.outcomes]


def encode_invoke_batch(invokes: list[InvokeItem]) -> bytes:
    """A ``CoordinatorMessage`` carrying these invocations as its ``invoke_batch``."""
    batch = worker_pb2.InvokeBatch(
        invocations=_messages(_checked(invokes, INVOKE), INVOKE, worker_pb2.Invoke)
    )
    return _serialize(worker_pb2.CoordinatorMessage(invoke_batch=batch), INVOKE)


def encode_result_batch(results: list[ResultItem]) -> bytes:
    """A ``WorkerMessage`` carrying these results as its ``result_batch``."""
    batch = worker_pb2.ResultBatch(
        results=_messages(_checked(results, RESULT), RESULT, worker_pb2.Result)
    )
    return _serialize(worker_pb2.WorkerMessage(result_batch=batch), RESULT)


def encode_stream_calls(calls: list[StreamCall]) -> bytes:
    """An ``InvokeStreamRequest`` carrying these calls."""
    messages = _messages(_checked(calls, STREAM_CALL), STREAM_CALL, invocations_pb2.StreamCall)
    return _serialize(invocations_pb2.InvokeStreamRequest(calls=messages), STREAM_CALL)


def encode_stream_outcomes(outcomes: list[StreamOutcome]) -> bytes:
    """An ``InvokeStreamResponse`` carrying these outcomes."""
    messages = _messages(
        _checked(outcomes, STREAM_OUTCOME), STREAM_OUTCOME, invocations_pb2.StreamOutcome
    )
    return _serialize(invocations_pb2.InvokeStreamResponse(outcomes=messages), STREAM_OUTCOME)
