"""Workflows through a real coordinator and a real standalone worker (both in this process)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from _coordinator_support import unique
from _metrics import samples

from agnt5 import Worker, function, workflow
from agnt5.client import AsyncClient
from agnt5.coordinator import Coordinator
from agnt5.coordinator.auth import Key
from agnt5.coordinator.workflows import child_id
from agnt5.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    InvocationTimeoutError,
    NonDeterministicError,
    NotFoundError,
    PayloadTooLargeError,
    ResourceExhaustedError,
    UnauthenticatedError,
)
from agnt5.workflows.journal import MAX_SIGNALS

pytestmark = [pytest.mark.usefixtures("registry"), pytest.mark.asyncio]


class Cluster:
    """A coordinator (with its gateway), one worker serving ``service``, and a client."""

    def __init__(self, coordinator: Coordinator, service: str, client: AsyncClient) -> None:
        self.coordinator = coordinator
        self.service = service
        self.client = client
        self.http = f"http://127.0.0.1:{coordinator.http_port}"

    async def state(
        self, invocation_id: str, wanted: str, waiting_for: str = "", timeout: float = 10.0
    ) -> dict[str, Any]:
        """The invocation once its state is ``wanted`` (and its last step the pending wait
        for the signal ``waiting_for``, when given)."""
        deadline = time.monotonic() + timeout
        while True:  # bounded by the deadline
            view = await self.client.describe(invocation_id)
            last = view.get("steps", [{}])[-1]
            if view["state"] == wanted and (
                not waiting_for or (last.get("name"), last.get("state")) == (waiting_for, "pending")
            ):
                return view
            if time.monotonic() > deadline:
                raise AssertionError(f"{invocation_id} is {view['state']}, not {wanted}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def cluster(
    service: str = "", coordinator: dict[str, Any] | None = None, **worker_options: Any
) -> AsyncIterator[Cluster]:
    """Serve what the test registered; runs suspend after 50 ms unless told otherwise. With
    ``coordinator`` options holding keys, the worker and the client use ``"worker-key"`` and
    ``"client-key"``."""
    service = service or unique("flows")
    worker_options.setdefault("workflow_suspend_after", 0.05)
    options = coordinator or {}
    keyed = "keys" in options
    async with Coordinator(port=0, http_port=0, **options) as coordinator_:
        endpoint = coordinator_.endpoint
        worker = Worker(
            service,
            coordinator_endpoint=endpoint,
            api_key="worker-key" if keyed else None,
            **worker_options,
        )
        serving = asyncio.create_task(worker.run())
        try:
            client_key = "client-key" if keyed else None
            async with AsyncClient(endpoint, client_key, timeout=30) as client:
                deadline = time.monotonic() + 20
                while not any(
                    s["name"] == service and s["workers"] for s in await client.list_services()
                ):
                    assert time.monotonic() < deadline, "the worker did not register"
                    await asyncio.sleep(0.02)
                yield Cluster(coordinator_, service, client)
        finally:
            worker.stop()
            await asyncio.wait_for(serving, 30)


async def test_the_issue_example_runs_end_to_end() -> None:
    mailed: list[str] = []

    @function
    def validate(order_id: str) -> dict[str, Any]:
        return {"order_id": order_id, "total": 42.5}

    @function
    def reserve(order: dict[str, Any]) -> str:
        return f"reserved {order['order_id']}"

    @function
    def a() -> str:
        return "a"

    @function
    def b() -> str:
        return "b"

    def charge_card(total: float) -> dict[str, Any]:
        return {"charged": total}

    async def send_mail(order: dict[str, Any]) -> str:
        mailed.append(order["order_id"])
        return "sent"

    @workflow
    async def process_order(ctx, order_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        service = ctx.service_name
        order = await ctx.task(service, "validate", input={"order_id": order_id})
        charge = await ctx.step("charge", charge_card, order["total"])
        first, second = await ctx.parallel(
            ctx.task(service, "reserve", input=order), ctx.step("mail", send_mail, order)
        )
        named = await ctx.gather(db=ctx.task(service, "a"), api=ctx.task(service, "b"))
        await ctx.sleep(0.3)
        approval = await ctx.signal("approved", timeout_ms=86_400_000, default={"approved": False})
        return {"charge": charge, "pair": [first, second], "named": named, **approval}

    async with cluster() as flows:
        invocation_id = await flows.client.submit(
            flows.service, "process_order", {"order_id": "o-1"}
        )
        await flows.state(invocation_id, "SUSPENDED", waiting_for="approved")
        async with httpx.AsyncClient(base_url=flows.http) as http:
            response = await http.post(
                f"/v1/invocations/{invocation_id}/signals/approved", json={"approved": True}
            )
            assert response.status_code == 200
            assert response.json() == {
                "invocation_id": invocation_id,
                "signal": "approved",
                "delivered": True,
            }
            result = await flows.client.result(invocation_id, timeout=20)
            view = (await http.get(f"/v1/invocations/{invocation_id}")).json()
    assert result == {
        "charge": {"charged": 42.5},
        "pair": ["reserved o-1", "sent"],
        "named": {"db": "a", "api": "b"},
        "approved": True,
    }
    assert mailed == ["o-1"]
    assert view["state"] == "SUCCEEDED" and view["result"] == result
    steps = [(s["seq"], s["kind"], s["name"], s["state"]) for s in view["steps"]]
    assert steps == [
        (0, "task", f"{view['service']}/validate", "completed"),
        (1, "step", "charge", "completed"),
        (2, "task", f"{view['service']}/reserve", "completed"),
        (3, "step", "mail", "completed"),
        (4, "task", f"{view['service']}/a", "completed"),
        (5, "task", f"{view['service']}/b", "completed"),
        (6, "sleep", "", "completed"),
        (7, "signal", "approved", "completed"),
    ]
    assert view["steps"][0]["child_id"] == child_id(invocation_id, 0)
    assert view["steps"][1]["attempt"] == 1 and view["steps"][6]["fire_unix_ms"] > 0


async def test_a_suspended_run_gives_its_slot_back_and_a_signal_resumes_it() -> None:
    runs: list[int] = []

    @function
    def ping() -> str:
        return "pong"

    @workflow
    async def wait_for_go(ctx) -> Any:  # type: ignore[no-untyped-def]
        runs.append(ctx.attempt)
        return await ctx.signal("go")

    async with cluster(max_concurrency=1) as flows:
        invocation_id = await flows.client.submit(flows.service, "wait_for_go")
        await flows.state(invocation_id, "SUSPENDED")
        assert await flows.client.invoke(flows.service, "ping", timeout=10) == "pong"  # the slot
        assert await flows.client.signal(invocation_id, "go", {"n": 1}) is True
        assert await flows.client.result(invocation_id, timeout=10) == {"n": 1}
    assert runs == [1, 1]  # resumed by replay, the same attempt


async def test_signals_are_kept_until_waited_for_and_refused_when_they_cannot_arrive() -> None:
    @workflow
    async def two_signals(ctx) -> list[Any]:  # type: ignore[no-untyped-def]
        first = await ctx.signal("first")
        return [first, await ctx.signal("second")]

    async with cluster() as flows:
        invocation_id = await flows.client.submit(flows.service, "two_signals")
        assert await flows.client.signal(invocation_id, "second", "later") is False  # kept
        assert await flows.client.signal(invocation_id, "first", "now") in (True, False)
        assert await flows.client.result(invocation_id, timeout=10) == ["now", "later"]
        with pytest.raises(FailedPreconditionError, match="has finished"):
            await flows.client.signal(invocation_id, "first")
        with pytest.raises(NotFoundError):
            await flows.client.signal("no-such-invocation", "first")
        async with httpx.AsyncClient(base_url=flows.http) as http:
            response = await http.post(
                f"/v1/invocations/{invocation_id}/signals/x",
                content=b"{not json",
                headers={"content-type": "application/json"},
            )
        assert response.status_code == 400 and response.json()["code"] == "INVALID_ARGUMENT"


async def test_signals_kept_for_one_workflow_are_bounded() -> None:
    @workflow
    async def deaf(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.signal("never-sent")

    async with cluster() as flows:
        invocation_id = await flows.client.submit(flows.service, "deaf")
        await asyncio.gather(
            *(flows.client.signal(invocation_id, "noise", n) for n in range(MAX_SIGNALS))
        )
        with pytest.raises(ResourceExhaustedError, match="signals are already waiting"):
            await flows.client.signal(invocation_id, "noise", "one too many")


async def test_a_timer_fires_at_its_journaled_time_and_resumes_the_workflow() -> None:
    @workflow
    async def nap(ctx) -> str:  # type: ignore[no-untyped-def]
        await ctx.sleep(1.0)
        return "rested"

    async with cluster() as flows, httpx.AsyncClient(base_url=flows.http) as http:
        invocation_id = await flows.client.submit(flows.service, "nap")
        await flows.state(invocation_id, "SUSPENDED")
        timers = (
            "agnt5_coordinator_workflow_timers_pending",
            frozenset({("agnt5_service", flows.service)}),
        )
        assert samples((await http.get("/metrics")).text)[timers] == 1
        assert await flows.client.result(invocation_id, timeout=20) == "rested"
        assert samples((await http.get("/metrics")).text)[timers] == 0
        (sleep,) = (await flows.client.describe(invocation_id))["steps"]
    assert sleep["fire_unix_ms"] - sleep["started_unix_ms"] == 1000
    assert 0 <= sleep["finished_unix_ms"] - sleep["fire_unix_ms"] < 1000


async def test_child_failures_reach_the_workflow_as_errors() -> None:
    @function
    def explode() -> None:
        raise ValueError("boom")

    @workflow
    async def parent(ctx) -> list[str]:  # type: ignore[no-untyped-def]
        seen = []
        for service, name in (
            (ctx.service_name, "explode"),
            (ctx.service_name, "missing"),
            ("nowhere", "f"),
        ):
            try:
                await ctx.task(service, name)
            except Exception as error:  # noqa: BLE001 - the errors are what the test reads
                seen.append(f"{error.code}: {error.message}")  # type: ignore[attr-defined]
        return seen

    async with cluster() as flows:
        seen = await flows.client.invoke(flows.service, "parent", timeout=20)
    assert seen == [
        "FUNCTION_FAILED: Function explode failed: boom",
        f"NOT_FOUND: Function 'missing' not found in service '{flows.service}'",
        "NOT_FOUND: Service 'nowhere' not found",
    ]


async def test_a_replay_that_diverges_fails_the_invocation_non_deterministic() -> None:
    version = ["v1"]

    @workflow
    async def changing(ctx) -> str:  # type: ignore[no-untyped-def]
        await ctx.step(version[0], lambda: 1)
        return await ctx.signal("go")

    async with cluster() as flows:
        invocation_id = await flows.client.submit(flows.service, "changing")
        await flows.state(invocation_id, "SUSPENDED")
        version[0] = "v2"  # the code changed while the workflow slept
        await flows.client.signal(invocation_id, "go", "x")
        with pytest.raises(NonDeterministicError) as raised:
            await flows.client.result(invocation_id, timeout=20)
    assert raised.value.message == (
        "workflow changing diverged from its journal at step 0: the journal has step 'v1', "
        "the code asked for step 'v2'"
    )


async def test_the_deadline_ends_a_suspended_workflow() -> None:
    @workflow
    async def forever(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.signal("never")

    async with cluster() as flows:
        with pytest.raises(InvocationTimeoutError, match="did not finish before its deadline"):
            await flows.client.invoke(flows.service, "forever", timeout=0.5)


async def test_bad_signal_names_are_refused() -> None:
    @workflow
    async def quiet(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.signal("x")

    async with cluster() as flows:
        invocation_id = await flows.client.submit(flows.service, "quiet")
        for name in ("", "n" * 257):
            with pytest.raises(InvalidArgumentError, match="a signal name is 1 to 256 characters"):
                await flows.client.signal(invocation_id, name)


async def test_a_step_output_over_the_result_limit_is_journaled_as_the_steps_failure() -> None:
    @workflow
    async def big(ctx) -> list[str]:  # type: ignore[no-untyped-def]
        seen = []
        try:
            await ctx.step("huge", lambda: "x" * 2048)
        except PayloadTooLargeError as error:
            seen.append(error.message)
        await ctx.sleep(0.2)  # suspends: the next run replays the failure from the journal
        try:
            await ctx.step("huge again", lambda: "x" * 2048)
        except PayloadTooLargeError as error:
            seen.append(error.message)
        return seen

    async with cluster(coordinator={"max_output_bytes": 1024}) as flows:
        invocation_id = await flows.client.submit(flows.service, "big")
        seen = await flows.client.result(invocation_id, timeout=20)
        steps = (await flows.client.describe(invocation_id))["steps"]
    assert seen == [
        "step 'huge' returned 2050 bytes, over the coordinator's limit of 1024 bytes",
        "step 'huge again' returned 2050 bytes, over the coordinator's limit of 1024 bytes",
    ]
    failed = [
        (step["name"], step["state"], step["error"]["code"]) for step in steps if "error" in step
    ]
    assert failed == [
        ("huge", "failed", "PAYLOAD_TOO_LARGE"),
        ("huge again", "failed", "PAYLOAD_TOO_LARGE"),
    ]


async def test_signals_need_a_client_key_for_the_workflows_service() -> None:
    service = unique("flows")

    @workflow
    async def guarded(ctx) -> Any:  # type: ignore[no-untyped-def]
        return await ctx.signal("go")

    keys = [
        Key("worker-key", worker=True),
        Key("client-key", client=True, services=frozenset({service})),
        Key("other-key", client=True, services=frozenset({"other"})),
    ]
    async with cluster(service, coordinator={"keys": keys}) as flows:
        invocation_id = await flows.client.submit(service, "guarded")
        async with AsyncClient(flows.coordinator.endpoint, "other-key") as stranger:
            with pytest.raises(UnauthenticatedError, match="may not send signals to service"):
                await stranger.signal(invocation_id, "go", 1)
        async with httpx.AsyncClient(base_url=flows.http) as http:
            refused = await http.post(
                f"/v1/invocations/{invocation_id}/signals/go",
                json=1,
                headers={"authorization": "Bearer other-key"},
            )
        assert refused.status_code == 401
        assert await flows.client.signal(invocation_id, "go", 2) in (True, False)
        assert await flows.client.result(invocation_id, timeout=10) == 2
