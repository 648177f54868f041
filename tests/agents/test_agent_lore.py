"""Lore in the Agent: lorebook settings, timed state across turns and restarts, seeds, macros."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from personae.agents.agent import Agent
from personae.agents.turn import Scope, Turn
from personae.personas.model import Persona
from personae.settings import Settings
from personae.testing import FakeChatModel, FakeEmbeddings

DRAGON = "A dragon sleeps under Mount Ash."


def _persona(lore: list[dict[str, Any]], **extra: Any) -> Persona:
    return Persona.model_validate({"id": "brenna", "name": "Brenna", "lore": lore, **extra})


def _agent(home: Path, persona: Persona, model: FakeChatModel) -> Agent:
    settings = Settings(home=home, retry_wait_max=0.01)
    return Agent(persona, model=model, fallbacks=[], settings=settings,
                 embedder=FakeEmbeddings(), memory=False)


def _prompts(model: FakeChatModel) -> list[str]:
    """The system prompt of every model call, oldest first."""
    return [call[0].text for call in model.calls]


async def test_sticky_entry_stays_for_its_messages_then_cooldown_keeps_it_out(
    tmp_path: Path,
) -> None:
    # Each turn adds two messages (the user's and the reply): sticky 4 holds
    # for the next two turns, cooldown 4 then keeps it out for two more.
    persona = _persona(
        [{"keys": ["dragon"], "content": DRAGON, "sticky": 4, "cooldown": 4}],
        lorebook={"scan_depth": 1},
    )
    model = FakeChatModel(default="Aye.")
    agent = _agent(tmp_path, persona, model)
    said = ["Any dragon here?", "Hm.", "And then?", "Go on.", "The dragon again?", "dragon!"]
    for text in said:
        await agent.respond(text)
    await agent.aclose()

    present = [DRAGON in prompt for prompt in _prompts(model)]
    assert present == [True, True, True, False, False, True]


async def test_timed_state_survives_a_restart_and_stays_in_its_scope(tmp_path: Path) -> None:
    persona = _persona(
        [{"keys": ["dragon"], "content": DRAGON, "sticky": 4}], lorebook={"scan_depth": 1}
    )
    ann = Scope(persona="brenna", user="ann")
    bob = Scope(persona="brenna", user="bob")
    first = _agent(tmp_path, persona, FakeChatModel(default="Aye."))
    await first.respond(Turn(text="Tell me of the dragon.", scope=ann))
    await first.aclose()

    model = FakeChatModel(default="Aye.")
    second = _agent(tmp_path, persona, model)
    await second.respond(Turn(text="Anything else?", scope=ann))
    await second.respond(Turn(text="Anything else?", scope=bob))
    explained = await second.explain(Turn(text="And now?", scope=ann))
    await second.reset(ann)
    after_reset = await second.explain(Turn(text="And now?", scope=ann))
    await second.aclose()

    ann_prompt, bob_prompt = _prompts(model)
    assert DRAGON in ann_prompt  # still sticky after the restart
    assert DRAGON not in bob_prompt  # another scope, another state
    assert DRAGON in explained.text  # message 5 of ann's conversation, sticky until 5
    assert "sticky: active since message 1, until message 5" in explained.explain()
    assert DRAGON not in after_reset.text


async def test_lorebook_scan_depth_is_used(tmp_path: Path) -> None:
    lore = [{"keys": ["dragon"], "content": DRAGON}]
    deep = FakeChatModel(default="Aye.")
    shallow = FakeChatModel(default="Aye.")
    for model, book, home in [(deep, {"scan_depth": 4}, "deep"), (shallow, {"scan_depth": 1},
                                                                    "shallow")]:
        agent = _agent(tmp_path / home, _persona(lore, lorebook=book), model)
        await agent.respond("Is there a dragon?")
        await agent.respond("What else?")
        await agent.aclose()
    assert [DRAGON in p for p in _prompts(deep)] == [True, True]
    assert [DRAGON in p for p in _prompts(shallow)] == [True, False]


async def test_explain_shows_the_trace_and_changes_nothing(tmp_path: Path) -> None:
    persona = _persona([
        {"name": "dragon", "keys": ["dragon"], "content": DRAGON, "cooldown": 10},
        {"name": "ale", "keys": ["ale"], "content": "Ale is two copper."},
    ])
    model = FakeChatModel(default="Aye.")
    agent = _agent(tmp_path, persona, model)
    one = await agent.explain("A dragon?")
    two = await agent.explain("A dragon?")
    reply = await agent.respond("A dragon?")
    later = await agent.explain("The dragon, again")
    await agent.aclose()

    assert one.text == two.text and DRAGON in one.text
    assert one.lore_scan is not None and two.lore_scan is not None
    assert one.lore_scan.state == two.lore_scan.state
    report = one.explain()
    assert "+ dragon: key 'dragon' in message 1" in report
    assert "- ale: no key matched in message 1" in report
    assert "- dragon: cooldown: active at message 1" in later.explain()
    steps = [step for step in reply.trace if step.get("step") == "prompt"]
    assert steps and steps[0]["lore"]["active"] == ["dragon"]


async def test_seed_comes_from_the_scope(tmp_path: Path) -> None:
    persona = _persona([{"name": "omen", "keys": ["omen"], "content": "A raven calls.",
                         "probability": 50}])
    agent = _agent(tmp_path / "a", persona, FakeChatModel())
    again = _agent(tmp_path / "b", persona, FakeChatModel())
    scopes = [Scope(persona="brenna", user=f"user{i}") for i in range(16)]
    first = [(await agent.explain(Turn(text="an omen", scope=s))).text for s in scopes]
    second = [(await again.explain(Turn(text="an omen", scope=s))).text for s in scopes]
    await agent.aclose()
    await again.aclose()

    assert first == second  # the same scope rolls the same way
    assert {"A raven calls." in text for text in first} == {True, False}


async def test_speaker_name_fills_user_macros(tmp_path: Path) -> None:
    persona = _persona(
        [{"keys": ["ale"], "content": "{{char}} owes {{user}} a mug of ale."}],
        description="{{char}} runs the inn and knows <USER> well.",
    )
    model = FakeChatModel(default="Aye.")
    agent = _agent(tmp_path, persona, model)
    await agent.respond(Turn(text="An ale, please.", speaker="Ann"))
    await agent.respond(Turn(text="Another ale."))
    await agent.aclose()

    named, unnamed = _prompts(model)
    assert "Brenna runs the inn and knows Ann well." in named
    assert "- Brenna owes Ann a mug of ale." in named
    assert "Brenna owes User a mug of ale." in unnamed
