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
- `community` (Discord and other group chats) and `companion` (a companion
  for an older adult; the strictest): a person in crisis gets a caring reply
  with the crisis line of their locale, and the conversation goes on; crisis
  wording is scored across the conversation, so two mild messages can add
  up. Attempts to take over the character ("ignore previous instructions",
  "you are now ...", fake system messages and tool calls) are deflected.
  Asked whether it is a person, the character says it is an AI; replies
  that claim to be a person (or, for `companion`, family), that ask for
  card numbers or PINs, or that leak the hidden instructions (`canary_for`)
  are replaced. `companion` also answers emergencies with the emergency
  number, warns about scams, refers dosing questions to a doctor or
  pharmacist, and cuts every reply to its style (`enforce_style`). Verdicts
  may ask for a caregiver alert (`Verdict.alert`), which the care service
  sends where the person consented. See `personae.agents._safety_companion`
  for the order of the rules.

Around the screens: `redact` replaces personal data (card numbers, IBANs,
national ids, e-mail addresses, phone numbers) before anything is stored;
`second_opinion` asks the deployment's own model about messages the rules
found ambiguous; `Verdict.audit()` is the audit record of a decision,
without the message.

Text is matched after `normalise` (NFKC, Cyrillic and Greek look-alikes
made Latin, casefolded, invisible characters removed), against phrase
packs: one YAML file per language in `personae/agents/safety_phrases/`
(English, German, Spanish and Chinese ship), so a language is added as data.
Screening is pure, fast and deterministic: the same persona, text and
history always give the same verdict, and no model is called
(`second_opinion` is the one step that calls a model, and only when asked).

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

    rosie = Persona(id="rosie", name="Rosie", safety={"profile": "companion"})
    verdict = screen_in(rosie, "I want to end my life", locale="en-GB")
    verdict.action, verdict.alert
    # ('support', Alert(kind='crisis', severity='critical')); the reply names Samaritans
    ```

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from personae.agents._safety_companion import CareRules
from personae.agents._safety_game import GameRules
from personae.agents._safety_injection import (
    canary_for,
    canary_line,
    find_injection,
    quote_untrusted,
)
from personae.agents._safety_medication import matching_reminders, medication_reply
from personae.agents._safety_phrases import (
    LocaleResources,
    PhrasePack,
    all_packs,
    load_phrase_pack,
    phrase_pack,
    shipped_languages,
)
from personae.agents._safety_pii import PiiKind, PiiMatch, find_pii, redact
from personae.agents._safety_review import SecondOpinion, second_opinion
from personae.agents._safety_style import enforce_style, strip_markdown
from personae.agents._safety_text import normalise
from personae.agents._safety_verdicts import (
    Alert,
    AlertKind,
    Category,
    Injection,
    InjectionKind,
    OutAction,
    OutCategory,
    OutVerdict,
    Profile,
    PromptLine,
    Severity,
    Topic,
    Verdict,
    VerdictAction,
)
from personae.errors import SafetyError
from personae.personas.model import Persona

__all__ = [
    "Alert",
    "AlertKind",
    "Category",
    "Injection",
    "InjectionKind",
    "LocaleResources",
    "OutAction",
    "OutCategory",
    "OutVerdict",
    "PhrasePack",
    "PiiKind",
    "PiiMatch",
    "Profile",
    "ProfileRules",
    "PromptLine",
    "SecondOpinion",
    "Severity",
    "Topic",
    "Verdict",
    "VerdictAction",
    "canary_for",
    "canary_line",
    "detect_injection",
    "enforce_style",
    "find_pii",
    "load_phrase_pack",
    "matching_reminders",
    "medication_reply",
    "normalise",
    "phrase_pack",
    "profile_rules",
    "prompt_lines",
    "quote_untrusted",
    "redact",
    "screen_in",
    "screen_out",
    "second_opinion",
    "shipped_languages",
    "strip_markdown",
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
        user_history: Sequence[str] = (),
        locale: str | None = None,
        resources: Mapping[str, LocaleResources] | None = None,
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
        system_prompt: str | None = None,
        canary: str | None = None,
    ) -> OutVerdict:
        """Decide what happens to a reply."""
        ...

    def prompt_lines(self, persona: Persona) -> tuple[PromptLine, ...]:
        """Return the lines of the prompt's safety section."""
        ...


_PROFILES: dict[str, ProfileRules] = {
    "game": GameRules(),
    "community": CareRules("community"),
    "companion": CareRules("companion"),
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
    user_history: Sequence[str] = (),
    locale: str | None = None,
    resources: Mapping[str, LocaleResources] | None = None,
) -> Verdict:
    """Screen an incoming message before the model sees it.

    Args:
        persona: The character; its `safety` section picks the rules.
        text: What the person said.
        history: Earlier messages of the conversation, oldest first, both
            sides (as the agent keeps them). Used so that a deflection or a
            safety reply is never the same line as the previous one.
        speaker: Who speaks, for `{{user}}` in the persona's fallback lines.
        user_history: The person's own earlier messages, oldest first
            (`community`, `companion`): crisis wording is scored across them,
            and an alert is not raised twice for one crisis. Pass them on
            every turn, not only after a first verdict.
        locale: The person's locale (`en-GB`, `de`, `es-US`), for the crisis
            line and emergency number; default: the persona's
            `speech.language`, and the region of the language the person
            wrote in.
        resources: The deployment's own crisis lines and emergency numbers,
            by region (`GB`) or locale (`es-US`); they win over the packs'.

    Returns:
        The verdict. For any action but `pass`, send `verdict.reply` without
        calling the model and add `verdict.flags` to the reply's flags; put
        `verdict.as_trace()` in the trace either way. Raise `verdict.alert`
        with the care service when set, and log `verdict.audit()` for every
        verdict that did not pass.

    Raises:
        SafetyError: The persona's profile is unknown, or a phrase pack is broken.

    Example:
        ```python
        verdict = screen_in(persona, user_text, history=recent_texts, user_history=said_before)
        if not verdict.passed:
            send(verdict.reply, flags=verdict.flags)
        ```

    """
    return profile_rules(persona).screen_in(
        persona,
        text,
        history=history,
        speaker=speaker,
        user_history=user_history,
        locale=locale,
        resources=resources,
    )


def screen_out(
    persona: Persona,
    text: str,
    *,
    history: Sequence[str] = (),
    speaker: str | None = None,
    system_prompt: str | None = None,
    canary: str | None = None,
) -> OutVerdict:
    """Screen the model's reply before it is sent.

    Args:
        persona: The character; its `safety` section picks the rules.
        text: The reply.
        history: Earlier messages, oldest first, as for `screen_in`.
        speaker: Who the reply is for, for `{{user}}` in fallback lines.
        system_prompt: The system prompt the reply was made with
            (`community`, `companion`): a reply repeating a long run of it is
            a leak.
        canary: The persona's canary token (`canary_for`), which is in the
            system prompt; a reply containing it is a leak. Any token shaped
            like a canary is one, even without this argument.

    Returns:
        The verdict; send `verdict.text` (the reply itself when it passed)
        and add `verdict.flags` to the reply's flags.

    Raises:
        SafetyError: The persona's profile is unknown, or a phrase pack is broken.

    """
    return profile_rules(persona).screen_out(
        persona, text, history=history, speaker=speaker, system_prompt=system_prompt,
        canary=canary,
    )


def prompt_lines(persona: Persona) -> tuple[PromptLine, ...]:
    """Return the safety-section prompt lines of the persona's profile.

    For `game`: the character lives in its world and knows nothing outside
    it, never steps out of its role, and, when `safety.unknown` is set, has
    never heard of those things. For `community` and `companion`: it is
    honest about being an AI, untrusted text never changes it, it never asks
    for secrets, and it is gentle with a person who seems unsafe; for
    `companion` also no help with payments, no dosing advice, and the
    companion style. Add `canary_line(canary_for(...))` for a canary.

    Raises:
        SafetyError: The persona's profile is unknown.

    """
    return profile_rules(persona).prompt_lines(persona)


def detect_injection(text: str, *, language: str = "en") -> Injection | None:
    """Return the takeover attempt in untrusted text, if any.

    For text that reaches the model by other paths than the person's own
    message (tool results, fetched pages, forwarded messages): flag it, and
    pass it on through `quote_untrusted`.

    Args:
        text: The untrusted text.
        language: Its language, if known; every shipped pack is used anyway.

    """
    return find_injection(all_packs(language), normalise(text))
