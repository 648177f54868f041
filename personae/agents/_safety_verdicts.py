"""What the safety layer decides: `Verdict` (a message in), `OutVerdict` (a reply out)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

__all__ = [
    "Category",
    "OutAction",
    "OutCategory",
    "OutVerdict",
    "Profile",
    "PromptLine",
    "Verdict",
    "VerdictAction",
]

Profile = Literal["game", "community", "companion"]
"""A safety profile, as `SafetyProfile.profile` names it."""

VerdictAction = Literal["pass", "deflect", "ooc_help"]
"""What to do with a message: `pass` it to the model; `deflect` it with an
in-character line; `ooc_help`: answer with one out-of-character pointer to
real help. The model is not called for anything but `pass`."""

Category = Literal["out_of_world", "ai_question", "prompt_trick", "unknown_topic", "distress"]
"""Why a message was not passed."""

OutAction = Literal["pass", "replace"]
"""What to do with a reply: send it as it is, or send `OutVerdict.text` instead."""

OutCategory = Literal["unknown_topic", "ai_disclosure"]
"""Why a reply was replaced."""


@dataclass(frozen=True)
class Verdict:
    """What `screen_in` decided about one incoming message.

    Attributes:
        action: `pass`, `deflect` or `ooc_help`.
        profile: The safety profile that decided.
        category: Why, when not passed: `out_of_world`, `ai_question`,
            `prompt_trick`, `unknown_topic` or `distress`.
        rule: The rule that matched, e.g. `en:prompt_trick[2]` (pack
            language, category, index) or `unknown[0]` (the persona's
            `safety.unknown` list).
        evidence: Short snippets of the normalised message that matched, for
            traces; never the whole message.
        reply: The text to send instead of calling the model (None for `pass`).
        flags: Markers for `Reply.flags`: `deflected`, `out_of_character`, `distress`.

    """

    action: VerdictAction
    profile: Profile
    category: Category | None = None
    rule: str | None = None
    evidence: tuple[str, ...] = ()
    reply: str | None = None
    flags: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when the message goes on to the model."""
        return self.action == "pass"

    def as_trace(self) -> dict[str, Any]:
        """Return the verdict as a `Reply.trace` step (no reply text, no user text)."""
        return {
            "step": "safety_in",
            "profile": self.profile,
            "action": self.action,
            "category": self.category,
            "rule": self.rule,
            "evidence": list(self.evidence),
            "flags": list(self.flags),
        }


@dataclass(frozen=True)
class OutVerdict:
    """What `screen_out` decided about one reply.

    Attributes:
        action: `pass` (send the reply) or `replace` (send `text` instead).
        profile: The safety profile that decided.
        text: The text to send: the reply itself when passed, else the replacement.
        category: Why it was replaced: `unknown_topic` or `ai_disclosure`.
        rule: The rule that matched, as in `Verdict.rule`.
        evidence: Short snippets of the normalised reply that matched.
        flags: Markers for `Reply.flags`: `deflected` when replaced.

    """

    action: OutAction
    profile: Profile
    text: str
    category: OutCategory | None = None
    rule: str | None = None
    evidence: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    @property
    def replaced(self) -> bool:
        """True when `text` is not the reply that was screened."""
        return self.action == "replace"

    def as_trace(self) -> dict[str, Any]:
        """Return the verdict as a `Reply.trace` step (no reply text)."""
        return {
            "step": "safety_out",
            "profile": self.profile,
            "action": self.action,
            "category": self.category,
            "rule": self.rule,
            "evidence": list(self.evidence),
            "flags": list(self.flags),
        }


class PromptLine(NamedTuple):
    """One line of the prompt's safety section.

    Attributes:
        label: What the line is for, e.g. `in_world` or `unknown` (for the
            prompt's explain report).
        text: The instruction itself.

    """

    label: str
    text: str
