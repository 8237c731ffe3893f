"""The ranges of what clients and workers send the coordinator, checked where it enters.

A value out of range is an `InvalidArgumentError` naming the field and its range, raised before
the value reaches the scheduler, the journal (SQLite integers are signed 64-bit) or a worker's
stream (``uint64`` deadlines): one bad request fails alone, never the journal or a stream.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from agnt5._proto import worker_pb2
from agnt5._wire.records import ResultItem
from agnt5.coordinator.store import InvocationQuery, InvocationState
from agnt5.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_PAGE",
    "MAX_METADATA_BYTES",
    "MAX_NAME_LENGTH",
    "MAX_PAGE",
    "MAX_SECONDS",
    "check_metadata",
    "check_name",
    "check_register",
    "cursor_text",
    "invocation_query",
    "milliseconds",
    "result_problem",
    "seconds",
]

MAX_SECONDS = 365 * 24 * 3600
"""The longest timeout, wait, deadline, backoff or duration accepted: a year."""
MAX_NAME_LENGTH = 256
"""Most characters in a service, function or worker name, a version or an idempotency key."""
MAX_METADATA_BYTES = 16 * 1024
"""Most bytes of invocation metadata (keys and values together)."""

DEFAULT_PAGE = 50
"""Invocations in a listing's page when the request names no limit."""
MAX_PAGE = 1000
"""Most invocations in a listing's page."""

_MAX_MS = MAX_SECONDS * 1000
_MAX_US = MAX_SECONDS * 1_000_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_UNIX_MS = 253_402_300_799_999  # the last millisecond of the year 9999


def milliseconds(field: str, value: int) -> float:
    """Seconds for a count of milliseconds a client or worker sent in ``field``."""
    if not 0 <= value <= _MAX_MS:
        raise InvalidArgumentError(
            f"{field} must be 0 to {_MAX_MS} milliseconds (a year), got {value}"
        )
    return value / 1000


def seconds(field: str, text: str) -> float:
    """Seconds from the text of HTTP query parameter ``field``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_SECONDS:
        raise InvalidArgumentError(
            f"query parameter {field!r} must be a number of seconds from 0 to {MAX_SECONDS} "
            f"(a year), got {text[:32]!r}"
        )
    return value


def check_name(field: str, value: str) -> None:
    """A name or key of at most `MAX_NAME_LENGTH` characters."""
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidArgumentError(
            f"{field} must be at most {MAX_NAME_LENGTH} characters, got {len(value)}"
        )


def check_metadata(metadata: Mapping[str, str]) -> None:
    """Invocation metadata of at most `MAX_METADATA_BYTES`."""
    if not metadata:
        return
    size = sum(len(key) + len(value) for key, value in metadata.items())
    if size > MAX_METADATA_BYTES:
        raise InvalidArgumentError(
            f"metadata must be at most {MAX_METADATA_BYTES} bytes, got {size}"
        )


def check_register(register: worker_pb2.Register) -> None:
    """A worker's Register: names (printable: they reach logs and listings), and each
    component's timeout and backoff."""
    if not register.service_name or not register.worker_id:
        raise InvalidArgumentError("Register needs a service_name and a worker_id")
    _check_printable_name("Register.service_name", register.service_name)
    _check_printable_name("Register.worker_id", register.worker_id)
    _check_printable_name("Register.service_version", register.service_version)
    for component in register.components:
        field = f"Register.components[{component.name[:MAX_NAME_LENGTH]!r}]"
        if not component.name:
            raise InvalidArgumentError("Register.components: a component needs a name")
        _check_printable_name(f"{field}.name", component.name)
        config = component.config
        milliseconds(f"{field}.config.timeout_ms", config.timeout_ms)
        milliseconds(f"{field}.config.backoff.initial_ms", config.backoff.initial_ms)
        milliseconds(f"{field}.config.backoff.max_ms", config.backoff.max_ms)
        if not math.isfinite(config.backoff.multiplier) or config.backoff.multiplier < 0:
            raise InvalidArgumentError(
                f"{field}.config.backoff.multiplier must be a finite number >= 1 (0: the "
                f"default), got {config.backoff.multiplier}"
            )


def _check_printable_name(field: str, value: str) -> None:
    check_name(field, value)
    if _CONTROL.search(value):
        raise InvalidArgumentError(f"{field} must not contain control characters, got {value!r}")


def result_problem(result: ResultItem) -> str | None:
    """Why a worker's result cannot be taken as the invocation's outcome, or None."""
    if result.duration_us > _MAX_US:
        return f"duration_us must be 0 to {_MAX_US} microseconds (a year), got {result.duration_us}"
    return None


def invocation_query(
    *,
    service: str,
    function: str,
    states: Iterable[int | str],
    created_after_unix_ms: int,
    created_before_unix_ms: int,
    limit: int,
    cursor: str,
    allowed: frozenset[str] | None,
) -> InvocationQuery:
    """A listing's filters and page, checked: names, states (numbers or names), times, a
    limit of 0 (the default) to `MAX_PAGE` and a cursor from an earlier page. ``allowed``:
    the services the caller may see when it names none (None: any)."""
    check_name("service", service)
    check_name("function", function)
    for field, value in (
        ("created_after", created_after_unix_ms),
        ("created_before", created_before_unix_ms),
    ):
        if not 0 <= value <= _MAX_UNIX_MS:
            raise InvalidArgumentError(
                f"{field} must be a Unix time in milliseconds up to {_MAX_UNIX_MS}, got {value}"
            )
    if not 0 <= limit <= MAX_PAGE:
        raise InvalidArgumentError(
            f"limit must be 1 to {MAX_PAGE} (0: {DEFAULT_PAGE}), got {limit}"
        )
    return InvocationQuery(
        services=frozenset([service]) if service else allowed,
        function=function,
        states=frozenset(_state(state) for state in states),
        created_after_unix_ms=created_after_unix_ms,
        created_before_unix_ms=created_before_unix_ms,
        limit=limit or DEFAULT_PAGE,
        after=_cursor(cursor) if cursor else None,
    )


def cursor_text(after: tuple[int, str] | None) -> str:
    """The cursor a client sends for the page after ``after`` ("" for none)."""
    return "" if after is None else f"{after[0]}.{after[1]}"


def _cursor(text: str) -> tuple[int, str]:
    created, _, invocation_id = text.partition(".")
    if not (created.isdigit() and invocation_id) or len(text) > MAX_NAME_LENGTH + 32:
        raise InvalidArgumentError(
            f"cursor {text[:64]!r} is not one a listing returned: send next_cursor as it came"
        )
    return int(created), invocation_id


def _state(state: int | str) -> InvocationState:
    try:
        return InvocationState(state) if isinstance(state, int) else InvocationState[state.upper()]
    except (KeyError, ValueError):
        names = ", ".join(member.name for member in InvocationState)
        raise InvalidArgumentError(f"state must be one of {names}, got {state!r}") from None
