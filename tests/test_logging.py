"""`agnt5.logging`: JSON lines field by field, invocation identity, idempotent install and clean removal."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from agnt5 import Context, function
from agnt5._pipeline import Pipeline
from agnt5._registry import REGISTRY
from agnt5.config import WorkerConfig
from agnt5.logging import install_opentelemetry_logging, remove_opentelemetry_logging
from agnt5.telemetry import create_instrumentation
from agnt5.testing import invoke

_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    """A user-style module logger, left exactly as found."""
    logger = logging.getLogger("tests.app")
    yield logger
    remove_opentelemetry_logging(logger)
    remove_opentelemetry_logging()
    assert not logger.handlers and not logging.getLogger("agnt5").handlers


def _capture(handler: logging.Handler) -> io.StringIO:
    stream = io.StringIO()
    handler.setStream(stream)  # type: ignore[attr-defined]
    return stream


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_has_core_fields_and_every_extra(app_logger: logging.Logger) -> None:
    stream = _capture(
        install_opentelemetry_logging(app_logger, log_format="json", service_name="svc")
    )
    app_logger.info("hello %s", "world", extra={"data_size": 42, "tags": ["a"], "obj": object})
    (line,) = _lines(stream)
    assert _TIMESTAMP.match(line.pop("timestamp"))
    assert line == {
        "level": "INFO",
        "logger": "tests.app",
        "message": "hello world",
        "invocation_id": None,
        "service_name": "svc",
        "function_name": None,
        "data_size": 42,
        "tags": ["a"],
        "obj": str(object),
    }


def test_json_line_carries_exception_text(app_logger: logging.Logger) -> None:
    stream = _capture(install_opentelemetry_logging(app_logger, log_format="json"))
    try:
        raise ValueError("boom")
    except ValueError:
        app_logger.exception("failed", extra={"big": 2**70})
    (line,) = _lines(stream)
    assert line["level"] == "ERROR"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("ValueError: boom")
    assert line["big"] == 2**70


def test_json_line_has_trace_ids_while_a_span_is_active(app_logger: logging.Logger) -> None:
    stream = _capture(install_opentelemetry_logging(app_logger, log_format="json"))
    with TracerProvider().get_tracer("t").start_as_current_span("work") as span:
        app_logger.warning("inside")
    app_logger.warning("outside")
    inside, outside = _lines(stream)
    context = span.get_span_context()
    assert (inside["trace_id"], inside["span_id"]) == (
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
    )
    assert "trace_id" not in outside and "span_id" not in outside


def test_format_comes_from_agnt5_log_format(
    app_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGNT5_LOG_FORMAT", "json")
    stream = _capture(install_opentelemetry_logging(app_logger))
    app_logger.info("as json")
    assert _lines(stream)[0]["message"] == "as json"
    monkeypatch.setenv("AGNT5_LOG_FORMAT", "text")
    stream = _capture(
        install_opentelemetry_logging(
            app_logger, format_string="%(levelname)s|%(name)s|%(message)s"
        )
    )
    app_logger.info("as text")
    assert stream.getvalue() == "INFO|tests.app|as text\n"
    with pytest.raises(ValueError, match="log_format"):
        install_opentelemetry_logging(app_logger, log_format="xml")


def test_structured_logging_example(registry: None, app_logger: logging.Logger) -> None:
    @function()
    def logged_function(ctx: Context, data: dict) -> dict:  # type: ignore[type-arg]
        app_logger.info(
            "Processing function",
            extra={
                "invocation_id": ctx.invocation_id,
                "service_name": ctx.metadata.get("service_name"),
                "data_size": len(str(data)),
            },
        )
        app_logger.info(
            "Function completed", extra={"invocation_id": ctx.invocation_id, "success": True}
        )
        return {"processed": True}

    stream = _capture(
        install_opentelemetry_logging(
            logger=app_logger, level=logging.DEBUG, log_format="json", service_name="svc"
        )
    )
    assert invoke(logged_function, {"data": {"k": "v"}}) == {"processed": True}
    started, completed = _lines(stream)
    assert started["invocation_id"].startswith("test-")
    assert started["invocation_id"] == completed["invocation_id"]
    assert started["service_name"] == "testing"  # ctx.metadata has it: agnt5.testing's
    assert started["data_size"] == len(str({"k": "v"}))
    assert completed["success"] is True


def test_ctx_logger_and_plain_logger_share_the_invocation_id(
    registry: None, app_logger: logging.Logger
) -> None:
    @function()
    def chatty(ctx: Context) -> str:
        ctx.logger.info("from ctx", extra={"step": 1})
        app_logger.info("from module", extra={"step": 2})
        return "ok"

    config = WorkerConfig.resolve({}, service_name="orders", log_format="json")
    instrumentation = create_instrumentation(config)
    assert instrumentation is not None  # json logs: the invocation scope is worth setting
    sdk_stream = _capture(install_opentelemetry_logging(log_format="json"))
    app_stream = _capture(install_opentelemetry_logging(app_logger, log_format="json"))
    route = Pipeline("orders", REGISTRY, telemetry=instrumentation).route("chatty")
    result = asyncio.run(route.run(b"", "inv-42"))
    assert result == b'"ok"'
    (from_ctx,) = _lines(sdk_stream)
    (from_module,) = _lines(app_stream)
    assert from_ctx["logger"] == "agnt5.function.chatty"
    for line, step in ((from_ctx, 1), (from_module, 2)):
        assert (line["invocation_id"], line["service_name"], line["function_name"]) == (
            "inv-42",
            "orders",
            "chatty",
        )
        assert line["step"] == step
    app_logger.info("after")
    assert _lines(app_stream)[-1]["invocation_id"] is None


def test_installing_twice_does_not_duplicate_and_remove_restores(
    app_logger: logging.Logger,
) -> None:
    app_logger.setLevel(logging.ERROR)
    install_opentelemetry_logging(app_logger, level=logging.DEBUG)
    stream = _capture(install_opentelemetry_logging(app_logger, level="INFO", log_format="json"))
    assert len(app_logger.handlers) == 1 and app_logger.level == logging.INFO
    app_logger.info("once")
    app_logger.debug("filtered")
    assert [line["message"] for line in _lines(stream)] == ["once"]
    remove_opentelemetry_logging(app_logger)
    assert app_logger.handlers == [] and app_logger.level == logging.ERROR
    app_logger.setLevel(logging.NOTSET)


def test_nested_installs_write_each_record_once(app_logger: logging.Logger) -> None:
    child = logging.getLogger("tests.app.child")
    outer = _capture(install_opentelemetry_logging(app_logger, log_format="json"))
    inner = _capture(install_opentelemetry_logging(child, log_format="json"))
    try:
        child.info("from child")
        app_logger.info("from parent")
    finally:
        remove_opentelemetry_logging(child)
    assert [line["message"] for line in _lines(inner)] == ["from child"]
    assert [line["message"] for line in _lines(outer)] == ["from parent"]


def test_default_target_is_the_sdk_logger_never_root(app_logger: logging.Logger) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    handler = install_opentelemetry_logging(level="DEBUG")
    assert logging.getLogger("agnt5").handlers == [handler]
    assert logging.getLogger("agnt5").level == logging.DEBUG
    assert (root.handlers, root.level) == (handlers, level)
    remove_opentelemetry_logging()
    assert logging.getLogger("agnt5").level == logging.NOTSET


def test_records_go_to_an_opentelemetry_logger_provider(app_logger: logging.Logger) -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    _capture(
        install_opentelemetry_logging(app_logger, logger_provider=provider, service_name="svc")
    )
    with TracerProvider().get_tracer("t").start_as_current_span("work") as span:
        app_logger.warning("to otel", extra={"data_size": 7, "obj": object})
    try:
        raise KeyError("missing")
    except KeyError:
        app_logger.exception("failed")
    warning, error = (item.log_record for item in exporter.get_finished_logs())
    assert (warning.body, warning.severity_text, warning.severity_number.name) == (
        "to otel",
        "WARNING",
        "WARN",
    )
    assert warning.trace_id == span.get_span_context().trace_id
    assert warning.attributes is not None
    assert dict(warning.attributes) | {"code.line.number": 0} == {
        "data_size": 7,
        "obj": str(object),
        "service_name": "svc",
        "code.file.path": __file__,
        "code.function.name": "test_records_go_to_an_opentelemetry_logger_provider",
        "code.line.number": 0,
    }
    assert error.severity_number.name == "ERROR"
    assert error.attributes is not None
    assert (error.attributes["exception.type"], error.attributes["exception.message"]) == (
        "KeyError",
        "'missing'",
    )
    assert str(error.attributes["exception.stacktrace"]).endswith("KeyError: 'missing'\n")
    remove_opentelemetry_logging(app_logger)
    app_logger.warning("not any more")
    assert len(exporter.get_finished_logs()) == 2
    provider.shutdown()
