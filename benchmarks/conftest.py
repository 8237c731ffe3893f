"""Benchmark plumbing: after the run, print each group's medians as ratios to its reference.

Ratios measured in one run survive a noisy machine far better than absolute times do; to use the
suites as a regression check, save runs with ``--benchmark-json`` and compare their ratios with
``python benchmarks/compare.py OLD.json NEW.json`` (see `compare`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _ratios import label, ratios


def _median_by_label(session: Any) -> dict[str, dict[str, float]]:
    groups: dict[str, dict[str, float]] = {}
    for bench in getattr(session, "benchmarks", []):
        groups.setdefault(bench.group or bench.name, {})[label(bench.name)] = bench.stats.median
    return groups


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None:
        return
    groups = _median_by_label(session)
    if not groups:
        return
    write = terminalreporter.write_line
    write("")
    write("median ratios (lower is faster; measured in this run)")
    for group, medians in sorted(groups.items()):
        cells = [f"{name}={median * 1e6:.2f}us" for name, median in sorted(medians.items())]
        write(f"  {group}: " + "  ".join(cells))
        found = ratios(medians)
        if found:
            write("    " + "  ".join(f"{name}={value:.2f}x" for name, value in found))
