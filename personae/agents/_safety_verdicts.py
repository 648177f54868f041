"""What the safety layer decides: `Verdict` (a message in), `OutVerdict` (a reply out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

__all__ = [
    "Alert",
    "AlertKind",
    "Category",
    "Injection",
    "InjectionKind",
    "OutAction",
    "OutCategory",
    "OutVerdict",
    "Profile",
    "PromptLine",
    "Severity",
    "Topic",
    "Verdict",
    "VerdictAction",
]

Profile = Literal["game", "community", "companion"]
"""A safety profile, as `SafetyProfile.profile` names it."""

VerdictAction = Literal["pass", "deflect", "ooc_help", "support", "emergency", "warn", "refer"]
"""What to do with a message. The model is called only for `pass`; every
other action comes with `Verdict.reply`, to be sent instead:

- `pass`: the model answers (`Verdict.topic` may ask for care in doing so);
- `deflect`: a line that does not answer (a game deflection in character, or
  a refusal to let a message change the character);
- `ooc_help`: one out-of-character pointer to real help (`game`);
- `support`: a caring reply with crisis resources; the conversation goes on;
- `emergency`: the emergency number, now;
- `warn`: a scam warning that never helps to pay;
- `refer`: no medical advice, a referral to a doctor or pharmacist (answer
  from stored reminders with `medication_reply`)."""

Category = Literal[
    "out_of_world",
    "ai_question",
    "prompt_trick",
    "unknown_topic",
    "distress",
    "crisis",
    "emergency",
    "scam",
    "medication",
    "injection",
]
"""Why a message was not passed."""

Topic = Literal["crisis", "scam", "medication", "honesty"]
"""What a message is about, when the caller should take care with it:
`crisis` (a passed message in a conversation with signs of a crisis: answer
gently), `scam` (money talk that may be a scam), `medication` (answer only
from stored reminders), `honesty` (asks whether the character is a person:
say it is an AI)."""

AlertKind = Literal["crisis", "emergency", "fall", "scam"]
"""What a caregiver alert is about."""

Severity = Literal["info", "warning", "critical"]
"""How urgent a caregiver alert is, in the care service's words: `critical`
(act now: an emergency, a crisis with active or preparation wording),
`warning` (soon: passive or accumulated crisis wording, a scam), `info`."""

InjectionKind = Literal["override", "persona", "system_role", "tool_forgery", "probe"]
"""How a message tries to take over the character: `override` ("ignore your
instructions"), `persona` ("you are now ..."), `system_role` (text posing as
a system or developer message), `tool_forgery` (text posing as a tool call or
result), `probe` (asking for the hidden instructions)."""

OutAction = Literal["pass", "replace", "restyle"]
"""What to do with a reply: send it as it is, or send `OutVerdict.text`
instead: a replacement (`replace`) or the same reply cut to the profile's
style (`restyle`)."""

OutCategory = Literal[
    "unknown_topic",
    "ai_disclosure",
    "leak",
    "secret_request",
    "human_claim",
    "family_claim",
    "style",
]
"""Why a reply was changed."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Alert:
    """A caregiver alert the safety layer asks for; the care service sends it.

    The care service checks the person's consent before it tells anyone, and
    sends at most one alert per crisis (the layer proposes one only when a
    conversation first crosses into a crisis).

    Attributes:
        kind: `crisis`, `emergency`, `fall` or `scam`.
        severity: `info`, `warning` or `critical`.

    """

    kind: AlertKind
    severity: Severity

    def as_dict(self) -> dict[str, str]:
        """Return `{kind, severity}`."""
        return {"kind": self.kind, "severity": self.severity}


@dataclass(frozen=True)
class Injection:
    """An attempt to take over the character found in a message.

    Attributes:
        kind: See `InjectionKind`.
        rule: The rule that matched.
        evidence: Short snippets of the normalised text that matched.

    """

    kind: InjectionKind
    rule: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """What `screen_in` decided about one incoming message.

    Attributes:
        action: See `VerdictAction`.
        profile: The safety profile that decided.
        category: Why, when not passed (see `Category`).
        rule: The rule that matched, e.g. `en:prompt_trick[2]` (pack
            language, category, index), `unknown[0]` (the persona's
            `safety.unknown` list), `conversation` (several messages that
            add up to a crisis) or `model:crisis` (the model's second opinion).
        evidence: Short snippets of the normalised message that matched, for
            traces; never the whole message.
        reply: The text to send instead of calling the model (None for `pass`).
        flags: Markers for `Reply.flags`: `deflected`, `out_of_character`,
            `distress`, `crisis`, `emergency`, `scam`, `medication`, `injection`.
        topic: What a message is about when the caller should take care (see
            `Topic`); set on passed messages too.
        alert: The caregiver alert to raise, if any.
        injection: The takeover attempt found, if any.
        locale: The locale whose resources (crisis line, emergency number)
            and language the reply uses, e.g. `en-US`.
        pack_version: `language@version` of the phrase pack that matched.
        score: The conversation's crisis score (1.0 or more is a crisis).
        ambiguous: The rules are unsure; `second_opinion` may ask the model.

    """

    action: VerdictAction
    profile: Profile
    category: Category | None = None
    rule: str | None = None
    evidence: tuple[str, ...] = ()
    reply: str | None = None
    flags: tuple[str, ...] = ()
    topic: Topic | None = None
    alert: Alert | None = None
    injection: Injection | None = None
    locale: str | None = None
    pack_version: str | None = None
    score: float = 0.0
    ambiguous: bool = False

    @property
    def passed(self) -> bool:
        """True when the message goes on to the model."""
        return self.action == "pass"

    @property
    def referral(self) -> bool:
        """True when the reply points to a crisis line (`support`, `ooc_help`); for counts."""
        return self.action in ("support", "ooc_help")

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
            "topic": self.topic,
            "alert": self.alert.as_dict() if self.alert else None,
            "severity": self.alert.severity if self.alert else None,
            "referral": self.referral,
            "language": self.locale,
            "injection": self.injection.kind if self.injection else None,
            "score": round(self.score, 3),
        }

    def audit(self, *, at: datetime | None = None) -> dict[str, Any]:
        """Return the audit record of this verdict: what was decided, never what was said.

        Args:
            at: When it happened; now (UTC) by default.

        Returns:
            `event`, `profile`, `category`, `rule`, `action`, `topic`,
            `alert`, `referral`, `locale`, `pack_version` and `at` (ISO
            8601). No message text and no evidence snippets.

        """
        return {
            "event": "safety_in",
            "profile": self.profile,
            "category": self.category,
            "rule": self.rule,
            "action": self.action,
            "topic": self.topic,
            "alert": self.alert.as_dict() if self.alert else None,
            "referral": self.referral,
            "locale": self.locale,
            "pack_version": self.pack_version,
            "at": (at or _now()).isoformat(),
        }


@dataclass(frozen=True)
class OutVerdict:
    """What `screen_out` decided about one reply.

    Attributes:
        action: `pass` (send the reply), `replace` (send `text` instead) or
            `restyle` (send `text`, the reply cut to the profile's style).
        profile: The safety profile that decided.
        text: The text to send: the reply itself when passed, else the new text.
        category: Why it was changed (see `OutCategory`).
        rule: The rule that matched, as in `Verdict.rule`; `canary` or
            `system_prompt` for a leak.
        evidence: Short snippets of the normalised reply that matched.
        flags: Markers for `Reply.flags`: `deflected` when replaced.
        locale: Language of the replacement, when there is one.
        pack_version: `language@version` of the phrase pack that matched.

    """

    action: OutAction
    profile: Profile
    text: str
    category: OutCategory | None = None
    rule: str | None = None
    evidence: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    locale: str | None = None
    pack_version: str | None = None

    @property
    def replaced(self) -> bool:
        """True when `text` is not the reply that was screened."""
        return self.action != "pass"

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

    def audit(self, *, at: datetime | None = None) -> dict[str, Any]:
        """Return the audit record of this verdict, without the reply's text.

        Args:
            at: When it happened; now (UTC) by default.

        """
        return {
            "event": "safety_out",
            "profile": self.profile,
            "category": self.category,
            "rule": self.rule,
            "action": self.action,
            "topic": None,
            "alert": None,
            "referral": False,
            "locale": self.locale,
            "pack_version": self.pack_version,
            "at": (at or _now()).isoformat(),
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
