"""`benchmarks/throughput.py` refuses to label a run compiled unless its processes loaded the
compiled twins (and a fallback run unless they did not), read from real processes' maps."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _coordinator_support import PYTHON

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

_SPEC = importlib.util.spec_from_file_location(
    "throughput", Path(__file__).resolve().parent.parent / "benchmarks" / "throughput.py"
)
assert _SPEC is not None and _SPEC.loader is not None
throughput = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(throughput)

_IMPORTER = "import agnt5._speedups, sys; print('ready', flush=True); sys.stdin.read()"


@contextmanager
def agnt5_process(*, fallback: bool) -> Iterator[subprocess.Popen[str]]:
    """A process that imported agnt5's twins (pure ones with ``fallback``) and waits."""
    env = {k: v for k, v in os.environ.items() if k != "AGNT5_NO_EXTENSIONS"}
    if fallback:
        env["AGNT5_NO_EXTENSIONS"] = "1"
    process = subprocess.Popen(
        [*PYTHON, "-c", _IMPORTER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        yield process
    finally:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        process.wait(30)
        process.stdout.close()


def test_a_compiled_run_whose_worker_loaded_the_fallback_is_refused() -> None:
    with agnt5_process(fallback=True) as process:
        assert throughput._compiled_twins(process.pid) is False
        with pytest.raises(SystemExit, match="loaded the pure-Python fallback"):
            throughput._check_twins(False, {"compiled": 1.0}, [process])


def test_a_compiled_run_whose_client_loaded_the_fallback_is_refused() -> None:
    with pytest.raises(SystemExit, match="loaded the pure-Python fallback"):
        throughput._check_twins(False, {"compiled": 0.0}, [])


@pytest.mark.c_extension
def test_a_compiled_run_is_reported_and_a_fallback_run_that_loaded_them_is_not() -> None:
    with agnt5_process(fallback=False) as process:
        assert throughput._compiled_twins(process.pid) is True
        throughput._check_twins(False, {"compiled": 1.0}, [process])  # no exit
        with pytest.raises(SystemExit, match="a fallback run loaded the compiled twins"):
            throughput._check_twins(True, {"compiled": 0.0}, [process])
