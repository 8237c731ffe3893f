"""Journaled throughput and latency: SQLite against PostgreSQL with one and two coordinators.

    python benchmarks/pg_throughput.py [--seconds 5] [--in-flight 256] [--database URL]

Each setup runs its own processes on 127.0.0.1: ``sqlite`` one coordinator on a data dir,
``postgres-1`` one coordinator on a PostgreSQL database, ``postgres-2`` two coordinators on one
database; one no-op worker per coordinator. The client (this process) streams no-op
invocations through `AsyncClient.invoke_many` (``--in-flight`` each, one stream per coordinator)
for ``--seconds``, then times single invokes one at a time. Printed per setup: invocations/s,
p50 latency, the CPU time each kind of process spent per invocation (coordinators, workers,
PostgreSQL's processes, this client) and PostgreSQL's commits/s, so the scaling can be projected
to machines with more cores. The PostgreSQL server is a throwaway one (`agnt5.testing_postgres`)
unless ``--database`` names one. A report, not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chaos import free_port, start_agnt5, stop_process, wait_for_workers

from agnt5.client import AsyncClient
from agnt5.testing_postgres import TemporaryPostgres

__all__ = ["main"]

_SERVICE = "bench"
_NOOP = Path(__file__).resolve().parent / "_noop.py"
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes ``pids`` used so far."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def _children(parent: int) -> list[int]:
    """``parent`` and its direct children (PostgreSQL's backends)."""
    found = [parent]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
                if int(stat[1]) == parent:
                    found.append(int(entry))
    return found


class _Setup:
    """Coordinators (one per database or data dir given) and one worker on each."""

    def __init__(self, directory: Path, storages: list[list[str]]) -> None:
        self.directory = directory
        self.processes: list[Any] = []
        self.endpoints: list[str] = []
        try:
            for storage in storages:
                port = free_port()
                self.processes.append(start_agnt5(
                    ["coordinator", "--host", "127.0.0.1", "--port", str(port), "--no-http",
                     *storage, "--log-level", "WARNING"], directory, announce=True,
                ))  # fmt: skip
                self.endpoints.append(f"http://127.0.0.1:{port}")
            self.coordinators = [process.pid for process in self.processes]
            for endpoint in self.endpoints:
                self.processes.append(start_agnt5(
                    ["worker", str(_NOOP), "--service", _SERVICE, "--max-concurrency", "1024",
                     "--endpoint", endpoint, "--log-level", "WARNING"], directory, announce=False,
                ))  # fmt: skip
            self.workers = [process.pid for process in self.processes[len(storages) :]]
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)


async def _stream(endpoint: str, in_flight: int, seconds: float) -> int:
    end = time.perf_counter() + seconds

    def inputs() -> Iterator[None]:
        while time.perf_counter() < end:  # bounded by the measuring time
            yield None

    count = 0
    async with AsyncClient(endpoint, timeout=60) as client:
        async for result in client.invoke_many(_SERVICE, "noop", inputs(), window=in_flight):
            result.result()
            count += 1
    return count


async def _latencies(endpoint: str, seconds: float) -> list[float]:
    latencies = []
    async with AsyncClient(endpoint, timeout=30) as client:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:  # bounded by the measuring time
            sent = time.perf_counter()
            await client.invoke(_SERVICE, "noop")
            latencies.append(time.perf_counter() - sent)
    return latencies


async def _commits(database: str | None) -> int:
    if database is None:
        return 0
    import asyncpg

    db = await asyncpg.connect(database, timeout=10)
    try:
        return int(
            await db.fetchval(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            )
        )
    finally:
        await db.close()


async def _measure(
    setup: _Setup, database: str | None, postgres: int | None, in_flight: int, seconds: float
) -> dict[str, float]:
    async with AsyncClient(setup.endpoints[0], timeout=30) as client:
        await wait_for_workers(client, _SERVICE, 1, 60.0)
    for endpoint in setup.endpoints:  # warm up
        await _stream(endpoint, in_flight, 0.5)
    roles = {
        "coordinators": setup.coordinators,
        "workers": setup.workers,
        "postgres": _children(postgres) if postgres is not None else [],
    }
    await asyncio.sleep(1.1)  # PostgreSQL publishes its statistics at most once a second
    commits = await _commits(database)
    cpu = {role: _cpu_seconds(pids) for role, pids in roles.items()}
    client_cpu = time.process_time()
    started = time.perf_counter()
    counts = await asyncio.gather(*(_stream(e, in_flight, seconds) for e in setup.endpoints))
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    invocations = sum(counts)
    used = {role: _cpu_seconds(pids) - cpu[role] for role, pids in roles.items()}
    await asyncio.sleep(1.1)
    commits = await _commits(database) - commits
    latencies = await _latencies(setup.endpoints[0], min(seconds, 3.0))
    results = {
        "invocations/s": invocations / elapsed,
        "p50 ms": statistics.median(latencies) * 1000,
        "commits/s": commits / elapsed,
        "client CPU us/inv": client_cpu / invocations * 1e6,
    }
    for role, seconds_used in used.items():
        results[f"{role} CPU us/inv"] = seconds_used / invocations * 1e6
    return results


def _database(server: TemporaryPostgres | None, url: str | None, name: str) -> str:
    if url is not None:
        return url
    assert server is not None
    return server.create_database(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--in-flight", type=int, default=256, help="per coordinator")
    parser.add_argument("--database", help="a PostgreSQL URL (default: a throwaway server)")
    args = parser.parse_args(argv)
    rows: dict[str, dict[str, float]] = {}
    with contextlib.ExitStack() as stack:
        server = None if args.database else stack.enter_context(TemporaryPostgres())
        postgres = server.pid if server is not None else None
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agnt5-pg-bench-")))
        for name, database, count in (
            ("sqlite", None, 1),
            ("postgres-1", _database(server, args.database, "one"), 1),
            ("postgres-2", _database(server, args.database, "two"), 2),
        ):
            directory = scratch / name
            directory.mkdir()
            storage = ["--database", database] if database else ["--data-dir", str(directory)]
            setup = _Setup(directory, [storage] * count)
            try:
                rows[name] = asyncio.run(
                    _measure(setup, database, postgres, args.in_flight, args.seconds)
                )
            finally:
                setup.stop()
    keys = list(next(iter(rows.values())))
    print(f"{'':28}" + "".join(f"{name:>14}" for name in rows))
    for key in keys:
        print(f"{key:28}" + "".join(f"{row[key]:14.1f}" for row in rows.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
