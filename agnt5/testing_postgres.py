"""A throwaway PostgreSQL server for tests and benchmarks: `TemporaryPostgres`.

It runs Debian's (or any) PostgreSQL binaries in a temporary directory, listening on a free
127.0.0.1 port and on a unix socket in that directory, and is stopped and removed on `stop`.
PostgreSQL refuses to run as root: as root the server runs as ``nobody`` (its directory is
created for that user under /tmp, which every user can enter).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["PostgresUnavailable", "TemporaryPostgres", "postgres_bin"]

_SEARCH = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")
_UNPRIVILEGED = "nobody"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here (install Debian's ``postgresql``)."""


def postgres_bin() -> Path:
    """The directory holding ``initdb`` and ``postgres``; `PostgresUnavailable` without one."""
    for directory in _SEARCH:
        if Path(directory, "postgres").exists():
            return Path(directory)
    initdb = shutil.which("initdb")
    if initdb is not None:
        real = Path(initdb).resolve().parent
        if (real / "postgres").exists():
            return real
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, postgres) found: install Debian's 'postgresql'"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TemporaryPostgres:
    """``with TemporaryPostgres() as pg: pg.url("db")``: a private server, gone afterwards.

    `create_database` makes a fresh database (each test its own); `url` is a
    ``postgresql://`` URL to one over TCP on 127.0.0.1 as the superuser ``agnt5``.
    """

    def __init__(self) -> None:
        self._bin = postgres_bin()
        self._process: subprocess.Popen[bytes] | None = None
        self._root: Path | None = None
        self.port = 0
        self._user = _UNPRIVILEGED if os.geteuid() == 0 else None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://agnt5@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """initdb, then start the server and wait until it accepts connections."""
        self._root = Path(tempfile.mkdtemp(prefix="agnt5-pg-", dir="/tmp" if self._user else None))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        assert self._root is not None
        data = self._root / "data"
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self._root, entry.pw_uid, entry.pw_gid)
        self._run(
            [
                str(self._bin / "initdb"),
                "-D", str(data), "-U", "agnt5", "--auth=trust", "-E", "UTF8",
                "--no-sync", "--locale=C",
            ],
        )  # fmt: skip
        self.port = _free_port()
        self._process = subprocess.Popen(
            [
                str(self._bin / "postgres"),
                "-D", str(data), "-p", str(self.port), "-h", "127.0.0.1",
                "-k", str(self._root), "-c", "fsync=off", "-c", "max_connections=200",
                "-c", "shared_buffers=32MB", "-c", "log_min_messages=FATAL",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=self._user,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._accepting():  # bounded by the deadline
            if self._process.poll() is not None:
                raise RuntimeError(f"postgres exited at start with {self._process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres did not accept connections in {_START_TIMEOUT} s")
            time.sleep(0.05)

    def _accepting(self) -> bool:
        finished = subprocess.run(
            [str(self._bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            check=False,
            timeout=10,
        )
        return finished.returncode == 0

    def _run(self, command: list[str]) -> None:
        finished = subprocess.run(
            command, capture_output=True, user=self._user, timeout=120, check=False
        )
        if finished.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {finished.stderr.decode(errors='replace')}")

    def create_database(self, name: str) -> str:
        """Create database ``name``; its URL."""
        self._run([str(self._bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                   "-U", "agnt5", name])  # fmt: skip
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown, then SIGKILL) and remove its directory."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()  # SIGTERM: PostgreSQL's "smart" shutdown ends sessions too
            try:
                process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
                process.wait(_STOP_TIMEOUT)
            _wait_for_group(process.pid)
        root, self._root = self._root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> TemporaryPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _wait_for_group(pgid: int) -> None:
    """Until the server's backends (its process group) are gone, at most `_STOP_TIMEOUT`."""
    deadline = time.monotonic() + _STOP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, 9)
