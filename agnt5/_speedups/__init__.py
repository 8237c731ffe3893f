"""The hot path, chosen once at import: the compiled module, or its pure-Python twin.

``AGNT5_NO_EXTENSIONS=1`` forces the twin; a compiled module that fails to import falls back
with one warning. Runtimes import from here, never from ``_dispatch`` modules directly.
"""

from __future__ import annotations

import logging
import os

__all__ = [
    "USE_EXTENSIONS",
    "Handler",
    "decode_json",
    "dispatch",
    "encode_json",
    "lookup",
]

_TRUE = frozenset({"1", "true", "yes", "on"})


def _extensions_disabled() -> bool:
    return os.environ.get("AGNT5_NO_EXTENSIONS", "").strip().lower() in _TRUE


USE_EXTENSIONS: bool
if _extensions_disabled():
    from agnt5._speedups._dispatch_py import Handler, decode_json, dispatch, encode_json, lookup

    USE_EXTENSIONS = False
else:
    try:
        from agnt5._speedups._dispatch import (  # type: ignore[import-not-found]
            Handler,
            decode_json,
            dispatch,
            encode_json,
            lookup,
        )

        USE_EXTENSIONS = True
    except ImportError as exc:
        logging.getLogger("agnt5").warning(
            "agnt5: compiled hot path unavailable (%s); using the pure-Python fallback", exc
        )
        from agnt5._speedups._dispatch_py import (
            Handler,
            decode_json,
            dispatch,
            encode_json,
            lookup,
        )

        USE_EXTENSIONS = False
