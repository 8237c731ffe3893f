"""The workflow chaos run, shortened: five-step workflows through three workers, one of them
kill -9'd twice; every workflow completes once and no step runs beyond its allowance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _coordinator_support import agnt5_env
from _processes import spawn, stop

_SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "workflow_chaos.py"


@pytest.mark.slow
def test_kill_9_of_a_worker_twice_completes_every_workflow_once(tmp_path: Path) -> None:
    run = spawn(
        [sys.executable, str(_SCRIPT), "--workflows", "300", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=agnt5_env(),
    )  # fmt: skip
    try:
        stdout, stderr = run.communicate(timeout=180)
    finally:
        stop(run, grace=0)  # with the coordinator and workers it started
    output = stdout.decode()
    counts = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    assert run.returncode == 0, output + stderr.decode()[-3000:]
    assert counts["workflows"] == counts["completed"] == counts["journaled once"] == "300"
    assert counts["steps never run"] == counts["steps over allowance"] == "0"
    assert counts["repeats over in-flight bound"] == "0"
