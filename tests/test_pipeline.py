"""One attempt, one path: context, time limit, errors and logging, alike in every runtime.

The pipeline is exercised directly, through `agnt5.testing`, through the ASGI runtime in-process
and through a standalone worker served by an embedded coordinator: the same invocation gives
the same error and the same log lines everywhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest

from agnt5 import Context, Worker, function
from agnt5._pipeline import Pipeline
from agnt5._registry import REGISTRY
from agnt5.client import AsyncClient
from agnt5.coordinator import Coordinator
from agnt5.errors import (
    AgntError,
    FunctionFailedError,
    InvalidArgumentError,
    InvocationTimeoutError,
    NotFoundError,
)
from agnt5.testing import ainvoke, invoke

pytestmark = pytest.mark.usefixtures("registry")

LOGGER = "agnt5.invocation"


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline("svc", REGISTRY)


def failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == LOGGER]


def test_a_route_follows_the_registry(pipeline: Pipeline) -> None:
    @function(name="shape")
    def first() -> int:
        return 1

    assert pipeline.route("shape").call(b"", "inv-1") == b"1"

    @function(name="again")
    def second() -> int:
        return 2

    REGISTRY.add(dataclasses.replace(REGISTRY.lookup("again"), name="shape"))
    assert pipeline.route("shape").call(b"", "inv-2") == b"2"
    with pytest.raises(NotFoundError, match="^Function 'nope' not found$"):
        pipeline.route("nope")


def test_a_context_is_built_only_for_handlers_that_take_one(pipeline: Pipeline) -> None:
    @function()
    def plain(x: int) -> int:
        return x

    @function()
    def aware(ctx: Context) -> list[Any]:
        return [ctx.invocation_id, ctx.service_name, ctx.attempt, dict(ctx.metadata)]

    assert pipeline.route("plain").context("inv-1") is None
    ctx = pipeline.route("aware").context("inv-2", 3, {"k": "v"}, 12.5)
    assert ctx is not None
    assert (ctx.invocation_id, ctx.function_name, ctx.attempt, ctx.deadline) == (
        "inv-2",
        "aware",
        3,
        12.5,
    )
    output = pipeline.route("aware").call(b"", "inv-3", metadata={"k": "v"})
    identity = {"service_name": "svc", "function_name": "aware", "invocation_id": "inv-3"}
    assert orjson.loads(output) == ["inv-3", "svc", 1, {"k": "v", **identity}]


@pytest.mark.asyncio
async def test_the_earlier_of_timeout_and_deadline_ends_an_attempt(pipeline: Pipeline) -> None:
    seen: list[Context] = []

    @function(timeout=0.05)
    async def slow(ctx: Context) -> None:
        seen.append(ctx)
        await asyncio.sleep(3600)

    route = pipeline.route("slow")
    with pytest.raises(InvocationTimeoutError, match="^Function slow timed out after 0.05s$"):
        await route.run(b"", "inv-1", deadline=time.time() + 3600)
    with pytest.raises(InvocationTimeoutError, match="^Function slow timed out after 0s$"):
        await route.run(b"", "inv-2", deadline=time.time() - 1)
    assert [ctx.cancel_reason for ctx in seen] == ["timeout", "timeout"]


def test_a_handler_exception_fails_once_with_its_cause_and_one_log_line(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    @function()
    def failing_function(data: dict) -> dict:  # type: ignore[type-arg]
        raise ValueError("Something went wrong")

    @function()
    async def async_failing() -> None:
        raise ValueError("Something went wrong")

    with caplog.at_level(logging.ERROR, logger=LOGGER):
        with pytest.raises(FunctionFailedError) as sync_error:
            pipeline.route("failing_function").call(b"{}", "inv-s")
        with pytest.raises(FunctionFailedError) as async_error:
            asyncio.run(pipeline.route("async_failing").run(b"", "inv-a"))
    for info in (sync_error, async_error):
        assert isinstance(info.value.__cause__, ValueError)
        assert info.value.error_type == "ValueError" and info.value.retryable is False
    assert sync_error.value.message == "Function failing_function failed: Something went wrong"
    records = failures(caplog)
    assert [(r.getMessage(), r.invocation_id) for r in records] == [  # type: ignore[attr-defined]
        ("Function failing_function failed: Something went wrong", "inv-s"),
        ("Function async_failing failed: Something went wrong", "inv-a"),
    ]
    assert all(r.exc_info and r.exc_info[0] is ValueError for r in records)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "raised",
    [SystemExit(3), KeyboardInterrupt(), asyncio.CancelledError(), GeneratorExit()],
    ids=lambda exc: type(exc).__name__,
)
async def test_whatever_a_handler_raises_fails_only_its_attempt(raised: BaseException) -> None:
    @function()
    async def raises_async() -> None:
        raise raised

    @function()
    def raises_sync() -> None:
        raise raised

    @function(inline=True)
    def raises_inline() -> None:
        raise raised

    with ThreadPoolExecutor(1) as executor:
        pipeline = Pipeline("svc", REGISTRY, executor)
        for name in ("raises_async", "raises_sync", "raises_inline"):
            with pytest.raises(FunctionFailedError) as info:
                await pipeline.route(name).run(b"", "inv-1")
            assert info.value.__cause__ is raised
            assert info.value.error_type == type(raised).__name__


def test_sys_exit_in_a_handler_names_what_was_raised() -> None:
    @function()
    def bails() -> None:
        sys.exit(3)

    with pytest.raises(FunctionFailedError, match="^Function bails failed: SystemExit: 3$"):
        invoke(bails)


@pytest.mark.asyncio
async def test_a_cancellation_asked_of_the_attempt_passes_through(pipeline: Pipeline) -> None:
    started = asyncio.Event()

    @function()
    async def waits() -> None:
        started.set()
        await asyncio.sleep(3600)

    attempt = asyncio.create_task(pipeline.route("waits").run(b"", "inv-1"))
    await started.wait()
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt


def test_agnt5_errors_are_outcomes_never_their_own_cause_nor_logged(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    @function()
    def picky(x: int) -> int:
        raise InvalidArgumentError("x must be even")

    @function()
    async def async_picky(x: int) -> int:
        raise InvalidArgumentError("x must be even")

    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        for name in ("picky", "async_picky"):
            with pytest.raises(InvalidArgumentError) as info:
                asyncio.run(pipeline.route(name).run(b"1", "inv-1"))
            assert info.value.__cause__ is None
            with pytest.raises(InvalidArgumentError):
                invoke(name, 1)
    assert failures(caplog) == []


def test_testing_applies_the_function_timeout() -> None:
    @function(timeout=0.05)
    async def nap() -> None:
        await asyncio.sleep(3600)

    with pytest.raises(InvocationTimeoutError, match="^Function nap timed out after 0.05s$"):
        asyncio.run(ainvoke(nap))


@pytest.mark.asyncio
async def test_both_runtimes_give_the_same_errors_and_log_the_same(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @function(timeout=0.05, retries=0)
    async def too_slow() -> None:
        await asyncio.sleep(3600)

    @function(retries=0)
    def broken() -> None:
        raise ValueError("Something went wrong")

    @function(retries=0)
    async def refuses() -> None:  # async: where an agnt5 error used to become its own cause
        raise InvalidArgumentError("no")

    names = ("too_slow", "broken", "refuses")
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        over_asgi = await _asgi_errors(names)
        over_grpc = await _standalone_errors(names)
    assert (
        over_asgi
        == over_grpc
        == [
            ("TIMEOUT", "Function too_slow timed out after 0.05s"),
            ("FUNCTION_FAILED", "Function broken failed: Something went wrong"),
            ("INVALID_ARGUMENT", "no"),
        ]
    )
    logged = [record.getMessage() for record in failures(caplog)]
    assert logged == ["Function broken failed: Something went wrong"] * 2  # once per runtime


async def _asgi_errors(names: tuple[str, ...]) -> list[tuple[str, str]]:
    """POST /invoke/{name} to an ASGI worker in-process, between lifespan startup and shutdown."""
    app = Worker("svc", runtime="asgi")
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan.put_nowait({"type": "lifespan.startup"})
    running = asyncio.create_task(app({"type": "lifespan"}, lifespan.get, lifespan_sent.put))
    assert (await lifespan_sent.get())["type"] == "lifespan.startup.complete"
    errors = []
    for name in names:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        headers = [(b"content-type", b"application/json")]
        scope = {"type": "http", "method": "POST", "path": f"/invoke/{name}", "headers": headers}
        await app(scope, receive, send)
        body = orjson.loads(sent[-1]["body"])
        errors.append((body["code"], body["error"]))
    lifespan.put_nowait({"type": "lifespan.shutdown"})
    await running
    return errors


async def _standalone_errors(names: tuple[str, ...]) -> list[tuple[str, str]]:
    async with Coordinator(port=0) as coordinator:
        worker = Worker("svc", coordinator_endpoint=coordinator.endpoint)
        serving = asyncio.create_task(worker.run())
        try:
            async with AsyncClient(coordinator.endpoint) as client:
                for _ in range(500):  # bounded: until the worker has registered
                    if any(s["workers"] for s in await client.list_services()):
                        break
                    await asyncio.sleep(0.02)
                errors = []
                for name in names:
                    with pytest.raises(AgntError) as info:
                        await client.invoke("svc", name)
                    errors.append((info.value.code, info.value.message))
                return errors
        finally:
            worker.stop()
            await asyncio.wait_for(serving, 30)
