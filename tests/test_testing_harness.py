"""The in-process harness runs the invocation pipeline workers run; usage examples work through it."""

from __future__ import annotations

import asyncio
import logging
from unittest.mock import patch

import pytest

from agnt5 import FunctionFailedError, InvalidArgumentError, NotFoundError, Worker, function
from agnt5.testing import ainvoke, ainvoke_raw, invoke, invoke_raw

pytestmark = [pytest.mark.usefixtures("registry"), pytest.mark.hot_path]


def test_hello() -> None:
    @function()
    def hello(name: str) -> str:
        return f"Hello, {name}!"

    assert hello("Ada") == "Hello, Ada!"
    assert invoke(hello, {"name": "Ada"}) == "Hello, Ada!"
    assert invoke("hello", "Ada") == "Hello, Ada!"
    assert invoke_raw("hello", b'{"name":"Ada"}') == b'"Hello, Ada!"'


def test_a_logged_function_reads_the_invocation_id(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("example.logged")

    @function()
    def logged_function(ctx, data: dict) -> dict:  # type: ignore[no-untyped-def, type-arg]
        logger.info(
            "Processing function",
            extra={
                "invocation_id": ctx.invocation_id,
                "service_name": ctx.metadata.get("service_name"),
                "data_size": len(str(data)),
            },
        )
        return {"processed": True, "invocation_id": ctx.invocation_id}

    with caplog.at_level(logging.INFO, logger="example.logged"):
        result = invoke(logged_function, {"a": 1})
    assert result["processed"] is True
    assert result["invocation_id"].startswith("test-")
    record = caplog.records[-1]
    assert record.invocation_id == result["invocation_id"]  # type: ignore[attr-defined]
    assert record.service_name == "testing"  # type: ignore[attr-defined]
    assert record.data_size == len(str({"a": 1}))  # type: ignore[attr-defined]


def test_registration_check_with_a_patched_runtime() -> None:
    @function()
    def test_function(data: str) -> str:
        return data.upper()

    with patch("agnt5.worker.PyWorker"):
        worker = Worker("test-service")
        assert "test_function" in worker._register_components()
    from agnt5.decorators import get_registered_functions

    assert "test_function" in get_registered_functions()
    assert invoke(test_function, "abc") == "ABC"


def test_async_handlers_through_sync_and_async_entry_points() -> None:
    @function()
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    assert invoke(double, 21) == 42
    assert asyncio.run(ainvoke(double, {"x": 2})) == 4
    assert asyncio.run(ainvoke_raw("double", b"[5]")) == b"10"


def test_invoke_of_async_handler_inside_a_running_loop_says_what_to_do() -> None:
    @function()
    async def inner() -> int:
        return 1

    async def main() -> None:
        with pytest.raises(RuntimeError, match="use ainvoke"):
            invoke(inner)

    asyncio.run(main())


def test_errors_surface_as_agnt5_errors() -> None:
    @function()
    def failing_function(data: dict) -> dict:  # type: ignore[type-arg]
        raise ValueError("Something went wrong")

    @function()
    async def async_failing() -> None:
        raise KeyError("k")

    with pytest.raises(
        FunctionFailedError, match="^Function failing_function failed: Something went wrong$"
    ):
        invoke(failing_function, {})
    with pytest.raises(FunctionFailedError, match="^Function async_failing failed: 'k'$"):
        invoke(async_failing)
    with pytest.raises(InvalidArgumentError, match="unknown parameter"):
        invoke_raw("async_failing", b'{"x": 1}')
    with pytest.raises(NotFoundError):
        invoke("no_such_function")
    with pytest.raises(NotFoundError, match="not registered"):
        invoke(lambda: None)
