"""Shared fixtures: the twin under test, an isolated registry, and no process left behind.

``impl`` is each implementation of the twins in turn (multidict's way): the compiled one is
marked ``c_extension``, so ``pytest -m "not c_extension"`` (with ``AGNT5_NO_EXTENSIONS=1``)
runs the whole suite on the pure-Python twins alone.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from _processes import descendants, describe, make_subreaper, still_running

from agnt5._registry import REGISTRY

TWINS = {
    "compiled": ("agnt5._speedups._dispatch", "agnt5._speedups._frames"),
    "pure": ("agnt5._speedups._dispatch_py", "agnt5._speedups._frames_py"),
}

make_subreaper()  # so a process whose parent died is still found below this one
# Standalone workers serve health endpoints on port 8000 by default; the tests start many, in
# this process and in subprocesses (agnt5_env keeps this), so none takes a port unless a test
# gives it one (an ephemeral port, or "" for the default).
os.environ["AGNT5_HEALTH_PORT"] = "0"


@pytest.fixture(
    scope="session", params=[pytest.param("compiled", marks=pytest.mark.c_extension), "pure"]
)
def impl(request: pytest.FixtureRequest) -> SimpleNamespace:
    """One implementation of the twins: ``Handler``, the JSON and the frame codec functions."""
    try:
        modules = [importlib.import_module(name) for name in TWINS[request.param]]
    except ImportError as exc:  # deselect with -m "not c_extension" to test the pure twins only
        pytest.fail(f"the compiled twins are not importable: {exc}")
    names = {name: getattr(module, name) for module in modules for name in module.__all__}
    return SimpleNamespace(name=request.param, **names)


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


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Every process a test starts is gone when it ends (its fixtures' processes included)."""
    before = descendants()
    yield
    left = still_running(descendants() - before)
    assert not left, f"processes left running:\n{describe(left)}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Module- and session-scoped fixtures stopped theirs too: nothing may outlive the run."""
    left = still_running(descendants())
    if left:
        print(f"\nprocesses left running after the tests:\n{describe(left)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
