"""The real langchain-openai client, built by `make_chat_model`, against a local stub server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.tools import tool
from openai_stub import OpenAIStub, StubResponse, openai_stub_fixture  # noqa: F401  (fixture)

from personae.agents.models import make_chat_model
from personae.agents.resilience import RetryMiddleware, is_transient
from personae.personas.model import Persona
from personae.settings import Settings

PERSONA = Persona.model_validate(
    {"id": "mira", "name": "Mira", "model": {"temperature": 0.3, "max_tokens": 120}}
)


@tool
def roll_dice(sides: int) -> int:
    """Roll a die with the given number of sides."""
    return sides


@pytest.fixture
def openai_env(openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch) -> OpenAIStub:
    monkeypatch.setenv("PERSONAE_OPENAI_BASE_URL", openai_stub.base_url)
    monkeypatch.setenv("PERSONAE_OPENAI_API_KEY", "sk-test-123")
    return openai_stub


def _model(**settings: Any) -> Any:
    return make_chat_model("openai:gpt-test", persona=PERSONA, settings=Settings(**settings))


def test_plain_reply_and_request_shape(openai_env: OpenAIStub) -> None:
    openai_env.add_reply("Welcome to the Lantern!")
    reply = _model().invoke([SystemMessage("You are Mira."), HumanMessage("Hello")])

    assert reply.text == "Welcome to the Lantern!"
    [request] = openai_env.requests
    assert request.path == "/v1/chat/completions"
    assert request.bearer == "sk-test-123"
    assert request.body["model"] == "gpt-test"
    assert request.body["messages"] == [
        {"role": "system", "content": "You are Mira."},
        {"role": "user", "content": "Hello"},
    ]
    assert request.body["temperature"] == 0.3
    assert request.body.get("max_tokens", request.body.get("max_completion_tokens")) == 120
    assert not request.body.get("stream")


async def test_streamed_reply_arrives_in_deltas(openai_env: OpenAIStub) -> None:
    text = "Stew, bread and the best ale this side of the river."
    openai_env.add_reply(text)
    deltas = [chunk.text async for chunk in _model().astream([HumanMessage("What do you sell?")])]

    assert "".join(deltas) == text
    assert len([d for d in deltas if d]) > 3
    assert openai_env.requests[0].body["stream"] is True


def test_tool_call_is_parsed_and_tools_are_sent(openai_env: OpenAIStub) -> None:
    openai_env.add_tool_call("roll_dice", {"sides": 20}, call_id="call_abc")
    reply = _model().bind_tools([roll_dice]).invoke([HumanMessage("Roll for me")])

    assert reply.tool_calls == [
        {"name": "roll_dice", "args": {"sides": 20}, "id": "call_abc", "type": "tool_call"}
    ]
    [sent] = openai_env.requests[0].body["tools"]
    assert sent["type"] == "function"
    assert sent["function"]["name"] == "roll_dice"
    assert sent["function"]["parameters"]["properties"]["sides"]["type"] == "integer"


def test_streamed_tool_call_deltas_join(openai_env: OpenAIStub) -> None:
    openai_env.add_tool_call("roll_dice", {"sides": 6}, call_id="call_s")
    total: AIMessageChunk | None = None
    for chunk in _model().bind_tools([roll_dice]).stream([HumanMessage("Roll")]):
        total = chunk if total is None else total + chunk
    assert total is not None
    assert total.tool_calls == [
        {"name": "roll_dice", "args": {"sides": 6}, "id": "call_s", "type": "tool_call"}
    ]


def test_preset_reaches_its_base_url_with_its_key(
    openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSONAE_DEEPSEEK_BASE_URL", openai_stub.base_url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", "ds-secret-9")
    openai_stub.add_reply("From DeepSeek.")
    model = make_chat_model("deepseek:deepseek-chat", persona=PERSONA, settings=Settings())

    assert model.invoke("Hi").text == "From DeepSeek."
    [request] = openai_stub.requests
    assert request.bearer == "ds-secret-9"
    assert request.body["model"] == "deepseek-chat"


def test_local_server_preset_needs_no_key(
    openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSONAE_VLLM_BASE_URL", openai_stub.base_url)
    openai_stub.add_reply("Local.")
    model = make_chat_model("vllm:qwen2.5-7b", persona=PERSONA, settings=Settings())
    assert model.invoke("Hi").text == "Local."
    assert openai_stub.requests[0].bearer  # some placeholder, the SDK insists on one


@pytest.mark.parametrize(
    ("status", "error", "transient"),
    [
        (503, openai.InternalServerError, True),
        (429, openai.RateLimitError, True),
        (400, openai.BadRequestError, False),
        (401, openai.AuthenticationError, False),
    ],
)
def test_http_errors_are_raised_once_without_sdk_retries(
    openai_env: OpenAIStub, status: int, error: type[Exception], transient: bool
) -> None:
    openai_env.add_error(status, headers={"retry-after": "0"})
    with pytest.raises(error) as caught:
        _model().invoke("Hi")
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert is_transient(caught.value) is transient
    # max_retries=0: the SDK did not retry behind our back.
    assert len(openai_env.requests) == 1


def test_slow_server_times_out_as_transient(openai_env: OpenAIStub) -> None:
    openai_env.add(StubResponse(content="too late", delay=1.0))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError) as caught:
        _model(request_timeout=0.2).invoke("Hi")
    assert time.monotonic() - started < 1.0
    assert is_transient(caught.value)
    assert len(openai_env.requests) == 1


async def test_agent_retries_real_client_through_503s(openai_env: OpenAIStub) -> None:
    openai_env.add_error(503)
    openai_env.add_error(503)
    openai_env.add_reply("Third time lucky.")
    attempts: list[dict[str, object]] = []
    agent = create_agent(
        _model(),
        [],
        middleware=[RetryMiddleware(attempts=3, wait_initial=0.01, on_attempt=attempts.append)],
    )
    state = await asyncio.wait_for(
        agent.ainvoke({"messages": [HumanMessage("Any rooms?")]}), timeout=20
    )

    assert state["messages"][-1].text == "Third time lucky."
    assert len(openai_env.requests) == 3
    assert [(a["outcome"], a["status_code"]) for a in attempts] == [
        ("retry", 503),
        ("retry", 503),
        ("ok", None),
    ]
    assert {a["model"] for a in attempts} == {"gpt-test"}
    # The error's class is recorded (whatever LangChain wraps it in), never its message.
    assert [a["error"] is not None for a in attempts] == [True, True, False]
