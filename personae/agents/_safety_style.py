"""The companion profile's style, enforced on every reply: short, plain, one question.

Replies of a companion are often read aloud to an older adult: at most
three sentences, each short, at most one question (two questions at once
are hard to answer), and no markdown (a speaker reads `**` and `#` aloud or
stumbles over them). The persona's own `speech` limits apply when they are
stricter.
"""

from __future__ import annotations

import re

from personae.personas.model import Persona

__all__ = ["MAX_SENTENCES", "MAX_WORDS", "enforce_style", "strip_markdown"]

MAX_SENTENCES = 3
"""At most this many sentences in a companion reply."""

MAX_WORDS = 20
"""At most this many words in one sentence of a companion reply (CJK: 2 characters a word)."""

_FENCE = re.compile(r"```[^\n]*\n?(.*?)```", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*(.*?)\s*#*\s*$", re.MULTILINE)
_QUOTE = re.compile(r"^\s{0,3}>\s?", re.MULTILINE)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+", re.MULTILINE)
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$", re.MULTILINE)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1")
_CODE = re.compile(r"`([^`]*)`")
_HTML = re.compile(r"</?[a-zA-Z][^>]{0,80}>")
_SENTENCE = re.compile(r"[^.!?。！？]+(?:[.!?。！？]+[\"'”’)]*|$)")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_CLAUSE = re.compile(r"[,;:，；：]|\s[-–—]\s")


def strip_markdown(text: str) -> str:
    """Return `text` without markdown: no headings, lists, emphasis, code, links or tables."""
    text = _FENCE.sub(lambda found: found.group(1), text)
    text = _IMAGE.sub(lambda found: found.group(1), text)
    text = _LINK.sub(lambda found: found.group(1), text)
    text = _TABLE_RULE.sub("", text)
    text = _RULE.sub("", text)
    text = _HEADING.sub(lambda found: _end(found.group(1)), text)
    text = _QUOTE.sub("", text)
    # A list item becomes a sentence of its own.
    lines = []
    for line in text.splitlines():
        item = _BULLET.match(line)
        line = _BULLET.sub("", line)
        lines.append(_end(line) if item else line)
    text = "\n".join(lines)
    text = text.replace("|", " ")
    previous = None
    while previous != text:
        previous = text
        text = _EMPHASIS.sub(lambda found: found.group(2), text)
    text = _CODE.sub(lambda found: found.group(1), text)
    text = _HTML.sub("", text)
    return " ".join(text.split())


def _end(line: str) -> str:
    """Give a line that ends without punctuation a full stop, so it stays its own sentence."""
    line = line.strip()
    if line and line[-1] not in ".!?。！？:;,":
        return line + "."
    return line


def _words(sentence: str) -> int:
    cjk = len(_CJK.findall(sentence))
    latin = len(re.findall(r"[^\W\d_]+|\d+", _CJK.sub(" ", sentence)))
    return latin + (cjk + 1) // 2


def _shorten(sentence: str, limit: int) -> str:
    """Cut a long sentence at the last clause boundary that fits, else at `limit` words."""
    if _words(sentence) <= limit:
        return sentence
    ending = "。" if _CJK.search(sentence) else "."
    if sentence.rstrip().endswith(("?", "？")):
        ending = "？" if ending == "。" else "?"
    best = None
    for found in _CLAUSE.finditer(sentence):
        head = sentence[: found.start()].rstrip()
        if _words(head) <= limit:
            best = head
    if best is None or _words(best) < 3:
        if _CJK.search(sentence) and not re.search(r"[A-Za-z]{2}", sentence):
            best = sentence[: limit * 2]
        else:
            best = " ".join(sentence.split()[:limit])
    return best.rstrip(" ,;:-–—，；：") + ending


def _is_question(sentence: str) -> bool:
    return sentence.rstrip().rstrip("\"'”’)").endswith(("?", "？"))


def enforce_style(persona: Persona, text: str) -> str:
    """Return `text` in the companion style; other profiles' replies are returned as they are.

    Markdown is removed (list items become sentences); then at most
    `MAX_SENTENCES` sentences are kept (or the persona's
    `speech.max_sentences`, when lower), with at most one question: the
    reply's last question, since that is the one the person is left to
    answer, and the first statements; they keep their order. A sentence longer
    than `MAX_WORDS` words (or `speech.max_words_per_sentence`, when lower)
    is cut at its last clause boundary that fits.

    Args:
        persona: The character; only the `companion` profile is restyled.
        text: The reply.

    Returns:
        The restyled reply.

    Example:
        ```python
        enforce_style(rosie, "**Hello!** How are you? Did you sleep? Shall we chat?")
        # "Hello! Shall we chat?"
        ```

    """
    if persona.safety.profile != "companion":
        return text
    limit = MAX_SENTENCES
    if persona.speech.max_sentences is not None:
        limit = min(limit, persona.speech.max_sentences)
    words = MAX_WORDS
    if persona.speech.max_words_per_sentence is not None:
        words = min(words, persona.speech.max_words_per_sentence)
    plain = strip_markdown(text)
    sentences = [found.group(0).strip() for found in _SENTENCE.finditer(plain)]
    sentences = [sentence for sentence in sentences if sentence.strip(" .!?。！？")]
    questions = [i for i, sentence in enumerate(sentences) if _is_question(sentence)]
    statements = [i for i in range(len(sentences)) if i not in questions]
    chosen = questions[-1:]
    room = limit - len(chosen)
    chosen = sorted(chosen + statements[:room])
    joiner = "" if _CJK.search(plain) and not re.search(r"[A-Za-z]{3}", plain) else " "
    return joiner.join(_shorten(sentences[i], words) for i in chosen)
