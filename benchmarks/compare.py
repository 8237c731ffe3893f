"""Compare two saved pytest-benchmark runs by their ratios to the in-run reference, not by time.

    pytest benchmarks/ --benchmark-only --benchmark-json=old1.json   # and old2, old3
    # ... change something ...
    pytest benchmarks/ --benchmark-only --benchmark-json=new1.json   # and new2, new3
    python benchmarks/compare.py --old old*.json --new new*.json [--tolerance 10]

For every group with a reference (its ``[floor]`` benchmark), each benchmark's median is divided
by the reference's median *of the same run*, and the median of those ratios over the runs given
is compared: a benchmark regressed when its ratio grew by more than ``--tolerance`` percent,
and by more than the ratio varied between the old runs themselves (so give each side several
runs on a shared machine: their spread is printed). A machine that is slower or busier in one
run slows the reference too, so ratios hold where absolute medians do not (comparing those
reported every benchmark as regressed on an unchanged tree). Exits 1 if any regressed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _ratios import REFERENCE, label, ratios

__all__ = ["main", "ratios_of"]


def ratios_of(path: Path) -> dict[tuple[str, str], float]:
    """``(group, ratio name) -> ratio`` of every group with a reference in a saved run."""
    groups: dict[str, dict[str, float]] = {}
    for bench in json.loads(path.read_text())["benchmarks"]:
        group = bench.get("group") or bench["name"]
        groups.setdefault(group, {})[label(bench["name"])] = bench["stats"]["median"]
    return {
        (group, name): value
        for group, medians in groups.items()
        if REFERENCE in medians
        for name, value in ratios(medians)
    }


def _medians(
    paths: list[Path],
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """The median of each ratio over the runs in ``paths``, and its spread ((max - min) / median)."""
    runs = [ratios_of(path) for path in paths]
    keys = set.intersection(*(set(run) for run in runs))
    medians = {key: statistics.median(run[key] for run in runs) for key in keys}
    spreads = {
        key: (max(run[key] for run in runs) - min(run[key] for run in runs)) / medians[key]
        for key in keys
    }
    return medians, spreads


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, nargs="+", required=True, help="saved runs, before")
    parser.add_argument("--new", type=Path, nargs="+", required=True, help="saved runs, after")
    parser.add_argument("--tolerance", type=float, default=10.0, help="percent (default 10)")
    args = parser.parse_args(argv)
    if not args.tolerance >= 0:
        parser.error("--tolerance must be a non-negative percentage")
    (old, noise), (new, _) = _medians(args.old), _medians(args.new)
    regressed = 0
    for key in sorted(old.keys() & new.keys()):
        change = new[key] / old[key] - 1
        verdict = "REGRESSED" if change > max(args.tolerance / 100, noise[key]) else "ok"
        regressed += verdict != "ok"
        group, name = key
        print(f"{verdict:>9}  {group}: {name} {old[key]:.2f}x -> {new[key]:.2f}x ({change:+.0%};"
              f" old runs spread {noise[key]:.0%})")  # fmt: skip
    for key in sorted(old.keys() ^ new.keys()):
        print(f"{'only in ' + ('old' if key in old else 'new'):>9}  {key[0]}: {key[1]}")
    if not old.keys() & new.keys():
        print("no ratio in common: were both runs made with these benchmarks?")
        return 1
    print(f"{regressed} regressed beyond {args.tolerance:g}% (and the old runs' own spread)")
    return 1 if regressed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
