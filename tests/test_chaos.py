"""The chaos run, shortened: kill -9 of workers and the coordinator loses and repeats nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from _coordinator_support import run_benchmark


@pytest.mark.slow
def test_kill_9_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    counts = run_benchmark(
        "chaos.py", "--invocations", "800", "--concurrency", "100", "--data-dir", str(tmp_path),
        timeout=120,
    )  # fmt: skip
    assert counts["submitted"] == counts["completed"] == "800"
    assert counts["lost"] == counts["duplicates seen by clients"] == "0"
