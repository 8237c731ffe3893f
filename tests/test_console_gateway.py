"""The coordinator's web side, through a real coordinator and a real worker in this process:
the gateway's /openapi.json (valid, an invoke and a submit per function, per key), the console
and docs pages with their files and headers, an invocation's detail, the workers' last contact,
and /v1/events (live, per key, bounded, cleaned up, ended by a stop; a workflow's suspension,
steps and signals too)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from _coordinator_support import eventually
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from agnt5 import Worker, function, workflow
from agnt5.client import AsyncClient
from agnt5.coordinator import Coordinator
from agnt5.coordinator.auth import Key

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("registry")]

CLIENT_KEY = "client-key"
SHOP_ONLY_KEY = "shop-only-key"
WORKER_KEY = "worker-key"


@dataclasses.dataclass
class Order:
    item: str
    quantity: int


def register() -> None:
    @function
    def place(order: Order) -> dict[str, int]:
        """Place an order."""
        return {"total": 2 * order.quantity}

    @function(retries=0)
    def explode() -> None:
        raise ValueError("exploded")

    @function
    async def linger(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    @workflow
    async def approve(ctx, order: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        checked = await ctx.step("check", str.upper, order)
        return {"order": checked, "decision": await ctx.signal("decision")}


@dataclasses.dataclass
class Served:
    coordinator: Coordinator
    http: httpx.AsyncClient

    @property
    def events(self) -> Any:
        return self.coordinator._scheduler.events  # how many watch, which no client can see


async def _registered(http: httpx.AsyncClient, services: set[str]) -> None:
    for _ in range(300):  # bounded: 30 s
        listed = (await http.get("/v1/services")).json()["services"]
        if {s["name"] for s in listed if s["workers"]} >= services:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{services} did not register")


@pytest_asyncio.fixture
async def served(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    """Services 'shop' and 'other' (the same functions) on a coordinator; keyed (parameter
    True): client keys (one for every service, one for 'shop' only) and a worker key."""
    register()
    keyed = getattr(request, "param", False)
    keys = (
        [
            Key(CLIENT_KEY, client=True),
            Key(SHOP_ONLY_KEY, client=True, services=frozenset({"shop"})),
            Key(WORKER_KEY, worker=True),
        ]
        if keyed
        else []
    )
    async with Coordinator(port=0, http_port=0, keys=keys) as coordinator:
        options = {"coordinator_endpoint": coordinator.endpoint}
        if keyed:
            options["api_key"] = WORKER_KEY
        workers = [Worker(name, **options) for name in ("shop", "other")]
        runners = [asyncio.create_task(worker.run()) for worker in workers]
        headers = {"authorization": f"Bearer {CLIENT_KEY}"} if keyed else {}
        base = f"http://127.0.0.1:{coordinator.http_port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10, headers=headers) as http:
                await _registered(http, {"shop", "other"})
                yield Served(coordinator, http)
        finally:
            for worker in workers:
                worker.stop()
            await asyncio.gather(*runners)


def schema_at(document: dict[str, Any], schema: dict[str, Any]) -> OAS31Validator:
    return OAS31Validator({**schema, "components": document["components"]})


async def test_the_gateway_document_is_valid_with_an_invoke_and_a_submit_per_function(
    served: Served,
) -> None:
    response = await served.http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    paths = document["paths"]
    for service in ("shop", "other"):
        for name in ("place", "explode", "linger"):
            for action in ("invoke", "submit"):
                assert f"/v1/services/{service}/functions/{name}/{action}" in paths
    routes = (
        "/v1/invocations",
        "/v1/invocations/{invocation_id}",
        "/v1/invocations/{invocation_id}/cancel",
        "/v1/invocations/{invocation_id}/signals/{name}",
        "/v1/services",
        "/v1/events",
        "/health",
    )
    for route in routes:
        assert route in paths
    assert "/metrics" in paths and "/ready" in paths
    assert "security" not in document  # no client key: open
    place = paths["/v1/services/shop/functions/place/invoke"]["post"]
    assert place["summary"] == "Place an order."
    body = place["requestBody"]["content"]["application/json"]["schema"]
    assert schema_at(document, body).is_valid({"order": {"item": "book", "quantity": 2}})
    assert not schema_at(document, body).is_valid({"order": {"item": "book"}})
    answer = await served.http.post(
        "/v1/services/shop/functions/place/invoke", json={"order": {"item": "b", "quantity": 2}}
    )
    ok = place["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer.status_code == 200 and schema_at(document, ok).is_valid(answer.json())
    failed = await served.http.post("/v1/services/shop/functions/explode/invoke", json={})
    explode = paths["/v1/services/shop/functions/explode/invoke"]["post"]["responses"]
    error = explode["500"]["content"]["application/json"]["schema"]
    assert failed.status_code == 500 and schema_at(document, error).is_valid(failed.json())
    listing = paths["/v1/invocations"]["get"]["responses"]["200"]["content"]["application/json"]
    listed = await served.http.get("/v1/invocations", params={"limit": 5})
    assert listed.json()["invocations"], "the invocations above are listed"
    assert schema_at(document, listing["schema"]).is_valid(listed.json())


@pytest.mark.parametrize("served", [True], indirect=True, ids=["keyed"])
async def test_the_document_and_the_stream_follow_the_client_key(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.http.base_url, timeout=10) as anonymous:
        refused = await anonymous.get("/openapi.json")
        events = await anonymous.get("/v1/events")
    assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHENTICATED"
    assert events.status_code == 401
    document = (await served.http.get("/openapi.json")).json()
    validate(document)
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/health"]["get"]["security"] == []  # probes need no key
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    shop_only = {"authorization": f"Bearer {SHOP_ONLY_KEY}"}
    limited = (await served.http.get("/openapi.json", headers=shop_only)).json()
    services = {path.split("/")[3] for path in limited["paths"] if path.startswith("/v1/services/")}
    assert services == {"shop"}
    async with served.http.stream("GET", "/v1/events", headers=shop_only) as stream:
        lines = stream.aiter_lines()
        first = await _next_event(lines)
        assert [s["name"] for s in first[1]["services"]] == ["shop"]
        other = await _submit(served.http, "other", "linger", {"seconds": 0})
        mine = await _submit(served.http, "shop", "linger", {"seconds": 0})
        seen = await _events_until(lines, mine, "SUCCEEDED")
    assert other not in {data["invocation_id"] for kind, data in seen if kind == "invocation"}


async def test_pages_and_their_files_need_no_key_and_keep_to_themselves() -> None:
    keys = [Key(CLIENT_KEY, client=True)]
    async with (
        Coordinator(port=0, http_port=0, keys=keys) as coordinator,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{coordinator.http_port}") as http,
    ):
        assert coordinator.console_url == f"http://127.0.0.1:{coordinator.http_port}/console"
        home = await http.get("/")
        console = await http.get("/console")
        docs = await http.get("/docs")
        script = await http.get("/console/static/console.js")
        cached = await http.get(
            "/console/static/console.js", headers={"if-none-match": script.headers["etag"]}
        )
        missing = await http.get("/console/static/nothing.js")
        rebinding = await http.get("/console", headers={"host": "evil.example"})
    assert home.status_code == 307 and home.headers["location"] == "/console"
    for page in (console, docs):
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "set-cookie" not in page.headers
    assert 'src="/console/static/console.js"' in console.text
    assert 'src="/console/static/docs.js"' in docs.text
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert cached.status_code == 304
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    assert rebinding.status_code == 400 and "DNS rebinding" in rebinding.json()["error"]


@pytest.mark.parametrize("off", ["console", "docs"])
async def test_the_console_and_the_docs_can_be_switched_off(off: str) -> None:
    async with (
        Coordinator(port=0, http_port=0, **{off: False}) as coordinator,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{coordinator.http_port}") as http,
    ):
        statuses = {
            path: (await http.get(path)).status_code
            for path in ("/console", "/docs", "/openapi.json")
        }
        services = await http.get("/v1/services")
    if off == "console":
        assert coordinator.console_url is None
        assert statuses == {"/console": 404, "/docs": 200, "/openapi.json": 200}
    else:
        assert statuses == {"/console": 200, "/docs": 404, "/openapi.json": 404}
    assert services.status_code == 200


async def test_an_invocation_in_detail(served: Served) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    submitted = await served.http.post(
        "/v1/services/shop/functions/place/submit",
        json={"order": {"item": "book", "quantity": 1}},
        headers={"traceparent": traceparent, "idempotency-key": "order-1"},
    )
    invocation_id = submitted.json()["invocation_id"]
    plain = (await served.http.get(f"/v1/invocations/{invocation_id}?wait=10")).json()
    detail = (await served.http.get(f"/v1/invocations/{invocation_id}?detail=true")).json()
    assert "input" not in plain
    assert detail["input"] == {"order": {"item": "book", "quantity": 1}}
    assert detail["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert detail["idempotency_key"] == "order-1"
    assert detail["worker_id"] and detail["created_unix_ms"] > 0
    assert detail["deadline_unix_ms"] is None
    bad = await served.http.get(f"/v1/invocations/{invocation_id}?detail=maybe")
    assert bad.status_code == 400 and "'detail' must be true or false" in bad.json()["error"]


async def test_workers_show_when_they_were_last_heard(served: Served) -> None:
    services = (await served.http.get("/v1/services")).json()["services"]
    for service in services:
        for worker in service["workers"]:
            assert 0 <= worker["last_seen_ms_ago"] < 60_000


async def _next_event(lines: AsyncIterator[str]) -> tuple[str, Any]:
    kind = ""
    async for line in lines:  # bounded by the stream's timeout
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            return kind, orjson.loads(line[len("data: ") :])
    raise AssertionError("the event stream ended")


async def _events_until(
    lines: AsyncIterator[str], invocation_id: str, state: str
) -> list[tuple[str, Any]]:
    seen = []
    async with asyncio.timeout(20):
        while True:  # bounded by the timeout
            kind, data = await _next_event(lines)
            seen.append((kind, data))
            if kind == "invocation" and data["invocation_id"] == invocation_id:
                if data["state"] == state:
                    return seen


async def _submit(http: httpx.AsyncClient, service: str, name: str, value: Any) -> str:
    response = await http.post(f"/v1/services/{service}/functions/{name}/submit", json=value)
    assert response.status_code == 202, response.text
    return str(response.json()["invocation_id"])


async def test_events_follow_an_invocation_live(served: Served) -> None:
    async with served.http.stream("GET", "/v1/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-store"
        lines = stream.aiter_lines()
        kind, first = await _next_event(lines)
        assert kind == "services"
        assert {s["name"] for s in first["services"]} == {"shop", "other"}
        invocation_id = await _submit(served.http, "shop", "linger", {"seconds": 0.3})
        seen = await _events_until(lines, invocation_id, "SUCCEEDED")
        failed_id = await _submit(served.http, "shop", "explode", {})
        failed = await _events_until(lines, failed_id, "FAILED")
    states = [
        d["state"] for k, d in seen if k == "invocation" and d["invocation_id"] == invocation_id
    ]
    assert states[0] in ("PENDING", "RUNNING") and "RUNNING" in states
    final = next(d for k, d in reversed(seen) if k == "invocation")
    assert final["service"] == "shop" and final["function"] == "linger"
    assert final["attempt"] == 1 and final["created_unix_ms"] > 0 and final["duration_ms"] > 0
    assert failed[-1][1]["error_code"] == "FUNCTION_FAILED"
    await eventually(lambda: len(served.events) == 0)  # the client left: its watcher is gone


async def test_events_follow_a_workflow_through_suspension_and_a_signal(served: Served) -> None:
    async with served.http.stream("GET", "/v1/events") as stream:
        lines = stream.aiter_lines()
        await _next_event(lines)
        invocation_id = await _submit(served.http, "shop", "approve", {"order": "o-1"})
        waiting = await _events_until(lines, invocation_id, "SUSPENDED")  # it gave its slot back
        signal = f"/v1/invocations/{invocation_id}/signals/decision"
        sent = await served.http.post(signal, json="yes")
        assert sent.status_code == 200 and sent.json()["delivered"] is True
        woken = await _events_until(lines, invocation_id, "SUCCEEDED")
    mine = [d["state"] for k, d in waiting + woken if d.get("invocation_id") == invocation_id]
    assert mine.index("SUSPENDED") < mine.index("RUNNING", mine.index("SUSPENDED"))  # resumed
    done = (await served.http.get(f"/v1/invocations/{invocation_id}")).json()
    assert done["result"] == {"order": "O-1", "decision": "yes"}
    assert [(step["kind"], step["name"]) for step in done["steps"]] == [
        ("step", "check"),
        ("signal", "decision"),
    ]


async def test_a_stalled_event_client_never_holds_the_coordinator_up(served: Served) -> None:
    """A client that opens the stream and never reads: once the socket buffers between them
    are full the stream cannot write, and invocations still run by the thousand while its
    watcher holds at most its buffer (1,000), then is reset; when the client goes, so does its
    watcher."""
    port = served.coordinator.http_port
    stalled = socket.socket()
    stalled.setsockopt(
        socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
    )  # before connecting: a small window
    stalled.connect(("127.0.0.1", port))
    stalled.sendall(b"GET /v1/events HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
    try:
        await eventually(lambda: len(served.events) == 1)
        watcher = served.events._watchers[0]
        async with AsyncClient(served.coordinator.endpoint) as client:
            for _ in range(100):  # bounded: until the buffers filled and the watcher fell behind
                results = await asyncio.gather(
                    *(client.invoke("shop", "linger", {"seconds": 0}) for _ in range(500))
                )
                assert results == [0] * 500
                assert len(watcher._changed) <= 1000
                if watcher._reset:
                    break
            assert watcher._reset, "the stream never stalled"
    finally:
        stalled.close()
    await eventually(lambda: len(served.events) == 0)


async def test_too_many_event_clients_are_refused(served: Served) -> None:
    streams = []
    try:
        for _ in range(64):
            stream = served.http.stream("GET", "/v1/events")
            response = await stream.__aenter__()
            streams.append(stream)
            assert response.status_code == 200
        refused = await served.http.get("/v1/events")
        assert refused.status_code == 429 and refused.json()["code"] == "RESOURCE_EXHAUSTED"
    finally:
        for stream in streams:
            await stream.__aexit__(None, None, None)


async def test_a_stop_ends_the_event_streams() -> None:
    coordinator = Coordinator(port=0, http_port=0)
    await coordinator.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{coordinator.http_port}") as http:
            async with http.stream("GET", "/v1/events") as stream:
                lines = stream.aiter_lines()
                await _next_event(lines)
                async with asyncio.timeout(5):  # ended by the stop, well before its grace
                    await coordinator.stop()
                    async for _ in lines:
                        pass
    finally:
        await coordinator.stop()
