"""Listing invocations from both stores: newest first, filters, cursors, and bounded pages."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from agnt5.coordinator import MemoryStore, SqliteStore
from agnt5.coordinator.checks import cursor_text, invocation_query
from agnt5.coordinator.store import (
    PAGE_SCAN,
    Invocation,
    InvocationQuery,
    InvocationState,
    RetryPolicy,
    StateStore,
)
from agnt5.errors import InvalidArgumentError

SUCCEEDED, FAILED = InvocationState.SUCCEEDED, InvocationState.FAILED


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    made: StateStore = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path)
    yield made
    made.close()


def make(
    store: StateStore, count: int, service: str = "svc", function: str = "f", start: int = 0
) -> list[Invocation]:
    """``count`` invocations, one created each millisecond from 1,000,000 + ``start`` ms."""
    made = []
    for number in range(start, start + count):
        invocation = Invocation(
            f"{service}-{number:06d}",
            service,
            function,
            b"",
            {},
            RetryPolicy(),
            created_unix_ms=1_000_000 + number,
        )
        store.add(invocation)
        made.append(invocation)
    return made


def finish(store: StateStore, invocation: Invocation, code: str = "") -> None:
    invocation.state = FAILED if code else SUCCEEDED
    invocation.output = None if code else b"1"
    invocation.error = (
        {"code": code, "message": "x", "type": "E", "retryable": False} if code else None
    )
    store.save(invocation)


async def committed(store: StateStore) -> None:
    done = asyncio.Event()
    store.when_saved(done.set)
    await asyncio.wait_for(done.wait(), 10)


def ids(store: StateStore, query: InvocationQuery) -> list[str]:
    return [row.id for row in store.list(query).invocations]


def every_page(store: StateStore, query: InvocationQuery) -> tuple[list[str], int]:
    """The ids of every page of ``query`` in order, and how many pages it took."""
    found: list[str] = []
    pages = 0
    while True:  # bounded: each page moves the cursor back
        page = store.list(query)
        pages += 1
        found += [row.id for row in page.invocations]
        if page.next_after is None:
            return found, pages
        query = InvocationQuery(**{**query.__dict__, "after": page.next_after})


@pytest.mark.asyncio
async def test_newest_first_with_states_codes_and_times(store: StateStore) -> None:
    first, second, third = make(store, 3)
    finish(store, first)
    finish(store, second, "CANCELLED")
    await committed(store)
    rows = store.list(InvocationQuery()).invocations
    assert [row.id for row in rows] == [third.id, second.id, first.id]
    assert [row.state for row in rows] == [InvocationState.PENDING, FAILED, SUCCEEDED]
    assert rows[1].error_code == "CANCELLED" and rows[0].error_code == ""
    assert rows[2].created_unix_ms == 1_000_000 and rows[2].updated_unix_ms > 1_000_000


@pytest.mark.asyncio
async def test_filters(store: StateStore) -> None:
    orders = make(store, 4, "orders", "place")
    make(store, 3, "billing", "charge", start=10)
    finish(store, orders[1], "TIMEOUT")
    await committed(store)
    by = InvocationQuery
    assert len(ids(store, by(services=frozenset({"orders"})))) == 4
    assert ids(store, by(services=frozenset({"orders"}), states=frozenset({FAILED}))) == [
        orders[1].id
    ]
    assert len(ids(store, by(function="charge"))) == 3
    assert len(ids(store, by(services=frozenset({"orders", "billing"})))) == 7
    assert ids(store, by(services=frozenset({"nobody"}))) == []
    window = by(created_after_unix_ms=1_000_001, created_before_unix_ms=1_000_003)
    assert ids(store, window) == [orders[2].id, orders[1].id]


@pytest.mark.asyncio
async def test_ten_thousand_page_through_in_order(store: StateStore) -> None:
    made = make(store, 10_000)
    await committed(store)
    found, pages = every_page(store, InvocationQuery(limit=100))
    assert found == [invocation.id for invocation in reversed(made)]
    assert pages == 100


@pytest.mark.asyncio
async def test_a_filtered_page_looks_at_a_bounded_number(store: StateStore) -> None:
    made = make(store, PAGE_SCAN * 2 + 10)
    finish(store, made[0], "CANCELLED")  # the oldest: only the third page reaches it
    await committed(store)
    query = InvocationQuery(states=frozenset({FAILED}), limit=10)
    first = store.list(query)
    assert first.invocations == [] and first.next_after == made[-PAGE_SCAN].key
    found, pages = every_page(store, query)
    assert found == [made[0].id] and pages == 3


def test_sqlite_listings_walk_an_index(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    store.close()
    db = sqlite3.connect(tmp_path / "journal.db")
    try:
        for index, where in (
            ("invocations_by_created", "(created_unix_ms, id) < (1, 'x') AND created_unix_ms >= 0"),
            ("invocations_by_service", "service = 's' AND (created_unix_ms, id) < (1, 'x')"),
        ):
            plan = db.execute(
                f"EXPLAIN QUERY PLAN SELECT id FROM invocations INDEXED BY {index} WHERE {where} "
                "ORDER BY created_unix_ms DESC, id DESC LIMIT 10"
            ).fetchall()
            details = " ".join(row[-1] for row in plan)
            assert f"INDEX {index}" in details and "TEMP B-TREE" not in details, details
    finally:
        db.close()


def test_query_checks() -> None:
    def query(**fields: object) -> InvocationQuery:
        given: dict[str, object] = {
            "service": "", "function": "", "states": [], "created_after_unix_ms": 0,
            "created_before_unix_ms": 0, "limit": 0, "cursor": "", "allowed": None,
        }  # fmt: skip
        return invocation_query(**{**given, **fields})  # type: ignore[arg-type]

    assert query().limit == 50
    assert query(states=["failed", 2]).states == {FAILED, InvocationState.RUNNING}
    assert query(allowed=frozenset({"a"})).services == {"a"}
    assert query(service="b", allowed=frozenset({"a"})).services == {"b"}  # the caller checks
    assert query(cursor=cursor_text((12, "id.with.dots"))).after == (12, "id.with.dots")
    for fields, message in (
        ({"limit": 1001}, "limit must be 1 to 1000"),
        ({"states": ["DONE"]}, "state must be one of PENDING, RUNNING, SUCCEEDED, FAILED"),
        ({"cursor": "nonsense"}, "is not one a listing returned"),
        ({"created_after_unix_ms": 2**63}, "created_after must be a Unix time"),
        ({"service": "s" * 300}, "service must be at most 256 characters"),
    ):
        with pytest.raises(InvalidArgumentError, match=message):
            query(**fields)
