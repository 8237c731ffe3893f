"""The command line as a person meets it: real processes, a real coordinator, real mistakes.

Every mistake is one line naming what is wrong (exit 2 for the command line and its
environment, 1 otherwise); an unreachable coordinator is reported at once; a queued invocation
says so and honours --timeout; result, invocations and cancel; dev --reload.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from _asgi_support import free_port
from _coordinator_support import (
    PYTHON,
    CoordinatorProcess,
    agnt5_env,
    coordinator_process,
    unique,
)
from _processes import spawn, stop
from test_standalone_worker import wait_for_service

from agnt5.client import Client

MODULE = textwrap.dedent(
    """
    import asyncio

    from agnt5 import function

    @function()
    def greet(name: str) -> str:
        return f"Hello, {name}!"

    @function()
    async def nap(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "rested"
    """
)


@pytest.fixture(scope="module")
def coordinator() -> Iterator[CoordinatorProcess]:
    with coordinator_process() as process:
        yield process


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "greeter.py"
    path.write_text(MODULE)
    return path


def agnt5(
    *args: str, cwd: Path | None = None, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PYTHON, "-m", "agnt5", *args],
        capture_output=True,
        text=True,
        env=agnt5_env(**env),
        cwd=cwd,
        timeout=timeout,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command wrote on stderr."""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip()


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["coordinator", "--retention", "-5"], {}, "--retention"),
        (["invoke", "svc", "f", "--timeout", "-1"], {}, "--timeout"),
        (["worker", "{module}", "--max-concurrency", "0"], {}, "--max-concurrency"),
        (["worker", "{module}"], {"AGNT5_MAX_CONCURRENCY": "abc"}, "AGNT5_MAX_CONCURRENCY"),
        (["invoke", "svc", "f", "--endpoint", "ftp://x"], {}, "--endpoint"),
        (["services"], {"AGNT5_COORDINATOR_ENDPOINT": "ftp://x"}, "AGNT5_COORDINATOR_ENDPOINT"),
        (["services"], {"AGNT5_LOG_FORMAT": "xml"}, "AGNT5_LOG_FORMAT"),
        (["worker", "{module}"], {"AGNT5_API_KEY": "a\nb"}, "AGNT5_API_KEY"),
        (["invoke", "svc", "f", "--api-key", "a\nb"], {}, "--api-key"),
        (["coordinator", "--api-key", "two words"], {}, "--api-key"),
        (["worker", "no_such_module"], {}, "no module named 'no_such_module'"),
        (["worker", "{module}:missing_attribute"], {}, "has no attribute 'missing_attribute'"),
        (["worker", "{empty}"], {}, "registers no functions"),
        (["invocations", "--state", "DONE"], {}, "--state"),
        (["result"], {}, "ID"),
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(
    module: Path, args: list[str], env: dict[str, str], named: str
) -> None:
    empty = module.with_name("empty.py")
    empty.write_text("import os\n")
    done = agnt5(*(arg.format(module=module, empty=empty) for arg in args), **env)
    assert done.returncode == 2, done.stderr
    assert named in one_line(done)


def unreachable(endpoint: str) -> str:
    return (
        f"error: cannot reach the coordinator at {endpoint}: is `agnt5 coordinator` running? "
        "(choose another with --endpoint or $AGNT5_COORDINATOR_ENDPOINT)"
    )


def test_an_unreachable_coordinator_is_reported_at_once() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens: refused
    for args in (["invoke", "svc", "f"], ["services"], ["result", "x"], ["invocations"]):
        done = agnt5(*args, "--endpoint", endpoint, timeout=30)  # the calls' own: 60 s
        assert done.returncode == 1
        assert one_line(done) == unreachable(endpoint)


def test_a_coordinator_that_never_answers_is_reported_after_the_reach_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        done = agnt5("invoke", "svc", "f", "--endpoint", endpoint, timeout=30)
    assert done.returncode == 1
    assert one_line(done) == unreachable(endpoint)


def test_busy_ports_and_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        grpc_busy = agnt5("coordinator", "--in-memory", "--port", port, "--no-http")
        http_busy = agnt5("coordinator", "--in-memory", "--port", "0", "--http-port", port)
    assert grpc_busy.returncode == http_busy.returncode == 1
    assert f"cannot bind the coordinator to 127.0.0.1:{port}" in one_line(grpc_busy)
    assert f"cannot bind the HTTP gateway to 127.0.0.1:{port}" in one_line(http_busy)
    data = tmp_path / "data"
    data.write_text("not a directory")
    as_file = agnt5("coordinator", "--data-dir", str(data), "--port", "0", "--no-http")
    assert as_file.returncode == 1
    assert one_line(as_file) == f"error: the data directory {data} is a file: give a directory"


def test_a_wrong_api_key_stops_with_one_line(module: Path) -> None:
    with coordinator_process("--api-key", "right") as keyed:
        worker = agnt5("worker", str(module), "--endpoint", keyed.endpoint, "--api-key", "wrong")
        invoke = agnt5("invoke", "svc", "f", "--endpoint", keyed.endpoint, "--api-key", "wrong")
    assert worker.returncode == 1 and "Traceback" not in worker.stderr
    assert (
        worker.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"error: UNAUTHENTICATED: the coordinator at {keyed.endpoint} refused this worker"
        )
    )
    assert invoke.returncode == 1
    assert one_line(invoke).startswith("error: UNAUTHENTICATED: missing or wrong API key")


def test_a_closed_pipe_is_no_traceback(coordinator: CoordinatorProcess) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # like `agnt5 services | head` once head has read enough
    try:
        done = subprocess.run(
            [*PYTHON, "-m", "agnt5", "services", "--endpoint", coordinator.endpoint],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env=agnt5_env(),
            timeout=60,
        )
    finally:
        os.close(writer)
    assert done.returncode == 1 and done.stderr == ""


def test_a_module_that_fails_to_import_shows_the_users_frames(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import json\n\n\ndef load():\n    return json.loads('{')\n\n\nload()\n")
    done = agnt5("worker", str(broken))
    assert done.returncode == 1
    assert done.stderr.startswith(f"agnt5: cannot import {broken}:\nTraceback")
    assert f'File "{broken}", line 8, in <module>' in done.stderr
    assert f'File "{broken}", line 5, in load' in done.stderr
    assert "agnt5/cli" not in done.stderr and "importlib" not in done.stderr
    assert done.stderr.rstrip().endswith(
        "json.decoder.JSONDecodeError: Expecting property name "
        "enclosed in double quotes: line 1 column 2 (char 1)"
    )
    broken.write_text("def oops(:\n")
    done = agnt5("worker", str(broken))
    assert done.returncode == 1 and "SyntaxError" in done.stderr
    assert "Traceback" not in done.stderr  # nothing of the user's ran: the line is the news


def test_dev_checks_the_module_before_binding_ports(tmp_path: Path) -> None:
    empty = tmp_path / "empty.py"
    empty.write_text("")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = str(holder.getsockname()[1])
        done = agnt5("dev", str(empty), "--port", port, "--invoke", "f")
    assert done.returncode == 2 and "registers no functions" in one_line(done)


def test_version() -> None:
    done = agnt5("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("agnt5 ") and "hot path, Python 3." in done.stdout


def test_a_queued_invocation_says_so_and_honours_its_timeout(
    coordinator: CoordinatorProcess, module: Path
) -> None:
    service = unique()
    with Client(coordinator.endpoint) as client:
        worker = spawn(
            [*PYTHON, "-m", "agnt5", "worker", str(module), "--service", service,
             "--endpoint", coordinator.endpoint],
            env=agnt5_env(),
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_service(client, service)
        finally:
            stop(worker)  # the service stays known, with no worker
    invoke = spawn(
        [*PYTHON, "-m", "agnt5", "invoke", service, "greet", '"Ada"', "--timeout", "2",
         "--endpoint", coordinator.endpoint],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=agnt5_env(),
    )  # fmt: skip
    try:
        assert invoke.stderr is not None
        ready, _, _ = select.select([invoke.stderr], [], [], 30)
        assert ready, "nothing said about the queue"
        queued = invoke.stderr.readline().decode()
        _, rest = invoke.communicate(timeout=30)  # the default wait is 60 s
    finally:
        stop(invoke, grace=0)
    assert queued.startswith(f"agnt5: no worker of service '{service}' is connected: invocation ")
    assert queued.endswith(" waits in its queue for one (up to 2 s; --timeout)\n")
    assert invoke.returncode == 1
    # the coordinator's deadline, set from --timeout, ended it (the command waits only a
    # moment longer than --timeout for that outcome)
    assert rest.decode().startswith("error: TIMEOUT: Invocation ")
    assert "did not finish before its deadline" in rest.decode()


def test_result_invocations_and_cancel(coordinator: CoordinatorProcess, module: Path) -> None:
    service = unique()
    endpoint = ["--endpoint", coordinator.endpoint]
    worker = spawn(
        [*PYTHON, "-m", "agnt5", "worker", str(module), "--service", service, *endpoint],
        env=agnt5_env(),
        stderr=subprocess.DEVNULL,
    )
    try:
        with Client(coordinator.endpoint) as client:
            wait_for_service(client, service)
        submitted = agnt5("invoke", service, "greet", '"Ada"', "--submit", *endpoint)
        greeted = submitted.stdout.strip()
        result = agnt5("result", greeted, "--wait", "10", *endpoint)
        assert (result.returncode, result.stdout) == (0, '"Hello, Ada!"\n'), result.stderr
        whole = orjson.loads(agnt5("result", greeted, "--json", *endpoint).stdout)
        assert whole["state"] == "SUCCEEDED" and whole["result"] == "Hello, Ada!"

        napping = agnt5("invoke", service, "nap", "600", "--submit", *endpoint).stdout.strip()
        running = agnt5("result", napping, *endpoint)
        assert running.returncode == 1
        assert one_line(running) == (
            f"error: invocation {napping} is still running: see it later with "
            f"'agnt5 result {napping}'"
        )
        cancelled = agnt5("cancel", napping, "--reason", "too slow", *endpoint)
        assert (cancelled.returncode, cancelled.stdout) == (0, f"cancelled {napping}\n"), (
            cancelled.stderr
        )
        again = agnt5("cancel", napping, *endpoint)
        assert again.returncode == 1 and "FAILED_PRECONDITION" in one_line(again)
        failed = agnt5("result", napping, *endpoint)
        assert one_line(failed).endswith("was cancelled: too slow")

        listing = agnt5("invocations", "--service", service, *endpoint)
        lines = listing.stdout.splitlines()
        assert [line.split()[:3] for line in lines] == [
            [napping, "FAILED", f"{service}/nap"],
            [greeted, "SUCCEEDED", f"{service}/greet"],
        ]
        assert lines[0].endswith("  CANCELLED")
        only = agnt5("invocations", "--service", service, "--state", "FAILED", "--json", *endpoint)
        assert [row["invocation_id"] for row in orjson.loads(only.stdout)] == [napping]
        none = agnt5("invocations", "--service", unique(), *endpoint)
        assert none.stdout == "no invocations\n"
    finally:
        stop(worker)


def test_dev_reload_restarts_the_worker_when_the_module_changes(module: Path) -> None:
    dev = spawn(
        [*PYTHON, "-m", "agnt5", "dev", str(module), "--reload", "--port", "0", "--no-http"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=agnt5_env(),
        cwd=module.parent,
    )
    try:
        assert dev.stdout is not None
        ready, _, _ = select.select([dev.stdout], [], [], 30)
        assert ready
        line = dev.stdout.readline().decode()
        endpoint = "http://" + line.split()[2].removeprefix("grpc=")
        with Client(endpoint, timeout=30) as client:
            wait_for_service(client, "greeter")
            assert client.invoke("greeter", "greet", "Ada") == "Hello, Ada!"
            before = module.stat().st_mtime
            module.write_text(MODULE.replace("Hello, {name}!", "Bonjour, {name}!"))
            os.utime(module, (before + 10, before + 10))  # changed, however coarse the clock
            deadline = time.monotonic() + 30
            answer = ""
            while time.monotonic() < deadline:  # until the restarted worker answers
                answer = client.invoke("greeter", "greet", "Ada")
                if answer == "Bonjour, Ada!":
                    break
                time.sleep(0.2)
            assert answer == "Bonjour, Ada!"
        dev.send_signal(2)
        out, err = dev.communicate(timeout=30)
    finally:
        stop(dev)
    assert dev.returncode == 0, err.decode()
    assert "greeter.py changed: restarting the worker" in err.decode()
    assert out.decode().splitlines()[-1] == "agnt5 coordinator: stopped"
