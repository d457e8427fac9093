"""The tickets table in SQLite: WAL journal, fsync on every commit."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STATUSES = ("open", "in_progress", "resolved", "closed")
PRIORITIES = ("low", "medium", "high", "critical")
CATEGORIES = ("network", "access", "hardware", "software", "other")
# First id given out. Five-digit ids are never mistaken for counts ("2 monitors").
FIRST_TICKET_ID = 12301
# Seconds a writer waits for another connection's lock before failing.
BUSY_TIMEOUT_SECONDS = 10.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL,
    priority TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_owner ON tickets (owner);
"""
COLUMNS = (
    "id, owner, title, category, status, priority, created_at, updated_at, "
    "description"
)


@dataclass(frozen=True)
class Ticket:
    """One helpdesk ticket."""

    id: int
    owner: str
    title: str
    category: str
    status: str
    priority: str
    created_at: str
    updated_at: str
    description: str

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def database_file_id(path: Path) -> tuple[int, int] | None:
    """Return the device and inode of the file at `path`, or None if it is absent."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class TicketStore:
    """Access to the tickets table, with one SQLite connection per thread.

    The skills run in worker threads, and an `sqlite3.Connection` may only be
    used by the thread that opened it, so each thread keeps its own. Opening a
    connection and setting its pragmas once per thread instead of once per
    call saves about 0.3 ms of CPU per call. `synchronous=FULL` in WAL mode
    syncs the log on every commit, so a ticket whose creation was acknowledged
    survives a kill -9 of the process.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(SCHEMA)
            seeded = connection.execute(
                "SELECT 1 FROM sqlite_sequence WHERE name = 'tickets'"
            ).fetchone()
            if seeded is None:
                connection.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('tickets', ?)",
                    (FIRST_TICKET_ID - 1,),
                )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """Yield this thread's connection inside one transaction.

        The transaction commits when the block ends and rolls back when it
        raises. The connection stays open for the thread's next call. If the
        database file was removed or replaced since then, the connection is
        reopened on the path, so no write lands in an unlinked file.
        """
        file_id = database_file_id(self.path)
        connection: sqlite3.Connection | None = getattr(
            self._local, "connection", None
        )
        if connection is not None and self._local.file_id != file_id:
            connection.close()
            connection = None
        if connection is None:
            connection = self._open()
            self._local.connection = connection
            self._local.file_id = database_file_id(self.path)
        with connection:
            yield connection

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            connection.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error:
            connection.close()
            raise
        return connection

    def create(
        self, owner: str, title: str, category: str, priority: str, description: str
    ) -> Ticket:
        now = utc_now()
        with self._connect() as connection:
            cursor = connection.execute(
                "INSERT INTO tickets (owner, title, category, status, priority, "
                "created_at, updated_at, description) "
                "VALUES (?, ?, ?, 'open', ?, ?, ?, ?)",
                (owner, title, category, priority, now, now, description),
            )
            ticket_id = cursor.lastrowid
        ticket = self.get(int(ticket_id or 0))
        if ticket is None:
            raise RuntimeError(f"ticket {ticket_id} missing right after insert")
        return ticket

    def get(self, ticket_id: int) -> Ticket | None:
        with self._connect() as connection:
            row = connection.execute(
                f"SELECT {COLUMNS} FROM tickets WHERE id = ?", (ticket_id,)
            ).fetchone()
        return Ticket(*row) if row else None

    def list(
        self, owner: str | None = None, statuses: Collection[str] | None = None
    ) -> list[Ticket]:
        """List tickets by id, of one owner or of everyone, optionally by status."""
        query = f"SELECT {COLUMNS} FROM tickets WHERE 1 = 1"
        parameters: list[Any] = []
        if owner is not None:
            query += " AND owner = ?"
            parameters.append(owner)
        if statuses:
            query += f" AND status IN ({', '.join('?' for _ in statuses)})"
            parameters.extend(statuses)
        with self._connect() as connection:
            rows = connection.execute(query + " ORDER BY id", parameters).fetchall()
        return [Ticket(*row) for row in rows]

    def update(
        self, ticket_id: int, status: str | None = None, priority: str | None = None
    ) -> Ticket:
        """Set the status and/or priority of an existing ticket."""
        changes: dict[str, str] = {}
        if status is not None:
            changes["status"] = status
        if priority is not None:
            changes["priority"] = priority
        changes["updated_at"] = utc_now()
        assignments = ", ".join(f"{column} = ?" for column in changes)
        with self._connect() as connection:
            connection.execute(
                f"UPDATE tickets SET {assignments} WHERE id = ?",
                (*changes.values(), ticket_id),
            )
        ticket = self.get(ticket_id)
        if ticket is None:
            raise KeyError(f"ticket {ticket_id} not found")
        return ticket
