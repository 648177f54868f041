from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from personae import tokens
from personae.tokens import (
    HeuristicCounter,
    TokenCounter,
    WordPieceCounter,
    bundled_tokenizer_path,
    default_counter,
)


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget tokenizers loaded by earlier tests, and the cached default counter."""
    monkeypatch.setattr(tokens, "_loaded", {})
    default_counter.cache_clear()
    yield
    default_counter.cache_clear()


def test_default_counter_is_the_bundled_wordpiece_tokenizer() -> None:
    counter = default_counter()
    assert isinstance(counter, WordPieceCounter)
    assert isinstance(counter, TokenCounter)
    assert not counter.is_fallback
    assert counter.path == bundled_tokenizer_path()
    assert default_counter() is counter


def test_english_counts_words_and_punctuation_without_special_tokens() -> None:
    counter = default_counter()
    assert counter.count("") == 0
    assert counter.count("hello") == 1
    assert counter.count("The ale is fresh.") == 5


def test_short_text_is_not_padded_and_long_text_is_not_truncated() -> None:
    counter = default_counter()
    # The bundled tokenizer.json pads and truncates to 128 tokens.
    assert counter.count("hi") == 1
    assert counter.count("tavern " * 2000) == 2000


def test_chinese_counts_one_token_per_character() -> None:
    counter = default_counter()
    text = "欢迎光临灯笼酒馆老板"
    assert len(text) == 10
    assert counter.count(text) == 10
    assert counter.count("你好，我是林阿姨。") == 9


def test_heuristic_counter_estimates_latin_and_cjk() -> None:
    counter = HeuristicCounter()
    assert counter.count("") == 0
    assert counter.count("abcdefgh") == 2
    assert counter.count("abcdefghi") == 3
    assert counter.count("欢迎光临灯笼酒馆老板") == 10
    assert counter.count("ab你好") == 3
    assert isinstance(counter, TokenCounter)


def test_tokenizer_loads_once_for_all_threads(
    fresh_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[Path | None] = []
    real_read = tokens._read_tokenizer

    def counting_read(path: Path | None) -> object:
        reads.append(path)
        return real_read(path)

    monkeypatch.setattr(tokens, "_read_tokenizer", counting_read)
    counters = [WordPieceCounter(), WordPieceCounter()]
    texts = ["The ale is fresh.", "欢迎光临灯笼酒馆老板", "hello " * 300] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: counters[i % 2].count(texts[i]), range(len(texts))))
    assert results == [5, 10, 300] * 8
    assert reads == [bundled_tokenizer_path()]


def test_missing_tokenizer_file_falls_back_to_the_heuristic_with_a_warning(
    fresh_cache: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    counter = WordPieceCounter(tmp_path / "missing" / "tokenizer.json")
    with caplog.at_level(logging.WARNING, logger="personae.tokens"):
        assert counter.count("abcdefgh") == 2
        assert counter.count("欢迎光临") == 4
    assert counter.is_fallback
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "tokenizer" in warnings[0].getMessage()


def test_default_counter_without_bundled_tokenizer_is_heuristic(
    fresh_cache: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(tokens, "bundled_tokenizer_path", lambda: tmp_path / "tokenizer.json")
    with caplog.at_level(logging.WARNING, logger="personae.tokens"):
        counter = default_counter()
    assert isinstance(counter, HeuristicCounter)
    assert "no bundled tokenizer" in caplog.text


def test_importing_tokens_loads_no_heavy_library() -> None:
    code = (
        "import sys, personae.tokens\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers', 'tokenizers')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
