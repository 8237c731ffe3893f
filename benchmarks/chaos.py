"""Chaos run: invocations with idempotency keys survive kill -9 of workers and the coordinator.

``python benchmarks/chaos.py --invocations 10000`` starts a journaled coordinator and three
standalone workers (real processes on 127.0.0.1), invokes ``chaos/tag`` once per key through an
`AsyncClient` while it ``kill -9``s one worker twice (restarting it) and the coordinator once
(restarting it on the same port and data dir), then checks: every key has exactly one
journaled invocation and it succeeded; asking again with the same key returns the very result
the client saw (a second execution's result would carry another random token). Prints the
counts; exits 1 if any invocation is lost or any client saw a duplicate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agnt5.client import AsyncClient
from agnt5.errors import AgntError

__all__ = [
    "Cluster",
    "cluster",
    "free_port",
    "journaled",
    "main",
    "run",
    "start_agnt5",
    "stop_process",
    "wait_for_workers",
]

_SERVICE = "chaos"
_WORKER_MODULE = """\
import asyncio
import os

from agnt5 import function


@function()
async def tag(i: int) -> dict:
    await asyncio.sleep(0.002)
    return {"i": i, "token": os.urandom(8).hex()}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    """The environment's agnt5 first (an installed build), else this source tree's."""
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{path}:{root}" if path else root,
            "AGNT5_DISABLE_TELEMETRY": "true", "AGNT5_HEALTH_PORT": "0"}  # fmt: skip


class Cluster:
    """The coordinator and worker processes of one run; each stopped by its pid. The workers
    serve ``module`` (its source, written to ``directory``) as ``service``."""

    def __init__(
        self, directory: Path, workers: int, module: str = _WORKER_MODULE, service: str = _SERVICE
    ) -> None:
        self.directory = directory
        self.service = service
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.module = directory / f"{service}_worker.py"
        self.module.write_text(module)
        self.coordinator = self._start_coordinator()
        self.workers = [self._start_worker(n) for n in range(workers)]

    def _start_coordinator(self) -> subprocess.Popen[bytes]:
        return start_agnt5(
            ["coordinator", "--host", "127.0.0.1", "--port", str(self.port), "--no-http",
             "--data-dir", str(self.directory), "--heartbeat-timeout", "5",
             "--max-queue", "100000", "--log-level", "ERROR"], self.directory, announce=True,
        )  # fmt: skip

    def _start_worker(self, n: int) -> subprocess.Popen[bytes]:
        return start_agnt5(
            ["worker", str(self.module), "--service", self.service, "--endpoint", self.endpoint,
             "--log-level", "WARNING"], self.directory, announce=False,
        )  # fmt: skip

    def kill_worker(self, n: int) -> None:
        _kill(self.workers[n])
        self.workers[n] = self._start_worker(n)

    def kill_coordinator(self) -> None:
        _kill(self.coordinator)
        self.coordinator = self._start_coordinator()

    def stop(self) -> None:
        for process in (*self.workers, self.coordinator):
            stop_process(process)


def start_agnt5(
    args: list[str], directory: Path, *, announce: bool, timeout: float = 30.0
) -> subprocess.Popen[bytes]:
    """``python -m agnt5 *args`` in ``directory``, its output to a log file there.

    With ``announce`` (a coordinator): returns once it printed its address, starting it again
    while its port is still held by a killed predecessor, for up to ``timeout`` seconds.
    """
    command = [sys.executable, "-m", "agnt5", *args]
    if not announce:
        with open(directory / f"{args[0]}-{time.monotonic_ns()}.log", "wb") as log:
            return subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=directory
            )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, env=_env(), cwd=directory)
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if ready and process.stdout.readline().startswith(b"agnt5 coordinator:"):
            return process
        stop_process(process)
        time.sleep(0.2)
    raise RuntimeError(f"{command} did not start within {timeout:g} s")


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            _kill(process)
    if process.stdout is not None:
        process.stdout.close()


@contextlib.contextmanager
def cluster(
    directory: Path, workers: int, module: str = _WORKER_MODULE, service: str = _SERVICE
) -> Iterator[Cluster]:
    """A `Cluster`, stopped on exit."""
    running = Cluster(directory, workers, module, service)
    try:
        yield running
    finally:
        running.stop()


async def wait_for_workers(client: AsyncClient, service: str, count: int, timeout: float) -> None:
    """Return once ``count`` workers of ``service`` are registered (else `RuntimeError`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services = {s["name"]: s for s in await client.list_services()}
        if len(services.get(service, {}).get("workers", ())) >= count:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{count} workers did not register within {timeout:g} s")


async def _drive(running: Cluster, invocations: int, concurrency: int) -> dict[str, Any]:
    """Invoke every key while the chaos schedule runs; then ask every key again."""
    seen: dict[str, Any] = {}
    failures: dict[str, str] = {}
    done = 0
    # kill points, as fractions of the finished invocations: worker, coordinator, worker
    schedule = [(0.15, "worker"), (0.4, "coordinator"), (0.65, "worker")]

    async with AsyncClient(running.endpoint, timeout=120.0) as client:
        await wait_for_workers(client, running.service, len(running.workers), 60.0)
        keys = iter(range(invocations))

        async def invoke_all() -> None:
            nonlocal done
            for i in keys:  # shared by all runners: each key once
                key = f"chaos-{i}"
                try:
                    seen[key] = await client.invoke(_SERVICE, "tag", i, idempotency_key=key)
                except AgntError as error:
                    failures[key] = repr(error)
                done += 1

        async def chaos() -> None:
            for fraction, target in schedule:
                while done < fraction * invocations:  # noqa: ASYNC110 - polls a plain counter
                    await asyncio.sleep(0.01)
                await asyncio.to_thread(
                    running.kill_coordinator if target == "coordinator" else running.kill_worker,
                    *(() if target == "coordinator" else (0,)),
                )

        async with asyncio.TaskGroup() as group:
            chaos_task = group.create_task(chaos())
            runners = [group.create_task(invoke_all()) for _ in range(concurrency)]
            await asyncio.gather(*runners)
            chaos_task.cancel()  # too few invocations left to reach a kill point

        again = {}
        for start in range(0, invocations, concurrency):  # same keys: the recorded results
            chunk = [f"chaos-{i}" for i in range(start, min(invocations, start + concurrency))]
            outcomes = await asyncio.gather(
                *(client.invoke(_SERVICE, "tag", int(key[6:]), idempotency_key=key)
                  for key in chunk), return_exceptions=True,
            )  # fmt: skip
            again.update(zip(chunk, outcomes, strict=True))
    return {"seen": seen, "failures": failures, "again": again}


def journaled(directory: Path, service: str = _SERVICE) -> dict[str, tuple[int, int, int]]:
    """Idempotency key -> (journaled invocations, succeeded ones, highest attempt)."""
    with contextlib.closing(sqlite3.connect(directory / "journal.db")) as db:
        rows = db.execute(
            "SELECT idempotency_key, COUNT(*), SUM(state = 3), MAX(attempt) FROM invocations "
            "WHERE service = ? GROUP BY idempotency_key",
            (service,),
        ).fetchall()
    return {key: (count, ok, attempt) for key, count, ok, attempt in rows}


def run(invocations: int, concurrency: int, workers: int, directory: Path) -> dict[str, int]:
    """One chaos run; returns the counts."""
    started = time.monotonic()
    with cluster(directory, workers) as running:
        outcome = asyncio.run(_drive(running, invocations, concurrency))
    journal = journaled(directory)
    seen, again = outcome["seen"], outcome["again"]
    keys = [f"chaos-{i}" for i in range(invocations)]
    completed = sum(1 for key in keys if journal.get(key, (0, 0, 0))[1] == 1)
    duplicates = sum(
        1 for key in keys
        if key in seen and (again[key] != seen[key] or seen[key]["i"] != int(key[6:]))
    ) + sum(1 for key in keys if journal.get(key, (0, 0, 0))[0] > 1)  # fmt: skip
    return {
        "submitted": invocations,
        "completed": completed,
        "re-delivered": sum(1 for key in keys if journal.get(key, (0, 0, 0))[2] > 1),
        "client errors": len(outcome["failures"]),
        "duplicates seen by clients": duplicates,
        "lost": invocations - sum(1 for key in keys if key in seen and key in journal),
        "seconds": round(time.monotonic() - started),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=200, help="invocations in flight")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--data-dir", help="keep the journal here (default: a temporary dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="agnt5-chaos-") as scratch:
        directory = Path(args.data_dir or scratch)
        directory.mkdir(parents=True, exist_ok=True)
        counts = run(args.invocations, args.concurrency, args.workers, directory)
    for name, value in counts.items():
        print(f"{name}: {value}")
    ok = counts["lost"] == 0 and counts["duplicates seen by clients"] == 0
    ok = ok and counts["completed"] == counts["submitted"] and counts["client errors"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
