"""State that follows the save file: blobs, relationships, save/load with memory rewind."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from npc_fixtures import SCENE, Game, call, make_server

from personae.errors import IntegrationError
from personae.integrations.game.state import NpcState, StateFiles, decode_blob, encode_blob
from personae.scope import Scope
from personae.testing import FakeChatModel


def _blob() -> str:
    return encode_blob("w1", "s1", {"brenna": {"relationships": {"p1": 0.5}, "players": ["p1"]}})


def test_blob_round_trip_and_every_kind_of_damage() -> None:
    blob = _blob()
    assert blob.startswith("personae-save.1.")
    payload = decode_blob(blob)
    assert (payload["world"], payload["slot"]) == ("w1", "s1")
    assert payload["npcs"]["brenna"]["relationships"] == {"p1": 0.5}

    head, version, body, checksum = blob.split(".")
    edited = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with pytest.raises(IntegrationError, match=r"damaged or was edited.*checksum"):
        decode_blob(".".join([head, version, edited, checksum]))
    with pytest.raises(IntegrationError, match="not a personae save blob"):
        decode_blob("eyJ3b3JsZCI6IHt9fQ==")
    with pytest.raises(IntegrationError, match=r"version '2'.*reads version 1"):
        decode_blob(".".join([head, "2", body, checksum]))
    # A correct checksum over content that is not a save of this format.
    packed = zlib.compress(b'{"hello": "world"}')
    import hashlib

    forged = base64.urlsafe_b64encode(packed).decode().rstrip("=")
    with pytest.raises(IntegrationError, match="not a save of this format"):
        decode_blob(f"personae-save.1.{forged}.{hashlib.sha256(packed).hexdigest()[:32]}")


def test_npc_state_clamps_and_survives_bad_data(tmp_path: Path) -> None:
    state = NpcState()
    assert state.change("p1", 0.8) == (0.8, 0.8)
    assert state.change("p1", 0.8) == (1.0, 0.2)
    assert state.meet("p1") and not state.meet("p1")
    files = StateFiles(tmp_path / "state")
    files.write("brenna", "w1", "s1", state)
    assert files.read("brenna", "w1", "s1") == state
    assert files.read("brenna", "w1", "other") == NpcState()
    broken = NpcState.from_dict({"relationships": {"a": "x", "b": 7, "c": True}, "players": [3]})
    assert broken == NpcState(relationships={"b": 1.0}, players=[])


async def test_relationships_survive_a_restart(tmp_path: Path) -> None:
    model = FakeChatModel(responses=[
        AIMessage("", tool_calls=[call("change_relationship", {"actor": "p1", "change": 0.4},
                                       "r1")]),
        AIMessage("Welcome back."),
    ])
    server = make_server(tmp_path, model)
    game = Game(server)
    await game.hello(world="w1", slot="s1")
    await game.send(SCENE)
    await game.say("brenna", "I fixed your roof.", "s1")
    await server.aclose()

    again = FakeChatModel(responses=["Good to see you."])
    server = make_server(tmp_path, again)
    game = Game(server)
    await game.hello(world="w1", slot="s1")
    await game.send(SCENE)
    await game.say("brenna", "Hello!", "s2")
    assert "Ann (id p1): a traveller in a wet cloak; you regard them as friendly (0.40)" in (
        again.calls[0][0].text)
    await server.aclose()


def _scope(slot: str) -> Scope:
    return Scope(persona="brenna", user="p1", world="w1", save_slot=slot)


async def test_save_and_load_rewind_history_relationships_and_memory(tmp_path: Path) -> None:
    model = FakeChatModel(responses=[
        "Nice to meet you, Ann.",
        AIMessage("", tool_calls=[call("change_relationship", {"actor": "p1", "change": -0.3},
                                       "r1")]),
        "Your secret is safe.",
        "Hello again.",
    ])
    server = make_server(tmp_path, model, memory=True)
    game = Game(server)
    await game.hello(world="w1", slot="s1")
    await game.send(SCENE)
    await game.say("brenna", "My name is Ann and I sell wool.", "m1")
    await game.send({"type": "save", "id": "save1"})
    await game.session.drain()
    (saved,) = game.to("save1")
    assert saved["type"] == "saved"

    await game.say("brenna", "I buried the stolen gold under the old bridge.", "m2")
    agent = server.npcs["brenna"].agent
    await agent.memory_mark()
    store = agent.memory
    assert store is not None
    assert any("gold" in r.text for r in store.list(_scope("s1")))

    # The next request waits for the load: it is answered in the restored story.
    await game.send({"type": "load", "id": "load1", "blob": saved["blob"]})
    await game.send({"type": "say", "id": "m3", "npc": "brenna", "text": "Where is the gold?",
                     "player": {"id": "p1", "name": "Ann"}})
    await game.session.drain()
    (loaded,) = game.to("load1")
    assert loaded["type"] == "loaded" and loaded["npcs"] == ["brenna", "torvin"]
    assert loaded["forgotten"] >= 1
    history = [m.text for m in await agent.history(_scope("s1"))]
    assert history == ["My name is Ann and I sell wool.", "Nice to meet you, Ann.",
                       "Where is the gold?", "Hello again."]
    texts = [r.text for r in store.list(_scope("s1"))]
    assert not any("buried" in t for t in texts) and any("wool" in t for t in texts)

    prompt = model.calls[-1][0].text
    assert "gold" not in prompt.replace("Where is the gold?", "")
    assert "regard them as" not in prompt.split("Old Tam")[0]
    await server.aclose()


async def test_load_into_another_slot_copies_the_save(tmp_path: Path) -> None:
    model = FakeChatModel(responses=["Hello, Ann.", "Noted.", "Yes?"])
    server = make_server(tmp_path, model, memory=True)
    game = Game(server)
    await game.hello(world="w1", slot="s1")
    await game.say("brenna", "I am Ann, a wool merchant.", "m1")
    await game.send({"type": "save", "id": "save1"})
    await game.session.drain()
    blob = game.to("save1")[0]["blob"]
    await game.say("brenna", "The gold is under the bridge.", "m2")

    await game.send({"type": "load", "id": "load1", "blob": blob, "slot": "s2"})
    await game.session.drain()
    assert game.to("load1")[0]["type"] == "loaded"
    agent = server.npcs["brenna"].agent
    assert [m.text for m in await agent.history(_scope("s2"))] == [
        "I am Ann, a wool merchant.", "Hello, Ann."]
    # The old slot keeps its own story; the new one starts from the save.
    assert len(await agent.history(_scope("s1"))) == 4
    store = agent.memory
    assert store is not None
    assert any("wool" in r.text for r in store.list(_scope("s2")))
    assert not any("gold" in r.text for r in store.list(_scope("s2")))
    assert any("gold" in r.text for r in store.list(_scope("s1")))
    await game.say("brenna", "Hi", "m3")
    assert len(await agent.history(_scope("s2"))) == 4
    await server.aclose()


async def test_bad_blobs_are_refused_and_the_session_goes_on(tmp_path: Path) -> None:
    model = FakeChatModel(default="Aye.")
    server = make_server(tmp_path, model)
    game = Game(server)
    await game.hello(world="w1", slot="s1")
    await game.send({"type": "save", "id": "save1"})
    await game.session.drain()
    blob = game.to("save1")[0]["blob"]

    head, version, body, _ = blob.split(".")
    tampered = ".".join([head, version, body, "0" * 32])
    cases = {
        "tampered": (tampered, "damaged or was edited"),
        "foreign": ("not-a-save", "not a personae save blob"),
        "other-world": (encode_blob("w9", "s1", {}), "saved in world 'w9'"),
        "stranger": (encode_blob("w1", "s1", {"mira": {}}), "does not host: mira"),
    }
    for request, (bad, expected) in cases.items():
        await game.send({"type": "load", "id": request, "blob": bad})
        (error,) = game.to(request)
        assert error["code"] == "bad_blob" and expected in error["message"], error
    assert (await game.say("brenna", "Still there?", "after"))[-1]["text"] == "Aye."
    await server.aclose()


def test_blob_is_json_inside() -> None:
    # The blob is opaque to games but plain to us: versioned JSON, compressed.
    body = _blob().split(".")[2]
    raw = zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert json.loads(raw)["format"] == "personae-save"
