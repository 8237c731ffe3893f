"""Context: identity, metadata, logger extras, cancellation and deadline hooks."""

from __future__ import annotations

import logging
import time

import pytest

from agnt5 import Context


def test_identity_and_read_only_metadata() -> None:
    ctx = Context("inv-1", "fn", service_name="svc", attempt=2, metadata={"traceparent": "00-x"})
    assert (ctx.invocation_id, ctx.function_name, ctx.service_name, ctx.attempt) == (
        "inv-1",
        "fn",
        "svc",
        2,
    )
    assert dict(ctx.metadata) == {
        "traceparent": "00-x",
        "service_name": "svc",
        "function_name": "fn",
        "invocation_id": "inv-1",
    }
    with pytest.raises(TypeError):
        ctx.metadata["x"] = "y"  # type: ignore[index]


def test_logger_records_carry_invocation_id_and_caller_extras(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx = Context("inv-9", "fn", service_name="svc")
    with caplog.at_level(logging.INFO):
        ctx.logger.info("processing", extra={"data_size": 12})
    record = caplog.records[-1]
    assert record.invocation_id == "inv-9"  # type: ignore[attr-defined]
    assert record.service_name == "svc"  # type: ignore[attr-defined]
    assert record.data_size == 12  # type: ignore[attr-defined]
    assert record.name == "agnt5.function.fn"


def test_cancellation_runs_callbacks_once() -> None:
    ctx = Context("i", "fn")
    seen: list[str] = []
    ctx.on_cancel(seen.append)
    assert not ctx.cancelled
    ctx._cancel("drain")
    ctx._cancel("again")
    assert ctx.cancelled and ctx.cancel_reason == "drain"
    ctx.on_cancel(seen.append)
    assert seen == ["drain", "drain"]


def test_failing_cancel_callback_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    ctx = Context("i", "fn")
    ctx.on_cancel(lambda reason: 1 / 0)  # type: ignore[func-returns-value]
    with caplog.at_level(logging.ERROR, logger="agnt5"):
        ctx._cancel("timeout")
    assert "cancel callback failed" in caplog.text


def test_time_remaining() -> None:
    assert Context("i", "fn").time_remaining() is None
    before = time.time()
    remaining = Context("i", "fn", deadline=before + 10).time_remaining()
    after = time.time()
    assert remaining is not None and before + 10 - after <= remaining <= 10
    assert Context("i", "fn", deadline=time.time() - 1).time_remaining() == 0.0
