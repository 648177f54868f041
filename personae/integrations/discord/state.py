"""What the Discord bot keeps across restarts, in one SQLite file.

`DiscordState` holds the personas set with `/persona set` per guild,
category, channel or thread, the answers each user got per UTC day (their
quota), the over-limit notices already sent, and the webhook the bot owns
in each channel. It lives at `PERSONAE_HOME/discord/state.sqlite` unless
told otherwise.

Every call runs its SQL in a worker thread (`asyncio.to_thread`), so the
event loop, and with it the gateway heartbeat, never waits on the disk.

Example:
    ```python
    async with DiscordState() as state:
        await state.set_persona(channel.id, "innkeeper", kind="channel", guild_id=guild.id)
        overrides = await state.persona_overrides()
    ```
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, TypeVar

from personae.errors import IntegrationError
from personae.settings import get_settings

__all__ = ["DiscordState", "PlaceKind", "WebhookRef"]

PlaceKind = Literal["guild", "category", "channel", "thread", "dm"]
"""What kind of place a persona override is set on."""

_T = TypeVar("_T")
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS persona_overrides (
    place_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    guild_id INTEGER,
    persona_id TEXT NOT NULL,
    set_by INTEGER,
    set_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS quota (
    user_id INTEGER NOT NULL,
    day TEXT NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (user_id, day)
);
CREATE TABLE IF NOT EXISTS notices (
    user_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    period TEXT NOT NULL,
    sent_at REAL NOT NULL,
    PRIMARY KEY (user_id, kind, period)
);
CREATE TABLE IF NOT EXISTS webhooks (
    channel_id INTEGER PRIMARY KEY,
    webhook_id INTEGER NOT NULL,
    token TEXT NOT NULL
);
"""
_MEMORY: Final = ":memory:"
_NOTICE_KEEP_SECONDS: Final = 2 * 24 * 3600


@dataclass(frozen=True)
class WebhookRef:
    """The webhook the bot owns in a channel; enough to post through it.

    Attributes:
        id: The webhook's id.
        token: The webhook's token (anyone holding it can post; never logged).
    """

    id: int
    token: str = field(repr=False)


class DiscordState:
    """The bot's state in SQLite: persona overrides, quotas, notices, webhooks.

    Build it, then `await open()` (or use `async with`); `aclose()` when done.

    Args:
        path: The SQLite file; `":memory:"` for a throwaway state; default
            `PERSONAE_HOME/discord/state.sqlite`.

    Raises:
        IntegrationError: On `open`, when the file cannot be created or read.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            path = get_settings().home / "discord" / "state.sqlite"
        self.path: Path | None = None if str(path) == _MEMORY else Path(path)
        self._conn: sqlite3.Connection | None = None
        # One connection shared by the worker threads; sqlite3 objects are not
        # safe to use from two threads at once.
        self._lock = threading.Lock()

    async def __aenter__(self) -> DiscordState:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Create or open the database (and its directory)."""
        if self._conn is None:
            self._conn = await asyncio.to_thread(self._connect)

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path if self.path is not None else _MEMORY, check_same_thread=False
            )
            conn.executescript(_SCHEMA)
            conn.commit()
        except (OSError, sqlite3.Error) as exc:
            raise IntegrationError(
                f"cannot open the Discord state database {self.path or _MEMORY}: {exc}; check "
                "that the directory is writable, or set PERSONAE_HOME elsewhere"
            ) from exc
        return conn

    async def aclose(self) -> None:
        """Close the database; the state stays on disk."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(self._locked, conn.close)

    def _locked(self, fn: Callable[[], _T]) -> _T:
        with self._lock:
            return fn()

    async def _run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        conn = self._conn
        if conn is None:
            raise IntegrationError("DiscordState is not open; `await state.open()` first")

        def call() -> _T:
            with conn:  # one transaction: committed, or rolled back on error
                return fn(conn)

        return await asyncio.to_thread(self._locked, call)

    async def persona_overrides(self) -> dict[int, str]:
        """Return every persona set with `/persona set`: place id -> persona id."""
        rows = await self._run(
            lambda c: c.execute("SELECT place_id, persona_id FROM persona_overrides").fetchall()
        )
        return {int(place): str(persona) for place, persona in rows}

    async def set_persona(
        self, place_id: int, persona_id: str, *, kind: PlaceKind,
        guild_id: int | None = None, set_by: int | None = None,
    ) -> None:
        """Make `persona_id` speak in a place (and below it), replacing any earlier override.

        Args:
            place_id: The guild, category, channel or thread id.
            persona_id: A persona id of the config.
            kind: What the place is.
            guild_id: The guild it belongs to, for listing a guild's overrides.
            set_by: The user who set it.
        """
        await self._run(lambda c: c.execute(
            "INSERT OR REPLACE INTO persona_overrides VALUES (?, ?, ?, ?, ?, ?)",
            (place_id, kind, guild_id, persona_id, set_by, time.time()),
        ))

    async def clear_persona(self, place_id: int) -> bool:
        """Remove the override of a place; return True if there was one."""
        cursor = await self._run(
            lambda c: c.execute("DELETE FROM persona_overrides WHERE place_id = ?", (place_id,))
        )
        return cursor.rowcount > 0

    async def quota_used(self, user_id: int, day: str) -> int:
        """Return how many answers `user_id` got on `day` (`YYYY-MM-DD`, UTC)."""
        row = await self._run(lambda c: c.execute(
            "SELECT used FROM quota WHERE user_id = ? AND day = ?", (user_id, day)
        ).fetchone())
        return int(row[0]) if row else 0

    async def add_quota(self, user_id: int, day: str) -> int:
        """Count one more answer for `user_id` on `day`; return the new count.

        Counts of days before `day` are dropped on the way: only today's matter.
        """

        def add(c: sqlite3.Connection) -> int:
            c.execute("DELETE FROM quota WHERE day < ?", (day,))
            c.execute(
                "INSERT INTO quota VALUES (?, ?, 1) "
                "ON CONFLICT (user_id, day) DO UPDATE SET used = used + 1",
                (user_id, day),
            )
            row = c.execute(
                "SELECT used FROM quota WHERE user_id = ? AND day = ?", (user_id, day)
            ).fetchone()
            return int(row[0])

        return await self._run(add)

    async def mark_notice(self, user_id: int, kind: str, period: str) -> bool:
        """Note that `user_id` was told about limit `kind` in `period`.

        Args:
            user_id: The user.
            kind: Which limit, e.g. `quota` or `cooldown`.
            period: Which over-limit period, e.g. the UTC day.

        Returns:
            True the first time for this user, kind and period (send the
            notice); False after that (stay silent).
        """
        now = time.time()

        def mark(c: sqlite3.Connection) -> bool:
            # Every over-limit period is over within a day; older notes only take space.
            c.execute("DELETE FROM notices WHERE sent_at < ?", (now - _NOTICE_KEEP_SECONDS,))
            cursor = c.execute(
                "INSERT OR IGNORE INTO notices VALUES (?, ?, ?, ?)", (user_id, kind, period, now)
            )
            return cursor.rowcount > 0

        return await self._run(mark)

    async def webhook(self, channel_id: int) -> WebhookRef | None:
        """Return the webhook the bot owns in a channel, if it made one."""
        row = await self._run(lambda c: c.execute(
            "SELECT webhook_id, token FROM webhooks WHERE channel_id = ?", (channel_id,)
        ).fetchone())
        return WebhookRef(int(row[0]), str(row[1])) if row else None

    async def set_webhook(self, channel_id: int, ref: WebhookRef) -> None:
        """Remember the webhook the bot made in a channel, replacing any earlier one."""
        await self._run(lambda c: c.execute(
            "INSERT OR REPLACE INTO webhooks VALUES (?, ?, ?)", (channel_id, ref.id, ref.token)
        ))

    async def forget_webhook(self, channel_id: int) -> None:
        """Forget a channel's webhook (it was deleted on Discord)."""
        await self._run(
            lambda c: c.execute("DELETE FROM webhooks WHERE channel_id = ?", (channel_id,))
        )
