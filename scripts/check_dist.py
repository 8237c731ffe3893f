"""Check release artifacts before anyone installs them; print their sizes.

Usage:
  ``python scripts/check_dist.py sdist agnt5-X.tar.gz`` (from a git checkout)
  ``python scripts/check_dist.py wheel agnt5-X-*.whl...`` (needs pyelftools, as auditwheel does)

The sdist must hold every tracked file but CI's own (so the suite runs from it) and no build
products. A wheel must carry every compiled module, stripped, the licence, no C sources and no
``_build_failed.txt``; a Linux wheel must have a manylinux or musllinux tag.
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

__all__ = ["check_sdist", "check_wheel", "main"]

NOT_SHIPPED = (".ci/", ".github/", ".gitignore")
NEVER_SHIPPED = re.compile(r"\.c$|\.py[co]$|(^|/)__pycache__/|_build_failed\.txt$")
BINARIES = re.compile(r"\.(so|pyd|dylib)$")
EXTENSIONS = ("agnt5/_speedups/_dispatch.", "agnt5/_speedups/_frames.", "agnt5/_speedups/_stats.")
APACHE_2 = ("Apache License", "Version 2.0, January 2004", "END OF TERMS AND CONDITIONS")


def check_sdist(path: Path) -> list[str]:
    """Problems with the sdist at ``path`` (empty when it is complete and clean)."""
    with tarfile.open(path) as sdist:
        root = sdist.getnames()[0].split("/")[0]
        names = {m.name.removeprefix(f"{root}/") for m in sdist.getmembers() if m.isfile()}
        licence = sdist.extractfile(f"{root}/LICENSE") if "LICENSE" in names else None
        problems = _licence_problems(licence.read().decode() if licence else "")
    tracked = subprocess.run(
        ["git", "ls-files"], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    missing = {name for name in tracked if not name.startswith(NOT_SHIPPED)} - names
    problems += [f"missing {name}" for name in sorted(missing)]
    shipped = [n for n in sorted(names) if NEVER_SHIPPED.search(n) or BINARIES.search(n)]
    problems += [f"ships {name}" for name in shipped]
    return problems


def check_wheel(path: Path) -> list[str]:
    """Problems with the wheel at ``path`` (empty when it is fit to publish)."""
    platform = path.stem.split("-")[-1]
    problems = []
    if "linux" in platform and not re.search(r"(many|musl)linux", platform):
        problems.append(f"platform tag {platform!r} is not manylinux or musllinux")
    with zipfile.ZipFile(path) as wheel:
        names = wheel.namelist()
        for prefix in EXTENSIONS:
            modules = [n for n in names if n.startswith(prefix) and BINARIES.search(n)]
            problems += [f"no compiled module {prefix}*"] if not modules else []
            problems += [p for n in modules for p in _unstripped(n, wheel.read(n))]
        licences = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        problems += _licence_problems(wheel.read(licences[0]).decode() if licences else "")
    problems += [f"ships {name}" for name in names if NEVER_SHIPPED.search(name)]
    return problems


def _unstripped(name: str, module: bytes) -> list[str]:
    """A problem if the ELF ``module`` keeps its symbol table or debug info."""
    if not module.startswith(b"\x7fELF"):
        return []  # macOS and Windows wheels are not checked here
    from elftools.elf.elffile import ELFFile

    sections = (s.name for s in ELFFile(io.BytesIO(module)).iter_sections())
    kept = sorted(s for s in sections if s == ".symtab" or s.startswith(".debug"))
    return [f"{name} is not stripped ({', '.join(kept)})"] if kept else []


def _licence_problems(text: str) -> list[str]:
    if not all(line in text for line in APACHE_2):
        return ["LICENSE is missing or is not the full Apache-2.0 text"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("sdist", "wheel"))
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    check = check_sdist if args.kind == "sdist" else check_wheel
    failed = False
    for path in args.paths:
        problems = check(path)
        failed = failed or bool(problems)
        verdict = "ok" if not problems else "FAILED"
        print(f"{path.stat().st_size / 1024:8.0f} KiB  {path.name}  {verdict}")
        for problem in problems:
            print(f"          - {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
