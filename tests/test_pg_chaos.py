"""The chaos run across coordinators, shortened: three coordinators on one PostgreSQL database,
one of them and one worker kill -9'd; nothing lost, duplicated or run again once journaled."""

from __future__ import annotations

from pathlib import Path

import pytest
from _coordinator_support import run_benchmark

from agnt5.testing_postgres import PostgresUnavailable, postgres_bin


@pytest.mark.slow
def test_kill_9_of_a_coordinator_and_a_worker_loses_and_repeats_nothing(tmp_path: Path) -> None:
    try:
        postgres_bin()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    counts = run_benchmark(
        "pg_chaos.py", "--invocations", "1000", "--workflows", "60", "--concurrency", "100",
        "--work-dir", str(tmp_path), timeout=240,
    )  # fmt: skip
    assert counts["completed"] == "1060" and counts["workflows completed"] == "60"
    assert counts["lost"] == counts["duplicates"] == counts["client errors"] == "0"
    assert counts["steps run again after journaled"] == "0"
