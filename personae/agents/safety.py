"""Screening in and out: what reaches the model, and what reaches the person.

Every turn passes through two checks. `screen_in` looks at the incoming
message before the model is called and may answer it without the model;
`screen_out` looks at the model's reply before it is sent and may replace it.
`prompt_lines` gives the matching instructions for the prompt's safety
section. All three read the profile from `persona.safety.profile`:

- `game` ("staying in the world"): questions from outside the world
  (real-world news, real people and brands, machines the setting lacks),
  questions whether the character is an AI or a bot, prompt tricks ("ignore
  your instructions", "system prompt", "developer mode") and anything in
  `safety.unknown` are deflected in character with one of the persona's
  `fallbacks`. A player who says that they themselves are in real distress
  gets one short out-of-character pointer to help instead; violence and death
  in the story do not count. Replies that name something in `safety.unknown`
  or say the character is an AI are replaced by a fallback line.
- `community` and `companion`: everything passes for now. Their rules (crisis
  phrases in several languages, scams, personal data, prompt injection) are
  to come, behind this same API.

Text is matched after `normalise` (NFKC, casefolded, invisible characters
removed), against phrase packs: one YAML file per language in
`personae/agents/safety_phrases/`, so a language is added as data. Screening
is pure, fast and deterministic: the same persona, text and history always
give the same verdict, and no model is called.

Example:
    ```python
    from personae.agents.safety import screen_in, screen_out
    from personae.personas.model import Persona

    brenna = Persona(
        id="brenna",
        name="Brenna",
        fallbacks=["Couldn't tell you, love.", "That's beyond my bar, I'm afraid."],
        safety={"profile": "game", "unknown": ["smartphone"]},
    )
    verdict = screen_in(brenna, "Are you ChatGPT?")
    verdict.action, verdict.category, verdict.reply
    # ('deflect', 'ai_question', "Couldn't tell you, love.")  (or the other line)
    screen_out(brenna, "Aye, check your smartphone.").text
    # one of Brenna's fallbacks
    ```

"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from personae.agents._safety_game import GameRules
from personae.agents._safety_phrases import PhrasePack, load_phrase_pack, phrase_pack
from personae.agents._safety_text import normalise
from personae.agents._safety_verdicts import (
    Category,
    OutAction,
    OutCategory,
    OutVerdict,
    Profile,
    PromptLine,
    Verdict,
    VerdictAction,
)
from personae.errors import SafetyError
from personae.personas.model import Persona

__all__ = [
    "Category",
    "OutAction",
    "OutCategory",
    "OutVerdict",
    "PhrasePack",
    "Profile",
    "ProfileRules",
    "PromptLine",
    "Verdict",
    "VerdictAction",
    "load_phrase_pack",
    "normalise",
    "phrase_pack",
    "profile_rules",
    "prompt_lines",
    "screen_in",
    "screen_out",
]


class ProfileRules(Protocol):
    """The rules of one safety profile; `profile_rules` returns the persona's."""

    def screen_in(
        self,
        persona: Persona,
        text: str,
        *,
        history: Sequence[str] = (),
        speaker: str | None = None,
    ) -> Verdict:
        """Decide what happens to an incoming message."""
        ...

    def screen_out(
        self,
        persona: Persona,
        text: str,
        *,
        history: Sequence[str] = (),
        speaker: str | None = None,
    ) -> OutVerdict:
        """Decide what happens to a reply."""
        ...

    def prompt_lines(self, persona: Persona) -> tuple[PromptLine, ...]:
        """Return the lines of the prompt's safety section."""
        ...


class _PassThrough:
    """A profile whose rules are not written yet: every message and reply passes."""

    def __init__(self, profile: Profile) -> None:
        self.profile: Profile = profile

    def screen_in(
        self,
        persona: Persona,
        text: str,
        *,
        history: Sequence[str] = (),
        speaker: str | None = None,
    ) -> Verdict:
        return Verdict("pass", self.profile)

    def screen_out(
        self,
        persona: Persona,
        text: str,
        *,
        history: Sequence[str] = (),
        speaker: str | None = None,
    ) -> OutVerdict:
        return OutVerdict("pass", self.profile, text)

    def prompt_lines(self, persona: Persona) -> tuple[PromptLine, ...]:
        return ()


_PROFILES: dict[str, ProfileRules] = {
    "game": GameRules(),
    "community": _PassThrough("community"),
    "companion": _PassThrough("companion"),
}


def profile_rules(persona: Persona) -> ProfileRules:
    """Return the rules of the persona's safety profile.

    Raises:
        SafetyError: The profile has no rules (a persona built without validation).

    """
    name = persona.safety.profile
    rules = _PROFILES.get(name)
    if rules is None:
        known = ", ".join(sorted(_PROFILES))
        raise SafetyError(
            f"persona {persona.id!r}: safety.profile={name!r} is not a safety profile; "
            f"use one of {known}"
        )
    return rules


def screen_in(
    persona: Persona,
    text: str,
    *,
    history: Sequence[str] = (),
    speaker: str | None = None,
) -> Verdict:
    """Screen an incoming message before the model sees it.

    Args:
        persona: The character; its `safety` section picks the rules.
        text: What the person said.
        history: Earlier messages of the conversation, oldest first, both
            sides (as the agent keeps them). Used so that a deflection is never
            the same line as the previous one.
        speaker: Who speaks, for `{{user}}` in the persona's fallback lines.

    Returns:
        The verdict. For any action but `pass`, send `verdict.reply` without
        calling the model and add `verdict.flags` to the reply's flags; put
        `verdict.as_trace()` in the trace either way.

    Raises:
        SafetyError: The persona's profile is unknown, or a phrase pack is broken.

    Example:
        ```python
        verdict = screen_in(persona, user_text, history=recent_texts)
        if not verdict.passed:
            send(verdict.reply, flags=verdict.flags)
        ```

    """
    return profile_rules(persona).screen_in(persona, text, history=history, speaker=speaker)


def screen_out(
    persona: Persona,
    text: str,
    *,
    history: Sequence[str] = (),
    speaker: str | None = None,
) -> OutVerdict:
    """Screen the model's reply before it is sent.

    Args:
        persona: The character; its `safety` section picks the rules.
        text: The reply.
        history: Earlier messages, oldest first, as for `screen_in`.
        speaker: Who the reply is for, for `{{user}}` in fallback lines.

    Returns:
        The verdict; send `verdict.text` (the reply itself when it passed)
        and add `verdict.flags` to the reply's flags.

    Raises:
        SafetyError: The persona's profile is unknown, or a phrase pack is broken.

    """
    return profile_rules(persona).screen_out(persona, text, history=history, speaker=speaker)


def prompt_lines(persona: Persona) -> tuple[PromptLine, ...]:
    """Return the safety-section prompt lines of the persona's profile.

    For `game`: the character lives in its world and knows nothing outside
    it, never steps out of its role, and, when `safety.unknown` is set, has
    never heard of those things. Empty for profiles whose rules are still to
    come.

    Raises:
        SafetyError: The persona's profile is unknown.

    """
    return profile_rules(persona).prompt_lines(persona)
