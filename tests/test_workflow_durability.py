"""Workflows survive kill -9 of their worker and of the coordinator (real processes throughout)."""

from __future__ import annotations

import collections
import textwrap
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from _coordinator_support import coordinator_process, unique
from test_standalone_worker import worker_process

from agnt5.client import Client

MODULE = textwrap.dedent(
    """
    import asyncio
    import os
    from pathlib import Path

    from agnt5 import workflow

    LOG = Path(__file__).parent / "steps.log"


    async def record(key, name, pause):
        with open(LOG, "a") as log:  # one short append per step: whole lines, never mixed
            log.write(f"{key} {name} {os.getpid()}\\n")
        await asyncio.sleep(pause)
        return name


    @workflow
    async def five_steps(ctx, key: str, pause: float) -> list:
        return [await ctx.step(f"s{n}", record, key, f"s{n}", pause) for n in range(5)]


    @workflow
    async def nap(ctx, seconds: float) -> dict:
        started = ctx.now()
        await ctx.sleep(seconds)
        return {"slept_from": started.isoformat()}


    @workflow
    async def wait_for(ctx, name: str):
        return await ctx.signal(name)
    """
)


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "durable_flows.py"
    path.write_text(MODULE)
    return path


def worker(module: Path, endpoint: str, service: str) -> AbstractContextManager[Any]:
    """``agnt5 worker MODULE`` (runs suspend after 0.1 s), stopped on exit."""
    return worker_process(
        module, endpoint, service, "--log-level", "WARNING", AGNT5_WORKFLOW_SUSPEND_AFTER="0.1"
    )


def wait_for_workers(client: Client, service: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded by the deadline
        if any(s["name"] == service and len(s["workers"]) >= count for s in client.list_services()):
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} workers of {service} did not register in {timeout} s")


def logged_steps(path: Path) -> list[tuple[str, str, int]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [(key, step, int(pid)) for key, step, pid in (line.split() for line in lines)]


def test_a_workflow_finishes_on_another_worker_after_kill_9_without_repeating_recorded_steps(
    module: Path,
) -> None:
    service = unique("durable")
    log = module.parent / "steps.log"
    with (
        coordinator_process("--heartbeat-timeout", "5") as coordinator,
        worker(module, coordinator.endpoint, service) as first,
        worker(module, coordinator.endpoint, service) as second,
        Client(coordinator.endpoint, timeout=60) as client,
    ):
        wait_for_workers(client, service, 2)
        invocation_id = client.submit(service, "five_steps", {"key": "k", "pause": 0.3})
        deadline = time.monotonic() + 30
        while not any(step == "s2" for _, step, _ in logged_steps(log)):  # s0 and s1 journaled
            assert time.monotonic() < deadline, "the workflow did not reach its third step"
            time.sleep(0.02)
        running = next(pid for _, step, pid in logged_steps(log) if step == "s2")
        victim = first if running == first.pid else second
        survivor = second if victim is first else first
        victim.kill()  # kill -9, the middle of step s2
        victim.wait(10)
        assert client.result(invocation_id, timeout=60) == ["s0", "s1", "s2", "s3", "s4"]
        view = client.describe(invocation_id)
    runs = collections.Counter(step for _, step, _ in logged_steps(log))
    assert runs["s0"] == runs["s1"] == 1  # journaled before the kill: never again
    assert 1 <= runs["s2"] <= 2  # the step in flight may run once more
    assert runs["s3"] == runs["s4"] == 1
    assert {pid for _, step, pid in logged_steps(log) if step in ("s3", "s4")} == {survivor.pid}
    assert view["attempt"] == 2 and [s["state"] for s in view["steps"]] == ["completed"] * 5


def test_timers_and_signals_survive_a_coordinator_kill_9(module: Path, tmp_path: Path) -> None:
    service = unique("durable")
    data = tmp_path / "journal"
    with coordinator_process("--data-dir", str(data)) as coordinator:
        port = coordinator.endpoint.rsplit(":", 1)[1]
        with worker(module, coordinator.endpoint, service):
            with Client(coordinator.endpoint, timeout=60) as client:
                wait_for_workers(client, service, 1)
                napping = client.submit(service, "nap", {"seconds": 6.0})
                waiting = {
                    name: client.submit(service, "wait_for", {"name": name}) for name in "ab"
                }
                for invocation_id in (napping, *waiting.values()):
                    deadline = time.monotonic() + 20
                    while client.describe(invocation_id)["state"] != "SUSPENDED":
                        assert time.monotonic() < deadline, f"{invocation_id} did not suspend"
                        time.sleep(0.05)
                coordinator.kill()  # kill -9 while all three wait
                with coordinator_process("--data-dir", str(data), "--port", port) as again:
                    restarted_ms = time.time() * 1000  # recovery (timers armed) came before this
                    wait_for_workers(client, service, 1)  # the worker reconnects by itself
                    assert client.signal(waiting["b"], "b", {"to": "b"}) is True
                    assert client.signal(waiting["a"], "a", {"to": "a"}) is True
                    assert client.result(waiting["a"], timeout=30) == {"to": "a"}
                    assert client.result(waiting["b"], timeout=30) == {"to": "b"}
                    assert "slept_from" in client.result(napping, timeout=30)
                    (now, sleep) = client.describe(napping)["steps"]
                    assert again.process.poll() is None
    assert (now["kind"], sleep["kind"]) == ("now", "sleep")
    # At its journaled time, or at once on recovery if a slow restart came after it.
    assert sleep["finished_unix_ms"] >= sleep["fire_unix_ms"] - 5  # clocks' rounding
    assert sleep["finished_unix_ms"] - max(sleep["fire_unix_ms"], restarted_ms) < 1000
