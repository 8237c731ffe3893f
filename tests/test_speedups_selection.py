"""The selector picks the compiled twins unless told not to, says so, and every process the
tests start (servers, workers, coordinators) picks what the tests themselves run."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import pytest
from _asgi_support import serve
from _coordinator_support import PYTHON, agnt5_env, coordinator_process
from _processes import spawn, stop

import agnt5._speedups as speedups
from agnt5.client import Client
from agnt5.config import env_flag

pytestmark = pytest.mark.hot_path

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
    stats = "agnt5._speedups._stats_py" if NO_EXTENSIONS else "agnt5._speedups._stats"
    assert speedups.FunctionStats.__module__ == stats


@pytest.mark.c_extension
@pytest.mark.parametrize("broken", ["_dispatch", "_frames", "_stats"])
def test_one_compiled_twin_failing_falls_back_for_all(broken: str) -> None:
    code = (
        f"import sys; sys.modules['agnt5._speedups.{broken}'] = None\n"  # its import now fails
        "import agnt5._speedups as s\n"
        "print(s.USE_EXTENSIONS, s.Handler.__module__, s.decode_worker_message.__module__,"
        " s.FunctionStats.__module__)"
    )
    out = subprocess.run(
        [*PYTHON, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    pure = ["False", *(f"agnt5._speedups.{twin}_py" for twin in ("_dispatch", "_frames", "_stats"))]
    assert out.stdout.split() == pure
    assert "Traceback" not in out.stderr


def test_environment_variable_forces_fallback() -> None:
    code = "import agnt5._speedups as s; print(s.USE_EXTENSIONS, s.Handler.__module__)"
    out = subprocess.run(
        [*PYTHON, "-c", code],
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
        [*PYTHON, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


TWINS_MODULE = """
from agnt5 import function


@function()
def twins() -> bool:
    from agnt5._speedups import USE_EXTENSIONS

    return USE_EXTENSIONS
"""


def runs_compiled_twins(pid: int) -> bool:
    """Whether process ``pid`` has the compiled twins loaded (its memory maps name their files)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return all(f"_speedups/{twin}.cpython" in maps for twin in ("_dispatch", "_frames", "_stats"))


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc/PID/maps (Linux)")
def test_every_process_the_tests_start_runs_the_same_twins(tmp_path: Path) -> None:
    """On the pure-Python pass (AGNT5_NO_EXTENSIONS=1) the servers and workers are pure too,
    and on the compiled pass they are compiled (not a source tree picked up from the cwd)."""
    expected = speedups.USE_EXTENSIONS
    assert agnt5_env().get("AGNT5_NO_EXTENSIONS") == os.environ.get("AGNT5_NO_EXTENSIONS")
    module = tmp_path / "twins_app.py"
    module.write_text(TWINS_MODULE)
    with coordinator_process() as coordinator, Client(coordinator.endpoint) as client:
        assert runs_compiled_twins(coordinator.process.pid) is expected
        worker = spawn(
            [*PYTHON, "-m", "agnt5", "worker", str(module), "--service", "twins",
             "--endpoint", coordinator.endpoint],
            env=agnt5_env(),
        )  # fmt: skip
        try:
            for _ in range(600):  # bounded: 30 s for the worker to register
                if any(s["name"] == "twins" and s["workers"] for s in client.list_services()):
                    break
                time.sleep(0.05)
            assert client.invoke("twins", "twins", timeout=30) is expected
            assert runs_compiled_twins(worker.pid) is expected
        finally:
            stop(worker)
    with serve(tmp_path) as (url, server):
        answer = httpx.post(
            f"{url}/invoke/twins", headers={"content-type": "application/json"}, timeout=10
        )
        assert answer.json()["result"] is expected
        assert runs_compiled_twins(server.pid) is expected
    dev = spawn(
        [*PYTHON, "-m", "agnt5", "dev", str(module), "--port", "0", "--no-http",
         "--invoke", "twins"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=agnt5_env(),
    )  # fmt: skip
    try:
        out, err = dev.communicate(timeout=60)
    finally:
        stop(dev)
    assert dev.returncode == 0, err.decode()[-2000:]
    assert orjson.loads(out.decode().strip().splitlines()[-1]) is expected
