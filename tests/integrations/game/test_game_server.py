"""The game dispatcher end to end: scripted models, affordances, emotions, relationships,
several NPCs at once, ordering, events and witnesses, cancel, limits."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk
from npc_fixtures import SCENE, FakeClock, Game, call, make_server

from personae.errors import ConfigError
from personae.integrations.game.limits import NpcLimits
from personae.integrations.game.protocol import server_adapter
from personae.scope import Scope
from personae.testing import FakeChatModel, FakeEmbeddings


def _scope(npc: str, player: str = "p1", slot: str = "default") -> Scope:
    return Scope(persona=npc, user=player, world="default", save_slot=slot)


async def test_say_with_actions_emotion_and_relationship(tmp_path: Path) -> None:
    model = FakeChatModel(responses=[
        AIMessage("", tool_calls=[
            call("give_item", {"item": "key", "target": "p1"}, "c1"),
            call("give_item", {"item": "ale", "target": "guard"}, "c2"),
            call("ring_bell", {}, "c3"),
            call("show_emotion", {"emotion": "happy"}, "c4"),
            call("change_relationship", {"actor": "p1", "change": 0.3, "reason": "paid"}, "c5"),
        ]),
        AIMessage("Here's your **key**, love! Room three is up the stairs 🍺"),
    ])
    server = make_server(tmp_path, model)
    game = Game(server)
    welcome = await game.hello(capabilities={"streaming": True})
    assert welcome["type"] == "welcome" and welcome["npcs"] == ["brenna", "torvin"]
    await game.send(SCENE)
    assert game.types("scene-1") == ["ack"]

    out = await game.say("brenna", "A room and the key, please.", "s1")
    for message in out:
        server_adapter.validate_python(message)
    kinds = [m["type"] for m in out]
    assert kinds[-1] == "reply" and kinds.count("reply") == 1

    actions = [m for m in out if m["type"] == "action"]
    assert [(a["name"], a["target"], a["action_id"]) for a in actions] == [
        ("give_item", "p1", "s1:brenna:1")
    ]
    assert actions[0]["arguments"] == {"item": "key", "target": "p1"}
    # The refused calls went back to the model, saying why.
    results = {m.tool_call_id: m for m in model.calls[-1] if isinstance(m, ToolMessage)}
    assert results["c2"].status == "error" and "'guard' is not available" in results["c2"].text
    assert "'p1'" in results["c2"].text and "'tam'" in results["c2"].text
    assert results["c3"].status == "error" and "not possible here and now" in results["c3"].text

    assert [m["emotion"] for m in out if m["type"] == "emotion"] == ["happy"]
    (relationship,) = [m for m in out if m["type"] == "relationship"]
    assert relationship["actor"] == "p1" and relationship["value"] == 0.3
    assert relationship["reason"] == "paid"

    sentences = [m["text"] for m in out if m["type"] == "sentence"]
    assert sentences == ["Here's your key, love!", "Room three is up the stairs"]
    assert [m["index"] for m in out if m["type"] == "sentence"] == [0, 1]
    deltas = "".join(m["text"] for m in out if m["type"] == "delta")
    assert deltas == "Here's your **key**, love! Room three is up the stairs 🍺"
    reply = out[-1]
    assert reply["text"] == "Here's your key, love! Room three is up the stairs"
    assert reply["actions"] == ["s1:brenna:1"] and reply["emotion"] == "happy"

    # The model saw the scene: location, who is present with ids, the regard
    # the game gave for Tam, and what it can do now.
    system = model.calls[0][0].text
    assert "The Copper Kettle, common room" in system and "Old Tam (id tam)" in system
    assert "friendly (0.50)" in system and "give_item (targets: p1, tam)" in system
    assert "ring_bell" not in model.bound_tools and "give_item" in model.bound_tools
    await server.aclose()


async def test_relationship_is_clamped_kept_and_shown_next_turn(tmp_path: Path) -> None:
    model = FakeChatModel(responses=[
        AIMessage("", tool_calls=[call("change_relationship", {"actor": "p1", "change": -0.5},
                                       "r1")]),
        AIMessage("Out!"),
        AIMessage("", tool_calls=[call("change_relationship", {"actor": "p1", "change": -0.5},
                                       "r2"),
                                  call("change_relationship", {"actor": "ghost", "change": 0.2},
                                       "r3")]),
        AIMessage("And stay out!"),
        AIMessage("", tool_calls=[call("change_relationship", {"actor": "p1", "change": -0.5},
                                       "r4")]),
        AIMessage("Go."),
        AIMessage("Hmph."),
    ])
    server = make_server(tmp_path, model)
    game = Game(server)
    await game.hello()
    await game.send(SCENE)
    values = []
    for i in range(3):
        out = await game.say("brenna", "Your ale is swill.", f"s{i}")
        values += [(m["value"], m["change"]) for m in out if m["type"] == "relationship"]
    assert values == [(-0.5, -0.5), (-1.0, -0.5), (-1.0, 0.0)]
    refused = [m for m in model.calls[3] if isinstance(m, ToolMessage) and m.tool_call_id == "r3"]
    assert refused[0].status == "error" and "'ghost' is not present" in refused[0].text
    await game.say("brenna", "Sorry.", "s3")
    assert "hostile (-1.00)" in model.calls[-1][0].text
    await server.aclose()


async def test_without_the_actions_capability_no_action_is_offered_or_sent(
    tmp_path: Path,
) -> None:
    model = FakeChatModel(responses=[
        AIMessage("", tool_calls=[call("give_item", {"item": "ale", "target": "p1"}, "c1")]),
        AIMessage("Nothing for you."),
    ])
    server = make_server(tmp_path, model)
    game = Game(server)
    await game.hello(capabilities={"actions": False, "emotions": False, "sentences": False})
    out = await game.say("brenna", "An ale!", "s1")
    assert [m["type"] for m in out] == ["reply"]
    assert "give_item" not in model.bound_tools
    assert [m.status for m in model.calls[-1] if isinstance(m, ToolMessage)] == ["error"]
    await server.aclose()


async def test_action_result_is_told_to_the_npc(tmp_path: Path) -> None:
    model = FakeChatModel(responses=[
        AIMessage("", tool_calls=[call("give_item", {"item": "key", "target": "p1"}, "c1")]),
        AIMessage("Here."),
        AIMessage("Sorry about that."),
    ])
    server = make_server(tmp_path, model)
    game = Game(server)
    await game.hello()
    await game.send(SCENE)
    out = await game.say("brenna", "The key?", "s1")
    (action,) = [m for m in out if m["type"] == "action"]
    await game.send({"type": "action_result", "id": "r1", "action_id": action["action_id"],
                     "ok": False, "detail": "the player's bag is full"})
    await game.session.drain()
    assert game.types("r1") == ["ack"]
    await game.say("brenna", "Did I get it?", "s2")
    seen = [m.text for m in model.calls[-1] if isinstance(m, HumanMessage)]
    assert "[Your action give_item on p1 failed: the player's bag is full]" in seen
    # Each result once: a second report of the same action is an error.
    await game.send({"type": "action_result", "id": "r2", "action_id": action["action_id"],
                     "ok": True})
    assert game.to("r2")[0]["code"] == "unknown_action"
    await server.aclose()


class _GatedModel(FakeChatModel):
    """Streams its reply only once every NPC sharing `barrier` has started answering."""

    barrier: Any = None

    async def _astream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        await asyncio.wait_for(self.barrier.wait(), timeout=10)
        async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
            yield chunk


async def test_npcs_answer_at_once_and_one_player_in_order(tmp_path: Path) -> None:
    barrier = asyncio.Barrier(2)
    brenna = _GatedModel(responses=["Brenna here."], barrier=barrier)
    torvin = _GatedModel(responses=["Torvin here."], barrier=barrier)
    server = make_server(tmp_path, {"brenna": brenna, "torvin": torvin})
    game = Game(server)
    await game.hello()
    # Each model waits until both have been called: answered one after the
    # other, neither would ever finish.
    await game.send({"type": "say", "id": "a", "npc": "brenna", "text": "Hi"})
    await game.send({"type": "say", "id": "b", "npc": "torvin", "text": "Hi"})
    await asyncio.wait_for(game.session.drain(), timeout=20)
    assert game.to("a")[-1]["text"] == "Brenna here."
    assert game.to("b")[-1]["text"] == "Torvin here."

    ordered = FakeChatModel(responses=["one", "two", "three"])
    server2 = make_server(tmp_path / "2", ordered)
    game2 = Game(server2)
    await game2.hello()
    for i, text in enumerate(["first", "second", "third"]):
        await game2.send({"type": "say", "id": f"m{i}", "npc": "brenna", "text": text})
    await game2.session.drain()
    assert [game2.to(f"m{i}")[-1]["text"] for i in range(3)] == ["one", "two", "three"]
    history = await server2.npcs["brenna"].agent.history(_scope("brenna", "player"))
    assert [m.text for m in history] == ["first", "one", "second", "two", "third", "three"]
    await server.aclose()
    await server2.aclose()


async def test_events_reach_witnesses_only(tmp_path: Path) -> None:
    model = FakeChatModel(responses=["Oi, pick that up!"])
    server = make_server(tmp_path, model, memory=True, embedder=FakeEmbeddings())
    game = Game(server)
    await game.hello()
    await game.send({"type": "world", "id": "w", "time": "Day 3, evening"})
    await game.send({"type": "event", "id": "e1", "npc": "brenna", "actor": "p1",
                     "description": "Ann smashes a mug on the floor",
                     "witnesses": ["brenna", "torvin"], "react": "auto"})
    await game.send({"type": "event", "id": "e2", "description": "Ann hides a dagger",
                     "actor": "p1",
                     "witnesses": ["torvin"], "react": "never"})
    await game.session.drain()
    assert game.types("e1", "brenna")[-1] == "reply"
    assert game.to("e1", "brenna")[-1]["text"] == "Oi, pick that up!"
    assert game.to("e1", "torvin")[0]["reason"] == "not_addressed"
    assert game.to("e2", "torvin")[0]["reason"] == "witness_only"
    assert game.to("e2", "brenna") == []

    brenna, torvin = server.npcs["brenna"].agent, server.npcs["torvin"].agent
    said_to_brenna = " ".join(m.text for m in await brenna.history(_scope("brenna")))
    said_to_torvin = " ".join(m.text for m in await torvin.history(_scope("torvin")))
    assert "smashes a mug" in said_to_brenna and "dagger" not in said_to_brenna
    assert "smashes a mug" in said_to_torvin and "dagger" in said_to_torvin

    await server.npcs["brenna"].agent.memory_mark()
    store = brenna.memory
    assert store is not None
    remembered = {
        npc: [r for r in store.list(_scope(npc)) if r.text.startswith("Witnessed")]
        for npc in ("brenna", "torvin")
    }
    assert [r.text for r in remembered["brenna"]] == ["Witnessed: Ann smashes a mug on the floor"]
    assert sorted(r.text for r in remembered["torvin"]) == [
        "Witnessed: Ann hides a dagger", "Witnessed: Ann smashes a mug on the floor"]
    assert all(r.game_time == "Day 3, evening" for r in remembered["torvin"])
    assert remembered["torvin"][0].scope == {"user": "p1", "world": "default",
                                             "save_slot": "default"}
    await server.aclose()


class _BlockedModel(FakeChatModel):
    """Hangs on its first call (until cancelled), then answers from its script."""

    started: Any = None

    async def _astream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if not self.started.is_set():
            self.started.set()
            await asyncio.Event().wait()
        async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
            yield chunk


async def test_cancel_stops_an_answer_and_the_npc_answers_the_next(tmp_path: Path) -> None:
    model = _BlockedModel(started=asyncio.Event(), responses=["Short version: no."])
    server = make_server(tmp_path, model)
    game = Game(server)
    await game.hello()
    for request, text in [("s1", "Tell me a long story"), ("s2", "And another"),
                          ("s3", "Or a short one")]:
        await game.send({"type": "say", "id": request, "npc": "brenna", "text": text})
    await asyncio.wait_for(model.started.wait(), timeout=10)
    # s2 waits behind s1 and has not started: it is cancelled all the same.
    for request in ("s2", "s1"):
        await game.send({"type": "cancel", "id": f"c-{request}", "target": request})
        assert game.to(request) == [{"type": "no_response", "id": f"{request}:brenna:none",
                                     "reply_to": request, "npc": "brenna",
                                     "reason": "cancelled"}]
        assert game.types(f"c-{request}") == ["ack"]
    await game.send({"type": "cancel", "id": "c-late", "target": "s1"})
    assert game.types("c-late") == ["ack"]
    await game.session.drain()
    assert game.to("s3")[-1]["text"] == "Short version: no."
    history = await server.npcs["brenna"].agent.history(_scope("brenna", "player"))
    assert [m.text for m in history][-2:] == ["Or a short one", "Short version: no."]
    assert "And another" not in [m.text for m in history]
    await server.aclose()


class _MeteredModel(FakeChatModel):
    """Reports token usage on the last streamed chunk, as OpenAI-compatible servers do."""

    def _chunks(self, message: AIMessage) -> Iterator[ChatGenerationChunk]:
        chunks = list(super()._chunks(message))
        last = chunks[-1].message.model_copy(update={"usage_metadata": message.usage_metadata})
        return iter([*chunks[:-1], ChatGenerationChunk(message=last)])


async def test_cooldown_and_token_budget_with_a_fake_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    usage: Any = {"input_tokens": 60, "output_tokens": 40, "total_tokens": 100}
    model = _MeteredModel(responses=[AIMessage(f"Reply {i}.", usage_metadata=usage)
                                     for i in range(5)])
    server = make_server(tmp_path, model, clock=clock,
                         limits=NpcLimits(cooldown=5.0, tokens=200, window=60.0))
    game = Game(server)
    await game.hello()
    assert (await game.say("brenna", "one", "a"))[-1]["type"] == "reply"
    clock.now += 2
    assert (await game.say("brenna", "two", "b")) == [{
        "type": "no_response", "id": "b:brenna:none", "reply_to": "b", "npc": "brenna",
        "reason": "cooldown", "retry_after": 3.0}]
    # Another NPC has its own limits.
    assert (await game.say("torvin", "hello", "t"))[-1]["type"] == "reply"
    clock.now += 3
    assert (await game.say("brenna", "two again", "c"))[-1]["type"] == "reply"
    clock.now += 10
    # 100 + 100 tokens in the window: the budget of 200 is spent until the
    # first answer (at 1000) leaves the 60 s window.
    (refused,) = await game.say("brenna", "three", "d")
    assert (refused["reason"], refused["retry_after"]) == ("budget", 45.0)
    clock.now += 45
    assert (await game.say("brenna", "three again", "e"))[-1]["type"] == "reply"
    await server.aclose()


async def test_the_offline_model_answers_from_authored_lines(tmp_path: Path) -> None:
    server = make_server(tmp_path, None)
    game = Game(server)
    await game.hello()
    out = await game.say("brenna", "Do you have a room for the night?", "s1")
    reply = out[-1]
    assert reply["type"] == "reply" and "offline" in reply["flags"]
    assert reply["text"] == "I do. Two silver a night, and the sheets are fresh."
    assert reply["emotion"] == "happy"
    assert [m["type"] for m in out] == ["sentence", "sentence", "emotion", "reply"]
    await server.aclose()


async def test_time_budget_counts_the_seconds_spent_answering(tmp_path: Path) -> None:
    clock = FakeClock()

    def slow(text: str) -> Any:
        def answer(messages: list[BaseMessage]) -> str:
            clock.now += 4.0  # the model takes four seconds
            return text
        return answer

    model = FakeChatModel(responses=[slow("One."), slow("Two."), slow("Three.")])
    server = make_server(tmp_path, model, clock=clock,
                         limits=NpcLimits(seconds=5.0, window=60.0))
    game = Game(server)
    await game.hello()
    assert (await game.say("brenna", "a", "a"))[-1]["text"] == "One."
    assert (await game.say("brenna", "b", "b"))[-1]["text"] == "Two."
    (refused,) = await game.say("brenna", "c", "c")
    # 8 s spent; the first 4 s (charged at 1004) leave the window at 1064.
    assert (refused["reason"], refused["retry_after"]) == ("budget", 56.0)
    await server.aclose()


async def test_the_longest_ids_a_game_may_use_still_work(tmp_path: Path) -> None:
    server = make_server(tmp_path, FakeChatModel(default="Fine. Really."))
    game = Game(server)
    await game.hello()
    request = "r" * 128
    out = await game.say("brenna", "hi", request)
    assert [m["type"] for m in out] == ["sentence", "sentence", "reply"]
    assert out[-1]["id"] == f"{request}:brenna:reply"
    await server.aclose()


async def test_start_opens_every_npc_before_the_first_say(tmp_path: Path) -> None:
    server = make_server(tmp_path, FakeChatModel(responses=[AIMessage("Evening.")]))
    try:
        await server.start()
        for npc_id in server.npcs:
            assert (tmp_path / "home" / "game" / npc_id / "conversations.sqlite").exists()
        assert gc.get_freeze_count() > 0
        game = Game(server)
        await game.hello()
        out = await game.say("brenna", "Evening!", "s1")
        assert out[-1]["type"] == "reply" and out[-1]["text"] == "Evening."
    finally:
        gc.unfreeze()
        await server.aclose()


def test_admission_slots_below_one_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="admission_slots must be at least 1"):
        make_server(tmp_path, admission_slots=0)
