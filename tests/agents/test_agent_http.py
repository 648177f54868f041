"""A whole Agent turn over real HTTP: langchain-openai against the local OpenAI-compatible stub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai_stub import OpenAIStub, openai_stub_fixture  # noqa: F401  (fixture)

from personae.agents.agent import Agent
from personae.agents.turn import Reply
from personae.personas.model import Persona
from personae.settings import Settings
from personae.testing import FakeEmbeddings

PERSONA = Persona.model_validate({
    "id": "brenna",
    "name": "Brenna",
    "fallbacks": ["Couldn't tell you, love."],
    "tools": ["roll_dice"],
    "actions": [{
        "name": "rent_room",
        "description": "Rent the player a room.",
        "parameters": {"type": "object", "properties": {"nights": {"type": "integer",
                       "minimum": 1, "maximum": 7}}, "required": ["nights"]},
    }],
})


@pytest.fixture
def agent(openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Agent:
    monkeypatch.setenv("PERSONAE_OPENAI_BASE_URL", openai_stub.base_url)
    monkeypatch.setenv("PERSONAE_OPENAI_API_KEY", "sk-test-123")
    settings = Settings(home=tmp_path, retry_wait_max=0.01)
    return Agent(PERSONA, model="openai:gpt-test", settings=settings, embedder=FakeEmbeddings(),
                 memory=False)


async def test_tool_call_and_host_action_over_http(agent: Agent, openai_stub: OpenAIStub) -> None:
    openai_stub.add_tool_call("roll_dice", {"sides": 20}, call_id="c1")
    openai_stub.add_tool_call("rent_room", {"nights": 2}, call_id="c2")
    openai_stub.add_reply("Room's yours for two nights.")
    reply = await agent.respond("A room for two nights, and roll me a d20")
    await agent.aclose()

    assert reply.text == "Room's yours for two nights."
    assert [(a.name, a.arguments) for a in reply.actions] == [("rent_room", {"nights": 2})]
    assert reply.model == "openai:gpt-test" and reply.flags == []
    first, second, third = openai_stub.requests
    assert {t["function"]["name"] for t in first.body["tools"]} == {"roll_dice", "rent_room"}
    assert first.body["messages"][0]["role"] == "system"
    assert "Brenna" in first.body["messages"][0]["content"]
    tool_result = second.body["messages"][-1]
    assert tool_result["role"] == "tool" and "rolled 1d20" in tool_result["content"]
    assert "rent_room" in json.dumps(third.body["messages"][-1])


async def test_streamed_reply_over_http(agent: Agent, openai_stub: OpenAIStub) -> None:
    openai_stub.add_reply("The stew is mutton, the ale is dark, and the fire is warm.")
    items = [item async for item in agent.stream("What's good?")]
    await agent.aclose()

    final = items[-1]
    assert isinstance(final, Reply)
    deltas = [i for i in items if isinstance(i, str)]
    assert len(deltas) > 1 and "".join(deltas) == final.text
    assert openai_stub.requests[0].body["stream"] is True


async def test_server_errors_retry_then_offline_answers(
    agent: Agent, openai_stub: OpenAIStub
) -> None:
    for _ in range(5):
        openai_stub.add_error(503)
    reply = await agent.respond("Hello?")
    await agent.aclose()

    assert len(openai_stub.requests) == 3  # three attempts, then the chain moves on
    assert reply.offline and "fallback" in reply.flags
    assert reply.text == "Couldn't tell you, love."


async def test_bad_request_is_not_retried(agent: Agent, openai_stub: OpenAIStub) -> None:
    openai_stub.add_error(400)
    reply = await agent.respond("Hello?")
    await agent.aclose()

    assert len(openai_stub.requests) == 1
    assert reply.offline
