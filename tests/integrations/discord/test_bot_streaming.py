"""Streaming: the reply shows up early and grows by edits, at most one per second per message."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from http_recorder import Call, FakeDiscord, make_agent, make_config, start_bot

from personae.integrations.discord.bot import PersonaeBot
from personae.integrations.discord.state import DiscordState
from personae.testing import FakeChatModel

SEND = ("POST", "/channels/{channel_id}/messages")
EDIT = ("PATCH", "/channels/{channel_id}/messages/{message_id}")
EXECUTE = ("POST", "/webhooks/{webhook_id}/{webhook_token}")
EDIT_HOOK_MESSAGE = ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")

STORY = ("The stew is hot, the ale is cold, and the room upstairs has a view of the mill "
         "pond where the herons fish at dawn.")


class TickingClock:
    """Fake monotonic time: every reading moves it on a little; sleeping moves it on."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step
        self.slept: list[float] = []

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def _world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clock: TickingClock,
                 text: str, **config: Any) -> tuple[FakeDiscord, dict[int, float]]:
    def make(ids: dict[str, str]) -> PersonaeBot:
        model = FakeChatModel(default=text, chunk_size=3)
        agent = make_agent(tmp_path, "brenna", "Brenna", model)
        cfg = make_config(tmp_path, ["brenna"], **{"webhooks": False, **config,
                                                   "streaming": True})
        return PersonaeBot(cfg, agents={"brenna": agent}, monotonic=clock, sleep=clock.sleep,
                           state=DiscordState(tmp_path / "state.sqlite"))

    world = await start_bot(monkeypatch, make)
    when: dict[int, float] = {}

    def stamp(call: Call) -> None:
        when[id(call)] = clock.now

    world.http.on_record = stamp
    return world, when


def _gaps_per_message(calls: list[Call], when: dict[int, float], posts: list[Call]
                      ) -> list[float]:
    """Fake seconds between consecutive touches (post, then edits) of each message."""
    gaps = []
    for post in posts:
        message_id = post.response["id"]
        touches = [when[id(post)]] + [when[id(c)] for c in calls if c.path.endswith(message_id)]
        gaps += [b - a for a, b in itertools.pairwise(touches)]
    return gaps


async def test_a_streamed_reply_grows_by_throttled_edits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    clock = TickingClock(step=0.1)
    world, when = await _world(monkeypatch, tmp_path, clock, STORY)
    try:
        world.say("ann", "what's good here?", mention_bot=True)
        await world.settle()
        posts = world.http.to(*SEND)
        edits = world.http.to(*EDIT)
        assert len(posts) == 1
        # Posted early with the first words, then edited until the whole reply shows.
        assert STORY.startswith(posts[0].json["content"]) and posts[0].json["content"] != STORY
        assert edits and edits[-1].json["content"] == STORY
        contents = [posts[0].json["content"]] + [e.json["content"] for e in edits]
        assert all(len(a) < len(b) for a, b in itertools.pairwise(contents))
        # Never two touches of one message within a second.
        gaps = _gaps_per_message(edits, when, posts)
        assert gaps and min(gaps) >= 1.0
        # Edits keep the reply pinging no one but the asker.
        assert all(e.json["allowed_mentions"]["parse"] == [] for e in edits)
    finally:
        await world.bot.close()


async def test_the_final_edit_waits_for_the_throttle_instead_of_being_lost(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    # Time barely moves: no edit is due while streaming, so the end must wait once.
    clock = TickingClock(step=0.001)
    world, when = await _world(monkeypatch, tmp_path, clock, STORY)
    try:
        world.say("ann", "what's good here?", mention_bot=True)
        await world.settle()
        edits = world.http.to(*EDIT)
        assert len(edits) == 1 and edits[0].json["content"] == STORY
        assert clock.slept and 0 < clock.slept[0] <= 1.0
        assert min(_gaps_per_message(edits, when, world.http.to(*SEND))) >= 1.0
    finally:
        await world.bot.close()


async def test_a_long_streamed_reply_is_split_into_messages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    clock = TickingClock(step=0.2)
    long = " ".join(f"word{i}" for i in range(700))
    world, when = await _world(monkeypatch, tmp_path, clock, long)
    try:
        world.say("ann", "tell me everything", mention_bot=True)
        await world.settle()
        posts = world.http.to(*SEND)
        assert len(posts) == 3
        final: dict[str, str] = {p.response["id"]: p.json["content"] for p in posts}
        for edit in world.http.to(*EDIT):
            final[edit.path.rsplit("/", 1)[1]] = edit.json["content"]
        shown = [final[p.response["id"]] for p in posts]
        assert all(len(part) <= 2000 for part in shown)
        assert " ".join(shown).split() == long.split()
        assert min(_gaps_per_message(world.http.to(*EDIT), when, posts)) >= 1.0
    finally:
        await world.bot.close()


async def test_streaming_through_a_webhook_edits_the_webhook_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    clock = TickingClock(step=0.1)
    world, _ = await _world(monkeypatch, tmp_path, clock, STORY, webhooks=True)
    try:
        world.say("ann", "what's good here?", mention_bot=True)
        await world.settle()
        [post] = world.http.to(*EXECUTE)
        edits = world.http.to(*EDIT_HOOK_MESSAGE)
        assert post.json["username"] == "Brenna"
        assert edits and edits[-1].json["content"] == STORY
        assert all(e.path.split("/")[2] == post.path.split("/")[2] for e in edits)
    finally:
        await world.bot.close()
