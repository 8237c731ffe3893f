"""Workflow steps/s on the journaled coordinator, and what a step costs beside an invocation.

    python benchmarks/workflows.py [--seconds 5] [--repeats 3] [--window 256] [--in-memory]

Starts a coordinator journaling to SQLite (as ``agnt5 coordinator`` does by default; ``--in-memory``
for none), one standalone worker serving ``benchmarks/_workflows.py`` and a measuring client, each
its own process on 127.0.0.1. Each repeat measures, one after the other: plain invocations of a
no-op function, then workflows of ten no-op steps, both through `AsyncClient.invoke_many` with
``--window`` in flight. Reported (medians): invocations/s, workflows/s and steps/s, and the CPU
seconds the coordinator, the worker and the client spent per invocation and per step (from
/proc), with the worker's per-step cost as a multiple of its per-invocation cost. A report, not a
timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from throughput import ROOT, _env, _first_line, _process

__all__ = ["main"]

SERVICE = "bench_flows"
_START_TIMEOUT = 30.0
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


async def _measure(endpoint: str, seconds: float, window: int) -> None:
    """The client child: announce each phase on stdout (the parent samples CPU), then print
    the counts as JSON."""
    from agnt5.client import AsyncClient

    async def run(function: str, duration: float) -> tuple[int, float]:
        end = time.perf_counter() + duration

        def inputs() -> Any:
            while time.perf_counter() < end:  # bounded by the measuring time
                yield None

        count = 0
        started = time.perf_counter()
        async for result in client.invoke_many(SERVICE, function, inputs(), window=window):
            result.result()
            count += 1
        return count, time.perf_counter() - started

    counts: dict[str, float] = {}
    async with AsyncClient(endpoint, timeout=120) as client:
        deadline = time.monotonic() + _START_TIMEOUT
        while not any(s["name"] == SERVICE and s["workers"] for s in await client.list_services()):
            if time.monotonic() > deadline:  # bounded by the deadline
                raise RuntimeError("the benchmark worker never registered")
            await asyncio.sleep(0.1)
        await run("noop", 0.5)  # warm up both paths
        await run("ten_steps", 0.5)
        for name, function in (("plain", "noop"), ("workflow", "ten_steps")):
            print(f"start {name}", flush=True)
            counts[f"{name}_count"], counts[f"{name}_seconds"] = await run(function, seconds)
            print(f"end {name}", flush=True)
    print(json.dumps(counts), flush=True)


def _repeat(seconds: float, window: int, journal: Path | None) -> dict[str, float]:
    env = _env(False)
    storage = ["--data-dir", str(journal)] if journal is not None else ["--in-memory"]
    coordinator = [sys.executable, "-m", "agnt5", "coordinator", "--host", "127.0.0.1",
                   "--port", "0", "--no-http", "--log-level", "WARNING", *storage]  # fmt: skip
    with _process(coordinator, env) as coord:
        fields = dict(part.split("=", 1) for part in _first_line(coord, _START_TIMEOUT).split()[2:])
        endpoint = f"http://{fields['grpc']}"
        worker = [sys.executable, "-m", "agnt5", "worker", str(ROOT / "benchmarks" / "_workflows.py"),
                  "--service", SERVICE, "--max-concurrency", "1024", "--endpoint", endpoint,
                  "--log-level", "WARNING"]  # fmt: skip
        client = [sys.executable, str(Path(__file__).resolve()), "measure", endpoint,
                  str(seconds), str(window)]  # fmt: skip
        with _process(worker, env) as work, _process(client, env) as measure:
            assert measure.stdout is not None
            cpu: dict[str, float] = {}
            for raw in measure.stdout:  # bounded: the client measures for a fixed time and exits
                line = raw.decode().strip()
                if line.startswith(("start ", "end ")):
                    edge, phase = line.split()
                    for role, pid in (("coordinator", coord.pid), ("worker", work.pid),
                                      ("client", measure.pid)):  # fmt: skip
                        cpu[f"{phase}_{role}_{edge}"] = _cpu(pid)
                elif line.startswith("{"):
                    counts = json.loads(line)
            if measure.wait(60) != 0:
                raise RuntimeError("the measuring client failed")
    result = dict(counts)
    for phase in ("plain", "workflow"):
        for role in ("coordinator", "worker", "client"):
            result[f"{phase}_{role}_cpu"] = (
                cpu[f"{phase}_{role}_end"] - cpu[f"{phase}_{role}_start"]
            )
    return result


def _report(rows: list[dict[str, float]], journaled: bool) -> None:
    median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    invocations = median["plain_count"]
    steps = median["workflow_count"] * 10
    print(f"\n== {'journaled (SQLite)' if journaled else 'in-memory'} coordinator, "
          f"medians of {len(rows)}")  # fmt: skip
    print(f"  plain invocations: {invocations / median['plain_seconds']:,.0f}/s")
    print(f"  workflows of 10 no-op steps: {median['workflow_count'] / median['workflow_seconds']:,.0f}"
          f"/s = {steps / median['workflow_seconds']:,.0f} steps/s (goal >= 2,900)")  # fmt: skip
    print("  CPU per unit (us):        per invocation   per step   ratio")
    for role in ("coordinator", "worker", "client"):
        per_invocation = median[f"plain_{role}_cpu"] / invocations * 1e6
        per_step = median[f"workflow_{role}_cpu"] / steps * 1e6
        print(f"    {role:<12} {per_invocation:>22.1f} {per_step:>10.1f} "
              f"{per_step / per_invocation:>7.2f}x")  # fmt: skip
    print("  goal: worker per step <= 3x worker per invocation")


def main(argv: list[str]) -> int:
    if argv and argv[0] == "measure":
        asyncio.run(_measure(argv[1], float(argv[2]), int(argv[3])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--window", type=int, default=256, help="invocations in flight")
    parser.add_argument("--in-memory", action="store_true", help="no journal")
    args = parser.parse_args(argv)
    rows = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="agnt5-bench-flows-") as data:
            journal = None if args.in_memory else Path(data)
            rows.append(_repeat(args.seconds, args.window, journal))
        print(f"repeat {repeat + 1}: done", flush=True)
    _report(rows, not args.in_memory)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
