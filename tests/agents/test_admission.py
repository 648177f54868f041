"""A shared admission slot: held from a turn's start until its model call begins."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from personae.agents.agent import Agent
from personae.personas.model import Persona
from personae.settings import Settings
from personae.testing import FakeChatModel


class _HeldModel(FakeChatModel):
    """Notes when each call starts, then answers only when its gate opens."""

    started: list[str] = Field(default_factory=list)
    gates: dict[str, asyncio.Event] = Field(default_factory=dict)

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        who = str(messages[-1].text)
        self.started.append(who)
        await self.gates.setdefault(who, asyncio.Event()).wait()
        return ChatResult(generations=[ChatGeneration(message=AIMessage(f"re: {who}"))])


def _agent(tmp_path: Path, name: str, model: Any, gate: asyncio.Semaphore) -> Agent:
    persona = Persona.model_validate({"id": name, "name": name.title()})
    return Agent(persona, model=model, fallbacks=[], settings=Settings(home=tmp_path / name),
                 memory=False, admission=gate)


async def _until(condition: Any) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


async def test_the_slot_frees_when_the_model_starts_not_when_the_turn_ends(
    tmp_path: Path,
) -> None:
    gate = asyncio.Semaphore(1)
    model = _HeldModel(started=[], gates={})
    first, second = _agent(tmp_path, "ada", model, gate), _agent(tmp_path, "bo", model, gate)
    try:
        a = asyncio.create_task(first.respond("to ada"))
        await _until(lambda: model.started == ["to ada"])
        # Ada's model is still answering, yet Bo's turn gets the slot and reaches its model.
        b = asyncio.create_task(second.respond("to bo"))
        await _until(lambda: model.started == ["to ada", "to bo"])
        model.gates["to ada"].set()
        model.gates["to bo"].set()
        assert (await a).text == "re: to ada"
        assert (await b).text == "re: to bo"
        assert not gate.locked()
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_turn_waits_for_a_slot_and_failed_turns_give_theirs_back(
    tmp_path: Path,
) -> None:
    gate = asyncio.Semaphore(1)
    model = _HeldModel(started=[], gates={})
    agent = _agent(tmp_path, "ada", model, gate)
    try:
        await gate.acquire()  # someone else is preparing a turn
        turn = asyncio.create_task(agent.respond("hello"))
        await asyncio.sleep(0.2)
        assert model.started == []
        gate.release()
        await _until(lambda: model.started == ["hello"])
        model.gates["hello"].set()
        await turn
        assert not gate.locked()

        async def explode(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the memory broke")

        object.__setattr__(agent, "_recall", explode)  # a turn that fails before its model
        reply = await agent.respond("again")
        assert "error" in reply.flags
        assert not gate.locked()
    finally:
        await agent.aclose()
