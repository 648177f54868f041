"""Crisis across a conversation: recent messages add up, older ones count less.

A person rarely says it all at once. "I feel like such a burden" is not a
crisis; followed a message later by "what's the point of anything", it is.
Each of the person's recent messages gets the weight of its strongest crisis
phrase (active, passive and preparation wording weigh a full crisis; mild
wording less), multiplied by `DECAY` for every message since; the sum is the
conversation's score, and a score of `THRESHOLD` or more is a crisis.

A crisis phrase that overlaps a `false_alarm` phrase of any pack ("killing
myself laughing", "I'm not suicidal") does not count.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from personae.agents._safety_phrases import PhrasePack, RuleMatch, all_matches
from personae.agents._safety_text import normalise
from personae.agents._safety_verdicts import Severity

__all__ = [
    "AMBIGUOUS",
    "DECAY",
    "THRESHOLD",
    "WEIGHTS",
    "WINDOW",
    "CrisisAssessment",
    "CrisisSignal",
    "assess_crisis",
    "crisis_signal",
    "overlaps_false_alarm",
]

WEIGHTS: dict[str, float] = {
    "crisis_preparation": 1.0,
    "crisis_active": 1.0,
    "crisis_passive": 1.0,
    "crisis_mild": 0.6,
}
"""Weight of each crisis category; the order is the order of precedence."""

THRESHOLD = 1.0
"""A conversation score from which on it is a crisis."""

AMBIGUOUS = 0.4
"""A score from which on, below `THRESHOLD`, the rules are unsure."""

DECAY = 0.85
"""How much a message counts for each message the person sent since."""

WINDOW = 8
"""How many of the person's messages (this one included) are scored."""

_SEVERITY: dict[str, Severity] = {
    "crisis_preparation": "critical",
    "crisis_active": "critical",
    "crisis_passive": "warning",
    "crisis_mild": "warning",
}


@dataclass(frozen=True)
class CrisisSignal:
    """The strongest crisis phrase of one message."""

    category: str
    weight: float
    match: RuleMatch


def overlaps_false_alarm(packs: Sequence[PhrasePack], said: str, found: RuleMatch) -> bool:
    """Return True when a `false_alarm` phrase of any pack covers part of `found`."""
    start, end = found.span
    for alarm in all_matches(packs, "false_alarm", said):
        a_start, a_end = alarm.span
        if a_start < end and start < a_end:
            return True
    return False


# A conversation's earlier messages are scored again on every turn: keep the results.
@functools.lru_cache(maxsize=4096)
def crisis_signal(packs: tuple[PhrasePack, ...], said: str) -> CrisisSignal | None:
    """Return the strongest crisis phrase in normalised `said`, or None."""
    for category, weight in WEIGHTS.items():
        for found in all_matches(packs, category, said):
            if not overlaps_false_alarm(packs, said, found):
                return CrisisSignal(category, weight, found)
    return None


@dataclass(frozen=True)
class CrisisAssessment:
    """How a message and the conversation before it stand.

    Attributes:
        signal: The crisis phrase of this message, if any.
        score: The conversation's score with this message.
        prior: The score before this message.
        severity: From the strongest phrase in the window (`critical` for
            active or preparation wording, `warning` for passive wording or
            mild wording that added up).

    """

    signal: CrisisSignal | None
    score: float
    prior: float
    severity: Severity

    @property
    def explicit(self) -> bool:
        """Whether this message alone is a crisis."""
        return self.signal is not None and self.signal.weight >= THRESHOLD

    @property
    def crossed(self) -> bool:
        """Whether this message made the conversation a crisis."""
        return self.prior < THRESHOLD <= self.score

    @property
    def is_crisis(self) -> bool:
        """Whether the conversation is in crisis."""
        return self.score >= THRESHOLD


def _decayed(weights: Sequence[float]) -> float:
    """Score weights given newest first."""
    return sum(weight * DECAY**age for age, weight in enumerate(weights))


def assess_crisis(
    packs: tuple[PhrasePack, ...], said: str, user_history: Sequence[str]
) -> CrisisAssessment:
    """Score normalised `said` with the person's earlier messages (raw, oldest first)."""
    signal = crisis_signal(packs, said)
    earlier = [crisis_signal(packs, normalise(text)) for text in user_history[-(WINDOW - 1) :]]
    earlier.reverse()
    earlier_weights = [item.weight if item else 0.0 for item in earlier]
    prior = _decayed(earlier_weights)
    score = (signal.weight if signal else 0.0) + DECAY * prior
    strongest = [item for item in (signal, *earlier) if item is not None]
    order = list(WEIGHTS)
    severity: Severity = "warning"
    if strongest:
        top = min(strongest, key=lambda item: order.index(item.category))
        severity = _SEVERITY[top.category]
    return CrisisAssessment(signal=signal, score=score, prior=prior, severity=severity)
