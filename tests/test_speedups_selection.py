"""The selector picks the compiled twins unless told not to, says so, and every process the
tests start (servers, workers, coordinators) picks what the tests themselves run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from _asgi_support import serve
from _coordinator_support import agnt5_env
from _processes import spawn, stop

import agnt5._speedups as speedups
from agnt5.config import env_flag

NO_EXTENSIONS = env_flag("AGNT5_NO_EXTENSIONS")


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
    for name in ("decode_json", "encode_json"):
        assert getattr(speedups, name).__module__ == module


@pytest.mark.c_extension
@pytest.mark.parametrize("broken", ["_dispatch", "_frames"])
def test_one_compiled_twin_failing_falls_back_for_all(broken: str) -> None:
    code = (
        f"import sys; sys.modules['agnt5._speedups.{broken}'] = None\n"  # its import now fails
        "import agnt5._speedups as s\n"
        "print(s.USE_EXTENSIONS, s.Handler.__module__, s.decode_worker_message.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    pure = ["False", "agnt5._speedups._dispatch_py", "agnt5._speedups._frames_py"]
    assert out.stdout.split() == pure
    assert "compiled hot path unavailable" in out.stderr


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
    assert "compiled hot path unavailable" not in out.stderr


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


TWINS_MODULE = """
from agnt5 import function


@function()
def twins() -> bool:
    from agnt5._speedups import USE_EXTENSIONS

    return USE_EXTENSIONS
"""


def test_every_process_the_tests_start_runs_the_same_twins(tmp_path: Path) -> None:
    """On the pure-Python pass (AGNT5_NO_EXTENSIONS=1) the servers and workers are pure too."""
    assert agnt5_env().get("AGNT5_NO_EXTENSIONS") == os.environ.get("AGNT5_NO_EXTENSIONS")
    with serve(tmp_path) as (url, _):
        served = httpx.post(f"{url}/invoke/twins", timeout=10).json()["result"]
    module = tmp_path / "twins_app.py"
    module.write_text(TWINS_MODULE)
    dev = spawn(
        [sys.executable, "-m", "agnt5", "dev", str(module), "--port", "0", "--no-http",
         "--invoke", "twins"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=agnt5_env(), cwd=tmp_path,
    )  # fmt: skip
    try:
        out, err = dev.communicate(timeout=60)
    finally:
        stop(dev)
    assert dev.returncode == 0, err.decode()[-2000:]
    invoked = orjson.loads(out.decode().strip().splitlines()[-1])  # a coordinator and a worker
    assert served is invoked is speedups.USE_EXTENSIONS
