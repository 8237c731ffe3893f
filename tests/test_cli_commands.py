"""The ``agnt5`` command line: help, invoke, services, and worker/dev serving a real module."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest
from _coordinator_support import (
    PYTHON,
    CoordinatorProcess,
    FakeWorker,
    agnt5_env,
    coordinator_process,
    echo,
    unique,
)
from _processes import astop

from agnt5.cli import main
from agnt5.client import AsyncClient

COMMANDS = [
    "coordinator", "worker", "dev", "invoke", "result", "invocations", "cancel", "signal",
    "services",
]  # fmt: skip
MODULE = textwrap.dedent(
    '''
    from agnt5 import function

    @function()
    def greet(name: str) -> str:
        """Say hello."""
        return f"Hello, {name}!"

    @function()
    async def add(a: int, b: int) -> int:
        return a + b
    '''
)


@pytest.fixture(scope="module")
def coordinator() -> Iterator[CoordinatorProcess]:
    with coordinator_process("--no-http") as process:
        yield process


@pytest.fixture
def module_file(tmp_path: Path) -> Path:
    path = tmp_path / f"{unique('clitest').replace('-', '_')}.py"
    path.write_text(MODULE)
    return path


@contextlib.asynccontextmanager
async def agnt5_process(*args: str, **env: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m agnt5 *args`` in its own process group, which `astop` ends on exit."""
    process = await asyncio.create_subprocess_exec(
        *PYTHON,
        "-m",
        "agnt5",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=agnt5_env(**env),
        start_new_session=True,
    )
    try:
        yield process
    finally:
        await astop(process)


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert all(command in text for command in COMMANDS) and "examples:" in text
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        assert "--" in capsys.readouterr().out


def test_invalid_json_input_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "svc", "fn", "{nope", "--endpoint", "http://127.0.0.1:1"]) == 2
    assert capsys.readouterr().err.startswith("agnt5: error: invalid JSON input: ")


@pytest.mark.asyncio
async def test_invoke_and_services(
    coordinator: CoordinatorProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    service = unique()
    async with FakeWorker(coordinator.endpoint, service, {"echo": echo}):
        async with agnt5_process(
            "invoke", service, "echo", '{"x": [1, 2]}', "--endpoint", coordinator.endpoint
        ) as cli:
            out, err = await asyncio.wait_for(cli.communicate(), 30)
        assert cli.returncode == 0, err.decode()
        assert orjson.loads(out) == {"x": [1, 2]}

        endpoint = ["--endpoint", coordinator.endpoint]
        assert await asyncio.to_thread(main, ["invoke", service, "missing", *endpoint]) == 1
        assert "error: NOT_FOUND: Function 'missing' not found" in capsys.readouterr().err
        assert (
            await asyncio.to_thread(main, ["invoke", service, "echo", "--submit", *endpoint]) == 0
        )
        assert len(capsys.readouterr().out.strip()) == 32
        assert await asyncio.to_thread(main, ["services", *endpoint]) == 0
        assert (
            f"{service} 1.0.0  workers=1 queued=0\n  echo (function)  echo handler"
            in capsys.readouterr().out
        )
        assert await asyncio.to_thread(main, ["services", "--json", *endpoint]) == 0
        assert service in [s["name"] for s in orjson.loads(capsys.readouterr().out)]


@pytest.mark.asyncio
async def test_worker_command_serves_a_module_until_sigterm(
    coordinator: CoordinatorProcess, module_file: Path
) -> None:
    service = unique()
    args = ["worker", str(module_file), "--service", service, "--endpoint", coordinator.endpoint]
    async with (
        agnt5_process(*args) as worker,
        AsyncClient(coordinator.endpoint, timeout=10) as client,
    ):
        await _wait_for_worker(client, service)
        assert await client.invoke(service, "greet", {"name": "Ada"}) == "Hello, Ada!"
        assert await client.invoke(service, "add", [2, 3]) == 5
        worker.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(worker.communicate(), 30)
        assert worker.returncode == 0, err.decode()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["worker", "--max-concurrency", "0"], {}, "--max-concurrency: must be an integer >= 1"),
        (["worker"], {"AGNT5_HEALTH_PORT": "abc"}, "invalid AGNT5_HEALTH_PORT: expected an"),
        (["dev", "--max-concurrency", "-3", "--port", "0"], {}, "--max-concurrency: must be an"),
    ],
)
async def test_a_bad_worker_setting_ends_the_command_with_one_line_naming_it(
    module_file: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    """A flag or variable the Worker refuses ends ``agnt5 worker`` / ``agnt5 dev`` with an
    ``error:`` line naming it and the usage status, not a traceback."""
    async with agnt5_process(*args, str(module_file), **env) as cli:
        _, err = await asyncio.wait_for(cli.communicate(), 30)
    assert cli.returncode == 2
    text = err.decode()
    last = text.splitlines()[-1]
    assert "error: " in last and message in last and "Traceback" not in text, text


@pytest.mark.asyncio
async def test_worker_command_runs_a_named_worker_object(
    coordinator: CoordinatorProcess, tmp_path: Path
) -> None:
    service = unique()
    path = tmp_path / "attr_module.py"
    path.write_text(MODULE + f"\nfrom agnt5 import Worker\napp = Worker({service!r})\n")
    env = {"AGNT5_COORDINATOR_ENDPOINT": coordinator.endpoint}
    async with (
        agnt5_process("worker", f"{path}:app", **env) as worker,
        AsyncClient(coordinator.endpoint, timeout=10) as client,
    ):
        await _wait_for_worker(client, service)
        assert await client.invoke(service, "add", {"a": 1, "b": 2}) == 3
        worker.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(worker.communicate(), 30)
        assert worker.returncode == 0, err.decode()
    async with agnt5_process("worker", f"{path}:MODULE_MISSING") as bad:
        _, err = await asyncio.wait_for(bad.communicate(), 30)
    assert bad.returncode == 2 and b"has no attribute 'MODULE_MISSING'" in err
    async with agnt5_process("worker", f"{path}:function") as bad:
        _, err = await asyncio.wait_for(bad.communicate(), 30)
    assert bad.returncode == 2 and b"is a function, not an agnt5 Worker" in err


async def _wait_for_worker(client: AsyncClient, service: str) -> None:
    for _ in range(200):  # until the worker registered (bounded: ~20 s)
        if any(s["name"] == service and s["workers"] for s in await client.list_services()):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"no worker of {service} registered")


@pytest.mark.asyncio
async def test_dev_runs_coordinator_and_worker_in_one_process(module_file: Path) -> None:
    async with agnt5_process("dev", str(module_file), "--port", "0", "--http-port", "0") as dev:
        assert dev.stdout is not None
        line = (await asyncio.wait_for(dev.stdout.readline(), 30)).decode()
        assert line.startswith("agnt5 coordinator: grpc=127.0.0.1:"), line
        endpoint = "http://" + line.split()[2].removeprefix("grpc=")
        console = (await asyncio.wait_for(dev.stdout.readline(), 10)).decode()
        assert console.startswith("agnt5 console: http://127.0.0.1:"), console
        usage = (await asyncio.wait_for(dev.stdout.readline(), 10)).decode()
        assert f"serving '{module_file.stem}'" in usage
        async with AsyncClient(endpoint, timeout=10) as client:
            for _ in range(200):  # until the embedded worker registered (bounded: ~20 s)
                if any(s["workers"] for s in await client.list_services()):
                    break
                await asyncio.sleep(0.1)
            assert await client.invoke(module_file.stem, "greet", {"name": "dev"}) == "Hello, dev!"
        dev.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(dev.communicate(), 30)
        assert dev.returncode == 0, err.decode()


@pytest.mark.asyncio
async def test_dev_invoke_once_prints_the_result_and_exits(module_file: Path) -> None:
    args = ["dev", str(module_file), "--port", "0", "--no-http", "--log-level", "WARNING"]
    async with agnt5_process(*args, "--invoke", "add", "[20, 22]") as dev:
        out, err = await asyncio.wait_for(dev.communicate(), 60)
    assert dev.returncode == 0, err.decode()
    assert out.decode() == "42\n"  # only the result: status lines go to stderr
    assert "agnt5 coordinator: grpc=" in err.decode()
    assert "second stop request" not in err.decode()
    async with agnt5_process(*args, "--invoke", "add", '{"a": "x", "b": 1}') as dev:
        out, err = await asyncio.wait_for(dev.communicate(), 60)
    assert dev.returncode == 1
    assert "error: INVALID_ARGUMENT" in err.decode()
