"""The frame codec API, identical in `_frames` (compiled) and `_frames_py` (pure Python)."""

from typing import Any

from agnt5._wire.records import InvokeItem, ResultItem, StreamCall, StreamOutcome

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
    """``(kind, body)``: ``("invoke_batch", [InvokeItem, ...])`` or another kind's protobuf message."""

def decode_worker_message(data: bytes) -> tuple[str | None, Any]:
    """``(kind, body)``: ``("result_batch", [ResultItem, ...])`` or another kind's protobuf message."""

def decode_stream_calls(data: bytes) -> list[StreamCall]:
    """An ``InvokeStreamRequest``'s calls; a malformed frame raises `FrameError`."""

def decode_stream_outcomes(data: bytes) -> list[StreamOutcome]:
    """An ``InvokeStreamResponse``'s outcomes; a malformed frame raises `FrameError`."""

def encode_invoke_batch(invokes: list[InvokeItem]) -> bytes:
    """A ``CoordinatorMessage`` with this ``invoke_batch``; a bad record raises `FrameError`."""

def encode_result_batch(results: list[ResultItem]) -> bytes:
    """A ``WorkerMessage`` with this ``result_batch``; a bad record raises `FrameError`."""

def encode_stream_calls(calls: list[StreamCall]) -> bytes:
    """An ``InvokeStreamRequest``; a bad record raises `FrameError`."""

def encode_stream_outcomes(outcomes: list[StreamOutcome]) -> bytes:
    """An ``InvokeStreamResponse``; a bad record raises `FrameError`."""
