"""Per-user cooldown and daily quota with one polite notice, per-guild concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from personae.integrations.discord.config import LimitSettings
from personae.integrations.discord.limits import Limiter
from personae.integrations.discord.state import DiscordState

NOON = datetime(2025, 3, 1, 12, 0, tzinfo=UTC).timestamp()
USER, OTHER = 7, 8


class Clock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def state() -> AsyncIterator[DiscordState]:
    async with DiscordState(":memory:") as opened:
        yield opened


async def test_cooldown_gives_one_notice_then_silence(state: DiscordState) -> None:
    clock = Clock()
    limiter = Limiter(LimitSettings(user_cooldown_seconds=10, daily_quota=None), state,
                      clock=clock)
    assert (await limiter.check(USER)).allowed
    clock.now += 4
    first = await limiter.check(USER)
    assert not first.allowed
    assert first.notice is not None and "again in 6 s" in first.notice
    assert first.retry_after == pytest.approx(6)
    clock.now += 1
    second = await limiter.check(USER)
    assert not second.allowed and second.notice is None
    assert (await limiter.check(OTHER)).allowed  # another user is not held back
    clock.now += 5
    assert (await limiter.check(USER)).allowed
    clock.now += 1  # a new cooldown period: a new notice
    assert (await limiter.check(USER)).notice is not None


async def test_zero_cooldown_means_none(state: DiscordState) -> None:
    limiter = Limiter(LimitSettings(user_cooldown_seconds=0, daily_quota=None), state,
                      clock=Clock())
    assert all([(await limiter.check(USER)).allowed for _ in range(5)])


async def test_daily_quota_notice_once_and_reset_at_utc_midnight(state: DiscordState) -> None:
    clock = Clock()
    limiter = Limiter(LimitSettings(user_cooldown_seconds=0, daily_quota=3), state, clock=clock)
    for _ in range(3):
        assert (await limiter.check(USER)).allowed
    over = await limiter.check(USER)
    assert not over.allowed
    assert over.notice is not None
    assert "your 3 answers for today" in over.notice and "in 12 h" in over.notice
    assert "daily quota of 3" in over.reason
    assert (await limiter.check(USER)).notice is None
    assert (await limiter.check(OTHER)).allowed
    clock.now = datetime(2025, 3, 2, 0, 0, 1, tzinfo=UTC).timestamp()
    assert (await limiter.check(USER)).allowed


async def test_quota_and_its_notice_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    settings = LimitSettings(user_cooldown_seconds=0, daily_quota=2)
    async with DiscordState(path) as state:
        limiter = Limiter(settings, state, clock=Clock())
        assert (await limiter.check(USER)).allowed
        assert (await limiter.check(USER)).allowed
        assert (await limiter.check(USER)).notice is not None
    async with DiscordState(path) as state:
        restarted = Limiter(settings, state, clock=Clock(NOON + 60))
        verdict = await restarted.check(USER)
        assert not verdict.allowed and verdict.notice is None


async def test_refused_checks_do_not_count(state: DiscordState) -> None:
    clock = Clock()
    limiter = Limiter(LimitSettings(user_cooldown_seconds=10, daily_quota=2), state,
                      clock=clock)
    assert (await limiter.check(USER)).allowed
    for _ in range(5):
        assert not (await limiter.check(USER)).allowed  # in cooldown
    clock.now += 11
    assert (await limiter.check(USER)).allowed  # the second of two, not over quota


async def test_concurrent_checks_do_not_overrun_the_quota(state: DiscordState) -> None:
    limiter = Limiter(LimitSettings(user_cooldown_seconds=0, daily_quota=3), state,
                      clock=Clock())
    verdicts = await asyncio.gather(*(limiter.check(USER) for _ in range(10)))
    assert sum(v.allowed for v in verdicts) == 3
    assert sum(v.notice is not None for v in verdicts) == 1


async def test_guild_concurrency_cap_makes_extra_turns_wait(state: DiscordState) -> None:
    limiter = Limiter(LimitSettings(guild_concurrency=2), state)
    release = asyncio.Event()
    peak = 0

    async def turn(guild: int | None) -> None:
        nonlocal peak
        async with limiter.slot(guild):
            peak = max(peak, limiter.running(1))
            await release.wait()

    tasks = [asyncio.create_task(turn(1)) for _ in range(3)]
    other = asyncio.create_task(turn(2))
    for _ in range(20):
        await asyncio.sleep(0)
    assert limiter.running(1) == 2  # the third waits
    assert limiter.running(2) == 1  # another guild has its own slots
    release.set()
    await asyncio.gather(*tasks, other)
    assert peak == 2 and limiter.running(1) == 0


async def test_slot_is_released_when_the_turn_fails(state: DiscordState) -> None:
    limiter = Limiter(LimitSettings(guild_concurrency=1), state)
    with pytest.raises(RuntimeError):
        async with limiter.slot(None):
            raise RuntimeError("model failed")
    async with asyncio.timeout(5), limiter.slot(None):
        assert limiter.running(None) == 1
