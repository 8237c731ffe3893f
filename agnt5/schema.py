"""JSON Schema (draft 2020-12) for handler inputs and outputs, from the same plans the hot path binds by."""

from __future__ import annotations

import logging
from typing import Any

from agnt5._speedups import _plan as plan
from agnt5._speedups._plan import Signature, Spec

__all__ = ["DIALECT", "input_schema", "output_schema", "schema_for"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"

_log = logging.getLogger("agnt5.schema")


class _Defs(dict[str, Any]):
    """The `$defs` of one document, remembering which class owns each name."""

    def __init__(self) -> None:
        super().__init__()
        self.owners: dict[str, type] = {}


_SIMPLE: dict[int, dict[str, Any]] = {
    plan.ANY: {},
    plan.STR: {"type": "string"},
    plan.INT: {"type": "integer"},
    plan.FLOAT: {"type": "number"},
    plan.BOOL: {"type": "boolean"},
    plan.NONE: {"type": "null"},
}

_FORMATS: dict[str, dict[str, Any]] = {
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "time": {"type": "string", "format": "time"},
    "UUID": {"type": "string", "format": "uuid"},
    "Decimal": {"anyOf": [{"type": "number"}, {"type": "string"}]},
    "bytes (base64)": {"type": "string", "contentEncoding": "base64"},
}


def input_schema(signature: Signature) -> dict[str, Any]:
    """The schema of the JSON object that binds a handler's parameters by name."""
    defs = _Defs()
    properties = {param.name: _schema(param.spec, defs) for param in signature.params}
    schema: dict[str, Any] = {"$schema": DIALECT, "type": "object", "properties": properties}
    required = [param.name for param in signature.params if param.required]
    if required:
        schema["required"] = required
    if signature.var_keyword is None:
        schema["additionalProperties"] = False
    else:
        schema["additionalProperties"] = _schema(signature.var_keyword.spec, defs)
    if defs:
        schema["$defs"] = dict(defs)
    return schema


def output_schema(signature: Signature) -> dict[str, Any]:
    """The schema of a handler's result."""
    return schema_for(signature.returns)


def schema_for(spec: Spec) -> dict[str, Any]:
    """A standalone schema document for one spec."""
    defs = _Defs()
    schema = {"$schema": DIALECT, **_schema(spec, defs)}
    if defs:
        schema["$defs"] = dict(defs)
    return schema


def _schema(spec: Spec, defs: _Defs) -> dict[str, Any]:
    kind = spec.kind
    if kind in _SIMPLE:
        return dict(_SIMPLE[kind])
    if kind == plan.PARSE:
        return dict(_FORMATS.get(spec.label, {"type": "string"}))
    if kind == plan.LIST:
        return {"type": "array", "items": _schema(spec.items[0], defs)}
    if kind in (plan.SET, plan.FROZENSET):
        return {"type": "array", "items": _schema(spec.items[0], defs), "uniqueItems": True}
    if kind == plan.VARTUPLE:
        return {"type": "array", "items": _schema(spec.items[0], defs)}
    if kind == plan.TUPLE:
        size = len(spec.items)
        return {
            "type": "array",
            "prefixItems": [_schema(item, defs) for item in spec.items],
            "minItems": size,
            "maxItems": size,
        }
    if kind == plan.DICT:
        return {"type": "object", "additionalProperties": _schema(spec.items[0], defs)}
    if kind == plan.OPTIONAL:
        return {"anyOf": [_schema(spec.items[0], defs), {"type": "null"}]}
    if kind == plan.UNION:
        return {"anyOf": [_schema(item, defs) for item in spec.items]}
    if kind == plan.LITERAL:
        values = list(spec.values)
        return {"const": values[0]} if len(values) == 1 else {"enum": values}
    if kind in (plan.ENUM, plan.DATACLASS, plan.TYPEDDICT, plan.PYDANTIC):
        return _reference(spec, defs)
    _log.debug("no JSON Schema for %r; using {}", spec)
    return {}


def _reference(spec: Spec, defs: _Defs) -> dict[str, Any]:
    name = _def_name(spec.cls, defs)
    ref = {"$ref": f"#/$defs/{name}"}
    if name in defs:
        return ref
    defs[name] = {}  # placeholder first: recursive types refer back to it
    if spec.kind == plan.ENUM:
        defs[name] = {"title": name, "enum": list(spec.values)}
    elif spec.kind == plan.PYDANTIC:
        defs[name] = _pydantic_schema(spec, defs)
    else:
        defs[name] = {
            "title": name,
            "type": "object",
            "properties": {field.name: _schema(field.spec, defs) for field in spec.fields},
            "required": [field.name for field in spec.fields if field.required],
            "additionalProperties": False,
        }
    return ref


def _def_name(cls: type, defs: _Defs) -> str:
    """A `$defs` key for the class: its name, qualified when another class already took it."""
    owner = defs.owners.setdefault(cls.__name__, cls)
    return cls.__name__ if owner is cls else f"{cls.__module__}.{cls.__qualname__}"


def _pydantic_schema(spec: Spec, defs: _Defs) -> dict[str, Any]:
    try:
        schema = dict(spec.cls.model_json_schema(ref_template="#/$defs/{model}"))
    except Exception as exc:  # a model that cannot describe itself still registers
        _log.debug("pydantic model %s has no JSON Schema: %s", spec.label, exc)
        return {}
    defs.update(schema.pop("$defs", {}))
    return schema
