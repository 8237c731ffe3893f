"""Check the agnt5 this interpreter has installed: compiled, serving, and passing its tests.

Usage: ``python scripts/check_installed.py PROJECT [--full-suite]``

PROJECT holds the tests and examples (a checkout or an unpacked sdist); the agnt5 under test
is the one this interpreter imports, never PROJECT's source. It must load the compiled hot
path, ``agnt5 dev examples/hello.py --invoke hello`` must answer, and the ``hot_path`` tests
must pass; with ``--full-suite``, every test instead, then every test again on the pure-Python
twins (``AGNT5_NO_EXTENSIONS=1``, ``-m "not c_extension"``), as ``.ci/run`` wants. cibuildwheel's ``test-command`` runs this for
each release wheel, and ``scripts/build_wheels.sh`` for each wheel it builds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

__all__ = ["main"]

HELLO_INPUT = '{"name": "Ada"}'
HELLO_OUTPUT = '"Hello, Ada!"'
PROBE = "import agnt5, agnt5._speedups as s; print(agnt5.__file__); print(s.USE_EXTENSIONS)"
SUITE_TIMEOUT = 3600  # seconds; each test also has pytest-timeout's limit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path, help="folder with tests/ and examples/")
    parser.add_argument(
        "--full-suite", action="store_true", help="run every test, compiled and then pure"
    )
    args = parser.parse_args(argv)
    project = args.project.resolve()
    env = {k: v for k, v in os.environ.items() if k not in {"AGNT5_NO_EXTENSIONS", "PYTHONPATH"}}
    # A scratch working directory: `python -c` and the CLI put the working directory on sys.path.
    with tempfile.TemporaryDirectory(prefix="agnt5-check-") as scratch:
        try:
            _check_compiled(project, env, scratch)
            _check_hello(project, env, scratch)
        except AssertionError as exc:
            print(f"check_installed: {exc}", file=sys.stderr)
            return 1
    if not args.full_suite:
        return _pytest(project, env, "-m", "hot_path")
    return _pytest(project, env) or _pytest(
        project, {**env, "AGNT5_NO_EXTENSIONS": "1"}, "-m", "not c_extension"
    )


def _pytest(project: Path, env: dict[str, str], *options: str) -> int:
    command = [sys.executable, "-P", "-m", "pytest", "-q", *options, str(project / "tests")]
    pure = " (AGNT5_NO_EXTENSIONS=1)" if "AGNT5_NO_EXTENSIONS" in env else ""
    print(f"check_installed{pure}: {' '.join(command)}", flush=True)
    return subprocess.run(command, cwd=project, env=env, timeout=SUITE_TIMEOUT).returncode


def _run(command: list[str], env: dict[str, str], cwd: str) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


def _check_compiled(project: Path, env: dict[str, str], cwd: str) -> None:
    location, compiled = _run([sys.executable, "-P", "-c", PROBE], env, cwd).split()
    assert not Path(location).resolve().is_relative_to(project), (
        f"agnt5 was imported from the source in {project}, not from the installed package"
    )
    assert compiled == "True", f"the compiled hot path did not load from {location}"
    print(f"check_installed: compiled hot path loaded from {Path(location).parent}")


def _check_hello(project: Path, env: dict[str, str], cwd: str) -> None:
    cli = Path(sysconfig.get_path("scripts"), "agnt5")
    example = str(project / "examples" / "hello.py")
    command = [str(cli), "dev", example, "--port", "0", "--no-http", "--invoke", "hello"]
    output = _run([*command, HELLO_INPUT], env, cwd).splitlines()
    assert output[-1:] == [HELLO_OUTPUT], f"agnt5 dev answered {output!r}, not {HELLO_OUTPUT}"
    print(f"check_installed: agnt5 dev examples/hello.py --invoke hello answered {HELLO_OUTPUT}")


if __name__ == "__main__":
    sys.exit(main())
