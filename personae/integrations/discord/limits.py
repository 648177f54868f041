"""How much one user, and one guild, may ask of the bot.

`Limiter.check` applies a per-user cooldown (seconds between two answers)
and a per-user daily quota (answers per UTC day, kept in `DiscordState` so a
restart does not reset it). A user over a limit gets one polite notice per
over-limit period (the rest of the cooldown, the rest of the UTC day), then
silence, so the bot neither ignores them nor spams them.

`Limiter.slot` caps the turns running at once per guild; direct messages
share one pool. Turns over the cap wait for a free slot.

Example:
    ```python
    verdict = await limiter.check(message.author.id)
    if not verdict.allowed:
        if verdict.notice:
            await message.reply(verdict.notice)
        return
    async with limiter.slot(message.guild.id if message.guild else None):
        reply = await agent.respond(turn)
    ```
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from personae.integrations.discord.config import LimitSettings
from personae.integrations.discord.state import DiscordState

__all__ = ["LimitVerdict", "Limiter"]


@dataclass(frozen=True)
class LimitVerdict:
    """Whether a user may get an answer now.

    Attributes:
        allowed: True to answer.
        notice: When not allowed: a polite message to send the user, the first
            time in this over-limit period; None to stay silent.
        reason: What was decided, for logs and `personae discord why`.
        retry_after: Seconds until the user may be answered again.
    """

    allowed: bool
    notice: str | None = None
    reason: str = ""
    retry_after: float | None = None


class Limiter:
    """Per-user cooldown and daily quota, per-guild concurrency.

    Args:
        settings: The limits.
        state: Where quota counts and sent notices are kept.
        clock: Seconds since the epoch (UTC days are cut from it); injected by tests.
    """

    def __init__(
        self, settings: LimitSettings, state: DiscordState, *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.state = state
        self.clock = clock
        self._last_answer: dict[int, float] = {}
        self._slots: dict[int | None, asyncio.Semaphore] = {}
        self._running: dict[int | None, int] = {}
        # Checks of one user must not interleave between reading and counting quota.
        self._lock = asyncio.Lock()

    async def check(self, user_id: int) -> LimitVerdict:
        """Check the user's limits and, when allowed, count the answer.

        Args:
            user_id: Who asks.

        Returns:
            Allowed, or not with a notice the first time per over-limit period.
        """
        async with self._lock:
            now = self.clock()
            last = self._last_answer.get(user_id)
            wait = self.settings.user_cooldown_seconds
            if last is not None and now - last < wait:
                left = wait - (now - last)
                first = await self.state.mark_notice(user_id, "cooldown", repr(last))
                notice = (f"Give me a moment between questions, please: I can answer you "
                          f"again in {math.ceil(left)} s.") if first else None
                return LimitVerdict(False, notice, f"user cooldown: {left:.1f} s of "
                                    f"{wait:g} s left", left)
            day = _utc_day(now)
            quota = self.settings.daily_quota
            if quota is not None and await self.state.quota_used(user_id, day) >= quota:
                left = _until_next_day(now)
                first = await self.state.mark_notice(user_id, "quota", day)
                notice = (f"That was your {quota} answers for today, thank you for all the "
                          f"questions! I can answer you again after midnight UTC, in "
                          f"{_duration(left)}.") if first else None
                return LimitVerdict(False, notice, f"daily quota of {quota} used up "
                                    f"(UTC day {day})", left)
            self._last_answer[user_id] = now
            used = await self.state.add_quota(user_id, day)
            shown = f"{used} of {quota}" if quota is not None else f"{used}, no quota"
            return LimitVerdict(True, None, f"within limits (answers today: {shown})")

    def slot(self, guild_id: int | None) -> AbstractAsyncContextManager[None]:
        """Hold one of the guild's turn slots while a turn runs; waits when all are taken.

        Args:
            guild_id: The guild; None for direct messages (one shared pool).
        """
        return self._hold(guild_id)

    def running(self, guild_id: int | None) -> int:
        """Return how many turns of the guild hold a slot now."""
        return self._running.get(guild_id, 0)

    @asynccontextmanager
    async def _hold(self, guild_id: int | None) -> AsyncIterator[None]:
        semaphore = self._slots.get(guild_id)
        if semaphore is None:
            semaphore = self._slots[guild_id] = asyncio.Semaphore(self.settings.guild_concurrency)
        async with semaphore:
            self._running[guild_id] = self._running.get(guild_id, 0) + 1
            try:
                yield
            finally:
                self._running[guild_id] -= 1


def _utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).date().isoformat()


def _until_next_day(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    midnight = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
    return (midnight - moment).total_seconds()


def _duration(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"
