"""Requests/s over HTTP under uvicorn + ``wrk``, on both of uvicorn's stacks, in one run.

For each stack (``httptools`` + ``uvloop``, what ``agnt5[standard]`` serves with, and the
pure-Python ``h11`` + ``asyncio``), one uvicorn process per app variant is loaded by ``wrk``
in turn, ``--repeats`` times interleaved. Each measurement gives the rate and the server's CPU
time per request (user + system, all its threads, from ``/proc``); every figure is a median and
every row a ratio of two figures from this run. On a quiet machine the server is CPU-bound and
the two agree; on a shared one rates swing with the neighbours while CPU per request holds, so
the rows use CPU per request where ``/proc`` has it (``--by rate`` for rates):

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
            httpx.post(url, json={"name": "Ada"}, timeout=1).raise_for_status()
            return
        except httpx.TransportError:
            if process.poll() is not None:
                raise RuntimeError("uvicorn exited") from None
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (None without /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    python: str, stack: str, variant: str, connections: int, duration: int, script: str
) -> tuple[float, float | None]:
    """Requests/s of one app variant under one uvicorn process, and its CPU µs per request."""
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
        cpu_before = _cpu_seconds(process.pid)
        output = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", script, url],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration + 30,
        ).stdout
        cpu_after = _cpu_seconds(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    if rate is None or count is None or "Non-2xx" in output:
        raise RuntimeError(f"wrk did not get a clean run:\n{output}")
    cpu = None
    if cpu_before is not None and cpu_after is not None:
        cpu = (cpu_after - cpu_before) / int(count.group(1)) * 1e6
    return float(rate.group(1)), cpu


def report(stack: str, runs: dict[str, list[tuple[float, float | None]]], by: str) -> None:
    """Print every variant's medians and the issue's rows for one stack."""
    rates = {v: statistics.median(r for r, _ in measured) for v, measured in runs.items()}
    cpus = {
        v: statistics.median(c for _, c in measured)
        if all(c is not None for _, c in measured)
        else None
        for v, measured in runs.items()
    }
    use_cpu = by == "cpu" and all(c is not None for c in cpus.values())
    # a variant's throughput as a share of another's: by rate, or by CPU per request inverted
    share = (
        (lambda v, ref: cpus[ref] / cpus[v])  # type: ignore[operator]
        if use_cpu
        else (lambda v, ref: rates[v] / rates[ref])
    )
    print(f"\n== uvicorn {'+'.join(STACKS[stack])} (medians of {len(next(iter(runs.values())))}; "
          f"rows by {'CPU per request' if use_cpu else 'rate'})")  # fmt: skip
    for variant, measured in runs.items():
        spread = (max(r for r, _ in measured) - min(r for r, _ in measured)) / rates[variant]
        cpu = "" if cpus[variant] is None else f"  {cpus[variant]:6.1f} us CPU/request"
        print(f"  {variant:>16}: {rates[variant]:8.0f} req/s (spread {spread:4.0%}){cpu}"
              f"  -> {share(variant, 'raw'):6.1%} of raw")  # fmt: skip
    if not (set(GOALS) | {"async+otel 1%", "async+otel 100%"}) <= runs.keys():
        return
    for variant, goal in GOALS.items():
        print(f"  {variant} handler: {share(variant, 'raw'):.0%} of raw (goal {goal})")
    for sample, goal in (("1%", "<= 10%"), ("100%", "<= 30%")):
        loss = 1 - share(f"async+otel {sample}", "async")
        print(f"  telemetry, metrics + {sample} of traces: {loss:.1%} loss (goal {goal})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stacks", default=",".join(STACKS), help="comma-separated")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--python", default=sys.executable, help="interpreter serving the apps")
    parser.add_argument("--by", choices=["cpu", "rate"], default="cpu", help="what the rows use")
    args = parser.parse_args()
    stacks = args.stacks.split(",")
    variants = args.variants.split(",")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    unknown = set(stacks) - STACKS.keys() | set(variants) - VARIANTS.keys()
    if unknown or "raw" not in variants or args.repeats < 1 or args.duration < 1:
        sys.exit(f"unknown stack or variant {sorted(unknown)} ('raw' is always needed), "
                 "or --repeats/--duration below 1")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="agnt5-wrk-") as scratch:
        script = os.path.join(scratch, "post.lua")
        Path(script).write_text(LUA)
        runs: dict[tuple[str, str], list[tuple[float, float | None]]] = {
            (s, v): [] for s in stacks for v in variants
        }
        for repeat in range(args.repeats):  # interleaved, so drift hits every app alike
            for stack, variant in runs:
                runs[stack, variant].append(
                    measure(args.python, stack, variant, args.connections, args.duration, script)
                )
            print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)
    for stack in stacks:
        report(stack, {v: runs[stack, v] for v in variants}, args.by)


if __name__ == "__main__":
    main()
