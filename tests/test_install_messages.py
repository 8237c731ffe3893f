"""An install says what it is: pure on purpose is silent, a failed compile warns once at import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD_FILES = ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE")
NO_COMPILER = "/nonexistent/cc"
IMPORT = (
    "import agnt5, agnt5._speedups as s, agnt5.worker\n"
    "s.encode_invoke_batch  # the frame codec chooses too\n"
    "print(s.USE_EXTENSIONS)\n"
)

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    unset = {"AGNT5_NO_EXTENSIONS", "CIBUILDWHEEL", "CC", "PYTHONPATH"}
    return {**{k: v for k, v in os.environ.items() if k not in unset}, **extra}


def _build(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``pip wheel`` a copy of the project (no build isolation: offline, this venv's Cython)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in BUILD_FILES:
        shutil.copy2(ROOT / name, source / name)
    # Generated C files come along (with their times) so Cython need not redo them.
    shutil.copytree(
        ROOT / "agnt5",
        source / "agnt5",
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "_build_failed.txt"),
    )
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    return subprocess.run(
        [*command, "--wheel-dir", str(tmp_path / "wheels"), str(source)],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _import_installed(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Install the built wheel into its own folder and import agnt5 from there."""
    (wheel,) = (tmp_path / "wheels").glob("agnt5-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), wheel],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return subprocess.run(
        [sys.executable, "-P", "-c", IMPORT],
        env=_env(PYTHONPATH=str(site)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_pure_build_on_purpose_is_silent(tmp_path: Path) -> None:
    built = _build(tmp_path, AGNT5_NO_EXTENSIONS="1")
    assert built.returncode == 0, built.stderr

    imported = _import_installed(tmp_path)

    assert (imported.stdout, imported.stderr) == ("False\n", "")


def test_a_failed_compile_is_said_once_at_import_with_the_fix(tmp_path: Path) -> None:
    built = _build(tmp_path, CC=NO_COMPILER)
    assert built.returncode == 0, built.stderr  # pip shows no build output: hence the warning

    imported = _import_installed(tmp_path)

    assert imported.stdout == "False\n"
    (line,) = imported.stderr.splitlines()
    assert "the compiled hot path was not built when agnt5 was installed" in line
    assert NO_COMPILER in line
    assert "install a C compiler" in line and "--force-reinstall --no-cache-dir" in line


def test_a_release_build_fails_when_compiling_fails(tmp_path: Path) -> None:
    built = _build(tmp_path, CC=NO_COMPILER, CIBUILDWHEEL="1")

    assert built.returncode != 0
    assert NO_COMPILER in built.stdout + built.stderr
