"""Finished sentences out of streamed text, as plain text a game can hand to TTS.

A sentence ends at `.`, `!`, `?` or `…` followed by a space or the end of
the text (closing quotes and brackets stay with it), and at the full-width
`。`, `！`, `？`, which need no space. A few abbreviations (`Mr.`, `Dr.`,
`e.g.`) do not end one. Each sentence loses its markdown (emphasis marks,
inline code, heading marks, list bullets; links keep their text) and its
emoji before it is sent.
"""

from __future__ import annotations

import re

__all__ = ["SentenceSplitter", "plain_text"]

_CLOSERS = "\"'”’)]»」』"
_END = re.compile(
    rf"(?:[.!?…]+[{re.escape(_CLOSERS)}]*(?=\s|$))|(?:[。！？]+[{re.escape(_CLOSERS)}]*)"
)
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "mt", "jr", "sr", "vs", "etc", "e.g", "i.e"}
)

_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_HEADING = re.compile(r"(?m)^\s{0,3}#{1,6}\s*")
_BULLET = re.compile(r"(?m)^\s*(?:[-+*]|\d+[.)])\s+")
_UNDERSCORE = re.compile(r"(?<![\w])_+([^_]+?)_+(?![\w])")
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, flags, symbols
    "\u2600-\u27bf"  # miscellaneous symbols and dingbats
    "\u2b00-\u2bff"  # arrows and stars used as emoji
    "\u2300-\u23ff"  # technical symbols such as the watch and hourglass
    "\ufe0e\ufe0f\u200d\u20e3"  # variation selectors, joiner, keycap
    "\U000e0020-\U000e007f"  # tag characters of subdivision flags
    "]"
)
_SPACES = re.compile(r"\s+")


def plain_text(text: str) -> str:
    """Return `text` without markdown and emoji, whitespace collapsed.

    Example:
        >>> plain_text("**Welcome**, [traveller](https://x.y)! 🍺")
        'Welcome, traveller!'
    """
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    text = _UNDERSCORE.sub(r"\1", text)
    text = text.replace("*", "").replace("`", "")
    text = _EMOJI.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    # Removing an emoji can leave a space before the punctuation it preceded.
    return re.sub(r"\s+([,.!?;:…])", r"\1", text)


class SentenceSplitter:
    """Cut streamed text into finished sentences, each as `plain_text`.

    Feed the text as it comes; `feed` returns the sentences it completed,
    `flush` the rest once the text is over. Empty sentences (only markup or
    emoji) are dropped.

    Example:
        >>> splitter = SentenceSplitter()
        >>> splitter.feed("Welcome! The ale is ")
        ['Welcome!']
        >>> splitter.feed("cold. Sit")
        ['The ale is cold.']
        >>> splitter.flush()
        ['Sit']
    """

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, text: str) -> list[str]:
        """Add streamed text; return the sentences it finished."""
        self._buffer += text
        found: list[str] = []
        start = 0
        for match in _END.finditer(self._buffer):
            if match.end() == len(self._buffer) and match.group()[-1] in ".!?…":
                # At the very end of what has come so far: more may follow
                # ("3." of "3.5", or "..." growing); wait for the next piece.
                break
            if _abbreviation(self._buffer, match.start()):
                continue
            found.append(self._buffer[start : match.end()])
            start = match.end()
        self._buffer = self._buffer[start:]
        return [s for s in (plain_text(piece) for piece in found) if s]

    def flush(self) -> list[str]:
        """Return what is left as sentences (the text is over) and start afresh."""
        rest, self._buffer = self._buffer, ""
        found = SentenceSplitter()
        sentences = found.feed(rest + " ")
        tail = plain_text(found._buffer)
        return [*sentences, tail] if tail else sentences


def _abbreviation(text: str, dot: int) -> bool:
    if text[dot] != ".":
        return False
    word = re.search(r"([\w.]+)$", text[:dot])
    return word is not None and word.group(1).lower() in _ABBREVIATIONS
