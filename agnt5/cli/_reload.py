"""``agnt5 dev --reload``: the worker starts afresh whenever a watched file changes.

As ``uvicorn --reload`` does: this process stays (here it runs the coordinator, so queued
invocations and the service survive a reload) and the worker runs in a child process, an
``agnt5 worker`` started again, importing the changed code, after every change to a ``.py``
file under the module's directory (the current directory for a module name). A worker that
fails to start (a syntax error, say) is restarted at the next change.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from agnt5.cli._modules import watched_root
from agnt5.cli._serve import configure_logging, serving

__all__ = ["supervise"]

_log = logging.getLogger("agnt5.dev")

_POLL = 0.5  # seconds between looks at the watched files
_MOST_FILES = 20_000  # files watched at most (a bound on each look)
_STOP_GRACE = 5.0  # seconds a stopping worker gets after each signal
_SKIPPED = frozenset({"__pycache__", "node_modules", "site-packages"})

Snapshot = dict[str, float]


def supervise(args: argparse.Namespace) -> int:
    """Serve the coordinator and reload the worker until SIGINT/SIGTERM; exit 0."""
    root = watched_root(args.target)
    configure_logging(args)

    async def serve() -> None:
        async with serving(args) as (made, stop):
            _log.info("watching %s for changes to .py files", root)
            command = _worker_command(args, made.endpoint)
            await _reload_until(stop, root, command, _worker_env(args.api_key))

    asyncio.run(serve())
    return 0


async def _reload_until(
    stop: asyncio.Event, root: Path, command: list[str], env: dict[str, str]
) -> None:
    seen = await asyncio.to_thread(_snapshot, root)
    while not stop.is_set():  # one worker per turn, until a signal
        worker = await asyncio.create_subprocess_exec(*command, env=env)
        try:
            seen = await _until_change(stop, root, seen, worker)
        finally:
            await _stop(worker)


async def _until_change(
    stop: asyncio.Event, root: Path, seen: Snapshot, worker: asyncio.subprocess.Process
) -> Snapshot:
    """Wait for a change under ``root`` (or for ``stop``); the files as they are then."""
    exited = asyncio.ensure_future(worker.wait())
    try:
        while not stop.is_set():  # until a change or a signal
            if exited.done():
                _log.warning(
                    "the worker exited with status %d: it starts again at the next change",
                    exited.result(),
                )
                exited = asyncio.get_running_loop().create_future()  # reported once
            now = await asyncio.to_thread(_snapshot, root)
            changed = _changed(seen, now)
            if changed is not None:
                _log.info("%s changed: restarting the worker", changed.relative_to(root))
                return now
            try:
                await asyncio.wait_for(stop.wait(), _POLL)
            except TimeoutError:
                pass
        return seen
    finally:
        exited.cancel()


async def _stop(worker: asyncio.subprocess.Process) -> None:
    """SIGTERM (the worker drains), again (it hurries), then SIGKILL."""
    for signum in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
        if worker.returncode is not None:
            return
        try:
            worker.send_signal(signum)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(worker.wait(), _STOP_GRACE)
        except TimeoutError:
            continue


def _changed(before: Snapshot, after: Snapshot) -> Path | None:
    """A file added, removed or modified between two snapshots, if any."""
    paths = sorted(
        path for path in before.keys() | after.keys() if before.get(path) != after.get(path)
    )
    return Path(paths[0]) if paths else None


def _snapshot(root: Path) -> Snapshot:
    """The modification times of the ``.py`` files under ``root`` (hidden directories,
    virtual environments and caches skipped; at most `_MOST_FILES`)."""
    found: Snapshot = {}
    pending = [str(root)]
    while pending and len(found) < _MOST_FILES:  # bounded: each directory is read once
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        if any(entry.name == "pyvenv.cfg" for entry in entries):
            continue  # a virtual environment
        for entry in entries:
            if entry.name.startswith(".") or entry.name in _SKIPPED:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    found[entry.path] = entry.stat().st_mtime
            except OSError:
                continue
    return found


def _worker_command(args: argparse.Namespace, endpoint: str) -> list[str]:
    """``agnt5 worker`` for ``args``' module, connected to ``endpoint``."""
    command = [sys.executable, "-P", "-m", "agnt5", "worker", args.target, "--endpoint", endpoint]
    command += ["--log-level", args.log_level, "--log-format", args.log_format]
    if args.service:
        command += ["--service", args.service]
    for option in ("max_concurrency", "health_host", "health_port"):
        value = getattr(args, option)
        if value is not None:
            command += [f"--{option.replace('_', '-')}", str(value)]
    return command


def _worker_env(api_key: str | None) -> dict[str, str]:
    """This environment, with the API key (kept out of the command line) and, when this
    process imported agnt5 from its current directory, that directory on the path (so the
    worker imports the same agnt5)."""
    import agnt5

    env = dict(os.environ)
    if api_key:
        env["AGNT5_API_KEY"] = api_key
    package_parent = str(Path(agnt5.__file__).resolve().parent.parent)
    if package_parent not in {str(Path(entry).resolve()) for entry in sys.path[1:] if entry}:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    return env
