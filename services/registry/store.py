"""SQLite storage of registered agents (`registry.db` in the run directory)."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DATABASE_NAME = "registry.db"
# Seconds a write waits for another connection's lock before failing.
BUSY_TIMEOUT_SECONDS = 5.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    url TEXT NOT NULL,
    card_url TEXT NOT NULL,
    card TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    healthy INTEGER,
    last_seen TEXT,
    last_checked TEXT
)
"""
COLUMNS = (
    "name, version, url, card_url, card, registered_at, healthy, last_seen, "
    "last_checked"
)


@dataclass
class AgentRecord:
    """One registered agent and the result of its latest health probe.

    Times are ISO 8601 in UTC. `healthy` is None before the first probe.
    """

    name: str
    version: str
    url: str
    card_url: str
    card: dict[str, Any]
    registered_at: str
    healthy: bool | None = None
    last_seen: str | None = None
    last_checked: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class AgentStore:
    """Agent records in SQLite, safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False
        )
        self._lock = threading.Lock()
        with self._lock, self._connection:
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def upsert(self, record: AgentRecord) -> bool:
        """Insert or replace the record by name and return True if it was new."""
        row = (
            record.name,
            record.version,
            record.url,
            record.card_url,
            json.dumps(record.card),
            record.registered_at,
            None if record.healthy is None else int(record.healthy),
            record.last_seen,
            record.last_checked,
        )
        with self._lock, self._connection:
            existing = self._connection.execute(
                "SELECT 1 FROM agents WHERE name = ?", (record.name,)
            ).fetchone()
            self._connection.execute(
                f"INSERT OR REPLACE INTO agents ({COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return existing is None

    def list_agents(self) -> list[AgentRecord]:
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {COLUMNS} FROM agents ORDER BY name"
            ).fetchall()
        return [_record(row) for row in rows]

    def get(self, name: str) -> AgentRecord | None:
        with self._lock:
            row = self._connection.execute(
                f"SELECT {COLUMNS} FROM agents WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else _record(row)

    def delete(self, name: str) -> bool:
        with self._lock, self._connection:
            cursor = self._connection.execute(
                "DELETE FROM agents WHERE name = ?", (name,)
            )
        return cursor.rowcount > 0

    def record_probe(
        self, name: str, card_url: str, healthy: bool, checked_at: str
    ) -> None:
        """Store a probe result, unless the agent was removed or re-registered
        with another card URL while the probe ran."""
        with self._lock, self._connection:
            self._connection.execute(
                "UPDATE agents SET healthy = ?, last_checked = ?, "
                "last_seen = CASE WHEN ? THEN ? ELSE last_seen END "
                "WHERE name = ? AND card_url = ?",
                (int(healthy), checked_at, int(healthy), checked_at, name, card_url),
            )


def _record(row: tuple[Any, ...]) -> AgentRecord:
    healthy = row[6]
    return AgentRecord(
        name=row[0],
        version=row[1],
        url=row[2],
        card_url=row[3],
        card=json.loads(row[4]),
        registered_at=row[5],
        healthy=None if healthy is None else bool(healthy),
        last_seen=row[7],
        last_checked=row[8],
    )


def open_store(run_dir: Path) -> AgentStore:
    """Create the run directory if needed and open its registry database."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return AgentStore(run_dir / DATABASE_NAME)
