"""The example programs run unchanged, and every function answers through ``agnt5 invoke``,
`Client` and curl: the standalone worker through a coordinator, the ASGI app under uvicorn."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _asgi_support import free_port
from _coordinator_support import PYTHON, CoordinatorProcess, agnt5_env, coordinator_process
from _processes import spawn, stop
from test_standalone_worker import wait_for_service

from agnt5.client import Client

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)")

# (function, input, result) for each function of examples/sdk_worker.py
CALLS = [
    ("greet", {"name": "Ada"}, "Hello, Ada!"),
    ("add_numbers", {"a": 2, "b": 3}, 5),
    (
        "process_data",
        {"data": {"b": 1, "a": 2}},
        {"processed": True, "keys": ["a", "b"], "size": 2},
    ),
]


def curl(*args: str) -> str:
    assert CURL is not None
    done = subprocess.run([CURL, "-sS", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def sdk_worker() -> Iterator[CoordinatorProcess]:
    """examples/sdk_worker.py as written, pointed at a coordinator by the environment."""
    with coordinator_process() as coordinator:
        worker = spawn(
            [sys.executable, str(EXAMPLES / "sdk_worker.py")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=agnt5_env(AGNT5_COORDINATOR_ENDPOINT=coordinator.endpoint),
        )
        try:
            with Client(coordinator.endpoint) as client:
                wait_for_service(client, "test-service")
            yield coordinator
            worker.send_signal(signal.SIGINT)
            _, err = worker.communicate(timeout=30)
            assert worker.returncode == 0, err.decode()
            assert "Traceback" not in err.decode()
        finally:
            stop(worker)


@pytest.mark.parametrize(("function", "value", "expected"), CALLS)
def test_sdk_worker_answers_agnt5_invoke(
    sdk_worker: CoordinatorProcess, function: str, value: object, expected: object
) -> None:
    done = subprocess.run(
        [*PYTHON, "-m", "agnt5", "invoke", "test-service", function, json.dumps(value),
         "--endpoint", sdk_worker.endpoint],
        capture_output=True,
        text=True,
        env=agnt5_env(),
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected


@pytest.mark.parametrize(("function", "value", "expected"), CALLS)
def test_sdk_worker_answers_the_client(
    sdk_worker: CoordinatorProcess, function: str, value: object, expected: object
) -> None:
    with Client(sdk_worker.endpoint) as client:
        assert client.invoke("test-service", function, value) == expected


@needs_curl
@pytest.mark.parametrize(("function", "value", "expected"), CALLS)
def test_sdk_worker_answers_curl(
    sdk_worker: CoordinatorProcess, function: str, value: object, expected: object
) -> None:
    url = f"{sdk_worker.http_url}/v1/services/test-service/functions/{function}/invoke"
    body = curl(url, "-H", "content-type: application/json", "-d", json.dumps(value))
    assert json.loads(body)["result"] == expected


@needs_curl
def test_sdk_asgi_app_under_uvicorn_answers_curl() -> None:
    port = free_port()
    server = spawn(
        [sys.executable, "-m", "uvicorn", "sdk_asgi:app", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=agnt5_env(),
        cwd=EXAMPLES,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        health = curl(
            "--retry", "50", "--retry-connrefused", "--retry-delay", "0", f"{base}/health"
        )
        assert json.loads(health)["status"] == "healthy"
        names = {entry["name"] for entry in json.loads(curl(f"{base}/functions"))["functions"]}
        assert names == {"web_handler", "add_numbers"}
        json_body = ["-H", "content-type: application/json", "-d"]
        web = curl(f"{base}/invoke/web_handler", *json_body, '{"user": "ada"}')
        assert json.loads(web)["result"] == {
            "message": "Hello from AGNT5!",
            "data": {"user": "ada"},
        }
        added = curl(f"{base}/invoke/add_numbers", *json_body, "[2, 3]")
        assert json.loads(added)["result"] == 5
        preflight = curl(
            "-i", "-X", "OPTIONS", f"{base}/invoke/web_handler",
            "-H", "origin: https://app.example", "-H", "access-control-request-method: POST",
        )  # fmt: skip
        assert "access-control-allow-origin: *" in preflight.lower()
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
        assert "Traceback" not in err.decode()
    finally:
        stop(server)
