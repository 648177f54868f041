"""Erasing a user entirely, and the index of users it works from.

`UserIndex` (`PERSONAE_HOME/companion/users.sqlite`) records which users of
which tenant have talked to which persona: the memory routes answer 404 for
a user it does not hold (another tenant's users included), and erasure
knows where to look. It also keeps each user's audit key (see
`personae.integrations.companion.audit`).

`erase_user` removes, for one tenant's user: the long-term memories and the
conversation (transcript and checkpoints) with every persona, through
`Agent.forget`, which compacts the databases so the text is gone from every
file under the data directory; whatever the erasure hooks hold (check-ins,
reminders, contacts, alerts); and finally the user's row and audit key here,
deleted with SQLite's `secure_delete` so the page is zeroed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from personae.scope import Scope

if TYPE_CHECKING:
    from personae.agents.agent import Agent
    from personae.integrations.companion.audit import AuditLog

__all__ = ["ErasureHook", "ErasureReport", "UserIndex", "erase_user"]

log = logging.getLogger("personae.companion")

ErasureHook = Callable[[str, str], Awaitable[Mapping[str, int]]]
"""`await hook(tenant, user)` erases what one part of the service keeps about a
user and returns counts of what it erased, e.g. `{"check_ins": 2}`."""


class ErasureReport(BaseModel):
    """What erasing a user removed."""

    object: str = "user.erased"
    """Always `user.erased`."""
    tenant: str
    """The tenant."""
    user: str
    """The user, now unknown to the service."""
    memories: int = 0
    """Long-term memories erased, over all personas."""
    personas: list[str] = Field(default_factory=list)
    """Personas whose conversation with the user was erased."""
    other: dict[str, dict[str, int]] = Field(default_factory=dict)
    """Counts from the other parts of the service (care: check-ins, reminders...)."""
    erased_at: float = 0.0
    """Unix time the erasure finished."""


class UserIndex:
    """Which users of which tenant talked to which persona, and their audit keys.

    Blocking and thread-safe, like `MemoryStore`: async code calls it through
    `asyncio.to_thread` (the `a*` methods do). What was seen once is cached,
    so a chat request writes here only the first time a user meets a persona.

    Args:
        path: The SQLite file; created with its folder.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        # Deleted rows are overwritten with zeros, not left in free pages.
        self._db.execute("PRAGMA secure_delete=ON")
        # A first chat of many users at once must not wait for one disk flush each: in WAL
        # mode, NORMAL flushes at checkpoints only. A row lost to a power cut comes back
        # with the user's next message.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS users (
                tenant TEXT NOT NULL, user TEXT NOT NULL, audit_key BLOB NOT NULL,
                first_seen REAL NOT NULL, PRIMARY KEY (tenant, user));
            CREATE TABLE IF NOT EXISTS talks (
                tenant TEXT NOT NULL, user TEXT NOT NULL, persona TEXT NOT NULL,
                first_seen REAL NOT NULL, PRIMARY KEY (tenant, user, persona));
            """
        )
        self._db.commit()
        self._seen: set[tuple[str, str, str]] = set()
        self._keys: dict[tuple[str, str], bytes] = {}

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def seen(self, tenant: str, user: str, persona: str) -> None:
        """Record that `user` of `tenant` talks to `persona`."""
        if (tenant, user, persona) in self._seen:
            return
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO users VALUES (?, ?, ?, ?)",
                (tenant, user, secrets.token_bytes(32), now),
            )
            self._db.execute("INSERT OR IGNORE INTO talks VALUES (?, ?, ?, ?)",
                             (tenant, user, persona, now))
            self._db.commit()
            self._seen.add((tenant, user, persona))

    async def aseen(self, tenant: str, user: str, persona: str) -> None:
        """`seen`, off the event loop (and free when already known)."""
        if (tenant, user, persona) not in self._seen:
            await asyncio.to_thread(self.seen, tenant, user, persona)

    def exists(self, tenant: str, user: str) -> bool:
        """Whether the tenant has this user (users of other tenants are never found)."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM users WHERE tenant = ? AND user = ?", (tenant, user)
            ).fetchone()
        return row is not None

    def personas(self, tenant: str, user: str) -> list[str]:
        """Return the persona ids the user has talked to, sorted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT persona FROM talks WHERE tenant = ? AND user = ? ORDER BY persona",
                (tenant, user),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def ref(self, tenant: str, user: str) -> str | None:
        """Return the user's pseudonymous audit reference, or None for an unknown user.

        A keyed hash of the user id: stable while the user exists, and tied
        to no one once the key is erased with the user.
        """
        key = self._keys.get((tenant, user))
        if key is None:
            with self._lock:
                row = self._db.execute(
                    "SELECT audit_key FROM users WHERE tenant = ? AND user = ?", (tenant, user)
                ).fetchone()
            if row is None:
                return None
            key = self._keys[(tenant, user)] = bytes(row[0])
        return hmac.new(key, user.encode("utf-8"), hashlib.sha256).hexdigest()[:24]

    def delete(self, tenant: str, user: str) -> bool:
        """Forget the user and their audit key; return whether they were known."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM users WHERE tenant = ? AND user = ?", (tenant, user)
            )
            self._db.execute("DELETE FROM talks WHERE tenant = ? AND user = ?", (tenant, user))
            self._db.commit()
            # The write-ahead log still holds the pages as they were before the delete.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._seen = {s for s in self._seen if s[:2] != (tenant, user)}
            self._keys.pop((tenant, user), None)
        return cursor.rowcount > 0


async def erase_user(
    tenant: str,
    user: str,
    *,
    agents: Sequence[Agent],
    users: UserIndex,
    hooks: Mapping[str, ErasureHook] | None = None,
    audit: AuditLog | None = None,
    home: Path | None = None,
) -> ErasureReport:
    """Erase everything the service keeps about one tenant's user.

    The caller makes sure no turn of the user runs meanwhile (the app holds
    the user's lock).

    Args:
        tenant: The tenant.
        user: The user.
        agents: Every persona's agent; each forgets the user's scope.
        users: The user index; the user's row and audit key go last.
        hooks: Name -> hook erasing what another part of the service keeps.
        audit: Where an `erasure` event (counts only, no user id) is logged.
        home: The data directory; its conversation database is checked to
            hold no uncompacted write-ahead log afterwards.

    Returns:
        What was erased.
    """
    report = ErasureReport(tenant=tenant, user=user)
    ref = await asyncio.to_thread(users.ref, tenant, user)
    for agent in agents:
        scope = Scope(persona=agent.persona.id, tenant=tenant, user=user)
        report.memories += await agent.forget(scope)
        report.personas.append(agent.persona.id)
    for name, hook in (hooks or {}).items():
        report.other[name] = dict(await hook(tenant, user))
    if home is not None:
        await asyncio.to_thread(_truncate_wal, home / "conversations.sqlite")
    await asyncio.to_thread(users.delete, tenant, user)
    report.erased_at = round(time.time(), 3)
    if audit is not None:
        await audit.append({"kind": "erasure", "tenant": tenant, "user_ref": ref,
                            "memories": report.memories, "personas": len(report.personas),
                            "other": {k: sum(v.values()) for k, v in report.other.items()}})
    return report


def _truncate_wal(path: Path, attempts: int = 20) -> None:
    """Empty the write-ahead log of a SQLite file, waiting for readers to let go.

    `Agent.forget` vacuums and checkpoints, but a checkpoint cannot finish
    while another connection reads; the log would then still hold old pages.
    """
    if not path.exists():
        return
    db = sqlite3.connect(str(path), timeout=30)
    try:
        for _ in range(attempts):
            busy: Any = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy or not busy[0]:
                return
            time.sleep(0.05)
        log.warning("the conversation log could not be truncated after erasure; "
                    "old pages remain until the next checkpoint")
    finally:
        db.close()
