"""The journal's directory: used by one coordinator at a time, readable by its owner only."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

__all__ = ["DataDir", "JournalError"]


class JournalError(OSError):
    """The journal cannot be used: its directory is locked, or its file unreadable or corrupt."""


class DataDir:
    """``path`` created ``0700`` if missing, and locked (``lock``, holding this process's pid)
    until `release`; a second coordinator on it gets a `JournalError` naming the holder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise JournalError(f"the data directory {self.path} is a file: give a directory")
        if not self.path.is_dir():
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.path.chmod(0o700)  # whatever the umask
        self._lock = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._lock, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._lock)
            raise JournalError(
                f"{self.path} is in use by another coordinator (pid {holder}): stop it, or "
                "give this one another --data-dir"
            ) from None
        os.ftruncate(self._lock, 0)
        os.pwrite(self._lock, f"{os.getpid()}\n".encode(), 0)
        os.fchmod(self._lock, 0o600)

    def private_file(self, name: str) -> Path:
        """``path/name``, created empty if missing, readable and writable by its owner only
        (SQLite gives its ``-wal`` and ``-shm`` files the same mode)."""
        file = self.path / name
        os.close(os.open(file, os.O_RDWR | os.O_CREAT, 0o600))
        for existing in (file, file.with_name(f"{name}-wal"), file.with_name(f"{name}-shm")):
            with contextlib.suppress(FileNotFoundError):
                existing.chmod(0o600)
        return file

    def release(self) -> None:
        """Unlock the directory (idempotent); the lock file stays."""
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1
