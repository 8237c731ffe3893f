"""The journals (SQLite and PostgreSQL): unfinished invocations run again after a restart;
results kept, then pruned. Tests named for SQLite test what only a data directory has."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _coordinator_support import (
    FakeWorker,
    agnt5_env,
    blocker,
    coordinator_process,
    echo,
    eventually,
    results_after_restart,
    unique,
)
from _journal_sites import JournalSite

from agnt5.client import AsyncClient
from agnt5.coordinator import Coordinator, SqliteStore, journal
from agnt5.coordinator._journaled import JournaledStore
from agnt5.coordinator.store import Invocation, InvocationState, RetryPolicy

pytestmark = pytest.mark.asyncio


async def _reopened_once_committed(store: JournaledStore, site: JournalSite) -> JournaledStore:
    """Wait for ``store``'s queued writes to commit, close it and open the journal afresh."""
    committed = asyncio.Event()
    store.when_saved(committed.set)
    await asyncio.wait_for(committed.wait(), 5)
    store.close()
    return site.open()


async def test_a_restart_redelivers_unfinished_work_and_keeps_results(
    journal_site: JournalSite,
) -> None:
    service = unique()
    first = Coordinator(port=0, store=journal_site.open())
    await first.start()
    try:
        async with (
            FakeWorker(first.endpoint, service, {"f": echo}),
            AsyncClient(first.endpoint, timeout=10) as client,
        ):
            assert await client.invoke(service, "f", "done", idempotency_key="done") == "done"
        async with (
            FakeWorker(first.endpoint, service, {"f": blocker(asyncio.Event())}) as stuck,
            AsyncClient(first.endpoint, timeout=10) as client,
        ):
            running = await client.submit(service, "f", "again", idempotency_key="running")
            await stuck.wait_for_invokes(1)
            await first.stop()
    finally:
        await first.stop()

    async with (
        Coordinator(port=0, store=journal_site.open()) as second,
        AsyncClient(second.endpoint, timeout=10) as client,
    ):
        # finished before the restart: answered by its key with no worker connected
        assert await client.invoke(service, "f", "done", idempotency_key="done") == "done"
        async with FakeWorker(second.endpoint, service, {"f": echo}) as worker:
            assert await client.result(running) == "again"
            assert [invoke.attempt for invoke in worker.invokes] == [2]
            assert await client.invoke(service, "f", "again", idempotency_key="running") == "again"


async def test_finished_results_are_pruned_after_their_retention(
    journal_site: JournalSite,
) -> None:
    store = journal_site.open(retention=0.01, max_finished=1)
    try:
        for name in ("old", "new"):
            invocation = Invocation(name, "svc", "f", b"", {}, RetryPolicy(), idempotency_key=name)
            store.add(invocation)
            invocation.state, invocation.output = InvocationState.SUCCEEDED, b"1"
            store.save(invocation)
        await eventually(lambda: store.get("old") is None, timeout=5)  # out of memory and disk
        assert store.find("svc", "f", "old") is None
        assert store.get("new") is not None  # the newest finished stay in memory
    finally:
        store.close()


async def test_outcomes_are_announced_after_they_are_committed(journal_site: JournalSite) -> None:
    store = journal_site.open()
    invocation = Invocation("i", "svc", "f", b"", {}, RetryPolicy())
    store.add(invocation)
    invocation.state = InvocationState.SUCCEEDED
    store.save(invocation)
    reopened = await _reopened_once_committed(store, journal_site)
    try:
        found = reopened.get("i")
        assert found is not None and found.state is InvocationState.SUCCEEDED
        assert reopened.unfinished() == []
    finally:
        reopened.close()


async def test_the_cli_journals_to_its_sqlite_data_dir(tmp_path: Path) -> None:
    with coordinator_process("--data-dir", str(tmp_path / "data")) as process:
        async with AsyncClient(process.endpoint, timeout=10) as client:
            assert await client.list_services() == []
        assert (tmp_path / "data" / "journal.db").exists()


async def test_an_id_from_submit_survives_a_kill_right_after(journal_site: JournalSite) -> None:
    """`submit` answers only once the invocation is journaled, so ``kill -9`` cannot lose it."""
    service = unique()
    with coordinator_process(*journal_site.args) as first:
        async with (
            FakeWorker(first.endpoint, service, {"f": blocker(asyncio.Event())}),
            AsyncClient(first.endpoint, timeout=10) as client,
        ):
            ids = [await client.submit(service, "f", n) for n in range(20)]
            first.kill()  # SIGKILL the moment the last id is back
    restarted = await results_after_restart("", service, ids, journal=journal_site.args)
    assert restarted == list(range(20))


async def test_changes_within_one_commit_land_as_the_final_state(
    journal_site: JournalSite,
) -> None:
    store = journal_site.open()
    invocation = Invocation("i", "svc", "f", b"1", {}, RetryPolicy(), idempotency_key="k")
    store.add(invocation)
    invocation.state, invocation.worker_id = InvocationState.RUNNING, "w"
    store.save(invocation)
    invocation.state, invocation.output = InvocationState.SUCCEEDED, b"2"
    store.save(invocation)
    reopened = await _reopened_once_committed(store, journal_site)
    try:
        found = reopened.find("svc", "f", "k")
        assert found is not None
        assert (found.state, found.worker_id, found.output) == (
            InvocationState.SUCCEEDED,
            "w",
            b"2",
        )
    finally:
        reopened.close()


@pytest.mark.parametrize(
    ("where", "params"),
    [
        (journal.FIND_BY_KEY, ("svc", "f", "k")),
        (journal.EXPIRED, (0,)),
    ],
)
async def test_sqlite_lookups_and_pruning_use_an_index(
    where: str, params: tuple[object, ...]
) -> None:
    """A full scan per lookup slows every invocation as the journal grows."""
    db = sqlite3.connect(":memory:")
    db.executescript(journal._SCHEMA)
    plan = db.execute(f"EXPLAIN QUERY PLAN SELECT id FROM invocations WHERE {where}", params)
    assert "USING INDEX" in " ".join(str(row) for row in plan)


def _coordinator_fails(data: Path) -> str:
    """Run ``agnt5 coordinator --data-dir DATA`` expecting it to refuse to start; its stderr.

    It runs beside ``data``: from the source tree, ``-m`` would import the uncompiled
    sources ahead of the installed package (and say so on stderr).
    """
    command = [sys.executable, "-m", "agnt5", "coordinator", "--port", "0", "--http-port", "0"]
    finished = subprocess.run(
        [*command, "--data-dir", str(data)],
        capture_output=True,
        cwd=data.parent,
        env=agnt5_env(),
        timeout=30,
        check=False,
    )
    assert finished.returncode == 1, finished
    return finished.stderr.decode()


async def test_a_second_coordinator_on_a_sqlite_data_dir_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with coordinator_process("--data-dir", str(data)) as first:
        stderr = _coordinator_fails(data)
        assert stderr == (
            f"error: {data} is in use by another coordinator (pid {first.process.pid}): stop "
            "it, or give this one another --data-dir\n"
        )
        first.kill()  # the lock goes with the process, even on kill -9
    with coordinator_process("--data-dir", str(data)):
        pass


async def test_the_sqlite_data_dir_and_its_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    store = SqliteStore(data)
    try:
        store.add(Invocation("i", "svc", "f", b"", {}, RetryPolicy()))
        committed = asyncio.Event()
        store.when_saved(committed.set)
        await asyncio.wait_for(committed.wait(), 5)
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in data.iterdir()}
    finally:
        store.close()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert modes == dict.fromkeys(["journal.db", "journal.db-wal", "journal.db-shm", "lock"], 0o600)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda db: db.write_bytes(b"not a database, just some bytes" * 200), "DatabaseError"),
        (lambda db: db.mkdir(), "IsADirectoryError"),
        (lambda db: _corrupt_row(db), "JSONDecodeError"),
    ],
    ids=["garbage", "unreadable", "corrupt-row"],
)
async def test_a_damaged_sqlite_journal_is_one_line_saying_what_to_do(
    tmp_path: Path, damage: Any, problem: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    damage(data / "journal.db")
    stderr = _coordinator_fails(data)
    assert stderr.count("\n") == 1 and problem in stderr
    assert stderr.startswith(f"error: cannot read the journal {data / 'journal.db'} (")
    assert stderr.endswith(
        "restore it from a backup, or move it and its -wal and -shm files away to start empty\n"
    )


def _corrupt_row(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(journal._SCHEMA)
    with db:
        db.execute(
            "INSERT INTO invocations VALUES ('i', 's', 'f', x'', 'not json', '{}', '', 0, 0, 0, "
            "1, 1, '', NULL, NULL, 0)"
        )
    db.close()


async def test_an_invoke_before_the_workers_reconnect_waits_for_them(
    journal_site: JournalSite,
) -> None:
    """After a restart a retried invoke may arrive before any worker registered again; it is
    retried (UNAVAILABLE), not refused as an unknown service."""
    service = unique()
    async with (
        Coordinator(port=0, store=journal_site.open()) as coordinator,
        AsyncClient(coordinator.endpoint, timeout=20) as client,
    ):
        early = asyncio.create_task(client.invoke(service, "f", "early", idempotency_key="k"))
        await asyncio.sleep(0.3)
        assert not early.done()
        async with FakeWorker(coordinator.endpoint, service, {"f": echo}):
            assert await early == "early"
