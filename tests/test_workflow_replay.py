"""Workflows through `agnt5.testing.WorkflowRun`: journaling, replay, determinism, suspension."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections import Counter
from typing import Any

import pytest

from agnt5 import (
    AgntError,
    Backoff,
    FunctionFailedError,
    InvalidArgumentError,
    InvocationTimeoutError,
    NonDeterministicError,
    NotFoundError,
    ResourceExhaustedError,
    UnavailableError,
    function,
    workflow,
)
from agnt5.errors import FailedPreconditionError
from agnt5.testing import WorkflowRun
from agnt5.workflows.journal import (
    COMPLETED,
    FAILED,
    MAX_ENTRIES,
    PENDING,
    SIGNAL,
    SLEEP,
    STEP,
    TASK,
)

pytestmark = pytest.mark.usefixtures("registry")


class Calls(Counter[str]):
    """How many times each step function really ran."""

    def step(self, name: str, value: Any = None) -> Any:
        self[name] += 1
        return value if value is not None else name


def test_the_issue_example_runs_resumes_and_replays_without_rerunning_anything() -> None:
    calls = Calls()

    @function
    def validate(order_id: str) -> dict[str, Any]:
        calls["validate"] += 1
        return {"order_id": order_id, "total": 42}

    @function
    def reserve(order: dict[str, Any]) -> str:
        calls["reserve"] += 1
        return f"reserved {order['order_id']}"

    @workflow
    async def process_order(ctx, order_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        order = await ctx.task("orders", "validate", input={"order_id": order_id})
        charge = await ctx.step("charge", calls.step, "charge", {"charged": order["total"]})
        a, b = await ctx.parallel(
            ctx.task("stock", "reserve", input=order), ctx.step("mail", calls.step, "mail")
        )
        named = await ctx.gather(
            db=ctx.task("stock", "reserve", input=order), api=ctx.step("api", calls.step, "api")
        )
        await ctx.sleep(3600)
        approval = await ctx.signal("approved", timeout_ms=86_400_000, default={"approved": False})
        return {"charge": charge, "a": a, "b": b, "named": named, "approved": approval["approved"]}

    run = WorkflowRun(process_order, {"order_id": "o-1"})
    assert run.run() == "suspended"  # at the sleep
    assert [(e.kind, e.name, e.state) for e in run.journal][-1] == (SLEEP, "", PENDING)
    assert run.fire_timers() == 1
    assert run.run() == "suspended"  # at the signal
    assert run.send_signal("approved", {"approved": True}) is True
    assert run.run() == "completed"
    assert run.result == {
        "charge": {"charged": 42},
        "a": "reserved o-1",
        "b": "mail",
        "named": {"db": "reserved o-1", "api": "api"},
        "approved": True,
    }
    assert run.runs == 3
    assert calls == {"validate": 1, "charge": 1, "reserve": 2, "mail": 1, "api": 1}
    assert run.replay() == "completed" and run.result["approved"] is True
    assert calls == {"validate": 1, "charge": 1, "reserve": 2, "mail": 1, "api": 1}
    kinds = [(entry.seq, entry.kind, entry.name) for entry in run.journal]
    assert kinds == [
        (0, TASK, "orders/validate"),
        (1, STEP, "charge"),
        (2, TASK, "stock/reserve"),
        (3, STEP, "mail"),
        (4, TASK, "stock/reserve"),
        (5, STEP, "api"),
        (6, SLEEP, ""),
        (7, SIGNAL, "approved"),
    ]
    assert all(entry.state == COMPLETED for entry in run.journal)


@pytest.mark.parametrize("stop", [1, 2, 3, 4])
def test_a_run_stopped_after_any_step_resumes_without_rerunning_recorded_steps(stop: int) -> None:
    calls = Calls()

    @workflow
    async def five_steps(ctx) -> list[str]:  # type: ignore[no-untyped-def]
        return [await ctx.step(f"s{n}", calls.step, f"s{n}") for n in range(5)]

    run = WorkflowRun(five_steps)
    assert run.run(stop_after=stop) == "stopped"
    assert len(run.journal) == stop and sum(calls.values()) == stop
    assert run.run() == "completed"
    assert run.result == ["s0", "s1", "s2", "s3", "s4"]
    assert calls == {f"s{n}": 1 for n in range(5)}


def test_stop_after_a_named_step_and_the_step_in_flight_runs_again() -> None:
    calls = Calls()

    async def slow() -> str:
        calls["slow"] += 1
        await asyncio.sleep(3600 if calls["slow"] == 1 else 0.01)  # in flight at the "crash"
        return "slow"

    @workflow
    async def fan(ctx) -> list[str]:  # type: ignore[no-untyped-def]
        return await ctx.parallel(ctx.step("slow", slow), ctx.step("fast", calls.step, "fast"))

    run = WorkflowRun(fan)
    assert run.run(stop_after="fast") == "stopped"  # "slow" was in flight: never journaled
    assert [entry.name for entry in run.journal] == ["fast"]
    assert run.run() == "completed" and run.result == ["slow", "fast"]
    assert calls == {"slow": 2, "fast": 1}


def test_stop_after_needs_more_entries_than_the_journal_holds() -> None:
    @workflow
    async def one(ctx) -> int:  # type: ignore[no-untyped-def]
        await ctx.step("a", lambda: 1)
        await ctx.sleep(10)
        return 1

    run = WorkflowRun(one)
    assert run.run() == "suspended"
    with pytest.raises(ValueError, match="the journal already holds 2 entries"):
        run.run(stop_after=2)


def test_replaying_other_code_fails_non_deterministic_naming_both() -> None:
    @workflow
    async def v1(ctx) -> str:  # type: ignore[no-untyped-def]
        await ctx.step("reserve", lambda: 1)
        await ctx.step("charge", lambda: 2)
        await ctx.sleep(60)
        return "done"

    first = WorkflowRun(v1)
    assert first.run() == "suspended"

    @workflow
    async def v2(ctx) -> str:  # type: ignore[no-untyped-def]
        await ctx.step("reserve", lambda: 1)
        await ctx.task("orders", "validate")
        return "done"

    replay = WorkflowRun(v2, journal=first.journal)
    assert replay.run() == "failed"
    assert isinstance(replay.error, NonDeterministicError)
    assert replay.error.code == "NON_DETERMINISTIC" and replay.error.retryable is False
    assert replay.error.message == (
        "workflow v2 diverged from its journal at step 1: the journal has step 'charge', "
        "the code asked for task 'orders/validate'"
    )
    with pytest.raises(NonDeterministicError):
        _ = replay.result


def test_divergence_fails_the_run_even_when_the_code_catches_it() -> None:
    @workflow
    async def original(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.sleep(5)
        await ctx.step("x", lambda: 1)

    first = WorkflowRun(original)
    first.run()

    @workflow
    async def stubborn(ctx) -> str:  # type: ignore[no-untyped-def]
        try:
            ctx.now()
        except Exception:
            pass
        return "carried on"

    replay = WorkflowRun(stubborn, journal=first.journal)
    assert replay.run() == "failed"
    assert replay.error is not None and replay.error.message == (
        "workflow stubborn diverged from its journal at step 0: the journal has sleep, "
        "the code asked for now"
    )


def test_code_that_stops_short_of_its_journal_is_non_deterministic() -> None:
    @workflow
    async def long(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.step("a", lambda: 1)
        await ctx.step("b", lambda: 2)

    first = WorkflowRun(long)
    assert first.run() == "completed"

    @workflow
    async def short(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.step("a", lambda: 1)

    replay = WorkflowRun(short, journal=first.journal)
    assert replay.run() == "failed"
    assert replay.error is not None and replay.error.message == (
        "workflow short diverged from its journal at step 1: the journal has step 'b', "
        "the code returned without asking for it"
    )


def test_a_failed_step_is_journaled_and_raised_again_on_replay() -> None:
    calls = Calls()

    def declined() -> None:
        calls["charge"] += 1
        raise ValueError("card declined")

    @workflow
    async def pay(ctx) -> str:  # type: ignore[no-untyped-def]
        try:
            await ctx.step("charge", declined)
        except FunctionFailedError as error:
            await ctx.sleep(1)
            return f"{error.code}: {error.message} ({error.error_type})"
        return "paid"

    run = WorkflowRun(pay)
    assert run.run() == "suspended"
    entry = run.journal[0]
    assert (entry.state, entry.attempt, entry.output) == (FAILED, 1, None)
    assert entry.error == {
        "code": "FUNCTION_FAILED",
        "message": "Step charge failed: card declined",
        "type": "ValueError",
        "retryable": False,
    }
    run.fire_timers()
    assert run.run() == "completed"
    assert run.result == "FUNCTION_FAILED: Step charge failed: card declined (ValueError)"
    assert calls == {"charge": 1}


def test_retryable_step_errors_are_retried_within_the_step_with_backoff() -> None:
    calls = Calls()

    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise UnavailableError("try again")
        return "ok"

    def always_down() -> None:
        calls["down"] += 1
        raise UnavailableError("down")

    @workflow(retries=2, backoff=Backoff(initial=0.001, maximum=0.002))
    async def retrying(ctx) -> str:  # type: ignore[no-untyped-def]
        first = await ctx.step("flaky", flaky)
        await ctx.step("down", always_down)
        return first

    run = WorkflowRun(retrying)
    assert run.run() == "failed"
    flaky_entry, down_entry = run.journal
    assert (flaky_entry.state, flaky_entry.attempt) == (COMPLETED, 3)
    assert (down_entry.state, down_entry.attempt) == (FAILED, 3)
    assert calls == {"flaky": 3, "down": 3}
    assert isinstance(run.error, UnavailableError)
    assert run.error.retryable is False  # a replay would fail the same way: not worth a retry


def test_non_retryable_step_errors_are_not_retried() -> None:
    calls = Calls()

    def broken() -> None:
        calls["broken"] += 1
        raise KeyError("k")

    @workflow(retries=5, backoff=0.001)
    async def once(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.step("broken", broken)

    run = WorkflowRun(once)
    assert run.run() == "failed"
    assert calls == {"broken": 1} and run.journal[0].attempt == 1
    assert run.error is not None and run.error.message == "Step broken failed: 'k'"


def test_steps_take_sync_async_and_zero_argument_async_callables() -> None:
    async def add(a: int, b: int = 0) -> int:
        await asyncio.sleep(0)
        return a + b

    @workflow
    async def forms(ctx) -> list[Any]:  # type: ignore[no-untyped-def]
        return [
            await ctx.step("sync", lambda x: x * 2, 21),
            await ctx.step("async", add, 1, b=2),
            await ctx.step("factory", lambda: add(5)),
            await ctx.step("tuple", lambda: (1, 2)),
        ]

    run = WorkflowRun(forms)
    assert run.run() == "completed"
    # the first run sees what replays see: the value's JSON, decoded
    assert run.result == [42, 3, 5, [1, 2]]
    assert run.replay() == "completed" and run.result == [42, 3, 5, [1, 2]]


def test_a_step_result_that_is_not_json_fails_the_step() -> None:
    @workflow
    async def bad(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.step("object", object)

    run = WorkflowRun(bad)
    assert run.run() == "failed"
    assert run.journal[0].state == FAILED
    assert run.error is not None and "Step object failed" in run.error.message


def test_parallel_raises_the_first_error_in_argument_order_after_all_finish() -> None:
    finished: list[str] = []

    async def fail_later(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        finished.append(name)
        raise ValueError(name)

    async def succeed(delay: float) -> str:
        await asyncio.sleep(delay)
        finished.append("ok")
        return "ok"

    @workflow
    async def fan(ctx) -> str:  # type: ignore[no-untyped-def]
        try:
            await ctx.parallel(
                ctx.step("ok", succeed, 0.03),
                ctx.step("second", fail_later, "second", 0.02),
                ctx.step("first", fail_later, "first", 0.0),
            )
        except FunctionFailedError as error:
            return error.message
        return "no error"

    run = WorkflowRun(fan)
    assert run.run() == "completed"
    assert run.result == "Step second failed: second"  # argument order, not finishing order
    assert sorted(finished) == ["first", "ok", "second"]  # nothing left running
    assert run.replay() == "completed" and run.result == "Step second failed: second"


def test_nested_groups_gather_and_empty_parallel() -> None:
    @workflow
    async def nested(ctx) -> Any:  # type: ignore[no-untyped-def]
        inner = ctx.parallel(ctx.step("a", lambda: "a"), ctx.step("b", lambda: "b"))
        both = await ctx.gather(pair=inner, c=ctx.step("c", lambda: "c"))
        return [both, await ctx.parallel(), await ctx.gather()]

    run = WorkflowRun(nested)
    assert run.run() == "completed"
    assert run.result == [{"pair": ["a", "b"], "c": "c"}, [], {}]
    assert [entry.name for entry in run.journal] == ["a", "b", "c"]


def test_parallel_refuses_what_ctx_did_not_number() -> None:
    async def branch() -> int:
        return 1

    @workflow
    async def mixed(ctx) -> None:  # type: ignore[no-untyped-def]
        coroutine = branch()
        try:
            await ctx.parallel(ctx.step("a", lambda: 1), coroutine)
        finally:
            coroutine.close()

    run = WorkflowRun(mixed)
    assert run.run() == "failed"
    assert (
        run.error is not None
        and "ctx.parallel and ctx.gather take what this ctx's" in run.error.message
    )


def test_an_operation_is_awaited_once() -> None:
    @workflow
    async def twice(ctx) -> None:  # type: ignore[no-untyped-def]
        step = ctx.step("a", lambda: 1)
        await step
        await step

    run = WorkflowRun(twice)
    assert run.run() == "failed"
    assert run.error is not None and "step 'a' (step 0) is already awaited" in run.error.message


def test_now_random_and_uuid4_replay_their_first_values() -> None:
    @workflow
    async def values(ctx) -> list[Any]:  # type: ignore[no-untyped-def]
        now, number, ident = ctx.now(), ctx.random(), ctx.uuid4()
        await ctx.sleep(1)
        assert isinstance(now, datetime.datetime) and now.tzinfo is datetime.UTC
        assert isinstance(number, float) and 0 <= number < 1
        assert isinstance(ident, uuid.UUID) and ident.version == 4
        return [now.isoformat(), number, str(ident)]

    run = WorkflowRun(values)
    assert run.run() == "suspended"
    run.fire_timers()
    assert run.run() == "completed"
    first = run.result
    assert run.replay() == "completed" and run.result == first
    assert [entry.kind for entry in run.journal] == ["now", "random", "uuid", "sleep"]


def test_a_signal_sent_before_the_wait_is_kept_and_timeouts_give_the_default() -> None:
    @workflow
    async def waits(ctx) -> list[Any]:  # type: ignore[no-untyped-def]
        early = await ctx.signal("early")
        late = await ctx.signal("late", timeout_ms=1_000, default="no answer")
        return [early, late]

    run = WorkflowRun(waits)
    assert run.send_signal("early", {"n": 1}) is False  # nobody waits yet: kept
    assert run.run() == "suspended"  # "early" was taken at once; waits for "late"
    assert run.fire_timers() == 1  # the wait's timeout
    assert run.run() == "completed" and run.result == [{"n": 1}, "no answer"]
    with pytest.raises(FailedPreconditionError, match="has finished"):
        run.send_signal("early")


def test_a_signal_timeout_without_default_raises_timeout() -> None:
    @workflow
    async def strict(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.signal("approved", timeout_ms=10)

    run = WorkflowRun(strict)
    assert run.run() == "suspended"
    run.fire_timers()
    assert run.run() == "failed"
    assert isinstance(run.error, InvocationTimeoutError)
    assert run.error.message == "signal 'approved' did not arrive within 10 ms"


def test_timer_takes_milliseconds_and_sleep_journals_the_fire_time() -> None:
    @workflow
    async def timers(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.timer(delay_ms=250)
        await ctx.sleep(0.5)

    run = WorkflowRun(timers)
    assert run.run() == "suspended"
    (entry,) = run.journal
    assert entry.fire_unix_ms - entry.started_unix_ms == 250
    run.fire_timers()
    run.run()
    second = run.journal[1]
    assert second.fire_unix_ms - second.started_unix_ms == 500


def test_signals_and_timers_reach_a_live_run() -> None:
    def later(action: Any, *args: Any) -> None:
        asyncio.get_running_loop().call_later(0.01, action, *args)

    @workflow
    async def live(ctx) -> Any:  # type: ignore[no-untyped-def]
        await ctx.step("fire soon", later, lambda: run.fire_timers())
        await ctx.sleep(5)
        await ctx.step("signal soon", later, lambda: run.send_signal("go", "went"))
        return await ctx.signal("go")

    run = WorkflowRun(live, suspend_after=30.0)  # a long threshold: the run stays live
    assert asyncio.run(asyncio.wait_for(run.arun(), 10)) == "completed"
    assert run.result == "went" and run.runs == 1


def test_a_far_timer_suspends_at_once_whatever_the_threshold() -> None:
    @workflow
    async def far(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.sleep(7200)

    run = WorkflowRun(far, suspend_after=3600.0)
    assert asyncio.run(asyncio.wait_for(run.arun(), 30)) == "suspended"


def test_a_run_waiting_on_a_signal_suspends_after_the_threshold() -> None:
    @workflow
    async def waits(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.signal("never")

    run = WorkflowRun(waits, suspend_after=0.05)
    assert asyncio.run(asyncio.wait_for(run.arun(), 30)) == "suspended"


def test_a_run_does_not_suspend_while_a_step_runs_beside_a_wait() -> None:
    done: list[str] = []

    async def work() -> str:
        await asyncio.sleep(0.05)
        done.append("work")
        return "work"

    @workflow
    async def busy(ctx) -> Any:  # type: ignore[no-untyped-def]
        return await ctx.parallel(ctx.step("work", work), ctx.sleep(60))

    run = WorkflowRun(busy)
    assert run.run() == "suspended"
    assert done == ["work"]
    assert [(e.name, e.state) for e in run.journal] == [("work", COMPLETED), ("", PENDING)]
    run.fire_timers()
    assert run.run() == "completed" and run.result == ["work", None]
    assert done == ["work"]


def test_children_run_the_registered_function_a_given_stand_in_or_fail_not_found() -> None:
    @function
    def double(x: int) -> int:
        return 2 * x

    @function
    def explode() -> None:
        raise RuntimeError("boom")

    @workflow
    async def parent(ctx) -> list[Any]:  # type: ignore[no-untyped-def]
        out: list[Any] = [await ctx.task("math", "double", input=21)]
        out.append(await ctx.task("math", "triple", input=[3]))
        for name in ("explode", "missing"):
            try:
                await ctx.task("svc", name)
            except (FunctionFailedError, NotFoundError) as error:
                out.append(error.code)
        return out

    run = WorkflowRun(parent, tasks={"math/triple": lambda x: 3 * x})
    assert run.run() == "completed"
    assert run.result == [42, 9, "FUNCTION_FAILED", "NOT_FOUND"]
    assert [entry.child_id for entry in run.journal] == [
        f"{run.invocation_id}/{n}" for n in range(4)
    ]


def test_a_child_workflow_runs_to_completion_in_process() -> None:
    @workflow
    async def child(ctx, n: int) -> int:  # type: ignore[no-untyped-def]
        return await ctx.step("square", lambda: n * n)

    @workflow
    async def parent(ctx) -> int:  # type: ignore[no-untyped-def]
        return await ctx.task("svc", "child", input={"n": 7})

    run = WorkflowRun(parent)
    assert run.run() == "completed" and run.result == 49


def test_bad_input_and_workflow_errors_fail_the_run_without_retry() -> None:
    @workflow
    async def typed(ctx, count: int) -> int:  # type: ignore[no-untyped-def]
        raise UnavailableError("flaky dependency")

    bad_input = WorkflowRun(typed, {"count": "three"})
    assert bad_input.run() == "failed" and isinstance(bad_input.error, InvalidArgumentError)
    raising = WorkflowRun(typed, {"count": 3})
    assert raising.run() == "failed"
    assert isinstance(raising.error, UnavailableError) and raising.error.retryable is False
    assert raising.run() == "failed" and raising.runs == 1  # a finished run stays finished


def test_a_workflow_raising_cancelled_error_itself_fails() -> None:
    @workflow
    async def odd(ctx) -> None:  # type: ignore[no-untyped-def]
        raise asyncio.CancelledError

    run = WorkflowRun(odd)
    assert run.run() == "failed"
    assert isinstance(run.error, FunctionFailedError)
    assert run.error.message == "Function odd failed: it raised CancelledError itself"


def test_cancelling_a_run_cancels_every_branch() -> None:
    cancelled: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    @workflow
    async def stuck(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.parallel(ctx.step("a", forever, "a"), ctx.step("b", forever, "b"))

    run = WorkflowRun(stuck)

    async def cancel_soon() -> None:
        task = asyncio.ensure_future(run.arun())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_soon())
    assert sorted(cancelled) == ["a", "b"] and run.journal == []


def test_a_runaway_loop_stops_at_the_journal_limit() -> None:
    @workflow
    async def runaway(ctx) -> None:  # type: ignore[no-untyped-def]
        while True:
            ctx.random()

    run = WorkflowRun(runaway)
    assert run.run() == "failed"
    assert isinstance(run.error, ResourceExhaustedError) and run.error.retryable is False
    assert len(run.journal) == MAX_ENTRIES


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ctx: ctx.step("", lambda: 1), "a step name is a non-empty string"),
        (lambda ctx: ctx.step("x" * 257, lambda: 1), "at most 256 characters"),
        (lambda ctx: ctx.step("a", 5), r"ctx.step\('a', ...\) needs a callable, got 5"),
        (lambda ctx: ctx.task("svc", ""), "a handler name is a non-empty string"),
        (
            lambda ctx: ctx.task("svc", "f", input=object()),
            r"ctx.task\('svc', 'f'\) input is not JSON",
        ),
        (lambda ctx: ctx.sleep(-1), r"ctx.sleep\(\) needs 0 <= seconds"),
        (lambda ctx: ctx.sleep("1"), r"ctx.sleep\(\) needs a number of seconds"),
        (lambda ctx: ctx.timer(delay_ms=1.5), "delay_ms must be an integer"),
        (lambda ctx: ctx.signal("s", timeout_ms=-1), "timeout_ms must be an integer"),
    ],
)
def test_misuse_is_a_clear_error(call: Any, message: str) -> None:
    @workflow
    async def misuse(ctx) -> None:  # type: ignore[no-untyped-def]
        call(ctx)

    run = WorkflowRun(misuse)
    assert run.run() == "failed"
    assert run.error is not None
    with pytest.raises(FunctionFailedError, match=message):
        _ = run.result


def test_run_inside_an_event_loop_points_to_arun() -> None:
    @workflow
    async def nothing(ctx) -> None:  # type: ignore[no-untyped-def]
        return None

    async def main() -> None:
        with pytest.raises(RuntimeError, match=r"use arun\(\)"):
            WorkflowRun(nothing).run()

    asyncio.run(main())


def test_a_step_error_has_the_same_type_on_the_first_run_and_on_replay() -> None:
    class CardDeclined(AgntError):
        code = "CARD_DECLINED"

    seen: list[tuple[str, str, str]] = []

    def charge() -> None:
        raise CardDeclined("insufficient funds")

    def leave() -> None:
        raise SystemExit(3)

    @workflow
    async def pay(ctx) -> None:  # type: ignore[no-untyped-def]
        for name, fn in (("charge", charge), ("leave", leave)):
            try:
                await ctx.step(name, fn)
            except AgntError as error:
                seen.append((type(error).__name__, error.code, error.message))
        await ctx.sleep(1)

    run = WorkflowRun(pay)
    assert run.run() == "suspended"
    run.fire_timers()
    assert run.run() == "completed"
    first, replayed = seen[:2], seen[2:]
    assert (
        first
        == replayed
        == [
            ("AgntError", "CARD_DECLINED", "insufficient funds"),
            ("FunctionFailedError", "FUNCTION_FAILED", "Step leave failed: SystemExit: 3"),
        ]
    )


def test_a_workflow_raising_system_exit_fails_and_the_process_goes_on() -> None:
    @workflow
    async def leaving(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.step("a", lambda: 1)
        raise SystemExit(2)

    run = WorkflowRun(leaving)
    assert run.run() == "failed"
    assert isinstance(run.error, FunctionFailedError)
    assert run.error.message == "Function leaving failed: SystemExit: 2"
    assert run.error.retryable is False
