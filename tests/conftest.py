"""Shared fixtures: the hot-path implementations to test, and an isolated handler registry."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

import pytest

from agnt5._registry import REGISTRY
from agnt5.config import env_flag

NO_EXTENSIONS = env_flag("AGNT5_NO_EXTENSIONS")


def _implementations() -> list[str]:
    names = ["agnt5._speedups._dispatch_py"]
    if not NO_EXTENSIONS:
        names.append("agnt5._speedups._dispatch")
    return names


@pytest.fixture(params=_implementations(), ids=lambda name: name.rsplit(".", 1)[-1])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """Each hot-path implementation in turn (the compiled one only when extensions are wanted)."""
    try:
        return importlib.import_module(request.param)
    except ImportError as exc:  # test_speedups_selection fails loudly for this case
        pytest.fail(f"compiled hot path expected but not importable: {exc}")


@pytest.fixture
def registry() -> Iterator[None]:
    """Let a test register handlers freely; the registry is restored afterwards."""
    components = REGISTRY._components
    saved = dict(components)
    try:
        yield
    finally:
        components.clear()
        components.update(saved)
