"""Every row of the binding table, type checking and conversion, and bad input — on both implementations."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import typing
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Literal, Optional, TypedDict, Union

import orjson
import pytest

from agnt5 import Context as Ctx
from agnt5._speedups._plan import read_signature
from agnt5.context import Context
from agnt5.errors import (
    InvalidArgumentError,
    OutputNotSerializableError,
)
from agnt5.workflows import WorkflowContext
from agnt5.workflows.local import LocalHost

pytestmark = pytest.mark.hot_path


def handler(impl: SimpleNamespace, fn: Callable[..., Any], name: str | None = None) -> Any:
    return impl.Handler(name or fn.__name__, fn, read_signature(fn))


def run(impl: SimpleNamespace, fn: Callable[..., Any], payload: bytes, ctx: Any = None) -> Any:
    return orjson.loads(handler(impl, fn).invoke(payload, ctx))


def error(impl: SimpleNamespace, fn: Callable[..., Any], payload: bytes) -> str:
    with pytest.raises(InvalidArgumentError) as info:
        handler(impl, fn).invoke(payload)
    assert info.value.code == "INVALID_ARGUMENT"
    return info.value.message


def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


def greet(name: str, greeting: str = "Hello") -> str:
    return f"{greeting}, {name}!"


def no_params() -> str:
    return "ok"


def takes_dict(data: dict) -> dict:  # type: ignore[type-arg]
    return {"got": data}


def takes_any(payload):  # type: ignore[no-untyped-def]
    return payload


# Row 1: absent / empty / null input.


@pytest.mark.parametrize("payload", [b"", b"null"])
def test_empty_input_calls_with_no_arguments(impl: SimpleNamespace, payload: bytes) -> None:
    assert run(impl, no_params, payload) == "ok"
    assert run(impl, lambda x=3: x, payload) == 3


@pytest.mark.parametrize("payload", [b"", b"null"])
def test_empty_input_with_required_parameter_is_invalid(
    impl: SimpleNamespace, payload: bytes
) -> None:
    assert error(impl, greet, payload) == "missing required parameter 'name'"


# Row 2: object whose keys are parameter names -> keyword arguments.


def test_object_keys_bind_by_name(impl: SimpleNamespace) -> None:
    assert run(impl, greet, b'{"name": "Ada"}') == "Hello, Ada!"
    assert run(impl, greet, b'{"greeting": "Hi", "name": "Ada"}') == "Hi, Ada!"


def test_keyword_only_parameters_bind_by_name(impl: SimpleNamespace) -> None:
    def fn(a: int, *, b: int = 2, c: int) -> list[int]:
        return [a, b, c]

    assert run(impl, fn, b'{"a": 1, "c": 3}') == [1, 2, 3]
    assert error(impl, fn, b'{"a": 1}') == "missing required parameter 'c'"


def test_var_keyword_collects_unknown_keys(impl: SimpleNamespace) -> None:
    def fn(a: int, **rest: int) -> dict[str, Any]:
        return {"a": a, "rest": rest}

    assert run(impl, fn, b'{"a": 1, "b": 2, "c": 3}') == {"a": 1, "rest": {"b": 2, "c": 3}}
    assert error(impl, fn, b'{"a": 1, "b": "x"}') == "b: expected int, got string"


def test_unknown_key_is_named(impl: SimpleNamespace) -> None:
    message = error(impl, greet, b'{"name": "Ada", "nmae": "x"}')
    assert message == "unknown parameter 'nmae' (parameters: name, greeting)"
    assert error(impl, no_params, b'{"x": 1}') == (
        "unknown parameter 'x' (the function takes no parameters)"
    )


def test_unknown_key_wins_over_missing_parameter(impl: SimpleNamespace) -> None:
    assert error(impl, greet, b'{"nmae": "Ada"}').startswith("unknown parameter 'nmae'")


# Row 3: one parameter that accepts an object, whose name is not a key -> the whole object.


def test_whole_object_binds_to_single_object_parameter(impl: SimpleNamespace) -> None:
    assert run(impl, takes_dict, b'{"message": "hi"}') == {"got": {"message": "hi"}}
    assert run(impl, takes_dict, b"{}") == {"got": {}}
    assert run(impl, takes_any, b'{"a": [1]}') == {"a": [1]}


def test_whole_object_when_name_is_a_key_binds_by_name(impl: SimpleNamespace) -> None:
    assert run(impl, takes_dict, b'{"data": {"x": 1}}') == {"got": {"x": 1}}
    assert error(impl, takes_dict, b'{"data": 1}') == "data: expected dict, got integer"


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


def test_whole_object_builds_a_dataclass(impl: SimpleNamespace) -> None:
    def fn(point: Point) -> Point:
        assert isinstance(point, Point)
        return point

    assert run(impl, fn, b'{"x": 3}') == {"x": 3, "y": 0}
    assert run(impl, fn, b'{"point": {"x": 1, "y": 2}}') == {"x": 1, "y": 2}
    assert error(impl, fn, b'{"x": "3"}') == "point.x: expected int, got string"


def test_context_parameter_is_not_counted(impl: SimpleNamespace) -> None:
    def fn(ctx: Context, data: dict) -> dict:  # type: ignore[type-arg]
        return {"id": ctx.invocation_id, "data": data}

    ctx = Context("inv-1", "fn")
    assert run(impl, fn, b'{"a": 1}', ctx) == {"id": "inv-1", "data": {"a": 1}}
    assert handler(impl, fn).takes_ctx is True


def test_a_workflow_context_parameter_is_not_counted(impl: SimpleNamespace) -> None:
    def fn(context: WorkflowContext, name: str) -> str:
        return f"{context.invocation_id}:{name}"

    def quoted(context: "agnt5.WorkflowContext", name: str) -> str:  # type: ignore[name-defined]  # noqa: F821, UP037
        return name

    assert handler(impl, fn).takes_ctx is True and handler(impl, quoted).takes_ctx is True
    ctx = WorkflowContext("i", "fn", host=LocalHost())
    assert run(impl, fn, b'"Ada"', ctx) == "i:Ada"


def test_ctx_by_name_without_annotation(impl: SimpleNamespace) -> None:
    def fn(ctx, name: str) -> str:  # type: ignore[no-untyped-def]
        return f"{ctx.invocation_id}:{name}"

    assert run(impl, fn, b'"Ada"', Context("i", "fn")) == "i:Ada"


def test_a_first_parameter_annotated_context_is_the_context_whatever_its_name(
    impl: SimpleNamespace,
) -> None:
    def typed(context: Ctx, name: str) -> str:
        return f"{context.invocation_id}:{name}"

    def quoted(c: "Context", name: str) -> str:  # noqa: UP037 - a string annotation on purpose
        return f"{c.invocation_id}:{name}"

    for fn in (typed, quoted):
        assert handler(impl, fn).takes_ctx is True
        assert run(impl, fn, b'{"name": "Ada"}', Context("i", "fn")) == "i:Ada"


# Row 4: array -> positional arguments.


def test_array_binds_positionally(impl: SimpleNamespace) -> None:
    assert run(impl, greet, b'["Ada"]') == "Hello, Ada!"
    assert run(impl, greet, b'["Ada", "Hi"]') == "Hi, Ada!"
    assert run(impl, no_params, b"[]") == "ok"


def test_array_errors(impl: SimpleNamespace) -> None:
    assert error(impl, greet, b"[]") == "missing required parameter 'name'"
    assert error(impl, greet, b'["a", "b", "c"]') == (
        "too many positional arguments: expected at most 2, got 3"
    )
    assert error(impl, greet, b"[1]") == "name: expected str, got integer"


@pytest.mark.parametrize(
    "annotation", [list[int], tuple[int, ...], tuple[int, int, int], set[int], Optional[list[int]]]
)
def test_array_binds_whole_to_a_single_list_or_tuple_parameter(
    impl: SimpleNamespace, annotation: Any
) -> None:
    def total(items):  # type: ignore[no-untyped-def]
        return [type(items).__name__, sum(items)]

    total.__annotations__ = {"items": annotation}
    expected = typing.get_origin(annotation) or list
    if expected is typing.Union:
        expected = list
    assert run(impl, total, b"[1, 2, 3]") == [expected.__name__, 6]
    assert run(impl, total, b'{"items": [1, 2, 3]}') == [expected.__name__, 6]
    assert error(impl, total, b'[1, "2", 3]') == "items[1]: expected int, got string"


def test_array_binds_positionally_to_an_unannotated_single_parameter(
    impl: SimpleNamespace,
) -> None:
    assert run(impl, takes_any, b"[1]") == 1
    assert run(impl, lambda first, *rest: [first, rest], b"[[1], 2]") == [[1], [2]]


def test_var_positional_takes_the_rest(impl: SimpleNamespace) -> None:
    def fn(first: int, *rest: int) -> list[int]:
        return [first, *rest]

    assert run(impl, fn, b"[1, 2, 3]") == [1, 2, 3]
    assert error(impl, fn, b'[1, 2, "x"]') == "rest[1]: expected int, got string"


# Row 5: scalar -> the single parameter.


def test_scalar_binds_to_single_parameter(impl: SimpleNamespace) -> None:
    assert run(impl, greet, b'"Ada"') == "Hello, Ada!"
    assert run(impl, lambda n: n * 2, b"21") == 42


def test_scalar_needs_exactly_one_parameter(impl: SimpleNamespace) -> None:
    def two(a: int, b: int) -> int:
        return a + b

    assert error(impl, two, b"1") == (
        "cannot bind a JSON integer to 2 parameters; "
        "send an object keyed by parameter name or an array of arguments"
    )
    assert error(impl, no_params, b'"x"') == "the function takes no parameters, got a JSON string"


# Type checking and conversion.


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Movie(TypedDict):
    title: str
    year: int


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


def identity(annotation: Any) -> Callable[..., Any]:
    def fn(value):  # type: ignore[no-untyped-def]
        return {"type": type(value).__name__, "value": value}

    fn.__annotations__ = {"value": annotation}
    return fn


CONVERSIONS: list[tuple[Any, Any, str, Any]] = [
    (str, "a", "str", "a"),
    (int, 3, "int", 3),
    (float, 3, "float", 3.0),
    (float, 2.5, "float", 2.5),
    (bool, True, "bool", True),
    (type(None), None, "NoneType", None),
    (list[int], [1, 2], "list", [1, 2]),
    (list, [1, "a"], "list", [1, "a"]),
    (dict[str, float], {"a": 1}, "dict", {"a": 1.0}),
    (tuple, [1, "a"], "tuple", [1, "a"]),
    (tuple[int, str], [1, "a"], "tuple", [1, "a"]),
    (tuple[int, ...], [1, 2, 3], "tuple", [1, 2, 3]),
    (set[int], [1, 1, 2], "set", [1, 2]),
    (frozenset[str], ["a"], "frozenset", ["a"]),
    (Optional[int], None, "NoneType", None),
    (Optional[int], 4, "int", 4),
    (Union[int, str], "x", "str", "x"),
    (int | None, 5, "int", 5),
    (Literal["a", "b"], "b", "str", "b"),
    (Color, "red", "Color", "red"),
    (Movie, {"title": "Up", "year": 2009}, "dict", {"title": "Up", "year": 2009}),
    (
        Item,
        {"id": 1, "price": 2, "name": "n"},
        "Item",
        {"id": 1, "price": 2.0, "name": "n", "note": None},
    ),
    (Any, {"x": [1]}, "dict", {"x": [1]}),
    (datetime.date, "2024-05-01", "date", "2024-05-01"),
    (
        uuid.UUID,
        "12345678-1234-5678-1234-567812345678",
        "UUID",
        "12345678-1234-5678-1234-567812345678",
    ),
    (decimal.Decimal, "1.50", "Decimal", "1.50"),
]


@pytest.mark.parametrize(
    ("annotation", "value", "type_name", "encoded"),
    CONVERSIONS,
    ids=[str(row[0]) for row in CONVERSIONS],
)
def test_annotations_convert(
    impl: SimpleNamespace, annotation: Any, value: Any, type_name: str, encoded: Any
) -> None:
    result = run(impl, identity(annotation), orjson.dumps({"value": value}))
    assert result == {"type": type_name, "value": encoded}


REJECTIONS: list[tuple[Any, Any, str]] = [
    (str, 1, "value: expected str, got integer"),
    (int, True, "value: expected int, got boolean"),
    (int, 1.5, "value: expected int, got number"),
    (float, "1", "value: expected float, got string"),
    (float, False, "value: expected float, got boolean"),
    (bool, 1, "value: expected bool, got integer"),
    (type(None), 0, "value: expected None, got integer"),
    (list[int], [1, "2"], "value[1]: expected int, got string"),
    (list[int], {"a": 1}, "value: expected list[int], got object"),
    (dict[str, int], {"a b": "x"}, 'value["a b"]: expected int, got string'),
    (tuple[int, str], [1], "value: expected tuple[int, str] with 2 items, got 1"),
    (set[Any], [[1]], "value: expected set[Any], got array with unhashable items"),
    (Union[int, str], 1.5, "value: expected int | str, got number"),
    (Literal["a", "b"], "c", 'value: expected one of "a", "b", got "c"'),
    (Color, "blue", 'value: expected one of "red", "green", got "blue"'),
    (Movie, {"title": "Up"}, "value: missing required field 'year'"),
    (Movie, {"title": "Up", "year": 1, "x": 0}, "value: unknown field 'x'"),
    (datetime.date, "yesterday", 'value: invalid date: "yesterday"'),
    (uuid.UUID, 5, "value: expected UUID, got integer"),
]


@pytest.mark.parametrize(
    ("annotation", "value", "message"), REJECTIONS, ids=[r[2] for r in REJECTIONS]
)
def test_annotations_reject_with_json_path(
    impl: SimpleNamespace, annotation: Any, value: Any, message: str
) -> None:
    assert error(impl, identity(annotation), orjson.dumps({"value": value})) == message


def test_nested_error_names_the_json_path(impl: SimpleNamespace) -> None:
    def total(items: list[Item]) -> float:
        return sum(item.price for item in items)

    good = [{"id": i, "price": i, "name": str(i)} for i in range(3)]
    assert run(impl, total, orjson.dumps({"items": good})) == 3.0
    bad = [*good[:2], {"id": 2, "price": "free", "name": "x"}]
    assert error(impl, total, orjson.dumps({"items": bad})) == (
        "items[2].price: expected float, got string"
    )


def test_recursive_dataclass(impl: SimpleNamespace) -> None:
    def depth(tree: Tree) -> int:
        return 1 + max((depth.__wrapped__(child) for child in tree.children), default=0)

    def measure(tree: Tree) -> int:
        return 1 + max((measure(child) for child in tree.children), default=0)

    depth.__wrapped__ = measure  # type: ignore[attr-defined]
    nested: dict[str, Any] = {"value": 0}
    for level in range(50):
        nested = {"value": level, "children": [nested]}
    assert run(impl, depth, orjson.dumps(nested)) == 51


def test_recursive_dataclass_too_deep_is_refused(impl: SimpleNamespace) -> None:
    def fn(tree: Tree) -> int:
        return tree.value

    levels = 450  # under orjson's decode depth limit (1024), past the conversion limit (200)
    payload = b'{"value": 0, "children": [' * levels + b'{"value": 0}' + b"]}" * levels
    message = error(impl, fn, payload)
    assert message.endswith(": input nested too deeply")
    assert message.startswith("tree.children[0].children[0]")


@dataclasses.dataclass
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


def test_dataclass_post_init_error_is_invalid_argument(impl: SimpleNamespace) -> None:
    def fn(p: Positive) -> int:
        return p.n

    assert error(impl, fn, b'{"n": -1}') == "p: invalid Positive: n must be positive"


# Bad input.


def test_invalid_json(impl: SimpleNamespace) -> None:
    assert error(impl, greet, b'{"name": ').startswith("invalid JSON input: ")


def test_non_utf8_bytes(impl: SimpleNamespace) -> None:
    message = error(impl, greet, b'"\xff\xfe"')
    assert message.startswith("invalid JSON input: ") and "UTF-8" in message


def test_json_nested_100000_deep_is_a_clear_error(impl: SimpleNamespace) -> None:
    message = error(impl, takes_any, b"[" * 100_000 + b"]" * 100_000)
    assert message.startswith("invalid JSON input: ") and "depth" in message


def test_ten_megabyte_payload(impl: SimpleNamespace) -> None:
    text = "x" * (10 * 1024 * 1024)
    assert run(impl, lambda name: len(name), orjson.dumps({"name": text})) == len(text)


# Results and failures.


def test_results_encode_rich_types(impl: SimpleNamespace) -> None:
    def fn() -> Any:
        return {
            "point": Point(1, 2),
            "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
            "id": uuid.UUID(int=1),
            "color": Color.RED,
            "pair": (1, 2),
            "tags": {"a"},
            "price": decimal.Decimal("1.10"),
            1: "int key",
        }

    assert run(impl, fn, b"") == {
        "point": {"x": 1, "y": 2},
        "when": "2024-01-02T03:04:05",
        "id": "00000000-0000-0000-0000-000000000001",
        "color": "red",
        "pair": [1, 2],
        "tags": ["a"],
        "price": "1.10",
        "1": "int key",
    }


def test_bytes_travel_as_base64_text(impl: SimpleNamespace) -> None:
    def reverse(data: bytes) -> bytes:
        return data[::-1]

    assert run(impl, reverse, b'{"data": "AQID"}') == "AwIB"  # [1, 2, 3] -> [3, 2, 1]
    assert run(impl, reverse, b'""') == ""
    assert run(impl, lambda: bytearray(b"hi"), b"") == "aGk="
    assert error(impl, reverse, b'"not base64!"') == 'data: invalid bytes (base64): "not base64!"'
    assert error(impl, reverse, b"[1]") == "data: expected bytes (base64), got integer"


def test_integers_beyond_64_bits_round_trip(impl: SimpleNamespace) -> None:
    def double(n: int) -> int:
        return n * 2

    big = 2**100 + 1
    assert run(impl, double, orjson.dumps(2**63)) == 2**64
    assert handler(impl, double).invoke(f'{{"n": {big}}}'.encode()) == str(2 * big).encode()
    assert handler(impl, takes_any).invoke(f"[-{big}]".encode()) == f"-{big}".encode()
    echoed = handler(impl, takes_any).invoke(f'{{"payload": {{"a": [{big}, "x"]}}}}'.encode())
    assert echoed == f'{{"a":[{big},"x"]}}'.encode()


def test_an_integral_float_is_accepted_for_an_int(impl: SimpleNamespace) -> None:
    def double(n: int) -> int:
        return n * 2

    assert handler(impl, double).invoke(b"1.0") == b"2"
    assert handler(impl, double).invoke(b"1e20") == str(2 * 10**20).encode()
    assert error(impl, double, b"1.5") == "n: expected int, got number"
    assert error(impl, double, b"true") == "n: expected int, got boolean"


def test_unserializable_result(impl: SimpleNamespace) -> None:
    with pytest.raises(OutputNotSerializableError) as info:
        handler(impl, lambda: object(), name="maker").invoke(b"")
    assert info.value.message == (
        "Function maker returned a value that cannot be encoded as JSON: "
        "Type is not JSON serializable: object"
    )


def test_handler_exceptions_pass_through_unchanged(impl: SimpleNamespace) -> None:
    def failing_function(data: dict) -> dict:  # type: ignore[type-arg]
        raise ValueError("Something went wrong")

    with pytest.raises(ValueError, match="^Something went wrong$"):  # the pipeline maps it
        handler(impl, failing_function).invoke(b"{}")


def test_agnt5_errors_raised_by_handlers_pass_through(impl: SimpleNamespace) -> None:
    def picky(x: int) -> int:
        raise InvalidArgumentError("x must be even")

    with pytest.raises(InvalidArgumentError, match="^x must be even$"):
        handler(impl, picky).invoke(b"1")


def test_async_handler_parts(impl: SimpleNamespace) -> None:
    async def fn(a: int, *, b: int = 1) -> int:
        return a + b

    h = handler(impl, fn)
    assert h.is_async is True
    args, kwargs = h.bind(b'{"a": 1, "b": 2}')
    assert args == (1,) and kwargs == {"b": 2}
    coroutine = h.call(args, kwargs)
    with pytest.raises(StopIteration) as done:
        coroutine.send(None)
    assert h.encode(done.value.value) == b"3"
