from __future__ import annotations

import pytest

from personae.personas.lore import Activation, activate
from personae.personas.model import LoreEntry

ALE = LoreEntry(keys=["ale"], content="The Lantern brews a dark ale.")


def contents(activations: list[Activation]) -> list[str]:
    return [a.entry.content for a in activations]


@pytest.mark.parametrize("text", ["Any ALE today?", "ale", "One Ale, please.", "(ale)", "我要ale"])
def test_latin_key_matches_case_insensitive_whole_word(text: str) -> None:
    assert contents(activate([ALE], [text])) == [ALE.content]


@pytest.mark.parametrize("text", ["Is it for sale?", "Two ales", "the alehouse", "pale", ""])
def test_latin_key_does_not_match_inside_other_words(text: str) -> None:
    assert activate([ALE], [text]) == []


def test_multi_word_key_matches_across_any_whitespace() -> None:
    mill = LoreEntry(keys=["old mill"], content="The old mill burned down.")
    assert activate([mill], ["Have you seen the Old\n  Mill?"])
    assert activate([mill], ["old windmill"]) == []


def test_key_with_regex_characters_is_literal() -> None:
    cpp = LoreEntry(keys=["C++"], content="Mira once learned C++.")
    assert activate([cpp], ["do you know c++ at all"])
    assert activate([cpp], ["C"]) == []


def test_cjk_key_matches_as_substring() -> None:
    beer = LoreEntry(keys=["麦酒"], content="灯笼酒馆自酿麦酒。")
    assert contents(activate([beer], ["我想喝麦酒了"])) == [beer.content]
    assert activate([beer], ["我想喝茶"]) == []


def test_reason_names_key_and_message_number() -> None:
    entry = LoreEntry(keys=["mead", "ale"], content="Drinks.")
    [activation] = activate([entry], ["hello", "nothing here", "ALE and Mead please"])
    assert activation.reason == "key 'mead' in message 3"
    [activation] = activate([entry], ["Ale first", "then mead"])
    assert activation.reason == "key 'mead' in message 2"


def test_constant_entry_is_always_active() -> None:
    inn = LoreEntry(constant=True, content="The Lantern is an inn.")
    [activation] = activate([inn], [])
    assert activation.reason == "constant"
    assert activation.entry is inn


def test_order_is_constant_then_priority_then_file_order() -> None:
    entries = [
        LoreEntry(keys=["ale"], content="low", priority=-5),
        LoreEntry(keys=["ale"], content="first at 10", priority=10),
        LoreEntry(constant=True, content="constant low", priority=-100),
        LoreEntry(keys=["ale"], content="second at 10", priority=10),
        LoreEntry(keys=["wine"], content="not mentioned", priority=1000),
        LoreEntry(constant=True, content="constant high", priority=3),
        LoreEntry(keys=["ale"], content="default"),
    ]
    assert contents(activate(entries, ["an ale"])) == [
        "constant high",
        "constant low",
        "first at 10",
        "second at 10",
        "default",
        "low",
    ]


def test_activation_is_immutable() -> None:
    [activation] = activate([ALE], ["ale"])
    with pytest.raises(AttributeError):
        activation.reason = "changed"  # type: ignore[misc]
