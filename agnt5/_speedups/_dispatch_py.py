"""The hot path in pure Python, and its API: decode JSON input, bind it, call, encode the result.

The compiled twin (`_dispatch`) has the same names with the same results and the same errors
(messages from `_common`); select one with `agnt5._speedups`. `HandlerAPI` is the surface both
`Handler` classes share. Exceptions the handler's callable raises pass through unchanged: turning
them into agnt5 errors is the invocation pipeline's job (`agnt5._pipeline`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

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

__all__ = ["Handler", "HandlerAPI", "decode_json", "encode_json"]

_MISSING: Any = object()
Converter = Callable[[Any, int], Any]
_DIGIT_MARKS = bytes(49 if 48 <= byte <= 57 else 48 for byte in range(256))  # b"1" per digit
_LONG_RUN = b"1" * LONG_DIGITS


def decode_json(payload: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON input; empty input is `None`; bad input is an `InvalidArgumentError`.

    Integers beyond 64 bits are decoded exactly (orjson would make them floats).
    """
    if not payload:
        return None
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise invalid_input(exc) from None
    if len(payload) >= LONG_DIGITS and _has_long_digits(payload):
        return loads_long_integers(payload)
    return value


def _has_long_digits(payload: bytes | bytearray | memoryview | str) -> bool:
    """Whether `LONG_DIGITS` ASCII digits follow each other somewhere in ``payload``."""
    data = payload.encode() if type(payload) is str else payload
    if type(data) is memoryview:
        data = bytes(data)
    return _LONG_RUN in data.translate(_DIGIT_MARKS)


def encode_json(value: Any) -> bytes:
    """Encode a result; dict keys that are not strings are stringified; bytes are base64 text;
    integers beyond 64 bits are written exactly. Raises `TypeError`."""
    try:
        return orjson.dumps(value, json_default)
    except TypeError:
        try:
            return orjson.dumps(value, json_default, orjson.OPT_NON_STR_KEYS)
        except TypeError:
            return dumps_long_integers(value, orjson.OPT_NON_STR_KEYS)


class HandlerAPI(Protocol):
    """What a registered callable offers the hot path, in both twins."""

    @property
    def name(self) -> str: ...
    @property
    def fn(self) -> Callable[..., Any]: ...
    @property
    def takes_ctx(self) -> bool:
        """Whether the callable takes a `Context` first."""

    @property
    def is_async(self) -> bool: ...
    def bind(self, payload: bytes) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        """Decode and bind input: positional args and keyword args (`None` when there are none)."""

    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any] | None, ctx: Any = None) -> Any:
        """Call with bound arguments (and `ctx` first when it takes one)."""

    def encode(self, result: Any) -> bytes:
        """Encode the callable's result, or raise `OutputNotSerializableError`."""

    def invoke(self, payload: bytes, ctx: Any = None) -> bytes:
        """Decode, bind, call and encode (synchronous callables only: others raise `TypeError`)."""


class Handler:
    """A registered callable with its binding plan compiled for the hot path."""

    __slots__ = (
        "_name_set",
        "_names",
        "_params",
        "_positional_count",
        "_scalar",
        "_var_keyword",
        "_var_positional",
        "_whole_array",
        "_whole_object",
        "fn",
        "is_async",
        "name",
        "takes_ctx",
    )

    def __init__(self, name: str, fn: Callable[..., Any], signature: plan.Signature) -> None:
        self.name = name
        self.fn = fn
        self.takes_ctx = signature.takes_ctx
        self.is_async = signature.is_async
        memo: dict[int, Converter | None] = {}
        params = signature.params
        self._params = tuple(
            (
                p.name,
                _compile(p.spec, memo),
                _EXACT.get(p.spec.kind, _Unmatched),
                p.required,
                p.default,
                p.keyword_only,
            )
            for p in params
        )
        self._names = tuple(p.name for p in params)
        self._name_set = frozenset(self._names)
        self._positional_count = sum(not p.keyword_only for p in params)
        self._var_positional = _compile_var(signature.var_positional, memo)
        self._var_keyword = _compile_var(signature.var_keyword, memo)
        single = len(params) == 1 and not params[0].keyword_only
        self._whole_object = (
            single and signature.var_keyword is None and params[0].spec.accepts_object
        )
        self._whole_array = (
            single and signature.var_positional is None and params[0].spec.accepts_array
        )
        required = [p for p in params if p.required]
        self._scalar = (
            bool(params)
            and not params[0].keyword_only
            and (len(params) == 1 or (len(required) == 1 and required[0] is params[0]))
        )

    def bind(self, payload: bytes) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        """Decode and bind input: positional args and keyword args (`None` when there are none)."""
        return self._bind(decode_json(payload), [])

    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any] | None, ctx: Any = None) -> Any:
        """Call the handler with bound arguments (and `ctx` first when it takes one)."""
        if self.takes_ctx:
            args = (ctx, *args)
        return self.fn(*args, **kwargs) if kwargs else self.fn(*args)

    def encode(self, result: Any) -> bytes:
        """Encode the handler's result, or raise `OutputNotSerializableError`."""
        try:
            return encode_json(result)
        except TypeError as exc:
            raise not_serializable(self.name, exc) from None

    def invoke(self, payload: bytes, ctx: Any = None) -> bytes:
        """Decode, bind, call (synchronous handlers only) and encode."""
        if self.is_async:
            raise async_invoke(self.name)
        args, kwargs = self._bind(decode_json(payload), [ctx] if self.takes_ctx else [])
        return self.encode(self.fn(*args, **kwargs) if kwargs else self.fn(*args))

    def __repr__(self) -> str:
        return f"<Handler {self.name}>"

    def _bind(self, value: Any, args: list[Any]) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        """`(args, kwargs)` by the binding rules; `args` continues the given list (`[ctx]`)."""
        kind = type(value)
        if kind is dict:
            if self._whole_object and self._names[0] not in value:
                return self._bind_one(value, args)
            return self._bind_object(value, args)
        if value is None:
            return self._bind_object({}, args)
        if kind is list:
            if self._whole_array:
                return self._bind_one(value, args)
            return self._bind_array(value, args)
        if not self._scalar:
            raise scalar_needs_one_parameter(value, len(self._params))
        return self._bind_one(value, args)

    def _bind_one(self, value: Any, args: list[Any]) -> tuple[tuple[Any, ...], None]:
        name, convert = self._params[0][:2]
        args.append(_convert_root(convert, value, name))
        return tuple(args), None

    def _bind_object(
        self, value: dict[str, Any], args: list[Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        extra: dict[str, Any] | None = None
        if not self._name_set.issuperset(value):
            extra = {key: item for key, item in value.items() if key not in self._name_set}
            if self._var_keyword is None:
                raise unknown_parameter(next(iter(extra)), self._names)
        kwargs: dict[str, Any] | None = None
        for name, convert, accept, required, default, keyword_only in self._params:
            item = value.get(name, _MISSING)
            if item is _MISSING:
                if required:
                    raise missing_parameter(name)
                if keyword_only:
                    continue
                item = default
            elif type(item) is not accept:
                item = _convert_root(convert, item, name)
            if keyword_only:
                if kwargs is None:
                    kwargs = {}
                kwargs[name] = item
            else:
                args.append(item)
        if extra:
            kwargs = kwargs or {}
            name, convert = self._var_keyword
            for key, item in extra.items():
                kwargs[key] = _convert_root(convert, item, key)
        return tuple(args), kwargs

    def _bind_array(self, value: list[Any], args: list[Any]) -> tuple[tuple[Any, ...], None]:
        count = len(value)
        if count > self._positional_count and self._var_positional is None:
            raise too_many_arguments(self._positional_count, count)
        for index, (name, convert, accept, required, default, keyword_only) in enumerate(
            self._params
        ):
            if keyword_only:
                if required:
                    raise missing_parameter(name)
                continue
            if index < count:
                item = value[index]
                args.append(item if type(item) is accept else _convert_root(convert, item, name))
            elif required:
                raise missing_parameter(name)
            else:
                args.append(default)
        if count > self._positional_count:
            name, convert = self._var_positional
            for index in range(self._positional_count, count):
                item = value[index]
                if convert is not None:
                    try:
                        item = convert(item, 0)
                    except Mismatch as error:
                        error.segments.append(index - self._positional_count)
                        raise error.at(name) from None
                args.append(item)
        return tuple(args), None


class _Unmatched:
    """No value has this exact type: parameters of other kinds always go through conversion."""


# Exact types a parameter of these kinds accepts unchanged, checked before calling its converter.
_EXACT: dict[int, type] = {plan.STR: str, plan.INT: int, plan.FLOAT: float, plan.BOOL: bool}


def _convert_root(convert: Converter | None, value: Any, root: str) -> Any:
    if convert is None:
        return value
    try:
        return convert(value, 0)
    except Mismatch as error:
        raise error.at(root) from None


def _compile_var(param: plan.Param | None, memo: dict[int, Converter | None]) -> Any:
    return None if param is None else (param.name, _compile(param.spec, memo))


# Converters: `convert(value, depth) -> value`, raising `Mismatch`; `None` means "take as is".


def _compile(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter | None:
    key = id(spec)
    if key in memo:
        return memo[key]
    compile_kind = _COMPILERS.get(spec.kind)
    if compile_kind is None:
        return None
    return compile_kind(spec, memo)


def _exact(kind: type, label: str) -> Converter:
    def convert(value: Any, depth: int) -> Any:
        if type(value) is kind:
            return value
        raise expected(label, value)

    return convert


def _compile_str(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    return _exact(str, spec.label)


def _compile_int(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    label = spec.label

    def convert(value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is int:
            return value
        if kind is float and value.is_integer():
            return int(value)
        raise expected(label, value)

    return convert


def _compile_bool(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    return _exact(bool, spec.label)


def _compile_float(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    label = spec.label

    def convert(value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is float:
            return value
        if kind is int:
            return float(value)
        raise expected(label, value)

    return convert


def _compile_none(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    label = spec.label

    def convert(value: Any, depth: int) -> Any:
        if value is None:
            return None
        raise expected(label, value)

    return convert


def _too_deep(depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise too_deep()


def _convert_items(item: Converter, value: list[Any], depth: int) -> list[Any]:
    out = []
    for index, element in enumerate(value):
        try:
            out.append(item(element, depth))
        except Mismatch as error:
            error.segments.append(index)
            raise
    return out


def _compile_sequence(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    label, kind = spec.label, spec.kind
    item = _compile(spec.items[0], memo)

    def convert(value: Any, depth: int) -> Any:
        if type(value) is not list:
            raise expected(label, value)
        _too_deep(depth)
        items = value if item is None else _convert_items(item, value, depth + 1)
        if kind == plan.LIST:
            return items
        if kind == plan.VARTUPLE:
            return tuple(items)
        try:
            return set(items) if kind == plan.SET else frozenset(items)
        except TypeError:
            raise unhashable(label) from None

    return convert


def _compile_tuple(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    label = spec.label
    items = tuple(_compile(item, memo) for item in spec.items)
    size = len(items)

    def convert(value: Any, depth: int) -> Any:
        if type(value) is not list:
            raise expected(label, value)
        if len(value) != size:
            raise wrong_length(label, size, len(value))
        _too_deep(depth)
        out = []
        for index, (item, element) in enumerate(zip(items, value, strict=True)):
            if item is None:
                out.append(element)
                continue
            try:
                out.append(item(element, depth + 1))
            except Mismatch as error:
                error.segments.append(index)
                raise
        return tuple(out)

    return convert


def _compile_dict(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    label = spec.label
    item = _compile(spec.items[0], memo)

    def convert(value: Any, depth: int) -> Any:
        if type(value) is not dict:
            raise expected(label, value)
        _too_deep(depth)
        if item is None:
            return value
        out = {}
        for key, element in value.items():
            try:
                out[key] = item(element, depth + 1)
            except Mismatch as error:
                error.segments.append(key)
                raise
        return out

    return convert


def _compile_optional(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter | None:
    item = _compile(spec.items[0], memo)
    if item is None:
        return None

    def convert(value: Any, depth: int) -> Any:
        return None if value is None else item(value, depth)

    return convert


def _compile_union(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    label = spec.label
    members = tuple(_compile(item, memo) for item in spec.items)

    def convert(value: Any, depth: int) -> Any:
        for member in members:
            if member is None:
                return value
            try:
                return member(value, depth)
            except Mismatch:
                continue
        raise expected(label, value)

    return convert


def _compile_literal(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    values = spec.values

    def convert(value: Any, depth: int) -> Any:
        for choice in values:
            if type(value) is type(choice) and value == choice:
                return choice
        raise one_of(values, value)

    return convert


def _compile_enum(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    cls, values = spec.cls, spec.values

    def convert(value: Any, depth: int) -> Any:
        try:
            return cls(value)
        except (ValueError, TypeError):
            raise one_of(values, value) from None

    return convert


def _compile_record(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    """Dataclasses and TypedDicts: an object with known fields, built field by field."""
    label, cls = spec.label, spec.cls
    build_dict = spec.kind == plan.TYPEDDICT
    fields: list[tuple[str, Converter | None, bool]] = []

    def convert(value: Any, depth: int) -> Any:
        if type(value) is not dict:
            raise expected(label, value)
        _too_deep(depth)
        out = {}
        for name, item, required in fields:
            element = value.get(name, _MISSING)
            if element is _MISSING:
                if required:
                    raise missing_field(name)
                continue
            if item is not None:
                try:
                    element = item(element, depth + 1)
                except Mismatch as error:
                    error.segments.append(name)
                    raise
            out[name] = element
        if len(out) < len(value):
            for key in value:
                if key not in out:
                    raise unknown_field(key)
        if build_dict:
            return out
        try:
            return cls(**out)
        except (ValueError, TypeError) as exc:
            raise invalid_value(label, exc) from None

    memo[id(spec)] = convert
    fields.extend((f.name, _compile(f.spec, memo), f.required) for f in spec.fields)
    return convert


def _compile_pydantic(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    validate = spec.cls.model_validate

    def convert(value: Any, depth: int) -> Any:
        try:
            return validate(value)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise pydantic_mismatch(exc) from None

    return convert


def _compile_parse(spec: plan.Spec, memo: dict[int, Converter | None]) -> Converter:
    label, parse = spec.label, spec.parser

    def convert(value: Any, depth: int) -> Any:
        try:
            return parse(value)
        except TypeError:
            raise expected(label, value) from None
        except (ValueError, ArithmeticError):
            raise invalid_value(label, json_repr(value)) from None

    return convert


_COMPILERS: dict[int, Callable[[plan.Spec, dict[int, Converter | None]], Converter | None]] = {
    plan.STR: _compile_str,
    plan.INT: _compile_int,
    plan.FLOAT: _compile_float,
    plan.BOOL: _compile_bool,
    plan.NONE: _compile_none,
    plan.LIST: _compile_sequence,
    plan.SET: _compile_sequence,
    plan.FROZENSET: _compile_sequence,
    plan.VARTUPLE: _compile_sequence,
    plan.TUPLE: _compile_tuple,
    plan.DICT: _compile_dict,
    plan.OPTIONAL: _compile_optional,
    plan.UNION: _compile_union,
    plan.LITERAL: _compile_literal,
    plan.ENUM: _compile_enum,
    plan.DATACLASS: _compile_record,
    plan.TYPEDDICT: _compile_record,
    plan.PYDANTIC: _compile_pydantic,
    plan.PARSE: _compile_parse,
}
