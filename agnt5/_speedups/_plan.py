"""Binding plans: a handler's signature and type hints, read once at registration.

Both hot-path implementations interpret the same plan; nothing here runs per invocation.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import inspect
import logging
import sys
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping, MutableMapping, MutableSequence, Sequence
from typing import Any

from agnt5._speedups._common import decode_base64

__all__ = [
    "Field",
    "Param",
    "Signature",
    "Spec",
    "read_signature",
    "spec_for",
]

_log = logging.getLogger("agnt5.schema")

# Spec kinds. The compiled module mirrors these numbers; keep them in step with _dispatch.pyx.
ANY = 0
STR = 1
INT = 2
FLOAT = 3
BOOL = 4
NONE = 5
LIST = 6
SET = 7
FROZENSET = 8
TUPLE = 9
VARTUPLE = 10
DICT = 11
OPTIONAL = 12
UNION = 13
LITERAL = 14
ENUM = 15
DATACLASS = 16
TYPEDDICT = 17
PYDANTIC = 18
PARSE = 19

OBJECT_KINDS = frozenset({ANY, DICT, DATACLASS, TYPEDDICT, PYDANTIC})
ARRAY_KINDS = frozenset({LIST, SET, FROZENSET, TUPLE, VARTUPLE})


class Spec:
    """How one annotated value is checked and converted (a tree; recursive types share nodes)."""

    __slots__ = ("cls", "fields", "items", "kind", "label", "parser", "values")

    def __init__(
        self,
        kind: int,
        label: str,
        *,
        items: tuple[Spec, ...] = (),
        fields: tuple[Field, ...] = (),
        cls: Any = None,
        values: tuple[Any, ...] = (),
        parser: Callable[[Any], Any] | None = None,
    ) -> None:
        self.kind = kind
        self.label = label
        self.items = items
        self.fields = fields
        self.cls = cls
        self.values = values
        self.parser = parser

    @property
    def accepts_object(self) -> bool:
        """Whether a JSON object can bind to this spec as a whole."""
        if self.kind in (OPTIONAL, UNION):
            return any(item.accepts_object for item in self.items)
        return self.kind in OBJECT_KINDS

    @property
    def accepts_array(self) -> bool:
        """Whether a JSON array can bind to this spec as a whole (a list, set or tuple)."""
        if self.kind in (OPTIONAL, UNION):
            return any(item.accepts_array for item in self.items)
        return self.kind in ARRAY_KINDS

    def __repr__(self) -> str:
        return f"Spec({self.label})"


class Field:
    """A named member of a dataclass or TypedDict."""

    __slots__ = ("name", "required", "spec")

    def __init__(self, name: str, spec: Spec, required: bool) -> None:
        self.name = name
        self.spec = spec
        self.required = required


class Param:
    """One handler parameter (the context parameter is not one)."""

    __slots__ = ("annotation", "default", "keyword_only", "name", "required", "spec")

    def __init__(
        self,
        name: str,
        spec: Spec,
        *,
        required: bool,
        default: Any = None,
        keyword_only: bool = False,
        annotation: Any = inspect.Parameter.empty,
    ) -> None:
        self.name = name
        self.spec = spec
        self.required = required
        self.default = default
        self.keyword_only = keyword_only
        self.annotation = annotation


@dataclasses.dataclass(frozen=True)
class Signature:
    """Everything the hot path and the schema need to know about a handler's signature."""

    params: tuple[Param, ...]
    takes_ctx: bool
    is_async: bool
    var_positional: Param | None
    var_keyword: Param | None
    returns: Spec


def read_signature(fn: Callable[..., Any]) -> Signature:
    """Read `fn`'s parameters and type hints into a binding plan."""
    signature = inspect.signature(fn)
    hints = _type_hints(fn)
    memo: dict[Any, Spec] = {}
    parameters = list(signature.parameters.values())
    takes_ctx = bool(parameters) and _is_context_parameter(parameters[0], hints)
    if takes_ctx:
        parameters = parameters[1:]
    params: list[Param] = []
    var_positional = var_keyword = None
    for parameter in parameters:
        annotation = hints.get(parameter.name, parameter.annotation)
        param = Param(
            parameter.name,
            spec_for(annotation, memo),
            required=parameter.default is inspect.Parameter.empty,
            default=None if parameter.default is inspect.Parameter.empty else parameter.default,
            keyword_only=parameter.kind is inspect.Parameter.KEYWORD_ONLY,
            annotation=annotation,
        )
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            var_positional = param
        elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = param
        else:
            params.append(param)
    returns = spec_for(hints.get("return", signature.return_annotation), memo)
    return Signature(
        params=tuple(params),
        takes_ctx=takes_ctx,
        is_async=inspect.iscoroutinefunction(fn),
        var_positional=var_positional,
        var_keyword=var_keyword,
        returns=returns,
    )


def _type_hints(obj: Any) -> dict[str, Any]:
    """Resolved annotations; one that cannot be resolved degrades alone, never the others."""
    try:
        return typing.get_type_hints(obj)
    except Exception:
        pass
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    namespace = getattr(obj, "__globals__", None) or getattr(module, "__dict__", {})
    hints: dict[str, Any] = {}
    for name, annotation in getattr(obj, "__annotations__", {}).items():
        try:
            hints[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation
        except Exception as exc:  # an unresolvable forward reference never crashes an import
            _log.debug("cannot resolve annotation %r of %r: %s", annotation, obj, exc)
    return hints


def _is_context_parameter(parameter: inspect.Parameter, hints: Mapping[str, Any]) -> bool:
    if parameter.kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        return False
    if parameter.name == "ctx":
        return True
    annotation = hints.get(parameter.name, parameter.annotation)
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1] in _CONTEXT_NAMES
    return getattr(annotation, "__name__", None) in _CONTEXT_NAMES and getattr(
        annotation, "__module__", ""
    ).startswith("agnt5")


_CONTEXT_NAMES = frozenset({"Context", "WorkflowContext"})


_SCALARS: dict[Any, tuple[int, str]] = {
    str: (STR, "str"),
    int: (INT, "int"),
    float: (FLOAT, "float"),
    bool: (BOOL, "bool"),
    None: (NONE, "None"),
    type(None): (NONE, "None"),
}


def _parse_decimal(value: Any) -> decimal.Decimal:
    if type(value) is bool or not isinstance(value, (str, int, float)):
        raise TypeError("not a number")
    return decimal.Decimal(str(value))


def _parse_string(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    def parser(value: Any) -> Any:
        if type(value) is not str:
            raise TypeError("not a string")
        return parse(value)

    return parser


_PARSED: dict[Any, tuple[str, Callable[[Any], Any]]] = {
    datetime.datetime: ("datetime", _parse_string(datetime.datetime.fromisoformat)),
    datetime.date: ("date", _parse_string(datetime.date.fromisoformat)),
    datetime.time: ("time", _parse_string(datetime.time.fromisoformat)),
    uuid.UUID: ("UUID", _parse_string(uuid.UUID)),
    decimal.Decimal: ("Decimal", _parse_decimal),
    bytes: ("bytes (base64)", decode_base64),
}

_LIST_ORIGINS = (list, Sequence, MutableSequence, Iterable, typing.Sequence)
_DICT_ORIGINS = (dict, Mapping, MutableMapping)


def spec_for(annotation: Any, memo: dict[Any, Spec] | None = None) -> Spec:
    """The spec for one annotation; anything unsupported degrades to `Any` (no check)."""
    memo = {} if memo is None else memo
    try:
        return _spec_for(annotation, memo)
    except Exception as exc:  # a strange annotation never breaks registration
        _log.debug("annotation %r is not supported (%s); accepting any value", annotation, exc)
        return Spec(ANY, "Any")


def _spec_for(annotation: Any, memo: dict[Any, Spec]) -> Spec:
    if annotation is inspect.Parameter.empty or annotation is Any or annotation is object:
        return Spec(ANY, "Any")
    if annotation in _SCALARS:
        kind, label = _SCALARS[annotation]
        return Spec(kind, label)
    if annotation in _PARSED:
        label, parser = _PARSED[annotation]
        return Spec(PARSE, label, cls=annotation, parser=parser)
    if isinstance(annotation, typing.NewType):
        return spec_for(annotation.__supertype__, memo)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return spec_for(args[0], memo)
    if origin is typing.Union or origin is types.UnionType:
        return _union_spec(args, memo)
    if origin is typing.Literal:
        return Spec(LITERAL, _literal_label(args), values=tuple(args))
    if annotation in _LIST_ORIGINS or origin in _LIST_ORIGINS:
        return _container_spec(LIST, "list", args, memo)
    if annotation in (set, frozenset) or origin in (set, frozenset):
        kind = SET if (origin or annotation) is set else FROZENSET
        return _container_spec(kind, (origin or annotation).__name__, args, memo)
    if annotation is tuple or origin is tuple:
        return _tuple_spec(args, memo)
    if annotation in _DICT_ORIGINS or origin in _DICT_ORIGINS:
        value = spec_for(args[1], memo) if len(args) == 2 else Spec(ANY, "Any")
        key_label = _label_of(args[0]) if args else "str"
        label = f"dict[{key_label}, {value.label}]" if args else "dict"
        return Spec(DICT, label, items=(value,))
    if isinstance(annotation, type):
        return _class_spec(annotation, memo)
    raise TypeError(f"unsupported annotation {annotation!r}")


def _label_of(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)


def _literal_label(values: tuple[Any, ...]) -> str:
    return "Literal[" + ", ".join(repr(value) for value in values) + "]"


def _union_spec(args: tuple[Any, ...], memo: dict[Any, Spec]) -> Spec:
    members = [spec_for(arg, memo) for arg in args]
    others = [member for member in members if member.kind != NONE]
    if len(others) == 1 and len(members) == 2:
        return Spec(OPTIONAL, f"{others[0].label} | None", items=(others[0],))
    if any(member.kind == ANY for member in members):
        return Spec(ANY, "Any")
    return Spec(UNION, " | ".join(member.label for member in members), items=tuple(members))


def _container_spec(kind: int, name: str, args: tuple[Any, ...], memo: dict[Any, Spec]) -> Spec:
    item = spec_for(args[0], memo) if args else Spec(ANY, "Any")
    return Spec(kind, f"{name}[{item.label}]" if args else name, items=(item,))


def _tuple_spec(args: tuple[Any, ...], memo: dict[Any, Spec]) -> Spec:
    if not args:
        return Spec(VARTUPLE, "tuple", items=(Spec(ANY, "Any"),))
    if len(args) == 2 and args[1] is Ellipsis:
        item = spec_for(args[0], memo)
        return Spec(VARTUPLE, f"tuple[{item.label}, ...]", items=(item,))
    if args == ((),):
        return Spec(TUPLE, "tuple[()]")
    items = tuple(spec_for(arg, memo) for arg in args)
    return Spec(TUPLE, "tuple[" + ", ".join(item.label for item in items) + "]", items=items)


def _class_spec(cls: type, memo: dict[Any, Spec]) -> Spec:
    if cls in memo:
        return memo[cls]
    if issubclass(cls, enum.Enum):
        spec = Spec(ENUM, cls.__name__, cls=cls, values=tuple(member.value for member in cls))
    elif dataclasses.is_dataclass(cls):
        spec = memo[cls] = Spec(DATACLASS, cls.__name__, cls=cls)
        hints = _type_hints(cls)
        spec.fields = tuple(
            Field(field.name, spec_for(hints.get(field.name, Any), memo), _field_required(field))
            for field in dataclasses.fields(cls)
            if field.init
        )
    elif typing.is_typeddict(cls):
        spec = memo[cls] = Spec(TYPEDDICT, cls.__name__, cls=cls)
        hints = _type_hints(cls)
        required = getattr(cls, "__required_keys__", frozenset(hints))
        spec.fields = tuple(
            Field(name, spec_for(hint, memo), name in required) for name, hint in hints.items()
        )
    elif callable(getattr(cls, "model_validate", None)) and hasattr(cls, "model_json_schema"):
        spec = Spec(PYDANTIC, cls.__name__, cls=cls)
    elif cls in (list, dict, tuple, set, frozenset):  # bare builtins reached via a subclass check
        raise TypeError(f"unsupported annotation {cls!r}")
    else:
        raise TypeError(f"class {cls.__name__} cannot be built from JSON")
    memo[cls] = spec
    return spec


def _field_required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
