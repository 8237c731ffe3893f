"""Standalone end-to-end invocations/s with telemetry off versus on (in-memory exporters).

    cd benchmarks && python telemetry_e2e.py [--seconds 5] [--repeats 3] [--in-flight 64]

One ``agnt5 coordinator`` and two ``agnt5 worker`` processes serving a no-op handler, all on
127.0.0.1: ``bench-off`` (``AGNT5_DISABLE_TELEMETRY=true``) and ``bench-on`` (`_noop_otel`: every
span and metric into in-memory exporters). This process drives ``--in-flight`` concurrent
`AsyncClient.invoke` calls at one service at a time, alternating off/on for ``--repeats`` rounds,
and reports the medians and the throughput loss (goal ≤ 15%).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from throughput import _START_TIMEOUT, _env, _first_line, _process

from agnt5.client import AsyncClient

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
MODES = {"off": "_noop.py", "on": "_noop_otel.py"}


async def _drive(client: AsyncClient, service: str, in_flight: int, seconds: float) -> float:
    """Invocations/s of ``in_flight`` callers each invoking ``noop`` back to back for ``seconds``."""
    end = time.perf_counter() + seconds
    counts = [0] * in_flight

    async def caller(slot: int) -> None:
        while time.perf_counter() < end:  # bounded by the measuring time
            await client.invoke(service, "noop", timeout=30)
            counts[slot] += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller(slot) for slot in range(in_flight)))
    return sum(counts) / (time.perf_counter() - started)


async def _wait_registered(client: AsyncClient) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    wanted = {f"bench-{mode}" for mode in MODES}
    while True:  # bounded by the deadline
        services = await client.list_services()
        if wanted <= {s["name"] for s in services if s["workers"]}:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the benchmark workers never registered")
        await asyncio.sleep(0.1)


async def _measure(
    endpoint: str, seconds: float, repeats: int, in_flight: int
) -> dict[str, list[float]]:
    runs: dict[str, list[float]] = {mode: [] for mode in MODES}
    async with AsyncClient(endpoint, timeout=30) as client:
        await _wait_registered(client)
        for mode in MODES:
            await _drive(client, f"bench-{mode}", in_flight, 0.5)  # warm up
        for _ in range(repeats):
            for mode in MODES:
                rate = await _drive(client, f"bench-{mode}", in_flight, seconds)
                runs[mode].append(rate)
                print(f"  {mode:>3}: {rate:8.0f} inv/s", flush=True)
    return runs


@contextlib.contextmanager
def _workers(endpoint: str) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for mode, app in MODES.items():
            env = _env(False)
            if mode == "off":
                env["AGNT5_DISABLE_TELEMETRY"] = "true"
            command = [sys.executable, "-m", "agnt5", "worker", str(HERE / app), "--service", f"bench-{mode}",
                       "--max-concurrency", "1024", "--endpoint", endpoint, "--log-level", "WARNING"]  # fmt: skip
            stack.enter_context(_process(command, env))
        yield


def main(argv: list[str]) -> int:
    """Run the comparison and print the medians and the loss."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args(argv)
    coordinator = [sys.executable, "-m", "agnt5", "coordinator", "--host", "127.0.0.1", "--port", "0",
                   "--http-port", "0", "--in-memory", "--log-level", "WARNING"]  # fmt: skip
    with _process(coordinator, _env(False)) as coord:
        fields = dict(part.split("=", 1) for part in _first_line(coord, _START_TIMEOUT).split()[2:])
        endpoint = f"http://{fields['grpc']}"
        with _workers(endpoint):
            runs = asyncio.run(_measure(endpoint, args.seconds, args.repeats, args.in_flight))
    off, on = (statistics.median(runs[mode]) for mode in MODES)
    print(f"standalone, {args.in_flight} in flight: off {off:.0f} inv/s, on {on:.0f} inv/s, "
          f"loss {100 * (1 - on / off):.1f}% (goal <= 15%)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
