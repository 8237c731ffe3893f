"""What to say when the compiled hot path does not load: a warning only if it was meant to.

A build with ``AGNT5_NO_EXTENSIONS=1`` is pure on purpose and says nothing. A build that tried
to compile and failed leaves ``_build_failed.txt`` beside this module (see ``setup.py``) with
the compiler's complaint; a compiled module that exists but will not import is broken.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["FAILED_MARKER", "warning_for"]

FAILED_MARKER = Path(__file__).with_name("_build_failed.txt")

_FIX = (
    "It works, more slowly, on the pure-Python fallback. For the compiled one, install a C "
    "compiler and the Python headers (e.g. `apt-get install gcc python3-dev`) and reinstall "
    "with `pip install --force-reinstall --no-cache-dir agnt5`, or use a platform with a "
    "prebuilt wheel (Linux x86_64/aarch64, macOS)."
)


def warning_for(exc: ImportError) -> str | None:
    """The one warning to log for ``exc`` from importing the compiled module, or None."""
    if not isinstance(exc, ModuleNotFoundError) or not (exc.name or "").startswith(__package__):
        return f"agnt5: the compiled hot path failed to load ({exc}). {_FIX}"
    try:
        reason = FAILED_MARKER.read_text(encoding="utf-8").strip()
    except OSError:  # no marker: built without extensions on purpose
        return None
    first = reason.splitlines()[0] if reason else "no reason recorded"
    return f"agnt5: the compiled hot path was not built when agnt5 was installed ({first}). {_FIX}"
