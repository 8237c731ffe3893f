"""Check that the wheels workflow builds every wheel it should: one per CPython and platform.

Usage: ``python scripts/check_release_config.py [WORKFLOW]`` (default
``.github/workflows/wheels.yml``; needs cibuildwheel and ruamel.yaml).

For each row of the workflow's wheel matrix, asks cibuildwheel which wheels it would build on
that runner (``--print-build-identifiers`` with the row's ``CIBW_BUILD`` and architectures),
and fails when a row builds nothing, or misses a CPython that ``requires-python`` allows, or
when the rows together miss a platform: manylinux and musllinux on x86_64 and aarch64, macOS
on x86_64 and arm64.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from ruamel.yaml import YAML

__all__ = ["main"]

PLATFORMS = {
    "manylinux_x86_64",
    "manylinux_aarch64",
    "musllinux_x86_64",
    "musllinux_aarch64",
    "macosx_x86_64",
    "macosx_arm64",
}


def _runner(row: dict[str, str]) -> tuple[str, str]:
    """cibuildwheel's platform and architectures for a matrix row, as its runner would see them."""
    if row["os"].startswith("macos"):
        return "macos", row["archs"]
    return "linux", "aarch64" if row["os"].endswith("-arm") else "x86_64"


def _identifiers(row: dict[str, str]) -> list[str]:
    platform, archs = _runner(row)
    env = {**os.environ, "CIBW_BUILD": row["build"], "CIBW_ARCHS": archs}
    command = [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers"]
    done = subprocess.run(
        [*command, "--platform", platform],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.split()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    workflow = Path(args[0] if args else ".github/workflows/wheels.yml")
    rows = YAML(typ="safe").load(workflow.read_text())["jobs"]["wheels"]["strategy"]["matrix"]
    requires = tomllib.loads(Path("pyproject.toml").read_text())["project"]["requires-python"]
    oldest = int(requires.removeprefix(">=3."))
    problems = []
    built: set[str] = set()
    for row in rows["include"]:
        identifiers = _identifiers(row)
        print(f"{row['os']:16} {row['build']:22} {' '.join(identifiers) or 'NOTHING'}")
        versions = {int(i.split("-")[0].removeprefix("cp3")) for i in identifiers}
        if not identifiers or min(versions) != oldest:
            problems.append(f"{row['build']} on {row['os']} does not start at CPython 3.{oldest}")
        if versions and versions != set(range(oldest, max(versions) + 1)):
            problems.append(f"{row['build']} on {row['os']} skips a CPython version")
        built |= {i.split("-", 1)[1] for i in identifiers}
    problems += [f"no job builds {platform} wheels" for platform in sorted(PLATFORMS - built)]
    for problem in problems:
        print(f"check_release_config: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
