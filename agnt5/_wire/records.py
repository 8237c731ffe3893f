"""What the frame codec reads and writes: plain records, their wire layouts, and `FrameError`.

Both codec implementations (`_frames` compiled, `_frames_py` pure) share this module, so they
build the same record types and raise the same errors with the same messages. A record field
is the protobuf field of the same name; field numbers come from the generated descriptors
(`field_numbers`, `frame_numbers`), never from this module, so the protos alone decide them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "BOOL",
    "BYTES",
    "COORDINATOR_MESSAGE",
    "ERROR",
    "INVOKE",
    "MAP",
    "ONEOF_BYTES",
    "ONEOF_RECORD",
    "RESULT",
    "STR",
    "STREAM_CALL",
    "STREAM_OUTCOME",
    "STREAM_REQUEST",
    "STREAM_RESPONSE",
    "U32",
    "U64",
    "WORKER_MESSAGE",
    "ErrorItem",
    "Frame",
    "FrameError",
    "FrameNumbers",
    "InvokeItem",
    "Layout",
    "ResultItem",
    "StreamCall",
    "StreamOutcome",
    "check_record",
    "corrupt",
    "descriptor",
    "field_numbers",
    "frame_numbers",
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
    metadata: dict[str, str] = {}  # never mutated: decoders build fresh dicts
    attempt: int = 0
    deadline_unix_ms: int = 0
    journal: bytes = b""  # a workflow's committed journal, an encoded agnt5.v1.Journal


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
    metadata: dict[str, str] = {}  # never mutated: decoders build fresh dicts


class StreamOutcome(NamedTuple):
    """``agnt5.v1.StreamOutcome``: one call's outcome, coordinator -> client (output xor error)."""

    ref: int = 0
    invocation_id: str = ""
    output: bytes | None = None
    error: ErrorItem | None = None


class Layout:
    """A record type, the protobuf message it stands for, and the kind of each of its slots."""

    __slots__ = ("cls", "kinds", "message", "name", "sub")

    def __init__(
        self,
        cls: type[tuple[Any, ...]],
        kinds: tuple[int, ...],
        message: str,
        sub: Layout | None = None,
    ) -> None:
        self.cls = cls
        self.kinds = kinds
        self.message = message  # the full protobuf name, e.g. "agnt5.v1.Invoke"
        self.name = cls.__name__
        self.sub = sub  # the layout of the ONEOF_RECORD slot, if any


ERROR = Layout(ErrorItem, (STR, STR, STR, BOOL), "agnt5.v1.Error")
INVOKE = Layout(InvokeItem, (STR, STR, BYTES, MAP, U32, U64, BYTES), "agnt5.v1.Invoke")
RESULT = Layout(ResultItem, (STR, U32, ONEOF_BYTES, ONEOF_RECORD, U64), "agnt5.v1.Result", ERROR)
STREAM_CALL = Layout(StreamCall, (U64, STR, STR, BYTES, STR, U64, MAP), "agnt5.v1.StreamCall")
STREAM_OUTCOME = Layout(
    StreamOutcome, (U64, STR, ONEOF_BYTES, ONEOF_RECORD), "agnt5.v1.StreamOutcome", ERROR
)


class Frame(NamedTuple):
    """A message the codec reads or writes whole, and where its records sit in it."""

    message: str
    """The full protobuf name of the message, e.g. ``"agnt5.v1.CoordinatorMessage"``."""
    batch: str | None
    """The oneof member carrying the batch (``"invoke_batch"``); None: the message is the batch."""
    items: str
    """The repeated field of the batch holding the records (``"invocations"``)."""
    layout: Layout


COORDINATOR_MESSAGE = Frame("agnt5.v1.CoordinatorMessage", "invoke_batch", "invocations", INVOKE)
WORKER_MESSAGE = Frame("agnt5.v1.WorkerMessage", "result_batch", "results", RESULT)
STREAM_REQUEST = Frame("agnt5.v1.InvokeStreamRequest", None, "calls", STREAM_CALL)
STREAM_RESPONSE = Frame("agnt5.v1.InvokeStreamResponse", None, "outcomes", STREAM_OUTCOME)


class FrameNumbers(NamedTuple):
    """A frame's field numbers, read from the descriptors."""

    batch: int
    """The batch's field number in the message's oneof (0 when the message is the batch)."""
    members: frozenset[int]
    """Every field number of that oneof (the batch's included; empty when there is none)."""
    items: int
    """The field number of the repeated records in the batch message."""


def descriptor(message: str) -> Any:
    """The descriptor of protobuf message ``message`` (importing agnt5's generated modules)."""
    from google.protobuf import descriptor_pool

    from agnt5._proto import common_pb2, invocations_pb2, worker_pb2, workflow_pb2  # noqa: F401 - registers them

    return descriptor_pool.Default().FindMessageTypeByName(message)


_SCALARS = ("string", "bytes", "uint32", "uint64", "bool", "double", "int32", "int64", "enum")
_TYPES = {STR: "string", BYTES: "bytes", U32: "uint32", U64: "uint64", BOOL: "bool"}
_TYPES[ONEOF_BYTES] = "bytes"


def field_numbers(layout: Layout) -> tuple[int, ...]:
    """The field number of each slot of ``layout``, checking that the proto agrees with its kinds."""
    message = descriptor(layout.message)
    numbers = []
    for name, kind in zip(layout.cls._fields, layout.kinds, strict=True):  # type: ignore[attr-defined]
        field = message.fields_by_name.get(name)
        if field is None or _type_name(field) != _expected_type(kind, layout):
            found = "no such field" if field is None else _type_name(field)
            raise TypeError(
                f"{layout.message}.{name} is {found} in the proto, "
                f"but {layout.name} holds {_expected_type(kind, layout)}: update agnt5/_wire/records.py"
            )
        if (kind in (ONEOF_BYTES, ONEOF_RECORD)) != (field.containing_oneof is not None):
            raise TypeError(f"{layout.message}.{name}: oneof membership differs from {layout.name}")
        numbers.append(field.number)
    return tuple(numbers)


def frame_numbers(frame: Frame) -> FrameNumbers:
    """The field numbers the codec needs to read and write ``frame``."""
    message = descriptor(frame.message)
    if frame.batch is None:
        batch, members, holder = 0, frozenset[int](), message
    else:
        field = message.fields_by_name[frame.batch]
        batch, holder = field.number, field.message_type
        members = frozenset(member.number for member in field.containing_oneof.fields)
    items = holder.fields_by_name[frame.items]
    if items.message_type.full_name != frame.layout.message:
        raise TypeError(f"{frame.message}: {frame.items} does not hold {frame.layout.message}")
    return FrameNumbers(batch, members, items.number)


def _type_name(field: Any) -> str:
    """``"string"``, ``"uint64"``, ``"map<string, string>"``, a message's full name, ..."""
    from google.protobuf.descriptor import FieldDescriptor

    message = field.message_type
    if message is None:
        names = {getattr(FieldDescriptor, f"TYPE_{name.upper()}"): name for name in _SCALARS}
        return names.get(field.type, f"type {field.type}")
    entry = message.fields if message.GetOptions().map_entry else None
    if entry is not None:
        return "map<{}, {}>".format(*(_type_name(each) for each in entry))
    return str(message.full_name)


def _expected_type(kind: int, layout: Layout) -> str:
    if kind == MAP:
        return "map<string, string>"
    if kind == ONEOF_RECORD:
        return layout.sub.message if layout.sub is not None else "?"
    return _TYPES[kind]


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
