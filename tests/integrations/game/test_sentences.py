"""Streamed text to finished, speakable sentences."""

from __future__ import annotations

import pytest

from personae.integrations.game.sentences import SentenceSplitter, plain_text


def _split(pieces: list[str]) -> list[str]:
    splitter = SentenceSplitter()
    found = []
    for piece in pieces:
        found += splitter.feed(piece)
    return found + splitter.flush()


def test_sentences_end_at_marks_followed_by_space_or_end() -> None:
    text = 'Hello there! Mr. Hobb paid 3.5 silver… "Fair," he said. Is that all? Yes'
    expected = ["Hello there!", "Mr. Hobb paid 3.5 silver…", '"Fair," he said.',
                "Is that all?", "Yes"]
    assert _split([text]) == expected
    # However the stream is cut, the sentences are the same.
    assert _split(list(text)) == expected
    assert _split([text[i : i + 5] for i in range(0, len(text), 5)]) == expected


def test_sentences_are_not_sent_before_they_are_finished() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("It costs 3.") == []
    assert splitter.feed("5 silver. Then") == ["It costs 3.5 silver."]
    assert splitter.flush() == ["Then"]
    assert splitter.flush() == []


def test_chinese_and_japanese_marks_need_no_space() -> None:
    found = _split(["欢迎光临！要住店吗？", "两银子一晚。"])
    assert found == ["欢迎光临！", "要住店吗？", "两银子一晚。"]


@pytest.mark.parametrize(("raw", "plain"), [
    ("**Welcome**, *traveller*!", "Welcome, traveller!"),
    ("Use `the key` on __that__ door.", "Use the key on that door."),
    ("# The Menu", "The Menu"),
    ("- stew and bread", "stew and bread"),
    ("See [the map](https://example.org/map.png) first.", "See the map first."),
    ("Cheers 🍺🎉!", "Cheers!"),
    ("Flags 🇬🇧 and hearts ❤️ go.", "Flags and hearts go."),
    ("snake_case_words stay", "snake_case_words stay"),
])
def test_markdown_and_emoji_are_stripped(raw: str, plain: str) -> None:
    assert plain_text(raw) == plain


def test_a_sentence_of_only_markup_is_dropped() -> None:
    assert _split(["Hi. 🎉🎉 ", "*** Bye."]) == ["Hi.", "Bye."]
