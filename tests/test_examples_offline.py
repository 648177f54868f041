"""The three example personas chat offline: paraphrases find the authored reply, the rest deflects.

Uses the real bundled MiniLM model, loaded from site-packages with no download.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from personae.agents.agent import Agent
from personae.agents.turn import Scope, Turn
from personae.personas.loading import load_persona

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "personas"

PARAPHRASES = [
    ("innkeeper", "got any beds free tonight?", "Do you have a room for the night?"),
    ("innkeeper", "what food do you serve here?", "What's there to eat?"),
    ("innkeeper", "I need a smith to mend my sword", "Where can I find a blacksmith?"),
    ("guide", "how can I file a bug report?", "How do I report a bug?"),
    ("guide", "where can I read the documentation?", "Where is the documentation?"),
    ("companion", "I'm feeling so alone these days", "I feel lonely."),
    ("companion", "I just can't fall asleep", "I can't sleep."),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "said", "example_user"), PARAPHRASES)
async def test_paraphrase_gets_the_authored_reply(
    name: str, said: str, example_user: str, tmp_path: Path
) -> None:
    persona = load_persona(EXAMPLES / f"{name}.yaml")
    expected = next(e.reply for e in persona.examples if e.user == example_user)
    agent = Agent(persona, model="offline", home=tmp_path)
    reply = await agent.respond(said)
    await agent.aclose()
    assert reply.text == expected
    assert reply.offline and reply.model == "offline"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["innkeeper", "guide", "companion"])
async def test_unknown_question_gets_a_fallback_and_never_the_same_line_twice(
    name: str, tmp_path: Path
) -> None:
    persona = load_persona(EXAMPLES / f"{name}.yaml")
    agent = Agent(persona, model="offline", home=tmp_path)
    scope = Scope(persona=persona.id, user="tester")
    first = await agent.respond(Turn(text="Explain the Belgian tax code on imported turbines.",
                                     scope=scope))
    second = await agent.respond(Turn(text="And the VAT rate for turbine blades?", scope=scope))
    await agent.aclose()
    assert first.text in persona.fallbacks and second.text in persona.fallbacks
    assert first.text != second.text
