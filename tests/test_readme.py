"""The README's Python snippets run as written: the worker, the ASGI app, the test helper and
the client, against a real coordinator."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from _coordinator_support import PYTHON, agnt5_env, coordinator_process
from _processes import spawn, stop
from test_standalone_worker import wait_for_service

from agnt5.client import Client

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
DEFAULT_ENDPOINT = "http://localhost:9091"


def snippet(*words: str) -> str:
    """The one snippet holding all of ``words``."""
    (found,) = [text for text in SNIPPETS if all(word in text for word in words)]
    return found


@pytest.mark.parametrize("text", SNIPPETS, ids=[f"snippet-{n}" for n in range(len(SNIPPETS))])
def test_every_snippet_is_a_program(text: str) -> None:
    compile(text, "README.md", "exec")  # a top-level await is a SyntaxError here


def test_the_snippets_run_as_written(tmp_path: Path) -> None:
    worker_file = tmp_path / "hello_worker.py"
    worker_file.write_text(snippet("asyncio.run(main())", 'service_name="hello"'))
    programs = {
        "asgi_app.py": snippet('runtime="asgi"') + "\nassert callable(app)\n",
        "checks.py": snippet("from agnt5.testing import invoke"),
        "orders.py": snippet("# orders.py"),
        "test_orders.py": snippet("# test_orders.py"),  # imports orders.py, written just before
    }
    for name, program in programs.items():
        script = tmp_path / name
        script.write_text(program)
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, env=agnt5_env(), timeout=60
        )
        assert done.returncode == 0, done.stderr.decode()

    with coordinator_process() as coordinator:
        worker = spawn(
            [sys.executable, str(worker_file)],
            stderr=subprocess.PIPE,
            env=agnt5_env(AGNT5_COORDINATOR_ENDPOINT=coordinator.endpoint),
        )
        try:
            with Client(coordinator.endpoint) as client:
                wait_for_service(client, "hello")
            client_code = snippet("with Client(").replace(DEFAULT_ENDPOINT, coordinator.endpoint)
            ran = subprocess.run(
                [sys.executable, "-c", client_code],
                capture_output=True,
                env=agnt5_env(),
                timeout=60,
            )
            assert ran.returncode == 0, ran.stderr.decode()
            worker.send_signal(signal.SIGINT)
            _, err = worker.communicate(timeout=30)
        finally:
            stop(worker)
    assert worker.returncode == 0 and b"Traceback" not in err, err.decode()


def terminal_commands() -> list[str]:
    """The commands of the Quick start's three terminals, without the venv activation."""
    (block,) = re.findall(r"```bash\n(# terminal 1.*?)```", README.read_text(), re.DOTALL)
    text = block.replace("\\\n", " ").replace("source .venv/bin/activate", "")
    lines = (line.strip().removeprefix("&&").strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_three_terminals_work_as_written() -> None:
    coordinator_command, worker_command, invoke_command, curl_command = terminal_commands()
    assert coordinator_command == "agnt5 coordinator"  # here on ephemeral ports, in memory
    with coordinator_process() as coordinator:
        endpoint = ["--endpoint", coordinator.endpoint]
        worker = spawn(
            [*PYTHON, "-m", *shlex.split(worker_command), *endpoint],
            stderr=subprocess.PIPE,
            env=agnt5_env(),
            cwd=ROOT,
        )
        try:
            with Client(coordinator.endpoint) as client:
                wait_for_service(client, "hello")
            invoked = subprocess.run(
                [*PYTHON, "-m", *shlex.split(invoke_command), *endpoint],
                capture_output=True,
                text=True,
                env=agnt5_env(),
                timeout=60,
            )
            assert (invoked.returncode, invoked.stdout) == (0, '"Hello, Ada!"\n'), invoked.stderr
            curl = shlex.split(curl_command.replace("localhost:8080", coordinator.http_address))
            answered = subprocess.run([*curl, "-sS"], capture_output=True, text=True, timeout=30)
            assert answered.returncode == 0, answered.stderr
            assert orjson.loads(answered.stdout)["result"] == "Hello, Ada!"
            worker.send_signal(signal.SIGINT)
            _, err = worker.communicate(timeout=30)
        finally:
            stop(worker)
    assert worker.returncode == 0 and b"Traceback" not in err, err.decode()
