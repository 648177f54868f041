"""Text handling for the safety layer: normalising, term patterns, choosing a line.

Everything the safety layer matches is matched against `normalise(text)`, so
phrase packs are written once, in lower case, and an obfuscated message
(`ＳＹＳＴＥＭ ＰＲＯＭＰＴ`, `ig<zero width space>nore`, `іgnоrе` with Cyrillic
letters) reads like a plain one.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

from personae.agents._safety_confusables import fold_confusables
from personae.personas.model import Persona

__all__ = ["normalise", "pick_line", "preview", "setting_text", "term_in", "term_pattern"]

# Characters that render as nothing (or nearly) and are used to split a word
# so that a filter misses it. Format characters (Unicode category Cf: zero
# width space/joiners, word joiner, soft hyphen, bidi controls, tag
# characters) are removed by category; these marks and fillers are not Cf.
_INVISIBLE = frozenset(
    "\u034f"  # combining grapheme joiner
    "\u115f\u1160\u3164\uffa0"  # Hangul fillers
    "\u180e"  # Mongolian vowel separator
)
_VARIATION_SELECTORS = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))

# NFKC leaves typographic quotes and dashes alone; phrase packs use ASCII ones.
_PUNCTUATION = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "\u02bc": "'",
        "\u201c": '"', "\u201d": '"', "\u201f": '"', "\u2033": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
        "\u2015": "-", "\u2212": "-",
    }
)  # fmt: skip

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WORD = re.compile(r"\w+")
_PREVIEW_CHARS = 48
_ARTICLES = frozenset({"the", "a", "an"})
_SETTING_CACHE = 256
_SETTING_TEXTS: dict[int, tuple[Persona, str]] = {}
"""`setting_text` per persona object (the object is kept, so its id is not reused)."""


def _visible(char: str) -> bool:
    if char in _INVISIBLE or unicodedata.category(char) == "Cf":
        return False
    code = ord(char)
    return not any(low <= code <= high for low, high in _VARIATION_SELECTORS)


def normalise(text: str) -> str:
    """Return `text` as the safety layer matches it.

    NFKC (fullwidth and styled letters become plain ones), Cyrillic and
    Greek look-alikes in disguised words made Latin, casefolded, invisible
    characters removed (zero-width spaces and joiners, soft hyphens, bidi
    controls, variation selectors), typographic quotes and dashes made
    ASCII, and every run of whitespace made one space.

    Args:
        text: Any text: a message, a reply, a term.

    Returns:
        The normalised text.

    Example:
        ```python
        normalise("ＳＹＳＴＥＭ   Prompt")  # "system prompt"
        normalise("Іgnоrе")  # "ignore" (Cyrillic І, о, е)
        ```

    """
    # ASCII has no invisible format characters: skip the per-character scan.
    visible = text if text.isascii() else "".join(char for char in text if _visible(char))
    folded = fold_confusables(unicodedata.normalize("NFKC", visible)).casefold()
    # Casefolding can produce new compositions; a second NFKC settles them.
    folded = unicodedata.normalize("NFKC", folded).translate(_PUNCTUATION)
    return " ".join(folded.split())


def preview(text: str) -> str:
    """Return at most a few dozen characters of `text`, for traces."""
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"


@functools.lru_cache(maxsize=2048)
def term_pattern(term: str) -> re.Pattern[str] | None:
    """Return a pattern finding `term` in normalised text, or None for an empty term.

    Words of the term may be joined by spaces, hyphens or underscores or
    written together (`smart phone` also finds `smartphone`), a leading
    English article is optional, a last Latin word may take a plural
    `s`/`es`, and the term must stand as whole words.
    Terms in Chinese, Japanese or Korean are found anywhere, since those
    languages do not put spaces between words.
    """
    words = _WORD.findall(normalise(term))
    if len(words) > 1 and words[0] in _ARTICLES:
        # "the Sunken City" is also asked about as "Sunken City".
        words = words[1:]
    if not words:
        return None
    body = r"[\s_-]*".join(re.escape(word) for word in words)
    if _CJK.search(term):
        return re.compile(body)
    plural = "" if words[-1][-1:].isdigit() else r"(?:e?s)?"
    return re.compile(rf"(?<!\w){body}{plural}(?!\w)")


def term_in(term: str, text: str) -> bool:
    """Return True when normalised `text` names `term` (or its singular) as whole words."""
    cleaned = normalise(term)
    forms = {cleaned}
    if cleaned.endswith("es") and len(cleaned) > 4:
        forms.add(cleaned[:-2])
    if cleaned.endswith("s") and len(cleaned) > 3:
        forms.add(cleaned[:-1])
    for form in forms:
        pattern = term_pattern(form)
        if pattern is not None and pattern.search(text):
            return True
    return False


def setting_text(persona: Persona) -> str:
    """Return what the persona's author wrote about the character and its world, normalised.

    A phrase-pack term found here belongs to the setting (a robot in a
    science-fiction world, email in a modern one) and is not out of the
    world. The user side of examples, the fallbacks and the author's
    instructions are left out: they often name exactly what the character
    must not talk about ("never say you are an AI").
    """
    cached = _SETTING_TEXTS.get(id(persona))
    if cached is not None and cached[0] is persona:
        return cached[1]
    parts: list[str] = [persona.name, persona.nickname or "", persona.description]
    parts += [persona.backstory, persona.style.context, *persona.greetings, *persona.goals]
    parts += [example.reply for example in persona.examples]
    for entry in persona.lore:
        parts += [entry.name or "", *entry.keys, *entry.secondary_keys, entry.content]
    text = normalise("\n".join(part for part in parts if part))
    # Screened on every reply; a persona is not edited while it runs.
    if len(_SETTING_TEXTS) >= _SETTING_CACHE:
        _SETTING_TEXTS.clear()
    _SETTING_TEXTS[id(persona)] = (persona, text)
    return text


def _key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def pick_line(pool: Sequence[str], key: str, *, avoid: Iterable[str] = ()) -> str | None:
    """Choose a line from `pool`, the same one for the same `key`, never one of `avoid`.

    The choice is a hash of `key` (stable across runs and machines, unlike
    `hash()`); when that line is to be avoided, the next ones are tried in
    order. Lines are compared normalised.

    Args:
        pool: Lines to choose from.
        key: What the choice depends on, e.g. the normalised message.
        avoid: Lines not to choose, e.g. the previous deflection.

    Returns:
        One line of `pool`, or None when it is empty or every line is avoided.

    """
    avoided = {normalise(line) for line in avoid}
    if not pool:
        return None
    start = _key(key) % len(pool)
    for offset in range(len(pool)):
        line = pool[(start + offset) % len(pool)]
        if normalise(line) not in avoided:
            return line
    return None
