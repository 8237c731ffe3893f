"""Processes the tests start, stopped with everything they started, and a check that none remain.

`spawn` starts a command in a session of its own (its own process group) and `stop` ends the
whole group, so a server's children go with it (gunicorn's worker, hypercorn's, a browser's
helpers). `make_subreaper` makes the test process adopt grandchildren whose parent died, so
`descendants` still finds a process its starter lost track of.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from typing import Any

__all__ = [
    "astop",
    "descendants",
    "describe",
    "make_subreaper",
    "spawn",
    "stop",
    "still_running",
]

_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def make_subreaper() -> bool:
    """Adopt orphaned descendants (Linux); False where the system has no such thing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process /proc shows (empty without /proc)."""
    found = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            found[int(entry)] = (int(fields[1]), fields[0].decode())
    return found


def descendants() -> set[int]:
    """The live (not zombie) processes below this one."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    pending = [os.getpid()]
    while pending:  # bounded: each pid is visited once
        for child in children.get(pending.pop(), ()):
            if child not in found:
                found.add(child)
                pending.append(child)
    return {pid for pid in found if processes[pid][1] != "Z"}


def still_running(pids: Iterable[int], grace: float = 5.0) -> set[int]:
    """Those of ``pids`` still running after up to ``grace`` seconds (exiting ones may finish)."""
    deadline = time.monotonic() + grace
    left = set(pids) & descendants()
    while left and time.monotonic() < deadline:  # bounded by the grace period
        time.sleep(0.05)
        left &= descendants()
    return left


def describe(pids: Iterable[int]) -> str:
    lines = []
    for pid in sorted(pids):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            command = "?"
        lines.append(f"{pid}: {command[:200]}")
    return "\n".join(lines)


def spawn(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen` in a new session: the command and all it starts form one group."""
    return subprocess.Popen(command, start_new_session=True, **options)


def stop(process: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """End ``process``'s whole group: SIGTERM and ``grace`` seconds to exit (0: none), SIGKILL."""
    if grace > 0 and process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    _signal_group(process, signal.SIGKILL)  # the leader if it is still there, and its group
    process.wait(10)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


async def astop(process: asyncio.subprocess.Process, grace: float = 10.0) -> None:
    """`stop` for a process started with ``asyncio.create_subprocess_exec(start_new_session=True)``."""
    _signal_group(process, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), grace)
    _signal_group(process, signal.SIGKILL)
    await process.wait()


def _signal_group(process: subprocess.Popen[Any] | asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)  # the group `spawn` made: the pid is its id
