"""The twins: compiled hot-path modules and their pure-Python twins, one choice for all of them.

=============  ================  ==================================================
compiled       pure Python       what
=============  ================  ==================================================
``_dispatch``  ``_dispatch_py``  decode JSON input, bind arguments, call, encode
``_frames``    ``_frames_py``    the frame codec of the batched gRPC streams
``_stats``     ``_stats_py``     invocation counts and duration histograms (telemetry)
=============  ================  ==================================================

Every compiled module loads, or none is used: `USE_EXTENSIONS` says which, and it is never True
while one twin fell back. ``AGNT5_NO_EXTENSIONS=1`` forces the pure twins; a compiled module that
fails to import falls back, with one warning when the build meant to compile it (`_missing`).
The pure modules document the API (type checkers always see them); the compiled ones match them
name for name, result for result, error for error.
The frame codec's functions load on first use, as the pure codec needs protobuf and
``import agnt5`` stays light. Both dispatchers read `_plan` (binding plans, built at
registration) and raise the messages in `_common`.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from agnt5.config import env_flag

__all__ = [
    "USE_EXTENSIONS",
    "FunctionStats",
    "Handler",
    "HandlerAPI",
    "decode_coordinator_message",
    "decode_json",
    "decode_stream_calls",
    "decode_stream_outcomes",
    "decode_worker_message",
    "encode_invoke_batch",
    "encode_json",
    "encode_result_batch",
    "encode_stream_calls",
    "encode_stream_outcomes",
]

USE_EXTENSIONS = not env_flag("AGNT5_NO_EXTENSIONS")
"""Whether the compiled twins are in use (all of them), else the pure-Python ones."""

if TYPE_CHECKING or not USE_EXTENSIONS:
    from agnt5._speedups._dispatch_py import Handler, decode_json, encode_json
    from agnt5._speedups._stats_py import FunctionStats
else:
    try:
        import agnt5._speedups._frames  # noqa: F401 - loaded now, so a broken one falls back here
        from agnt5._speedups._dispatch import Handler, decode_json, encode_json
        from agnt5._speedups._stats import FunctionStats
    except ImportError as exc:
        from agnt5._speedups._missing import warning_for

        if (warning := warning_for(exc)) is not None:
            logging.getLogger("agnt5").warning("%s", warning)
        USE_EXTENSIONS = False
        from agnt5._speedups._dispatch_py import Handler, decode_json, encode_json
        from agnt5._speedups._stats_py import FunctionStats

if TYPE_CHECKING:
    from agnt5._speedups._dispatch_py import HandlerAPI
    from agnt5._speedups._frames_py import (
        decode_coordinator_message,
        decode_stream_calls,
        decode_stream_outcomes,
        decode_worker_message,
        encode_invoke_batch,
        encode_result_batch,
        encode_stream_calls,
        encode_stream_outcomes,
    )

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


def __getattr__(name: str) -> Any:
    """The frame codec's functions, from the chosen twin, imported on first use."""
    if name == "HandlerAPI":  # a typing Protocol: the pure module defines it for both twins
        return importlib.import_module(f"{__name__}._dispatch_py").HandlerAPI
    if name not in _FRAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    twin = "_frames" if USE_EXTENSIONS else "_frames_py"
    module = importlib.import_module(f"{__name__}.{twin}")
    globals().update({each: getattr(module, each) for each in _FRAMES})
    return globals()[name]
