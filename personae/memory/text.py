"""Word tokens for keyword search: English stop-words out, CJK text as character bigrams.

The keyword side of recall (SQLite FTS5 BM25) and the BM25 baselines of the
benchmarks both index `tokenize(text)`. Chinese, Japanese and Korean are
written without spaces between words (or, for Korean, with particles glued to
them), so a whitespace tokenizer would index whole sentences as one token;
overlapping character bigrams are the standard answer (Lucene's `CJKBigramFilter`
does the same) and make CJK recall work even with the English embedding model.

Example:
    ```python
    >>> tokenize("Where is the blacksmith's forge?")
    ['blacksmith', 'forge']
    >>> tokenize("我的猫叫小白")
    ['我的', '的猫', '猫叫', '叫小', '小白']
    ```
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["STOP_WORDS", "tokenize"]

_STOP_WORDS = """
    a about above after again against ain all am an and any are aren aren't as at be because
    been before being below between both but by can couldn couldn't d did didn didn't do does
    doesn doesn't doing don don't down during each few for from further had hadn hadn't has
    hasn hasn't have haven haven't having he her here hers herself him himself his how i if in
    into is isn isn't it it's its itself just ll m ma me mightn mightn't more most mustn mustn't
    my myself needn needn't no nor not now o of off on once only or other our ours ourselves out
    over own re s same shan shan't she she's should should've shouldn shouldn't so some such t
    than that that'll the their theirs them themselves then there these they this those through
    to too under until up ve very was wasn wasn't we were weren weren't what when where which
    while who whom why will with won won't wouldn wouldn't y you you'd you'll you're you've your
    yours yourself yourselves also could would may might must shall us get got let
"""
STOP_WORDS: frozenset[str] = frozenset(_STOP_WORDS.split())
"""English stop-words (NLTK's list, plus a few modal and filler verbs), lowercase.

Contractions appear both whole and split (`don't`, `don`, `t`), because the
tokenizer splits on apostrophes."""

# Han (with extensions and compatibility ideographs), kana and Hangul. NFKC has
# already turned half-width katakana into full-width ones.
_CJK = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u3040-\u309f"  # Hiragana
    "\u30a0-\u30ff"  # Katakana, including the prolonged sound mark
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\ua960-\ua97f"  # Hangul Jamo extended A
    "\uac00-\ud7af"  # Hangul syllables
    "\ud7b0-\ud7ff"  # Hangul Jamo extended B
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003134f"  # CJK extensions B-H
)
_TOKEN = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<word>(?:(?![{_CJK}])[^\W_])+)")


def tokenize(text: str) -> list[str]:
    """Split text into lowercase keyword tokens, in order, repeats kept.

    Latin, Cyrillic, Greek and other spaced scripts give one token per run of
    letters and digits (apostrophes, hyphens and underscores split words), with
    English stop-words removed. A run of CJK characters gives its overlapping
    character bigrams, or the character itself when the run is one character
    long. Text is NFKC-normalised first, so full-width letters and digits match
    their ASCII forms.

    Args:
        text: Any text.

    Returns:
        The tokens; empty when the text holds only stop-words and punctuation.

    """
    tokens: list[str] = []
    for match in _TOKEN.finditer(unicodedata.normalize("NFKC", text).lower()):
        run = match.group("cjk")
        if run is None:
            word = match.group("word")
            if word not in STOP_WORDS:
                tokens.append(word)
        elif len(run) == 1:
            tokens.append(run)
        else:
            tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    return tokens
