"""The workflow chaos run, shortened: five-step workflows through three workers, one of them
kill -9'd twice; every workflow completes once and no step runs beyond its allowance."""

from __future__ import annotations

from pathlib import Path

import pytest
from _coordinator_support import run_benchmark


@pytest.mark.slow
def test_kill_9_of_a_worker_twice_completes_every_workflow_once(tmp_path: Path) -> None:
    counts = run_benchmark(
        "workflow_chaos.py", "--workflows", "300", "--data-dir", str(tmp_path), timeout=180
    )
    assert counts["workflows"] == counts["completed"] == counts["journaled once"] == "300"
    assert counts["steps never run"] == counts["steps over allowance"] == "0"
    assert counts["repeats over in-flight bound"] == "0"
