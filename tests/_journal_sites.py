"""Where a journaled store keeps its state: a SQLite data directory or a PostgreSQL database.

The ``journal_site`` fixture (conftest) runs a test on each; `JournalSite` opens stores on the
same place again and again, gives the CLI's flag for it and counts a table's rows.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agnt5.coordinator import SqliteStore
from agnt5.coordinator._journaled import JournaledStore
from agnt5.coordinator.postgres import PostgresStore

__all__ = ["SHORT_LEASE", "JournalSite"]

SHORT_LEASE = 3.0


@dataclass(frozen=True)
class JournalSite:
    """A data directory (``kind == "sqlite"``) or a database URL (``"postgres"``)."""

    kind: str
    place: str

    @property
    def args(self) -> tuple[str, ...]:
        """The ``agnt5 coordinator`` flags that journal here (with PostgreSQL, the shortest
        lease: a killed coordinator's work is taken over within seconds)."""
        if self.kind == "sqlite":
            return ("--data-dir", self.place)
        return ("--database", self.place, "--lease", str(SHORT_LEASE))

    def open(self, **options: Any) -> JournaledStore:
        """A store on this place (``options``: the store's keyword arguments)."""
        if self.kind == "sqlite":
            return SqliteStore(self.place, **options)
        return PostgresStore(self.place, **{"lease": SHORT_LEASE, **options})

    async def count(self, table: str) -> int:
        """Rows in ``table`` now (read with a connection of its own)."""
        if self.kind == "sqlite":
            with contextlib.closing(sqlite3.connect(Path(self.place, "journal.db"))) as db:
                return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        return int(await self.fetchval(f"SELECT COUNT(*) FROM {table}"))

    async def fetchval(self, query: str, *args: Any) -> Any:
        """The first value ``query`` returns (PostgreSQL only)."""
        import asyncpg

        db = await asyncpg.connect(self.place, timeout=10)
        try:
            return await db.fetchval(query, *args)
        finally:
            await db.close()
