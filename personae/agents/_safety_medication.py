"""Medication questions: never advice, only what the caregiver stored.

A question about doses gets a referral to a doctor or pharmacist
(`Verdict.topic == "medication"`). When the care service holds reminders
for the person (written by a caregiver, never by the model), the reply may
quote the ones that match the question, word for word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from personae.agents._safety_phrases import phrase_pack
from personae.agents._safety_text import normalise
from personae.agents._safety_verdicts import Verdict

__all__ = ["matching_reminders", "medication_reply"]

_WORD = re.compile(r"[^\W\d_]{3,}")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
# Words that every medication question and reminder share, so they say
# nothing about which medicine is meant.
_COMMON = frozenset(
    {
        "take", "takes", "taking", "took", "should", "could", "would", "can", "may", "might",
        "must", "have", "had", "how", "many", "much", "what", "when", "which", "dose", "doses",
        "dosage", "pill", "pills", "tablet", "tablets", "capsule", "capsules", "medicine",
        "medicines", "medication", "medications", "meds", "drug", "drugs", "the", "and", "with",
        "for", "after", "before", "morning", "evening", "night", "noon", "day", "daily", "today",
        "tonight", "time", "times", "one", "two", "three", "another", "extra", "double", "twice",
        "half", "remind", "reminder", "please", "your", "you", "did", "not", "don't", "forgot",
        "forget", "missed", "skip", "this", "that", "these", "those", "are", "was", "were", "its",
        "it's", "about", "again", "still", "now", "later", "then", "more", "less", "nehmen",
        "tablette", "tabletten", "medikament", "medikamente", "dosis", "morgens", "abends",
        "heute", "wie", "viele", "soll", "darf", "kann", "ich", "meine", "mein", "mit", "nach",
        "vor", "tomar", "pastilla", "pastillas", "medicina", "cuantas", "cuántas",
        "puedo", "debo", "mis", "con", "después", "antes", "mañana", "noche", "hoy",
    }
)  # fmt: skip
_CJK_COMMON = frozenset({"吃药", "几片", "多少", "可以", "应该", "今天", "早上", "晚上", "药片"})
_PREFIX = 5


def _terms(text: str) -> set[str]:
    said = normalise(text)
    words = {word for word in _WORD.findall(said) if word not in _COMMON}
    words |= {run for run in _CJK_RUN.findall(said) if run not in _CJK_COMMON}
    return words


def _same(a: str, b: str) -> bool:
    """Words match when equal, or sharing a long prefix (`metformin` / `metformine`)."""
    if a == b:
        return True
    if _CJK_RUN.fullmatch(a) or _CJK_RUN.fullmatch(b):
        return a in b or b in a
    return len(a) >= _PREFIX and len(b) >= _PREFIX and a[:_PREFIX] == b[:_PREFIX]


def matching_reminders(
    question: str, reminders: Sequence[str], *, limit: int = 3
) -> list[str]:
    """Return the stored reminders that answer a medication question, unchanged.

    A question that names a medicine (or any other specific word, such as
    `blood pressure` or `eye drops`) gets the reminders naming it; a
    question that names nothing specific ("how many pills today?") gets the
    first reminders, as all of them are about it.

    Args:
        question: What the person asked.
        reminders: The person's medication reminder texts, as the caregiver
            wrote them.
        limit: At most this many reminders.

    Returns:
        Matching reminders in their stored order, word for word.

    Example:
        ```python
        matching_reminders(
            "How many metformin do I take?",
            ["Metformin 500 mg, one tablet with breakfast", "Eye drops at 9 pm"],
        )
        # ["Metformin 500 mg, one tablet with breakfast"]
        ```

    """
    asked = _terms(question)
    if not asked:
        return list(reminders[:limit])
    chosen = []
    for reminder in reminders:
        named = _terms(reminder)
        if any(_same(word, term) for word in asked for term in named):
            chosen.append(reminder)
    return chosen[:limit]


def medication_reply(verdict: Verdict, question: str, reminders: Sequence[str]) -> str:
    """Return the reply to a medication question: the referral, then the matching reminders.

    Args:
        verdict: The `screen_in` verdict (`topic == "medication"`); its reply
            is the referral in the person's language.
        question: What the person asked.
        reminders: The person's medication reminder texts.

    Returns:
        The matching reminders quoted word for word, followed by the
        referral; only the referral when none match.

    """
    referral = verdict.reply or ""
    language = (verdict.locale or "en").split("-")[0]
    pack = phrase_pack(language) or phrase_pack("en")
    template = next(iter(pack.line("medication_reminder")), "") if pack else ""
    if not template:
        template = 'Your reminder says: "{reminder}"'
    quoted = [
        template.replace("{reminder}", reminder.strip().rstrip("."))
        for reminder in matching_reminders(question, reminders)
    ]
    if not quoted:
        return referral
    ending = "。" if language == "zh" else "."
    return " ".join(line.rstrip(".。") + ending for line in quoted) + " " + referral
