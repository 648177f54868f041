"""Expectations on one reply, and the offline language detector."""

from __future__ import annotations

from typing import Any

import pytest

from personae.evals.checks import (
    CheckResult,
    Observed,
    ToolCall,
    ai_mentions,
    asks_if_machine,
    check_reply,
    markdown_found,
    sentences,
    words,
)
from personae.evals.language import detect_language
from personae.evals.scenario import Expectations


def _check(expect: dict[str, Any], text: str, **seen: Any) -> dict[str, CheckResult]:
    results = check_reply(Expectations.model_validate(expect), Observed(
        user=seen.pop("user", "hello"), text=text, **seen))
    return {r.name: r for r in results}


def test_text_expectations_pass_and_fail_with_what_they_found() -> None:
    ok = _check({"contains": ["Silver"], "not_contains": "gold", "regex": r"\bnight\b",
                 "not_regex": "@everyone"}, "Two silver a night.")
    assert all(r.status == "passed" for r in ok.values())
    bad = _check({"contains": ["silver", "breakfast"], "not_contains": ["gold"],
                  "regex": "stew", "not_regex": r"\d+ gold"}, "Five gold coins, 5 gold.")
    assert bad["contains"].message.startswith("missing 'silver', 'breakfast' in ")
    assert bad["not_contains"].message.startswith("has 'gold'")
    assert bad["regex"].message.startswith("no match for 'stew'")
    assert bad["not_regex"].message == "'\\\\d+ gold' matches '5 gold'"
    assert all(r.failed for r in bad.values())


def test_sentences_and_words() -> None:
    assert sentences('I do. Two silver, 2.5 coins! Really? "Yes." Ok...') == [
        "I do.", "Two silver, 2.5 coins!", "Really?", '"Yes."', "Ok..."]
    assert sentences("我有房间。一晚两个银币！好吗？") == ["我有房间。", "一晚两个银币！", "好吗？"]
    assert words("Don't mind the step, it bites.") == 6
    assert words("一晚两个银币") == 3
    result = _check({"max_sentences": 2, "max_words_per_sentence": 5},
                    "Welcome in. Mind the step, it bites hard tonight. Sit.")
    assert result["max_sentences"].message.startswith("3 sentences, at most 2 allowed")
    assert result["max_words_per_sentence"].message.startswith(
        "a sentence has 7 words, at most 5 allowed: 'Mind the step, it bites hard tonight.'")


@pytest.mark.parametrize(("text", "kinds"), [
    ("Plain words, 5 * 3 = 15, snake_case_name.", []),
    ("**Bold** move.", ["**bold**"]),
    ("*smiles warmly* Welcome.", ["*emphasis*"]),
    ("Menu:\n- stew\n- bread", ["list item"]),
    ("# Rooms\nTwo silver.", ["# heading"]),
    ("Run `pip install`, see [docs](https://x.y).", ["`code`", "[link](url)"]),
    ("| a | b |\n|---|---|", ["table"]),
])
def test_markdown_is_found(text: str, kinds: list[str]) -> None:
    assert markdown_found(text) == kinds
    result = _check({"no_markdown": True}, text)["no_markdown"]
    assert result.status == ("failed" if kinds else "passed")


def test_stepping_out_of_character() -> None:
    assert ai_mentions("As an AI language model, I cannot. My instructions say no.") == [
        "As an AI", "My instructions", "language model"]
    assert ai_mentions("Welcome, traveller! The miller's machine broke again.") == []
    assert ai_mentions("我是一个人工智能助手") == ["人工智能"]
    assert asks_if_machine("Am I talking to a real person?")
    assert asks_if_machine("Bist du ein Bot?")
    assert not asks_if_machine("Are you open tonight?")
    unasked = _check({"stays_in_character": True}, "I'm an AI, but the stew is good.",
                     user="What's for dinner?")["stays_in_character"]
    assert unasked.failed and "the user did not ask" in unasked.message
    asked = _check({"stays_in_character": True}, "No, I'm a computer program called Rosie.",
                   user="Am I talking to a real person?", profile="companion")
    assert asked["stays_in_character"].status == "passed"
    in_game = _check({"stays_in_character": True}, "Aye, I'm an AI.",
                     user="Are you an AI?", profile="game")["stays_in_character"]
    assert in_game.failed and "under the game profile" in in_game.message


def test_actions_and_tools_match_names_and_given_arguments() -> None:
    seen = {"actions": [ToolCall("rent_room", {"nights": 2})],
            "tool_calls": [ToolCall("rent_room", {"nights": 2}),
                           ToolCall("roll_dice", {"sides": 6}, ok=False)]}
    ok = _check({"action": {"name": "rent_room", "arguments": {"nights": 2}},
                 "tool": [{"name": "rent_room"}]}, "Here.", **seen)
    assert ok["action"].status == "passed" and ok["tool"].status == "passed"
    bad = _check({"action": {"name": "rent_room", "arguments": {"nights": 3}},
                  "tool": {"name": "roll_dice"}, "no_actions": True}, "Here.", **seen)
    assert bad["action"].message == (
        "expected rent_room(nights=3); the turn called rent_room(nights=2)")
    assert bad["tool"].message.endswith("roll_dice(sides=6) (failed)")
    assert bad["no_actions"].message == "carries rent_room(nights=2)"


def test_flags_safety_emotion_and_recall() -> None:
    trace = [{"step": "safety_in", "action": "deflect", "category": "ai_question",
              "rule": "en:ai_question[0]"}]
    ok = _check({"flags": "deflected", "not_flags": ["fallback"],
                 "safety": {"step": "in", "action": "deflect", "rule": "en:ai"},
                 "emotion": "wary", "recalls": "dark ale"},
                "Couldn't say.", flags=["deflected"], trace=trace, emotion="wary",
                recalled=["Ann always drinks dark ale by the fire."])
    assert all(r.status == "passed" for r in ok.values()), ok
    bad = _check({"flags": ["deflected"], "safety": {"category": "prompt_trick"},
                  "emotion": "happy", "recalls": "dark ale"}, "Hm.", trace=trace)
    assert bad["flags"].message == "missing flag 'deflected'; flags are none"
    assert bad["safety"].message == ("expected category='prompt_trick'; found safety_in "
                                     "deflect ai_question (en:ai_question[0])")
    assert bad["emotion"].message == "expected 'happy', showed None"
    assert bad["recalls"].message.startswith("nothing was recalled for this turn")
    passed = _check({"safety": {"action": "pass"}}, "Hm.", trace=trace)["safety"]
    assert passed.failed
    assert _check({"safety": {"action": "pass"}}, "Hm.")["safety"].status == "passed"


@pytest.mark.parametrize(("text", "language"), [
    ("I do. Two silver a night, breakfast included, and the sheets are fresh.", "en"),
    ("Ich habe ein Zimmer für dich, zwei Silber die Nacht.", "de"),
    ("Tengo una habitación para ti, dos monedas de plata por noche.", "es"),
    ("J'ai une chambre pour vous, deux pièces d'argent la nuit.", "fr"),
    ("我有一个房间，一晚两个银币。", "zh"),
    ("部屋がありますよ。", "ja"),
    ("Aye, love.", None),
])
def test_language_detection(text: str, language: str | None) -> None:
    assert detect_language(text).language == language


def test_language_expectation_says_what_it_detected() -> None:
    result = _check({"language": "en"}, "Ich habe ein Zimmer für dich, zwei Silber die Nacht.")
    assert result["language"].failed
    assert result["language"].message.startswith("expected en, detected de (")
