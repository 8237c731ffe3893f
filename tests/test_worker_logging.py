"""Logging as the docs show it, in real worker processes: the application's module loggers,
``logging.basicConfig``, the invocation id in text and JSON lines, the failure record,
``AGNT5_LOG_LEVEL=WARN``."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
from _coordinator_support import agnt5_env, coordinator_process, unique
from _processes import spawn, stop
from test_standalone_worker import wait_for_service

from agnt5.client import Client
from agnt5.errors import FunctionFailedError

# The docs' Structured Logging example, served the docs' way (asyncio.run + await worker.run()).
PROGRAM = textwrap.dedent(
    """
    import asyncio
    import logging
    import os
    import sys

    from agnt5 import Worker, function

    if os.environ.get("BASIC_CONFIG"):
        logging.basicConfig(level=logging.INFO)
    if os.environ.get("TRACING"):
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        trace.set_tracer_provider(TracerProvider())

    logger = logging.getLogger(__name__)

    @function()
    def logged_function(ctx, data: dict) -> dict:
        # Structured logging with context
        logger.info(
            "Processing function",
            extra={
                "invocation_id": ctx.invocation_id,
                "service_name": ctx.metadata.get("service_name"),
                "data_size": len(str(data))
            }
        )

        result = {"processed": True}

        logger.info(
            "Function completed",
            extra={
                "invocation_id": ctx.invocation_id,
                "success": True
            }
        )

        return result

    @function()
    def plain(data: dict) -> str:
        logger.info("no context here")
        return "ok"

    @function()
    def identity(ctx, data: dict) -> dict:
        return {key: ctx.metadata.get(key) for key in ("service_name", "function_name")}

    @function()
    def failing_function(data: dict) -> dict:
        raise ValueError("Something went wrong")

    async def main():
        worker = Worker(service_name=sys.argv[1], coordinator_endpoint=sys.argv[2])
        await worker.run()

    if __name__ == "__main__":
        asyncio.run(main())
    """
)


def run_worker(
    tmp_path: Path, calls: list[tuple[str, Any]], service: str = "", **env: str
) -> tuple[str, list[Any]]:
    """Serve PROGRAM as ``service`` (default: a new name), make ``calls`` (function, input),
    stop it; its stderr and the outcomes."""
    script, service = tmp_path / "logged_worker.py", service or unique()
    script.write_text(PROGRAM)
    log = tmp_path / "stderr.txt"
    outcomes: list[Any] = []
    with (
        coordinator_process() as coordinator,
        Client(coordinator.endpoint, timeout=30) as client,
        open(log, "wb") as stderr,
    ):
        worker = spawn(
            [sys.executable, str(script), service, coordinator.endpoint],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=agnt5_env(**env),
            cwd=tmp_path,
        )
        try:
            wait_for_service(client, service)
            for function, value in calls:
                try:
                    outcomes.append(client.invoke(service, function, value))
                except FunctionFailedError as error:
                    outcomes.append(error)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(20) == 0
        finally:
            stop(worker, grace=0)
    return log.read_text(), outcomes


def json_lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_module_logger_lines_appear_in_json_with_extras_and_the_invocation_id(
    tmp_path: Path,
) -> None:
    calls = [("logged_function", {"data": {"k": "v"}}), ("plain", {"data": {}})]
    service = unique()
    text, outcomes = run_worker(tmp_path, calls, service, AGNT5_LOG_FORMAT="json")
    assert outcomes == [{"processed": True}, "ok"]
    lines = {line["message"]: line for line in json_lines(text)}
    started, completed = lines["Processing function"], lines["Function completed"]
    assert started["logger"] == "logged_worker" or started["logger"] == "__main__"
    assert started["data_size"] == len(str({"k": "v"}))
    assert started["service_name"] == completed["service_name"] == service
    assert started["invocation_id"] == completed["invocation_id"] and completed["success"] is True
    plain = lines["no context here"]  # no extra: the invocation scope names it
    assert plain["invocation_id"] and plain["function_name"] == "plain"
    assert plain["invocation_id"] != started["invocation_id"]


def test_the_context_metadata_names_the_service_and_function(tmp_path: Path) -> None:
    service = unique()
    _, outcomes = run_worker(tmp_path, [("identity", {"data": {}})], service)
    assert outcomes == [{"service_name": service, "function_name": "identity"}]


def test_text_lines_logged_during_an_invocation_show_its_id(tmp_path: Path) -> None:
    text, _ = run_worker(tmp_path, [("plain", {"data": {}})])
    (line,) = [line for line in text.splitlines() if "no context here" in line]
    assert line.endswith("]: no context here"), line
    invocation_id = line.rsplit("[", 1)[1].split("]")[0]
    assert len(invocation_id) == 32, line
    registered = [line for line in text.splitlines() if "registered 4 component(s)" in line]
    assert len(registered) == 1 and "[" not in registered[0]


def test_with_basic_config_every_line_is_printed_once(tmp_path: Path) -> None:
    text, _ = run_worker(tmp_path, [("plain", {"data": {}})], BASIC_CONFIG="1")
    assert text.count("registered 4 component(s)") == 1, text
    assert text.count("no context here") == 1, text
    assert "INFO:agnt5.worker:registered" in text  # in the application's own format


def test_the_failure_record_names_the_function_and_the_span(tmp_path: Path) -> None:
    text, outcomes = run_worker(
        tmp_path, [("failing_function", {"data": {}})], AGNT5_LOG_FORMAT="json", TRACING="1"
    )
    assert isinstance(outcomes[0], FunctionFailedError)
    (failure,) = [line for line in json_lines(text) if line["level"] == "ERROR"]
    assert failure["message"] == "Function failing_function failed: Something went wrong"
    assert failure["function_name"] == "failing_function"
    assert len(failure["trace_id"]) == 32 and len(failure["span_id"]) == 16
    assert failure["exception"].endswith("ValueError: Something went wrong")


@pytest.mark.parametrize("level", ["WARN", "warning"])
def test_log_level_warn_works_as_in_logging(tmp_path: Path, level: str) -> None:
    text, outcomes = run_worker(tmp_path, [("plain", {"data": {}})], AGNT5_LOG_LEVEL=level)
    assert outcomes == ["ok"]
    assert "registered" not in text and "no context here" not in text, text
