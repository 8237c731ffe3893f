"""The frame codec in pure Python, through the generated protobuf classes; its API, documented.

The compiled twin (`_frames`) has the same functions with the same results and errors; select
one with `agnt5._speedups`. Decoders take one gRPC message's bytes; the envelope decoders return
``(kind, body)``: ``kind`` is the name of the oneof member set (None for an empty message) and
``body`` a list of records for the batched kind, the generated protobuf submessage for the
others. Encoders take a list of records and return the bytes of the whole message
(deterministic serialization: map keys sorted). A malformed frame or a record that cannot be
encoded raises `FrameError`; a frame that is not ``bytes`` raises `TypeError`.
"""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf import message_factory
from google.protobuf.message import DecodeError

from agnt5._wire.records import (
    COORDINATOR_MESSAGE,
    MAP,
    ONEOF_BYTES,
    ONEOF_RECORD,
    STREAM_REQUEST,
    STREAM_RESPONSE,
    WORKER_MESSAGE,
    Frame,
    FrameError,
    InvokeItem,
    Layout,
    ResultItem,
    StreamCall,
    StreamOutcome,
    check_record,
    corrupt,
    descriptor,
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


def decode_coordinator_message(data: bytes) -> tuple[str | None, Any]:
    """A ``CoordinatorMessage``; ``invoke_batch`` comes as a list of `InvokeItem`."""
    return _decode_envelope(COORDINATOR_MESSAGE, data)


def decode_worker_message(data: bytes) -> tuple[str | None, Any]:
    """A ``WorkerMessage``; ``result_batch`` comes as a list of `ResultItem`."""
    return _decode_envelope(WORKER_MESSAGE, data)


def decode_stream_calls(data: bytes) -> list[StreamCall]:
    """An ``InvokeStreamRequest`` as its list of `StreamCall`."""
    return _records(_parse(STREAM_REQUEST, data), STREAM_REQUEST)


def decode_stream_outcomes(data: bytes) -> list[StreamOutcome]:
    """An ``InvokeStreamResponse`` as its list of `StreamOutcome`."""
    return _records(_parse(STREAM_RESPONSE, data), STREAM_RESPONSE)


def encode_invoke_batch(invokes: list[InvokeItem]) -> bytes:
    """A ``CoordinatorMessage`` carrying these invocations as its ``invoke_batch``."""
    return _encode(COORDINATOR_MESSAGE, invokes)


def encode_result_batch(results: list[ResultItem]) -> bytes:
    """A ``WorkerMessage`` carrying these results as its ``result_batch``."""
    return _encode(WORKER_MESSAGE, results)


def encode_stream_calls(calls: list[StreamCall]) -> bytes:
    """An ``InvokeStreamRequest`` carrying these calls."""
    return _encode(STREAM_REQUEST, calls)


def encode_stream_outcomes(outcomes: list[StreamOutcome]) -> bytes:
    """An ``InvokeStreamResponse`` carrying these outcomes."""
    return _encode(STREAM_RESPONSE, outcomes)


@functools.cache
def _class(message: str) -> Any:
    return message_factory.GetMessageClass(descriptor(message))


@functools.cache
def _oneof(message: str, member: str) -> str:
    """The name of the oneof that field ``member`` of ``message`` belongs to."""
    return str(descriptor(message).fields_by_name[member].containing_oneof.name)


@functools.cache
def _batch_message(frame: Frame) -> str:
    assert frame.batch is not None
    return str(descriptor(frame.message).fields_by_name[frame.batch].message_type.full_name)


def _parse(frame: Frame, data: bytes) -> Any:
    if not isinstance(data, bytes):
        raise TypeError(f"a frame is bytes, got {type(data).__name__}")
    cls = _class(frame.message)
    try:
        return cls.FromString(data)
    except DecodeError:
        raise corrupt(cls.DESCRIPTOR.name) from None


def _decode_envelope(frame: Frame, data: bytes) -> tuple[str | None, Any]:
    assert frame.batch is not None
    message = _parse(frame, data)
    kind = message.WhichOneof(_oneof(frame.message, frame.batch))
    if kind != frame.batch:
        return kind, None if kind is None else getattr(message, kind)
    return kind, _records(getattr(message, kind), frame)


def _records(holder: Any, frame: Frame) -> list[Any]:
    return [_record(item, frame.layout) for item in getattr(holder, frame.items)]


def _record(message: Any, layout: Layout) -> Any:
    """The record for a generated protobuf message."""
    values: list[Any] = []
    for name, kind in zip(layout.cls._fields, layout.kinds, strict=True):  # type: ignore[attr-defined]
        value = getattr(message, name)
        if kind in (ONEOF_BYTES, ONEOF_RECORD):
            if message.WhichOneof(_oneof(layout.message, name)) != name:
                value = None
            elif kind == ONEOF_RECORD:
                value = _record(value, layout.sub)  # type: ignore[arg-type]
        elif kind == MAP:
            value = dict(value)
        values.append(value)
    return layout.cls(*values)


def _message(record: Any, layout: Layout) -> Any:
    """The generated protobuf message for a (checked) record."""
    fields: dict[str, Any] = {}
    for name, kind, value in zip(record._fields, layout.kinds, record, strict=True):
        if value is None:
            continue
        fields[name] = _message(value, layout.sub) if kind == ONEOF_RECORD else value  # type: ignore[arg-type]
    return _class(layout.message)(**fields)


def _encode(frame: Frame, records: Any) -> bytes:
    layout = frame.layout
    if not isinstance(records, list):
        raise FrameError(f"expected a list of {layout.name}, got {type(records).__name__}")
    for record in records:
        check_record(record, layout)
    try:
        batch = {frame.items: [_message(record, layout) for record in records]}
        if frame.batch is not None:
            batch = {frame.batch: _class(_batch_message(frame))(**batch)}
        return bytes(_class(frame.message)(**batch).SerializeToString(deterministic=True))
    except UnicodeError:
        raise FrameError(f"cannot encode {layout.name}: a string is not valid UTF-8") from None
