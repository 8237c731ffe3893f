"""Which attributes of a `logging.LogRecord` are the caller's ``extra=`` fields."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

__all__ = ["extra_fields"]

_OWN = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def extra_fields(record: logging.LogRecord) -> Iterator[tuple[str, Any]]:
    """``(name, value)`` of every attribute not of the record itself nor private (``_name``)."""
    for key, value in record.__dict__.items():
        if key not in _OWN and not key.startswith("_"):
            yield key, value
