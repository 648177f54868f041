"""Several personas in one bot, each speaking through the channel's webhook as itself."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import payloads
import pytest
from http_recorder import DiscordError, FakeDiscord, make_agent, make_config, start_bot

from personae.integrations.discord.bot import PersonaeBot
from personae.integrations.discord.state import DiscordState
from personae.testing import FakeChatModel

LIST = ("GET", "/channels/{channel_id}/webhooks")
CREATE = ("POST", "/channels/{channel_id}/webhooks")
EXECUTE = ("POST", "/webhooks/{webhook_id}/{webhook_token}")
EDIT_HOOK = ("PATCH", "/webhooks/{webhook_id}")
SEND = ("POST", "/channels/{channel_id}/messages")

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _maker(tmp_path: Path) -> Any:
    """Brenna (with an avatar) speaks everywhere but in #quiet (Torvin, no avatar) and the
    thread `quest` (Mira, another avatar)."""
    brenna_png = tmp_path / "brenna.png"
    brenna_png.write_bytes(PNG + b"brenna")
    mira_png = tmp_path / "mira.png"
    mira_png.write_bytes(PNG + b"mira")

    def make(ids: dict[str, str]) -> PersonaeBot:
        agents = {
            "brenna": make_agent(tmp_path, "brenna", "Brenna", FakeChatModel(default="Welcome!"),
                                 avatar=brenna_png),
            "torvin": make_agent(tmp_path, "torvin", "Torvin", FakeChatModel(default="Hmph.")),
            "mira": make_agent(tmp_path, "mira", "Mira", FakeChatModel(default="Mira here."),
                               avatar=mira_png),
        }
        config = make_config(tmp_path, list(agents), default_persona="brenna",
                             channels={int(ids["quiet"]): {"persona": "torvin"}},
                             threads={int(ids["quest"]): {"persona": "mira"}})
        return PersonaeBot(config, agents=agents, state=DiscordState(tmp_path / "state.sqlite"))

    return make


async def _world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **kwargs: Any
                 ) -> FakeDiscord:
    return await start_bot(monkeypatch, _maker(tmp_path), **kwargs)


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    found = await _world(monkeypatch, tmp_path)
    yield found
    await found.bot.close()


def _avatar_bytes(data_uri: str) -> bytes:
    return base64.b64decode(data_uri.split(",", 1)[1])


async def test_a_persona_speaks_through_a_new_webhook_with_its_name_and_avatar(
    world: FakeDiscord,
) -> None:
    world.say("ann", "a room, please", mention_bot=True)
    await world.settle()
    general = world.channel_id("general")
    assert [c.path for c in world.http.to(*LIST)] == [f"/channels/{general}/webhooks"]
    created = world.http.to(*CREATE)
    assert len(created) == 1
    assert _avatar_bytes(created[0].json["avatar"]) == PNG + b"brenna"
    executed = world.http.to(*EXECUTE)
    assert len(executed) == 1
    body = executed[0].json
    assert (body["content"], body["username"]) == ("Welcome!", "Brenna")
    # The uploaded avatar is the webhook's own: no per-message URL needed.
    assert "avatar_url" not in body
    assert body["allowed_mentions"] == {"parse": [], "users": [int(world.users["ann"]["id"])],
                                        "replied_user": True}
    assert world.http.to(*SEND) == []


async def test_one_cached_webhook_per_channel(world: FakeDiscord) -> None:
    for text in ("one", "two", "three"):
        world.say("ann", text, mention_bot=True)
        await world.settle()
    assert len(world.http.to(*CREATE)) == 1
    assert len(world.http.to(*LIST)) == 1
    hooks = {c.path.split("/")[2] for c in world.http.to(*EXECUTE)}
    assert len(hooks) == 1 and len(world.http.to(*EXECUTE)) == 3


async def test_a_persona_without_avatar_shows_the_bot_avatar(world: FakeDiscord) -> None:
    world.say("ann", "hello", channel="quiet", mention_bot=True)
    await world.settle()
    created = world.http.to(*CREATE)
    assert created[0].json.get("avatar") is None
    body = world.http.to(*EXECUTE)[0].json
    assert body["username"] == "Torvin"
    assert body["avatar_url"] == world.bot.user.display_avatar.url


async def test_a_thread_uses_its_parents_webhook_and_switches_the_avatar(
    world: FakeDiscord,
) -> None:
    world.say("ann", "hi", mention_bot=True)
    await world.settle()
    world.say("ann", "anyone?", channel="quest", mention_bot=True)
    await world.settle()
    assert len(world.http.to(*CREATE)) == 1
    edits = world.http.to(*EDIT_HOOK)
    assert len(edits) == 1 and _avatar_bytes(edits[0].json["avatar"]) == PNG + b"mira"
    last = world.http.to(*EXECUTE)[-1]
    assert last.json["username"] == "Mira"
    assert last.params["thread_id"] == int(world.channel_id("quest"))
    # The avatar edit came before Mira's message.
    calls = world.http.calls
    assert calls.index(edits[0]) < calls.index(last)


async def test_a_deleted_webhook_is_rebuilt_once(world: FakeDiscord) -> None:
    world.say("ann", "first", mention_bot=True)
    await world.settle()
    old = world.http.to(*CREATE)[0].response["id"]
    world.http.delete_webhook(old)  # a server admin deletes it
    world.say("ann", "second", mention_bot=True)
    await world.settle()
    executed = world.http.to(*EXECUTE)
    assert [c.path.split("/")[2] for c in executed][:2] == [old, old]
    assert len(world.http.to(*CREATE)) == 2
    new = world.http.to(*CREATE)[1].response["id"]
    assert executed[-1].path.split("/")[2] == new and executed[-1].json["content"] == "Welcome!"
    assert len(executed) == 3
    state = await world.bot.state.webhook(int(world.channel_id("general")))
    assert state is not None and state.id == int(new)


async def test_a_webhook_that_cannot_be_rebuilt_is_given_up_after_one_try(
    world: FakeDiscord,
) -> None:
    def deleted_at_once(call: Any) -> Any:
        # Someone deletes every webhook as soon as it is made.
        world.http.delete_webhook(call.path.split("/")[2])
        raise DiscordError(404, 10015, "Unknown Webhook")

    world.http.on(*EXECUTE, deleted_at_once)
    world.say("ann", "hello?", mention_bot=True)
    await world.settle()
    # Two webhooks made (the first, then one rebuild), two tries, then the bot itself.
    assert len(world.http.to(*CREATE)) == 2
    assert len(world.http.to(*EXECUTE)) == 2
    sent = world.http.to(*SEND)
    assert len(sent) == 1 and sent[0].json["content"] == "Welcome!"


async def test_the_bots_own_webhook_messages_are_not_answered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    world = await _world(monkeypatch, tmp_path)
    try:
        world.say("ann", "hello", mention_bot=True)
        await world.settle()
        hook = world.http.to(*CREATE)[0].response
        # The gateway echoes the webhook's message back to the bot.
        world.users["hook"] = payloads.user(hook["id"], "Brenna", bot=True)
        world.say("hook", f"<@{world.me['id']}> Welcome!", webhook_id=hook["id"])
        await world.settle()
        assert world.bot.decisions[-1][1].rule in ("self", "webhook")
        assert len(world.http.to(*EXECUTE)) == 1
    finally:
        await world.bot.close()


async def test_without_manage_webhooks_the_bot_speaks_as_itself(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    perms = payloads.BOT_PERMISSIONS & ~payloads.MANAGE_WEBHOOKS
    world = await _world(monkeypatch, tmp_path, bot_permissions=perms)
    try:
        world.say("ann", "hello", mention_bot=True)
        await world.settle()
        assert world.http.to(*LIST) == world.http.to(*CREATE) == world.http.to(*EXECUTE) == []
        sent = world.http.to(*SEND)
        assert len(sent) == 1 and sent[0].json["content"] == "Welcome!"
    finally:
        await world.bot.close()


async def test_in_direct_messages_the_bot_speaks_as_itself(world: FakeDiscord) -> None:
    world.say("bob", "hello", channel="dm")
    await world.settle()
    assert world.http.to(*CREATE) == world.http.to(*EXECUTE) == []
    assert len(world.http.to(*SEND)) == 1


async def test_the_webhook_survives_a_restart(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    world = await _world(monkeypatch, tmp_path)
    world.say("ann", "hello", mention_bot=True)
    await world.settle()
    hook_id = world.http.to(*CREATE)[0].response["id"]
    await world.bot.close()
    world.http.calls.clear()
    again = await start_bot(monkeypatch, _maker(tmp_path), again=world)
    try:
        again.say("ann", "me again", mention_bot=True)
        await again.settle()
        assert again.http.to(*LIST) == again.http.to(*CREATE) == []
        assert again.http.to(*EXECUTE)[0].path.split("/")[2] == hook_id
    finally:
        await again.bot.close()
