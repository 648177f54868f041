"""An imported card talks offline with its own example dialogue, macros expanded."""

from __future__ import annotations

from pathlib import Path

import card_fixtures as F
import pytest

from personae.agents.agent import Agent
from personae.agents.turn import Scope, Turn
from personae.personas.cards import import_card
from personae.personas.macros import expand


@pytest.mark.slow
async def test_imported_card_answers_with_its_example_replies(tmp_path: Path) -> None:
    path = F.write(tmp_path / "wren.png", F.png_card(F.v3_card(), keyword="ccv3"))
    persona = import_card(path).persona
    agent = Agent(persona, model="offline", home=tmp_path / "home")
    scope = Scope(persona=persona.id, user="ann")
    try:
        plain = await agent.respond(Turn(text="what time do you light the lamp?", scope=scope,
                                         speaker="Ann"))
        who = await agent.respond(Turn(text="who are you?", scope=scope, speaker="Ann"))
    finally:
        await agent.aclose()
    assert plain.text == persona.examples[0].reply  # a line without macros
    assert plain.offline
    raw = persona.examples[1].reply
    assert "{{char}}" in raw and "{{user}}" in raw
    assert who.text == expand(raw, char="Wren Calloway", user="Ann")
    assert who.text == (
        "I'm Wren Calloway, keeper of the Greyhook light. Mind the fourth stair, Ann.")
