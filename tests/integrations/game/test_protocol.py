"""Protocol v1: every message validates, serialises and matches the exported JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from personae.integrations.game import protocol as p

CLIENT: list[BaseModel] = [
    p.Hello(id="1", protocol=1, client="godot-demo 0.1", world="millbrook", slot="save-2",
            capabilities=p.Capabilities(streaming=True, emotions=False)),
    p.World(id="2", npc="brenna", mode="update", location="The Copper Kettle",
            time="Day 3, evening", weather="rain",
            actors=[p.Actor(id="p1", name="Ann", description="a traveller", relationship=0.2)],
            facts=["The inn is full."],
            affordances=[p.Affordance(action="give_item", targets=["p1"])]),
    p.Event(id="3", npc="brenna", description="Ann drops a coin", actor="p1",
            witnesses=["brenna", "torvin"], react="always"),
    p.Say(id="4", npc="brenna", player=p.Player(id="p1", name="Ann"), text="Hello!"),
    p.ActionResult(id="5", action_id="4:brenna:1", ok=False, detail="bag full"),
    p.Cancel(id="6", target="4"),
    p.Save(id="7", npc="brenna"),
    p.Load(id="8", blob="personae-save.1.abc.def", slot="save-3"),
]

SERVER: list[BaseModel] = [
    p.Welcome(id="w", reply_to="1", server="personae 0.1.0", npcs=["brenna"],
              capabilities=p.Capabilities(streaming=True)),
    p.Delta(id="d", reply_to="4", npc="brenna", text="Hel"),
    p.Sentence(id="s", reply_to="4", npc="brenna", index=0, text="Hello there."),
    p.ActionMessage(id="a", reply_to="4", npc="brenna", action_id="4:brenna:1",
                    name="give_item", arguments={"item": "key", "target": "p1"}, target="p1"),
    p.EmotionMessage(id="e", reply_to="4", npc="brenna", emotion="happy"),
    p.Relationship(id="r", reply_to="4", npc="brenna", actor="p1", value=0.5, change=0.1,
                   reason="kind words"),
    p.ReplyMessage(id="rep", reply_to="4", npc="brenna", text="Hello there.", emotion="happy",
                   actions=["4:brenna:1"], flags=["offline"]),
    p.NoResponse(id="n", reply_to="4", npc="brenna", reason="cooldown", retry_after=2.5),
    p.Saved(id="sv", reply_to="7", blob="personae-save.1.abc.def"),
    p.Loaded(id="l", reply_to="8", npcs=["brenna"], forgotten=3),
    p.Ack(id="k", reply_to="2"),
    p.ErrorMessage(id="x", reply_to="9", code="unknown_npc", message="say.npc='mira' ..."),
]


def _wire(message: BaseModel) -> dict[str, Any]:
    return message.model_dump(mode="json", exclude_none=True)


@pytest.mark.parametrize("message", CLIENT, ids=lambda m: m.type)  # type: ignore[attr-defined]
def test_client_messages_round_trip_and_fit_the_schema(message: BaseModel) -> None:
    wire = _wire(message)
    assert p.client_adapter.validate_json(json.dumps(wire)) == message
    Draft202012Validator(p.protocol_schema()["client"]).validate(wire)


@pytest.mark.parametrize("message", SERVER, ids=lambda m: m.type)  # type: ignore[attr-defined]
def test_server_messages_round_trip_and_fit_the_schema(message: BaseModel) -> None:
    wire = _wire(message)
    assert p.server_adapter.validate_json(json.dumps(wire)) == message
    Draft202012Validator(p.protocol_schema()["server"]).validate(wire)


def test_every_message_type_is_covered_and_in_the_schema() -> None:
    schema = p.protocol_schema()
    json.dumps(schema)
    client_types = set(schema["client"]["discriminator"]["mapping"])
    server_types = set(schema["server"]["discriminator"]["mapping"])
    assert client_types == {m.type for m in CLIENT}  # type: ignore[attr-defined]
    assert server_types == {m.type for m in SERVER}  # type: ignore[attr-defined]
    assert schema["title"] == "personae game protocol v1"
    # Field docs reach the schema, so editors and client authors see them.
    say = schema["client"]["$defs"]["Say"]["properties"]
    assert "The NPC spoken to" in say["npc"]["description"]


def test_the_schema_refuses_what_the_models_refuse() -> None:
    validator = Draft202012Validator(p.protocol_schema()["client"])
    for bad in [
        {"type": "say", "id": "1", "npc": "brenna", "text": "hi", "txt": "typo"},
        {"type": "say", "id": "1", "npc": "brenna"},
        {"type": "shout", "id": "1"},
        {"type": "event", "id": "1", "description": "x", "react": "maybe"},
    ]:
        assert list(validator.iter_errors(bad)), bad
        with pytest.raises(ValidationError):
            p.client_adapter.validate_python(bad)


def test_defaults_a_minimal_client_can_rely_on() -> None:
    hello = p.client_adapter.validate_json('{"type": "hello", "id": "1", "protocol": 1}')
    assert isinstance(hello, p.Hello)
    assert (hello.world, hello.slot) == ("default", "default")
    assert hello.capabilities == p.Capabilities(streaming=False, sentences=True, emotions=True,
                                                actions=True)
    say = p.client_adapter.validate_json('{"type": "say", "id": "2", "npc": "b", "text": "x"}')
    assert isinstance(say, p.Say) and say.player == p.Player(id="player", name="Player")
    assert p.PROTOCOL_VERSION == 1 and p.MAX_MESSAGE_BYTES == 65536
