"""The frame codec compiled, reading and writing wire format directly (API: see `_frames_py`).

Decoding follows upb, the protobuf runtime behind the twin: fields in any order, the last value
wins, repeated submessages merge, unknown fields and known fields with another wire type are
skipped (groups included), strings must be UTF-8, nesting deeper than 100 is an error. Envelope
kinds other than the batched one are rare and go through the twin, so they decode identically.
Encoding is two passes: sizes (checking every value), then one exact-size ``bytes`` written in
place, fields in number order and map keys in upb's deterministic order.

Field numbers come from the generated descriptors (`records.field_numbers`), read on first use:
importing this module loads no protobuf.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Next
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.ref cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from agnt5._wire import records
from agnt5._wire.records import (
    FrameError,
    check_record,
    corrupt,
    unencodable,
)

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL

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

ctypedef const unsigned char* cptr

# The `records` slot kinds, in order; checked at import.
cdef enum:
    K_STR, K_BYTES, K_U32, K_U64, K_BOOL, K_MAP, K_ONEOF_BYTES, K_ONEOF_RECORD

cdef enum:
    MAX_DEPTH = 100  # upb's default nesting limit: deeper is a corrupt frame
    WT_VARINT = 0
    WT_FIXED64 = 1
    WT_LEN = 2
    WT_START_GROUP = 3
    WT_END_GROUP = 4
    WT_FIXED32 = 5
    MAX_SLOTS = 8
    MAP_KEY = 1 << 3 | WT_LEN  # a map entry's key and value are fields 1 and 2 (protobuf's rule)
    MAP_VALUE = 2 << 3 | WT_LEN

_KINDS = ("STR", "BYTES", "U32", "U64", "BOOL", "MAP", "ONEOF_BYTES", "ONEOF_RECORD")
if tuple(getattr(records, kind) for kind in _KINDS) != tuple(range(len(_KINDS))):
    raise ImportError("agnt5._wire.records kinds changed; rebuild _frames.pyx to match")

_tuple_new = tuple.__new__


def _map_order(key):
    """upb's deterministic map order: UTF-8 bytes ascending, a prefix after its extensions."""
    return key.encode() + b"\xff"  # 0xFF never occurs in UTF-8

_COLD = object()  # an envelope whose oneof is not the batched kind: the twin decodes it


class _Corrupt(Exception):
    """Raised inside the decoder; the entry point turns it into the message's `FrameError`."""


cdef class _Layout:
    """A `records.Layout` with its slot kinds, field numbers and tags as C ints."""

    cdef object cls
    cdef object spec
    cdef int n
    cdef int kinds[MAX_SLOTS]
    cdef uint32_t numbers[MAX_SLOTS]
    cdef uint32_t tags[MAX_SLOTS]  # the tag each slot is written with
    cdef Py_ssize_t tag_sizes[MAX_SLOTS]
    cdef int order[MAX_SLOTS]  # the slots by field number: the order they are written in
    cdef int map_slot
    cdef _Layout sub
    cdef tuple defaults

    def __init__(self, spec, _Layout sub=None):
        self.spec = spec
        self.cls = spec.cls
        self.n = len(spec.kinds)
        if self.n > MAX_SLOTS:
            raise ImportError(f"{spec.name} has more than {MAX_SLOTS} fields")
        self.map_slot = -1
        numbers = records.field_numbers(spec)
        for index, slot in enumerate(sorted(range(self.n), key=numbers.__getitem__)):
            self.order[index] = slot
        for slot, (kind, number) in enumerate(zip(spec.kinds, numbers)):
            self.kinds[slot] = kind
            self.numbers[slot] = number
            wire = WT_VARINT if kind in (K_U32, K_U64, K_BOOL) else WT_LEN
            self.tags[slot] = number << 3 | wire
            self.tag_sizes[slot] = _varint_size(self.tags[slot])
            if kind == K_MAP:
                self.map_slot = slot
        self.sub = sub
        self.defaults = tuple(spec.cls())

    cdef inline int slot_of(self, uint32_t field) noexcept:
        """The slot holding field number ``field``, or -1 for a field the record does not have."""
        cdef int slot
        for slot in range(self.n):
            if self.numbers[slot] == field:
                return slot
        return -1


cdef class _Frame:
    """A `records.Frame` with its field numbers: where the records sit in the message."""

    cdef _Layout layout
    cdef str message  # the message's short name, for errors
    cdef str kind  # the batch's oneof member name (None: the message is the batch)
    cdef uint32_t batch  # its field number (0: none)
    cdef frozenset members  # the field numbers of the batch's oneof
    cdef uint32_t items  # the field number of the repeated records
    cdef uint32_t batch_tag
    cdef uint32_t items_tag

    def __init__(self, spec, _Layout layout):
        numbers = records.frame_numbers(spec)
        self.layout = layout
        self.message = spec.message.rsplit(".", 1)[-1]
        self.kind = spec.batch
        self.batch = numbers.batch
        self.members = numbers.members
        self.items = numbers.items
        self.batch_tag = numbers.batch << 3 | WT_LEN
        self.items_tag = numbers.items << 3 | WT_LEN


cdef class _Schema:
    """Every frame the codec reads and writes, built from the descriptors on first use."""

    cdef _Frame coordinator
    cdef _Frame worker
    cdef _Frame calls
    cdef _Frame outcomes
    cdef object twin  # `_frames_py`, which decodes the rare envelope kinds

    def __init__(self):
        from agnt5._speedups import _frames_py

        error = _Layout(records.ERROR)
        self.coordinator = _Frame(records.COORDINATOR_MESSAGE, _Layout(records.INVOKE))
        self.worker = _Frame(records.WORKER_MESSAGE, _Layout(records.RESULT, error))
        self.calls = _Frame(records.STREAM_REQUEST, _Layout(records.STREAM_CALL))
        self.outcomes = _Frame(records.STREAM_RESPONSE, _Layout(records.STREAM_OUTCOME, error))
        self.twin = _frames_py


cdef _Schema _SCHEMA = None


cdef inline _Schema _schema():
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = _Schema()
    return _SCHEMA


# Decoding.

cdef int _varint(cptr* pos, cptr end, uint64_t* out) except -1:
    """A varint of up to 10 bytes; bits past 64 are dropped (as upb does)."""
    cdef cptr p = pos[0]
    cdef uint64_t value = 0
    cdef int shift = 0
    cdef unsigned char byte
    while shift < 70:  # 10 bytes at most
        if p >= end:
            raise _Corrupt
        byte = p[0]
        p += 1
        value |= (<uint64_t>(byte & 0x7F)) << shift
        if not byte & 0x80:
            pos[0] = p
            out[0] = value
            return 0
        shift += 7
    raise _Corrupt


cdef int _varint32(cptr* pos, cptr end, uint32_t* out) except -1:
    """A tag or a length: a varint of up to 5 bytes whose value fits 32 bits."""
    cdef cptr p = pos[0]
    cdef uint64_t value = 0
    cdef int shift = 0
    cdef unsigned char byte
    while shift < 35:  # 5 bytes at most
        if p >= end:
            raise _Corrupt
        byte = p[0]
        p += 1
        value |= (<uint64_t>(byte & 0x7F)) << shift
        if not byte & 0x80:
            if value > 0xFFFFFFFF:
                raise _Corrupt
            pos[0] = p
            out[0] = <uint32_t>value
            return 0
        shift += 7
    raise _Corrupt


cdef int _length(cptr* pos, cptr end, Py_ssize_t* out) except -1:
    """A length prefix that fits in what is left of the frame."""
    cdef uint32_t size
    _varint32(pos, end, &size)
    if <Py_ssize_t>size > end - pos[0]:
        raise _Corrupt
    out[0] = size
    return 0


cdef int _tag(cptr* pos, cptr end, uint32_t* out) except -1:
    _varint32(pos, end, out)
    if out[0] >> 3 == 0:
        raise _Corrupt
    return 0


cdef int _skip(cptr* pos, cptr end, uint32_t tag, int depth) except -1:
    """Skip one field of a message at ``depth`` (a group's fields are one level deeper)."""
    cdef uint64_t ignored
    cdef Py_ssize_t size
    cdef uint32_t inner
    cdef int wire = tag & 7
    if wire == WT_VARINT:
        _varint(pos, end, &ignored)
    elif wire == WT_FIXED64 or wire == WT_FIXED32:
        size = 8 if wire == WT_FIXED64 else 4
        if end - pos[0] < size:
            raise _Corrupt
        pos[0] += size
    elif wire == WT_LEN:
        _length(pos, end, &size)
        pos[0] += size
    elif wire == WT_START_GROUP:
        if depth + 1 > MAX_DEPTH:
            raise _Corrupt
        while True:  # bounded: every turn consumes at least one byte or raises
            _varint32(pos, end, &inner)  # field number 0 is accepted inside a group, as upb does
            if inner & 7 == WT_END_GROUP:
                if inner >> 3 != tag >> 3:
                    raise _Corrupt
                return 0
            _skip(pos, end, inner, depth + 1)
    else:  # an end group with no start, or wire types 6 and 7
        raise _Corrupt
    return 0


cdef str _text(cptr p, Py_ssize_t size):
    return PyUnicode_DecodeUTF8(<const char*>p, size, NULL)


cdef int _map_entry(cptr p, cptr end, int depth, dict target) except -1:
    """One ``map<string, string>`` entry (a message with key = 1, value = 2) into ``target``.

    An entry with any other field is dropped whole (upb keeps it as an unknown field).
    """
    cdef uint32_t tag
    cdef Py_ssize_t size
    cdef str key = ""
    cdef str value = ""
    cdef bint unknown = False
    if depth > MAX_DEPTH:
        raise _Corrupt
    while p < end:
        _tag(&p, end, &tag)
        if tag == MAP_KEY or tag == MAP_VALUE:
            _length(&p, end, &size)
            if tag == MAP_KEY:
                key = _text(p, size)
            else:
                value = _text(p, size)
            p += size
        else:
            _skip(&p, end, tag, depth)
            unknown = True
    if not unknown:
        target[key] = value
    return 0


cdef object _record(cptr p, cptr end, _Layout layout, int depth, object base):
    """A record decoded from one message at ``depth``; ``base``: the record it merges into."""
    cdef uint32_t tag
    cdef uint64_t number
    cdef Py_ssize_t size
    cdef int slot, kind, wire, oneof = -1
    cdef cptr start
    cdef list values = list(layout.defaults if base is None else base)
    cdef dict metadata = None
    if depth > MAX_DEPTH:
        raise _Corrupt
    if layout.map_slot >= 0:
        metadata = {} if base is None else dict(base[layout.map_slot])
        values[layout.map_slot] = metadata
    if base is not None:
        for slot in range(layout.n):
            kind = layout.kinds[slot]
            if (kind == K_ONEOF_BYTES or kind == K_ONEOF_RECORD) and values[slot] is not None:
                oneof = slot
    while p < end:
        _tag(&p, end, &tag)
        wire = tag & 7
        slot = layout.slot_of(tag >> 3)
        if slot < 0:
            _skip(&p, end, tag, depth)
            continue
        kind = layout.kinds[slot]
        if kind == K_U32 or kind == K_U64 or kind == K_BOOL:
            if wire != WT_VARINT:
                _skip(&p, end, tag, depth)
                continue
            _varint(&p, end, &number)
            if kind == K_U32:
                values[slot] = <uint32_t>number
            elif kind == K_U64:
                values[slot] = number
            else:
                values[slot] = number != 0
            continue
        if wire != WT_LEN:
            _skip(&p, end, tag, depth)
            continue
        _length(&p, end, &size)
        start = p
        p += size
        if kind == K_STR:
            values[slot] = _text(start, size)
        elif kind == K_BYTES or kind == K_ONEOF_BYTES:
            values[slot] = PyBytes_FromStringAndSize(<const char*>start, size)
        elif kind == K_MAP:
            _map_entry(start, p, depth + 1, metadata)
        else:  # K_ONEOF_RECORD: a repeated occurrence merges into the one before
            values[slot] = _record(
                start, p, layout.sub, depth + 1, values[slot] if oneof == slot else None
            )
        if kind == K_ONEOF_BYTES or kind == K_ONEOF_RECORD:
            if oneof >= 0 and oneof != slot:
                values[oneof] = None
            oneof = slot
    return _tuple_new(layout.cls, values)


cdef int _repeated(cptr p, cptr end, _Frame frame, int depth, list out) except -1:
    """Append the records (the repeated ``frame.items``) of the message at ``depth`` to ``out``."""
    cdef uint32_t tag
    cdef Py_ssize_t size
    if depth > MAX_DEPTH:
        raise _Corrupt
    while p < end:
        _tag(&p, end, &tag)
        if tag == frame.items_tag:
            _length(&p, end, &size)
            out.append(_record(p, p + size, frame.layout, depth + 1, None))
            p += size
        else:
            _skip(&p, end, tag, depth)
    return 0


cdef object _envelope(cptr p, cptr end, _Frame frame):
    """The records of an envelope message whose oneof member is ``frame``'s batch.

    None for a message with no oneof member, `_COLD` when another member appears (the twin then
    decodes the whole message). Repeated batch occurrences merge: their lists concatenate.
    """
    cdef uint32_t tag
    cdef Py_ssize_t size
    cdef list out = None
    while p < end:
        _tag(&p, end, &tag)
        if tag == frame.batch_tag:
            _length(&p, end, &size)
            if out is None:
                out = []
            _repeated(p, p + size, frame, 1, out)
            p += size
        elif tag & 7 == WT_LEN and (tag >> 3) in frame.members:
            return _COLD
        else:
            _skip(&p, end, tag, 0)
    return out


cdef inline cptr _start(object data) except NULL:
    if type(data) is not bytes and not isinstance(data, bytes):
        raise TypeError(f"a frame is bytes, got {type(data).__name__}")
    return <cptr>PyBytes_AS_STRING(data)


cdef tuple _decode_envelope(object data, _Frame frame):
    """``(kind, records)``, or None when the twin must decode the message (another kind)."""
    cdef cptr p = _start(data)
    try:
        out = _envelope(p, p + PyBytes_GET_SIZE(data), frame)
    except (_Corrupt, UnicodeDecodeError):
        raise corrupt(frame.message) from None
    if out is _COLD:
        return None
    return (None, None) if out is None else (frame.kind, out)


cdef list _decode_list(object data, _Frame frame):
    cdef cptr p = _start(data)
    cdef list out = []
    try:
        _repeated(p, p + PyBytes_GET_SIZE(data), frame, 0, out)
    except (_Corrupt, UnicodeDecodeError):
        raise corrupt(frame.message) from None
    return out


def decode_coordinator_message(data):
    cdef _Schema schema = _schema()
    decoded = _decode_envelope(data, schema.coordinator)
    return schema.twin.decode_coordinator_message(data) if decoded is None else decoded


def decode_worker_message(data):
    cdef _Schema schema = _schema()
    decoded = _decode_envelope(data, schema.worker)
    return schema.twin.decode_worker_message(data) if decoded is None else decoded


def decode_stream_calls(data):
    return _decode_list(data, _schema().calls)


def decode_stream_outcomes(data):
    return _decode_list(data, _schema().outcomes)


# Encoding.

cdef inline Py_ssize_t _varint_size(uint64_t value) noexcept:
    cdef Py_ssize_t size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


cdef inline unsigned char* _put_varint(unsigned char* p, uint64_t value) noexcept:
    while value >= 0x80:
        p[0] = <unsigned char>(value | 0x80)
        value >>= 7
        p += 1
    p[0] = <unsigned char>value
    return p + 1


cdef inline Py_ssize_t _len_field(Py_ssize_t tag_size, Py_ssize_t size) noexcept:
    """Bytes a length-delimited field of ``size`` bytes takes, with a tag of ``tag_size`` bytes."""
    return tag_size + _varint_size(size) + size


cdef uint64_t _number(object value, _Layout layout, int slot, uint64_t limit) except? 0xFFFFFFFFFFFFFFFF:
    cdef uint64_t number
    if not isinstance(value, int) or isinstance(value, bool):
        raise unencodable(layout.spec, slot, value)
    try:
        number = value
    except OverflowError:
        raise unencodable(layout.spec, slot, value) from None
    if number > limit:
        raise unencodable(layout.spec, slot, value)
    return number


cdef Py_ssize_t _record_size(object record, _Layout layout) except -1:
    """Encoded size of ``record``, checking every slot (the error `check_record` gives)."""
    cdef Py_ssize_t total = 0, size, entry, text_size
    cdef Py_ssize_t position = 0
    cdef PyObject* key
    cdef PyObject* item
    cdef uint64_t number
    cdef int slot, kind
    if not isinstance(record, layout.cls):
        check_record(record, layout.spec)  # raises the twin's error
    for slot in range(layout.n):
        value = <object>PyTuple_GET_ITEM(record, slot)
        kind = layout.kinds[slot]
        if kind == K_STR:
            if not isinstance(value, str):
                raise unencodable(layout.spec, slot, value)
            PyUnicode_AsUTF8AndSize(value, &size)
            if size:
                total += _len_field(layout.tag_sizes[slot], size)
        elif kind == K_BYTES:
            if not isinstance(value, bytes):
                raise unencodable(layout.spec, slot, value)
            size = PyBytes_GET_SIZE(value)
            if size:
                total += _len_field(layout.tag_sizes[slot], size)
        elif kind == K_U32 or kind == K_U64:
            number = _number(value, layout, slot, 0xFFFFFFFF if kind == K_U32 else 0xFFFFFFFFFFFFFFFF)
            if number:
                total += layout.tag_sizes[slot] + _varint_size(number)
        elif kind == K_BOOL:
            if not isinstance(value, bool):
                raise unencodable(layout.spec, slot, value)
            if value:
                total += layout.tag_sizes[slot] + 1
        elif kind == K_MAP:
            if not isinstance(value, dict):
                raise unencodable(layout.spec, slot, value)
            position = 0
            while PyDict_Next(value, &position, &key, &item):
                if not isinstance(<object>key, str) or not isinstance(<object>item, str):
                    raise unencodable(layout.spec, slot, value)
                PyUnicode_AsUTF8AndSize(<object>key, &text_size)
                entry = _len_field(1, text_size)
                PyUnicode_AsUTF8AndSize(<object>item, &text_size)
                entry += _len_field(1, text_size)
                total += _len_field(layout.tag_sizes[slot], entry)
        elif value is None:
            continue
        elif kind == K_ONEOF_BYTES:
            if not isinstance(value, bytes):
                raise unencodable(layout.spec, slot, value)
            total += _len_field(layout.tag_sizes[slot], PyBytes_GET_SIZE(value))
        else:  # K_ONEOF_RECORD
            if not isinstance(value, layout.sub.cls):
                raise unencodable(layout.spec, slot, value)
            total += _len_field(layout.tag_sizes[slot], _record_size(value, layout.sub))
    return total


cdef unsigned char* _put_bytes(unsigned char* p, uint32_t tag, const char* data, Py_ssize_t size):
    p = _put_varint(p, tag)
    p = _put_varint(p, size)
    memcpy(p, data, size)
    return p + size


cdef unsigned char* _put_text(unsigned char* p, uint32_t tag, object text) except NULL:
    cdef Py_ssize_t size
    cdef const char* data = PyUnicode_AsUTF8AndSize(text, &size)
    return _put_bytes(p, tag, data, size)


cdef unsigned char* _write_record(unsigned char* p, object record, _Layout layout) except NULL:
    """Write a record already checked by `_record_size`."""
    cdef Py_ssize_t size, key_size, value_size
    cdef const char* key_data
    cdef const char* value_data
    cdef uint64_t number
    cdef uint32_t tag
    cdef int index, slot, kind
    for index in range(layout.n):
        slot = layout.order[index]
        value = <object>PyTuple_GET_ITEM(record, slot)
        kind = layout.kinds[slot]
        tag = layout.tags[slot]
        if kind == K_STR:
            if value:
                p = _put_text(p, tag, value)
        elif kind == K_BYTES:
            size = PyBytes_GET_SIZE(value)
            if size:
                p = _put_bytes(p, tag, PyBytes_AS_STRING(value), size)
        elif kind == K_U32 or kind == K_U64:
            number = value
            if number:
                p = _put_varint(_put_varint(p, tag), number)
        elif kind == K_BOOL:
            if value:
                p = _put_varint(p, tag)
                p[0] = 1
                p += 1
        elif kind == K_MAP:
            if value:
                for key in sorted(value, key=_map_order):
                    key_data = PyUnicode_AsUTF8AndSize(key, &key_size)
                    value_data = PyUnicode_AsUTF8AndSize(value[key], &value_size)
                    p = _put_varint(p, tag)
                    p = _put_varint(p, _len_field(1, key_size) + _len_field(1, value_size))
                    p = _put_bytes(p, MAP_KEY, key_data, key_size)
                    p = _put_bytes(p, MAP_VALUE, value_data, value_size)
        elif value is None:
            continue
        elif kind == K_ONEOF_BYTES:
            p = _put_bytes(p, tag, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))
        else:  # K_ONEOF_RECORD
            p = _put_varint(p, tag)
            p = _put_varint(p, _record_size(value, layout.sub))
            p = _write_record(p, value, layout.sub)
    return p


cdef bytes _encode(object items, _Frame frame):
    """The records ``items`` as ``frame``'s message: its repeated items, inside its batch if any."""
    cdef _Layout layout = frame.layout
    cdef Py_ssize_t count, index, body = 0
    cdef Py_ssize_t items_tag_size = _varint_size(frame.items_tag)
    cdef Py_ssize_t* sizes
    cdef unsigned char* p
    cdef bytes out
    if not isinstance(items, list):
        raise FrameError(f"expected a list of {layout.spec.name}, got {type(items).__name__}")
    count = PyList_GET_SIZE(items)
    sizes = <Py_ssize_t*>malloc((count or 1) * sizeof(Py_ssize_t))
    if sizes == NULL:
        raise MemoryError()
    try:
        try:
            for index in range(count):
                sizes[index] = _record_size(<object>PyList_GET_ITEM(items, index), layout)
                body += _len_field(items_tag_size, sizes[index])
        except UnicodeEncodeError:
            for record in items:  # a type error in any record comes first, as in the twin
                check_record(record, layout.spec)
            raise FrameError(
                f"cannot encode {layout.spec.name}: a string is not valid UTF-8"
            ) from None
        if frame.batch:
            out = PyBytes_FromStringAndSize(
                NULL, _len_field(_varint_size(frame.batch_tag), body)
            )
            p = _put_varint(<unsigned char*>PyBytes_AS_STRING(out), frame.batch_tag)
            p = _put_varint(p, body)
        else:
            out = PyBytes_FromStringAndSize(NULL, body)
            p = <unsigned char*>PyBytes_AS_STRING(out)
        for index in range(count):
            p = _put_varint(p, frame.items_tag)
            p = _put_varint(p, sizes[index])
            p = _write_record(p, <object>PyList_GET_ITEM(items, index), layout)
        return out
    finally:
        free(sizes)


def encode_invoke_batch(invokes):
    return _encode(invokes, _schema().coordinator)


def encode_result_batch(results):
    return _encode(results, _schema().worker)


def encode_stream_calls(calls):
    return _encode(calls, _schema().calls)


def encode_stream_outcomes(outcomes):
    return _encode(outcomes, _schema().outcomes)
