"""The documentation page's Dockerfile works for a standalone worker: examples/Dockerfile holds
it (and the worker it runs), and what its HEALTHCHECK does passes against that worker run as
the container would run it. No container engine here: the worker is a real subprocess, and the
check is the HEALTHCHECK's own curl command."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from _coordinator_support import PYTHON, agnt5_env, coordinator_process, unique
from _processes import spawn, stop
from test_standalone_worker import free_port, wait_for_service

from agnt5.client import Client

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# The Dockerfile of the page's "Container Deployment" section, line by line.
PAGE_DOCKERFILE = [
    "FROM python:3.11-slim",
    "WORKDIR /app",
    "COPY requirements.txt .",
    "RUN pip install --no-cache-dir -r requirements.txt",
    "COPY . .",
    "HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 \\",
    "  CMD curl -f http://localhost:8000/health || exit 1",
    'CMD ["python", "worker.py"]',
]


def test_the_example_dockerfile_is_the_pages() -> None:
    lines = [
        line
        for line in (EXAMPLES / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    page = iter(lines)
    assert all(expected in page for expected in PAGE_DOCKERFILE), lines  # in the page's order
    added = [line for line in lines if line not in PAGE_DOCKERFILE]
    assert added == [
        "RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf "
        "/var/lib/apt/lists/*"
    ]
    assert (EXAMPLES / "requirements.txt").read_text().split() == ["agnt5"]


@contextmanager
def container_worker(
    app: Path, endpoint: str, service: str, health_port: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``python worker.py`` in the app directory, as the image's CMD runs it."""
    log = open(app / "worker.log", "wb")
    env = agnt5_env(
        AGNT5_COORDINATOR_ENDPOINT=endpoint,
        AGNT5_SERVICE_NAME=service,
        AGNT5_HEALTH_PORT=health_port,
    )
    process = spawn([*PYTHON, "worker.py"], cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop(process)
        log.close()


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """The image's /app: what ``COPY . .`` copies from examples/."""
    directory = tmp_path / "app"
    shutil.copytree(EXAMPLES, directory)
    return directory


def healthcheck(port: int) -> int:
    """The HEALTHCHECK's command (its port aside); its exit status."""
    curl = shutil.which("curl")
    if curl is None:  # the same request as the command, without curl
        try:
            return 0 if httpx.get(f"http://localhost:{port}/health", timeout=10).is_success else 1
        except httpx.TransportError:
            return 1
    done = subprocess.run([curl, "-f", "-s", f"http://localhost:{port}/health"], timeout=20)
    return done.returncode


def _eventually_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # bounded: the HEALTHCHECK's start period, and more
        if healthcheck(port) == 0:
            return
        assert process.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"the health check never passed: {log.read_text()}")


def test_the_healthcheck_passes_against_the_example_worker(app: Path) -> None:
    service, port = unique(), free_port()
    with coordinator_process() as coordinator, Client(coordinator.endpoint) as client:
        with container_worker(app, coordinator.endpoint, service, str(port)) as worker:
            _eventually_healthy(port, worker, app / "worker.log")
            wait_for_service(client, service)
            assert client.invoke(service, "hello", {"name": "Ada"}) == "Hello, Ada!"
            ready = httpx.get(f"http://localhost:{port}/ready", timeout=5)
            assert ready.json() == {"status": "ready"}
            coordinator.kill()
            time.sleep(0.5)
            assert healthcheck(port) == 0  # liveness: the worker itself is fine
            assert worker.poll() is None


def _port_8000_free() -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", 8000))
        except OSError:
            return False
    return True


def test_the_worker_serves_health_on_8000_by_default(app: Path) -> None:
    """The HEALTHCHECK exactly as written: nothing tells the worker which port to use."""
    if not _port_8000_free():
        pytest.skip("port 8000 is in use on this machine; the other tests use their own ports")
    endpoint = f"http://127.0.0.1:{free_port()}"  # no coordinator: liveness alone
    with container_worker(app, endpoint, unique(), "") as worker:
        _eventually_healthy(8000, worker, app / "worker.log")
        assert httpx.get("http://localhost:8000/ready", timeout=5).status_code == 503


def test_a_busy_health_port_is_a_warning_and_zero_turns_it_off(app: Path) -> None:
    service = unique()
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        with coordinator_process() as coordinator, Client(coordinator.endpoint) as client:
            for port in (busy, "0"):
                with container_worker(app, coordinator.endpoint, service, port):
                    wait_for_service(client, service)
                    assert client.invoke(service, "hello", {"name": port}) == f"Hello, {port}!"
                log = (app / "worker.log").read_text()
                assert "Traceback" not in log
                if port == busy:
                    assert f"health endpoints not served: cannot listen on 0.0.0.0:{busy}" in log
                else:
                    assert "health endpoints" not in log
