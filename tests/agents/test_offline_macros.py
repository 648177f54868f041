"""The offline model speaks its lines with card macros expanded."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage

from personae.agents.offline import OfflineChatModel
from personae.personas.model import Persona
from personae.testing import FakeEmbeddings

CARD_STYLE = Persona.model_validate(
    {
        "id": "mira",
        "name": "Mira",
        "greetings": ["Welcome, {{user}}! <BOT> at your service."],
        "fallbacks": ["{{char}} wouldn't know, {{user}}.", "Ask <BOT> another, <USER>."],
        "examples": [{"user": "What is your name?", "reply": "I am {{char}}, dear {{user}}."}],
        "lore": [{"keys": ["well"], "content": "{{char}}'s well is older than the village."}],
    }
)


def _model() -> OfflineChatModel:
    return OfflineChatModel(persona=CARD_STYLE, embedder=FakeEmbeddings())


def _ask(text: str, speaker: str | None = None, *before: AIMessage | HumanMessage) -> str:
    message = HumanMessage(text, name=speaker) if speaker else HumanMessage(text)
    return _model().invoke([*before, message]).text


def test_example_reply_names_the_character_and_the_speaker() -> None:
    assert _ask("What is your name?", "Ann") == "I am Mira, dear Ann."
    assert _ask("What is your name?") == "I am Mira, dear User."


def test_greeting_and_lore_lines_are_expanded() -> None:
    assert _ask("hello", "Ann") == "Welcome, Ann! Mira at your service."
    assert _ask("well is older than the village", "Ann") == (
        "Mira's well is older than the village."
    )


def test_fallback_lines_are_expanded_and_not_repeated() -> None:
    assert _ask("zzz qqq", "Ann") == "Mira wouldn't know, Ann."
    # After one reply the next fallback line is due; it was just said (as
    # expanded), so the other one comes instead.
    said = AIMessage("Ask Mira another, Ann.")
    assert _ask("zzz qqq", "Ann", HumanMessage("x"), said) == "Mira wouldn't know, Ann."


def test_an_expanded_line_just_said_is_not_repeated() -> None:
    said = AIMessage("I am Mira, dear Ann.")
    again = _ask("What is your name?", "Ann", HumanMessage("What is your name?"), said)
    assert again != "I am Mira, dear Ann."


def test_streamed_line_is_expanded_too() -> None:
    chunks = list(_model().stream([HumanMessage("What is your name?", name="Bo")]))
    assert "".join(chunk.text for chunk in chunks) == "I am Mira, dear Bo."
