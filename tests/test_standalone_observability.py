"""A standalone worker's health endpoints, JSON logs and trace spans, with real processes."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from _asgi_support import SPANS_TO_FILE
from _coordinator_support import coordinator_process, unique
from _metrics import check_with_promtool, samples
from test_standalone_worker import free_port, log_of, wait_for_service, worker_process

from agnt5.client import Client

MODULE = SPANS_TO_FILE + textwrap.dedent(
    """
    import logging

    from agnt5 import function

    log = logging.getLogger("observed_app")


    @function()
    def observed(ctx, data: dict) -> dict:
        ctx.logger.info("from the context logger", extra={"data_size": len(data)})
        log.info("from a module logger", extra={"step": "done"})
        return {"ok": True}


    @function()
    def failing(x: int) -> int:
        raise ValueError("boom")


    @function()
    def web_stack_loaded() -> list[str]:
        import sys

        return sorted({"starlette", "uvicorn"} & set(sys.modules))
    """
)


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "observed_app.py"
    path.write_text(MODULE)
    return path


def status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return 0


def wait_for_status(url: str, expected: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded by the deadline
        if status(url) == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer {expected} in {timeout}s (last {status(url)})")


def test_health_ready_and_metrics_follow_the_coordinator(module: Path) -> None:
    service, health_port, grpc_port = unique(), free_port(), free_port()
    base = f"http://127.0.0.1:{health_port}"
    endpoint = f"http://127.0.0.1:{grpc_port}"
    flags = ("--health-host", "127.0.0.1", "--health-port", str(health_port))  # over the env's 0
    with worker_process(module, endpoint, service, *flags) as worker:
        wait_for_status(f"{base}/health", 200)
        assert status(f"{base}/ready") == 503  # no coordinator yet
        before = httpx.get(f"{base}/metrics", timeout=5).text
        with (
            coordinator_process("--port", str(grpc_port)) as coordinator,
            Client(endpoint) as client,
        ):
            wait_for_service(client, service)
            wait_for_status(f"{base}/ready", 200)
            assert client.invoke(service, "observed", {"a": 1}) == {"ok": True}
            with pytest.raises(Exception, match="boom"):
                client.invoke(service, "failing", 1)
            # the health server runs on uvicorn; Starlette stays the ASGI runtime's
            assert client.invoke(service, "web_stack_loaded") == ["uvicorn"]
            metrics = httpx.get(f"{base}/metrics", timeout=5).text
            coordinator.process.kill()
            coordinator.process.wait(10)
        wait_for_status(f"{base}/ready", 503)
        assert status(f"{base}/health") == 200
    for text in (before, metrics):
        check_with_promtool(text)
    zero, found = samples(before), samples(metrics)
    observed = _labels(function="observed", outcome="success")
    assert zero["agnt5_invocations_total", observed] == 0  # a series before the first invocation
    assert found["agnt5_invocations_total", observed] == 1
    failed = _labels(function="failing", outcome="error", error_code="FUNCTION_FAILED")
    assert found["agnt5_invocations_total", failed] == 1
    assert found["agnt5_invocations_in_flight", _labels(function="observed")] == 0
    assert found["agnt5_invocation_duration_seconds_count", observed] == 1
    assert "registered" in log_of(worker)
    assert f"health endpoints on 127.0.0.1:{health_port}" in log_of(worker)


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset((f"agnt5_{key}", value) for key, value in labels.items())


def test_json_logs_carry_the_invocation_id(module: Path) -> None:
    service = unique()
    with coordinator_process() as coordinator, Client(coordinator.endpoint) as client:
        with worker_process(
            module, coordinator.endpoint, service, "--log-level", "INFO", AGNT5_LOG_FORMAT="json"
        ) as worker:
            wait_for_service(client, service)
            invocation_id = client.submit(service, "observed", {"a": 1, "b": 2})
            assert client.result(invocation_id, timeout=10) == {"ok": True}
    records = [json.loads(line) for line in log_of(worker).splitlines() if line.startswith("{")]
    by_message = {record["message"]: record for record in records}
    from_ctx = by_message["from the context logger"]
    assert from_ctx["invocation_id"] == invocation_id
    assert from_ctx["service_name"] == service
    assert from_ctx["data_size"] == 2
    assert from_ctx["level"] == "INFO" and "timestamp" in from_ctx
    from_module = by_message["from a module logger"]
    assert from_module["invocation_id"] == invocation_id
    assert from_module["logger"] == "observed_app"
    assert from_module["step"] == "done"


def test_invocation_span_is_a_child_of_the_callers_traceparent(
    module: Path, tmp_path: Path
) -> None:
    service = unique()
    spans = tmp_path / "spans.jsonl"
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    with coordinator_process() as coordinator, Client(coordinator.endpoint) as client:
        with worker_process(module, coordinator.endpoint, service, SPANS=str(spans)):
            wait_for_service(client, service)
            response = httpx.post(
                f"{coordinator.http_url}/v1/services/{service}/functions/observed/invoke",
                json={"a": 1},
                headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            deadline = time.monotonic() + 10
            while not spans.exists() and time.monotonic() < deadline:  # bounded
                time.sleep(0.05)
    span = json.loads(spans.read_text().splitlines()[0])
    assert span["name"] == "invoke observed"
    assert span["context"]["trace_id"] == f"0x{trace_id}"
    assert span["parent_id"] == f"0x{parent_id}"
    assert span["attributes"]["agnt5.function"] == "observed"
    assert span["attributes"]["agnt5.outcome"] == "success"
