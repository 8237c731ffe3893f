"""Listing and cancelling invocations through a real coordinator: gRPC clients, the HTTP
gateway, a protocol worker, the journal across a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from _coordinator_support import FakeWorker, blocker, echo, eventually, unique

from agnt5.client import AsyncClient
from agnt5.coordinator import Coordinator, SqliteStore
from agnt5.coordinator.auth import Key
from agnt5.errors import (
    FailedPreconditionError,
    InvocationCancelledError,
    NotFoundError,
    UnauthenticatedError,
)

pytestmark = pytest.mark.asyncio

JSON = {"content-type": "application/json"}


async def test_cancel_a_queued_invocation_takes_it_out_of_the_queue() -> None:
    service = unique()
    async with (
        Coordinator(port=0) as coordinator,
        AsyncClient(coordinator.endpoint, timeout=10) as client,
    ):
        async with FakeWorker(coordinator.endpoint, service, {"f": echo}):
            pass  # the service is known; its worker is gone
        invocation_id = await client.submit(service, "f", "later")
        assert (await client.list_services())[0]["queued"] == 1
        await client.cancel(invocation_id, "changed my mind")
        assert (await client.list_services())[0]["queued"] == 0
        with pytest.raises(InvocationCancelledError, match="was cancelled: changed my mind"):
            await client.result(invocation_id)
        async with FakeWorker(coordinator.endpoint, service, {"f": echo}) as worker:
            assert await client.invoke(service, "f", "next") == "next"
        assert [invoke.input for invoke in worker.invokes] == [b'"next"']  # never the cancelled


async def test_cancel_a_running_invocation_tells_its_worker_once(tmp_path: Path) -> None:
    service = unique()
    coordinator = Coordinator(port=0, store=SqliteStore(tmp_path))
    await coordinator.start()
    try:
        async with (
            FakeWorker(coordinator.endpoint, service, {"f": blocker(asyncio.Event())}) as worker,
            AsyncClient(coordinator.endpoint, timeout=10) as client,
        ):
            waiting = asyncio.create_task(client.invoke(service, "f"))
            await worker.wait_for_invokes(1)
            invocation_id = worker.invokes[0].invocation_id
            await client.cancel(invocation_id)
            with pytest.raises(InvocationCancelledError) as raised:
                await waiting
            assert raised.value.retryable is False
            await eventually(lambda: worker.cancelled == [invocation_id])
            with pytest.raises(FailedPreconditionError, match="has finished \\(FAILED\\)"):
                await client.cancel(invocation_id)
            with pytest.raises(NotFoundError):
                await client.cancel("no-such-invocation")
            await asyncio.sleep(0.2)  # the worker's own CANCELLED result changes nothing
            listed = (await client.list_invocations(service)).invocations
            assert [(row["state"], row["error_code"]) for row in listed] == [
                ("FAILED", "CANCELLED")
            ]
    finally:
        await coordinator.stop()
    async with (
        Coordinator(port=0, store=SqliteStore(tmp_path)) as restarted,
        AsyncClient(restarted.endpoint, timeout=10) as client,
    ):
        with pytest.raises(InvocationCancelledError):  # journaled
            await client.result(invocation_id)
        assert len(worker.invokes) == 1


async def test_list_invocations_filters_and_pages() -> None:
    orders, billing = unique("orders"), unique("billing")
    async with (
        Coordinator(port=0) as coordinator,
        FakeWorker(coordinator.endpoint, orders, {"place": echo, "check": echo}),
        FakeWorker(coordinator.endpoint, billing, {"charge": echo}),
        AsyncClient(coordinator.endpoint, timeout=10) as client,
    ):
        for number in range(5):
            await client.invoke(orders, "place", number)
        await client.invoke(orders, "check", "x")
        await client.invoke(billing, "charge", 1)
        everything = (await client.list_invocations()).invocations
        created = [row["created_unix_ms"] for row in everything]  # newest first; rows of one
        assert created == sorted(created, reverse=True)  # millisecond are ordered by id
        assert sorted(row["service"] for row in everything) == sorted([billing, *[orders] * 6])
        assert {row["state"] for row in everything} == {"SUCCEEDED"}
        place = await client.list_invocations(orders, "place", limit=2)
        assert len(place.invocations) == 2 and place.next_cursor is not None
        rest = await client.list_invocations(orders, "place", cursor=place.next_cursor)
        assert len(rest.invocations) == 3 and rest.next_cursor is None
        assert (await client.list_invocations(states=["failed"])).invocations == []


async def test_gateway_lists_and_cancels() -> None:
    service = unique()
    async with (
        Coordinator(port=0, http_port=0) as coordinator,
        FakeWorker(coordinator.endpoint, service, {"f": blocker(asyncio.Event())}) as worker,
        AsyncClient(coordinator.endpoint, timeout=10) as client,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{coordinator.http_port}") as http,
    ):
        invocation_id = await client.submit(service, "f", "x")
        await worker.wait_for_invokes(1)
        listed = (await http.get("/v1/invocations", params={"service": service})).json()
        assert [row["state"] for row in listed["invocations"]] == ["RUNNING"]
        assert listed["next_cursor"] is None

        refused = await http.post(f"/v1/invocations/{invocation_id}/cancel")  # no JSON type
        assert refused.status_code == 415
        cancelled = await http.post(
            f"/v1/invocations/{invocation_id}/cancel", headers=JSON, json={"reason": "test"}
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["error"]["code"] == "CANCELLED"
        again = await http.post(f"/v1/invocations/{invocation_id}/cancel", headers=JSON)
        assert (again.status_code, again.json()["code"]) == (409, "FAILED_PRECONDITION")
        missing = await http.post("/v1/invocations/nope/cancel", headers=JSON)
        assert missing.status_code == 404

        failed = await http.get("/v1/invocations", params={"state": "FAILED,PENDING"})
        assert [row["error_code"] for row in failed.json()["invocations"]] == ["CANCELLED"]
        for params in ({"limit": "-1"}, {"state": "DONE"}, {"created_after": "soon"}):
            bad = await http.get("/v1/invocations", params=params)
            assert bad.status_code == 400, params


async def test_a_key_limited_to_a_service_lists_and_cancels_only_it() -> None:
    mine, theirs = unique("mine"), unique("theirs")
    keys = [Key("limited", client=True, services=frozenset({mine})), Key("all", client=True)]
    async with (
        Coordinator(port=0, keys=keys) as coordinator,
        AsyncClient(coordinator.endpoint, "all", timeout=10) as admin,
        AsyncClient(coordinator.endpoint, "limited", timeout=10) as limited,
    ):
        async with (
            FakeWorker(coordinator.endpoint, mine, {"f": echo}),
            FakeWorker(coordinator.endpoint, theirs, {"f": echo}),
        ):
            pass
        ours = await admin.submit(mine, "f", 1)
        other = await admin.submit(theirs, "f", 2)
        seen = (await limited.list_invocations()).invocations
        assert [row["invocation_id"] for row in seen] == [ours]
        with pytest.raises(UnauthenticatedError):
            await limited.list_invocations(theirs)
        with pytest.raises(UnauthenticatedError):
            await limited.cancel(other)
        await limited.cancel(ours)
