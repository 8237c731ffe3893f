"""SIGINT/SIGTERM handling that coexists with handlers the application installed itself."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ShutdownSignals"]

_log = logging.getLogger("agnt5.worker")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ShutdownSignals:
    """While installed, SIGINT/SIGTERM call ``on_signal(signum)`` on the event loop.

    A handler the application set before (``signal.signal(SIGTERM, mine)`` in its own worker
    class, say) is not lost: it is called right after ours, with the same arguments,
    and is put back when the worker returns. Python's default SIGINT handler (which raises
    ``KeyboardInterrupt``) and ``asyncio.run``'s (which cancels the main task, then raises
    ``KeyboardInterrupt`` from ``asyncio.run``) are not called, so Ctrl+C drains like SIGTERM
    instead of tearing the loop down. Outside the main thread nothing is installed (signals
    only reach it).
    """

    def __init__(self, on_signal: Callable[[int], None]) -> None:
        self._on_signal = on_signal
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        if threading.current_thread() is not threading.main_thread():
            _log.debug("not in the main thread: leaving signal handling to the application")
            return
        self._loop = loop
        for signum in _SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            loop.add_signal_handler(signum, self._handle, signum)

    def uninstall(self) -> None:
        if self._loop is None:
            return
        for signum, previous in self._previous.items():
            self._loop.remove_signal_handler(signum)
            if previous is not None:
                signal.signal(signum, previous)
        self._previous.clear()
        self._loop = None

    def _handle(self, signum: int) -> None:
        self._on_signal(signum)
        previous = self._previous.get(signum)
        if callable(previous) and not _interrupts(previous):
            try:
                previous(signum, None)
            except Exception:
                _log.exception("the application's handler for signal %d failed", signum)


def _interrupts(handler: Callable[..., Any]) -> bool:
    """Whether ``handler`` is Python's or asyncio's own Ctrl+C, which a drain replaces:
    ``signal.default_int_handler``, or the handler ``asyncio.run`` (an `asyncio.Runner`)
    installs to cancel its main task."""
    if handler is signal.default_int_handler:
        return True
    bound = getattr(handler, "func", handler)  # asyncio.run's is a partial of a bound method
    return isinstance(getattr(bound, "__self__", None), asyncio.Runner)
