"""Build the compiled hot path, falling back to the pure-Python twin when it cannot be built.

- ``AGNT5_NO_EXTENSIONS=1`` skips compiling altogether.
- ``CIBUILDWHEEL=1`` makes a failed compile fail the build (release wheels must be compiled).
- Otherwise a failed compile prints one warning and installs the pure-Python package.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


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

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            self._give_up(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        if _flag("CIBUILDWHEEL"):
            raise exc
        print(
            f"WARNING: agnt5's compiled hot path could not be built ({exc}); "
            "installing the pure-Python fallback, which is slower but behaves identically.",
            file=sys.stderr,
        )


def _extensions() -> list[Extension]:
    if _flag("AGNT5_NO_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        if _flag("CIBUILDWHEEL"):
            raise
        print(
            f"WARNING: Cython is unavailable ({exc}); installing the pure-Python fallback.",
            file=sys.stderr,
        )
        return []
    return cythonize(
        [
            Extension("agnt5._speedups._dispatch", ["agnt5/_speedups/_dispatch.pyx"]),
            Extension("agnt5._speedups._frames", ["agnt5/_speedups/_frames.pyx"]),
        ],
        compiler_directives=_COMPILER_DIRECTIVES,
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
