"""The sync-handler pool's hand-off: bounded, off the loop, outcomes back in batches."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agnt5._handler_threads import HandlerThreads

WAIT = 10.0  # seconds any test waits for a thread at most
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


class CountingLoop(asyncio.SelectorEventLoop):
    """An event loop that counts the wake-ups other threads ask of it."""

    def __init__(self) -> None:
        super().__init__()
        self.wakeups = 0

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> Any:
        self.wakeups += 1
        return super().call_soon_threadsafe(callback, *args, context=context)


@pytest.fixture
def pool(request: pytest.FixtureRequest) -> Iterator[HandlerThreads]:
    """A pool whose threads are all gone when the test ends."""
    name = f"test-pool-{request.node.name}"
    made = HandlerThreads(getattr(request, "param", 4), name)
    yield made
    made.close()
    for thread in threading.enumerate():
        if thread.name.startswith(name):
            thread.join(WAIT)
            assert not thread.is_alive(), f"{thread.name} outlived close()"


def run(main: Callable[[], Any]) -> Any:
    with asyncio.Runner(loop_factory=CountingLoop) as runner:
        return runner.run(main())


def test_a_job_runs_in_a_pool_thread_in_the_callers_context(pool: HandlerThreads) -> None:
    def where() -> tuple[str, str]:
        return threading.current_thread().name, request_id.get()

    async def main() -> tuple[str, str]:
        request_id.set("req-7")
        return await pool.run(where)

    thread_name, seen = run(main)
    assert thread_name.startswith("test-pool-") and seen == "req-7"


def test_the_jobs_exception_reaches_the_caller(pool: HandlerThreads) -> None:
    failure = ValueError("bad input")

    def fail() -> None:
        raise failure

    async def main() -> None:
        with pytest.raises(ValueError) as caught:
            await pool.run(fail)
        assert caught.value is failure

    run(main)


@pytest.mark.parametrize("pool", [2], indirect=True)
def test_no_more_threads_run_than_the_pool_has(pool: HandlerThreads) -> None:
    running = peak = 0
    lock = threading.Lock()

    def job() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with lock:
            running -= 1

    async def main() -> None:
        await asyncio.gather(*(pool.run(job) for _ in range(20)))

    run(main)
    assert peak == 2
    assert sum(t.name.startswith("test-pool-") for t in threading.enumerate()) == 2


def test_a_blocking_job_leaves_the_loop_free(pool: HandlerThreads) -> None:
    released = threading.Event()

    async def main() -> bool:
        blocked = pool.run(released.wait, WAIT)
        await asyncio.sleep(0.01)  # the loop still runs while the job blocks
        released.set()
        return await blocked

    assert run(main) is True


def test_outcomes_finished_together_wake_the_loop_once(pool: HandlerThreads) -> None:
    finished = threading.Semaphore(0)

    def job(n: int) -> int:
        finished.release()
        return n

    async def main() -> tuple[list[int], int]:
        loop = asyncio.get_running_loop()
        before = loop.wakeups  # type: ignore[attr-defined]
        futures = [pool.run(job, n) for n in range(4)]
        for _ in futures:  # hold the loop until every job is done: one batch to deliver
            assert finished.acquire(timeout=WAIT)
        time.sleep(0.05)  # noqa: ASYNC251 - the loop is held on purpose, until every outcome is in
        results = list(await asyncio.gather(*futures))
        return results, loop.wakeups - before  # type: ignore[attr-defined]

    results, wakeups = run(main)
    assert results == [0, 1, 2, 3]
    assert wakeups == 1


@pytest.mark.parametrize("pool", [1], indirect=True)
def test_a_job_cancelled_while_queued_never_runs(pool: HandlerThreads) -> None:
    release = threading.Event()
    ran: list[str] = []

    async def main() -> None:
        first = pool.run(release.wait, WAIT)
        second = pool.run(ran.append, "second")
        second.cancel()
        release.set()
        await first
        await pool.run(ran.append, "third")

    run(main)
    assert ran == ["third"]


@pytest.mark.parametrize("pool", [1], indirect=True)
def test_close_cancels_queued_jobs_and_lets_running_ones_finish(pool: HandlerThreads) -> None:
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def running() -> str:
        started.set()
        release.wait(WAIT)
        return "finished"

    async def main() -> tuple[str, bool]:
        first = pool.run(running)
        queued = pool.run(ran.append, "queued")
        assert started.wait(WAIT)
        pool.close()
        release.set()
        result = await first
        await asyncio.sleep(0)  # the cancellation close() scheduled
        with pytest.raises(RuntimeError, match="closed"):
            pool.run(ran.append, "late")
        return result, queued.cancelled()

    assert run(main) == ("finished", True)
    assert ran == []


def test_a_pool_serves_one_loop_after_another(pool: HandlerThreads) -> None:
    async def main() -> int:
        return await pool.run(sum, [1, 2, 3])

    assert run(main) == 6
    assert run(main) == 6


def test_a_pool_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least one thread, got 0"):
        HandlerThreads(0)
