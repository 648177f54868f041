"""`CareStore`: the care records in one SQLite file.

Each record is kept whole as JSON, next to the few columns that are searched
(tenant, user, due times, states). `PRAGMA secure_delete=ON` overwrites what
is deleted, so an erased user's schedules and messages do not linger in free
pages of the file.

Every method blocks; `CareService` calls them through `asyncio.to_thread`. One
connection is shared by the worker threads, one call at a time.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from personae.errors import IntegrationError
from personae.integrations.companion.care_models import (
    Alert,
    CheckIn,
    Contact,
    Delivery,
    Reminder,
)
from personae.settings import get_settings

__all__ = ["CareStore"]

_M = TypeVar("_M", bound=BaseModel)

# Searched columns of each table, besides `id`, `tenant`, `user` and the JSON `body`.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "checkins": ("next_due", "paused"),
    "reminders": ("next_due",),
    "contacts": (),
    "alerts": ("kind", "created_at"),
    "deliveries": (
        "recipient_kind", "recipient", "kind", "source_id", "created_at", "read_at",
        "due_by", "answered_at", "escalated_at", "webhook",
    ),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkins (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user TEXT NOT NULL,
    next_due REAL, paused INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS checkins_due ON checkins (next_due);
CREATE TABLE IF NOT EXISTS reminders (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user TEXT NOT NULL,
    next_due REAL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reminders_due ON reminders (next_due);
CREATE TABLE IF NOT EXISTS contacts (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS contacts_user ON contacts (tenant, user);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user TEXT NOT NULL,
    kind TEXT NOT NULL, created_at REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_key ON alerts (tenant, user, kind, created_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user TEXT NOT NULL,
    recipient_kind TEXT NOT NULL, recipient TEXT NOT NULL, kind TEXT NOT NULL,
    source_id TEXT NOT NULL, created_at REAL NOT NULL, read_at REAL, due_by REAL,
    answered_at REAL, escalated_at REAL, webhook TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deliveries_inbox ON deliveries (tenant, recipient_kind, recipient);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (due_by);
"""


def _column(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bool):
        return int(value)
    return value


class CareStore:
    """Check-ins, reminders, contacts, alerts and deliveries in SQLite.

    Args:
        path: The database file; its directory is created. `":memory:"` keeps
            everything in memory (tests).

    Raises:
        IntegrationError: The file cannot be opened or is not a care database.

    Example:
        ```python
        store = CareStore(CareStore.default_path())
        store.put(checkin)
        store.due_checkins(now)
        ```
    """

    def __init__(self, path: Path | str) -> None:
        self.path = path
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA secure_delete=ON")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise IntegrationError(
                f"{path}: cannot open the care database ({exc}); check the file's permissions, "
                "or move it aside to start with an empty one"
            ) from exc

    @staticmethod
    def default_path(home: Path | None = None) -> Path:
        """Return `<home>/companion/care.sqlite`; `home` defaults to `PERSONAE_HOME`."""
        return (home or get_settings().home) / "companion" / "care.sqlite"

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    # -- generic --------------------------------------------------------------

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, params))

    def put(self, record: CheckIn | Reminder | Contact | Alert | Delivery) -> None:
        """Insert or replace a record (matched by `id`)."""
        table = _TABLE_OF[type(record)]
        names = ("id", "tenant", "user", *_COLUMNS[table])
        values = [_column(getattr(record, name)) for name in names]
        marks = ", ".join("?" for _ in range(len(names) + 1))
        self._execute(
            f"INSERT OR REPLACE INTO {table} ({', '.join(names)}, body) VALUES ({marks})",
            (*values, record.model_dump_json()),
        )

    def _select(self, model: type[_M], where: str, params: tuple[Any, ...], *,
                order: str = "rowid") -> list[_M]:
        table = _TABLE_OF[model]
        rows = self._execute(f"SELECT body FROM {table} WHERE {where} ORDER BY {order}", params)
        return [model.model_validate_json(row[0]) for row in rows]

    def get(self, model: type[_M], tenant: str, record_id: str) -> _M | None:
        """Return the record of `tenant` with this id, or `None`."""
        found = self._select(model, "tenant = ? AND id = ?", (tenant, record_id))
        return found[0] if found else None

    def records(self, model: type[_M], tenant: str, user: str | None = None) -> list[_M]:
        """Return the records of `tenant` (of one `user` when given), oldest first."""
        if user is None:
            return self._select(model, "tenant = ?", (tenant,))
        return self._select(model, "tenant = ? AND user = ?", (tenant, user))

    def delete(self, model: type[BaseModel], tenant: str, record_id: str) -> bool:
        """Delete the record of `tenant` with this id; tell whether there was one."""
        table = _TABLE_OF[model]
        with self._lock:
            cursor = self._conn.execute(
                f"DELETE FROM {table} WHERE tenant = ? AND id = ?", (tenant, record_id)
            )
            return cursor.rowcount > 0

    # -- what the scheduler looks for -----------------------------------------

    def due_checkins(self, now: datetime) -> list[CheckIn]:
        """Return the unpaused check-ins of every tenant due at or before `now`."""
        return self._select(CheckIn, "paused = 0 AND next_due IS NOT NULL AND next_due <= ?",
                            (now.timestamp(),), order="next_due")

    def due_reminders(self, now: datetime) -> list[Reminder]:
        """Return the reminders of every tenant due at or before `now`."""
        return self._select(Reminder, "next_due IS NOT NULL AND next_due <= ?",
                            (now.timestamp(),), order="next_due")

    def overdue(self, now: datetime) -> list[Delivery]:
        """Return deliveries whose reply or acknowledgement deadline passed, not yet escalated."""
        return self._select(
            Delivery,
            "due_by IS NOT NULL AND due_by <= ? AND answered_at IS NULL AND escalated_at IS NULL",
            (now.timestamp(),), order="due_by",
        )

    def outstanding(self, tenant: str, user: str, kind: str, source_id: str | None = None,
                    before: datetime | None = None) -> list[Delivery]:
        """Return the user's unanswered check-in or reminder deliveries, oldest first."""
        where = "tenant = ? AND user = ? AND recipient_kind = 'user' AND kind = ? " \
                "AND answered_at IS NULL"
        params: tuple[Any, ...] = (tenant, user, kind)
        if source_id is not None:
            where += " AND source_id = ?"
            params += (source_id,)
        if before is not None:
            where += " AND created_at <= ?"
            params += (before.timestamp(),)
        return self._select(Delivery, where, params, order="created_at")

    def pending_webhooks(self) -> list[Delivery]:
        """Return the deliveries still to be POSTed, oldest first."""
        return self._select(Delivery, "webhook = 'pending'", (), order="created_at")

    def contacts_of(self, tenant: str, user: str) -> list[Contact]:
        """Return the caregiver contacts of a user."""
        return self.records(Contact, tenant, user)

    def latest_alert(self, tenant: str, user: str, kind: str, since: datetime) -> Alert | None:
        """Return the newest alert of this (tenant, user, kind) created at or after `since`."""
        found = self._select(
            Alert, "tenant = ? AND user = ? AND kind = ? AND created_at >= ?",
            (tenant, user, kind, since.timestamp()), order="created_at DESC",
        )
        return found[0] if found else None

    def inbox(self, tenant: str, recipient_kind: str, recipient: str, *,
              unread_only: bool) -> list[Delivery]:
        """Return the deliveries to a user or contact, oldest first."""
        where = "tenant = ? AND recipient_kind = ? AND recipient = ?"
        if unread_only:
            where += " AND read_at IS NULL"
        params = (tenant, recipient_kind, recipient)
        return self._select(Delivery, where, params, order="created_at")

    def deliveries_since(self, tenant: str, user: str, since: datetime) -> list[Delivery]:
        """Return every delivery concerning a user created at or after `since`."""
        return self._select(Delivery, "tenant = ? AND user = ? AND created_at >= ?",
                            (tenant, user, since.timestamp()), order="created_at")

    def erase_user(self, tenant: str, user: str) -> dict[str, int]:
        """Delete everything about a user; return how many rows each table lost."""
        counts: dict[str, int] = {}
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                for table in _COLUMNS:
                    cursor = self._conn.execute(
                        f"DELETE FROM {table} WHERE tenant = ? AND user = ?", (tenant, user)
                    )
                    counts[table] = cursor.rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return counts


_TABLE_OF: dict[type[BaseModel], str] = {
    CheckIn: "checkins",
    Reminder: "reminders",
    Contact: "contacts",
    Alert: "alerts",
    Delivery: "deliveries",
}
