"""Bad input gets an `error` naming the problem and the fix; the session and other NPCs go on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from npc_fixtures import Game, make_server

from personae.integrations.game.protocol import MAX_MESSAGE_BYTES, server_adapter
from personae.testing import FakeChatModel

CASES: list[tuple[str, Any, str, str | None, list[str]]] = [
    # name, data, code, reply_to, words the message must contain
    ("malformed JSON", '{"type": "say", "id": "1", "npc": ', "bad_json", None,
     ["not valid JSON", "one JSON object per message"]),
    ("not UTF-8", b'{"type": "say", "id": "1", "text": "\xff\xfe"}', "bad_json", None,
     ["UTF-8"]),
    ("not an object", "[1, 2, 3]", "bad_message", None, ["not an object", '"type"']),
    ("no type", {"id": "n1", "npc": "brenna"}, "bad_message", "n1",
     ["no `type`", "say", "hello"]),
    ("unknown type", {"type": "shout", "id": "u1"}, "bad_message", "u1",
     ["type='shout' is not a message type", "say"]),
    ("misspelt field", {"type": "say", "id": "f1", "npc": "brenna", "txt": "hi"},
     "bad_message", "f1", ["say.txt: is not a field of `say`", "say.text: is required"]),
    ("wrong value", {"type": "event", "id": "v1", "description": "x", "react": "maybe"},
     "bad_message", "v1", ["event.react='maybe'", "'auto', 'always' or 'never'"]),
    ("huge message", {"type": "say", "id": "h1", "npc": "brenna",
                      "text": "a" * (MAX_MESSAGE_BYTES + 10)},
     "too_large", None, [f"limit of {MAX_MESSAGE_BYTES} bytes"]),
    ("unknown action id", {"type": "action_result", "id": "a1", "action_id": "nope",
                           "ok": True}, "unknown_action", "a1",
     ["action_id='nope'", "`action_id` of an `action` message"]),
    ("unknown npc", {"type": "say", "id": "k1", "npc": "mira", "text": "hi"}, "unknown_npc",
     "k1", ["say.npc='mira'", "brenna, torvin"]),
    ("unknown witness", {"type": "event", "id": "k2", "description": "x",
                         "witnesses": ["brenna", "ghost"]}, "unknown_npc", "k2",
     ["event.witnesses='ghost'"]),
    ("event nobody perceives", {"type": "event", "id": "k3", "description": "x"},
     "bad_message", "k3", ["neither `npc` nor `witnesses`"]),
    ("world for an unknown npc", {"type": "world", "id": "k4", "npc": "mira"},
     "unknown_npc", "k4", ["world.npc='mira'"]),
    ("load of garbage", {"type": "load", "id": "b1", "blob": "xyz"}, "bad_blob", "b1",
     ["not a personae save blob"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
async def test_bad_input_is_answered_and_the_session_goes_on(
    tmp_path: Path, case: tuple[str, Any, str, str | None, list[str]]
) -> None:
    _, data, code, reply_to, words = case
    server = make_server(tmp_path, FakeChatModel(default="Still here."))
    game = Game(server)
    await game.hello()
    before = len(game.out)
    await game.send(data)
    await game.session.drain()
    (error,) = game.out[before:]
    server_adapter.validate_python(error)
    assert error["type"] == "error" and error["code"] == code
    assert error.get("reply_to") == reply_to
    for word in words:
        assert word in error["message"], (word, error["message"])
    # The same session, and every NPC, keeps answering.
    for npc in ("brenna", "torvin"):
        assert (await game.say(npc, "Hello?", f"after-{npc}"))[-1]["text"] == "Still here."
    await server.aclose()


async def test_nothing_before_hello_and_no_other_protocol(tmp_path: Path) -> None:
    server = make_server(tmp_path, FakeChatModel(default="Hi."))
    game = Game(server)
    await game.send({"type": "say", "id": "early", "npc": "brenna", "text": "hi"})
    (error,) = game.to("early")
    assert error["code"] == "no_hello" and "send hello first" in error["message"]

    await game.send({"type": "hello", "id": "h2", "protocol": 2})
    (error,) = game.to("h2")
    assert error["code"] == "protocol_version"
    assert "hello.protocol=2" in error["message"] and "speaks protocol 1" in error["message"]
    await game.send({"type": "say", "id": "still-early", "npc": "brenna", "text": "hi"})
    assert game.to("still-early")[0]["code"] == "no_hello"

    assert (await game.hello())["type"] == "welcome"
    assert (await game.say("brenna", "hi", "ok"))[-1]["text"] == "Hi."
    await server.aclose()


async def test_one_sessions_garbage_does_not_touch_another(tmp_path: Path) -> None:
    server = make_server(tmp_path, FakeChatModel(default="Fine."))
    noisy, calm = Game(server), Game(server)
    await noisy.hello()
    await calm.hello()
    for junk in ["{", "null", json.dumps({"type": "say"}), "x" * (MAX_MESSAGE_BYTES + 1)]:
        await noisy.send(junk)
    assert [m["code"] for m in noisy.out[1:]] == ["bad_json", "bad_message", "bad_message",
                                                   "too_large"]
    assert (await calm.say("brenna", "hi", "c1"))[-1]["text"] == "Fine."
    assert calm.out[1:] == calm.to("c1")
    await server.aclose()
