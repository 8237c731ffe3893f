"""`Batcher`: at once when idle, coalesced under load, bounded by count and bytes, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from agnt5._wire.batching import Batcher, by_kind

pytestmark = [pytest.mark.asyncio, pytest.mark.hot_path]

HOLD = 0.0123  # the batcher's hold in these tests: a value no other sleep here uses


class Item(int):
    """A batchable item whose size is its value."""


def batcher(queue: asyncio.Queue[object], **limits: float) -> Batcher:
    return Batcher(queue, Item, int, **limits)  # type: ignore[arg-type]


async def test_idle_item_goes_out_alone_and_at_once() -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    frames = batcher(queue)
    queue.put_nowait(Item(1))
    step = frames.next()
    with pytest.raises(StopIteration) as done:
        step.send(None)  # finishes without once giving the event loop a turn: no waiting
    assert done.value.value == [1]


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


@pytest.fixture
def holds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Every ``asyncio.sleep`` of ``HOLD`` seconds (the batcher's wait for company), in order."""
    seen: list[float] = []
    sleep = asyncio.sleep

    async def counting(delay: float, result: object = None) -> object:
        if delay == HOLD:
            seen.append(delay)
        return await sleep(delay, result)

    monkeypatch.setattr(asyncio, "sleep", counting)
    yield seen


async def test_a_frame_under_load_waits_for_company_once(holds: list[float]) -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    frames = batcher(queue, max_hold=HOLD)
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
        frame = await frames.next()
    finally:
        stop.set()
        await task
    assert len(frame) > 1  # company arrived during the hold ...
    assert holds == [HOLD]  # ... and the frame left after one hold, though items kept coming


@pytest.mark.parametrize("limits", [{"max_items": 0}, {"max_bytes": 0}, {"max_hold": -1.0}])
async def test_limits_are_checked(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="max_items"):
        Batcher(asyncio.Queue(), Item, int, **limits)  # type: ignore[arg-type]


class Other(int):
    """A second batchable kind."""


async def test_several_kinds_batch_together_and_split_by_kind_in_order() -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    frames = Batcher(queue, (Other, Item), int)  # type: ignore[arg-type]
    control = object()
    for item in (Item(1), Other(2), Item(3), Other(4), control, Item(5)):
        queue.put_nowait(item)
    first = await frames.next()
    assert first == [1, 2, 3, 4]
    assert by_kind(first, (Other, Item)) == [[Other(2), Other(4)], [Item(1), Item(3)]]
    kinds = [type(item) for batch in by_kind(first, (Other, Item)) for item in batch]
    assert kinds == [Other, Other, Item, Item]
    assert await frames.next() is control
    last = await frames.next()
    assert last == [Item(5)] and by_kind(last, (Other, Item)) == [last]
