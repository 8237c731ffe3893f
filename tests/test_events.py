"""The event feed behind /v1/events: coalesced per invocation, bounded per watcher (a watcher
that falls behind is reset, never slows the publisher), filtered by service, closed cleanly."""

from __future__ import annotations

import asyncio

import pytest

from agnt5.coordinator.events import EventFeed
from agnt5.coordinator.store import Invocation, InvocationState, RetryPolicy
from agnt5.errors import ResourceExhaustedError

pytestmark = pytest.mark.asyncio


def invocation(number: int, service: str = "svc") -> Invocation:
    return Invocation(f"id-{number}", service, "f", b"{}", {}, RetryPolicy())


async def test_changes_are_coalesced_per_invocation_and_read_in_their_newest_state() -> None:
    feed = EventFeed()
    watcher = feed.watch(lambda service: True)
    first, second = invocation(1), invocation(2)
    feed.changed(first)
    feed.changed(second)
    first.state = InvocationState.RUNNING
    feed.changed(first)
    changes = await watcher.next(1.0)
    assert [i.id for i in changes.invocations] == ["id-1", "id-2"]
    assert changes.invocations[0].state is InvocationState.RUNNING
    assert not changes.reset and not changes.services
    assert not await watcher.next(0.01)  # nothing new: an empty batch after the timeout


async def test_a_watcher_sees_only_the_services_it_is_allowed() -> None:
    feed = EventFeed()
    watcher = feed.watch(lambda service: service == "mine")
    feed.changed(invocation(1, "theirs"))
    feed.changed(invocation(2, "mine"))
    assert [i.id for i in (await watcher.next(1.0)).invocations] == ["id-2"]


async def test_a_watcher_that_falls_behind_is_reset_within_its_buffer() -> None:
    feed = EventFeed(buffer=10)
    slow = feed.watch(lambda service: True)
    quick = feed.watch(lambda service: True)
    for number in range(10_000):  # the slow one never reads meanwhile: nobody waits for it
        feed.changed(invocation(number))
        if number % 5 == 4:
            assert len((await quick.next(0)).invocations) == 5
    changes = await slow.next(0)
    assert changes.reset and changes.invocations == []
    feed.changed(invocation(-1))  # after the reset it is followed again
    assert [i.id for i in (await slow.next(0)).invocations] == ["id--1"]


async def test_services_changes_wake_watchers() -> None:
    feed = EventFeed()
    watcher = feed.watch(lambda service: True)
    waiting = asyncio.create_task(watcher.next(10.0))
    await asyncio.sleep(0)
    feed.services_changed()
    changes = await asyncio.wait_for(waiting, 5)
    assert changes.services and not changes.invocations


async def test_watchers_are_bounded_and_unwatched() -> None:
    feed = EventFeed(max_watchers=2)
    first = feed.watch(lambda service: True)
    feed.watch(lambda service: True)
    with pytest.raises(ResourceExhaustedError, match="2 clients are watching already"):
        feed.watch(lambda service: True)
    feed.unwatch(first)
    assert len(feed) == 1 and first.closed
    feed.watch(lambda service: True)
    with pytest.raises(ValueError, match="max_watchers >= 1"):
        EventFeed(max_watchers=0)


async def test_closing_the_feed_ends_every_watch_at_once() -> None:
    feed = EventFeed()
    watcher = feed.watch(lambda service: True)
    waiting = asyncio.create_task(watcher.next(60.0))
    await asyncio.sleep(0)
    feed.close()
    assert not await asyncio.wait_for(waiting, 5)
    assert watcher.closed and len(feed) == 0
    assert feed.watch(lambda service: True).closed  # one watching after the close ends at once
