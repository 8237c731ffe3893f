"""Requests/s of ``POST /invoke/noop`` over HTTP: one uvicorn process per app, loaded by ``wrk``.

The apps of ``_asgi_apps`` (agnt5 worker, the worker with telemetry into in-memory exporters,
raw ASGI, Starlette route) are measured one after another in one run; each rate is printed as
a share of the raw app's, and telemetry's cost as a share of the worker's.

    python benchmarks/asgi_http.py [--connections 64] [--duration 10]

Needs ``wrk`` (Debian package ``wrk``) and uvicorn. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
LUA = 'wrk.method = "POST"\nwrk.body = \'{"name":"Ada"}\'\nwrk.headers["Content-Type"] = "application/json"\n'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # bounded by the deadline
        try:
            httpx.post(url, json={"name": "Ada"}, timeout=1)
            return
        except httpx.TransportError:
            if process.poll() is not None:
                raise RuntimeError("uvicorn exited") from None
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def measure(variant: str, connections: int, duration: int, script: str) -> float:
    """Requests/s of one app variant under one uvicorn process."""
    app, _, telemetry = variant.partition("+")
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"_asgi_apps:{app}",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=HERE,
        env={**os.environ, "AGNT5_BENCH_TELEMETRY": "1" if telemetry else "0"},
    )
    url = f"http://127.0.0.1:{port}/invoke/noop"
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
        process.wait(10)
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"wrk printed no rate:\n{output}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(LUA)
    rates: dict[str, list[float]] = {"raw": [], "worker": [], "worker+otel": [], "starlette": []}
    for _ in range(args.repeats):  # interleaved, so drift hits every app alike
        for app, runs in rates.items():
            runs.append(measure(app, args.connections, args.duration, lua.name))
    medians = {app: sorted(values)[len(values) // 2] for app, values in rates.items()}
    for app, median in medians.items():
        share = median / medians["raw"]
        print(f"{app:>11}: {median:9.0f} req/s  ({share:.0%} of raw)  runs={rates[app]}")
    loss = 1 - medians["worker+otel"] / medians["worker"]
    print(f"telemetry on (spans + metrics into in-memory exporters) costs {loss:.1%} of throughput")


if __name__ == "__main__":
    main()
