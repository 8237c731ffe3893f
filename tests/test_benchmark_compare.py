"""`benchmarks/compare.py`: regressions judged by ratios to the in-run reference, not by time."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from _coordinator_support import PYTHON

COMPARE = Path(__file__).resolve().parent.parent / "benchmarks" / "compare.py"


def saved_run(path: Path, **medians: float) -> Path:
    """A pytest-benchmark JSON file with one group whose benchmarks have these medians."""
    benchmarks = [
        {"group": "asgi", "name": f"asgi[{label}]", "stats": {"median": median}}
        for label, median in medians.items()
    ]
    path.write_text(json.dumps({"benchmarks": benchmarks}))
    return path


def compare(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PYTHON, str(COMPARE), *map(str, args)], capture_output=True, text=True, timeout=60
    )


def test_a_slower_machine_is_no_regression(tmp_path: Path) -> None:
    old = saved_run(tmp_path / "old.json", floor=1.0, sync=20.0)
    slow = saved_run(tmp_path / "new.json", floor=3.0, sync=60.0)  # everything 3x slower
    out = compare("--old", old, "--new", slow)
    assert out.returncode == 0, out.stdout
    assert "ok  asgi: sync/floor 20.00x -> 20.00x (+0%" in out.stdout


def test_a_ratio_that_grows_past_the_tolerance_is_a_regression(tmp_path: Path) -> None:
    old = saved_run(tmp_path / "old.json", floor=1.0, sync=20.0)
    worse = saved_run(tmp_path / "new.json", floor=0.5, sync=12.0)  # faster machine, worse ratio
    out = compare("--old", old, "--new", worse, "--tolerance", 10)
    assert out.returncode == 1
    assert "REGRESSED  asgi: sync/floor 20.00x -> 24.00x (+20%" in out.stdout


def test_the_old_runs_own_spread_raises_the_bar(tmp_path: Path) -> None:
    olds = [
        saved_run(tmp_path / f"old{n}.json", floor=1.0, sync=sync)
        for n, sync in enumerate((16.0, 20.0, 24.0))  # the same tree, 40% apart
    ]
    new = saved_run(tmp_path / "new.json", floor=1.0, sync=24.0)
    out = compare("--old", *olds, "--new", new, "--tolerance", 10)
    assert out.returncode == 0, out.stdout
    assert "old runs spread 40%" in out.stdout


def test_runs_without_a_common_ratio_fail(tmp_path: Path) -> None:
    old = saved_run(tmp_path / "old.json", floor=1.0, sync=2.0)
    other = saved_run(tmp_path / "new.json", reference=1.0, sync=2.0)  # no [floor]
    out = compare("--old", old, "--new", other)
    assert out.returncode == 1 and "no ratio in common" in out.stdout
