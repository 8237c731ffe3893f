"""uvicorn for `AsgiRuntime.run`, stopped by agnt5's signal handling instead of its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Generator

import uvicorn

from agnt5.runtimes._signals import ShutdownSignals

__all__ = ["Server"]

_log = logging.getLogger("agnt5.asgi")


class Server(uvicorn.Server):
    """A uvicorn server on which SIGINT is a graceful stop like SIGTERM.

    uvicorn's own handlers raise the signal again once it has stopped, which under
    ``asyncio.run`` turns Ctrl+C into a ``KeyboardInterrupt`` traceback; these stop it and
    stop there. A second signal forces the exit, without waiting for open requests.
    Handlers the application installed keep being called (see `ShutdownSignals`).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        signals = ShutdownSignals(self._on_signal)
        signals.install(asyncio.get_running_loop())
        try:
            yield
        finally:
            signals.uninstall()

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.should_exit:
            _log.warning("second stop request (%s): cancelling in-flight requests now", name)
            self.force_exit = True
        else:
            _log.info("stopping: %s", name)
            self.should_exit = True
