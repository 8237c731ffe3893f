"""Build the compiled hot path, falling back to the pure-Python twin when it cannot be built.

- ``AGNT5_NO_EXTENSIONS=1`` skips compiling altogether.
- ``CIBUILDWHEEL=1`` makes a failed compile fail the build (release wheels must be compiled).
- Otherwise a failed compile prints one warning and installs the pure-Python package with a
  marker, ``agnt5/_speedups/_build_failed.txt``, from which ``import agnt5`` says so once.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_FAILED_MARKER = "_build_failed.txt"  # read by agnt5/_speedups/_missing.py


def _load_config() -> object:
    """``agnt5/config.py`` on its own (standard library only): the package is not built yet."""
    path = Path(__file__).resolve().parent / "agnt5" / "config.py"
    spec = importlib.util.spec_from_file_location("_agnt5_config", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


_flag = _load_config().env_flag  # type: ignore[attr-defined]
_COMPILER_DIRECTIVES = {"language_level": "3", "embedsignature": True}
"""Cython directives for every compiled module (the .pyx files carry none of their own)."""


class OptionalBuildExt(build_ext):
    """`build_ext` that degrades to a warning unless release wheels are being built."""

    cython_error: ImportError | None = None  # set when Cython could not be imported

    def run(self) -> None:
        self._failures: list[str] = []
        if self.cython_error is not None:
            self._give_up(self.cython_error)
        else:
            try:
                super().run()
            except Exception as exc:
                self._give_up(exc)
        self._leave_marker()

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        if _flag("CIBUILDWHEEL"):
            raise exc
        self._failures.append(f"{type(exc).__name__}: {exc}")
        print(
            f"WARNING: agnt5's compiled hot path could not be built ({exc}); "
            "installing the pure-Python fallback, which is slower but behaves identically.",
            file=sys.stderr,
        )

    def _leave_marker(self) -> None:
        """Write the failure marker beside the package, or remove one a previous build left."""
        package = "agnt5._speedups"
        folders = [os.path.join(self.build_lib, *package.split("."))]
        if self.inplace:  # editable installs import from the source tree
            folders.append(self.get_finalized_command("build_py").get_package_dir(package))
        for folder in folders:
            marker = os.path.join(folder, _FAILED_MARKER)
            if self._failures:
                os.makedirs(folder, exist_ok=True)
                with open(marker, "w", encoding="utf-8") as out:
                    out.write("\n".join(self._failures) + "\n")
            elif os.path.exists(marker):
                os.remove(marker)


_MODULES = [
    Extension("agnt5._speedups._dispatch", ["agnt5/_speedups/_dispatch.pyx"]),
    Extension("agnt5._speedups._frames", ["agnt5/_speedups/_frames.pyx"]),
    Extension("agnt5._speedups._stats", ["agnt5/_speedups/_stats.pyx"]),
]


def _extensions() -> list[Extension]:
    if _flag("AGNT5_NO_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        if _flag("CIBUILDWHEEL"):
            raise
        OptionalBuildExt.cython_error = exc  # reported, and marked, by build_ext
        return _MODULES
    return cythonize(
        _MODULES,
        compiler_directives=_COMPILER_DIRECTIVES,
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
