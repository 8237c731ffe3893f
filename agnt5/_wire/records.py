"""What the frame codec reads and writes: plain records, their wire layouts, and `FrameError`.

Both codec implementations (`_frames` compiled, `_frames_py` pure) share this module, so they
build the same record types and raise the same errors with the same messages. A record's
slot ``i`` is protobuf field number ``i + 1`` of the message it stands for.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "BOOL",
    "BYTES",
    "ERROR",
    "INVOKE",
    "MAP",
    "ONEOF_BYTES",
    "ONEOF_RECORD",
    "RESULT",
    "STR",
    "STREAM_CALL",
    "STREAM_OUTCOME",
    "U32",
    "U64",
    "ErrorItem",
    "FrameError",
    "InvokeItem",
    "Layout",
    "ResultItem",
    "StreamCall",
    "StreamOutcome",
    "check_record",
    "corrupt",
    "record_from_message",
    "record_to_message",
    "unencodable",
]

# Slot kinds (the compiled codec switches on these ints).
STR, BYTES, U32, U64, BOOL, MAP, ONEOF_BYTES, ONEOF_RECORD = range(8)
_LIMITS = {U32: 0xFFFF_FFFF, U64: 0xFFFF_FFFF_FFFF_FFFF}


class FrameError(ValueError):
    """A frame that is not valid wire format, or a record that cannot be encoded."""


class ErrorItem(NamedTuple):
    """``agnt5.v1.Error``: a failure in the agnt5 error model."""

    code: str = ""
    message: str = ""
    type: str = ""
    retryable: bool = False


class InvokeItem(NamedTuple):
    """``agnt5.v1.Invoke``: one attempt of one invocation, coordinator -> worker."""

    invocation_id: str = ""
    component: str = ""
    input: bytes = b""
    metadata: dict[str, str] = {}  # noqa: RUF012 - never mutated; decoders build fresh dicts
    attempt: int = 0
    deadline_unix_ms: int = 0


class ResultItem(NamedTuple):
    """``agnt5.v1.Result``: the outcome of one attempt, worker -> coordinator (output xor error)."""

    invocation_id: str = ""
    attempt: int = 0
    output: bytes | None = None
    error: ErrorItem | None = None
    duration_us: int = 0


class StreamCall(NamedTuple):
    """``agnt5.v1.StreamCall``: one invocation to start on an InvokeStream, client -> coordinator."""

    ref: int = 0
    service: str = ""
    function: str = ""
    input: bytes = b""
    idempotency_key: str = ""
    timeout_ms: int = 0
    metadata: dict[str, str] = {}  # noqa: RUF012 - never mutated; decoders build fresh dicts


class StreamOutcome(NamedTuple):
    """``agnt5.v1.StreamOutcome``: one call's outcome, coordinator -> client (output xor error)."""

    ref: int = 0
    invocation_id: str = ""
    output: bytes | None = None
    error: ErrorItem | None = None


class Layout:
    """A record type and the kind of each of its slots (slot ``i`` is field ``i + 1``)."""

    __slots__ = ("cls", "kinds", "name", "sub")

    def __init__(
        self, cls: type[tuple[Any, ...]], kinds: tuple[int, ...], sub: Layout | None
    ) -> None:
        self.cls = cls
        self.kinds = kinds
        self.name = cls.__name__
        self.sub = sub  # the layout of the ONEOF_RECORD slot, if any


ERROR = Layout(ErrorItem, (STR, STR, STR, BOOL), None)
INVOKE = Layout(InvokeItem, (STR, STR, BYTES, MAP, U32, U64), None)
RESULT = Layout(ResultItem, (STR, U32, ONEOF_BYTES, ONEOF_RECORD, U64), ERROR)
STREAM_CALL = Layout(StreamCall, (U64, STR, STR, BYTES, STR, U64, MAP), None)
STREAM_OUTCOME = Layout(StreamOutcome, (U64, STR, ONEOF_BYTES, ONEOF_RECORD), ERROR)


def corrupt(message: str) -> FrameError:
    """The error for a frame that does not parse as ``message``."""
    return FrameError(f"malformed {message} frame")


def unencodable(layout: Layout, slot: int, value: Any) -> FrameError:
    """The error for a record slot holding a value its kind cannot encode."""
    field = layout.cls._fields[slot]  # type: ignore[attr-defined]
    kind = (
        "str",
        "bytes",
        "uint32",
        "uint64",
        "bool",
        "dict[str, str]",
        "bytes or None",
        f"{layout.sub.name if layout.sub else ''} or None",
    )[layout.kinds[slot]]
    return FrameError(
        f"cannot encode {layout.name}.{field}: expected {kind}, got {type(value).__name__}"
    )


def _valid(kind: int, value: Any, sub: Layout | None) -> bool:
    if kind == STR:
        return isinstance(value, str)
    if kind == BYTES:
        return isinstance(value, bytes)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == MAP:
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    if kind == ONEOF_BYTES:
        return value is None or isinstance(value, bytes)
    if kind == ONEOF_RECORD:
        return value is None or (
            sub is not None and isinstance(value, sub.cls) and check_record(value, sub)
        )
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _LIMITS[kind]


def check_record(record: Any, layout: Layout) -> bool:
    """True for a valid record of ``layout``; raises `FrameError` naming the first bad slot."""
    if not isinstance(record, layout.cls):
        raise FrameError(f"cannot encode a {type(record).__name__} as {layout.name}")
    for slot, kind in enumerate(layout.kinds):
        value = record[slot]
        if not _valid(kind, value, layout.sub):
            raise unencodable(layout, slot, value)
    return True


def record_from_message(message: Any, layout: Layout) -> Any:
    """The record for a generated protobuf message."""
    values: list[Any] = []
    names = layout.cls._fields  # type: ignore[attr-defined]
    for slot, kind in enumerate(layout.kinds):
        name = names[slot]
        if kind in (ONEOF_BYTES, ONEOF_RECORD):
            if message.WhichOneof("outcome") != name:
                values.append(None)
                continue
            value = getattr(message, name)
            values.append(value if kind == ONEOF_BYTES else record_from_message(value, layout.sub))  # type: ignore[arg-type]
        elif kind == MAP:
            values.append(dict(getattr(message, name)))
        else:
            values.append(getattr(message, name))
    return layout.cls(*values)


def record_to_message(record: Any, layout: Layout, message_cls: Any, sub_cls: Any = None) -> Any:
    """The generated protobuf message for a (checked) record."""
    fields: dict[str, Any] = {}
    for name, kind, value in zip(record._fields, layout.kinds, record, strict=True):
        if value is None:
            continue
        if kind == ONEOF_RECORD:
            value = record_to_message(value, layout.sub, sub_cls)  # type: ignore[arg-type]
        fields[name] = value
    return message_cls(**fields)
