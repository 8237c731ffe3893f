"""Soak run: N invocations through one worker, sampling worker and coordinator RSS every 100k.

``python benchmarks/soak.py --invocations 1000000`` starts a coordinator (journaled to a
temporary dir unless ``--in-memory``) and one standalone worker as real processes, invokes
``soak/echo`` through `AsyncClient.invoke_many` in rounds of ``--every`` invocations and
prints each process's VmRSS (from ``/proc/<pid>/status``) after every round, then the growth
of each from the first sample to the last (total and per round).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from chaos import free_port, start_agnt5, stop_process

from agnt5.client import AsyncClient

__all__ = ["main"]

_WORKER_MODULE = """\
from agnt5 import function


@function()
def echo(i: int) -> int:
    return i
"""


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def _soak(endpoint: str, pids: dict[str, int], invocations: int, every: int) -> list[str]:
    lines = []
    samples: list[dict[str, int]] = []
    async with AsyncClient(endpoint, timeout=120.0) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the worker registered
            if any(s["name"] == "soak" and s["workers"] for s in await client.list_services()):
                break
            await asyncio.sleep(0.1)
        started = time.monotonic()
        for done in range(every, invocations + every, every):
            count = min(every, invocations - (done - every))
            failed = 0
            async for outcome in client.invoke_many("soak", "echo", range(count)):
                failed += outcome.error is not None
            samples.append({name: _rss_kib(pid) for name, pid in pids.items()})
            rss = "  ".join(f"{name} {kib / 1024:.1f} MiB" for name, kib in samples[-1].items())
            elapsed = time.monotonic() - started
            lines.append(
                f"{done - every + count:>9} done ({failed} failed, {elapsed:.0f} s): {rss}"
            )
            print(lines[-1], flush=True)
    rounds = max(1, len(samples) - 1)
    for name in pids:
        growth = (samples[-1][name] - samples[0][name]) / 1024
        lines.append(
            f"{name}: {growth:+.1f} MiB from the first sample to the last "
            f"({growth / rounds:+.2f} MiB per {every})"
        )
        print(lines[-1], flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=100_000, help="invocations per sample")
    parser.add_argument("--in-memory", action="store_true", help="run the coordinator unjournaled")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="agnt5-soak-") as scratch:
        directory = Path(scratch)
        module = directory / "soak_worker.py"
        module.write_text(_WORKER_MODULE)
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        storage = ["--in-memory"] if args.in_memory else ["--data-dir", scratch]
        coordinator = start_agnt5(
            ["coordinator", "--host", "127.0.0.1", "--port", str(port), "--no-http",
             "--max-queue", "100000", "--log-level", "ERROR", *storage], directory, announce=True,
        )  # fmt: skip
        worker = start_agnt5(
            ["worker", str(module), "--service", "soak", "--endpoint", endpoint,
             "--log-level", "WARNING"], directory, announce=False,
        )  # fmt: skip
        try:
            pids = {"worker": worker.pid, "coordinator": coordinator.pid}
            asyncio.run(_soak(endpoint, pids, args.invocations, args.every))
        finally:
            stop_process(worker)
            stop_process(coordinator)
    return 0


if __name__ == "__main__":
    sys.exit(main())
