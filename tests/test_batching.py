"""`Batcher`: at once when idle, coalesced under load, bounded by count and bytes, in order."""

from __future__ import annotations

import asyncio

import pytest

from agnt5._batching import Batcher

pytestmark = [pytest.mark.asyncio, pytest.mark.hot_path]


class Item(int):
    """A batchable item whose size is its value."""


def batcher(queue: asyncio.Queue[object], **limits: float) -> Batcher:
    return Batcher(queue, Item, int, **limits)  # type: ignore[arg-type]


async def test_idle_item_goes_out_alone_and_at_once() -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    frames = batcher(queue, max_hold=3600)  # waiting for company would time out
    queue.put_nowait(Item(1))
    async with asyncio.timeout(10):
        assert await frames.next() == [1]


async def test_queued_items_coalesce_within_count_and_byte_limits() -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    for _ in range(10):
        queue.put_nowait(Item(10))
    frames = batcher(queue, max_items=4, max_bytes=1000)
    assert await frames.next() == [10] * 4
    frames = batcher(queue, max_items=100, max_bytes=25)
    assert await frames.next() == [10] * 3  # stops once past 25 bytes
    queue.put_nowait(Item(5000))
    assert await frames.next() == [10] * 3
    assert await frames.next() == [5000]  # one item may exceed the bound alone


async def test_control_items_keep_their_place() -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    for item in (Item(1), Item(2), "drain", Item(3)):
        queue.put_nowait(item)
    frames = batcher(queue)
    assert [await frames.next() for _ in range(3)] == [[1, 2], "drain", [3]]


async def test_under_load_it_lingers_for_items_a_loop_turn_brings() -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    frames = batcher(queue)
    queue.put_nowait(Item(1))
    queue.put_nowait(Item(1))
    assert await frames.next() == [1, 1]  # now busy

    async def producer() -> None:
        for _ in range(5):  # one item per loop turn
            queue.put_nowait(Item(2))
            await asyncio.sleep(0)

    task = asyncio.create_task(producer())
    queue.put_nowait(Item(3))
    frame = await frames.next()
    await task
    assert frame[0] == 3 and len(frame) > 2


async def test_never_holds_an_item_longer_than_max_hold() -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    # Only the hold can end a frame: the limits are out of reach while the test runs.
    frames = batcher(queue, max_hold=0.001, max_items=10**9, max_bytes=10**9)
    queue.put_nowait(Item(1))
    queue.put_nowait(Item(1))
    await frames.next()  # busy from here
    stop = asyncio.Event()

    async def trickle() -> None:
        while not stop.is_set():  # bounded by the test: stopped below
            queue.put_nowait(Item(1))
            await asyncio.sleep(0)

    task = asyncio.create_task(trickle())
    try:
        async with asyncio.timeout(10):  # a hold that never ended would time out
            frame = await frames.next()
    finally:
        stop.set()
        await task
    assert len(frame) > 1


@pytest.mark.parametrize("limits", [{"max_items": 0}, {"max_bytes": 0}, {"max_hold": -1.0}])
async def test_limits_are_checked(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="max_items"):
        Batcher(asyncio.Queue(), Item, int, **limits)  # type: ignore[arg-type]
