"""Limits: per-user quota and cooldown with one polite notice, and the bot-to-bot cap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from http_recorder import FakeDiscord, make_agent, make_config, start_bot

from personae.integrations.discord.bot import PersonaeBot
from personae.integrations.discord.state import DiscordState
from personae.testing import FakeChatModel

SEND = ("POST", "/channels/{channel_id}/messages")


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def _world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, clock: Clock | None = None,
                 **config: Any) -> FakeDiscord:
    def make(ids: dict[str, str]) -> PersonaeBot:
        agent = make_agent(tmp_path, "brenna", "Brenna", FakeChatModel(default="Welcome!"))
        cfg = make_config(tmp_path, ["brenna"], webhooks=False, **config)
        return PersonaeBot(cfg, agents={"brenna": agent}, clock=clock or Clock(),
                           state=DiscordState(tmp_path / "state.sqlite"))

    return await start_bot(monkeypatch, make)


def _contents(world: FakeDiscord) -> list[str]:
    return [c.json["content"] for c in world.http.to(*SEND)]


async def test_a_daily_quota_ends_with_one_polite_notice_then_silence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    world = await _world(monkeypatch, tmp_path,
                         limits={"daily_quota": 2, "user_cooldown_seconds": 0})
    try:
        for i in range(5):
            world.say("ann", f"question {i}", mention_bot=True)
            await world.settle()
        contents = _contents(world)
        assert contents[:2] == ["Welcome!", "Welcome!"]
        assert len(contents) == 3, contents
        assert "today" in contents[2]
        notice = world.http.to(*SEND)[2].json
        assert notice["allowed_mentions"]["parse"] == []
        assert notice["message_reference"]["fail_if_not_exists"] is False
        # Someone else is not affected.
        world.say("bob", "hello", mention_bot=True)
        await world.settle()
        assert _contents(world)[-1] == "Welcome!"
    finally:
        await world.bot.close()


async def test_the_quota_survives_a_restart(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    clock = Clock()
    limits = {"daily_quota": 1, "user_cooldown_seconds": 0}
    world = await _world(monkeypatch, tmp_path, clock=clock, limits=limits)
    world.say("ann", "one", mention_bot=True)
    await world.settle()
    await world.bot.close()

    def make(ids: dict[str, str]) -> PersonaeBot:
        agent = make_agent(tmp_path, "brenna", "Brenna", FakeChatModel(default="Welcome!"))
        cfg = make_config(tmp_path, ["brenna"], webhooks=False, limits=limits)
        return PersonaeBot(cfg, agents={"brenna": agent}, clock=clock,
                           state=DiscordState(tmp_path / "state.sqlite"))

    again = await start_bot(monkeypatch, make, again=world)
    try:
        again.say("ann", "two", mention_bot=True)
        await again.settle()
        contents = _contents(again)
        assert contents[0] == "Welcome!" and "today" in contents[1] and len(contents) == 2
    finally:
        await again.bot.close()


async def test_a_user_cooldown_notice_is_sent_once_per_wait(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    clock = Clock()
    world = await _world(monkeypatch, tmp_path, clock=clock,
                         limits={"daily_quota": None, "user_cooldown_seconds": 30})
    try:
        for _ in range(3):
            world.say("ann", "again!", mention_bot=True)
            await world.settle()
        contents = _contents(world)
        assert contents[0] == "Welcome!" and len(contents) == 2
        assert "moment" in contents[1]
        clock.now += 31
        world.say("ann", "now?", mention_bot=True)
        await world.settle()
        assert _contents(world)[-1] == "Welcome!"
    finally:
        await world.bot.close()


async def test_two_bots_stop_after_the_cap_of_bot_turns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    world = await _world(monkeypatch, tmp_path,
                         policy={"ignore_bots": False, "max_bot_turns": 3})
    try:
        for i in range(6):
            world.say("otherbot", f"ping {i}", mention_bot=True)
            await world.settle()
        rules = [d.rule for _, d in world.bot.decisions]
        answered = len(world.http.to(*SEND))
        # Each exchange is two bot messages in a row: the cap of 3 allows two answers.
        assert answered == 2, rules
        assert rules[answered:] == ["bot_turns"] * (6 - answered)
        # A person speaking resets the count.
        world.say("ann", "calm down, both of you", mention_bot=True)
        world.say("otherbot", "sorry", mention_bot=True)
        await world.settle()
        assert len(world.http.to(*SEND)) == answered + 2
    finally:
        await world.bot.close()
