"""JSON Schema for inputs and outputs, from type hints."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from typing import Any, Literal, Optional, TypedDict

import pytest

from agnt5._speedups._plan import read_signature, spec_for
from agnt5.schema import DIALECT, input_schema, output_schema, schema_for


class Size(enum.Enum):
    S = "s"
    L = "l"


class Address(TypedDict):
    city: str


@dataclasses.dataclass
class Node:
    name: str
    children: list[Node] = dataclasses.field(default_factory=list)


def schema(annotation: Any) -> dict[str, Any]:
    result = schema_for(spec_for(annotation))
    assert result.pop("$schema") == DIALECT
    return result


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (Any, {}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (set[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (int | str, {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        (Literal["a"], {"const": "a"}),
        (Literal["a", "b"], {"enum": ["a", "b"]}),
        (datetime.datetime, {"type": "string", "format": "date-time"}),
        (uuid.UUID, {"type": "string", "format": "uuid"}),
        (bytes, {"type": "string", "contentEncoding": "base64"}),
    ],
)
def test_simple_annotations(annotation: Any, expected: dict[str, Any]) -> None:
    assert schema(annotation) == expected


def test_named_types_go_to_defs() -> None:
    assert schema(Size) == {
        "$ref": "#/$defs/Size",
        "$defs": {"Size": {"title": "Size", "enum": ["s", "l"]}},
    }
    assert schema(Address)["$defs"]["Address"] == {
        "title": "Address",
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }


def test_recursive_dataclass_refers_to_itself() -> None:
    result = schema(Node)
    assert result["$ref"] == "#/$defs/Node"
    node = result["$defs"]["Node"]
    assert node["properties"]["children"] == {"type": "array", "items": {"$ref": "#/$defs/Node"}}
    assert node["required"] == ["name"]


def test_input_and_output_schema_of_a_signature() -> None:
    def fn(ctx: Any, city: str, days: int = 3, *, unit: Literal["C", "F"] = "C") -> list[float]:
        return []

    signature = read_signature(fn)
    assert input_schema(signature) == {
        "$schema": DIALECT,
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "unit": {"enum": ["C", "F"]},
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    assert output_schema(signature) == {
        "$schema": DIALECT,
        "type": "array",
        "items": {"type": "number"},
    }


def test_var_keyword_allows_additional_properties() -> None:
    def fn(**extra: int) -> None:
        return None

    assert input_schema(read_signature(fn))["additionalProperties"] == {"type": "integer"}


def test_unsupported_annotation_degrades_to_empty_schema(caplog: pytest.LogCaptureFixture) -> None:
    class Opaque:
        def __init__(self, handle: object) -> None:
            self.handle = handle

    with caplog.at_level("DEBUG", logger="agnt5.schema"):
        assert schema(Opaque) == {}
    assert "not supported" in caplog.text


def test_pydantic_models_when_installed() -> None:
    pydantic = pytest.importorskip("pydantic")

    class User(pydantic.BaseModel):
        name: str
        age: int = 0

    result = schema(User)
    assert result["$ref"] == "#/$defs/User"
    assert result["$defs"]["User"]["properties"]["name"] == {"title": "Name", "type": "string"}
