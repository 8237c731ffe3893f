"""The compiled hot path and its pure-Python twin agree: same results, same errors, same messages."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import inspect
import json
import types
import uuid
from collections.abc import Callable
from typing import Any, Literal, Optional, TypedDict, Union

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agnt5._speedups import _dispatch_py as twin
from agnt5._speedups._plan import read_signature
from agnt5.errors import InvalidArgumentError

pytestmark = pytest.mark.hot_path

try:
    from agnt5._speedups import _dispatch as compiled
except ImportError:  # these tests are c_extension: deselected where the twins are pure
    compiled = None

pytestmark = pytest.mark.c_extension  # compares the compiled twin with the pure one

IMPLEMENTATIONS = (twin, compiled)
SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CTX = "ctx-sentinel"


# Annotated types the random signatures draw from.


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    x: int
    y: float = 0.0


@dataclasses.dataclass
class Item:
    id: int
    price: float
    name: str
    note: Optional[str] = None


@dataclasses.dataclass
class Tree:
    value: int
    children: list[Tree] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Linked:
    value: int
    next: Optional[Linked] = None


@dataclasses.dataclass
class Checked:
    amount: int

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError("amount must not be negative")


@dataclasses.dataclass(kw_only=True)
class KeywordOnly:
    a: int
    b: str = "b"


@dataclasses.dataclass(frozen=True)
class Frozen:
    key: str


@dataclasses.dataclass(init=False)
class Reordered:
    first: int
    second: str

    def __init__(self, second: str, first: int) -> None:
        self.first, self.second = first, second


class Movie(TypedDict):
    title: str
    year: int


class PartialMovie(TypedDict, total=False):
    title: str
    rating: float


EMPTY = inspect.Parameter.empty
LEAVES: list[Any] = [
    str, int, float, bool, None, Any, bytes, datetime.datetime, datetime.date, uuid.UUID,
    decimal.Decimal, Color, Level, Literal["a", 1, True, None], Point, Item, Tree, Linked,
    Checked, KeywordOnly, Frozen, Reordered, Movie, PartialMovie,
]  # fmt: skip

annotations = st.recursive(
    st.sampled_from(LEAVES),
    lambda inner: st.one_of(
        inner.map(lambda t: list[t]),
        inner.map(lambda t: dict[str, t]),
        inner.map(lambda t: tuple[t, ...]),
        inner.map(lambda t: set[t]),
        inner.map(lambda t: frozenset[t]),
        inner.map(lambda t: Optional[t]),
        st.tuples(inner, inner).map(lambda p: tuple[p[0], p[1]]),
        st.tuples(inner, inner).map(lambda p: Union[p[0], p[1]]),
    ),
    max_leaves=4,
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.integers()  # beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.text("0123456789", min_size=18, max_size=24)  # runs of digits inside strings
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["a", "b", "x", "id", "value", ""]) | st.text(max_size=4),
                      inner, max_size=4),
    max_leaves=10,
)  # fmt: skip


_SCALAR_VALUES: dict[Any, st.SearchStrategy[Any]] = {
    str: st.text(max_size=6),
    int: st.integers(-(10**6), 10**6) | st.integers() | st.integers().map(float),
    float: st.floats(allow_nan=False, allow_infinity=False) | st.integers(-100, 100),
    bool: st.booleans(),
    None: st.none(),
    Any: json_values,
    bytes: st.binary(max_size=8).map(lambda b: base64.b64encode(b).decode()) | st.just("*a="),
    datetime.datetime: st.datetimes().map(datetime.datetime.isoformat) | st.just("not a date"),
    datetime.date: st.dates().map(datetime.date.isoformat),
    uuid.UUID: st.uuids().map(str) | st.just("not-a-uuid"),
    decimal.Decimal: st.decimals(allow_nan=False, allow_infinity=False).map(str)
    | st.integers()
    | st.just("1e999999999999"),
}


def fitting(annotation: Any) -> st.SearchStrategy[Any]:
    """JSON values shaped like `annotation`, with wrong values mixed in at every level."""
    return st.one_of(_shaped(annotation), _shaped(annotation), json_values)


def _shaped(annotation: Any) -> st.SearchStrategy[Any]:
    if annotation in _SCALAR_VALUES:
        return _SCALAR_VALUES[annotation]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from([member.value for member in annotation])
    if dataclasses.is_dataclass(annotation) or hasattr(annotation, "__required_keys__"):
        return st.deferred(lambda: _record(annotation))
    origin, args = getattr(annotation, "__origin__", None), getattr(annotation, "__args__", ())
    if origin is Literal:
        return st.sampled_from(args)
    if origin in (list, set, frozenset) or (origin is tuple and args[-1] is Ellipsis):
        return st.lists(fitting(args[0]), max_size=3)
    if origin is tuple:
        return st.tuples(*(fitting(arg) for arg in args)).map(list)
    if origin is dict:
        return st.dictionaries(st.text(max_size=3), fitting(args[1]), max_size=3)
    return st.one_of(*(fitting(arg) for arg in args))  # Optional / Union


def _record(cls: Any) -> st.SearchStrategy[Any]:
    hints = {name: hint for name, hint in cls.__annotations__.items()}
    hints = {name: eval(hint, globals()) if isinstance(hint, str) else hint
             for name, hint in hints.items()}  # fmt: skip
    if dataclasses.is_dataclass(cls):
        required = {f.name for f in dataclasses.fields(cls) if _field_required(f)}
    else:
        required = set(cls.__required_keys__)
    extra = st.fixed_dictionaries({}, optional={"unexpected": json_values})
    return st.tuples(
        st.fixed_dictionaries(
            {name: fitting(hint) for name, hint in hints.items() if name in required},
            optional={name: fitting(hint) for name, hint in hints.items() if name not in required},
        ),
        st.one_of(st.just({}), st.just({}), extra),
    ).map(lambda parts: {**parts[0], **parts[1]})


def _field_required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


# Random handler signatures.

POK, KW = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY
POS = inspect.Parameter.POSITIONAL_ONLY


@dataclasses.dataclass
class Shape:
    """A generated handler signature: its parameters and annotations."""

    parameters: list[inspect.Parameter]
    annotations: dict[str, Any]
    takes_ctx: bool

    def function(self) -> Callable[..., Any]:
        def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
            return {"args": list(args), "kwargs": kwargs}

        echo.__signature__ = inspect.Signature(self.parameters)  # type: ignore[attr-defined]
        echo.__annotations__ = dict(self.annotations)
        return echo


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    names = draw(st.lists(st.sampled_from(["a", "b", "name", "items", "x"]), max_size=3,
                          unique=True))  # fmt: skip
    kinds = sorted(draw(st.sampled_from([POS, POK, POK, KW])) for _ in names)
    ctx_kind = POS if kinds and kinds[0] == POS else POK
    parameters = [inspect.Parameter("ctx", ctx_kind)] if draw(st.booleans()) else []
    hints: dict[str, Any] = {}
    defaulted = False
    for name, kind in zip(names, kinds, strict=True):
        defaulted = draw(st.booleans()) or (defaulted and kind != KW)
        default = draw(st.sampled_from([None, 0, "d", 1.5])) if defaulted else EMPTY
        parameters.append(inspect.Parameter(name, kind, default=default))
        if draw(st.integers(0, 5)):
            hints[name] = draw(annotations)
    if draw(st.booleans()):
        parameters.insert(
            next(i for i, p in enumerate(parameters + [None]) if p is None or p.kind == KW),
            inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
        )
        hints["args"] = draw(annotations)
    if draw(st.booleans()):
        parameters.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
        hints["kwargs"] = draw(annotations)
    return Shape(parameters, hints, takes_ctx=bool(parameters) and parameters[0].name == "ctx")


def _input(shape: Shape) -> st.SearchStrategy[Any]:
    """Inputs aimed at the shape (keyed objects, arrays, lone scalars) and arbitrary JSON."""
    named = [p for p in shape.parameters if p.name != "ctx" and p.kind in (POS, POK, KW)]
    hint = shape.annotations.get
    keyed = st.fixed_dictionaries(
        {}, optional={p.name: fitting(hint(p.name, Any)) for p in named} | {"zz": json_values}
    )
    array = st.tuples(*(fitting(hint(p.name, Any)) for p in named if p.kind != KW)).map(list)
    lone = fitting(hint(named[0].name, Any)) if named else json_values
    return st.one_of(keyed, array, lone, json_values)


# Outcomes: equal values compare with their types, so 1, 1.0 and True differ.


def canon(value: Any) -> Any:
    kind = type(value)
    if kind in (list, tuple):
        return kind.__name__, [canon(item) for item in value]
    if kind is dict:
        return "dict", [(canon(key), canon(item)) for key, item in value.items()]
    if kind in (set, frozenset):
        return kind.__name__, sorted(repr(canon(item)) for item in value)
    if dataclasses.is_dataclass(value):
        return kind.__qualname__, [(f.name, canon(getattr(value, f.name)))
                                   for f in dataclasses.fields(value)]  # fmt: skip
    return kind.__qualname__, repr(value)


def failure(exc: BaseException) -> tuple[Any, ...]:
    return "error", type(exc), str(exc), getattr(exc, "code", None)


def outcome(run: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return "ok", canon(run())
    except Exception as exc:
        return failure(exc)


def agree(run: Callable[[types.ModuleType], Any]) -> tuple[Any, ...]:
    """Run `run` on both implementations; they must give the same outcome, which is returned."""
    expected, actual = (outcome(lambda impl=impl: run(impl)) for impl in IMPLEMENTATIONS)
    assert actual == expected
    return expected


def handler(impl: types.ModuleType, fn: Callable[..., Any], name: str = "f") -> Any:
    return impl.Handler(name, fn, read_signature(fn))


def dumps(value: Any) -> bytes:
    """JSON for a test input, integers beyond 64 bits included (orjson refuses those)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# Properties.


@SETTINGS
@given(st.data())
def test_binding_agrees(data: st.DataObject) -> None:
    shape = data.draw(shapes())
    value = data.draw(_input(shape))
    fn = shape.function()
    agree(lambda impl: handler(impl, fn).bind(dumps(value)))
    ctx = CTX if shape.takes_ctx else None
    agree(lambda impl: handler(impl, fn).invoke(dumps(value), ctx))


@SETTINGS
@given(st.sampled_from(LEAVES) | annotations, st.data())
def test_single_parameter_conversion_agrees(annotation: Any, data: st.DataObject) -> None:
    value = data.draw(fitting(annotation))

    def one(value):  # type: ignore[no-untyped-def]
        return value

    one.__annotations__ = {"value": annotation}
    agree(lambda impl: handler(impl, one).bind(dumps({"value": value})))
    agree(lambda impl: handler(impl, one).invoke(dumps([value])))


@SETTINGS
@given(st.binary(max_size=40) | json_values.map(dumps))
def test_decoding_agrees(payload: bytes) -> None:
    agree(lambda impl: impl.decode_json(payload))
    agree(lambda impl: handler(impl, _echo).invoke(payload))


@SETTINGS
@given(json_values)
def test_integers_are_exact_both_ways(value: Any) -> None:
    payload = dumps(value)
    for impl in IMPLEMENTATIONS:
        assert canon(impl.decode_json(payload)) == canon(json.loads(payload))
        assert canon(json.loads(impl.encode_json(value))) == canon(value)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview, str])
@pytest.mark.parametrize(
    "text", ['"%s"', "[%s]", "%s", '{"a": 1, "b": [%s, "x"]}', "[1,2,3,4,5,6,7,8,9,10,%s]"]
)
@pytest.mark.parametrize("digits", ["1" * 19, "9" * 20, "1234567890" * 3, str(2**64)])
def test_runs_of_digits_are_found_anywhere(kind: Any, text: str, digits: str) -> None:
    payload = (text % digits).encode()
    given = payload.decode() if kind is str else kind(payload)
    results = [canon(impl.decode_json(given)) for impl in IMPLEMENTATIONS]
    assert results[0] == results[1] == canon(json.loads(payload))


@SETTINGS
@given(json_values | st.dictionaries(st.integers() | st.text(max_size=2), json_values, max_size=3))
def test_encoding_agrees(value: Any) -> None:
    agree(lambda impl: impl.encode_json(value))
    agree(lambda impl: impl.encode_json({"wrapped": value, 1: {decimal.Decimal(1), 2}}))


def _echo(value: Any = None) -> Any:
    return value


# Explicit cases.

NUMERIC = [int, float, bool, None, Literal["a", 1, True, None], Literal[1.0, False], Level,
           Union[int, float], Union[float, int], Union[bool, int], Optional[float], decimal.Decimal,
           list[float], tuple[int, ...], set[float], dict[str, bool]]  # fmt: skip


@pytest.mark.parametrize("annotation", NUMERIC, ids=repr)
@pytest.mark.parametrize(
    "value", [1, 1.0, True, False, 0, 0.0, -1, 2**64 - 1, None, "1", [1, True]]
)
def test_numbers_keep_their_json_type(annotation: Any, value: Any) -> None:
    def one(value):  # type: ignore[no-untyped-def]
        return value

    one.__annotations__ = {"value": annotation}
    agree(lambda impl: handler(impl, one).bind(orjson.dumps([value])))
    agree(lambda impl: handler(impl, one).bind(orjson.dumps([[value]])))


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'"\xff\xfe"',
        b'{"value": "caf\xe9"}',
        b"{",
        b"nul",
        b"\x00",
        b"",
        b"null",
        b'"\xed\xa0\x80"',
    ],
    ids=[
        "deep-array",
        "deep-object",
        "non-utf8",
        "latin1",
        "truncated",
        "bad-literal",
        "nul",
        "empty",
        "null",
        "surrogate",
    ],
)
def test_bad_and_edge_input(payload: bytes) -> None:
    agree(lambda impl: impl.decode_json(payload))
    agree(lambda impl: handler(impl, _echo).invoke(payload))


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"value": depth}
    for level in range(depth):
        node = {"value": level, "next": node}
    return node


@pytest.mark.parametrize("depth", [150, 199, 200, 250])
def test_recursive_dataclass_depth_limit(depth: int) -> None:
    def chain(head: Linked) -> int:
        count = 0
        while head.next is not None:
            count, head = count + 1, head.next
        return count

    outcome_ = agree(
        lambda impl: handler(impl, chain).invoke(orjson.dumps({"head": _nested(depth)}))
    )
    if depth >= 200:
        assert outcome_[2].endswith(".next: input nested too deeply")
    else:
        assert outcome_ == ("ok", canon(str(depth).encode()))


def test_recursive_tree_past_the_depth_limit() -> None:
    tree: dict[str, Any] = {"value": 0}
    for level in range(120):
        tree = {"value": level, "children": [{"value": -1}, tree]}

    def size(root: Tree) -> int:
        return 1 + sum(size(child) for child in root.children)

    result = agree(lambda impl: handler(impl, size).invoke(orjson.dumps({"root": tree})))
    assert result[1] is InvalidArgumentError
    assert "input nested too deeply" in result[2]
    assert result[2].startswith("root.children[1].children[1]")


def test_ten_megabyte_payloads() -> None:
    def shout(name: str) -> int:
        return len(name)

    def total(items: list[Item]) -> float:
        return sum(item.price for item in items)

    text = orjson.dumps({"name": "x" * 10_000_000})
    items = [{"id": i, "price": i / 4, "name": f"n{i}", "note": None} for i in range(200_000)]
    listed = orjson.dumps({"items": items})
    assert len(text) > 10_000_000 and len(listed) > 10_000_000
    for fn, payload in ((shout, text), (total, listed)):
        results = [handler(impl, fn).invoke(payload) for impl in IMPLEMENTATIONS]
        assert results[0] == results[1]


def test_call_encode_and_errors_agree() -> None:
    class Opaque:
        pass

    def broken(kind: str) -> Any:
        if kind == "raise":
            raise ValueError("Something went wrong")
        if kind == "empty":
            raise RuntimeError
        return {"opaque": Opaque} if kind == "opaque" else {(1, 2): "tuple key"}

    async def later(name: str) -> str:
        return name

    for kind in ("raise", "empty", "opaque", "tuple-key"):
        agree(lambda impl, k=kind: handler(impl, broken).invoke(orjson.dumps(k)))
    agree(lambda impl: handler(impl, later).invoke(b'"x"'))
    agree(lambda impl: handler(impl, later).bind(b'{"name": "x"}'))
    agree(lambda impl: handler(impl, broken).encode({1: {2.5: None}}))
    agree(lambda impl: handler(impl, broken).call(("x",), None))
    agree(lambda impl: handler(impl, Shape([inspect.Parameter("ctx", POK)], {}, True).function())
          .call((1,), {"k": 2}, CTX))  # fmt: skip


def test_handler_attributes_agree() -> None:
    async def later(ctx: Any, a: int, *, b: str = "b") -> None:
        return None

    for fn in (later, _echo):
        handlers = [handler(impl, fn, "name") for impl in IMPLEMENTATIONS]
        for attribute in ("name", "fn", "takes_ctx", "is_async"):
            values = [getattr(h, attribute) for h in handlers]
            assert values[0] == values[1] and type(values[0]) is type(values[1])
        assert repr(handlers[0]) == repr(handlers[1]) == "<Handler name>"


def test_public_names_and_signatures_agree() -> None:
    assert [name for name in twin.__all__ if name != "HandlerAPI"] == compiled.__all__
    for name in ("decode_json", "encode_json"):
        assert _parameters(getattr(twin, name)) == _parameters(getattr(compiled, name))
    # An extension type's constructor signature is only in its docstring (`embedsignature`).
    names = [name for name, _, _ in _parameters(twin.Handler)]
    assert compiled.Handler.__doc__.startswith(f"Handler({', '.join(names)})\n")
    members = vars(twin.HandlerAPI).items()
    methods = [name for name, item in members if inspect.isfunction(item) and name[0] != "_"]
    assert methods == ["bind", "call", "encode", "invoke"]
    for name in methods:
        assert _parameters(getattr(twin.Handler, name)) == _parameters(
            getattr(compiled.Handler, name)
        ), name


def _parameters(fn: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
