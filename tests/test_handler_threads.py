"""The sync-handler thread pool's use is visible: busy threads and threads held by handlers
whose invocations timed out, on /health and /metrics, and a warning when those hold more than
half the pool."""

from __future__ import annotations

import logging
import textwrap
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import httpx
import pytest
from _coordinator_support import coordinator_process, unique
from _metrics import samples
from test_standalone_observability import wait_for_status
from test_standalone_worker import free_port, log_of, wait_for_service, worker_process

from agnt5._handler_threads import HandlerThreads
from agnt5.client import Client
from agnt5.errors import InvocationTimeoutError


def _blocked(pool: HandlerThreads, release: threading.Event) -> Future[None]:
    started = threading.Event()

    def job() -> None:
        started.set()
        release.wait(10)

    future = pool.submit(job)
    assert started.wait(5)
    return future


def test_busy_and_abandoned_jobs_are_counted_and_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = HandlerThreads(3, "test-threads")
    release = threading.Event()
    try:
        jobs = [_blocked(pool, release) for _ in range(3)]
        assert (pool.size, pool.busy, pool.timed_out) == (3, 3, 0)
        with caplog.at_level(logging.WARNING, logger="agnt5.worker"):
            pool.abandon(jobs[0])
            assert not caplog.records  # one of three: not more than half
            pool.abandon(jobs[1])
            pool.abandon(jobs[2])
        assert pool.timed_out == 3
        assert len(caplog.records) == 1  # once while they hold over half
        assert "2 of 3 handler threads are held" in caplog.text
        release.set()
        for job in jobs:
            job.result(5)
        deadline = time.monotonic() + 5
        while pool.busy and time.monotonic() < deadline:  # bounded: the jobs just returned
            time.sleep(0.01)
        assert (pool.busy, pool.timed_out) == (0, 0)
        pool.abandon(pool.submit(lambda: None))  # a finished (or queued) job holds nothing
        assert pool.timed_out == 0
    finally:
        release.set()
        pool.shutdown(wait=True)


MODULE = textwrap.dedent(
    """
    import time

    from agnt5 import function


    @function(timeout=0.3, retries=0)
    def stuck(seconds: float) -> float:
        time.sleep(seconds)
        return seconds
    """
)


def test_timed_out_sync_handlers_show_on_health_metrics_and_in_the_log(tmp_path: Path) -> None:
    module = tmp_path / "stuck_app.py"
    module.write_text(MODULE)
    service, port = unique(), free_port()
    base = f"http://127.0.0.1:{port}"
    with coordinator_process() as coordinator, Client(coordinator.endpoint) as client:
        with worker_process(
            module,
            coordinator.endpoint,
            service,
            AGNT5_HEALTH_PORT=str(port),
            AGNT5_THREAD_POOL_SIZE="2",
        ) as worker:
            wait_for_service(client, service)
            wait_for_status(f"{base}/health", 200)
            assert httpx.get(f"{base}/health").json()["threads"] == {
                "size": 2,
                "busy": 0,
                "timed_out": 0,
            }
            for _ in range(2):
                with pytest.raises(InvocationTimeoutError):
                    client.invoke(service, "stuck", 3.0)
            health = httpx.get(f"{base}/health").json()
            assert health["threads"] == {"size": 2, "busy": 2, "timed_out": 2}
            assert health["status"] == "healthy"  # the loop is fine; the pool is not
            found = samples(httpx.get(f"{base}/metrics").text)
            assert found["agnt5_threads_busy", frozenset()] == 2
            assert found["agnt5_threads_timed_out", frozenset()] == 2
            assert found["agnt5_threads_limit", frozenset()] == 2
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # bounded: the handlers return after 3 s
                if httpx.get(f"{base}/health").json()["threads"]["busy"] == 0:
                    break
                time.sleep(0.1)
            assert httpx.get(f"{base}/health").json()["threads"]["timed_out"] == 0
        assert "2 of 2 handler threads are held by sync handlers" in log_of(worker)
