"""Slash commands through discord.py's own command tree: defer first, then follow-ups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import payloads
import pytest
from http_recorder import Call, FakeDiscord, make_agent, make_config, start_bot

from personae.integrations.discord.bot import PersonaeBot
from personae.integrations.discord.facts import Place
from personae.integrations.discord.runner import scope_for
from personae.integrations.discord.state import DiscordState
from personae.testing import FakeChatModel

CALLBACK = ("POST", "/interactions/{webhook_id}/{webhook_token}/callback")
FOLLOWUP = ("POST", "/webhooks/{webhook_id}/{webhook_token}")
SEND = ("POST", "/channels/{channel_id}/messages")
EPHEMERAL = 64


def _maker(tmp_path: Path, *, memory: bool = False, **config: Any) -> Any:
    def make(ids: dict[str, str]) -> PersonaeBot:
        agents = {
            "brenna": make_agent(tmp_path, "brenna", "Brenna", FakeChatModel(default="Welcome!"),
                                 memory=memory),
            "torvin": make_agent(tmp_path, "torvin", "Torvin", FakeChatModel(default="Hmph."),
                                 memory=memory),
        }
        cfg = make_config(tmp_path, list(agents), default_persona="brenna", webhooks=False,
                          **config)
        return PersonaeBot(cfg, agents=agents, state=DiscordState(tmp_path / "state.sqlite"))

    return make


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    found = await start_bot(monkeypatch, _maker(tmp_path, admin_roles=["Moderators"]))
    yield found
    await found.bot.close()


def _answers(world: FakeDiscord, interaction: dict[str, Any]) -> list[Call]:
    """The calls answering one interaction: its callback, then follow-ups by its token."""
    token = interaction["token"]
    return [c for c in world.http.calls if token in c.path]


def _followups(world: FakeDiscord, interaction: dict[str, Any]) -> list[dict[str, Any]]:
    return [c.json for c in _answers(world, interaction) if c.key == FOLLOWUP]


def _assert_deferred_first(world: FakeDiscord, interaction: dict[str, Any], *,
                           ephemeral: bool) -> None:
    answers = _answers(world, interaction)
    assert answers, "the interaction was never answered"
    first = answers[0]
    assert first.key == CALLBACK
    assert first.json["type"] == 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert bool((first.json.get("data") or {}).get("flags", 0) & EPHEMERAL) is ephemeral
    # Nothing else went to Discord for this interaction before the defer.
    assert world.http.calls.index(first) < min(world.http.calls.index(c) for c in answers[1:])


def _set(persona: str, where: str | None = None) -> list[dict[str, Any]]:
    options = [payloads.command_option("persona", persona)]
    if where is not None:
        options.append(payloads.command_option("where", where))
    return [payloads.subcommand("set", options)]


async def test_persona_set_needs_manage_server_checked_in_code(world: FakeDiscord) -> None:
    # Default permissions can be changed by any admin; a member without Manage Server
    # must still be refused.
    asked = world.slash("ann", "persona", _set("torvin"))
    await world.settle()
    _assert_deferred_first(world, asked, ephemeral=True)
    [reply] = _followups(world, asked)
    assert "Manage Server" in reply["content"] and reply["flags"] & EPHEMERAL
    assert await world.bot.state.persona_overrides() == {}
    world.say("ann", "hello", mention_bot=True)
    await world.settle()
    assert world.http.to(*SEND)[-1].json["content"] == "Welcome!"


async def test_persona_set_by_an_admin_changes_who_speaks_and_persists(
    world: FakeDiscord, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    asked = world.slash("ann", "persona", _set("torvin"),
                        permissions=payloads.EVERYONE_PERMISSIONS | payloads.MANAGE_GUILD)
    await world.settle()
    _assert_deferred_first(world, asked, ephemeral=True)
    assert "Torvin" in _followups(world, asked)[0]["content"]
    general = int(world.channel_id("general"))
    assert await world.bot.state.persona_overrides() == {general: "torvin"}
    world.say("ann", "hello", mention_bot=True)
    world.say("ann", "hello", channel="quiet", mention_bot=True)
    await world.settle()
    contents = sorted(c.json["content"] for c in world.http.to(*SEND))
    assert contents == ["Hmph.", "Welcome!"]
    # After a restart the override still holds.
    await world.bot.close()
    again = await start_bot(monkeypatch, _maker(tmp_path), again=world)
    try:
        again.say("bob", "hi", mention_bot=True)
        await again.settle()
        assert again.http.to(*SEND)[-1].json["content"] == "Hmph."
    finally:
        await again.bot.close()


async def test_persona_set_by_an_admin_role_for_the_whole_server(world: FakeDiscord) -> None:
    role = next(r for r in world.guild["roles"] if r["name"] == "Moderators")
    asked = world.slash("bob", "persona", _set("torvin", "server"), roles=[role["id"]])
    await world.settle()
    assert await world.bot.state.persona_overrides() == {int(world.guild["id"]): "torvin"}
    assert "this server" in _followups(world, asked)[0]["content"]


async def test_persona_set_refuses_an_unknown_persona(world: FakeDiscord) -> None:
    asked = world.slash("ann", "persona", _set("dragon"), permissions=payloads.MANAGE_GUILD)
    await world.settle()
    reply = _followups(world, asked)[0]["content"]
    assert "dragon" in reply and "brenna" in reply and "torvin" in reply
    assert await world.bot.state.persona_overrides() == {}


async def test_persona_show(world: FakeDiscord) -> None:
    asked = world.slash("ann", "persona", [payloads.subcommand("show")])
    await world.settle()
    _assert_deferred_first(world, asked, ephemeral=True)
    [reply] = _followups(world, asked)
    assert "Brenna (brenna)" in reply["content"] and "default_persona" in reply["content"]
    assert reply["flags"] & EPHEMERAL


async def test_ask_answers_publicly_after_deferring(world: FakeDiscord) -> None:
    asked = world.slash("bob", "ask", [payloads.command_option("question", "any rooms?")])
    await world.settle()
    _assert_deferred_first(world, asked, ephemeral=False)
    [reply] = _followups(world, asked)
    assert "Welcome!" in reply["content"]
    assert not reply.get("flags", 0) & EPHEMERAL
    assert reply["allowed_mentions"] == {"parse": [], "users": [int(world.users["bob"]["id"])],
                                         "replied_user": True}


async def test_forget_me_erases_the_callers_memories_in_that_scope(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    world = await start_bot(monkeypatch, _maker(tmp_path, memory=True))
    try:
        place = Place(int(world.guild["id"]), int(world.channels["general"]["parent_id"]),
                      int(world.channel_id("general")), None, False)
        agent = world.bot.agents["brenna"]
        ann = int(world.users["ann"]["id"])
        bob = int(world.users["bob"]["id"])
        await agent.remember(scope_for("brenna", ann, place), "Ann keeps bees")
        await agent.remember(scope_for("brenna", bob, place), "Bob owns the mill")
        shown = world.slash("ann", "memory")
        await world.settle()
        _assert_deferred_first(world, shown, ephemeral=True)
        [memory] = _followups(world, shown)
        assert "Ann keeps bees" in memory["content"] and "Bob" not in memory["content"]
        assert memory["flags"] & EPHEMERAL

        forgot = world.slash("ann", "forget", [payloads.subcommand("me")])
        await world.settle()
        _assert_deferred_first(world, forgot, ephemeral=True)
        assert "erased 1 memory" in _followups(world, forgot)[0]["content"]
        store = agent.memory
        assert store.list(scope_for("brenna", ann, place)) == []
        assert [r.text for r in store.list(scope_for("brenna", bob, place))] == [
            "Bob owns the mill"]

        shown = world.slash("ann", "memory")
        await world.settle()
        assert "nothing" in _followups(world, shown)[0]["content"]
    finally:
        await world.bot.close()


async def test_commands_sync_only_when_asked(world: FakeDiscord) -> None:
    assert world.http.to("PUT", "/applications/{application_id}/commands") == []
    synced = await world.bot.tree.sync()
    names = sorted(c.name for c in synced)
    assert names == ["ask", "forget", "memory", "persona"]
    [put] = world.http.to("PUT", "/applications/{application_id}/commands")
    persona = next(c for c in put.json if c["name"] == "persona")
    assert sorted(o["name"] for o in persona["options"]) == ["set", "show"]
