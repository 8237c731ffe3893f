"""What both hot-path implementations share: error texts (so messages are identical) and the
JSON fallback encoder. Only error paths and unusual result types run this code.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import json
from typing import Any

import orjson

from agnt5.errors import InvalidArgumentError, OutputNotSerializableError

__all__ = [
    "MAX_DEPTH",
    "Mismatch",
    "LONG_DIGITS",
    "async_invoke",
    "decode_base64",
    "dumps_long_integers",
    "expected",
    "invalid_input",
    "invalid_value",
    "json_default",
    "json_repr",
    "json_type",
    "loads_long_integers",
    "missing_field",
    "missing_parameter",
    "not_serializable",
    "one_of",
    "pydantic_mismatch",
    "scalar_needs_one_parameter",
    "too_deep",
    "too_many_arguments",
    "unhashable",
    "unknown_field",
    "unknown_parameter",
    "wrong_length",
]

MAX_DEPTH = 200
"""How deep conversion follows a (recursive) annotation before it refuses the input."""
LONG_DIGITS = 20
"""Digits in a row from which a JSON number may be an integer beyond 64 bits: orjson reads
those as floats, so input with such a run is read again by `loads_long_integers`."""
_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1

_JSON_TYPES = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


class Mismatch(Exception):
    """A value that does not fit its annotation; `segments` is the path to it, leaf first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str | int] = []

    def at(self, root: str) -> InvalidArgumentError:
        """The public error, naming the JSON path under the parameter `root`."""
        path = root + "".join(_segment(part) for part in reversed(self.segments))
        return InvalidArgumentError(f"{path}: {self.message}" if path else self.message)


def _segment(part: str | int) -> str:
    if type(part) is int:
        return f"[{part}]"
    if part.isidentifier():
        return f".{part}"
    return f"[{json_repr(part)}]"


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def json_repr(value: Any, limit: int = 60) -> str:
    """A short JSON rendering of a value for messages."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expected(label: str, value: Any) -> Mismatch:
    return Mismatch(f"expected {label}, got {json_type(value)}")


def one_of(values: tuple[Any, ...], value: Any) -> Mismatch:
    choices = ", ".join(json_repr(choice) for choice in values)
    return Mismatch(f"expected one of {choices}, got {json_repr(value)}")


def too_deep() -> Mismatch:
    return Mismatch("input nested too deeply")


def wrong_length(label: str, size: int, count: int) -> Mismatch:
    return Mismatch(f"expected {label} with {size} items, got {count}")


def unhashable(label: str) -> Mismatch:
    return Mismatch(f"expected {label}, got array with unhashable items")


def missing_field(name: str) -> Mismatch:
    return Mismatch(f"missing required field '{name}'")


def unknown_field(key: Any) -> Mismatch:
    return Mismatch(f"unknown field '{key}'")


def invalid_value(label: str, detail: Any) -> Mismatch:
    return Mismatch(f"invalid {label}: {detail}")


def invalid_input(exc: Exception) -> InvalidArgumentError:
    return InvalidArgumentError(f"invalid JSON input: {exc}")


def missing_parameter(name: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"missing required parameter '{name}'")


def unknown_parameter(key: Any, names: tuple[str, ...]) -> InvalidArgumentError:
    accepted = f"parameters: {', '.join(names)}" if names else "the function takes no parameters"
    return InvalidArgumentError(f"unknown parameter '{key}' ({accepted})")


def too_many_arguments(limit: int, count: int) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"too many positional arguments: expected at most {limit}, got {count}"
    )


def scalar_needs_one_parameter(value: Any, count: int) -> InvalidArgumentError:
    if count == 0:
        return InvalidArgumentError(
            f"the function takes no parameters, got a JSON {json_type(value)}"
        )
    return InvalidArgumentError(
        f"cannot bind a JSON {json_type(value)} to {count} parameters; "
        "send an object keyed by parameter name or an array of arguments"
    )


def not_serializable(function_name: str, exc: Exception) -> OutputNotSerializableError:
    return OutputNotSerializableError(
        f"Function {function_name} returned a value that cannot be encoded as JSON: {exc}",
        error_type=type(exc).__name__,
    )


def async_invoke(function_name: str) -> TypeError:
    return TypeError(
        f"Function {function_name} is async: bind, await call() and encode instead of invoke()"
    )


def json_default(value: Any) -> Any:
    """orjson's fallback: sets as lists, Decimal as text, bytes as base64 text, pydantic models
    by `model_dump`."""
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def pydantic_mismatch(exc: ValueError) -> Mismatch:
    """A pydantic ValidationError as a `Mismatch` at the first error's location."""
    errors = getattr(exc, "errors", None)
    details = errors() if callable(errors) else None
    if not details:
        return Mismatch(str(exc))
    first = details[0]
    error = Mismatch(str(first.get("msg", exc)))
    error.segments.extend(reversed(list(first.get("loc", ()))))
    return error


def decode_base64(value: Any) -> bytes:
    """A ``bytes`` parameter from its JSON form, a base64 string (`TypeError` for other types,
    `ValueError` for a string that is not base64)."""
    if type(value) is not str:
        raise TypeError("not a string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_long_integers(payload: Any) -> Any:
    """JSON that orjson accepted, read again so integers beyond 64 bits stay exact integers."""
    text = payload if type(payload) is str else bytes(payload).decode("utf-8")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:  # e.g. an integer of more digits than int() converts
        raise invalid_input(exc) from None


def dumps_long_integers(value: Any, option: int) -> bytes:
    """``value`` as JSON, with integers beyond 64 bits (which orjson refuses) written exactly.

    Called after orjson refused ``value``; raises orjson's `TypeError` when something else
    than an integer is what it cannot encode.
    """
    return orjson.dumps(_exact_integers(value, 0), json_default, option)


def _exact_integers(value: Any, depth: int) -> Any:
    """``value`` with each integer out of orjson's range as a `orjson.Fragment` of its digits,
    in dicts, lists and tuples (up to orjson's own nesting limit)."""
    kind = type(value)
    if kind is int:
        if _INT64_MIN <= value <= _UINT64_MAX:
            return value
        try:
            return orjson.Fragment(str(value).encode())
        except ValueError:  # more digits than str() writes: orjson's TypeError says it
            return value
    if depth > 255:  # orjson refuses deeper values itself
        return value
    if kind is dict:
        return {key: _exact_integers(item, depth + 1) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_exact_integers(item, depth + 1) for item in value]
    return value
