"""The log handler behind `agnt5.logging`: text or JSON lines, and OpenTelemetry logs when configured."""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import sys
from typing import Any

import orjson

from agnt5 import config
from agnt5.telemetry._fields import extra_fields

__all__ = [
    "INVOCATION_SCOPE",
    "bind_invocation",
    "install_opentelemetry_logging",
    "install_worker_logging",
    "remove_opentelemetry_logging",
    "remove_worker_logging",
    "unbind_invocation",
]

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_TEXT_FORMAT_IN_INVOCATION = "%(asctime)s %(levelname)s %(name)s [%(invocation_id)s]: %(message)s"
_EMITTED = "_agnt5_emitted"
_IDENTITY = ("invocation_id", "service_name", "function_name")

INVOCATION_SCOPE: contextvars.ContextVar[tuple[str, str, str] | None] = contextvars.ContextVar(
    "agnt5_invocation", default=None
)
"""(invocation_id, service_name, function_name) of the invocation running in this context;
`bind_invocation` sets it (the hot path sets it directly, saving the calls)."""


def bind_invocation(
    invocation_id: str, service_name: str, function_name: str
) -> contextvars.Token[tuple[str, str, str] | None]:
    """Mark the current context as running an invocation; pass the token to `unbind_invocation`."""
    return INVOCATION_SCOPE.set((invocation_id, service_name, function_name))


def unbind_invocation(token: contextvars.Token[tuple[str, str, str] | None]) -> None:
    """End the scope opened by `bind_invocation`."""
    INVOCATION_SCOPE.reset(token)


class _JsonFormatter(logging.Formatter):
    """One JSON object per record: core fields, invocation identity, trace ids and every ``extra=`` key."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "invocation_id": getattr(record, "invocation_id", None),
            "service_name": getattr(record, "service_name", None),
            "function_name": getattr(record, "function_name", None),
        }
        ids = _span_ids()
        if ids is not None:
            doc["trace_id"], doc["span_id"] = ids
        for key, value in extra_fields(record):
            if key not in doc:
                doc[key] = value
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack_info"] = self.formatStack(record.stack_info)
        return _dumps(doc)


class _TextFormatter(logging.Formatter):
    """`_TEXT_FORMAT`, with the invocation id in brackets on records logged during one."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)
        self._in_invocation = logging.Formatter(_TEXT_FORMAT_IN_INVOCATION)

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "invocation_id", None) is not None:
            return self._in_invocation.format(record)
        return super().format(record)


class _InvocationFilter(logging.Filter):
    """Fill a record's missing invocation identity from the current scope, or the service default."""

    def __init__(self, service_name: str | None) -> None:
        super().__init__()
        self._service_name = service_name

    def filter(self, record: logging.LogRecord) -> bool:
        current = INVOCATION_SCOPE.get() or (None, self._service_name, None)
        for key, value in zip(_IDENTITY, current, strict=True):
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record once to stderr (unless ``quiet``) and, when configured, to an
    OpenTelemetry logger provider. ``worker``: installed by a running worker, which removes it."""

    def __init__(
        self,
        otel: logging.Handler | None,
        previous_level: int,
        *,
        quiet: bool = False,
        worker: bool = False,
    ) -> None:
        super().__init__()
        self.otel = otel
        self.previous_level = previous_level
        self.quiet = quiet
        self.worker = worker

    def handle(self, record: logging.LogRecord) -> bool:
        if getattr(record, _EMITTED, False):
            return False
        handled = bool(super().handle(record))
        if handled and not self.quiet:
            setattr(record, _EMITTED, True)
        return handled

    def emit(self, record: logging.LogRecord) -> None:
        if not self.quiet:
            super().emit(record)
        if self.otel is not None:
            try:
                self.otel.handle(record)
            except Exception:
                self.handleError(record)


def install_opentelemetry_logging(
    logger: logging.Logger | None = None,
    level: int | str = logging.INFO,
    format_string: str | None = None,
    *,
    log_format: str | None = None,
    service_name: str | None = None,
    logger_provider: Any = None,
) -> logging.Handler:
    """Install (or replace) this module's handler on ``logger`` (default ``"agnt5"``) and return it.

    ``level`` becomes the logger's and the handler's level. ``log_format`` is ``"text"`` (with
    ``format_string``; by default the invocation id shows in brackets on lines logged during
    one) or ``"json"``; it defaults to ``AGNT5_LOG_FORMAT``. Records also go to
    ``logger_provider``, else to the global OpenTelemetry logger provider when one is configured
    and ``AGNT5_DISABLE_TELEMETRY`` is not set.
    """
    return _install(logger, level, format_string, log_format, service_name, logger_provider)


def install_worker_logging(
    level: int | str,
    log_format: str,
    service_name: str,
    logger_provider: Any = None,
) -> None:
    """The log handler of a running worker, until `remove_worker_logging`.

    When the application configured no logging, the handler goes on the root logger, so the
    application's own module loggers are printed too (``logger.info`` in a handler shows, with
    its ``extra`` and the invocation's id), at ``level``. When the application configured
    logging itself (``logging.basicConfig()``, say), its handlers print agnt5's records, once;
    the worker's handler on the ``"agnt5"`` logger then only adds the invocation identity to
    them and sends them to OpenTelemetry. Handlers ``agnt5`` commands installed are kept.
    """
    root = logging.getLogger()
    if _installed(root):  # the agnt5 command line set the process's logging up
        return
    configured = any(not isinstance(handler, _Handler) for handler in root.handlers)
    _install(
        logging.getLogger("agnt5") if configured else root,
        level,
        None,
        log_format,
        service_name,
        logger_provider,
        quiet=configured,
        worker=True,
    )


def remove_worker_logging() -> None:
    """Remove what `install_worker_logging` installed."""
    for logger in (logging.getLogger(), logging.getLogger("agnt5")):
        for handler in _installed(logger):
            if handler.worker:
                _remove(logger, handler)


def _install(
    logger: logging.Logger | None,
    level: int | str,
    format_string: str | None,
    log_format: str | None,
    service_name: str | None,
    logger_provider: Any,
    *,
    quiet: bool = False,
    worker: bool = False,
) -> logging.Handler:
    target = logging.getLogger("agnt5") if logger is None else logger
    existing = _installed(target)
    previous_level = existing[0].previous_level if existing else target.level
    remove_opentelemetry_logging(target)
    chosen = (log_format or config.setting("log_format")).strip().lower()
    if chosen not in config.LOG_FORMATS:
        raise ValueError(f"log_format must be 'text' or 'json', got {chosen!r}")
    handler = _Handler(_otel_handler(logger_provider), previous_level, quiet=quiet, worker=worker)
    if chosen == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(format_string) if format_string else _TextFormatter()
        )
    handler.addFilter(_InvocationFilter(service_name or config.setting("service_name")))
    handler.setLevel(level)
    target.setLevel(level)
    target.addHandler(handler)
    return handler


def remove_opentelemetry_logging(logger: logging.Logger | None = None) -> None:
    """Remove what `install_opentelemetry_logging` installed on ``logger`` and restore its level."""
    target = logging.getLogger("agnt5") if logger is None else logger
    for handler in _installed(target):
        _remove(target, handler)


def _remove(logger: logging.Logger, handler: _Handler) -> None:
    logger.removeHandler(handler)
    logger.setLevel(handler.previous_level)
    handler.close()


def _installed(logger: logging.Logger) -> list[_Handler]:
    return [handler for handler in logger.handlers if isinstance(handler, _Handler)]


def _otel_handler(logger_provider: Any) -> logging.Handler | None:
    """A bridge to the given OpenTelemetry logger provider, else to the configured global one."""
    if logger_provider is None:
        if config.setting("disable_telemetry") or "opentelemetry._logs" not in sys.modules:
            return None  # disabled, or OpenTelemetry never imported: no global provider can be set
        from opentelemetry._logs import get_logger_provider
        from opentelemetry.sdk._logs import LoggerProvider

        logger_provider = get_logger_provider()
        if not isinstance(logger_provider, LoggerProvider):
            return None
    from agnt5.telemetry._log_bridge import OtelLogBridge

    return OtelLogBridge(logger_provider)


def _timestamp(created: float) -> str:
    moment = datetime.datetime.fromtimestamp(created, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _span_ids() -> tuple[str, str] | None:
    """The active span's hex ids; no span can be active while OpenTelemetry was never imported."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _dumps(doc: dict[str, Any]) -> str:
    try:
        return orjson.dumps(doc, default=str).decode()
    except TypeError:  # what orjson refuses outright (e.g. integers beyond 64 bits)
        return json.dumps(doc, default=str, ensure_ascii=False)
