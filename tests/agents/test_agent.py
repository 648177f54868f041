"""The Agent: tools, host actions, streaming, retries and fallbacks, persistence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from personae.agents.agent import Agent
from personae.agents.turn import Reply, Scope, Turn
from personae.personas.model import Persona
from personae.settings import Settings
from personae.testing import FakeChatModel, FakeEmbeddings


class HTTPStatusError(Exception):
    """Stands in for an SDK error that carries an HTTP status code."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


def _persona(**extra: Any) -> Persona:
    return Persona.model_validate({
        "id": "brenna",
        "name": "Brenna",
        "greetings": ["Welcome to the Lantern!"],
        "fallbacks": ["Couldn't tell you, love."],
        "examples": [{"user": "What do you serve?", "reply": "Stew and dark ale."}],
        "tools": ["roll_dice"],
        "emotions": ["happy", "wary"],
        "actions": [{
            "name": "give_item",
            "description": "Hand the player an item.",
            "parameters": {
                "type": "object",
                "properties": {
                    "item": {"type": "string", "enum": ["ale", "stew", "key"]},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 5},
                },
                "required": ["item"],
                "additionalProperties": False,
            },
        }],
        **extra,
    })


def _agent(tmp_path: Path, model: Any, **kwargs: Any) -> Agent:
    settings = Settings(home=tmp_path / "home", retry_attempts=3, retry_deadline=5.0,
                        retry_wait_max=0.01)
    kwargs.setdefault("memory", False)
    return Agent(_persona(), model=model, settings=settings, embedder=FakeEmbeddings(),
                 **kwargs)


def _call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


async def test_tool_and_host_action(tmp_path: Path) -> None:
    model = FakeChatModel(responses=[
        AIMessage("", tool_calls=[
            _call("roll_dice", {"sides": 6, "count": 2}, "c1"),
            _call("give_item", {"item": "ale", "quantity": 1}, "c2"),
            _call("show_emotion", {"emotion": "happy"}, "c3"),
        ]),
        AIMessage("There's your ale, and the dice favour you."),
    ])
    agent = _agent(tmp_path, model, fallbacks=[])
    reply = await agent.respond("Roll for me and pour an ale")
    await agent.aclose()

    assert reply.text == "There's your ale, and the dice favour you."
    assert [(a.name, a.arguments, a.id) for a in reply.actions] == [
        ("give_item", {"item": "ale", "quantity": 1}, "c2")
    ]
    assert reply.emotion == "happy"
    assert reply.flags == []
    assert set(model.bound_tools) == {"roll_dice", "give_item", "show_emotion"}
    # The second model call saw the real dice result and the action acknowledgement.
    tool_results = {m.tool_call_id: m for m in model.calls[1] if isinstance(m, ToolMessage)}
    assert tool_results["c1"].text.startswith("rolled 2d6: [")
    assert "give_item" in tool_results["c2"].text
    # The style prompt reached the model as its system message.
    assert "Brenna" in model.calls[0][0].text


async def test_host_action_with_bad_arguments_is_not_sent(tmp_path: Path) -> None:
    model = FakeChatModel(responses=[
        AIMessage("", tool_calls=[_call("give_item", {"item": "sword", "quantity": 9}, "c1")]),
        AIMessage("", tool_calls=[_call("give_item", {"item": "stew"}, "c2")]),
        AIMessage("Stew it is."),
    ])
    agent = _agent(tmp_path, model, fallbacks=[])
    reply = await agent.respond("Give me a sword")
    await agent.aclose()

    assert [(a.name, a.arguments) for a in reply.actions] == [("give_item", {"item": "stew"})]
    refused = next(m for m in model.calls[1] if isinstance(m, ToolMessage))
    assert refused.status == "error"
    assert "not sent" in refused.text and "'sword' is not one of" in refused.text


async def test_stream_deltas_join_to_final_text(tmp_path: Path) -> None:
    text = "Stew's hot, ale's cold, and the fire is lit for you."
    model = FakeChatModel(responses=[AIMessage(text)], chunk_size=5)
    agent = _agent(tmp_path, model, fallbacks=[])
    items = [item async for item in agent.stream("What's good tonight?")]
    await agent.aclose()

    deltas = [i for i in items if isinstance(i, str)]
    final = items[-1]
    assert isinstance(final, Reply)
    assert len(deltas) > 3
    assert "".join(deltas) == final.text == text


async def test_transient_errors_are_retried_on_the_same_model(tmp_path: Path) -> None:
    model = FakeChatModel(responses=[HTTPStatusError(503), HTTPStatusError(503), "Back again."])
    agent = _agent(tmp_path, model, fallbacks=[])
    reply = await agent.respond("Hello?")
    await agent.aclose()

    assert reply.text == "Back again."
    assert len(model.calls) == 3
    assert reply.flags == []
    assert reply.model == "fake"


async def test_client_error_is_not_retried_and_next_link_answers(tmp_path: Path) -> None:
    broken = FakeChatModel(responses=[HTTPStatusError(400)], name_tag="first")
    backup = FakeChatModel(responses=["From the backup."], name_tag="second")
    agent = _agent(tmp_path, broken, fallbacks=[backup])
    reply = await agent.respond("Hello?")
    await agent.aclose()

    assert len(broken.calls) == 1
    assert reply.text == "From the backup."
    assert reply.model == "second"
    assert "fallback" in reply.flags
    failed = [e for e in reply.trace if e.get("step") == "model" and e["outcome"] == "failed"]
    assert failed and failed[0]["model"] == "first"


async def test_offline_model_ends_every_chain(tmp_path: Path) -> None:
    broken = FakeChatModel(responses=[HTTPStatusError(401)])
    agent = _agent(tmp_path, broken, fallbacks=[])
    assert [spec for spec, _ in agent.chain] == ["fake", "offline"]
    reply = await agent.respond("What do you serve?")
    await agent.aclose()

    assert reply.offline and reply.model == "offline"
    assert reply.text == "Stew and dark ale."


async def test_failed_turn_still_answers_and_keeps_the_message(tmp_path: Path) -> None:
    broken = FakeChatModel(responses=[HTTPStatusError(400)])
    agent = _agent(tmp_path, broken, fallbacks=[])

    async def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("offline model broke")

    offline = agent.chain[-1][1]
    object.__setattr__(offline, "_agenerate", explode)
    object.__setattr__(offline, "_astream", explode)
    reply = await agent.respond("Please remember the blue door")
    history = await agent.history()
    await agent.aclose()

    assert "error" in reply.flags
    assert reply.text == "Couldn't tell you, love."
    humans = [m.text for m in history if isinstance(m, HumanMessage)]
    assert humans == ["Please remember the blue door"]
    assert isinstance(history[-1], AIMessage)


async def test_history_survives_a_new_agent_on_the_same_home(tmp_path: Path) -> None:
    scope = Scope(persona="brenna", user="ann")
    first = _agent(tmp_path, FakeChatModel(responses=["Nice to meet you, Ann."]), fallbacks=[])
    await first.respond(Turn(text="My name is Ann.", scope=scope))
    await first.aclose()

    model = FakeChatModel(responses=["You're Ann."])
    second = _agent(tmp_path, model, fallbacks=[])
    await second.respond(Turn(text="What's my name?", scope=scope))
    other = await second.history(Scope(persona="brenna", user="bob"))
    await second.aclose()

    seen = [m.text for m in model.calls[0] if m.type != "system"]
    assert seen == ["My name is Ann.", "Nice to meet you, Ann.", "What's my name?"]
    assert other == []


async def test_reset_forgets_one_scope_only(tmp_path: Path) -> None:
    agent = _agent(tmp_path, FakeChatModel(default="ok"), fallbacks=[])
    ann, bob = Scope(persona="brenna", user="ann"), Scope(persona="brenna", user="bob")
    await agent.respond(Turn(text="hi", scope=ann))
    await agent.respond(Turn(text="hi", scope=bob))
    await agent.reset(ann)
    assert await agent.history(ann) == []
    assert len(await agent.history(bob)) == 2
    await agent.aclose()


def test_sync_wrapper(tmp_path: Path) -> None:
    agent = _agent(tmp_path, FakeChatModel(default="Aye."), fallbacks=[])
    try:
        assert agent.respond_sync("Evening").text == "Aye."
        assert agent.respond_sync("Again").text == "Aye."
    finally:
        agent.close()


async def test_lore_and_world_reach_the_prompt(tmp_path: Path) -> None:
    model = FakeChatModel(default="Aye.")
    settings = Settings(home=tmp_path / "home", retry_wait_max=0.01)
    persona = _persona(lore=[{"keys": ["dragon"], "content": "A dragon sleeps under Mount Ash."}])
    agent = Agent(persona, model=model, fallbacks=[], settings=settings, embedder=FakeEmbeddings(),
                  memory=False)
    await agent.respond(Turn(text="Is there a dragon near here?", world={"weather": "storm"}))
    await agent.respond(Turn(text="And the weather?"))
    await agent.aclose()

    first_prompt = model.calls[0][0].text
    assert "Mount Ash" in first_prompt and "storm" in first_prompt
    # Lore stays while the key is in the recent conversation.
    assert "Mount Ash" in model.calls[1][0].text


def _texts(messages: list[BaseMessage]) -> list[str]:
    return [m.text for m in messages]


def test_a_script_that_never_closes_the_agent_still_exits(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "from pathlib import Path\n"
        "from personae.agents.agent import Agent\n"
        "from personae.settings import Settings\n"
        "from personae.testing import FakeChatModel, FakeEmbeddings\n"
        "agent = Agent(__import__('personae').Persona(id='x', name='X'),"
        " model=FakeChatModel(default='Aye.'), fallbacks=[],"
        f" settings=Settings(home=Path({str(tmp_path)!r})), embedder=FakeEmbeddings(),"
        " memory=False)\n"
        "print(agent.respond_sync('hi').text)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Aye."


async def test_concurrent_turns_of_one_scope_lose_no_message(tmp_path: Path) -> None:
    import asyncio

    agent = _agent(tmp_path, FakeChatModel(default="Noted."), fallbacks=[])
    scope = Scope(persona="brenna", user="ann")
    said = [f"message {i}" for i in range(6)]
    replies = await asyncio.gather(*(agent.respond(Turn(text=t, scope=scope)) for t in said))
    history = await agent.history(scope)
    await agent.aclose()

    assert [r.text for r in replies] == ["Noted."] * 6
    humans = sorted(m.text for m in history if isinstance(m, HumanMessage))
    assert humans == said
    assert len(history) == 12
