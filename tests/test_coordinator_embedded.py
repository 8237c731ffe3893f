"""The coordinator embedded in-process, and its in-memory state store."""

from __future__ import annotations

import asyncio

import pytest
from _coordinator_support import FakeWorker, blocker, echo, unique

from agnt5.client import AsyncClient
from agnt5.coordinator import Coordinator, MemoryStore
from agnt5.coordinator.store import Invocation, InvocationState, RetryPolicy
from agnt5.errors import NotFoundError, UnavailableError


@pytest.mark.asyncio
async def test_embedded_coordinator_serves_on_ephemeral_ports() -> None:
    service = unique()
    async with Coordinator(port=0) as coordinator:
        assert coordinator.port > 0 and coordinator.http_port is None
        assert coordinator.endpoint == f"http://127.0.0.1:{coordinator.port}"
        async with (
            FakeWorker(coordinator.endpoint, service, {"f": echo}),
            AsyncClient(coordinator.endpoint) as client,
        ):
            assert await client.invoke(service, "f", "hi") == "hi"
    with pytest.raises(RuntimeError, match="not started"):
        _ = coordinator.port
    with pytest.raises(RuntimeError, match="starts once"):
        await coordinator.start()


@pytest.mark.asyncio
async def test_stop_fails_unfinished_invocations_as_unavailable() -> None:
    service = unique()
    never = asyncio.Event()
    coordinator = Coordinator(port=0, http_port=0)
    await coordinator.start()
    try:
        async with FakeWorker(coordinator.endpoint, service, {"f": blocker(never)}) as worker:
            async with AsyncClient(coordinator.endpoint) as client:
                pending = asyncio.create_task(client.invoke(service, "f"))
                await worker.wait_for_invokes(1)
                await coordinator.stop()
                with pytest.raises(UnavailableError, match="shut down"):
                    await pending
    finally:
        await coordinator.stop()


@pytest.mark.asyncio
async def test_port_in_use_is_an_error() -> None:
    async with Coordinator(port=0, http_port=0) as first:
        for port, http_port in ((first.port, None), (0, first.http_port)):
            second = Coordinator(port=port, http_port=http_port)
            busy = first.port if port else first.http_port
            try:
                with pytest.raises(OSError, match=f"127.0.0.1:{busy}.*is the port in use"):
                    await second.start()
            finally:
                await second.stop()


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        Coordinator(heartbeat_interval=5, heartbeat_timeout=1)
    with pytest.raises(ValueError, match="max_queue"):
        Coordinator(max_queue=-1)


def _invocation(n: int, key: str = "") -> Invocation:
    return Invocation(f"id{n}", "svc", "fn", b"", {}, RetryPolicy(), idempotency_key=key)


def test_memory_store_keeps_only_the_newest_finished_results() -> None:
    store = MemoryStore(max_finished=2)
    invocations = [_invocation(n, key=f"k{n}") for n in range(3)]
    for invocation in invocations:
        store.add(invocation)
    for invocation in invocations:
        invocation.state = InvocationState.SUCCEEDED
        store.save(invocation)
    assert store.get("id0") is None and store.find("svc", "fn", "k0") is None
    assert store.get("id2") is invocations[2] and store.find("svc", "fn", "k1") is invocations[1]
    assert len(store) == 2


def test_retry_policy_backoff_is_capped() -> None:
    policy = RetryPolicy(retries=5, initial=0.5, multiplier=3, maximum=2)
    assert [policy.delay(n) for n in (1, 2, 3)] == [0.5, 1.5, 2]


@pytest.mark.asyncio
async def test_a_service_without_workers_is_forgotten_after_a_while() -> None:
    kept, gone = unique(), unique()
    settings = {"heartbeat_interval": 0.1, "heartbeat_timeout": 0.8, "forget_services_after": 0.2}
    async with Coordinator(port=0, **settings) as coordinator:
        async with (
            AsyncClient(coordinator.endpoint, timeout=10) as client,
            FakeWorker(coordinator.endpoint, kept, {"f": echo}),
        ):
            async with FakeWorker(coordinator.endpoint, gone, {"f": echo}):
                assert {s["name"] for s in await client.list_services()} == {kept, gone}
            for _ in range(200):  # bounded: the sweep runs every 0.2 s
                if [s["name"] for s in await client.list_services()] == [kept]:
                    break
                await asyncio.sleep(0.05)
            assert [s["name"] for s in await client.list_services()] == [kept]
            with pytest.raises(NotFoundError, match=f"Service {gone!r} not found"):
                await client.invoke(gone, "f")
