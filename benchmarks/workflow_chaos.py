"""Workflow chaos: five-step workflows through three workers while one is ``kill -9``'d twice.

``python benchmarks/workflow_chaos.py --workflows 1000`` starts a journaled coordinator and
three standalone workers (real processes on 127.0.0.1), runs ``chaos_flows/five`` once per key
(all in flight at once, through `AsyncClient.invoke_many`), and ``kill -9``s the first worker
when a third and again when two thirds of the steps have run (restarting it each time). Every
step appends ``key step pid`` to a log before it returns. Then it checks that every workflow
completed with exactly one result (one journaled invocation per key, its output the five step
numbers) and that no step ran more than once, except steps in flight on a killed worker:
those may run once more per kill. Prints the counts; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chaos import Cluster, cluster, journaled, wait_for_workers

from agnt5.client import AsyncClient

__all__ = ["main", "run"]

_SERVICE = "chaos_flows"
_KILLS = 2
_WORKER_MODULE = """\
import asyncio
import os
from pathlib import Path

from agnt5 import workflow

_log = open(Path(__file__).parent / f"steps-{os.getpid()}.log", "a", buffering=1)


async def step(key: str, n: int) -> int:
    await asyncio.sleep(0.002)
    _log.write(f"{key} {n} {os.getpid()}\\n")  # written before the step returns
    return n


@workflow
async def five(ctx, key: str) -> list:
    return [await ctx.step(f"s{n}", step, key, n) for n in range(5)]
"""


def _steps_run(directory: Path) -> int:
    return sum(path.read_bytes().count(b"\n") for path in directory.glob("steps-*.log"))


async def _drive(running: Cluster, workflows: int) -> dict[str, Any]:
    """Run every key at once while the first worker is killed twice; the results by key."""
    results: dict[str, Any] = {}
    async with AsyncClient(running.endpoint, timeout=300.0) as client:
        await wait_for_workers(client, _SERVICE, len(running.workers), 60.0)

        async def chaos() -> None:
            for kill in range(1, _KILLS + 1):
                while _steps_run(running.directory) < 5 * workflows * kill / (_KILLS + 1):  # noqa: ASYNC110 - polls files
                    await asyncio.sleep(0.05)
                await asyncio.to_thread(running.kill_worker, 0)

        killer = asyncio.create_task(chaos())
        keys = [f"flow-{i}" for i in range(workflows)]
        try:
            batch = client.invoke_many(
                _SERVICE, "five", ({"key": key} for key in keys), idempotency_keys=keys,
                window=workflows,
            )  # fmt: skip
            async for outcome in batch:
                key = keys[outcome.index]
                results[key] = outcome.output if outcome.error is None else repr(outcome.error)
        finally:
            killer.cancel()
            await asyncio.gather(killer, return_exceptions=True)
    return results


def _executions(directory: Path) -> collections.Counter[tuple[str, str]]:
    runs: collections.Counter[tuple[str, str]] = collections.Counter()
    for path in directory.glob("steps-*.log"):
        for line in path.read_text().splitlines():
            key, step, _pid = line.split()
            runs[key, step] += 1
    return runs


def run(workflows: int, workers: int, directory: Path) -> dict[str, int]:
    """One chaos run; returns the counts."""
    started = time.monotonic()
    with cluster(directory, workers, _WORKER_MODULE, _SERVICE) as running:
        results = asyncio.run(_drive(running, workflows))
        max_concurrency = 100  # the workers' default: at most this many steps in flight each
    journal = journaled(directory, _SERVICE)
    runs = _executions(directory)
    keys = [f"flow-{i}" for i in range(workflows)]
    expected = [0, 1, 2, 3, 4]
    repeated = sum(count - 1 for count in runs.values() if count > 1)
    return {
        "workflows": workflows,
        "completed": sum(1 for key in keys if results.get(key) == expected),
        "journaled once": sum(1 for key in keys if journal.get(key, (0, 0, 0))[:2] == (1, 1)),
        "re-delivered": sum(1 for key in keys if journal.get(key, (0, 0, 0))[2] > 1),
        "steps never run": sum(1 for key in keys for n in range(5) if not runs[key, str(n)]),
        "steps run again": repeated,
        "steps over allowance": sum(1 for count in runs.values() if count > 1 + _KILLS),
        "repeats over in-flight bound": max(0, repeated - _KILLS * max_concurrency),
        "seconds": round(time.monotonic() - started),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--data-dir", help="keep the journal and logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="agnt5-workflow-chaos-") as scratch:
        directory = Path(args.data_dir or scratch)
        directory.mkdir(parents=True, exist_ok=True)
        counts = run(args.workflows, args.workers, directory)
    for name, value in counts.items():
        print(f"{name}: {value}")
    ok = counts["completed"] == counts["journaled once"] == counts["workflows"]
    ok = ok and counts["steps never run"] == 0 and counts["steps over allowance"] == 0
    ok = ok and counts["repeats over in-flight bound"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
