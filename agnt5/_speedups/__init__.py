"""The hot path, chosen once at import: the compiled module, or its pure-Python twin.

``AGNT5_NO_EXTENSIONS=1`` forces the twin; a compiled module that fails to import falls back
with one warning. Runtimes import from here, never from ``_dispatch`` or ``_frames`` modules
directly. The frame codec (``_frames`` | ``_frames_py``) follows the same choice but loads on
first use, as it needs protobuf and ``import agnt5`` stays light; the records it reads and
writes and `FrameError` come from ``_records``, shared by both implementations.
A missing compiled module warns only when the build meant it to be there (``_missing``).
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

__all__ = [
    "USE_EXTENSIONS",
    "ErrorItem",
    "FrameError",
    "Handler",
    "InvokeItem",
    "ResultItem",
    "StreamCall",
    "StreamOutcome",
    "decode_coordinator_message",
    "decode_json",
    "decode_stream_calls",
    "decode_stream_outcomes",
    "decode_worker_message",
    "dispatch",
    "encode_invoke_batch",
    "encode_json",
    "encode_result_batch",
    "encode_stream_calls",
    "encode_stream_outcomes",
    "lookup",
]

from agnt5._speedups._records import (
    ErrorItem,
    FrameError,
    InvokeItem,
    ResultItem,
    StreamCall,
    StreamOutcome,
)

_TRUE = frozenset({"1", "true", "yes", "on"})


def _extensions_disabled() -> bool:
    return os.environ.get("AGNT5_NO_EXTENSIONS", "").strip().lower() in _TRUE


_FRAMES = frozenset(
    {
        "decode_coordinator_message",
        "decode_stream_calls",
        "decode_stream_outcomes",
        "decode_worker_message",
        "encode_invoke_batch",
        "encode_result_batch",
        "encode_stream_calls",
        "encode_stream_outcomes",
    }
)

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
        from agnt5._speedups._missing import warning_for

        if (warning := warning_for(exc)) is not None:
            logging.getLogger("agnt5").warning("%s", warning)
        from agnt5._speedups._dispatch_py import (
            Handler,
            decode_json,
            dispatch,
            encode_json,
            lookup,
        )

        USE_EXTENSIONS = False


def __getattr__(name: str) -> Any:
    """The frame codec's functions, imported on first use from the selected implementation."""
    if name not in _FRAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module: Any = None
    if USE_EXTENSIONS:
        try:
            module = importlib.import_module("agnt5._speedups._frames")
        except ImportError as exc:
            logging.getLogger("agnt5").warning(
                "agnt5: compiled frame codec unavailable (%s); using the pure-Python fallback", exc
            )
    if module is None:
        module = importlib.import_module("agnt5._speedups._frames_py")
    globals().update({each: getattr(module, each) for each in _FRAMES})
    return globals()[name]
