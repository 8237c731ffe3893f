"""One Ctrl+C is a graceful stop everywhere: real processes, real SIGINTs.

One SIGINT behaves like SIGTERM (in-flight work finishes, ``run()`` returns, exit 0, no
traceback); a second one cancels what is still running and the process exits promptly.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from _asgi_support import free_port
from _coordinator_support import PYTHON, agnt5_env, coordinator_process, unique
from _processes import spawn, stop

from agnt5.client import Client

NAP = textwrap.dedent(
    """
    import asyncio
    import sys

    from agnt5 import Worker, function


    @function()
    async def nap(seconds: float) -> str:
        print("napping", flush=True)
        await asyncio.sleep(seconds)
        return "rested"
    """
)
WORKER = NAP + textwrap.dedent(
    """
    async def main():
        worker = Worker(service_name=sys.argv[1], coordinator_endpoint=sys.argv[2])
        await worker.run()
        print("run() returned", flush=True)


    if __name__ == "__main__":
        asyncio.run(main())
    """
)
ASGI = NAP + textwrap.dedent(
    """
    async def main():
        app = Worker("web-service", runtime="asgi", http_port=int(sys.argv[1]))
        await app.run()
        print("run() returned", flush=True)


    asyncio.run(main())
    """
)


@contextmanager
def program(path: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    process = spawn(
        [sys.executable, str(path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=agnt5_env(),
        cwd=path.parent,
    )
    try:
        yield process
    finally:
        stop(process, grace=0)


def wait_for_line(process: subprocess.Popen[bytes], text: str, timeout: float = 30) -> list[str]:
    """The lines ``process`` printed up to the first containing ``text``."""
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=_read_until, args=(process.stdout, text, lines))
    reader.start()
    reader.join(timeout)
    assert any(text in line for line in lines), "".join(lines)
    return lines


def _read_until(stream: Any, text: str, lines: list[str]) -> None:
    for raw in iter(stream.readline, b""):  # bounded by the stream's end
        lines.append(raw.decode())
        if text in lines[-1]:
            return


def finish(process: subprocess.Popen[bytes], timeout: float = 20) -> str:
    output, _ = process.communicate(timeout=timeout)
    return output.decode()


def in_background(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@contextmanager
def napper(tmp_path: Path) -> Iterator[tuple[Client, str, subprocess.Popen[bytes]]]:
    """WORKER run as a program, registered with a coordinator: a client, its service, it."""
    script, service = tmp_path / "worker.py", unique()
    script.write_text(WORKER)
    with (
        coordinator_process() as coordinator,
        Client(coordinator.endpoint, timeout=30) as client,
        program(script, service, coordinator.endpoint) as worker,
    ):
        wait_for_line(worker, "registered")
        yield client, service, worker


def test_one_sigint_drains_a_worker_run_under_asyncio_run(tmp_path: Path) -> None:
    with napper(tmp_path) as (client, service, worker):
        call, outcome = in_background(lambda: client.invoke(service, "nap", {"seconds": 1.5}))
        wait_for_line(worker, "napping")
        worker.send_signal(signal.SIGINT)
        output = finish(worker)
        call.join(30)
    assert worker.returncode == 0, output
    assert "run() returned" in output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert outcome == {"value": "rested"}


def test_a_second_sigint_cancels_in_flight_work_and_exits_at_once(tmp_path: Path) -> None:
    with napper(tmp_path) as (client, service, worker):
        client.submit(service, "nap", {"seconds": 600})
        wait_for_line(worker, "napping")
        worker.send_signal(signal.SIGINT)
        wait_for_line(worker, "stopping: SIGINT")
        worker.send_signal(signal.SIGINT)
        output = finish(worker)  # within 20 s: one SIGINT alone would drain for 30
    assert worker.returncode == 0, output
    assert "second stop request" in output and "run() returned" in output
    assert "Traceback" not in output, output


def test_agnt5_worker_stops_on_one_sigint(tmp_path: Path) -> None:
    script, service = tmp_path / "napper.py", unique()
    script.write_text(WORKER)
    with (
        coordinator_process() as coordinator,
        Client(coordinator.endpoint, timeout=30) as client,
    ):
        worker = spawn(
            [*PYTHON, "-m", "agnt5", "worker", str(script), "--service", service,
             "--endpoint", coordinator.endpoint],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=agnt5_env(),
            cwd=tmp_path,
        )  # fmt: skip
        try:
            wait_for_line(worker, "registered")
            call, outcome = in_background(lambda: client.invoke(service, "nap", {"seconds": 1}))
            wait_for_line(worker, "napping")
            worker.send_signal(signal.SIGINT)
            output = finish(worker)
            call.join(30)
        finally:
            stop(worker, grace=0)
    assert worker.returncode == 0, output
    assert "Traceback" not in output, output
    assert outcome == {"value": "rested"}


@pytest.mark.parametrize("command", ["coordinator", "dev"])
def test_agnt5_coordinator_and_dev_stop_on_one_sigint(tmp_path: Path, command: str) -> None:
    script = tmp_path / "hello_module.py"
    script.write_text(
        "from agnt5 import function\n\n@function()\ndef hi() -> str:\n    return 'hi'\n"
    )
    target = [str(script)] if command == "dev" else ["--in-memory"]
    process = spawn(
        [*PYTHON, "-m", "agnt5", command, *target, "--port", "0", "--http-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=agnt5_env(),
        cwd=tmp_path,
    )
    try:
        wait_for_line(process, "agnt5 coordinator: grpc=")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        stop(process, grace=0)
    assert process.returncode == 0, err.decode()
    assert out.decode().splitlines()[-1:] == ["agnt5 coordinator: stopped"], out.decode()
    assert "Traceback" not in err.decode() and "second stop request" not in err.decode()


def test_asgi_run_stops_on_one_sigint_and_a_second_forces_it(tmp_path: Path) -> None:
    script = tmp_path / "web.py"
    script.write_text(ASGI)
    port = free_port()
    url = f"http://127.0.0.1:{port}/invoke/nap"
    with program(script, str(port)) as app:
        wait_for_line(app, "Uvicorn running")
        call, outcome = in_background(lambda: httpx.post(url, json={"seconds": 1}, timeout=30))
        wait_for_line(app, "napping")
        app.send_signal(signal.SIGINT)
        output = finish(app)
        call.join(30)
    assert app.returncode == 0, output
    assert "run() returned" in output and "Traceback" not in output, output
    assert outcome["value"].json()["result"] == "rested"

    with program(script, str(port)) as app:
        wait_for_line(app, "Uvicorn running")
        call, outcome = in_background(lambda: httpx.post(url, json={"seconds": 600}, timeout=30))
        wait_for_line(app, "napping")
        app.send_signal(signal.SIGINT)
        wait_for_line(app, "stopping: SIGINT")
        app.send_signal(signal.SIGINT)
        output = finish(app)  # within 20 s: one SIGINT alone would drain for 30
        call.join(30)
    assert app.returncode == 0, output
    assert "run() returned" in output, output
    assert "Traceback" not in output, output
    answer = outcome["value"]  # the cancelled request is answered, not dropped
    assert (answer.status_code, answer.json()["code"]) == (503, "UNAVAILABLE")


def test_agnt5_dev_invoke_finishes_its_invocation_on_one_sigint(tmp_path: Path) -> None:
    script = tmp_path / "napper.py"
    script.write_text(WORKER)
    dev = spawn(
        [*PYTHON, "-m", "agnt5", "dev", str(script), "--port", "0", "--no-http",
         "--invoke", "nap", '{"seconds": 1}'],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=agnt5_env(),
        cwd=tmp_path,
    )  # fmt: skip
    try:
        wait_for_line(dev, "napping")
        dev.send_signal(signal.SIGINT)
        output = finish(dev)
    finally:
        stop(dev, grace=0)
    assert dev.returncode == 0, output
    assert '"rested"' in output.splitlines(), output
    assert "second stop request" not in output and "Traceback" not in output, output
