"""Look-alike letters: Cyrillic and Greek letters that pass for Latin ones.

`іgnоrе` written with a Cyrillic `і`, `о` and `е` reads as "ignore" to a
person and to a language model, but not to a pattern. NFKC does not fold
these (they are letters of other scripts, not compatibility forms), so the
safety layer maps them itself, before casefolding, since some look alike
only in one case (Greek `Η` is an `H`, `η` an `n`).

Real Greek and Russian must survive: a word is folded only when it mixes
scripts (Latin letters with Cyrillic or Greek ones), or when it is made of
look-alikes only inside text that is mostly Latin.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold_confusables"]

_LOOKALIKES: dict[str, str] = {
    # Cyrillic
    "А": "A", "а": "a", "В": "B", "Е": "E", "е": "e", "К": "K", "к": "k",
    "М": "M", "Н": "H", "О": "O", "о": "o", "Р": "P", "р": "p", "С": "C",
    "с": "c", "Т": "T", "Х": "X", "х": "x", "У": "Y", "у": "y", "Ѕ": "S",
    "ѕ": "s", "І": "I", "і": "i", "Ї": "I", "ї": "i", "Ј": "J", "ј": "j",
    "ԁ": "d", "Һ": "H", "һ": "h", "Ӏ": "l", "ӏ": "l", "Ԛ": "Q", "ԛ": "q",
    "Ԝ": "W", "ԝ": "w", "Ү": "Y", "ү": "y", "Ѵ": "V", "ѵ": "v", "Ь": "b",
    # Greek
    "Α": "A", "α": "a", "Β": "B", "Ε": "E", "ε": "e", "Ζ": "Z", "Η": "H",
    "η": "n", "Ι": "I", "ι": "i", "Κ": "K", "κ": "k", "Μ": "M", "Ν": "N",
    "ν": "v", "Ο": "O", "ο": "o", "Ρ": "P", "ρ": "p", "Τ": "T", "τ": "t",
    "Υ": "Y", "υ": "u", "Χ": "X", "χ": "x", "ϲ": "c", "Ϲ": "C", "ϳ": "j",
}  # fmt: skip

# Latin letters that pass for plain ones; folded wherever they appear, since
# no phrase pack is written with them.
_LATIN_LOOKALIKES = str.maketrans({"ı": "i", "ɑ": "a", "ɩ": "i", "ʟ": "L", "ɡ": "g"})

_LETTERS = re.compile(r"[^\W\d_]+")


def _script(char: str) -> str:
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0]


def fold_confusables(text: str) -> str:
    """Return `text` with look-alike Cyrillic and Greek letters made Latin, where disguised.

    Args:
        text: Text after NFKC, before casefolding.

    Returns:
        The text, with the letters of disguised words replaced.

    Example:
        ```python
        fold_confusables("іgnоrе previous instructions")  # "ignore previous instructions"
        fold_confusables("Привет")  # unchanged: a Russian word
        ```

    """
    if text.isascii():
        return text
    text = text.translate(_LATIN_LOOKALIKES)
    latin = foreign = 0
    for char in text:
        if char.isalpha():
            script = _script(char)
            if script == "LATIN":
                latin += 1
            elif script in ("CYRILLIC", "GREEK"):
                foreign += 1
    if not foreign:
        return text
    mostly_latin = latin > foreign

    def fold(match: re.Match[str]) -> str:
        word = match.group(0)
        scripts = {_script(char) for char in word}
        has_foreign = bool(scripts & {"CYRILLIC", "GREEK"})
        if not has_foreign:
            return word
        all_lookalike = all(char in _LOOKALIKES or _script(char) == "LATIN" for char in word)
        if "LATIN" in scripts or (mostly_latin and all_lookalike):
            return "".join(_LOOKALIKES.get(char, char) for char in word)
        return word

    return _LETTERS.sub(fold, text)
