"""The standalone runtime end to end: real coordinator and worker processes, real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest
from _coordinator_support import PYTHON, agnt5_env, coordinator_process, unique
from _processes import spawn, stop
from _raising import BASE_EXCEPTIONS, RAISING, failure

from agnt5.client import AsyncClient, Client
from agnt5.errors import AgntError, InvalidArgumentError, InvocationTimeoutError, NotFoundError

pytestmark = pytest.mark.hot_path

MODULE = textwrap.dedent(
    '''
    import asyncio
    import os
    import sys
    import time

    from agnt5 import function

    MARKS = os.environ.get("MARKS")
    _in_flight = 0
    _most = 0


    def _mark(text):
        if MARKS:
            with open(MARKS, "a") as marks:
                marks.write(text + "\\n")


    @function()
    def greet(name: str) -> str:
        return f"Hello, {name}!"


    @function()
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b


    @function()
    def total(prices: list[float]) -> float:
        return sum(prices)


    @function()
    async def probe(pause: float) -> int:
        """Report the most invocations this process ever ran at once."""
        global _in_flight, _most
        _in_flight += 1
        _most = max(_most, _in_flight)
        try:
            await asyncio.sleep(pause)
        finally:
            _in_flight -= 1
        return _most


    @function()
    async def slow(seconds: float) -> int:
        _mark(f"start {os.getpid()}")
        await asyncio.sleep(seconds)
        return os.getpid()


    @function()
    def slow_sync(seconds: float) -> int:
        _mark(f"start {os.getpid()}")
        time.sleep(seconds)
        return os.getpid()


    @function()
    def web_stack_loaded() -> list[str]:
        return sorted({"starlette", "uvicorn"} & set(sys.modules))
    '''
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "standalone_app.py"
    path.write_text(MODULE)
    return path


@contextmanager
def worker_process(
    module: Path, endpoint: str, service: str, *args: str, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``agnt5 worker MODULE`` as a subprocess; its process group killed on exit."""
    log = open(module.parent / f"worker-{unique('log')}.txt", "wb")
    process = spawn(
        [
            *PYTHON,
            "-m",
            "agnt5",
            "worker",
            str(module),
            "--service",
            service,
            "--endpoint",
            endpoint,
            *args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=agnt5_env(**env),
        cwd=module.parent,
    )
    process.log_path = log.name  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        stop(process, grace=0)
        log.close()


def log_of(process: subprocess.Popen[bytes]) -> str:
    return Path(process.log_path).read_text()  # type: ignore[attr-defined]


def wait_for_service(client: Client, service: str, workers: int = 1, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded by the deadline
        for entry in client.list_services():
            if entry["name"] == service and len(entry["workers"]) >= workers:
                return
        time.sleep(0.05)
    raise AssertionError(f"service {service} did not get {workers} worker(s) in {timeout}s")


def wait_for_lines(path: Path, count: int, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded by the deadline
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.02)
    raise AssertionError(f"{path} did not reach {count} lines")


def test_sync_and_async_handlers_and_bad_input(module: Path) -> None:
    service = unique()
    with (
        coordinator_process() as coordinator,
        worker_process(module, coordinator.endpoint, service),
        Client(coordinator.endpoint) as client,
    ):
        wait_for_service(client, service)
        assert client.invoke(service, "greet", {"name": "Ada"}) == "Hello, Ada!"
        assert client.invoke(service, "add", [2, 3]) == 5
        assert client.invoke(service, "total", {"prices": [1, 2.5]}) == 3.5

        with pytest.raises(NotFoundError):
            client.invoke(service, "no_such_function", {})
        with pytest.raises(
            InvalidArgumentError, match=r"^prices\[1\]: expected float, got string$"
        ):
            client.invoke(service, "total", {"prices": [1, "two"]})
        with pytest.raises(InvalidArgumentError, match="unknown parameter 'nmae'"):
            client.invoke(service, "greet", {"nmae": "Ada"})

        url = f"{coordinator.http_url}/v1/services/{service}/functions/greet/invoke"
        with httpx.Client(timeout=10, headers={"content-type": "application/json"}) as http:
            bad_json = http.post(url, content=b'{"name": ')
            assert bad_json.status_code == 400, bad_json.text
            assert bad_json.json()["code"] == "INVALID_ARGUMENT"
            too_big = http.post(url, content=orjson.dumps({"name": "x" * (11 * 1024 * 1024)}))
            assert too_big.status_code == 413, too_big.text
            ok = http.post(url, content=b'{"name": "Bob"}')
            assert ok.status_code == 200, ok.text
        assert client.invoke(service, "greet", "Cy") == "Hello, Cy!"
        # starlette and uvicorn are installed with agnt5; a standalone worker with no health
        # port (as here) imports neither (with one: uvicorn alone, test_standalone_observability)
        assert client.invoke(service, "web_stack_loaded") == []


def test_max_concurrency_is_never_exceeded(module: Path) -> None:
    service = unique()

    async def burst(endpoint: str) -> list[int]:
        async with AsyncClient(endpoint) as client:
            calls = [client.invoke(service, "probe", {"pause": 0.02}) for _ in range(200)]
            return list(await asyncio.gather(*calls))

    with (
        coordinator_process() as coordinator,
        worker_process(module, coordinator.endpoint, service, "--max-concurrency", "8"),
        Client(coordinator.endpoint) as client,
    ):
        wait_for_service(client, service)
        most = asyncio.run(burst(coordinator.endpoint))
    assert len(most) == 200
    assert max(most) <= 8
    assert max(most) >= 2  # the burst did run concurrently


@pytest.mark.parametrize("handler", ["slow", "slow_sync"])
def test_killed_worker_work_completes_on_another(module: Path, handler: str) -> None:
    service = unique()
    marks = module.parent / "marks.txt"
    with coordinator_process() as coordinator, Client(coordinator.endpoint) as client:
        with worker_process(module, coordinator.endpoint, service, MARKS=str(marks)) as first:
            wait_for_service(client, service)
            ids = [client.submit(service, handler, {"seconds": 0.5}) for _ in range(12)]
            wait_for_lines(marks, 12)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        with worker_process(module, coordinator.endpoint, service) as second:
            results = [client.result(invocation_id, timeout=30) for invocation_id in ids]
        assert results == [second.pid] * 12


def test_sigterm_lets_in_flight_work_finish_and_exits_zero(module: Path) -> None:
    service = unique()
    marks = module.parent / "marks.txt"
    with coordinator_process() as coordinator, Client(coordinator.endpoint) as client:
        with worker_process(module, coordinator.endpoint, service, MARKS=str(marks)) as worker:
            wait_for_service(client, service)
            ids = [client.submit(service, "slow", {"seconds": 1.0}) for _ in range(5)]
            wait_for_lines(marks, 5)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(20) == 0, log_of(worker)
        assert [client.result(i, timeout=10) for i in ids] == [worker.pid] * 5
        assert "draining" in log_of(worker)


def test_worker_started_first_serves_once_the_coordinator_comes_up(module: Path) -> None:
    service = unique()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with worker_process(module, endpoint, service) as worker:
        time.sleep(1.5)  # the worker is retrying against a closed port meanwhile
        assert worker.poll() is None
        with (
            coordinator_process("--port", str(port)) as coordinator,
            Client(coordinator.endpoint) as client,
        ):
            wait_for_service(client, service)
            assert client.invoke(service, "greet", "Ada") == "Hello, Ada!"
    assert "reconnecting" in log_of(worker)


def test_worker_reconnects_after_the_coordinator_restarts(module: Path) -> None:
    service = unique()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with worker_process(module, endpoint, service) as worker:
        with coordinator_process("--port", str(port)) as coordinator, Client(endpoint) as client:
            wait_for_service(client, service)
            assert client.invoke(service, "add", [1, 1]) == 2
            coordinator.process.kill()
            coordinator.process.wait(10)
        with coordinator_process("--port", str(port)), Client(endpoint) as client:
            wait_for_service(client, service)
            assert client.invoke(service, "add", [2, 2]) == 4
        assert worker.poll() is None


def test_unauthenticated_worker_is_refused(module: Path) -> None:
    service = unique()
    with (
        coordinator_process("--api-key", "s3cret") as coordinator,
        Client(coordinator.endpoint, api_key="s3cret") as client,
    ):
        with worker_process(module, coordinator.endpoint, service) as intruder:
            time.sleep(1.5)
            assert all(entry["name"] != service for entry in client.list_services())
        assert "UNAUTHENTICATED" in log_of(intruder)
        with worker_process(module, coordinator.endpoint, service, "--api-key", "s3cret"):
            wait_for_service(client, service)
            assert client.invoke(service, "greet", "Ada") == "Hello, Ada!"


GRACEFUL = textwrap.dedent(
    """
    import asyncio
    import signal
    import sys

    from agnt5 import Worker, function


    @function()
    def hello(name: str) -> str:
        return f"Hello, {name}!"


    class GracefulWorker:
        def __init__(self):
            self.worker = Worker("graceful-service", coordinator_endpoint=sys.argv[1])
            self.shutdown_requested = False

        async def run(self):
            signal.signal(signal.SIGTERM, self._signal_handler)
            signal.signal(signal.SIGINT, self._signal_handler)
            try:
                await self.worker.run()
            except KeyboardInterrupt:
                print("Shutdown requested via keyboard interrupt")
            finally:
                await self._cleanup()

        def _signal_handler(self, signum, frame):
            print(f"Received signal {signum}, initiating graceful shutdown...", flush=True)
            self.shutdown_requested = True

        async def _cleanup(self):
            print(f"Cleanup complete (shutdown_requested={self.shutdown_requested})", flush=True)


    asyncio.run(GracefulWorker().run())
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_user_signal_handlers_coexist_with_the_worker(tmp_path: Path, signum: int) -> None:
    script = tmp_path / "graceful.py"
    script.write_text(GRACEFUL)
    with coordinator_process() as coordinator, Client(coordinator.endpoint) as client:
        process = spawn(
            [sys.executable, str(script), coordinator.endpoint],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=agnt5_env(),
            cwd=tmp_path,
        )
        try:
            wait_for_service(client, "graceful-service")
            assert client.invoke("graceful-service", "hello", "Ada") == "Hello, Ada!"
            process.send_signal(signum)
            output, _ = process.communicate(timeout=20)
        finally:
            stop(process, grace=0)
    text = output.decode()
    assert process.returncode == 0, text
    assert f"Received signal {signum}, initiating graceful shutdown..." in text
    assert "Cleanup complete (shutdown_requested=True)" in text


def outcome(call: Callable[..., object], *args: object, **kwargs: object) -> object:
    """What the call returned, or the code, type and message of the agnt5 error it raised."""
    try:
        return call(*args, **kwargs)
    except AgntError as error:
        return (error.code, error.error_type, error.message)


@contextmanager
def raising_worker(tmp_path: Path) -> Iterator[tuple[Client, str, subprocess.Popen[bytes]]]:
    """A client, and the service of a worker with one slot serving the `_raising` handlers."""
    module = tmp_path / "raising_app.py"
    module.write_text(RAISING)
    service = unique()
    with (
        coordinator_process() as coordinator,
        worker_process(module, coordinator.endpoint, service, "--max-concurrency", "1") as worker,
        Client(coordinator.endpoint, timeout=10) as client,
    ):
        wait_for_service(client, service)
        yield client, service, worker


def test_every_base_exception_a_handler_raises_fails_only_its_invocation(tmp_path: Path) -> None:
    """SystemExit and KeyboardInterrupt do not end the worker; a CancelledError or GeneratorExit
    of the handler's own does not keep its slot: each is FUNCTION_FAILED, and with one slot the
    next invocation still runs, on the same worker process."""
    with raising_worker(tmp_path) as (client, service, worker):
        for handler in ("raise_async", "raise_sync", "raise_inline"):
            for name in BASE_EXCEPTIONS:
                failed = outcome(client.invoke, service, handler, name)
                assert failed == ("FUNCTION_FAILED", name, failure(handler, name)), log_of(worker)
                greeted = outcome(client.invoke, service, "greet", name, timeout=5)
                assert greeted == f"Hello, {name}!", log_of(worker)
                assert worker.poll() is None, log_of(worker)
        assert log_of(worker).count("Traceback") == 12, log_of(worker)


def test_a_handler_cancelling_its_own_task_fails_only_its_invocation(tmp_path: Path) -> None:
    """A cancellation the worker did not ask for (the handler cancelled its own task) is
    FUNCTION_FAILED like any exception the handler raises: the coordinator does not count the
    invocation running forever, and the worker's one slot takes the next invocation."""
    with raising_worker(tmp_path) as (client, service, worker):
        for attempt in range(2):
            failed = outcome(client.invoke, service, "cancel_itself", "x", timeout=5)
            message = "Function cancel_itself failed: CancelledError: its task was cancelled, "
            assert failed == ("FUNCTION_FAILED", "CancelledError", message + "not by the worker")
            greeted = outcome(client.invoke, service, "greet", f"#{attempt}", timeout=5)
            assert greeted == f"Hello, #{attempt}!", log_of(worker)
        assert worker.poll() is None, log_of(worker)


def test_a_cancelled_invocation_frees_its_slot_whatever_the_handler_raises(tmp_path: Path) -> None:
    """The coordinator cancels an attempt past its deadline; a handler answering the
    cancellation with an exception of its own (a fresh CancelledError too) still frees its one
    slot for the next invocation."""
    with raising_worker(tmp_path) as (client, service, worker):
        for name in BASE_EXCEPTIONS:
            with pytest.raises(InvocationTimeoutError):
                client.invoke(service, "raise_when_cancelled", name, timeout=0.2)
            greeted = outcome(client.invoke, service, "greet", name, timeout=5)
            assert greeted == f"Hello, {name}!", log_of(worker)
            assert worker.poll() is None, log_of(worker)
