"""The chaos run, shortened: kill -9 of workers and the coordinator loses and repeats nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _coordinator_support import agnt5_env
from _processes import spawn, stop

_SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "chaos.py"


@pytest.mark.slow
def test_kill_9_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    run = spawn(
        [sys.executable, str(_SCRIPT), "--invocations", "800", "--concurrency", "100",
         "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=agnt5_env(),
    )  # fmt: skip
    try:
        stdout, stderr = run.communicate(timeout=120)
    finally:
        stop(run, grace=0)  # with the coordinator and workers it started
    output = stdout.decode()
    counts = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    assert run.returncode == 0, output + stderr.decode()[-3000:]
    assert counts["submitted"] == counts["completed"] == "800"
    assert counts["lost"] == counts["duplicates seen by clients"] == "0"
