"""PostgreSQL: the CLI's --database, and several coordinators sharing one database."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from typing import Any

import pytest
from _coordinator_support import (
    PYTHON,
    FakeWorker,
    agnt5_env,
    blocker,
    coordinator_process,
    echo,
    unique,
)
from _journal_sites import SHORT_LEASE, JournalSite

from agnt5.client import AsyncClient
from agnt5.coordinator import Coordinator
from agnt5.coordinator.postgres import PostgresStore
from agnt5.errors import (
    AgntError,
    FailedPreconditionError,
    InvalidArgumentError,
    InvocationCancelledError,
)
from agnt5.testing_postgres import TemporaryPostgres


def _refused(*args: str, env: dict[str, str] | None = None) -> str:
    """Run ``agnt5 coordinator ARGS`` expecting it to refuse to start; its stderr."""
    command = [*PYTHON, "-m", "agnt5", "coordinator", "--port", "0", "--http-port", "0", *args]
    finished = subprocess.run(
        command, capture_output=True, env=agnt5_env(**(env or {})), timeout=60, check=False
    )
    assert finished.returncode != 0, finished
    return finished.stderr.decode()


@pytest.mark.asyncio
async def test_the_cli_journals_to_the_database_of_its_environment(database_url: str) -> None:
    site = JournalSite("postgres", database_url)
    service = unique()
    with coordinator_process(env={"AGNT5_DATABASE_URL": database_url}) as process:
        async with (
            FakeWorker(process.endpoint, service, {"f": echo}),
            AsyncClient(process.endpoint, timeout=10) as client,
        ):
            assert await client.invoke(service, "f", [1], idempotency_key="k") == [1]
    assert await site.fetchval("SELECT output FROM invocations WHERE idempotency_key = 'k'") == (
        b"[1]"
    )
    assert await site.count("coordinators") == 0  # a clean stop gives its lease up


def test_a_database_url_that_is_not_postgresql_is_one_line() -> None:
    stderr = _refused("--database", "mysql://root:secret@db/app")
    assert stderr == (
        "agnt5: bad --database: a database URL must look like postgresql://user@host:5432/dbname, "
        "got one starting 'mysql'\n"
    )
    stderr = _refused(env={"AGNT5_DATABASE_URL": "sqlite:///x"})
    assert stderr.startswith("agnt5: bad AGNT5_DATABASE_URL: ")


def test_a_database_that_cannot_be_reached_is_one_line_without_its_password() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stderr = _refused("--database", f"postgresql://agnt5:s3cret@127.0.0.1:{port}/db")
    assert stderr.count("\n") == 1 and "s3cret" not in stderr
    assert stderr.startswith(
        f"error: cannot use the database postgresql://agnt5:***@127.0.0.1:{port}/db ("
    )
    assert stderr.endswith("check that it runs and that the URL, user and password are right\n")


@pytest.mark.asyncio
async def test_two_coordinators_answer_for_each_other(database_url: str) -> None:
    """Submitted on A (its worker runs it), asked for on B: same key, same invocation, and the
    outcome reaches a client waiting on B."""
    service, release = unique(), asyncio.Event()
    async with (
        Coordinator(port=0, store=PostgresStore(database_url)) as a,
        Coordinator(port=0, store=PostgresStore(database_url)) as b,
        FakeWorker(a.endpoint, service, {"f": blocker(release)}) as worker,
        AsyncClient(a.endpoint, timeout=10) as on_a,
        AsyncClient(b.endpoint, timeout=10) as on_b,
    ):
        invocation_id = await on_a.submit(service, "f", "x", idempotency_key="k")
        await worker.wait_for_invokes(1)
        assert await on_b.submit(service, "f", "x", idempotency_key="k") == invocation_id
        waiting = asyncio.create_task(on_b.result(invocation_id))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        release.set()
        assert await waiting == "released"
        assert await on_b.invoke(service, "f", "x", idempotency_key="k") == "released"
        assert len(worker.invokes) == 1


@pytest.mark.asyncio
async def test_a_killed_coordinators_work_is_taken_over_once_its_lease_expires(
    database_url: str,
) -> None:
    site = JournalSite("postgres", database_url)
    service = unique()
    async with (
        Coordinator(port=0, store=site.open()) as survivor,
        FakeWorker(survivor.endpoint, service, {"f": echo}) as takes_over,
        AsyncClient(survivor.endpoint, timeout=4 * SHORT_LEASE) as client,
    ):
        with coordinator_process(*site.args) as doomed:
            async with (
                FakeWorker(
                    doomed.endpoint, service, {"f": blocker(asyncio.Event())}, max_concurrency=8
                ) as stuck,
                AsyncClient(doomed.endpoint, timeout=10) as on_doomed,
            ):
                ids = [
                    await on_doomed.submit(service, "f", n, idempotency_key=str(n))
                    for n in range(5)
                ]
                await stuck.wait_for_invokes(5)
                doomed.kill()
        assert [await client.result(i) for i in ids] == list(range(5))
        assert sorted(invoke.attempt for invoke in takes_over.invokes) == [2] * 5


@pytest.mark.asyncio
async def test_an_invocation_runs_where_its_workers_are(database_url: str) -> None:
    """Submitted on A, whose has no worker of the service: B, which has, claims and runs it,
    and the outcome reaches the client waiting on A."""
    service = unique()
    async with (
        Coordinator(port=0, store=PostgresStore(database_url)) as a,
        Coordinator(port=0, store=PostgresStore(database_url)) as b,
        FakeWorker(b.endpoint, service, {"f": echo}, retries=0) as worker,
        AsyncClient(a.endpoint, timeout=10) as on_a,
    ):
        assert await on_a.invoke(service, "f", {"n": 1}, idempotency_key="k") == {"n": 1}
        assert [invoke.attempt for invoke in worker.invokes] == [1]
        results = await asyncio.gather(*(on_a.invoke(service, "f", n) for n in range(20)))
        assert results == list(range(20))
        assert await on_a.invoke(service, "f", {"n": 1}, idempotency_key="k") == {"n": 1}
        assert len(worker.invokes) == 21


@pytest.mark.asyncio
async def test_work_left_without_a_worker_goes_to_a_coordinator_with_one(
    database_url: str,
) -> None:
    """A's only worker goes away with one invocation running and three queued: B, whose worker
    serves the service, takes all four; the clients waiting on A get their outcomes."""
    service = unique()
    async with (
        Coordinator(port=0, store=PostgresStore(database_url)) as a,
        Coordinator(port=0, store=PostgresStore(database_url)) as b,
        AsyncClient(a.endpoint, timeout=20) as on_a,
    ):
        async with FakeWorker(
            a.endpoint, service, {"f": blocker(asyncio.Event())}, max_concurrency=1
        ) as leaving:
            calls = [asyncio.create_task(on_a.invoke(service, "f", n)) for n in range(4)]
            await leaving.wait_for_invokes(1)
            async with FakeWorker(b.endpoint, service, {"f": echo}) as staying:
                await asyncio.sleep(0.2)
                assert staying.invokes == []  # A's work stays on A while A has a worker
                await leaving.disconnect()
                assert sorted(await asyncio.gather(*calls)) == [0, 1, 2, 3]
                assert sorted(invoke.attempt for invoke in staying.invokes) == [1, 1, 1, 2]


async def _as_admin(postgres: TemporaryPostgres, query: str, *args: object) -> None:
    import asyncpg

    db = await asyncpg.connect(postgres.url("postgres"), timeout=10)
    try:
        await db.execute(query, *args)
    finally:
        await db.close()


@pytest.mark.asyncio
async def test_a_database_that_goes_away_refuses_new_work_and_recovers(
    postgres: TemporaryPostgres, database_url: str
) -> None:
    """While no connection to the database can be made, nothing is reported accepted or
    finished; once it can, the coordinator commits what it kept and takes work again."""
    name = database_url.rsplit("/", 1)[1]
    service = unique()
    async with (
        Coordinator(port=0, store=PostgresStore(database_url)) as coordinator,
        FakeWorker(coordinator.endpoint, service, {"f": echo}),
        AsyncClient(coordinator.endpoint, timeout=3) as client,
    ):
        assert await client.invoke(service, "f", 1) == 1
        await _as_admin(postgres, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await _as_admin(
            postgres, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            name,
        )  # fmt: skip
        with pytest.raises(AgntError) as refused:
            await client.invoke(service, "f", 2, idempotency_key="k")
        assert refused.value.retryable
        await _as_admin(postgres, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        async with AsyncClient(coordinator.endpoint, timeout=20) as patient:
            assert await patient.invoke(service, "f", 2, idempotency_key="k") == 2
            assert await patient.invoke(service, "f", 3) == 3


@pytest.mark.asyncio
@pytest.mark.usefixtures("registry")
async def test_a_workflow_on_one_coordinator_takes_signals_sent_through_another(
    database_url: str,
) -> None:
    from agnt5 import Worker, workflow

    service = unique("flows")

    @workflow
    async def approval(ctx) -> Any:  # type: ignore[no-untyped-def]
        first = await ctx.signal("approved")
        return [first, await ctx.signal("approved")]

    async with (
        Coordinator(port=0, store=PostgresStore(database_url)) as a,
        Coordinator(port=0, store=PostgresStore(database_url)) as b,
        AsyncClient(a.endpoint, timeout=20) as on_a,
    ):
        worker = Worker(service, coordinator_endpoint=b.endpoint, workflow_suspend_after=0.05)
        serving = asyncio.create_task(worker.run())
        try:
            async with asyncio.timeout(20):
                async with AsyncClient(b.endpoint, timeout=20) as on_b:
                    while not any(  # noqa: ASYNC110 - bounded by the timeout
                        s["name"] == service and s["workers"] for s in await on_b.list_services()
                    ):
                        await asyncio.sleep(0.02)
                invocation_id = await on_a.submit(service, "approval")  # runs on B
                while not (await on_a.describe(invocation_id)).get("steps"):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)  # waits for ctx.signal, within the timeout
            assert await on_a.signal(invocation_id, "approved", 1) is False  # forwarded to B
            assert await on_a.signal(invocation_id, "approved", 2) is False
            assert await on_a.result(invocation_id) == [1, 2]
        finally:
            worker.stop()
            await asyncio.wait_for(serving, 30)


@pytest.mark.asyncio
async def test_a_cancel_through_another_coordinator_stops_the_invocation_where_it_runs(
    database_url: str,
) -> None:
    """Submitted on A, run on B (its worker): cancelled through A, B's worker is sent the
    Cancel, clients on both see CANCELLED, and a second cancel finds it finished."""
    service = unique()
    async with (
        Coordinator(port=0, store=PostgresStore(database_url)) as a,
        Coordinator(port=0, store=PostgresStore(database_url)) as b,
        FakeWorker(b.endpoint, service, {"f": blocker(asyncio.Event())}) as worker,
        AsyncClient(a.endpoint, timeout=10) as on_a,
        AsyncClient(b.endpoint, timeout=10) as on_b,
    ):
        invocation_id = await on_a.submit(service, "f", "x")
        await worker.wait_for_invokes(1)
        waiting_on_b = asyncio.create_task(on_b.result(invocation_id))
        await on_a.cancel(invocation_id, "changed my mind")
        async with asyncio.timeout(10):
            while invocation_id not in worker.cancelled:  # noqa: ASYNC110 - bounded
                await asyncio.sleep(0.02)
        for outcome in (on_a.result(invocation_id), waiting_on_b):
            with pytest.raises(InvocationCancelledError, match="changed my mind"):
                await outcome
        with pytest.raises(FailedPreconditionError):
            await on_b.cancel(invocation_id)
        listed = await on_a.list_invocations(service)
        assert [
            (row["invocation_id"], row["state"], row.get("error_code"))
            for row in listed.invocations
        ] == [(invocation_id, "FAILED", "CANCELLED")]


@pytest.mark.asyncio
async def test_one_key_one_invocation_across_coordinators_racing(database_url: str) -> None:
    """Three coordinators (two with a worker of the service, one handing off) are sent the
    same new keys at once, 6 times each: every key gets one invocation, run once, and a key
    given again with another input is INVALID_ARGUMENT on every coordinator."""
    service, keys = unique(), [f"key-{n}" for n in range(40)]
    async with (
        Coordinator(port=0, store=PostgresStore(database_url)) as a,
        Coordinator(port=0, store=PostgresStore(database_url)) as b,
        Coordinator(port=0, store=PostgresStore(database_url)) as c,
        FakeWorker(a.endpoint, service, {"f": echo}) as on_a_worker,
        FakeWorker(b.endpoint, service, {"f": echo}) as on_b_worker,
    ):
        clients = [AsyncClient(site.endpoint, timeout=20) for site in (a, b, c) for _ in (0, 1)]
        try:
            ids = await asyncio.gather(
                *(
                    client.submit(service, "f", key, idempotency_key=key)
                    for key in keys
                    for client in clients
                )  # fmt: skip
            )
            by_key = [set(ids[n * len(clients) : (n + 1) * len(clients)]) for n in range(40)]
            assert [len(found) for found in by_key] == [1] * len(keys)
            assert [await clients[0].result(found.pop()) for found in by_key] == keys
            for client in clients[::2]:
                with pytest.raises(InvalidArgumentError, match="different input"):
                    await client.submit(service, "f", "other", idempotency_key=keys[0])
        finally:
            await asyncio.gather(*(client.close() for client in clients))
        ran = sorted(invoke.input for invoke in on_a_worker.invokes + on_b_worker.invokes)
        assert ran == sorted(f'"{key}"'.encode() for key in keys)
    site = JournalSite("postgres", database_url)
    assert await site.count("invocations") == len(keys)


@pytest.mark.asyncio
async def test_schema_1_migrates_keeping_the_oldest_invocation_of_a_key_given_twice(
    database_url: str,
) -> None:
    """Schema 1 had no unique key, so a race could give one key two invocations: schema 2
    keeps the key on the oldest and takes it off the other, then makes keys unique."""
    import asyncpg

    from agnt5.coordinator import postgres
    from agnt5.coordinator._journaled import COLUMNS, row
    from agnt5.coordinator.store import Invocation, RetryPolicy

    older, newer = (
        Invocation(
            f"id-{n}",
            "svc",
            "f",
            b"1",
            {},
            RetryPolicy(),
            idempotency_key="k",
            created_unix_ms=1000 + n,
        )  # fmt: skip
        for n in range(2)
    )
    db = await asyncpg.connect(database_url, timeout=10)
    try:
        await db.execute(postgres._MIGRATIONS[1])
        await db.execute("CREATE TABLE agnt5_schema (version INTEGER NOT NULL)")
        await db.execute("INSERT INTO agnt5_schema (version) VALUES (1)")
        marks = ", ".join(f"${n}" for n in range(1, 18))
        insert = f"INSERT INTO invocations ({COLUMNS}, owner) VALUES ({marks})"
        for invocation in (older, newer):
            await db.execute(insert, *row(invocation), "")
    finally:
        await db.close()
    store = PostgresStore(database_url)
    try:
        found = store.find("svc", "f", "k")
        assert found is not None and found.id == older.id
        assert store.get(newer.id) is not None
    finally:
        store.close()
    site = JournalSite("postgres", database_url)
    assert await site.fetchval("SELECT max(version) FROM agnt5_schema") == 2
    assert await site.fetchval("SELECT idempotency_key FROM invocations WHERE id = 'id-1'") == ""
    assert await site.fetchval(
        "SELECT indisunique FROM pg_index WHERE indexrelid = 'invocations_by_key'::regclass"
    )
