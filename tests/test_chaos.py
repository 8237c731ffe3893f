"""The chaos run, shortened: kill -9 of workers and the coordinator loses and repeats nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _coordinator_support import agnt5_env

_SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "chaos.py"


def test_kill_9_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(_SCRIPT), "--invocations", "800", "--concurrency", "100",
         "--data-dir", str(tmp_path)],
        capture_output=True, env=agnt5_env(), timeout=120, check=False,
    )  # fmt: skip
    output = run.stdout.decode()
    counts = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    assert run.returncode == 0, output + run.stderr.decode()[-3000:]
    assert counts["submitted"] == counts["completed"] == "800"
    assert counts["lost"] == counts["duplicates seen by clients"] == "0"
