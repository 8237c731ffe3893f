"""Chaos across coordinators: three coordinators on one PostgreSQL database, kill -9 of one.

``python benchmarks/pg_chaos.py --invocations 5000 --workflows 200`` starts a throwaway
PostgreSQL server (`agnt5.testing_postgres`; or uses ``--database URL``), three coordinators on
it and three standalone workers that know all three endpoints (each starts on a random one and
fails over to the next). A client that knows all three endpoints streams keyed invocations of
``pgchaos/tag`` and keyed five-step workflows ``pgchaos/five``; when a third of them finished
it ``kill -9``s the first coordinator (restarting it on its port), at two thirds the first
worker (restarting it). Then it checks, from the database and the client: every key has
exactly one invocation and it succeeded; asking again with the same key returns the result the
client saw (a second execution would carry another random token); every workflow returned its
five steps; no step ran again after its outcome was journaled. Prints the counts; exits 1 if
anything was lost, duplicated or run again.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chaos import free_port, start_agnt5, stop_process

from agnt5.client import AsyncClient
from agnt5.errors import AgntError
from agnt5.testing_postgres import TemporaryPostgres

__all__ = ["main", "run"]

_SERVICE = "pgchaos"
_LEASE = "3"  # seconds: a killed coordinator's work is taken over this long after its last renewal
_WORKER_MODULE = """\
import asyncio
import os
import time
from pathlib import Path

from agnt5 import function, workflow

_log = open(Path(__file__).parent / f"steps-{os.getpid()}.log", "a", buffering=1)


@function()
async def tag(i: int) -> dict:
    await asyncio.sleep(0.002)
    return {"i": i, "token": os.urandom(8).hex()}


async def step(key: str, n: int) -> int:
    await asyncio.sleep(0.002)
    _log.write(f"{key} s{n} {int(time.time() * 1000)}\\n")  # written before the step returns
    return n


@workflow
async def five(ctx, key: str) -> list:
    return [await ctx.step(f"s{n}", step, key, n) for n in range(5)]
"""


class Cluster:
    """Coordinators on one database and workers that know them all; each stopped by its pid."""

    def __init__(self, directory: Path, database: str, coordinators: int, workers: int) -> None:
        self.directory = directory
        self.database = database
        self.ports = [free_port() for _ in range(coordinators)]
        self.endpoints = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.module = directory / f"{_SERVICE}_worker.py"
        self.module.write_text(_WORKER_MODULE)
        self.coordinators: list[Any] = []
        self.workers: list[Any] = []
        try:
            self.coordinators = [self._start_coordinator(port) for port in self.ports]
            self.workers = [self._start_worker() for _ in range(workers)]
        except BaseException:
            self.stop()
            raise

    def _start_coordinator(self, port: int) -> Any:
        return start_agnt5(
            ["coordinator", "--host", "127.0.0.1", "--port", str(port), "--no-http",
             "--database", self.database, "--lease", _LEASE, "--heartbeat-timeout", "5",
             "--max-queue", "100000", "--log-level", "ERROR"], self.directory, announce=True,
        )  # fmt: skip

    def _start_worker(self) -> Any:
        return start_agnt5(
            ["worker", str(self.module), "--service", _SERVICE,
             "--endpoint", ",".join(self.endpoints), "--log-level", "WARNING"],
            self.directory, announce=False,
        )  # fmt: skip

    def kill_coordinator(self, n: int) -> None:
        _kill(self.coordinators[n])
        self.coordinators[n] = self._start_coordinator(self.ports[n])

    def kill_worker(self, n: int) -> None:
        _kill(self.workers[n])
        self.workers[n] = self._start_worker()

    def stop(self) -> None:
        for process in (*self.workers, *self.coordinators):
            stop_process(process)


def _kill(process: Any) -> None:
    process.kill()
    process.wait(10)


@contextlib.contextmanager
def _database(url: str | None) -> Iterator[str]:
    """``url``, or a database on a throwaway server stopped on exit."""
    if url is not None:
        yield url
        return
    with TemporaryPostgres() as server:
        yield server.create_database("chaos")


async def _registered(endpoints: list[str], count: int, timeout: float) -> None:
    """Return once ``count`` workers registered, over all the coordinators."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded by the deadline
        registered = 0
        for endpoint in endpoints:
            async with AsyncClient(endpoint, timeout=10) as client:
                services = {s["name"]: s for s in await client.list_services()}
            registered += len(services.get(_SERVICE, {}).get("workers", ()))
        if registered >= count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{count} workers did not register within {timeout:g} s")


async def _drive(running: Cluster, invocations: int, workflows: int, concurrency: int) -> Any:
    """Invoke every key while the chaos schedule runs; then ask every key again."""
    seen: dict[str, Any] = {}
    failures: dict[str, str] = {}
    done = 0
    total = invocations + workflows
    calls = [(f"tag-{i}", "tag", i) for i in range(invocations)]
    calls += [(f"flow-{i}", "five", {"key": f"flow-{i}"}) for i in range(workflows)]
    calls.sort(key=lambda call: hash(call[0]))  # workflows spread among the invocations

    await _registered(running.endpoints, len(running.workers), 60.0)
    async with AsyncClient(running.endpoints, timeout=180.0) as client:
        pending = iter(calls)

        async def invoke_all() -> None:
            nonlocal done
            for key, function, payload in pending:  # shared by all runners: each key once
                try:
                    seen[key] = await client.invoke(
                        _SERVICE, function, payload, idempotency_key=key
                    )
                except AgntError as error:
                    failures[key] = repr(error)
                done += 1

        async def chaos() -> None:
            for fraction, kill in ((1 / 3, running.kill_coordinator), (2 / 3, running.kill_worker)):
                while done < fraction * total:  # noqa: ASYNC110 - polls a plain counter
                    await asyncio.sleep(0.01)
                await asyncio.to_thread(kill, 0)

        async with asyncio.TaskGroup() as group:
            chaos_task = group.create_task(chaos())
            await asyncio.gather(*(group.create_task(invoke_all()) for _ in range(concurrency)))
            chaos_task.cancel()  # too few calls left to reach a kill point

        again = {}
        for start in range(0, len(calls), concurrency):  # same keys: the recorded results
            chunk = calls[start : start + concurrency]
            outcomes = await asyncio.gather(
                *(client.invoke(_SERVICE, function, payload, idempotency_key=key)
                  for key, function, payload in chunk), return_exceptions=True,
            )  # fmt: skip
            again.update(zip((key for key, _, _ in chunk), outcomes, strict=True))
    return seen, failures, again


async def _journal(database: str) -> tuple[dict[str, tuple[int, int, int]], dict[Any, int]]:
    """Key -> (invocations, succeeded ones, highest attempt); (key, step) -> its journaled time."""
    import asyncpg

    db = await asyncpg.connect(database, timeout=10)
    try:
        rows = await db.fetch(
            "SELECT idempotency_key, COUNT(*), SUM((state = 3)::int), MAX(attempt) "
            "FROM invocations WHERE service = $1 GROUP BY idempotency_key",
            _SERVICE,
        )
        steps = await db.fetch(
            "SELECT i.idempotency_key, e.name, e.finished_unix_ms FROM journal_entries e "
            "JOIN invocations i ON i.id = e.invocation_id WHERE e.kind = 'step'"
        )
    finally:
        await db.close()
    keys = {key: (count, ok, attempt) for key, count, ok, attempt in rows}
    return keys, {(key, name): finished for key, name, finished in steps}


def _step_runs(directory: Path) -> dict[tuple[str, str], list[int]]:
    runs: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    for path in directory.glob("steps-*.log"):
        for line in path.read_text().splitlines():
            key, step, at = line.split()
            runs[key, step].append(int(at))
    return runs


def run(
    invocations: int, workflows: int, concurrency: int, database: str | None, directory: Path
) -> dict[str, int]:
    """One chaos run; returns the counts."""
    started = time.monotonic()
    with _database(database) as url:
        running = Cluster(directory, url, coordinators=3, workers=3)
        try:
            seen, failures, again = asyncio.run(
                _drive(running, invocations, workflows, concurrency)
            )
        finally:
            running.stop()
        journal, recorded = asyncio.run(_journal(url))
    runs = _step_runs(directory)
    tags = [f"tag-{i}" for i in range(invocations)]
    flows = [f"flow-{i}" for i in range(workflows)]
    keys = tags + flows
    duplicates = sum(1 for key in keys if key in seen and again[key] != seen[key])
    duplicates += sum(1 for key in tags if key in seen and seen[key]["i"] != int(key[4:]))
    duplicates += sum(1 for key in keys if journal.get(key, (0, 0, 0))[0] > 1)
    return {
        "invocations": invocations,
        "workflows": workflows,
        "completed": sum(1 for key in keys if journal.get(key, (0, 0, 0))[1] == 1),
        "workflows completed": sum(1 for key in flows if seen.get(key) == [0, 1, 2, 3, 4]),
        "re-delivered": sum(1 for key in keys if journal.get(key, (0, 0, 0))[2] > 1),
        "client errors": len(failures),
        "duplicates": duplicates,
        "lost": len(keys) - sum(1 for key in keys if key in seen and key in journal),
        "steps run again after journaled": sum(
            1
            for (key, step), times in runs.items()
            if (key, step) in recorded and any(at > recorded[key, step] for at in times)
        ),  # fmt: skip
        "steps run again in flight": sum(len(times) - 1 for times in runs.values() if times),
        "seconds": round(time.monotonic() - started),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=5_000)
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200, help="calls in flight")
    parser.add_argument("--database", help="a PostgreSQL URL (default: a throwaway server)")
    parser.add_argument("--work-dir", help="keep logs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="agnt5-pg-chaos-") as scratch:
        directory = Path(args.work_dir or scratch)
        directory.mkdir(parents=True, exist_ok=True)
        counts = run(args.invocations, args.workflows, args.concurrency, args.database, directory)
    for name, value in counts.items():
        print(f"{name}: {value}")
    ok = counts["lost"] == counts["duplicates"] == counts["client errors"] == 0
    ok = ok and counts["completed"] == counts["invocations"] + counts["workflows"]
    ok = ok and counts["workflows completed"] == counts["workflows"]
    ok = ok and counts["steps run again after journaled"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
