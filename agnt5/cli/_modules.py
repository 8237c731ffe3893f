"""The user's module: imported by name or path, its handlers registered, its Worker found.

A module that cannot be found, or names no Worker where one is asked for, or registers no
function, is a `UsageError`. A module whose own code fails while it imports is a
`UserCodeError` whose report is the traceback from the user's code down, without the frames
of this command line and of importlib above it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING

from agnt5._registry import REGISTRY
from agnt5.cli._options import UsageError

if TYPE_CHECKING:
    from agnt5.worker import Worker

__all__ = ["UserCodeError", "load", "watched_root"]

_CLI_DIR = str(Path(__file__).resolve().parent)


class UserCodeError(Exception):
    """The user's module raised while it was imported; `report` is what to print."""

    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report


def load(target: str) -> tuple[ModuleType, Worker | None]:
    """Import ``MODULE[:ATTR]`` (a dotted name, from the current directory too, or a ``.py``
    path) so its handlers register; the module and the Worker named by ATTR, if any."""
    from agnt5.worker import Worker

    name, _, attr = target.partition(":")
    module = _import(name)
    if attr:
        found = getattr(module, attr, None)
        if found is None:
            raise UsageError(f"agnt5: {name} has no attribute {attr!r}: name a Worker in it")
        if not isinstance(found, Worker):
            raise UsageError(
                f"agnt5: {name}:{attr} is a {type(found).__name__}, not an agnt5 Worker"
            )
        return module, found
    if not REGISTRY:
        raise UsageError(
            f"agnt5: {name} registers no functions: decorate them with @function() "
            "(or name a Worker with MODULE:ATTR)"
        )
    return module, None


def watched_root(target: str) -> Path:
    """The directory whose files ``target``'s code is in: a ``.py`` file's, else the current."""
    name = target.partition(":")[0]
    return Path(name).resolve().parent if _is_path(name) else Path.cwd()


def _is_path(name: str) -> bool:
    return name.endswith(".py") or os.sep in name


def _import(name: str) -> ModuleType:
    if _is_path(name):
        path = Path(name).resolve()
        if not path.is_file():
            raise UsageError(f"agnt5: no such file: {name}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"agnt5: cannot import {name}: not a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(path.stem, None)
            raise UserCodeError(_report(name, exc)) from None
        return module
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(f"{exc.name}.")):
            raise UsageError(
                f"agnt5: no module named {exc.name!r} (looked in {os.getcwd()} and the "
                "installed packages): give a module name or a .py file"
            ) from None
        raise UserCodeError(_report(name, exc)) from None
    except Exception as exc:
        raise UserCodeError(_report(name, exc)) from None


def _report(name: str, exc: BaseException) -> str:
    """The traceback of ``exc`` from the user's first frame down (a SyntaxError: its line)."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and _ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb)
    return f"agnt5: cannot import {name}:\n{''.join(lines)}"


def _ours(filename: str) -> bool:
    """Frames of this command line and of the import machinery, not of the user's code."""
    return filename.startswith("<frozen importlib") or filename.startswith(_CLI_DIR)
