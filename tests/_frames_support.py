"""Random wire-format frames for the codec tests and fuzzer: any field order, repeats, unknowns.

One generator, two drivers: `random.Random` (the fuzzer's speed) or hypothesis (`HypothesisSource`,
shrinking). Frames are built field by field from the schemas of the generated descriptors (the
same ones the codecs read), so they cover what protobuf can produce and more: fields out of
order, repeated scalars and submessages, repeated map keys, unknown fields of every wire type
(groups nested), known fields with another wire type, overlong varints, huge values, empty and
large payloads, invalid UTF-8 in strings.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

from google.protobuf.descriptor import FieldDescriptor
from hypothesis import strategies as st

from agnt5._speedups import _frames_py
from agnt5._wire import records
from agnt5._wire.records import (
    ErrorItem,
    FrameError,
    InvokeItem,
    ResultItem,
    StreamCall,
    StreamOutcome,
)

try:
    from agnt5._speedups import _frames as compiled
except ImportError:  # the tests comparing twins are c_extension, deselected then
    compiled = None

__all__ = [
    "BAD_BATCHES",
    "BATCHES",
    "DECODERS",
    "ENCODERS",
    "HypothesisSource",
    "Source",
    "compare",
    "frame",
    "fuzz",
    "message",
    "mutate",
    "outcome",
    "schema",
    "varint",
]

Spec = dict[int, Any]
"""A message schema: field number -> ``"str"``, ``"bytes"``, ``"varint"``, ``"f64"``, ``"map"``
or the `Spec` of a submessage."""
_SCALARS = {
    FieldDescriptor.TYPE_STRING: "str",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_DOUBLE: "f64",
}


def schema(message: Any) -> Spec:
    """The `Spec` of a protobuf message descriptor (recursive types are not in these protos)."""
    spec: Spec = {}
    for field in message.fields:
        if field.message_type is None:
            spec[field.number] = _SCALARS.get(field.type, "varint")
        elif field.message_type.GetOptions().map_entry:
            spec[field.number] = "map"
        else:
            spec[field.number] = schema(field.message_type)
    return spec


MAP_ENTRY: Spec = {1: "str", 2: "str"}

# Records as protobuf can carry them, for the encoders.
texts = st.text(st.characters(codec="utf-8"), max_size=20) | st.sampled_from(["", "x" * 70_000])
blobs = st.binary(max_size=40) | st.sampled_from([b"", b"\x00" * 128, b"\xff" * 300_000])
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
metadata = st.dictionaries(texts, texts, max_size=4)
errors = st.builds(ErrorItem, texts, texts, texts, st.booleans())
outputs = st.one_of(st.tuples(st.none(), st.none()), st.tuples(blobs, st.none()),
                    st.tuples(st.none(), errors))  # fmt: skip
invokes = st.builds(InvokeItem, texts, texts, blobs, metadata, u32, u64, blobs)
results = st.builds(lambda i, a, o, d: ResultItem(i, a, o[0], o[1], d), texts, u32, outputs, u64)
calls = st.builds(StreamCall, u64, texts, texts, blobs, texts, u64, metadata)
stream_outcomes = st.builds(lambda r, i, o: StreamOutcome(r, i, o[0], o[1]), u64, texts, outputs)
BATCHES: dict[str, tuple[Any, str, str | None]] = {
    "encode_invoke_batch": (invokes, "decode_coordinator_message", "invoke_batch"),
    "encode_result_batch": (results, "decode_worker_message", "result_batch"),
    "encode_stream_calls": (calls, "decode_stream_calls", None),
    "encode_stream_outcomes": (stream_outcomes, "decode_stream_outcomes", None),
}
"""encoder -> (record strategy, the decoder that reads its frames, the kind they decode as)."""
ENCODERS = tuple(BATCHES)
BAD_BATCHES: list[tuple[str, Any]] = [  # (encoder, a batch it must refuse)
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
]


def _decoder(name: str, frame: records.Frame) -> tuple[str, Spec, int]:
    """A decoder, the schema of its frames, and the field to favour (the batch, or the items)."""
    numbers = records.frame_numbers(frame)
    return name, schema(records.descriptor(frame.message)), numbers.batch or numbers.items


DECODERS: list[tuple[str, Spec, int]] = [
    _decoder("decode_coordinator_message", records.COORDINATOR_MESSAGE),
    _decoder("decode_worker_message", records.WORKER_MESSAGE),
    _decoder("decode_stream_calls", records.STREAM_REQUEST),
    _decoder("decode_stream_outcomes", records.STREAM_RESPONSE),
]
_SIZES = (0, 1, 127, 128, 300, 16_383, 16_384, 70_000)
_NUMBERS = (0, 1, 127, 128, 2**31, 2**32 - 1, 2**32, 2**63, 2**64 - 1)


class Source(Protocol):
    """What the generator draws from (`random.Random` has all of it)."""

    def randint(self, a: int, b: int) -> int: ...
    def choice(self, seq: Any) -> Any: ...
    def randbytes(self, n: int) -> bytes: ...


class HypothesisSource:
    """A `Source` backed by a hypothesis ``draw`` (so failures shrink)."""

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        self._draw = draw

    def randint(self, a: int, b: int) -> int:
        return int(self._draw(st.integers(a, b)))

    def choice(self, seq: Any) -> Any:
        return self._draw(st.sampled_from(seq))

    def randbytes(self, n: int) -> bytes:
        return bytes(self._draw(st.binary(min_size=n, max_size=n)))


def varint(value: int, pad: int = 0) -> bytes:
    """``value`` as a varint, with ``pad`` redundant continuation bytes (overlong form)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value or pad:
            out.append(byte | 0x80)
            if not value:
                for _ in range(pad - 1):
                    out.append(0x80)
                out.append(0)
                return bytes(out)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def _len(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + varint(len(payload)) + payload


def _text(src: Source) -> bytes:
    roll = src.randint(0, 19)
    if roll == 0:
        return src.randbytes(src.randint(1, 4))  # often not UTF-8
    if roll == 1:
        return b"x" * src.choice(_SIZES)
    chars = []
    for _ in range(src.randint(0, 8)):
        point = src.choice((src.randint(0x20, 0x7E), src.randint(0, 0x10FFFF)))
        chars.append(chr(point if not 0xD800 <= point <= 0xDFFF else 0xFFFD))
    return "".join(chars).encode()


def _number(src: Source) -> int:
    return int(src.choice((src.choice(_NUMBERS), src.randint(0, 2**64 - 1), src.randint(0, 300))))


def _unknown(src: Source, depth: int, known: Spec | None = None) -> bytes:
    """A field ``known`` does not have (any number inside a group), of any wire type."""
    field = src.choice((src.randint(1, 40), src.randint(41, 2**29 - 1)))
    while known is not None and field in known:  # bounded: a schema has a few fields
        field += 1
    wire = src.choice((0, 1, 2, 5, 3))
    if wire == 0:
        return _key(field, 0) + varint(_number(src))
    if wire in (1, 5):
        return _key(field, wire) + src.randbytes(8 if wire == 1 else 4)
    if wire == 2:
        return _len(field, src.randbytes(src.randint(0, 6)))
    inner = b"".join(_unknown(src, depth + 1) for _ in range(src.randint(0, 2 if depth < 3 else 0)))
    return _key(field, 3) + inner + _key(field, 4)


def _field(src: Source, field: int, kind: Any, depth: int) -> bytes:
    if src.randint(0, 15) == 0:  # a known number with another wire type: skipped as unknown
        wire = src.choice((0, 1, 2, 5))
        if wire == 0:
            return _key(field, 0) + varint(_number(src), src.choice((0, 0, 3)))
        if wire == 2:
            return _len(field, src.randbytes(src.randint(0, 3)))
        return _key(field, wire) + src.randbytes(8 if wire == 1 else 4)
    if kind == "varint":
        return _key(field, 0) + varint(_number(src), src.choice((0, 0, 0, 1, 9)))
    if kind == "f64":
        return _key(field, 1) + src.randbytes(8)
    if kind == "str":
        return _len(field, _text(src))
    if kind == "bytes":
        size = src.choice((src.randint(0, 8), src.choice(_SIZES)))
        return _len(field, src.randbytes(size) if size < 64 else b"\xab" * size)
    spec = MAP_ENTRY if kind == "map" else kind
    return _len(field, message(src, spec, depth + 1))


def message(src: Source, spec: Spec, depth: int = 0, favour: int | None = None) -> bytes:
    """One message of ``spec``: random fields in random order, some repeated, some unknown."""
    parts: list[bytes] = []
    limit = (6, 4, 3, 2)[min(depth, 3)]
    for _ in range(src.randint(0, limit)):
        roll = src.randint(0, 9)
        if roll == 0:
            parts.append(_unknown(src, depth, spec))
            continue
        field = favour if favour is not None and roll < 7 else src.choice(sorted(spec))
        parts.append(_field(src, field, spec[field], depth))
    return b"".join(parts)


def frame(src: Source) -> tuple[str, bytes]:
    """A decoder name and a frame for it (valid as far as the schema goes)."""
    name, spec, favour = src.choice(DECODERS)
    return name, message(src, spec, 0, favour)


def mutate(src: Source, data: bytes, other: bytes) -> bytes:
    """One random damage: bit flip, truncation, deletion, insertion, duplication, splice."""
    buf = bytearray(data)
    op = src.randint(0, 7)
    at = src.randint(0, len(buf))
    if op == 0 and buf:
        buf[min(at, len(buf) - 1)] ^= 1 << src.randint(0, 7)
    elif op == 1:
        del buf[at:]
    elif op == 2:
        del buf[at : at + src.randint(1, 8)]
    elif op == 3:
        buf[at:at] = src.randbytes(src.randint(1, 8))
    elif op == 4:
        buf[at:at] = buf[at : at + src.randint(1, 16)]
    elif op == 5 and buf:
        buf[min(at, len(buf) - 1)] = src.choice((0x00, 0x80, 0xFF, 0x7F, 0x0C, 0x0B))
    elif op == 6:
        buf[at:] = other[src.randint(0, len(other)) :]
    else:
        buf[at:at] = other
    return bytes(buf)


def outcome(decode: Callable[[bytes], Any], data: bytes) -> tuple[str, Any]:
    """``("ok", value)`` or ``("error", message)`` for a `FrameError`; anything else propagates."""
    try:
        return "ok", decode(data)
    except FrameError as exc:
        return "error", str(exc)


def compare(name: str, data: bytes) -> tuple[str, Any]:
    """Decode with both implementations; raise AssertionError if they disagree."""
    expected = outcome(getattr(_frames_py, name), data)
    actual = outcome(getattr(compiled, name), data)
    assert actual == expected, f"{name}({data!r}): compiled {actual!r} != twin {expected!r}"
    return expected


def fuzz(
    iterations: int, seed: int, report: Callable[[int, dict[str, int]], None] | None = None
) -> dict[str, int]:
    """Mutate valid frames ``iterations`` times, decoding each with both implementations."""
    rnd = random.Random(seed)
    counts = {"ok": 0, "error": 0}
    for index in range(iterations):
        name, data = frame(rnd)
        for _ in range(rnd.choice((0, 1, 1, 2, 3))):
            data = mutate(rnd, data, frame(rnd)[1])
        counts[compare(name, data)[0]] += 1
        if report is not None and (index + 1) % 100_000 == 0:
            report(index + 1, counts)
    return counts
