"""What a careless or hostile HTTP client cannot do to an ASGI worker served by a real uvicorn:
run a handler on a body it never finished, keep a handler running after it left, invoke without
saying the body is JSON (as any web page can), put a newline in an invocation id, or get
anything but the JSON error document from a handler that raises ``SystemExit``."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from _asgi_support import serve
from _raising import BASE_EXCEPTIONS, failure

from agnt5 import Worker, function

JSON = {"content-type": "application/json"}
ADD_HEADER = "add the header 'Content-Type: application/json'"


@pytest.fixture(scope="module", params=["plain", "BaseHTTPMiddleware"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """The base URL of a uvicorn serving the test app, and its log; the app as it is, and
    wrapped in a Starlette BaseHTTPMiddleware (which fails a request that gets no response)."""
    directory = tmp_path_factory.mktemp("asgi-abuse")
    middleware = {"BASE_HTTP_MIDDLEWARE": "1"} if request.param != "plain" else {}
    with serve(directory, **middleware) as (url, _):
        yield url, directory / "uvicorn.log"


def eventually(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # bounded by the deadline
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def request_head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def log_line(log: Path, invocation_id: str) -> str:
    """The runtime's log line about ``invocation_id`` ("" until there is one)."""
    text = log.read_text() if log.exists() else ""
    return next((line for line in text.splitlines() if invocation_id in line), "")


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_cut_short_by_a_disconnect_runs_no_handler(
    server: tuple[str, Path], tmp_path: Path, framing: str
) -> None:
    base, log = server
    marks = tmp_path / "marks"
    body = orjson.dumps({"path": str(marks), "note": "cut short"})  # valid JSON, but not all of it
    invocation_id = f"cut-{uuid.uuid4().hex}"
    headers = {**JSON, "X-Invocation-Id": invocation_id}
    if framing == "content-length":
        request = request_head("/invoke/mark", {**headers, "Content-Length": str(len(body) + 9)})
        request += body
    else:  # one chunk and no last chunk
        request = request_head("/invoke/mark", {**headers, "Transfer-Encoding": "chunked"})
        request += b"%x\r\n%s\r\n" % (len(body), body)
    with connect(base) as connection:
        connection.sendall(request)
    eventually(lambda: log_line(log, invocation_id) or marks.exists())
    assert not marks.exists(), marks.read_text()
    assert "Exception in ASGI application" not in log.read_text()
    assert log_line(log, invocation_id).endswith(
        f"invocation {invocation_id} of mark: "
        "the client disconnected before the request body was complete"
    )


@pytest.mark.parametrize(
    ("handler", "outcome"),
    [
        ("until_cancelled", "cancelled"),  # async: its task is cancelled
        ("until_ctx_cancelled", "cancelled: the client disconnected"),  # sync, in the pool
    ],
)
def test_a_client_that_leaves_cancels_its_invocation(
    server: tuple[str, Path], tmp_path: Path, handler: str, outcome: str
) -> None:
    base, log = server
    started, ended = tmp_path / "started", tmp_path / "ended"
    body = orjson.dumps({"started": str(started), "outcome": str(ended)})
    invocation_id = f"left-{uuid.uuid4().hex}"
    headers = {**JSON, "X-Invocation-Id": invocation_id, "Content-Length": str(len(body))}
    with connect(base) as connection:
        connection.sendall(request_head(f"/invoke/{handler}", headers) + body)
        eventually(started.exists)
    # A whole line, not just the file: the handler creates it before it writes. The handlers
    # give up by themselves only after 20 s.
    eventually(lambda: ended.exists() and ended.read_text().endswith("\n"))
    assert ended.read_text() == f"{outcome}\n"
    eventually(lambda: log_line(log, invocation_id))
    assert log_line(log, invocation_id).endswith(
        f"invocation {invocation_id} of {handler}: "
        "the client disconnected; the invocation was cancelled"
    )
    assert httpx.get(f"{base}/health", timeout=10).status_code == 200
    assert "Exception in ASGI application" not in log.read_text()


@pytest.mark.parametrize(
    ("headers", "content", "problem"),
    [
        ({}, b'{"request": 1}', "the request has no content type"),
        ({}, b"", "the request has no content type"),
        ({"content-type": "text/plain"}, b'{"request": 1}', "the content type 'text/plain'"),
        (
            {"content-type": "application/x-www-form-urlencoded"},
            b"request=1",
            "the content type 'application/x-www-form-urlencoded'",
        ),
        (
            {"content-type": "multipart/form-data; boundary=x"},
            b"--x--",
            "the content type 'multipart/form-data'",
        ),
    ],
)
def test_a_post_must_say_its_body_is_json(
    server: tuple[str, Path], headers: dict[str, str], content: bytes, problem: str
) -> None:
    base, _ = server
    response = httpx.post(
        f"{base}/invoke/web_handler", content=content, headers=headers, timeout=10
    )
    assert response.status_code == 415, response.text
    body = response.json()
    assert body["code"] == "INVALID_ARGUMENT" and body["status"] == 415
    assert body["error"].startswith(problem) and body["error"].endswith(ADD_HEADER)
    assert len(body["invocation_id"]) == 32


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON; charset=utf-8", "application/vnd.api+json"],
)
def test_json_media_types_are_accepted(server: tuple[str, Path], content_type: str) -> None:
    base, _ = server
    response = httpx.post(
        f"{base}/invoke/web_handler",
        content=b'{"request": {"a": 1}}',
        headers={"content-type": content_type},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"]["data"] == {"a": 1}


@pytest.mark.parametrize("handler", ["raise_async", "raise_sync", "raise_inline"])
def test_base_exceptions_give_the_json_error_document(
    server: tuple[str, Path], handler: str
) -> None:
    base, _ = server
    for name in BASE_EXCEPTIONS:
        response = httpx.post(
            f"{base}/invoke/{handler}",
            json=name,
            headers={"X-Invocation-Id": f"{handler}-{name}"},
            timeout=10,
        )
        assert (response.status_code, response.json()) == (
            500,
            {
                "error": failure(handler, name),
                "status": 500,
                "code": "FUNCTION_FAILED",
                "invocation_id": f"{handler}-{name}",
            },
        )
    assert httpx.get(f"{base}/health", timeout=10).status_code == 200


def test_a_handler_cancelling_its_own_task_gets_the_json_error_document(
    server: tuple[str, Path],
) -> None:
    base, _ = server
    for attempt in range(2):
        invocation_id = f"cancel-itself-{attempt}"
        response = httpx.post(
            f"{base}/invoke/cancel_itself",
            json="x",
            headers={"X-Invocation-Id": invocation_id},
            timeout=10,
        )
        assert (response.status_code, response.json()) == (
            500,
            {
                "error": "Function cancel_itself failed: CancelledError",
                "status": 500,
                "code": "FUNCTION_FAILED",
                "invocation_id": invocation_id,
            },
        )
    assert httpx.post(f"{base}/invoke/greet", json="Ada", timeout=10).json()["result"] == (
        "Hello, Ada!"
    )


@pytest.mark.asyncio
@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize("value", [b"inv-1\n", b"inv-1\r\n", b"\ninv-1", b"inv 1", b"x" * 129])
async def test_an_invocation_id_header_must_be_all_valid(value: bytes) -> None:
    """uvicorn and h11 strip or refuse a newline in a header value; other ASGI servers, and
    applications mounting the worker, may pass it through: the worker generates its own id."""

    @function()
    def whoami(ctx: Any) -> str:
        return str(ctx.invocation_id)

    app = Worker("ids", runtime="asgi")
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan.put_nowait({"type": "lifespan.startup"})
    lifespan_sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    running = asyncio.create_task(app({"type": "lifespan"}, lifespan.get, lifespan_sent.put))
    assert (await lifespan_sent.get())["type"] == "lifespan.startup.complete"
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"x-invocation-id", value)]
    scope = {"type": "http", "method": "POST", "path": "/invoke/whoami", "headers": headers}
    await app(scope, receive, send)
    lifespan.put_nowait({"type": "lifespan.shutdown"})
    await running
    body = orjson.loads(sent[-1]["body"])
    assert body["result"] == body["invocation_id"]
    assert len(body["invocation_id"]) == 32
