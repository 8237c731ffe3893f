"""The `Context` a handler receives when its first parameter is `ctx` (or annotated `Context`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from types import MappingProxyType
from typing import Any

__all__ = ["Context"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


class _ContextLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger adapter whose records carry the invocation's identity beside the caller's extras."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = kwargs.get("extra")
        kwargs["extra"] = {**self.extra, **extra} if extra else self.extra
        return msg, kwargs


class Context:
    """What a handler may know about its invocation, and the hooks for cancellation and deadlines.

    ``deadline`` is a Unix timestamp in seconds (or ``None``). Runtimes call ``_cancel`` when the
    caller cancels, the deadline passes or the worker drains; sync handlers can poll
    ``cancelled`` and async handlers are cancelled by their runtime as well.
    """

    __slots__ = (
        "_callbacks",
        "_cancel_reason",
        "_cancelled",
        "_caller_metadata",
        "_logger",
        "_metadata",
        "attempt",
        "deadline",
        "function_name",
        "invocation_id",
        "service_name",
    )

    def __init__(
        self,
        invocation_id: str,
        function_name: str,
        *,
        service_name: str = "",
        attempt: int = 1,
        metadata: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> None:
        self.invocation_id = invocation_id
        self.function_name = function_name
        self.service_name = service_name
        self.attempt = attempt
        self._caller_metadata = metadata or _EMPTY
        self._metadata: Mapping[str, str] | None = None
        self.deadline = deadline
        self._cancelled = False
        self._cancel_reason: str | None = None
        self._callbacks: list[Callable[[str], None]] = []
        self._logger: logging.LoggerAdapter | None = None  # type: ignore[type-arg]

    @property
    def metadata(self) -> Mapping[str, str]:
        """The caller's metadata (``traceparent``, ``x-agnt5-*`` headers, ...) and, beside it,
        this invocation's ``service_name``, ``function_name`` and ``invocation_id`` (read-only)."""
        if self._metadata is None:
            self._metadata = MappingProxyType(
                {
                    **self._caller_metadata,
                    "service_name": self.service_name,
                    "function_name": self.function_name,
                    "invocation_id": self.invocation_id,
                }
            )
        return self._metadata

    @property
    def logger(self) -> logging.LoggerAdapter:  # type: ignore[type-arg]
        """A logger whose records carry ``invocation_id``, ``service_name`` and ``function_name``."""
        if self._logger is None:
            self._logger = _ContextLogger(
                logging.getLogger(f"agnt5.function.{self.function_name}"),
                {
                    "invocation_id": self.invocation_id,
                    "service_name": self.service_name,
                    "function_name": self.function_name,
                },
            )
        return self._logger

    @property
    def cancelled(self) -> bool:
        """Whether the invocation has been cancelled (poll this in long synchronous loops)."""
        return self._cancelled

    @property
    def cancel_reason(self) -> str | None:
        """Why the invocation was cancelled, once it has been."""
        return self._cancel_reason

    def time_remaining(self) -> float | None:
        """Seconds until the deadline (never negative), or ``None`` without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.time())

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` when the invocation is cancelled (at once if it already is)."""
        if self._cancelled:
            callback(self._cancel_reason or "cancelled")
        else:
            self._callbacks.append(callback)

    def _cancel(self, reason: str) -> None:
        """Runtime hook: mark the invocation cancelled and run the callbacks once."""
        if self._cancelled:
            return
        self._cancel_reason = reason
        self._cancelled = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(reason)
            except Exception:
                logging.getLogger("agnt5").exception(
                    "cancel callback failed", extra={"invocation_id": self.invocation_id}
                )

    def __repr__(self) -> str:
        return f"<Context {self.function_name} invocation_id={self.invocation_id!r} attempt={self.attempt}>"
