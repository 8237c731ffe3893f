"""The HTTP gateway of a coordinator subprocess: endpoints, status codes and error bodies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from _coordinator_support import (
    CoordinatorProcess,
    FakeWorker,
    blocker,
    coordinator_process,
    echo,
    unique,
)

from agnt5._proto import worker_pb2
from agnt5.client import AsyncClient
from agnt5.errors import FunctionFailedError, InvalidArgumentError, PayloadTooLargeError

pytestmark = pytest.mark.asyncio

LIMIT = 1024
_JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def coordinator() -> Iterator[CoordinatorProcess]:
    with coordinator_process("--max-input-bytes", str(LIMIT)) as process:
        yield process


async def failing_function(invoke: worker_pb2.Invoke) -> bytes:
    raise FunctionFailedError(
        "Function failing_function failed: Something went wrong", error_type="ValueError"
    )


@pytest_asyncio.fixture
async def served(
    coordinator: CoordinatorProcess,
) -> AsyncIterator[tuple[str, asyncio.Event, httpx.AsyncClient]]:
    """A service with echo, failing_function and hold (waits for the event), and an HTTP client."""
    service = unique()
    release = asyncio.Event()
    handlers = {"echo": echo, "failing_function": failing_function, "hold": blocker(release)}
    async with (
        FakeWorker(coordinator.endpoint, service, handlers),
        httpx.AsyncClient(base_url=coordinator.http_url, timeout=10, headers=_JSON) as http,
    ):
        try:
            yield service, release, http
        finally:
            release.set()


def _path(service: str, function: str, action: str = "invoke") -> str:
    return f"/v1/services/{service}/functions/{function}/{action}"


async def test_invoke_returns_the_output(
    served: tuple[str, asyncio.Event, httpx.AsyncClient],
) -> None:
    service, _, http = served
    response = await http.post(_path(service, "echo"), content=b'{"name": "Ada"}')
    assert response.status_code == 200
    body = response.json()
    assert (
        body["state"] == "SUCCEEDED" and body["result"] == {"name": "Ada"} and body["attempt"] == 1
    )
    empty = await http.post(_path(service, "echo"))
    assert empty.status_code == 200 and empty.json()["result"] is None


async def test_handler_failure_is_500_with_the_documented_body(
    served: tuple[str, asyncio.Event, httpx.AsyncClient],
) -> None:
    service, _, http = served
    response = await http.post(_path(service, "failing_function"), json={})
    assert response.status_code == 500
    body = response.json()
    assert body.pop("invocation_id")
    assert body == {
        "error": "Function failing_function failed: Something went wrong",
        "status": 500,
        "code": "FUNCTION_FAILED",
    }


async def test_submit_then_fetch(served: tuple[str, asyncio.Event, httpx.AsyncClient]) -> None:
    service, _, http = served
    submitted = await http.post(_path(service, "echo", "submit"), json=[1, 2])
    assert submitted.status_code == 202
    invocation_id = submitted.json()["invocation_id"]
    fetched = await http.get(f"/v1/invocations/{invocation_id}", params={"wait": 5})
    assert fetched.status_code == 200
    assert fetched.json()["result"] == [1, 2] and fetched.json()["invocation_id"] == invocation_id


async def test_idempotency_key_header(served: tuple[str, asyncio.Event, httpx.AsyncClient]) -> None:
    service, _, http = served
    headers = {"Idempotency-Key": unique("key")}
    first = await http.post(_path(service, "echo", "submit"), json=1, headers=headers)
    second = await http.post(_path(service, "echo", "submit"), json=1, headers=headers)
    assert first.json()["invocation_id"] == second.json()["invocation_id"]
    assert (first.json()["deduplicated"], second.json()["deduplicated"]) == (False, True)


async def test_unfinished_invoke_is_202_and_deadline_is_504(
    served: tuple[str, asyncio.Event, httpx.AsyncClient],
) -> None:
    service, release, http = served
    running = await http.post(_path(service, "hold"), params={"wait": 0.1})
    assert running.status_code == 202
    assert running.json()["state"] == "RUNNING"
    assert running.headers["location"] == f"/v1/invocations/{running.json()['invocation_id']}"
    late = await http.post(_path(service, "hold"), params={"timeout": 0.2})
    assert late.status_code == 504 and late.json()["code"] == "TIMEOUT"
    release.set()
    done = await http.get(running.headers["location"], params={"wait": 5})
    assert done.json()["result"] == "released"


async def test_not_found_and_bad_requests(
    served: tuple[str, asyncio.Event, httpx.AsyncClient],
) -> None:
    service, _, http = served
    cases = [
        (http.post(_path(service, "nope")), 404, "NOT_FOUND"),
        (http.post(_path(unique("nope"), "echo")), 404, "NOT_FOUND"),
        (http.get("/v1/invocations/unknown"), 404, "NOT_FOUND"),
        (http.get("/no/such/route"), 404, "NOT_FOUND"),
        (http.get(_path(service, "echo")), 405, "METHOD_NOT_ALLOWED"),
        (http.post(_path(service, "echo"), content=b"{not json"), 400, "INVALID_ARGUMENT"),
        (http.post(_path(service, "echo"), params={"wait": "soon"}), 400, "INVALID_ARGUMENT"),
    ]
    for request, status, code in cases:
        response = await request
        assert (response.status_code, response.json()["code"], response.json()["status"]) == (
            status,
            code,
            status,
        )


async def test_oversized_input_is_413(
    coordinator: CoordinatorProcess, served: tuple[str, asyncio.Event, httpx.AsyncClient]
) -> None:
    service, _, http = served
    big = b'"' + b"x" * LIMIT + b'"'
    response = await http.post(_path(service, "echo"), content=big)
    assert response.status_code == 413 and response.json()["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the gateway counts
        for _ in range(4):
            yield b" " * (LIMIT // 2)

    streamed = await http.post(_path(service, "echo"), content=chunks())
    assert streamed.status_code == 413
    async with AsyncClient(coordinator.endpoint) as client:
        with pytest.raises(PayloadTooLargeError):
            await client.invoke(service, "echo", "x" * LIMIT)
        assert await client.invoke(service, "echo", "still serving") == "still serving"


async def test_services_lists_components_and_workers(
    coordinator: CoordinatorProcess, served: tuple[str, asyncio.Event, httpx.AsyncClient]
) -> None:
    service, _, http = served
    response = await http.get("/v1/services")
    assert response.status_code == 200
    entry = {s["name"]: s for s in response.json()["services"]}[service]
    assert sorted(c["name"] for c in entry["components"]) == ["echo", "failing_function", "hold"]
    assert entry["components"][0]["input_schema"] == {"type": "object"}
    assert len(entry["workers"]) == 1 and entry["queued"] == 0
    async with AsyncClient(coordinator.endpoint) as client:  # the same view over gRPC
        listed = {s["name"]: s for s in await client.list_services()}[service]
    for view in (entry, listed):  # heard from within a few heartbeats (it beats every 0.3 s)
        last_seen = [worker.pop("last_seen_ms_ago") for worker in view["workers"]]
        assert all(0 <= ms < 10_000 for ms in last_seen), last_seen
    assert listed == entry


async def test_traceparent_header_reaches_the_worker(coordinator: CoordinatorProcess) -> None:
    service = unique()
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with (
        FakeWorker(coordinator.endpoint, service, {"echo": echo}) as worker,
        httpx.AsyncClient(base_url=coordinator.http_url, timeout=10) as http,
    ):
        response = await http.post(
            _path(service, "echo"), headers={"traceparent": traceparent, **_JSON}
        )
        assert response.status_code == 200
    assert dict(worker.invokes[0].metadata) == {"traceparent": traceparent}


async def test_an_idempotency_key_reused_with_another_input_is_refused(
    served: tuple[str, asyncio.Event, httpx.AsyncClient], coordinator: CoordinatorProcess
) -> None:
    service, _, http = served
    headers = {"idempotency-key": unique("key")}
    first = await http.post(_path(service, "echo"), json={"n": 1}, headers=headers)
    assert first.json()["result"] == {"n": 1}
    again = await http.post(_path(service, "echo"), json={"n": 1}, headers=headers)
    assert again.json()["invocation_id"] == first.json()["invocation_id"]
    other = await http.post(_path(service, "echo"), json={"n": 2}, headers=headers)
    assert other.status_code == 400
    assert other.json()["error"] == (
        f"idempotency key {headers['idempotency-key']!r} was used for {service}/echo with a "
        "different input: use a new key for a new input"
    )
    async with AsyncClient(coordinator.endpoint, timeout=10) as client:
        with pytest.raises(InvalidArgumentError, match="with a different input"):
            await client.invoke(
                service, "echo", {"n": 3}, idempotency_key=headers["idempotency-key"]
            )


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_body_cut_short_by_a_disconnect_submits_nothing(
    coordinator: CoordinatorProcess, framing: str
) -> None:
    """The gateway and the ASGI runtime share one body reader: a body the client never finished
    is not an input (it used to be submitted as it was when the connection closed)."""
    service = unique()
    body = b'{"name": "cut short"}'  # valid JSON, but not all of the declared body
    if framing == "content-length":
        framing_header, sent = f"Content-Length: {len(body) + 9}", body
    else:  # one chunk and no last chunk
        framing_header, sent = "Transfer-Encoding: chunked", b"%x\r\n%s\r\n" % (len(body), body)
    head = (
        f"POST {_path(service, 'echo')} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\n{framing_header}\r\n\r\n"
    )
    host, port = coordinator.http_address.rsplit(":", 1)
    async with (
        FakeWorker(coordinator.endpoint, service, {"echo": echo}) as worker,
        httpx.AsyncClient(base_url=coordinator.http_url, timeout=10) as http,
    ):
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(head.encode() + sent)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        whole = await http.post(
            _path(service, "echo"),
            content=b'{"name": "whole"}',
            headers={"content-type": "application/json"},
        )
        assert whole.status_code == 200, whole.text
    assert [invoke.input for invoke in worker.invokes] == [b'{"name": "whole"}']
