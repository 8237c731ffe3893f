"""A journal that cannot commit: nothing is reported accepted or finished until it is committed,
what needs no disk keeps working, and the coordinator recovers by itself."""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import httpx
import pytest
from _coordinator_support import (
    FakeWorker,
    blocker,
    coordinator_process,
    echo,
    eventually,
    results_after_restart,
    unique,
)

from agnt5._proto import invocations_pb2, invocations_pb2_grpc
from agnt5.coordinator import SqliteStore
from agnt5.coordinator.store import Invocation, InvocationState, RetryPolicy

pytestmark = pytest.mark.asyncio


@contextmanager
def _disk_full(pid: int) -> Iterator[None]:
    """Let process ``pid`` write no file past its first byte (RLIMIT_FSIZE), as a full disk
    would, until the block exits. Works for any user, root included, on processes it owns."""
    before = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, before[1]))
    try:
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, before)


async def test_a_failing_disk_refuses_new_work_and_recovers(tmp_path: Path) -> None:
    service, data = unique(), str(tmp_path / "data")
    release = asyncio.Event()
    with coordinator_process("--data-dir", data) as first:
        async with (
            FakeWorker(first.endpoint, service, {"f": echo, "hold": blocker(release)}),
            httpx.AsyncClient(base_url=first.http_url, timeout=10) as http,
            grpc.aio.insecure_channel(first.grpc_address) as channel,
        ):
            path = f"/v1/services/{service}/functions"
            held = (await http.post(f"{path}/hold/submit", json={})).json()["invocation_id"]
            with _disk_full(first.process.pid):
                for action in ("submit", "invoke?wait=0", "invoke"):
                    refused = await http.post(f"{path}/f/{action}", json=1)
                    assert refused.status_code == 503, refused.text
                    assert refused.json()["code"] == "UNAVAILABLE"
                    assert "cannot write its journal" in refused.json()["error"]
                stub = invocations_pb2_grpc.InvocationsStub(channel)
                request = invocations_pb2.InvokeRequest(service=service, function="f")
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.Submit(request, timeout=10)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
                # what needs no disk still works; an outcome not committed is not shown
                assert (await http.get("/v1/services")).status_code == 200
                assert (await http.get("/health")).status_code == 200
                ready = await http.get("/ready")
                assert (
                    ready.status_code == 503 and "journal cannot commit" in ready.json()["reason"]
                )
                release.set()
                await asyncio.sleep(0.3)
                running = (await http.get(f"/v1/invocations/{held}")).json()
                assert running["state"] == "RUNNING" and "result" not in running
            # the disk is back: the held outcome is committed and shown, new work accepted
            done = (await http.get(f"/v1/invocations/{held}?wait=10")).json()
            assert done["state"] == "SUCCEEDED" and done["result"] == "released"
            assert (await http.get("/ready")).json() == {"status": "ready"}
            accepted = [
                (await http.post(f"{path}/f/submit", json=n)).json()["invocation_id"]
                for n in range(5)
            ]
        first.kill()
    assert await results_after_restart(data, service, [held, *accepted]) == [
        "released",
        *range(5),
    ]


def _invocation(name: str) -> Invocation:
    return Invocation(name, "svc", "f", b"1", {}, RetryPolicy())


async def _saved(store: SqliteStore) -> None:
    committed = asyncio.Event()
    store.when_saved(committed.set)
    await asyncio.wait_for(committed.wait(), 5)


async def test_a_change_sqlite_cannot_store_is_dropped_and_the_writer_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path)
    try:
        poisoned, healthy = _invocation("poisoned"), _invocation("healthy")
        store.add(poisoned)
        store.add(healthy)
        await _saved(store)
        poisoned.state, poisoned.duration_us = InvocationState.SUCCEEDED, 2**64 - 1
        store.save(poisoned)
        healthy.state = InvocationState.SUCCEEDED
        store.save(healthy)
        with caplog.at_level(logging.ERROR, logger="agnt5.coordinator"):
            await _saved(store)
        assert "dropped a change of invocation poisoned" in caplog.text
        later = _invocation("later")
        store.add(later)
        await _saved(store)  # the writer is alive
        assert store.failure is None
    finally:
        store.close()
    reopened = SqliteStore(tmp_path)
    try:
        assert {i.id for i in reopened.unfinished()} == {"poisoned", "later"}
        found = reopened.get("healthy")
        assert found is not None and found.state is InvocationState.SUCCEEDED
    finally:
        reopened.close()


async def test_callbacks_wait_for_a_commit_that_failed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    try:
        store.add(_invocation("first"))
        await _saved(store)
        saved = asyncio.Event()
        failures: list[str] = []
        with _disk_full(0):  # this process: the writer thread's commit fails
            store.add(_invocation("second"))
            store.when_saved(saved.set, failures.append)
            await eventually(lambda: bool(failures), timeout=5)
            assert store.failure is not None and "disk I/O error" in failures[0]
            await asyncio.sleep(0.2)  # retries fail too
            assert not saved.is_set()
        await asyncio.wait_for(saved.wait(), 5)
        assert store.failure is None and len(failures) == 1
    finally:
        store.close()
