"""AgentVoice: check-ins in the persona's voice, from its model or its authored greetings."""

from __future__ import annotations

from pathlib import Path

from personae.agents.agent import Agent
from personae.integrations.companion.care_voice import VOICE_CHANNEL, AgentVoice
from personae.personas.model import Persona
from personae.scope import Scope
from personae.settings import Settings
from personae.testing import FakeChatModel, FakeEmbeddings

MIRA = Persona(id="mira", name="Mira", greetings=[
    "Good morning, {{user}}!", "Hello, love, it's {{char}}. How are you keeping?",
    "There you are! Did you sleep well?"])


def agent(tmp_path: Path, model: object) -> Agent:
    return Agent(MIRA, model=model, settings=Settings(home=tmp_path),  # type: ignore[arg-type]
                 embedder=FakeEmbeddings(), memory=False)


async def test_offline_persona_checks_in_with_its_greetings_in_turn(tmp_path: Path) -> None:
    offline = agent(tmp_path, "offline")
    voice = AgentVoice({"mira": offline}.__getitem__)
    said = [await voice("mira", "u-829", "check-in") for _ in range(3)]
    # Lines naming the user are left out: a user id is not a name.
    assert said == ["Hello, love, it's Mira. How are you keeping?",
                    "There you are! Did you sleep well?",
                    "Hello, love, it's Mira. How are you keeping?"]
    await offline.aclose()


async def test_model_writes_the_checkin_outside_the_users_conversation(tmp_path: Path) -> None:
    model = FakeChatModel(responses=["Morning, Ann! How was the walk by the river?"])
    online = agent(tmp_path, model)

    async def agent_for(persona_id: str) -> Agent:
        return online

    voice = AgentVoice(agent_for)
    text = await voice("mira", "ann", "check-in about the morning walk", tenant="acme")
    assert text == "Morning, Ann! How was the walk by the river?"
    [call] = model.calls
    assert "check-in about the morning walk" in str(call[-1].content)
    assert await online.history(Scope(persona="mira", user="ann")) == []
    voice_scope = Scope(persona="mira", tenant="acme", user="ann", channel=VOICE_CHANNEL)
    assert len(await online.history(voice_scope)) == 2
    # Another tenant's "ann" has a writing conversation of her own.
    other = voice_scope.model_copy(update={"tenant": "globex"})
    assert await online.history(other) == []
    await online.aclose()
