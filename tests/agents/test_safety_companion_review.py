"""The model's second opinion: asked only about ambiguous messages, typed, never in charge."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage

from personae.agents.safety import SecondOpinion, screen_in, second_opinion
from personae.personas.model import Persona
from personae.testing import FakeChatModel


def companion(profile: str = "companion") -> Persona:
    return Persona(id="rosie", name="Rosie", safety={"profile": profile})


def opinion(category: str, confidence: float) -> str:
    return json.dumps({"category": category, "confidence": confidence, "reason": "tone"})


async def test_an_ambiguous_message_the_model_finds_a_crisis_becomes_one() -> None:
    text = "I feel like such a burden to everyone."
    verdict = screen_in(companion(), text)
    assert verdict.passed and verdict.ambiguous
    model = FakeChatModel(responses=[opinion("crisis", 0.9)])
    final = await second_opinion(model, companion(), text, verdict, locale="en-GB")
    assert final.action == "support" and final.category == "crisis"
    assert final.rule == "model:crisis" and final.alert is not None
    assert final.reply is not None and "116 123" in final.reply
    assert len(model.calls) == 1
    sent = " ".join(str(m.content) for m in model.calls[0])
    assert "burden" in sent and '"category"' in sent


async def test_a_clear_verdict_is_never_sent_to_the_model() -> None:
    model = FakeChatModel(responses=[opinion("none", 1.0)])
    for text in ["I want to kill myself", "Lovely weather today", "How many pills?"]:
        verdict = screen_in(companion(), text)
        assert not verdict.ambiguous
        assert await second_opinion(model, companion(), text, verdict) is verdict
    assert model.calls == []


async def test_the_model_saying_none_or_unsure_keeps_the_rules_verdict() -> None:
    text = "I feel like such a burden to everyone."
    verdict = screen_in(companion(), text)
    for answer in (opinion("none", 0.99), opinion("crisis", 0.3)):
        model = FakeChatModel(responses=[answer])
        assert await second_opinion(model, companion(), text, verdict) is verdict
        assert len(model.calls) == 1


async def test_a_broken_or_failing_model_keeps_the_rules_verdict() -> None:
    text = "I feel like such a burden to everyone."
    verdict = screen_in(companion(), text)
    for script in ("I think they are fine.", '{"category": "maybe"}', TimeoutError("slow")):
        model = FakeChatModel(responses=[script])
        assert await second_opinion(model, companion(), text, verdict) is verdict


async def test_a_structured_answer_through_a_tool_call_is_read() -> None:
    text = "Should I use Western Union for this?"
    verdict = screen_in(companion(), text)
    assert verdict.ambiguous and verdict.topic == "scam"
    call = AIMessage("", tool_calls=[{
        "name": "SecondOpinion", "args": {"category": "scam", "confidence": 0.8}, "id": "c1",
    }])
    model = FakeChatModel(responses=[call])
    final = await second_opinion(model, companion(), text, verdict)
    assert final.action == "warn" and final.rule == "model:scam"


async def test_community_takes_only_a_crisis_from_the_model() -> None:
    persona = companion("community")
    text = "I feel like such a burden to everyone."
    verdict = screen_in(persona, text)
    assert verdict.ambiguous
    model = FakeChatModel(responses=[opinion("scam", 0.99)])
    assert await second_opinion(model, persona, text, verdict) is verdict


def test_the_opinion_is_a_typed_model() -> None:
    parsed = SecondOpinion.model_validate_json(opinion("emergency", 0.75))
    assert parsed.category == "emergency" and parsed.confidence == 0.75
