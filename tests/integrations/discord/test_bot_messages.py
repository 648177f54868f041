"""The bot answering messages: real discord.py, gateway events in, recorded HTTP calls out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import payloads
import pytest
from http_recorder import FakeDiscord, make_agent, make_config, start_bot

from personae.integrations.discord.bot import PersonaeBot
from personae.integrations.discord.state import DiscordState
from personae.testing import FakeChatModel

SEND = ("POST", "/channels/{channel_id}/messages")
TYPING = ("POST", "/channels/{channel_id}/typing")


async def running(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *,
                  model: FakeChatModel | None = None, **config: Any) -> FakeDiscord:
    config.setdefault("webhooks", False)
    cfg = make_config(tmp_path, ["brenna"], **config)
    agent = make_agent(tmp_path, "brenna", "Brenna", model or FakeChatModel(default="Hello!"))
    state = DiscordState(tmp_path / "state.sqlite")
    return await start_bot(monkeypatch, lambda ids: PersonaeBot(cfg, agents={"brenna": agent},
                                                                state=state))


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    found = await running(monkeypatch, tmp_path)
    yield found
    await found.bot.close()


async def test_login_and_ready_go_through_discord_py(world: FakeDiscord) -> None:
    assert world.http.routes()[:2] == [("GET", "/users/@me"),
                                       ("GET", "/oauth2/applications/@me")]
    assert world.bot.user.id == int(world.me["id"])
    guild = world.bot.get_guild(int(world.guild["id"]))
    assert guild is not None and guild.get_channel(int(world.channel_id("general"))) is not None


async def test_a_mention_gets_a_reply_to_the_message(world: FakeDiscord) -> None:
    asked = world.say("ann", "do you have a room?", mention_bot=True)
    await world.settle()
    sent = world.http.to(*SEND)
    assert len(sent) == 1
    body = sent[0].json
    assert body["content"] == "Hello!"
    assert sent[0].path == f"/channels/{world.channel_id('general')}/messages"
    # A reply to the question that survives the question being deleted meanwhile.
    assert body["message_reference"] == {"type": 0, "message_id": int(asked["id"]),
                                         "channel_id": int(asked["channel_id"]),
                                         "guild_id": int(world.guild["id"]),
                                         "fail_if_not_exists": False}
    # Only the asker may be pinged, never everyone, roles or other users.
    assert body["allowed_mentions"] == {"parse": [], "users": [int(world.users["ann"]["id"])],
                                        "replied_user": True}
    # The typing indicator was on while the answer was written.
    assert world.http.routes().index(TYPING) < world.http.routes().index(SEND)


async def test_no_mention_no_reply(world: FakeDiscord) -> None:
    world.say("ann", "nice weather today")
    await world.settle()
    assert world.http.to(*SEND) == []
    _, decision = world.bot.decisions[-1]
    assert (decision.answer, decision.rule) == (False, "quiet")


async def test_a_role_mention_of_the_bot_counts_as_a_mention(world: FakeDiscord) -> None:
    role = next(r for r in world.guild["roles"] if r.get("tags", {}).get("bot_id"))
    world.say("ann", f"<@&{role['id']}> hello", mention_roles=[role["id"]])
    await world.settle()
    assert len(world.http.to(*SEND)) == 1
    assert world.bot.decisions[-1][1].rule == "role_mention"


async def test_a_direct_message_is_answered_without_a_mention(world: FakeDiscord) -> None:
    world.say("bob", "hi there", channel="dm")
    await world.settle()
    sent = world.http.to(*SEND)
    assert len(sent) == 1
    assert sent[0].path == f"/channels/{world.dm_channel('bob')['id']}/messages"
    assert world.bot.decisions[-1][1].rule == "dm"


async def test_the_bot_ignores_its_own_messages_and_other_bots(world: FakeDiscord) -> None:
    world.users["me"] = world.me
    world.say("me", "I said this", mention_bot=True)
    world.say("otherbot", "beep", mention_bot=True)
    await world.settle()
    assert world.http.to(*SEND) == []
    assert [d.rule for _, d in world.bot.decisions] == ["self", "bot"]


async def test_a_reply_to_the_bot_is_answered_with_the_reply_chain_as_context(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    model = FakeChatModel(default="Two silver.")
    world = await running(monkeypatch, tmp_path, model=model)
    try:
        world.say("ann", "how much is a room?", mention_bot=True)
        await world.settle()
        answer = world.http.to(*SEND)[0].response
        # Ann replies to the bot's answer without mentioning it.
        world.say("ann", "and with breakfast?", reply_to=answer)
        await world.settle()
        assert len(world.http.to(*SEND)) == 2
        assert world.bot.decisions[-1][1].rule == "reply"
        prompt = "\n".join(str(m.content) for m in model.calls[-1])
        # The message replied to is in the context the model saw.
        assert "Two silver." in prompt and "and with breakfast?" in prompt
    finally:
        await world.bot.close()


async def test_a_reply_chain_is_fetched_when_the_gateway_did_not_resolve_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    model = FakeChatModel(default="Noted.")
    world = await running(monkeypatch, tmp_path, model=model, context_messages=0)
    try:
        # Written before the bot started: not in discord.py's message cache.
        first = payloads.message(world.channel_id("general"), world.users["bob"],
                                 "the dragon sleeps under the mill", guild_id=world.guild["id"])
        world.http.know_message(first)
        second = world.say("ann", "are you sure?", reply_to=first)
        await world.settle()
        world.say("bob", "what do you think, Brenna?", mention_bot=True, reply_to=second)
        await world.settle()
        fetched = [c.path for c in world.http.to("GET",
                                                 "/channels/{channel_id}/messages/{message_id}")]
        assert f"/channels/{world.channel_id('general')}/messages/{first['id']}" in fetched
        prompt = "\n".join(str(m.content) for m in model.calls[-1])
        assert "the dragon sleeps under the mill" in prompt and "are you sure?" in prompt
    finally:
        await world.bot.close()


async def test_recent_channel_messages_are_context(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    model = FakeChatModel(default="Indeed.")
    world = await running(monkeypatch, tmp_path, model=model)
    try:
        world.say("bob", "the well in the square ran dry")
        world.say("ann", "Brenna, did you hear that?", mention_bot=True)
        await world.settle()
        history = world.http.to("GET", "/channels/{channel_id}/messages")
        assert history and history[0].params["limit"] == 20
        prompt = "\n".join(str(m.content) for m in model.calls[-1])
        assert "the well in the square ran dry" in prompt
    finally:
        await world.bot.close()


async def test_thread_messages_use_the_thread_history_and_scope(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    model = FakeChatModel(default="Onward.")
    world = await running(monkeypatch, tmp_path, model=model)
    try:
        world.say("bob", "we leave at dawn", channel="quest")
        world.say("ann", "ready?", channel="quest", mention_bot=True)
        await world.settle()
        sent = world.http.to(*SEND)
        assert [c.path for c in sent] == [f"/channels/{world.channel_id('quest')}/messages"]
        history = world.http.to("GET", "/channels/{channel_id}/messages")
        assert history[0].path == f"/channels/{world.channel_id('quest')}/messages"
        prompt = "\n".join(str(m.content) for m in model.calls[-1])
        assert "we leave at dawn" in prompt
    finally:
        await world.bot.close()


async def test_long_replies_are_split_and_pings_neutralised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    long = ("@everyone listen: " + "word " * 700).strip()
    world = await running(monkeypatch, tmp_path, model=FakeChatModel(default=long))
    try:
        world.say("ann", "tell me a story", mention_bot=True)
        await world.settle()
        sent = world.http.to(*SEND)
        assert len(sent) == 2
        contents = [c.json["content"] for c in sent]
        assert all(len(text) <= 2000 for text in contents)
        assert "@everyone" not in contents[0] and "@\u200deveryone" in contents[0]
        # Only the first part replies to the question; every part pings no one else.
        assert "message_reference" in sent[0].json and "message_reference" not in sent[1].json
        assert all(c.json["allowed_mentions"]["parse"] == [] for c in sent)
        assert " ".join(" ".join(contents).split()) == " ".join(
            long.replace("@everyone", "@\u200deveryone").split())
    finally:
        await world.bot.close()


async def test_without_the_content_intent_mentions_still_work(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    cfg = make_config(tmp_path, ["brenna"], webhooks=False, policy={"wake_words": ["brenna"]})
    agent = make_agent(tmp_path, "brenna", "Brenna", FakeChatModel(default="Yes?"))
    state = DiscordState(tmp_path / "state.sqlite")
    # The portal has not granted the intent: the bot must not ask for it (Discord would
    # close the gateway), and works with what it can read.
    world = await start_bot(monkeypatch, lambda ids: PersonaeBot(cfg, agents={"brenna": agent},
                                                                 state=state), app_flags=0)
    try:
        assert world.bot.intents.message_content is False
        world.say("ann", "", mention_bot=False)  # what Discord sends: no text
        world.say("ann", "brenna?", mention_bot=True)
        await world.settle()
        decisions = [d for _, d in world.bot.decisions]
        assert decisions[0].answer is False and "message-content intent" in decisions[0].reason
        assert decisions[1].rule == "mention"
        assert len(world.http.to(*SEND)) == 1
    finally:
        await world.bot.close()
