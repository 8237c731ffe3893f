"""The hot path compiled (API: see `_dispatch_py`, its twin, identical in behaviour and messages).

Binding plans (`_plan.Spec` trees) become `_Node` trees with an int kind at construction;
`_convert` switches on it. Every message comes from `_common` and is built on error paths only.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItemWithError, PyDict_Next, PyDict_SetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF, PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_New, PyTuple_SET_ITEM

import inspect
import types

import orjson

from agnt5._speedups import _plan as plan
from agnt5._speedups._common import (
    LONG_DIGITS,
    MAX_DEPTH,
    Mismatch,
    async_invoke,
    dumps_long_integers,
    expected,
    invalid_input,
    invalid_value,
    json_default,
    json_repr,
    loads_long_integers,
    missing_field,
    missing_parameter,
    not_serializable,
    one_of,
    pydantic_mismatch,
    scalar_needs_one_parameter,
    too_deep,
    too_many_arguments,
    unhashable,
    unknown_field,
    unknown_parameter,
    wrong_length,
)

cdef extern from "Python.h":
    # PyObject_Call with keyword arguments that may be NULL (a dict passed as is, not copied).
    object _call "PyObject_Call"(object fn, object args, PyObject* kwargs)

__all__ = ["Handler", "decode_json", "encode_json"]

# The `_plan` kinds, in order; checked against `_plan` at import.
cdef enum:
    K_ANY, K_STR, K_INT, K_FLOAT, K_BOOL, K_NONE, K_LIST, K_SET, K_FROZENSET, K_TUPLE
    K_VARTUPLE, K_DICT, K_OPTIONAL, K_UNION, K_LITERAL, K_ENUM, K_DATACLASS, K_TYPEDDICT
    K_PYDANTIC, K_PARSE

_KINDS = ("ANY", "STR", "INT", "FLOAT", "BOOL", "NONE", "LIST", "SET", "FROZENSET", "TUPLE",
          "VARTUPLE", "DICT", "OPTIONAL", "UNION", "LITERAL", "ENUM", "DATACLASS", "TYPEDDICT",
          "PYDANTIC", "PARSE")
if tuple(getattr(plan, kind) for kind in _KINDS) != tuple(range(len(_KINDS))):
    raise ImportError("agnt5._speedups._plan kinds changed; rebuild _dispatch.pyx to match")

cdef object _loads = orjson.loads
cdef object _dumps = orjson.dumps
cdef object _JSONDecodeError = orjson.JSONDecodeError
cdef object _NON_STR_KEYS = orjson.OPT_NON_STR_KEYS
cdef object _default = json_default
cdef object _Mismatch = Mismatch
cdef object _FunctionType = types.FunctionType
cdef int _CO_VARARGS = inspect.CO_VARARGS
cdef int _CO_VARKEYWORDS = inspect.CO_VARKEYWORDS
cdef int _MAX_DEPTH = MAX_DEPTH
cdef Py_ssize_t _LONG_DIGITS = LONG_DIGITS
cdef dict _NO_INPUT = {}


def decode_json(payload):
    return _decode(payload)


def encode_json(value):
    return _encode(value)


cdef inline object _decode(object payload):
    if not payload:
        return None
    try:
        value = _loads(payload)
    except _JSONDecodeError as exc:
        raise invalid_input(exc) from None
    if len(payload) >= _LONG_DIGITS and _has_long_digits(payload):
        return loads_long_integers(payload)
    return value


cdef bint _has_long_digits(object payload):
    """Whether `LONG_DIGITS` ASCII digits follow each other somewhere in `payload`.

    Looks at every `LONG_DIGITS`-th byte while it is not a digit (no run can span it), so
    most input is skipped, not read.
    """
    if type(payload) is not bytes:
        payload = payload.encode() if type(payload) is str else bytes(payload)
    cdef const unsigned char* data = <const unsigned char*>PyBytes_AS_STRING(payload)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(payload)
    cdef Py_ssize_t end = _LONG_DIGITS - 1  # the last byte of the run being tried
    cdef Py_ssize_t at
    while end < size:
        at = end
        while at > end - _LONG_DIGITS and 48 <= data[at] <= 57:
            at -= 1
        if at == end - _LONG_DIGITS:
            return True
        end = at + _LONG_DIGITS  # a run must start after the non-digit at `at`
    return False


cdef inline object _encode(object value):
    try:
        return _dumps(value, _default)
    except TypeError:
        try:
            return _dumps(value, _default, _NON_STR_KEYS)
        except TypeError:
            return dumps_long_integers(value, _NON_STR_KEYS)


cdef class _Node:
    """One `Spec`, compiled: `_convert` checks and converts a value by `kind`."""

    cdef int kind
    cdef object label
    cdef object item      # the element node of containers and Optional; None: take as is
    cdef tuple items      # member nodes of fixed tuples and unions (None: take as is)
    cdef tuple fields     # `_Field`s of dataclasses and TypedDicts
    cdef object cls
    cdef tuple values
    cdef object parser    # PARSE: the parser; PYDANTIC: `model_validate`
    cdef bint positional  # DATACLASS: build with positional arguments when all fields are given


cdef class _Field:
    """A dataclass or TypedDict field."""

    cdef object name
    cdef object node
    cdef bint required


cdef class _Param:
    """A handler parameter with its compiled node."""

    cdef object name
    cdef object node
    cdef bint required
    cdef object default
    cdef bint keyword_only


cdef object _compile(object spec, dict memo):
    """The node for `spec`, or None when any value is taken as is."""
    key = id(spec)
    if key in memo:
        return memo[key]
    cdef int kind = spec.kind
    if kind <= K_ANY or kind > K_PARSE:
        return None
    if kind == K_OPTIONAL:
        item = _compile(spec.items[0], memo)
        if item is None:
            return None
    cdef _Node node = _Node.__new__(_Node)
    node.kind = kind
    node.label = spec.label
    node.cls = spec.cls
    node.values = tuple(spec.values)
    node.parser = spec.parser
    node.items = ()
    node.fields = ()
    if kind == K_OPTIONAL:
        node.item = item
    elif kind in (K_LIST, K_SET, K_FROZENSET, K_VARTUPLE, K_DICT):
        node.item = _compile(spec.items[0], memo)
    elif kind in (K_TUPLE, K_UNION):
        node.items = tuple([_compile(member, memo) for member in spec.items])
    elif kind == K_PYDANTIC:
        node.parser = spec.cls.model_validate
    elif kind in (K_DATACLASS, K_TYPEDDICT):
        memo[key] = node  # before the fields: recursive types refer back to it
        node.fields = tuple([_field(f, memo) for f in spec.fields])
        node.positional = kind == K_DATACLASS and _takes_fields_positionally(node.cls, node.fields)
    return node


cdef _Field _field(object field, dict memo):
    cdef _Field out = _Field.__new__(_Field)
    out.name = field.name
    out.node = _compile(field.spec, memo)
    out.required = field.required
    return out


cdef _Param _param(object param, dict memo):
    cdef _Param out = _Param.__new__(_Param)
    out.name = param.name
    out.node = _compile(param.spec, memo)
    out.required = param.required
    out.default = param.default
    out.keyword_only = param.keyword_only
    return out


cdef bint _as_is(_Node node, object value):
    """Whether `value` passes `node` unchanged: the common case, checked without a call frame."""
    cdef int kind = node.kind
    if kind == K_STR:
        return type(value) is str
    if kind == K_INT:
        return type(value) is int
    if kind == K_FLOAT:
        return type(value) is float
    if kind == K_BOOL:
        return type(value) is bool
    if kind == K_OPTIONAL:
        return value is None or _as_is(<_Node>node.item, value)
    return kind == K_NONE and value is None


cdef object _convert_root(object node, object value, object root):
    """Convert a parameter's value; a mismatch becomes the public error naming its path."""
    if node is None or _as_is(<_Node>node, value):
        return value
    try:
        return _convert(<_Node>node, value, 0)
    except _Mismatch as error:
        raise error.at(root) from None


cdef object _convert(_Node node, object value, int depth):
    """Check and convert `value` by `node`, raising `Mismatch` (its path is built on the way out)."""
    cdef int kind = node.kind
    if kind == K_STR:
        if type(value) is str:
            return value
        raise expected(node.label, value)
    elif kind == K_INT:
        if type(value) is int:
            return value
        if type(value) is float and value.is_integer():
            return int(value)
        raise expected(node.label, value)
    elif kind == K_BOOL:
        if type(value) is bool:
            return value
        raise expected(node.label, value)
    elif kind == K_FLOAT:
        if type(value) is float:
            return value
        if type(value) is int:
            return float(value)
        raise expected(node.label, value)
    elif kind == K_NONE:
        if value is None:
            return None
        raise expected(node.label, value)
    elif kind == K_OPTIONAL:
        if value is None:
            return None
        return _convert(<_Node>node.item, value, depth)
    elif kind == K_LIST or kind == K_VARTUPLE or kind == K_SET or kind == K_FROZENSET:
        return _convert_sequence(node, value, depth)
    elif kind == K_TUPLE:
        return _convert_tuple(node, value, depth)
    elif kind == K_DICT:
        return _convert_dict(node, value, depth)
    elif kind == K_DATACLASS or kind == K_TYPEDDICT:
        return _convert_record(node, value, depth)
    elif kind == K_UNION:
        for member in node.items:
            if member is None:
                return value
            try:
                return _convert(<_Node>member, value, depth)
            except _Mismatch:
                pass
        raise expected(node.label, value)
    elif kind == K_LITERAL:
        for choice in node.values:
            if type(value) is type(choice) and value == choice:
                return choice
        raise one_of(node.values, value)
    elif kind == K_ENUM:
        try:
            return node.cls(value)
        except (ValueError, TypeError):
            raise one_of(node.values, value) from None
    elif kind == K_PYDANTIC:
        try:
            return node.parser(value)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise pydantic_mismatch(exc) from None
    else:  # K_PARSE
        try:
            return node.parser(value)
        except TypeError:
            raise expected(node.label, value) from None
        except (ValueError, ArithmeticError):
            raise invalid_value(node.label, json_repr(value)) from None


cdef object _convert_sequence(_Node node, object value, int depth):
    if type(value) is not list:
        raise expected(node.label, value)
    if depth >= _MAX_DEPTH:
        raise too_deep()
    cdef list items = <list>value
    if node.item is not None:
        items = _convert_items(<_Node>node.item, items, depth + 1)
    if node.kind == K_LIST:
        return items
    if node.kind == K_VARTUPLE:
        return tuple(items)
    try:
        return set(items) if node.kind == K_SET else frozenset(items)
    except TypeError:
        raise unhashable(node.label) from None


cdef list _convert_items(_Node item, list value, int depth):
    cdef Py_ssize_t index = 0, count = PyList_GET_SIZE(value)
    cdef list out = PyList_New(count)
    try:
        while index < count:
            converted = <object>PyList_GET_ITEM(value, index)
            if not _as_is(item, converted):
                converted = _convert(item, converted, depth)
            Py_INCREF(converted)
            PyList_SET_ITEM(out, index, converted)
            index += 1
    except _Mismatch as error:
        error.segments.append(index)
        raise
    return out


cdef object _convert_tuple(_Node node, object value, int depth):
    if type(value) is not list:
        raise expected(node.label, value)
    cdef Py_ssize_t index = 0, size = PyTuple_GET_SIZE(node.items)
    cdef Py_ssize_t count = PyList_GET_SIZE(value)
    if count != size:
        raise wrong_length(node.label, size, count)
    if depth >= _MAX_DEPTH:
        raise too_deep()
    cdef tuple out = PyTuple_New(size)
    try:
        while index < size:
            element = <object>PyList_GET_ITEM(value, index)
            item = <object>PyTuple_GET_ITEM(node.items, index)
            if item is not None:
                element = _convert(<_Node>item, element, depth + 1)
            Py_INCREF(element)
            PyTuple_SET_ITEM(out, index, element)
            index += 1
    except _Mismatch as error:
        error.segments.append(index)
        raise
    return out


cdef object _convert_dict(_Node node, object value, int depth):
    if type(value) is not dict:
        raise expected(node.label, value)
    if depth >= _MAX_DEPTH:
        raise too_deep()
    if node.item is None:
        return value
    cdef _Node item = <_Node>node.item
    cdef dict out = {}
    cdef Py_ssize_t position = 0
    cdef PyObject* key_ptr
    cdef PyObject* value_ptr
    while PyDict_Next(value, &position, &key_ptr, &value_ptr):
        key = <object>key_ptr
        try:
            PyDict_SetItem(out, key, _convert(item, <object>value_ptr, depth + 1))
        except _Mismatch as error:
            error.segments.append(key)
            raise
    return out


cdef object _convert_record(_Node node, object value, int depth):
    """Dataclasses and TypedDicts: an object with known fields, built field by field."""
    if type(value) is not dict:
        raise expected(node.label, value)
    if depth >= _MAX_DEPTH:
        raise too_deep()
    cdef Py_ssize_t index, size = PyTuple_GET_SIZE(node.fields), found_count = 0
    cdef tuple values = PyTuple_New(size)  # converted fields in order; NULL where absent
    cdef _Field field
    cdef PyObject* found
    for index in range(size):
        field = <_Field>PyTuple_GET_ITEM(node.fields, index)
        found = PyDict_GetItemWithError(value, field.name)
        if found is NULL:
            if field.required:
                raise missing_field(field.name)
            continue
        element = <object>found
        if field.node is not None and not _as_is(<_Node>field.node, element):
            try:
                element = _convert(<_Node>field.node, element, depth + 1)
            except _Mismatch as error:
                error.segments.append(field.name)
                raise
        Py_INCREF(element)
        PyTuple_SET_ITEM(values, index, element)
        found_count += 1
    if found_count < len(<dict>value):
        names = {field.name for field in node.fields}
        for key in <dict>value:
            if key not in names:
                raise unknown_field(key)
    try:
        if node.positional and found_count == size:
            return _call(node.cls, values, NULL)
        out = {}
        for index in range(size):
            found = PyTuple_GET_ITEM(values, index)
            if found is not NULL:
                PyDict_SetItem(out, (<_Field>PyTuple_GET_ITEM(node.fields, index)).name, <object>found)
        if node.kind == K_TYPEDDICT:
            return out
        return _call(node.cls, (), <PyObject*>out)
    except (ValueError, TypeError) as exc:
        raise invalid_value(node.label, exc) from None


cdef bint _takes_fields_positionally(object cls, tuple fields):
    """Whether `cls(*values)` binds exactly as `cls(**{field: value})` when every field is given.

    True for a plain class whose `__init__` is a Python function taking exactly the fields, in
    order, as positional-or-keyword parameters (a dataclass's generated `__init__`, usually).
    """
    init = getattr(cls, "__init__", None)
    if (
        type(init) is not _FunctionType
        or type(cls).__call__ is not type.__call__
        or cls.__new__ is not object.__new__
    ):
        return False
    code = init.__code__
    count = len(fields)
    return (
        code.co_argcount == count + 1
        and code.co_posonlyargcount == 0
        and code.co_kwonlyargcount == 0
        and not code.co_flags & (_CO_VARARGS | _CO_VARKEYWORDS)
        and code.co_varnames[1 : count + 1] == tuple([(<_Field>f).name for f in fields])
    )


cdef class Handler:
    """A registered callable with its binding plan compiled for the hot path."""

    cdef readonly object name
    cdef readonly object fn
    cdef readonly bint takes_ctx
    cdef readonly bint is_async
    cdef tuple _params
    cdef tuple _names
    cdef frozenset _name_set
    cdef Py_ssize_t _positional_count
    cdef bint _whole_object
    cdef bint _whole_array
    cdef bint _scalar
    cdef object _var_positional
    cdef object _var_keyword

    def __init__(self, name, fn, signature):
        self.name = name
        self.fn = fn
        self.takes_ctx = signature.takes_ctx
        self.is_async = signature.is_async
        cdef dict memo = {}
        params = signature.params
        self._params = tuple([_param(p, memo) for p in params])
        self._names = tuple([p.name for p in params])
        self._name_set = frozenset(self._names)
        self._positional_count = sum([not p.keyword_only for p in params])
        self._var_positional = None if signature.var_positional is None else _param(
            signature.var_positional, memo
        )
        self._var_keyword = None if signature.var_keyword is None else _param(
            signature.var_keyword, memo
        )
        single = len(params) == 1 and not params[0].keyword_only
        self._whole_object = (
            single and signature.var_keyword is None and params[0].spec.accepts_object
        )
        self._whole_array = (
            single and signature.var_positional is None and params[0].spec.accepts_array
        )
        required = [p for p in params if p.required]
        self._scalar = bool(params) and not params[0].keyword_only and (
            len(params) == 1 or (len(required) == 1 and required[0] is params[0])
        )

    def bind(self, payload):
        return self._bind(_decode(payload), None, False)

    def call(self, args, kwargs, ctx=None):
        if self.takes_ctx:
            args = (ctx, *args)
        return self.fn(*args, **kwargs) if kwargs else self.fn(*args)

    def encode(self, result):
        return self._encode_result(result)

    def invoke(self, payload, ctx=None):
        return self._invoke(payload, ctx)

    def __repr__(self):
        return f"<Handler {self.name}>"

    cdef object _invoke(self, object payload, object ctx):
        if self.is_async:
            raise async_invoke(self.name)
        cdef tuple bound = self._bind(_decode(payload), ctx, self.takes_ctx)
        cdef tuple args = <tuple>PyTuple_GET_ITEM(bound, 0)
        kwargs = <object>PyTuple_GET_ITEM(bound, 1)
        return self._encode_result(_call(self.fn, args, NULL if kwargs is None else <PyObject*>kwargs))

    cdef object _encode_result(self, object result):
        try:
            return _encode(result)
        except TypeError as exc:
            raise not_serializable(self.name, exc) from None

    cdef tuple _bind(self, object value, object ctx, bint with_ctx):
        """`(args, kwargs)` by the binding rules; `args` starts with `ctx` when `with_ctx`."""
        if type(value) is dict:
            if self._whole_object and PyDict_GetItemWithError(value, self._names[0]) is NULL:
                return self._bind_one(value, ctx, with_ctx)
            return self._bind_object(<dict>value, ctx, with_ctx)
        if value is None:
            return self._bind_object(_NO_INPUT, ctx, with_ctx)
        if type(value) is list:
            if self._whole_array:
                return self._bind_one(value, ctx, with_ctx)
            return self._bind_array(<list>value, ctx, with_ctx)
        if not self._scalar:
            raise scalar_needs_one_parameter(value, len(self._params))
        return self._bind_one(value, ctx, with_ctx)

    cdef tuple _bind_one(self, object value, object ctx, bint with_ctx):
        cdef _Param param = <_Param>PyTuple_GET_ITEM(self._params, 0)
        value = _convert_root(param.node, value, param.name)
        return ((ctx, value) if with_ctx else (value,)), None

    cdef tuple _bind_object(self, dict value, object ctx, bint with_ctx):
        cdef _Param param
        cdef PyObject* found
        cdef Py_ssize_t matched = 0, position = with_ctx
        for param in self._params:
            if PyDict_GetItemWithError(value, param.name) is not NULL:
                matched += 1
        extra = None
        if matched < len(value):
            extra = {key: item for key, item in value.items() if key not in self._name_set}
            if self._var_keyword is None:
                raise unknown_parameter(next(iter(extra)), self._names)
        cdef tuple args = _new_args(self._positional_count, ctx, with_ctx)
        kwargs = None
        for param in self._params:
            found = PyDict_GetItemWithError(value, param.name)
            if found is NULL:
                if param.required:
                    raise missing_parameter(param.name)
                if param.keyword_only:
                    continue
                item = param.default
            else:
                item = _convert_root(param.node, <object>found, param.name)
            if param.keyword_only:
                if kwargs is None:
                    kwargs = {}
                kwargs[param.name] = item
            else:
                Py_INCREF(item)
                PyTuple_SET_ITEM(args, position, item)
                position += 1
        if extra:
            if kwargs is None:
                kwargs = {}
            param = <_Param>self._var_keyword
            for key, item in extra.items():
                kwargs[key] = _convert_root(param.node, item, key)
        return args, kwargs

    cdef tuple _bind_array(self, list value, object ctx, bint with_ctx):
        cdef Py_ssize_t count = PyList_GET_SIZE(value), index = 0, position = with_ctx
        cdef Py_ssize_t positional = self._positional_count
        if count > positional and self._var_positional is None:
            raise too_many_arguments(positional, count)
        cdef tuple args = _new_args(max(count, positional), ctx, with_ctx)
        cdef _Param param
        for param in self._params:
            if param.keyword_only:
                if param.required:
                    raise missing_parameter(param.name)
            else:
                if index < count:
                    item = _convert_root(
                        param.node, <object>PyList_GET_ITEM(value, index), param.name
                    )
                elif param.required:
                    raise missing_parameter(param.name)
                else:
                    item = param.default
                Py_INCREF(item)
                PyTuple_SET_ITEM(args, position, item)
                position += 1
            index += 1
        if count > positional:
            param = <_Param>self._var_positional
            for index in range(positional, count):
                item = <object>PyList_GET_ITEM(value, index)
                if param.node is not None:
                    try:
                        item = _convert(<_Node>param.node, item, 0)
                    except _Mismatch as error:
                        error.segments.append(index - positional)
                        raise error.at(param.name) from None
                Py_INCREF(item)
                PyTuple_SET_ITEM(args, position, item)
                position += 1
        return args, None


cdef inline tuple _new_args(Py_ssize_t count, object ctx, bint with_ctx):
    """An argument tuple to fill in order, with `ctx` already in front when `with_ctx`."""
    cdef tuple args = PyTuple_New(count + with_ctx)
    if with_ctx:
        Py_INCREF(ctx)
        PyTuple_SET_ITEM(args, 0, ctx)
    return args
