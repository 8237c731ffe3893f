"""End-to-end invocations/s and latency beside a raw grpc.aio echo, every figure a ratio from one run.

    python benchmarks/throughput.py [--seconds 2] [--repeats 3] [--mode compiled|fallback|both]
                                    [--python PATH ...] [--profile DIR] [--journal]

It measures the agnt5 *installed* for the interpreter (``--python``, default this one; give
several, e.g. an older venv, to compare them side by side, interleaved), never a source tree:
every process runs with ``-P`` from a scratch directory. Each mode (the compiled twins, or
``AGNT5_NO_EXTENSIONS=1``) gets its own coordinator, worker (a no-op async handler) and client
processes, all on 127.0.0.1; a run labelled compiled refuses to report unless every process
loaded the compiled twins (read from ``/proc/PID/maps`` on Linux).

Measured, medians of ``--repeats``: a raw bidirectional grpc.aio echo (messages/s with 16 in
flight, round trip with 1), the batched client path (`AsyncClient.invoke_many`) with 1, 64 and
256 in flight, per-call ``invoke`` with the same concurrency, latency with 1 in flight, and
``invoke_many`` with 256 in flight again against a coordinator journaling to SQLite (as
``agnt5 coordinator`` does by default). ``--journal`` measures only those two 256-in-flight
batched runs (in memory, journaled), and with several ``--python`` prints each one's ratios to
the first. ``--profile DIR`` records py-spy profiles of the coordinator and the worker during
both 256-in-flight batched runs on the first repeat. A report, not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc

HERE = Path(__file__).resolve().parent
SERVICE = "bench"
FLIGHTS = (1, 64, 256)
_ECHO = "/bench.Echo/Chat"
_START_TIMEOUT = 30.0
_TWINS = ("_dispatch", "_frames")  # in every version; USE_EXTENSIONS covers the rest

__all__ = ["main"]


def _env(fallback: bool) -> dict[str, str]:
    """The environment of every process: no agnt5 settings, no PYTHONPATH (the installed agnt5)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGNT5_", "OTEL_"))}
    env.pop("PYTHONPATH", None)
    if fallback:
        env["AGNT5_NO_EXTENSIONS"] = "1"
    return env


def _compiled_twins(pid: int) -> bool | None:
    """Whether process ``pid`` loaded every compiled twin (None where /proc cannot tell)."""
    maps = Path(f"/proc/{pid}/maps")
    if not maps.exists():
        return None
    text = maps.read_text()
    return all(f"_speedups/{twin}.cpython" in text for twin in _TWINS)


def _first_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline().decode().strip() if ready else ""


@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (from a scratch directory), stopped (SIGTERM, then SIGKILL) by its pid."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, cwd=tempfile.gettempdir())
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


# Raw grpc.aio echo: the transport's own cost per message.


async def _echo_server() -> None:
    async def chat(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        async for message in requests:
            yield message

    server = grpc.aio.server()
    handler = grpc.stream_stream_rpc_method_handler(chat)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Echo", {"Chat": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"port={port}", flush=True)
    await stop.wait()
    await server.stop(0)


async def _echo_measure(target: str, seconds: float) -> dict[str, float]:
    async with grpc.aio.insecure_channel(target) as channel:
        rate = await _echo_stream(channel, 16, seconds)
        latencies = await _echo_latencies(channel, seconds)
    return {"echo_msgs_per_s": rate, "echo_rtt_p50_us": _p(latencies, 50)}


async def _echo_stream(channel: grpc.aio.Channel, in_flight: int, seconds: float) -> float:
    """Messages/s echoed on one stream with ``in_flight`` outstanding (writer and reader apart)."""
    call = channel.stream_stream(_ECHO)()
    room = asyncio.Semaphore(in_flight)
    end = time.perf_counter() + seconds

    async def writer() -> None:
        while time.perf_counter() < end:  # bounded by the measuring time
            await room.acquire()
            await call.write(b"x" * 32)
        await call.done_writing()

    count = 0
    started = time.perf_counter()
    task = asyncio.create_task(writer())
    try:
        while await asyncio.wait_for(call.read(), 10) is not grpc.aio.EOF:  # until writer ends
            count += 1
            room.release()
    finally:
        elapsed = time.perf_counter() - started
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        call.cancel()
    return count / elapsed


async def _echo_latencies(channel: grpc.aio.Channel, seconds: float) -> list[float]:
    call = channel.stream_stream(_ECHO)()
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # bounded by the measuring time
        sent = time.perf_counter()
        await call.write(b"x" * 32)
        await asyncio.wait_for(call.read(), 10)
        latencies.append(time.perf_counter() - sent)
    call.cancel()
    return latencies


# The agnt5 path: client -> coordinator -> worker -> client.


def _p(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, len(ordered) * percent // 100)] * 1e6


async def _batched(client: Any, in_flight: int, seconds: float) -> float:
    end = time.perf_counter() + seconds

    def inputs() -> Iterator[None]:
        while time.perf_counter() < end:  # bounded by the measuring time
            yield None

    count = 0
    started = time.perf_counter()
    async for result in client.invoke_many(SERVICE, "noop", inputs(), window=in_flight):
        result.result()
        count += 1
    return count / (time.perf_counter() - started)


async def _batched_latencies(client: Any, seconds: float) -> list[float]:
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # bounded by the measuring time
        sent = time.perf_counter()
        async for result in client.invoke_many(SERVICE, "noop", [None], window=1):
            result.result()
        latencies.append(time.perf_counter() - sent)
    return latencies


async def _per_call(client: Any, in_flight: int, seconds: float) -> float:
    end = time.perf_counter() + seconds
    counts = [0] * in_flight

    async def caller(slot: int) -> None:
        while time.perf_counter() < end:  # bounded by the measuring time
            await client.invoke(SERVICE, "noop", timeout=30)
            counts[slot] += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller(slot) for slot in range(in_flight)))
    return sum(counts) / (time.perf_counter() - started)


async def _per_call_latencies(client: Any, seconds: float) -> list[float]:
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # bounded by the measuring time
        sent = time.perf_counter()
        await client.invoke(SERVICE, "noop", timeout=30)
        latencies.append(time.perf_counter() - sent)
    return latencies


async def _agnt5_measure(endpoint: str, seconds: float, what: str) -> dict[str, float]:
    """``what``: "all", or "batched" (only the 256-in-flight batched run); with "+profile",
    print "profile" before the 256-in-flight batched run."""
    from agnt5._speedups import USE_EXTENSIONS
    from agnt5.client import AsyncClient

    async with AsyncClient(endpoint, timeout=30) as client:
        deadline = time.monotonic() + _START_TIMEOUT
        while not await _registered(client):  # bounded by the deadline
            if time.monotonic() > deadline:
                raise RuntimeError("the benchmark worker never registered")
            await asyncio.sleep(0.1)
        await _batched(client, 64, 0.5)  # warm up both paths
        await _per_call(client, 16, 0.3)
        results: dict[str, float] = {"compiled": float(USE_EXTENSIONS)}
        if what.startswith("batched"):
            if what.endswith("+profile"):
                print("profile", flush=True)  # the parent starts py-spy now
                await asyncio.sleep(0.5)
            results["batched_256"] = await _batched(client, 256, seconds)
            return results
        for in_flight in FLIGHTS:
            if in_flight == 256 and what == "all+profile":
                print("profile", flush=True)  # the parent starts py-spy now
                await asyncio.sleep(0.5)
            results[f"batched_{in_flight}"] = await _batched(client, in_flight, seconds)
        for in_flight in FLIGHTS:
            results[f"per_call_{in_flight}"] = await _per_call(client, in_flight, seconds)
        latencies = await _batched_latencies(client, seconds)
        results["batched_p50_us"] = _p(latencies, 50)
        results["batched_p99_us"] = _p(latencies, 99)
        latencies = await _per_call_latencies(client, seconds)
        results["per_call_p50_us"] = _p(latencies, 50)
        results["per_call_p99_us"] = _p(latencies, 99)
    return results


async def _registered(client: Any) -> bool:
    services = await client.list_services()
    return any(s["name"] == SERVICE and s["workers"] for s in services)


# Orchestration.


def _child(
    python: str, args: list[str], env: dict[str, str], on_line: Callable[[str], None]
) -> dict[str, float]:
    """Run this script as a measuring child; its last stdout line is the JSON result."""
    command = [python, "-P", str(Path(__file__).resolve()), *args]
    with _process(command, env) as process:
        assert process.stdout is not None
        last = ""
        for raw in process.stdout:  # bounded: the child measures for a fixed time and exits
            line = raw.decode().strip()
            on_line(line)
            last = line
        if process.wait(60) != 0:
            raise RuntimeError(f"measuring child failed: {args}")
    return dict(json.loads(last))


@contextlib.contextmanager
def _agnt5_system(
    python: str, env: dict[str, str], storage: list[str]
) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A coordinator and a worker serving the no-op; yields the endpoint and both processes."""
    coordinator = [python, "-P", "-m", "agnt5", "coordinator", "--host", "127.0.0.1",
                   "--port", "0", "--http-port", "0", "--log-level", "WARNING", *storage]  # fmt: skip
    with _process(coordinator, env) as coord:
        line = _first_line(coord, _START_TIMEOUT)
        fields = dict(part.split("=", 1) for part in line.split()[2:])
        endpoint = f"http://{fields['grpc']}"
        worker = [python, "-P", "-m", "agnt5", "worker", str(HERE / "_noop.py"),
                  "--service", SERVICE, "--max-concurrency", "1024", "--endpoint", endpoint,
                  "--log-level", "WARNING"]  # fmt: skip
        with _process(worker, env) as worker_process:
            yield endpoint, [coord, worker_process]


def _check_twins(fallback: bool, results: dict[str, float], processes: list[Any]) -> None:
    """Refuse a run whose processes did not all load the twins its mode names."""
    loaded = [results["compiled"] == 1.0, *(_compiled_twins(p.pid) for p in processes)]
    if not fallback and not all(found is not False for found in loaded):
        sys.exit(
            "a compiled run loaded the pure-Python fallback (is agnt5 installed compiled for "
            "this interpreter? `pip install --force-reinstall --no-cache-dir agnt5`); not reported"
        )
    if fallback and any(loaded):
        sys.exit("a fallback run loaded the compiled twins; not reported")


def _measure(
    python: str,
    env: dict[str, str],
    args: list[str],
    processes: list[subprocess.Popen[bytes]],
    profile: Path | None,
    tag: str,
    seconds: float,
) -> dict[str, float]:
    """Run a measuring child; with ``profile``, py-spy records the coordinator and the worker
    from the moment the child prints "profile" (into ``<profile>/<tag>-<process>.txt``)."""
    spies: list[subprocess.Popen[bytes]] = []

    def on_line(line: str) -> None:
        if line == "profile" and profile is not None:
            for name, process in zip(("coordinator", "worker"), processes, strict=True):
                spies.append(subprocess.Popen(
                    [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw",
                     "--nonblocking", "-r", "200", "-d", str(max(1, int(seconds))),
                     "-p", str(process.pid), "-o", str(profile / f"{tag}-{name}.txt")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))  # fmt: skip

    try:
        return _child(python, args, env, on_line)
    finally:
        for spy in spies:
            spy.wait(60)


def _run_mode(
    python: str, fallback: bool, seconds: float, profile: Path | None, journal_only: bool
) -> dict[str, float]:
    """One repeat of one mode; ``journal_only``: just the two 256-in-flight batched runs, in
    memory and journaled."""
    env = _env(fallback)
    tag = "fallback" if fallback else "compiled"
    suffix = "+profile" if profile is not None else ""
    results: dict[str, float] = {}
    if not journal_only:
        echo = [python, "-P", str(Path(__file__).resolve()), "echo-server"]
        with _process(echo, env) as echo_server:
            echo_port = _first_line(echo_server, _START_TIMEOUT).split("=", 1)[1]
            results = _child(
                python, ["echo-measure", f"127.0.0.1:{echo_port}", str(seconds)], env, print
            )
    with _agnt5_system(python, env, ["--in-memory"]) as (endpoint, processes):
        what = "batched" if journal_only else "all"
        args = ["agnt5-measure", endpoint, str(seconds), what + suffix]
        measured = _measure(python, env, args, processes, profile, tag, seconds)
        _check_twins(fallback, measured, processes)
        results.update(measured)
    with tempfile.TemporaryDirectory(prefix="agnt5-bench-") as data:
        with _agnt5_system(python, env, ["--data-dir", data]) as (endpoint, processes):
            args = ["agnt5-measure", endpoint, str(seconds), "batched" + suffix]
            measured = _measure(python, env, args, processes, profile, f"{tag}-journal", seconds)
            _check_twins(fallback, measured, processes)
            results["journal_batched_256"] = measured["batched_256"]
    return results


def _report(label: str, rows: list[dict[str, float]]) -> None:
    row = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    if "echo_msgs_per_s" not in row:  # --journal
        print(f"\n== {label} (medians of {len(rows)}; every run in brackets)")
        for key, what in (("batched_256", "in memory"), ("journal_batched_256", "journaled")):
            runs = ", ".join(f"{r[key]:,.0f}" for r in rows)
            print(f"  invoke_many, 256 in flight, {what}: {row[key]:,.0f}/s [{runs}]")
        print(f"  journaled / in memory: {row['journal_batched_256'] / row['batched_256']:.0%} "
              "(goal >= 60%)")  # fmt: skip
        return
    spread = {
        key: (max(r[key] for r in rows) - min(r[key] for r in rows)) / row[key]
        for key in ("batched_256", "per_call_p50_us", "echo_rtt_p50_us", "echo_msgs_per_s")
    }
    print(f"\n== {label} (medians of {len(rows)}; spread of the runs in brackets)")
    print(f"  raw echo: {row['echo_msgs_per_s']:,.0f} msgs/s (16 in flight) "
          f"[{spread['echo_msgs_per_s']:.0%}], round trip p50 {row['echo_rtt_p50_us']:.0f} us "
          f"[{spread['echo_rtt_p50_us']:.0%}]")  # fmt: skip
    for in_flight in FLIGHTS:
        print(f"  {in_flight:>3} in flight: invoke_many {row[f'batched_{in_flight}']:>9,.0f}/s"
              f"   per-call invoke {row[f'per_call_{in_flight}']:>8,.0f}/s")  # fmt: skip
    print(f"  1 in flight latency: invoke_many p50 {row['batched_p50_us']:.0f} us "
          f"p99 {row['batched_p99_us']:.0f} us; per-call invoke p50 {row['per_call_p50_us']:.0f} us "
          f"[{spread['per_call_p50_us']:.0%}] p99 {row['per_call_p99_us']:.0f} us")  # fmt: skip
    print(f"  journaled (SQLite) invoke_many, 256 in flight: {row['journal_batched_256']:,.0f}/s")
    print("  rows of issue 15, each a ratio from this run:")
    print(f"    per-call invoke p50, 1 in flight / raw echo round trip: "
          f"{row['per_call_p50_us'] / row['echo_rtt_p50_us']:.2f}x (goal <= 2.5x)")  # fmt: skip
    print(f"    invoke_many 256 in flight / raw echo msgs/s: "
          f"{row['batched_256'] / row['echo_msgs_per_s']:.2f}x (goal >= 8x)")  # fmt: skip
    print(f"    journaled / in-memory, invoke_many 256 in flight: "
          f"{row['journal_batched_256'] / row['batched_256']:.0%} (goal >= 60%)")  # fmt: skip


def main(argv: list[str]) -> int:
    if argv and argv[0] == "echo-server":
        asyncio.run(_echo_server())
        return 0
    if argv and argv[0] == "echo-measure":
        print(json.dumps(asyncio.run(_echo_measure(argv[1], float(argv[2])))))
        return 0
    if argv and argv[0] == "agnt5-measure":
        print(json.dumps(asyncio.run(_agnt5_measure(argv[1], float(argv[2]), argv[3]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write py-spy profiles here")
    parser.add_argument("--mode", choices=["both", "compiled", "fallback"], default="compiled")
    parser.add_argument(
        "--journal",
        action="store_true",
        help="measure only invoke_many at 256 in flight, in memory and journaled",
    )
    parser.add_argument(
        "--python",
        action="append",
        help="an interpreter whose installed agnt5 to measure (repeat to compare; default: this one)",
    )
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    modes = ["compiled", "fallback"] if args.mode == "both" else [args.mode]
    pythons = args.python or [sys.executable]
    runs: dict[tuple[str, str], list[dict[str, float]]] = {
        (python, mode): [] for python in pythons for mode in modes
    }
    for repeat in range(args.repeats):  # interleaved so drift hits every system alike
        for python, mode in runs:
            profile = args.profile if repeat == 0 else None
            runs[python, mode].append(
                _run_mode(python, mode == "fallback", args.seconds, profile, args.journal)
            )
            print(f"repeat {repeat + 1} {python} {mode}: done", flush=True)
    for (python, mode), rows in runs.items():
        _report(f"{python} ({mode})", rows)
    for python, mode in list(runs)[len(modes) :]:  # each later interpreter against the first
        first, other = runs[pythons[0], mode], runs[python, mode]
        for key, what in (("batched_256", "in memory"), ("journal_batched_256", "journaled")):
            ratio = statistics.median(r[key] for r in other) / statistics.median(
                r[key] for r in first
            )
            print(f"\n{python} / {pythons[0]} ({mode}), invoke_many 256 in flight {what}: "
                  f"{ratio:.2f}x")  # fmt: skip
    for python in pythons:
        if len(modes) == 2:
            compiled, fallback = (runs[python, mode] for mode in modes)
            ratio = statistics.median(r["batched_256"] for r in compiled) / statistics.median(
                r["batched_256"] for r in fallback
            )
            print(f"\n{python}: compiled / fallback invoke_many (256 in flight): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
