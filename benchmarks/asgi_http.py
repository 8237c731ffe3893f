"""Requests/s over HTTP under uvicorn + ``wrk``, on both of uvicorn's stacks, in one run.

For each stack (``httptools`` + ``uvloop``, what ``uvicorn[standard]`` serves with, and the
pure-Python ``h11`` + ``asyncio``), one uvicorn process per app variant is loaded by ``wrk``
in turn, ``--repeats`` times interleaved; every rate is a median and every row a ratio of two
rates measured in this run:

- async / sync / ``inline=True`` handler: the worker's rate as a share of the raw ASGI app's
  (`_asgi_apps.raw`), and the one-``to_thread``-hop raw app for reference;
- telemetry on (metrics + 1% of traces sampled, metrics + every trace sampled, into in-memory
  exporters): the loss against the same worker with telemetry off.

    python benchmarks/asgi_http.py [--connections 64] [--duration 5] [--repeats 3]
                                   [--stacks httptools,h11] [--python PATH]

``--python`` serves the apps with another interpreter (e.g. another venv, to measure an older
installed agnt5 with this script). Needs ``wrk`` (Debian package ``wrk``), uvicorn, and for the
first stack httptools and uvloop. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
LUA = 'wrk.method = "POST"\nwrk.body = \'{"name":"Ada"}\'\nwrk.headers["Content-Type"] = "application/json"\n'
STACKS = {"httptools": ("httptools", "uvloop"), "h11": ("h11", "asyncio")}
# variant: (app in _asgi_apps, function, traces sampled: None = telemetry off)
VARIANTS = {
    "raw": ("raw", "noop", None),
    "raw+hop": ("raw_hop", "noop_sync", None),
    "async": ("worker", "noop", None),
    "sync": ("worker", "noop_sync", None),
    "inline": ("worker", "noop_inline", None),
    "async+otel 1%": ("worker", "noop", 0.01),
    "async+otel 100%": ("worker", "noop", 1.0),
}
GOALS = {"async": ">= 90%", "sync": ">= 75%", "inline": ">= 90%"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # bounded by the deadline
        try:
            httpx.post(url, content=b'{"name":"Ada"}', timeout=1).raise_for_status()
            return
        except httpx.TransportError:
            if process.poll() is not None:
                raise RuntimeError("uvicorn exited") from None
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def measure(
    python: str, stack: str, variant: str, connections: int, duration: int, script: str
) -> float:
    """Requests/s of one app variant under one uvicorn process."""
    app, function, sample = VARIANTS[variant]
    http, loop = STACKS[stack]
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGNT5_", "OTEL_"))}
    env.update(AGNT5_BENCH_TELEMETRY="0" if sample is None else "1")
    if sample is not None:
        env["AGNT5_BENCH_SAMPLE"] = str(sample)
    command = [python, "-P", "-m", "uvicorn", f"_asgi_apps:{app}", "--port", str(port),
               "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log",
               "--http", http, "--loop", loop]  # fmt: skip
    process = subprocess.Popen(command, cwd=HERE, env={**env, "PYTHONPATH": str(HERE)})
    url = f"http://127.0.0.1:{port}/invoke/{function}"
    try:
        _wait_ready(url, process)
        output = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", script, url],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration + 30,
        ).stdout
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None or "Non-2xx" in output:
        raise RuntimeError(f"wrk did not get a clean run:\n{output}")
    return float(match.group(1))


def report(stack: str, medians: dict[str, float], runs: dict[str, list[float]]) -> None:
    raw = medians["raw"]
    print(f"\n== uvicorn {'+'.join(STACKS[stack])} (medians; every row a ratio from this run)")
    for variant, median in medians.items():
        spread = (max(runs[variant]) - min(runs[variant])) / median
        print(f"  {variant:>16}: {median:8.0f} req/s  {median / raw:6.1%} of raw  "
              f"(spread of runs {spread:.0%})")  # fmt: skip
    for variant, goal in GOALS.items():
        print(f"  {variant} handler: {medians[variant] / raw:.0%} of raw (goal {goal})")
    for sample, goal in (("1%", "<= 10%"), ("100%", "<= 30%")):
        loss = 1 - medians[f"async+otel {sample}"] / medians["async"]
        print(f"  telemetry, metrics + {sample} of traces: {loss:.1%} loss (goal {goal})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stacks", default=",".join(STACKS), help="comma-separated")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--python", default=sys.executable, help="interpreter serving the apps")
    args = parser.parse_args()
    stacks = args.stacks.split(",")
    variants = args.variants.split(",")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    unknown = set(stacks) - STACKS.keys() | set(variants) - VARIANTS.keys()
    if unknown or "raw" not in variants:
        sys.exit(f"unknown stack or variant {sorted(unknown)}; 'raw' is always needed")
    with tempfile.TemporaryDirectory(prefix="agnt5-wrk-") as scratch:
        script = os.path.join(scratch, "post.lua")
        Path(script).write_text(LUA)
        runs = {(s, v): [] for s in stacks for v in variants}
        for repeat in range(args.repeats):  # interleaved, so drift hits every app alike
            for stack, variant in runs:
                rate = measure(args.python, stack, variant, args.connections, args.duration, script)
                runs[stack, variant].append(rate)
            print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)
    for stack in stacks:
        medians = {v: statistics.median(runs[stack, v]) for v in variants}
        stack_runs = {v: runs[stack, v] for v in variants}
        if set(GOALS) | {"async+otel 1%", "async+otel 100%"} <= set(variants):
            report(stack, medians, stack_runs)
        else:
            raw = medians["raw"]
            for variant, median in medians.items():
                print(f"  {stack} {variant:>16}: {median:8.0f} req/s  {median / raw:6.1%} of raw")


if __name__ == "__main__":
    main()
