"""A small offline language detector for replies: English, German, Spanish, French, Chinese.

No model and no download: the script of the letters decides first (Han
characters without kana are Chinese; kana is Japanese, Hangul Korean,
Cyrillic Russian and so on, which are reported so that a check can say what
it found), then, for Latin script, common function words and accents of
English, German, Spanish and French are counted. A word several languages
share ("de", "la", "in") counts for each of them by a share. Good enough to
tell which of these five languages a reply of a sentence or more is in; it
cannot tell a two-word reply ("Aye, love.") and says so (`language=None`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Detection", "detect_language"]

_FUNCTION_WORDS: dict[str, str] = {
    "en": "the and is are you your to of it that this for with have has not be was were what "
    "my me we our they he she his her can do does will would there here how why who when "
    "where an i don t isn am",
    "de": "der die das und ist nicht ich du sie er es wir ihr ein eine einen einem dem den des "
    "zu mit auf für von sich auch noch aber wie was wer wo bin bist sind haben hat kein "
    "keine mein dein ja nein schon gut sehr im zum oder wenn dann hier",
    "es": "el la los las y es son que de en un una por para con no sí se lo le su sus al del "
    "como pero muy está estoy yo tú usted qué dónde cómo hay más este esta eso aquí bien",
    "fr": "le la les et est sont que de des du un une pour avec pas ne je tu vous il elle "
    "nous ce cette qui où comment très mais au aux sur dans suis êtes c j l qu oui bien ici",
}
_ACCENTS: dict[str, str] = {"de": "äöüß", "es": "ñ¿¡áíóú", "fr": "çèêàâîôûëœ"}
_SHARED_ACCENTS = {"é": ("es", "fr"), "ü": ("de", "es")}

_WEIGHTS: dict[str, dict[str, float]] = {}
_owners: Counter[str] = Counter(w for words in _FUNCTION_WORDS.values() for w in words.split())
for _lang, _words in _FUNCTION_WORDS.items():
    _WEIGHTS[_lang] = {w: 1.0 / _owners[w] for w in _words.split()}

_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("kana", "\u3040-\u30ff\u31f0-\u31ff"),
    ("han", "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"),
    ("ko", "\uac00-\ud7af\u1100-\u11ff"),
    ("ru", "\u0400-\u04ff"),
    ("el", "\u0370-\u03ff"),
    ("he", "\u0590-\u05ff"),
    ("ar", "\u0600-\u06ff"),
    ("hi", "\u0900-\u097f"),
    ("th", "\u0e00-\u0e7f"),
)
_SCRIPT_RE = {name: re.compile(f"[{chars}]") for name, chars in _SCRIPTS}
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")
_WORD_RE = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class Detection:
    """What the detector found.

    Attributes:
        language: `en`, `de`, `es`, `fr`, `zh`, another script's code (`ja`,
            `ko`, `ru`...), or None when the text is too short or mixed to tell.
        scores: Evidence per Latin-script language (function words and accents).
        reason: One line on how it decided, for check messages.

    """

    language: str | None
    scores: dict[str, float] = field(default_factory=dict)
    reason: str = ""


def detect_language(text: str) -> Detection:
    """Guess the language of `text` (see the module docstring for how).

    Args:
        text: A reply.

    Returns:
        The detection; `language` is None when it cannot tell.

    """
    counts = {name: len(pattern.findall(text)) for name, pattern in _SCRIPT_RE.items()}
    latin = len(_LATIN_RE.findall(text))
    letters = latin + sum(counts.values())
    if letters == 0:
        return Detection(None, reason="no letters")
    cjk = counts["han"] + counts["kana"]
    if cjk / letters > 0.3:
        if counts["kana"] > 0.05 * cjk:
            return Detection("ja", reason=f"{counts['kana']} kana characters")
        return Detection("zh", reason=f"{counts['han']} Han characters, no kana")
    other = max(((n, c) for n, c in counts.items() if n not in ("han", "kana")),
                key=lambda item: item[1])
    if other[1] / letters > 0.5:
        return Detection(other[0], reason=f"{other[1]} letters of that script")
    lowered = text.lower()
    scores = dict.fromkeys(_FUNCTION_WORDS, 0.0)
    for word in _WORD_RE.findall(lowered):
        for lang, weights in _WEIGHTS.items():
            scores[lang] += weights.get(word, 0.0)
    for lang, accents in _ACCENTS.items():
        scores[lang] += sum(lowered.count(a) for a in accents)
    for accent, langs in _SHARED_ACCENTS.items():
        for lang in langs:
            scores[lang] += lowered.count(accent) / len(langs)
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    shown = {k: round(v, 2) for k, v in scores.items() if v}
    if top < 1.0:
        return Detection(None, shown, "too few common words to tell")
    if top - second < 0.5:
        return Detection(None, shown, f"{best} and {ranked[1][0]} score alike")
    return Detection(best, shown, f"common words and accents: {shown}")
