"""Record a session to JSONL, replay it with no model running, and see what differs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from npc_fixtures import NPCS, SCENE, FakeClock, Game, call, make_server

from personae.errors import IntegrationError
from personae.integrations.game.limits import NpcLimits
from personae.integrations.game.recording import Recorder, areplay, replay
from personae.personas.loading import load_persona
from personae.testing import FakeChatModel


def _script() -> list[Any]:
    return [
        AIMessage("", tool_calls=[
            call("give_item", {"item": "key", "target": "p1"}, "c1"),
            call("give_item", {"item": "ale", "target": "nobody"}, "c2"),
            call("show_emotion", {"emotion": "happy"}, "c3"),
            call("change_relationship", {"actor": "p1", "change": 0.2, "reason": "polite"},
                 "c4"),
        ]),
        AIMessage("Here's the key. Room three, up the stairs!"),
        "Oi! That mug was my aunt's.",
        "Did it work? Good.",
        "Back so soon?",
    ]


async def _record(path: Path, tmp_path: Path, model: Any, **kwargs: Any) -> None:
    clock = FakeClock()
    server = make_server(tmp_path / "rec", model, recorder=Recorder(path), clock=clock,
                         limits=NpcLimits(cooldown=1.0), **kwargs)
    game = Game(server)
    await game.hello(capabilities={"streaming": True}, world="w1", slot="s1")
    await game.send(SCENE)
    await game.say("brenna", "A room, please.", "s1")
    clock.now += 0.5
    await game.say("brenna", "And a bath?", "s1b")
    clock.now += 5
    (action,) = [m for m in game.out if m["type"] == "action"]
    await game.send({"type": "action_result", "id": "r1", "action_id": action["action_id"],
                     "ok": True})
    await game.send({"type": "event", "id": "e1", "npc": "brenna", "actor": "p1",
                     "description": "Ann knocks a mug off the bar",
                     "witnesses": ["brenna", "torvin"]})
    await game.session.drain()
    await game.send({"type": "save", "id": "save1"})
    await game.session.drain()
    clock.now += 5
    await game.say("brenna", "Did the key work?", "s2")
    await game.send('{"type": "say", oops')
    await game.send({"type": "load", "id": "load1", "blob": game.to("save1")[0]["blob"]})
    await game.session.drain()
    clock.now += 5
    await game.say("brenna", "Hello!", "s3")
    await server.aclose()


async def test_a_replay_sends_the_same_messages(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    await _record(path, tmp_path, FakeChatModel(responses=_script()))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["kind"] == "header" and lines[0]["chains"]["brenna"] == ["fake", "offline"]
    kinds = {line["kind"] for line in lines}
    assert kinds == {"header", "in", "out", "model", "gate"}
    model_lines = [line for line in lines if line["kind"] == "model"]
    assert model_lines[0]["messages"][0]["type"] == "ai"
    assert any(line["kind"] == "out" and line["message"]["type"] == "no_response"
               and line["message"]["reason"] == "cooldown" for line in lines)

    report = await areplay(path)
    assert report.equal, report.summary()
    assert report.sessions == 1 and report.received == 11
    assert report.expected == report.actual > 20
    assert report.summary().endswith("same")


async def test_an_edited_persona_shows_up_as_differences(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    await _record(path, tmp_path, FakeChatModel(responses=_script()))
    edited = load_persona(NPCS / "brenna.yaml")
    action = edited.actions[0]
    action.parameters["properties"]["item"]["enum"] = ["ale", "stew"]
    edited.emotions = ["wary", "angry"]

    report = await areplay(path, personas=[edited])
    assert not report.equal
    changed = {(d.reply_to, (d.expected or d.actual or {}).get("type")) for d in report.differences}
    # The key may no longer be given, nor happiness shown.
    assert ("s1", "action") in changed and ("s1", "emotion") in changed
    missing = [d for d in report.differences if d.actual is None]
    assert any(d.expected and d.expected["type"] == "action" for d in missing)
    reply = next(d for d in report.differences
                 if d.reply_to == "s1" and d.expected and d.expected["type"] == "reply")
    assert "actions" in reply.fields() and "emotion" in reply.fields()
    assert "session 1, request 's1', npc 'brenna'" in report.summary()


async def test_offline_answers_and_fallbacks_replay_without_any_model(tmp_path: Path) -> None:
    path = tmp_path / "offline.jsonl"
    # The first model fails for good (not a transient error): the offline
    # model answers, and the reply says so.
    failing = FakeChatModel(responses=[ValueError("bad request")] * 5)
    server = make_server(tmp_path / "rec", failing, recorder=Recorder(path))
    game = Game(server)
    await game.hello()
    out = await game.say("brenna", "Do you have a room for the night?", "s1")
    assert out[-1]["flags"] == ["offline", "fallback"]
    await game.say("torvin", "Can I pass?", "s2")
    await server.aclose()

    report = await areplay(path)
    assert report.equal, report.summary()


def test_replay_from_the_command_line_is_blocking(tmp_path: Path) -> None:
    path = tmp_path / "cli.jsonl"

    async def record() -> None:
        server = make_server(tmp_path / "rec", FakeChatModel(responses=["Aye.", "Nay."]),
                             recorder=Recorder(path))
        game = Game(server)
        await game.hello()
        await game.say("brenna", "Ale?", "1")
        await game.say("torvin", "Pass?", "2")
        await server.aclose()

    asyncio.run(record())
    report = replay(path)
    assert report.equal and report.expected == 5


def test_unreadable_recordings_are_reported(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(IntegrationError, match="not a personae game recording"):
        replay(empty)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"kind": "header", "format": "personae-game-recording"}\n{oops\n')
    with pytest.raises(IntegrationError, match=r"broken\.jsonl:2: is not JSON"):
        replay(broken)
