"""A Chinese persona end to end: prompt, token budget, offline reply, lore and memory in Chinese."""

from __future__ import annotations

from pathlib import Path

import pytest

from personae.agents.agent import Agent
from personae.agents.turn import Scope, Turn
from personae.memory.facts import RuleFactExtractor
from personae.personas.model import Persona
from personae.settings import Settings
from personae.tokens import default_counter

LAOWANG = Persona.model_validate({
    "id": "laowang",
    "name": "老王",
    "description": "江边小镇客栈的老板，说话爽快。",
    "speech": {"language": "zh", "max_sentences": 2},
    "greetings": ["客官里边请！"],
    "fallbacks": ["这个嘛，老王我可说不上来。", "这事儿您得问别人喽。"],
    "examples": [
        {"user": "你们店里卖什么？", "reply": "包子、面条，还有自家酿的米酒。"},
        {"user": "今晚还有空房间吗？", "reply": "还剩一间，楼上靠窗，二两银子。"},
        {"user": "铁匠铺在哪里？", "reply": "出门右拐，河边那家就是。"},
    ],
    "lore": [{"keys": ["米酒"], "content": "老王的米酒用山泉水酿，一年只酿一次。"}],
})


@pytest.mark.slow
async def test_chinese_persona_answers_offline_with_lore_and_memory(tmp_path: Path) -> None:
    agent = Agent(LAOWANG, model="offline", settings=Settings(home=tmp_path),
                  fact_extractor=RuleFactExtractor())
    ann = Scope(persona="laowang", user="ann")
    reply = await agent.respond(Turn(text="今晚还有房间吗？", scope=ann))
    assert reply.text == "还剩一间，楼上靠窗，二两银子。" and reply.offline

    compiled = await agent.explain(Turn(text="你们的米酒怎么酿的？", scope=ann))
    assert "山泉水" in compiled.text  # lore key matched inside Chinese text
    assert "中文" in compiled.text or "Chinese" in compiled.text

    await agent.respond(Turn(text="我叫安娜，我住在杭州。", scope=ann))
    await agent._settle()
    facts = [r.text for r in agent.memory.list(ann, kind="fact")] if agent.memory else []
    assert any("杭州" in f for f in facts)
    recalled = await agent.explain(Turn(text="我住在哪里？", scope=ann))
    assert "杭州" in recalled.text
    await agent.aclose()


def test_chinese_tokens_are_counted_per_character() -> None:
    text = "老王的米酒用山泉水酿一年只酿一次"
    assert default_counter().count(text) >= len(text) - 2
