"""Shared fixtures: the twin under test, an isolated registry, and no process left behind.

``impl`` is each implementation of the twins in turn (multidict's way): the compiled one is
marked ``c_extension``, so ``pytest -m "not c_extension"`` (with ``AGNT5_NO_EXTENSIONS=1``)
runs the whole suite on the pure-Python twins alone.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from _journal_sites import JournalSite
from _processes import descendants, describe, make_subreaper, still_running

from agnt5._registry import REGISTRY
from agnt5.testing_postgres import PostgresUnavailable, TemporaryPostgres

TWINS = {
    "compiled": ("agnt5._speedups._dispatch", "agnt5._speedups._frames", "agnt5._speedups._stats"),
    "pure": (
        "agnt5._speedups._dispatch_py",
        "agnt5._speedups._frames_py",
        "agnt5._speedups._stats_py",
    ),
}

make_subreaper()  # so a process whose parent died is still found below this one
# Standalone workers serve health endpoints on port 8000 by default; the tests start many, in
# this process and in subprocesses (agnt5_env keeps this), so none takes a port unless a test
# gives it one (an ephemeral port, or "" for the default).
os.environ["AGNT5_HEALTH_PORT"] = "0"


@pytest.fixture(
    scope="session", params=[pytest.param("compiled", marks=pytest.mark.c_extension), "pure"]
)
def impl(request: pytest.FixtureRequest) -> SimpleNamespace:
    """One implementation of the twins: ``Handler``, the JSON and frame codec functions and
    ``FunctionStats``."""
    try:
        modules = [importlib.import_module(name) for name in TWINS[request.param]]
    except ImportError as exc:  # deselect with -m "not c_extension" to test the pure twins only
        pytest.fail(f"the compiled twins are not importable: {exc}")
    names = {name: getattr(module, name) for module in modules for name in module.__all__}
    return SimpleNamespace(name=request.param, **names)


@pytest.fixture
def registry() -> Iterator[None]:
    """Let a test register handlers freely; the registry is restored afterwards."""
    components = REGISTRY._components
    saved = dict(components)
    try:
        yield
    finally:
        components.clear()
        components.update(saved)


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Every process a test starts is gone when it ends (its fixtures' processes included)."""
    before = descendants()
    yield
    left = {pid for pid in still_running(descendants() - before) if not _session_server(pid)}
    assert not left, f"processes left running:\n{describe(left)}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Module- and session-scoped fixtures stopped theirs too: nothing may outlive the run."""
    left = still_running(descendants())
    if left:
        print(f"\nprocesses left running after the tests:\n{describe(left)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_SESSION_SERVERS: set[int] = set()  # pids of servers kept for the whole session


def _session_server(pid: int) -> bool:
    """Whether ``pid`` is a session server or one of its children (PostgreSQL's backends each
    lead a process group of their own)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return False
    return bool({pid, parent} & _SESSION_SERVERS)


@pytest.fixture(scope="session")
def postgres() -> Iterator[TemporaryPostgres]:
    """A PostgreSQL server for the session (Debian's ``postgresql``; skips without it). Its
    processes are stopped at the end of the session."""
    try:
        server = TemporaryPostgres()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    with server:
        assert server.pid is not None
        _SESSION_SERVERS.add(server.pid)
        yield server
    _SESSION_SERVERS.discard(server.pid)


@pytest.fixture
def database_url(postgres: TemporaryPostgres) -> str:
    """A fresh, empty database of its own for one test."""
    return postgres.create_database(f"t{os.urandom(6).hex()}")


@pytest.fixture(params=["sqlite", "postgres"])
def journal_site(request: pytest.FixtureRequest, tmp_path: Path) -> JournalSite:
    """Each journaled store in turn: SQLite in a fresh data directory, PostgreSQL in a fresh
    database."""
    if request.param == "postgres":
        return JournalSite("postgres", request.getfixturevalue("database_url"))
    return JournalSite("sqlite", str(tmp_path / "data"))
