"""Keyword tokens: stop-words out, CJK as bigrams."""

from __future__ import annotations

import pytest

from personae.memory.text import STOP_WORDS, tokenize


def test_english_words_lowercased_without_stop_words() -> None:
    assert tokenize("Where is the Blacksmith's forge? I don't know!") == [
        "blacksmith", "forge", "know",
    ]


def test_stop_words_only_gives_nothing() -> None:
    assert tokenize("What was it that you had?") == []
    assert tokenize("  ...!? ") == []


def test_stop_words_are_lowercase_and_cover_contractions() -> None:
    assert all(word == word.lower() for word in STOP_WORDS)
    assert {"the", "and", "don", "t", "s"} <= STOP_WORDS


def test_digits_and_fullwidth_forms() -> None:
    assert tokenize("Room 42, ＡＢＣ１２３") == ["room", "42", "abc123"]


def test_other_spaced_scripts_keep_their_words() -> None:
    assert tokenize("Москва café naïve") == ["москва", "café", "naïve"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的猫叫小白", ["我的", "的猫", "猫叫", "叫小", "小白"]),
        ("猫", ["猫"]),
        ("東京タワー", ["東京", "京タ", "タワ", "ワー"]),
        ("ひらがな", ["ひら", "らが", "がな"]),
        ("안녕하세요 친구", ["안녕", "녕하", "하세", "세요", "친구"]),
        ("我爱Python和Rust", ["我爱", "python", "和", "rust"]),
    ],
)
def test_cjk_runs_become_bigrams(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_halfwidth_katakana_matches_fullwidth() -> None:
    assert tokenize("ﾀﾜｰ") == tokenize("タワー")


def test_repeats_are_kept_in_order() -> None:
    assert tokenize("tea, more tea, green tea") == ["tea", "tea", "green", "tea"]
