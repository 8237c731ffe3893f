"""Benchmark plumbing: after the run, print each group's medians as ratios to its reference.

Ratios measured in one run survive a noisy machine far better than absolute times do.
"""

from __future__ import annotations

from typing import Any

import pytest

REFERENCE = "floor"
"""Each group is compared to its benchmark whose name ends with ``[<REFERENCE>]``."""


def _median_by_label(session: Any) -> dict[str, dict[str, float]]:
    groups: dict[str, dict[str, float]] = {}
    for bench in getattr(session, "benchmarks", []):
        label = bench.name.rsplit("[", 1)[-1].rstrip("]").split("-")[0]
        groups.setdefault(bench.group or bench.name, {})[label] = bench.stats.median
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
        cells = [f"{label}={median * 1e6:.2f}us" for label, median in sorted(medians.items())]
        write(f"  {group}: " + "  ".join(cells))
        ratios = _ratios(medians)
        if ratios:
            write("    " + "  ".join(f"{name}={value:.2f}x" for name, value in ratios))


def _ratios(medians: dict[str, float]) -> list[tuple[str, float]]:
    pairs = [(f"{label}/{REFERENCE}", label, REFERENCE) for label in sorted(medians)]
    pairs += [
        ("naive/compiled", "naive", "compiled"),
        ("fallback/compiled", "fallback", "compiled"),
        ("sync/hop", "sync", "hop"),
    ]
    return [
        (name, medians[top] / medians[bottom])
        for name, top, bottom in pairs
        if top != bottom and top in medians and bottom in medians and medians[bottom] > 0
    ]
