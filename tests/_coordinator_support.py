"""Real parts for coordinator, client and CLI tests: a coordinator subprocess, a protocol worker."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from _processes import spawn, stop

import agnt5
from agnt5._proto import common_pb2, worker_pb2, worker_pb2_grpc
from agnt5.errors import AgntError, InvocationCancelledError

__all__ = [
    "PYTHON",
    "CoordinatorProcess",
    "FakeWorker",
    "Handler",
    "RawWorker",
    "agnt5_env",
    "blocker",
    "coordinator_process",
    "read_line",
    "echo",
    "eventually",
    "answer",
    "register_message",
    "registered",
    "result_message",
    "results_after_restart",
    "run_benchmark",
    "sleeper",
    "unique",
]

PACKAGE_PARENT = Path(agnt5.__file__).resolve().parent.parent
PYTHON = (sys.executable, "-P")
"""The interpreter, importing nothing from the working directory: with ``-m agnt5`` or ``-c``
in a checkout, the source tree (no compiled twins) would shadow the agnt5 under test."""
Handler = Callable[[worker_pb2.Invoke], Awaitable[bytes]]


def unique(prefix: str = "svc") -> str:
    """A name no other test uses (tests share a coordinator)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# A pure-Python pass stays pure in its subprocesses, and their workers serve no health port
# unless a test asks (conftest sets AGNT5_HEALTH_PORT=0: many workers cannot all take 8000).
_KEPT = frozenset({"AGNT5_NO_EXTENSIONS", "AGNT5_HEALTH_PORT"})


def agnt5_env(**extra: str) -> dict[str, str]:
    """Environment for an ``agnt5`` subprocess: the agnt5 these tests import (compiled or pure,
    as here), and no other ``AGNT5_*`` setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNT5_") or k in _KEPT}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@dataclass
class CoordinatorProcess:
    """A running ``agnt5 coordinator`` subprocess and where it listens."""

    process: subprocess.Popen[bytes]
    grpc_address: str
    http_address: str

    @property
    def endpoint(self) -> str:
        return f"http://{self.grpc_address}"

    @property
    def http_url(self) -> str:
        return f"http://{self.http_address}"

    def kill(self) -> None:
        """SIGKILL the coordinator and reap it."""
        self.process.kill()
        self.process.wait(10)


@contextmanager
def coordinator_process(
    *args: str, startup_timeout: float = 20.0, env: dict[str, str] | None = None
) -> Iterator[CoordinatorProcess]:
    """Run ``python -m agnt5 coordinator --port 0 --http-port 0 *args``; always stopped on exit.

    In memory unless ``args`` name a ``--data-dir`` or a ``--database`` (or ``env`` an
    ``AGNT5_DATABASE_URL``); ``env``: extra environment variables.
    """
    journaled = {"--data-dir", "--database"} & set(args) or "AGNT5_DATABASE_URL" in (env or {})
    storage = () if journaled else ("--in-memory",)
    command = [
        *PYTHON,
        "-m",
        "agnt5",
        "coordinator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--http-port",
        "0",
        "--log-level",
        "WARNING",
        *storage,
        *args,
    ]
    with tempfile.TemporaryFile() as stderr:
        process = spawn(
            command, stdout=subprocess.PIPE, stderr=stderr, env=agnt5_env(**(env or {}))
        )
        try:
            line = read_line(process, startup_timeout)
            if not line.startswith("agnt5 coordinator:"):
                stderr.seek(0)
                raise RuntimeError(f"coordinator did not start: {line!r}\n{stderr.read().decode()}")
            fields = dict(part.split("=", 1) for part in line.split()[2:])
            yield CoordinatorProcess(process, fields["grpc"], fields["http"])
        finally:
            stop(process)


def read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The next line ``process`` writes on its stdout (a pipe), or "" after ``timeout`` seconds."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline().decode().strip() if ready else ""


class FakeWorker:
    """A real gRPC client speaking the worker protocol, with scripted async handlers.

    Counts what the coordinator makes it do: every Invoke received, the most ever in flight at
    once, the Cancels received. ``heartbeat`` is the Heartbeat interval (s); None stays silent.
    """

    def __init__(
        self,
        endpoint: str,
        service: str,
        handlers: dict[str, Handler],
        *,
        max_concurrency: int = 4,
        retries: int = 3,
        backoff_ms: int = 50,
        multiplier: float = 2.0,
        api_key: str | None = None,
        heartbeat: float | None = 0.3,
    ) -> None:
        self.target = endpoint.removeprefix("http://")
        self.service = service
        self.handlers = handlers
        self.max_concurrency = max_concurrency
        self.worker_id = unique("worker")
        self.invokes: list[worker_pb2.Invoke] = []
        self.cancelled: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._retries = retries
        self._backoff_ms = backoff_ms
        self._multiplier = multiplier
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else None
        self._heartbeat = heartbeat
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self._closed = False
        self._channel: grpc.aio.Channel | None = None
        self._call: Any = None

    async def start(self) -> FakeWorker:
        """Connect and register; raises the AioRpcError if the coordinator refuses."""
        self._channel = grpc.aio.insecure_channel(self.target)
        self._call = worker_pb2_grpc.WorkerCoordinatorStub(self._channel).Connect(
            metadata=self._metadata
        )
        try:
            try:
                await self._call.write(worker_pb2.WorkerMessage(register=self._register()))
            except grpc.aio.AioRpcError:
                pass  # the coordinator ended the call first (e.g. no API key): read() says why
            try:
                ack = await asyncio.wait_for(self._call.read(), 10)
            except grpc.aio.AioRpcError as exc:
                raise await self._final_status(exc) from None
            assert ack.WhichOneof("message") == "register_ack", ack
        except BaseException:
            await self.disconnect()
            raise
        self._tasks.append(asyncio.create_task(self._read()))
        if self._heartbeat is not None:
            self._tasks.append(asyncio.create_task(self._beat(self._heartbeat)))
        return self

    async def refusal(self, tries: int = 5) -> grpc.aio.AioRpcError:
        """The error the coordinator refuses this worker's Register with.

        When the coordinator refuses the stream before reading anything (a wrong key), the
        Register write can race the refusal and grpc then ends the call on this side as
        INTERNAL, hiding the coordinator's status: such a try is made again.
        """
        for _ in range(tries):
            try:
                await self.start()
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.INTERNAL:
                    return exc
                self._closed = False
            else:
                await self.disconnect()
                raise AssertionError("the coordinator accepted the worker")
        raise AssertionError(f"no refusal but INTERNAL in {tries} tries")

    async def _final_status(self, exc: grpc.aio.AioRpcError) -> grpc.aio.AioRpcError:
        """The status the coordinator ended the call with (a racing write can mask it)."""
        code = await asyncio.wait_for(self._call.code(), 5)
        if code == exc.code():
            return exc
        details = await asyncio.wait_for(self._call.details(), 5)
        return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)

    async def drain(self) -> None:
        await self._send(worker_pb2.WorkerMessage(drain=worker_pb2.Drain(reason="test")))

    async def disconnect(self) -> None:
        """Drop the connection abruptly (in-flight work is abandoned)."""
        self._closed = True
        tasks = [*self._tasks, *self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._call is not None:
            self._call.cancel()
        if self._channel is not None:
            await self._channel.close()

    async def wait_for_invokes(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.invokes) < count:  # noqa: ASYNC110 - bounded by the timeout
                await asyncio.sleep(0.01)

    async def __aenter__(self) -> FakeWorker:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    def _register(self) -> worker_pb2.Register:
        config = common_pb2.ComponentConfig(
            retries=self._retries,
            backoff=common_pb2.Backoff(
                initial_ms=self._backoff_ms, multiplier=self._multiplier, max_ms=1000
            ),
        )
        return worker_pb2.Register(
            service_name=self.service,
            service_version="1.0.0",
            worker_id=self.worker_id,
            max_concurrency=self.max_concurrency,
            components=[
                common_pb2.Component(
                    name=name,
                    kind="function",
                    description=f"{name} handler",
                    input_schema_json='{"type": "object"}',
                    config=config,
                )
                for name in self.handlers
            ],
        )

    async def _send(self, message: worker_pb2.WorkerMessage) -> None:
        async with self._lock:
            await self._call.write(message)

    async def _beat(self, interval: float) -> None:
        while not self._closed:  # until disconnect
            await self._send(
                worker_pb2.WorkerMessage(heartbeat=worker_pb2.Heartbeat(in_flight=self.in_flight))
            )
            await asyncio.sleep(interval)

    async def _read(self) -> None:
        while not self._closed:  # until the stream ends
            message = await self._call.read()
            if message is grpc.aio.EOF:
                return
            kind = message.WhichOneof("message")
            if kind == "invoke_batch":
                for invoke in message.invoke_batch.invocations:
                    self.invokes.append(invoke)
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                    self._running[invoke.invocation_id] = asyncio.create_task(self._run(invoke))
            elif kind == "cancel":
                self.cancelled.append(message.cancel.invocation_id)
                task = self._running.get(message.cancel.invocation_id)
                if task is not None:
                    task.cancel()

    async def _run(self, invoke: worker_pb2.Invoke) -> None:
        try:
            result = worker_pb2.Result(
                invocation_id=invoke.invocation_id,
                attempt=invoke.attempt,
                output=await self.handlers[invoke.component](invoke),
            )
        except AgntError as error:
            result = self._failure(invoke, error)
        except asyncio.CancelledError:
            if self._closed:
                raise
            result = self._failure(invoke, InvocationCancelledError("cancelled by the coordinator"))
        finally:
            self.in_flight -= 1
            self._running.pop(invoke.invocation_id, None)
        await self._send(
            worker_pb2.WorkerMessage(result_batch=worker_pb2.ResultBatch(results=[result]))
        )

    @staticmethod
    def _failure(invoke: worker_pb2.Invoke, error: AgntError) -> worker_pb2.Result:
        return worker_pb2.Result(
            invocation_id=invoke.invocation_id,
            attempt=invoke.attempt,
            error=common_pb2.Error(**error.to_dict()),
        )


_CONNECT = "/agnt5.v1.WorkerCoordinator/Connect"


def _identity(data: bytes) -> bytes:
    return data


def register_message(
    service: str, config: common_pb2.ComponentConfig | None = None
) -> worker_pb2.WorkerMessage:
    """A Register of one function ``f`` (retries 3 unless ``config`` says otherwise)."""
    component = common_pb2.Component(
        name="f", kind="function", config=config or common_pb2.ComponentConfig(retries=3)
    )
    register = worker_pb2.Register(
        service_name=service, worker_id=unique("rogue"), max_concurrency=4, components=[component]
    )
    return worker_pb2.WorkerMessage(register=register)


def result_message(
    invocation_id: str, attempt: int, output: bytes, *, duration_us: int = 0
) -> worker_pb2.WorkerMessage:
    """A ResultBatch of one Result carrying ``output`` as it is."""
    result = worker_pb2.Result(
        invocation_id=invocation_id, attempt=attempt, output=output, duration_us=duration_us
    )
    return worker_pb2.WorkerMessage(result_batch=worker_pb2.ResultBatch(results=[result]))


class RawWorker:
    """A worker stream driven by hand: raw bytes out, raw frames in, heartbeats never sent."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        method = channel.stream_stream(
            _CONNECT, request_serializer=_identity, response_deserializer=_identity
        )
        self.call: Any = method()

    async def register(
        self, service: str, config: common_pb2.ComponentConfig | None = None
    ) -> None:
        await self.send(register_message(service, config))
        message = worker_pb2.CoordinatorMessage.FromString(await self.read())
        assert message.WhichOneof("message") == "register_ack", message

    async def send(self, data: bytes | worker_pb2.WorkerMessage) -> None:
        await self.call.write(data if isinstance(data, bytes) else data.SerializeToString())

    async def read(self, timeout: float = 10.0) -> Any:
        return await asyncio.wait_for(self.call.read(), timeout)

    async def invokes(self) -> list[worker_pb2.Invoke]:
        """The invocations of the next InvokeBatch (other frames skipped; bounded)."""
        for _ in range(100):
            message = worker_pb2.CoordinatorMessage.FromString(await self.read())
            if message.WhichOneof("message") == "invoke_batch":
                return list(message.invoke_batch.invocations)
        raise AssertionError("no InvokeBatch in 100 frames")

    async def ended(self, timeout: float = 10.0) -> bool:
        """Whether the coordinator ends the stream within ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            for _ in range(1000):  # drain whatever it still sends
                try:
                    if await self.call.read() is grpc.aio.EOF:
                        return True
                except grpc.aio.AioRpcError:
                    return True
        return False


async def answer(client: Any, rogue: RawWorker, service: str, output: bytes, **fields: int) -> Any:
    """Invoke ``service/f`` with ``client`` (an `AsyncClient`) and answer it from ``rogue``
    with ``output`` (and Result ``fields``); what the invoke returns or raises."""
    pending = asyncio.create_task(client.invoke(service, "f"))
    (invoke,) = await rogue.invokes()
    await rogue.send(result_message(invoke.invocation_id, invoke.attempt, output, **fields))
    return await pending


async def results_after_restart(
    data_dir: str, service: str, ids: list[str], *, journal: tuple[str, ...] | None = None
) -> list[Any]:
    """The results of ``ids`` from a coordinator started afresh on ``data_dir`` (or the
    ``journal`` flag and value given) with an echo worker of ``service``."""
    from agnt5.client import AsyncClient

    with coordinator_process(*(journal or ("--data-dir", data_dir))) as process:
        async with (
            FakeWorker(process.endpoint, service, {"f": echo}),
            AsyncClient(process.endpoint, timeout=10) as client,
        ):
            return [await client.result(i) for i in ids]


async def echo(invoke: worker_pb2.Invoke) -> bytes:
    """Return the input unchanged."""
    return invoke.input or b"null"


def sleeper(seconds: float) -> Handler:
    async def handler(invoke: worker_pb2.Invoke) -> bytes:
        await asyncio.sleep(seconds)
        return invoke.input or b"null"

    return handler


def blocker(event: asyncio.Event) -> Handler:
    async def handler(invoke: worker_pb2.Invoke) -> bytes:
        await event.wait()
        return b'"released"'

    return handler


async def registered(client: Any, service: str, timeout: float = 10.0) -> None:
    """Wait until a worker of ``service`` is registered (``client``: an `AsyncClient`)."""
    deadline = time.monotonic() + timeout
    while not any(s["name"] == service and s["workers"] for s in await client.list_services()):
        if time.monotonic() > deadline:  # bounded by the deadline
            raise AssertionError(f"no worker of {service} registered in time")
        await asyncio.sleep(0.05)


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():  # bounded by the deadline
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_benchmark(script: str, *args: str, timeout: float) -> dict[str, str]:
    """Run ``benchmarks/<script> *args`` (it starts and stops its own processes); the
    ``name: value`` counts it prints. It must exit 0."""
    run = spawn(
        [sys.executable, str(BENCHMARKS / script), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=agnt5_env(),
    )  # fmt: skip
    try:
        stdout, stderr = run.communicate(timeout=timeout)
    finally:
        stop(run, grace=0)  # with the coordinator and workers it started
    output = stdout.decode()
    assert run.returncode == 0, output + stderr.decode()[-3000:]
    return dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
