"""The selector picks the compiled hot path unless told not to, and says so."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import agnt5._speedups as speedups

pytestmark = pytest.mark.hot_path

NO_EXTENSIONS = os.environ.get("AGNT5_NO_EXTENSIONS", "").strip().lower() in {
    "1",
    "true",
    "yes",
    "on",
}


def test_compiled_module_loaded_when_expected() -> None:
    assert speedups.USE_EXTENSIONS is (not NO_EXTENSIONS), (
        "the compiled hot path was expected but not loaded; build it with `pip install .`"
        if not NO_EXTENSIONS
        else "AGNT5_NO_EXTENSIONS=1 must force the pure-Python fallback"
    )


def test_selected_names_come_from_one_implementation() -> None:
    module = speedups.Handler.__module__
    expected = "agnt5._speedups._dispatch_py" if NO_EXTENSIONS else "agnt5._speedups._dispatch"
    assert module == expected
    for name in ("decode_json", "encode_json", "lookup", "dispatch"):
        assert getattr(speedups, name).__module__ == module


def test_environment_variable_forces_fallback() -> None:
    code = "import agnt5._speedups as s; print(s.USE_EXTENSIONS, s.Handler.__module__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "AGNT5_NO_EXTENSIONS": "1"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.split() == ["False", "agnt5._speedups._dispatch_py"]
    assert out.stderr == ""  # the fallback chosen on purpose says nothing


def test_import_agnt5_stays_light() -> None:
    code = (
        "import sys, agnt5\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'grpc', 'starlette', 'opentelemetry', 'uvicorn', 'google'})\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
