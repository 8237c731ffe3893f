"""The docs' values through a real coordinator and worker: integers beyond 64 bits, bytes as
base64, an integral float for an int, a single list parameter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from _coordinator_support import registered, unique

from agnt5 import Worker, function
from agnt5.client import AsyncClient
from agnt5.coordinator import Coordinator

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("registry")]


@pytest_asyncio.fixture
async def client() -> AsyncIterator[tuple[AsyncClient, str]]:
    @function()
    def double(n: int) -> int:
        return n * 2

    @function()
    def reverse(data: bytes) -> bytes:
        return data[::-1]

    @function()
    def total(items: list[int]) -> int:
        return sum(items)

    service = unique()
    async with Coordinator(port=0) as coordinator:
        worker = Worker(service, coordinator_endpoint=coordinator.endpoint)
        serving = asyncio.create_task(worker.run())
        try:
            async with AsyncClient(coordinator.endpoint, timeout=10) as made:
                await registered(made, service)
                yield made, service
        finally:
            worker.stop()
            await asyncio.wait_for(serving, 30)


async def test_integers_beyond_64_bits_round_trip(client: tuple[AsyncClient, str]) -> None:
    made, service = client
    assert await made.invoke(service, "double", 2**100 + 1) == 2**101 + 2
    assert await made.invoke(service, "double", -(2**70)) == -(2**71)


async def test_bytes_integral_floats_and_a_list(client: tuple[AsyncClient, str]) -> None:
    made, service = client
    assert await made.invoke(service, "reverse", b"\x01\x02\x03") == "AwIB"  # base64 both ways
    assert await made.invoke(service, "double", 21.0) == 42
    assert await made.invoke(service, "total", [1, 2, 3]) == 6
