"""What the bot posts: no mass or role pings, 2000-character parts, clean webhook names."""

from __future__ import annotations

import random

import pytest

from personae.integrations.discord.output import (
    MESSAGE_LIMIT,
    neutralise,
    sanitise_name,
    split_message,
)

ZWJ = "\u200d"


# --- neutralise --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("@everyone look", f"@{ZWJ}everyone look"),
    ("hi @here!", f"hi @{ZWJ}here!"),
    ("ping <@&123456> now", f"ping <@{ZWJ}&123456> now"),
    ("@everyone@here", f"@{ZWJ}everyone@{ZWJ}here"),
])
def test_mass_and_role_pings_are_broken(text: str, expected: str) -> None:
    assert neutralise(text) == expected


def test_user_mentions_and_plain_text_are_left_alone() -> None:
    text = "thanks <@42> and <@!43>, mail me at ann@example.org, see @hereford"
    assert neutralise(text) == text


def test_neutralise_is_stable() -> None:
    once = neutralise("@everyone <@&1> @here")
    assert neutralise(once) == once
    assert "@everyone" not in once and "@here" not in once and "<@&" not in once


# --- split_message -------------------------------------------------------------------------


def test_short_and_blank_text() -> None:
    assert split_message("Hello there.") == ["Hello there."]
    assert split_message("x" * MESSAGE_LIMIT) == ["x" * MESSAGE_LIMIT]
    assert split_message("") == []
    assert split_message(" \n\n ") == []


def test_long_prose_splits_between_words_within_the_limit() -> None:
    words = [f"word{i}" for i in range(1200)]
    parts = split_message(" ".join(words))
    assert len(parts) > 1
    assert all(len(p) <= MESSAGE_LIMIT for p in parts)
    assert " ".join(parts).split() == words  # no word cut in two, none lost


def test_prefers_paragraph_breaks() -> None:
    first = "A" * 10 + " " + "a " * 700
    second = "B " * 400
    parts = split_message(first.strip() + "\n\n" + second.strip())
    assert parts[0] == first.strip() and parts[1] == second.strip()


def test_a_word_longer_than_a_message_is_cut_hard() -> None:
    parts = split_message("y" * 4500)
    assert [len(p) for p in parts] == [2000, 2000, 500]


def test_respects_a_smaller_limit_exactly() -> None:
    parts = split_message("abc " * 100, limit=50)
    assert all(len(p) <= 50 for p in parts)
    assert max(len(p) for p in parts) >= 45  # filled, not split needlessly small
    with pytest.raises(ValueError, match="too small"):
        split_message("abc", limit=10)


def fences_balanced(part: str) -> bool:
    return part.count("```") % 2 == 0


def test_code_blocks_are_closed_and_reopened_with_their_language() -> None:
    code = "\n".join(f"    print({i})  # line {i}" for i in range(150))
    text = f"Here is the script:\n\n```python\n{code}\n```\n\nRun it with python."
    parts = split_message(text)
    assert len(parts) >= 2
    for part in parts:
        assert len(part) <= MESSAGE_LIMIT
        assert fences_balanced(part), part[-80:]
    assert parts[0].endswith("\n```")
    assert parts[1].startswith("```python\n")
    # Every code line survives, indentation included.
    lines = [line for p in parts for line in p.split("\n")]
    for i in range(150):
        assert f"    print({i})  # line {i}" in lines


def test_a_code_block_without_language_reopens_plain() -> None:
    text = "```\n" + "\n".join("x = 1" for _ in range(600)) + "\n```"
    parts = split_message(text)
    assert all(p.startswith("```\n") for p in parts)
    assert all(fences_balanced(p) for p in parts)


def test_a_block_opened_and_closed_on_one_line_is_not_reopened() -> None:
    text = "Use ```ls``` to list.\n" + "word " * 600
    parts = split_message(text)
    assert not parts[1].startswith("```")


def test_fences_count_wherever_they_stand_as_in_discord() -> None:
    text = "See ```json\n" + "{}\n" * 800 + "``` and then " + "more " * 10
    parts = split_message(text)
    assert all(fences_balanced(p) for p in parts)
    assert parts[1].startswith("```json\n")


def test_random_texts_keep_every_rule() -> None:
    rng = random.Random(1234)
    vocab = ["the", "lantern", "inn", "¿qué?", "龙", "a" * 30, "<@&1>", "#help", "ok."]
    for _ in range(60):
        pieces: list[str] = []
        for _ in range(rng.randint(1, 40)):
            if rng.random() < 0.15:
                body = "\n".join(" ".join(rng.choices(vocab, k=rng.randint(1, 12)))
                                 for _ in range(rng.randint(1, 60)))
                pieces.append(f"```{rng.choice(['', 'py', 'json'])}\n{body}\n```")
            else:
                pieces.append(" ".join(rng.choices(vocab, k=rng.randint(1, 80))))
        text = rng.choice(["\n\n", "\n", " "]).join(pieces)
        limit = rng.choice([60, 200, 2000])
        parts = split_message(text, limit=limit)
        assert parts, text
        words = text.replace("```py", " ").replace("```json", " ").replace("```", " ").split()
        seen = " ".join(parts)
        seen = seen.replace("```py", " ").replace("```json", " ").replace("```", " ").split()
        for part in parts:
            assert 0 < len(part) <= limit
            assert fences_balanced(part)
        if all(len(w) < limit - 10 for w in words):
            assert seen == words  # nothing lost, nothing added, no word broken


# --- sanitise_name -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("Brenna Hollowell", "Brenna Hollowell"),
    ("Wren @ Lumen #1: guide", "Wren Lumen 1 guide"),
    ("Discord Helper", "Helper"),
    ("clydeBot", "Bot"),
    ("disCLYDEcord", "personae"),  # removing one reveals the other
    ("```Wren```", "Wren"),
    ("   ", "personae"),
    ("everyone", "personae"),
    ("@here", "personae"),
])
def test_names_discord_accepts(name: str, expected: str) -> None:
    assert sanitise_name(name) == expected


def test_names_are_cut_to_80_characters_and_fallback_is_cleaned_too() -> None:
    assert len(sanitise_name("N" * 200)) == 80
    assert sanitise_name("", fallback="Discord Wren") == "Wren"
    assert sanitise_name("", fallback="clyde") == "personae"
