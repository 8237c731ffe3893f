"""In-process hot path through `agnt5.testing.invoke_raw`, on both implementations.

Beside them, in the same run: the *floor* (``orjson.loads`` -> dict lookup -> ``fn(**kw)`` ->
``orjson.dumps``: what no dispatcher can beat) and a *naive* baseline (stdlib ``json`` and
``inspect.signature(fn).bind`` per call). The summary prints the ratios.

    pytest benchmarks/test_hot_path.py --benchmark-only
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from agnt5 import function
from agnt5._registry import REGISTRY
from agnt5._speedups._plan import read_signature
from agnt5.testing import invoke_raw


@dataclasses.dataclass
class Item:
    id: int
    price: float
    name: str
    note: str | None = None


@function(name="bench_noop")
def noop(name: str) -> None:
    return None


@function(name="bench_typed")
def typed(items: list[Item]) -> int:
    return len(items)


PAYLOADS = {
    "tiny": ("bench_noop", b'{"name":"Ada"}'),
    "1kb": ("bench_noop", orjson.dumps({"name": "x" * 1000})),
    "64kb": ("bench_noop", orjson.dumps({"name": "x" * 65536})),
    "typed": (
        "bench_typed",
        orjson.dumps(
            {
                "items": [
                    {"id": i, "price": i + 0.5, "name": f"item-{i}", "note": None if i % 2 else "n"}
                    for i in range(100)
                ]
            }
        ),
    ),
}

IMPLEMENTATIONS = {
    "compiled": "agnt5._speedups._dispatch",
    "fallback": "agnt5._speedups._dispatch_py",
}

FUNCTIONS: dict[str, Callable[..., Any]] = {"bench_noop": noop, "bench_typed": typed}


def floor(name: str, payload: bytes) -> bytes:
    kwargs = orjson.loads(payload)
    return orjson.dumps(FUNCTIONS[name](**kwargs))


def naive(name: str, payload: bytes) -> bytes:
    kwargs = json.loads(payload)
    fn = FUNCTIONS[name]
    bound = inspect.signature(fn).bind(**kwargs)
    return json.dumps(fn(*bound.args, **bound.kwargs)).encode()


@pytest.fixture
def use_implementation(request: pytest.FixtureRequest) -> Iterator[None]:
    """Serve the benchmark handlers from one implementation through the normal registry."""
    module = importlib.import_module(IMPLEMENTATIONS[request.param])
    saved = [REGISTRY.lookup(name) for name in FUNCTIONS]
    for component in saved:
        handler = module.Handler(component.name, component.fn, read_signature(component.fn))
        REGISTRY.add(dataclasses.replace(component, handler=handler))
    try:
        yield
    finally:
        for component in saved:
            REGISTRY.add(component)


def _available(label: str) -> bool:
    try:
        importlib.import_module(IMPLEMENTATIONS[label])
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize(
    "use_implementation",
    [
        pytest.param(
            label,
            marks=pytest.mark.skipif(not _available(label), reason=f"{label} module not built"),
        )
        for label in IMPLEMENTATIONS
    ],
    indirect=True,
)
def test_invoke_raw(
    benchmark: Any, use_implementation: None, payload: str, request: pytest.FixtureRequest
) -> None:
    name, body = PAYLOADS[payload]
    benchmark.group = payload
    benchmark.name = f"hot_path[{request.node.callspec.params['use_implementation']}]"
    expected = floor(name, body)
    assert benchmark(invoke_raw, name, body) == expected


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("baseline", [floor, naive], ids=["floor", "naive"])
def test_baseline(benchmark: Any, baseline: Callable[[str, bytes], bytes], payload: str) -> None:
    name, body = PAYLOADS[payload]
    benchmark.group = payload
    benchmark.name = f"baseline[{baseline.__name__}]"
    assert orjson.loads(benchmark(baseline, name, body)) == orjson.loads(floor(name, body))
