"""Forward `logging` records to an OpenTelemetry logger provider through the logs bridge API."""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry._logs import SeverityNumber

from agnt5.telemetry._fields import extra_fields

__all__ = ["OtelLogBridge"]

_SEVERITIES = (
    (logging.CRITICAL, SeverityNumber.FATAL),
    (logging.ERROR, SeverityNumber.ERROR),
    (logging.WARNING, SeverityNumber.WARN),
    (logging.INFO, SeverityNumber.INFO),
    (logging.DEBUG, SeverityNumber.DEBUG),
)
_PRIMITIVES = (str, bool, int, float)


class OtelLogBridge(logging.Handler):
    """A handler emitting each record as an OpenTelemetry log record, in the current trace context."""

    def __init__(self, logger_provider: Any) -> None:
        super().__init__()
        self.logger_provider = logger_provider

    def emit(self, record: logging.LogRecord) -> None:
        self.logger_provider.get_logger(record.name).emit(
            timestamp=int(record.created * 1e9),
            observed_timestamp=time.time_ns(),
            context=otel_context.get_current(),
            severity_number=_severity(record.levelno),
            severity_text=record.levelname,
            body=record.getMessage(),
            attributes=_attributes(record),
        )


def _severity(level: int) -> SeverityNumber:
    return next((number for floor, number in _SEVERITIES if level >= floor), SeverityNumber.TRACE)


def _attributes(record: logging.LogRecord) -> dict[str, Any]:
    """Every ``extra=`` field (non-primitive values as text), the code location and the exception."""
    attributes = {
        key: value if isinstance(value, _PRIMITIVES) else str(value)
        for key, value in extra_fields(record)
        if value is not None
    }
    attributes["code.file.path"] = record.pathname
    attributes["code.function.name"] = record.funcName
    attributes["code.line.number"] = record.lineno
    if record.exc_info and record.exc_info[0] is not None:
        attributes["exception.type"] = record.exc_info[0].__name__
        attributes["exception.message"] = str(record.exc_info[1])
        attributes["exception.stacktrace"] = "".join(traceback.format_exception(*record.exc_info))
    return attributes
