"""The Agent with long-term memory: recall into the prompt, writing after turns, isolation,
the remember/recall tools, and erasure of everything about one user."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage

from personae.agents.agent import Agent
from personae.agents.turn import Scope, Turn
from personae.memory.facts import RuleFactExtractor
from personae.personas.model import Persona
from personae.settings import Settings
from personae.testing import FakeChatModel, FakeEmbeddings

ANN = Scope(persona="rosie", user="ann")
BOB = Scope(persona="rosie", user="bob")


def _agent(tmp_path: Path, model: Any, **persona: Any) -> Agent:
    return Agent(
        Persona.model_validate({"id": "rosie", "name": "Rosie", **persona}),
        model=model, fallbacks=[], settings=Settings(home=tmp_path / "home"),
        embedder=FakeEmbeddings(), fact_extractor=RuleFactExtractor(),
    )


async def _drain(agent: Agent) -> None:
    writer = agent._writer
    assert writer is not None
    await writer.drain()


async def test_facts_are_written_after_the_turn_and_recalled_later(tmp_path: Path) -> None:
    model = FakeChatModel(default="How lovely.")
    agent = _agent(tmp_path, model)
    await agent.respond(Turn(text="My granddaughter is called Mia.", scope=ANN))
    await _drain(agent)
    facts = agent.memory.list(ANN, kind="fact") if agent.memory else []
    assert any("Mia" in r.text for r in facts)

    await agent.respond(Turn(text="What is my granddaughter called again?", scope=ANN))
    await agent.respond(Turn(text="What is my granddaughter called again?", scope=BOB))
    await agent.aclose()

    ann_prompt, bob_prompt = model.calls[1][0].text, model.calls[2][0].text
    assert "Mia" in ann_prompt
    assert "Mia" not in bob_prompt  # another user never recalls Ann's memories


async def test_memory_off_by_policy_writes_nothing(tmp_path: Path) -> None:
    agent = _agent(tmp_path, FakeChatModel(default="Ok."), memory={"enabled": False})
    await agent.respond(Turn(text="My name is Ann.", scope=ANN))
    assert agent.memory is None
    await agent.aclose()
    assert not (tmp_path / "home" / "memory").exists()


async def test_remember_and_recall_tools_stay_in_the_callers_scope(tmp_path: Path) -> None:
    model = FakeChatModel(responses=[
        AIMessage("", tool_calls=[{
            "name": "remember", "id": "c1", "type": "tool_call",
            "args": {"text": "Ann takes her pills at eight", "importance": 8},
        }]),
        "I'll remember that.",
        AIMessage("", tool_calls=[{"name": "recall", "id": "c2", "type": "tool_call",
                                   "args": {"query": "pills"}}]),
        "Let me think.",
        AIMessage("", tool_calls=[{"name": "recall", "id": "c3", "type": "tool_call",
                                   "args": {"query": "pills"}}]),
        "Nothing comes to mind.",
    ])
    agent = _agent(tmp_path, model, tools=["remember", "recall"])
    await agent.respond(Turn(text="Remember my pills are at eight.", scope=ANN))
    await agent.respond(Turn(text="When are my pills?", scope=ANN))
    await agent.respond(Turn(text="When are my pills?", scope=BOB))
    await agent.aclose()

    def result(call: int) -> str:
        return next(m.text for m in model.calls[call] if isinstance(m, ToolMessage)
                    and m.tool_call_id == f"c{call // 2 + 1}")

    assert result(1) == "Remembered."
    assert "pills at eight" in result(3)
    assert "pills at eight" not in result(5)


async def test_forget_erases_memories_and_transcript_from_every_file(tmp_path: Path) -> None:
    secret = f"zq{uuid.uuid4().hex}"
    other = f"zq{uuid.uuid4().hex}"
    agent = _agent(tmp_path, FakeChatModel(default="Noted."))
    await agent.respond(Turn(text=f"My favourite colour is {secret}.", scope=ANN))
    await agent.respond(Turn(text=f"Please remember the code {secret} for me.", scope=ANN))
    await agent.respond(Turn(text=f"My favourite colour is {other}.", scope=BOB))
    await _drain(agent)
    assert _files_containing(tmp_path, secret)

    erased = await agent.forget(ANN)
    assert erased >= 2
    assert await agent.history(ANN) == []
    assert len(await agent.history(BOB)) == 2
    await agent.aclose()

    assert _files_containing(tmp_path, secret) == []
    assert _files_containing(tmp_path, other)  # Bob's memories are untouched


def _files_containing(root: Path, needle: str) -> list[Path]:
    data = needle.encode("utf-8")
    return [p for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]
