"""End-to-end invocations/s and latency beside a raw grpc.aio echo, compiled and fallback, one run.

    python benchmarks/throughput.py [--seconds 2] [--repeats 3] [--profile DIR] [--journal]

Each mode (compiled codec, ``AGNT5_NO_EXTENSIONS=1``) gets its own coordinator, worker (a no-op
async handler) and client processes, all on 127.0.0.1. Measured, medians of ``--repeats``:
raw bidirectional echo (messages/s with 16 in flight, round trip with 1), the batched client path
(`AsyncClient.invoke_many`) with 1, 64 and 256 in flight, plain per-call ``invoke`` with the same
concurrency, and p50/p99 latency with 1 in flight. ``--profile DIR`` records py-spy profiles of
the coordinator and the worker during the 256-in-flight batched run. The coordinator keeps state
in memory unless ``--journal`` (SQLite, as ``agnt5 coordinator`` does by default). A report, not
a timed test.
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

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "bench"
FLIGHTS = (1, 64, 256)
_ECHO = "/bench.Echo/Chat"
_START_TIMEOUT = 30.0

__all__ = ["main"]


def _env(fallback: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNT5_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if fallback:
        env["AGNT5_NO_EXTENSIONS"] = "1"
    return env


def _first_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline().decode().strip() if ready else ""


@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, stopped (SIGTERM, then SIGKILL) by its pid on exit."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
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


async def _agnt5_measure(endpoint: str, seconds: float, profile_256: str) -> dict[str, float]:
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
        for in_flight in FLIGHTS:
            if in_flight == 256 and profile_256:
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
    return results


async def _registered(client: Any) -> bool:
    services = await client.list_services()
    return any(s["name"] == SERVICE and s["workers"] for s in services)


# Orchestration.


def _child(
    args: list[str], env: dict[str, str], on_line: Callable[[str], None]
) -> dict[str, float]:
    """Run this script as a measuring child; its last stdout line is the JSON result."""
    command = [sys.executable, str(Path(__file__).resolve()), *args]
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


def _run_mode(
    fallback: bool, seconds: float, profile: Path | None, journal: Path | None
) -> dict[str, float]:
    env = _env(fallback)
    storage = ["--data-dir", str(journal)] if journal is not None else ["--in-memory"]
    coordinator = [sys.executable, "-m", "agnt5", "coordinator", "--host", "127.0.0.1",
                   "--port", "0", "--http-port", "0", "--log-level", "WARNING", *storage]  # fmt: skip
    echo = [sys.executable, str(Path(__file__).resolve()), "echo-server"]
    with _process(coordinator, env) as coord, _process(echo, env) as echo_server:
        line = _first_line(coord, _START_TIMEOUT)
        fields = dict(part.split("=", 1) for part in line.split()[2:])
        endpoint = f"http://{fields['grpc']}"
        echo_port = _first_line(echo_server, _START_TIMEOUT).split("=", 1)[1]
        worker = [sys.executable, "-m", "agnt5", "worker", str(ROOT / "benchmarks" / "_noop.py"),
                  "--service", SERVICE, "--max-concurrency", "1024", "--endpoint", endpoint,
                  "--log-level", "WARNING"]  # fmt: skip
        with _process(worker, env) as worker_process:
            spies: list[subprocess.Popen[bytes]] = []

            def on_line(line: str) -> None:
                if line == "profile" and profile is not None:
                    tag = "fallback" if fallback else "compiled"
                    for name, pid in (("coordinator", coord.pid), ("worker", worker_process.pid)):
                        out = profile / f"{tag}-{name}.txt"
                        spies.append(subprocess.Popen(
                            [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw", "--nonblocking", "-r", "200",
                             "-d", str(max(1, int(seconds))), "-p", str(pid), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        ))  # fmt: skip

            results = _child(["echo-measure", f"127.0.0.1:{echo_port}", str(seconds)], env, print)
            results.update(_child(
                ["agnt5-measure", endpoint, str(seconds), "1" if profile else ""], env, on_line
            ))  # fmt: skip
            for spy in spies:
                spy.wait(60)
    return results


def _report(runs: dict[str, list[dict[str, float]]]) -> None:
    medians = {
        mode: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for mode, rows in runs.items()
    }
    for mode, row in medians.items():
        print(f"\n== {mode} (medians of {len(runs[mode])})")
        print(f"  raw echo: {row['echo_msgs_per_s']:,.0f} msgs/s (16 in flight), "
              f"round trip p50 {row['echo_rtt_p50_us']:.0f} us")  # fmt: skip
        for in_flight in FLIGHTS:
            print(f"  {in_flight:>3} in flight: invoke_many {row[f'batched_{in_flight}']:>9,.0f}/s"
                  f"   per-call invoke {row[f'per_call_{in_flight}']:>8,.0f}/s")  # fmt: skip
        print(f"  1 in flight latency: invoke_many p50 {row['batched_p50_us']:.0f} us "
              f"p99 {row['batched_p99_us']:.0f} us; per-call invoke p50 "
              f"{row['per_call_p50_us']:.0f} us")  # fmt: skip
        print(f"  goals: 256 in flight / echo = {row['batched_256'] / row['echo_msgs_per_s']:.2f}x"
              f" (>= 5); p50 / echo round trip = "
              f"{row['batched_p50_us'] / row['echo_rtt_p50_us']:.2f}x (<= 2.5)")  # fmt: skip
    if {"compiled", "fallback"} <= medians.keys():
        ratios = [medians["compiled"][f"batched_{n}"] / medians["fallback"][f"batched_{n}"]
                  for n in FLIGHTS]  # fmt: skip
        print("\ncompiled / fallback invoke_many throughput: "
              + ", ".join(f"{n} in flight {r:.2f}x" for n, r in zip(FLIGHTS, ratios, strict=True)))  # fmt: skip


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
    parser.add_argument("--mode", choices=["both", "compiled", "fallback"], default="both")
    parser.add_argument(
        "--journal",
        action="store_true",
        help="journal to SQLite in a fresh temp dir (default: an in-memory coordinator)",
    )
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    modes = ["compiled", "fallback"] if args.mode == "both" else [args.mode]
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    for repeat in range(args.repeats):  # interleaved so drift hits both modes alike
        for mode in modes:
            profile = args.profile if repeat == 0 else None
            with tempfile.TemporaryDirectory(prefix="agnt5-bench-") as data:
                journal = Path(data) if args.journal else None
                runs[mode].append(_run_mode(mode == "fallback", args.seconds, profile, journal))
            print(f"repeat {repeat + 1} {mode}: done", flush=True)
    _report(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
