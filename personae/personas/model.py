"""The persona file format, `schema: personae/v1`, as pydantic models.

A persona says who a character is, how it speaks, what it knows, which tools
and host actions it may use, how it remembers and how it stays safe. The same
file runs in a game, in Discord and behind the HTTP endpoint.

`Persona.model_json_schema()` (or `personae schema`) gives the JSON Schema
that editors use to validate persona YAML; field docs come from the
docstrings below.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "SCHEMA_VERSION",
    "CoStar",
    "Example",
    "HostAction",
    "LoreEntry",
    "MemoryPolicy",
    "ModelSettings",
    "Persona",
    "SafetyProfile",
    "SpeechRules",
]

SCHEMA_VERSION: Final = "personae/v1"

_SPEC_RE = re.compile(r"^[a-z][a-z0-9_-]*:\S.*$")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


class _Section(BaseModel):
    """Base of every persona section: unknown keys are errors, docs come from docstrings."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        str_strip_whitespace=True,
        validate_default=True,
    )


class CoStar(_Section):
    """The CO-STAR style block: what the prompt compiler tells the model about the job."""

    context: str = ""
    """Where and when the character lives, what situation the conversation is in."""
    objective: str = ""
    """What the character tries to achieve in conversations."""
    style: str = ""
    """How the character writes or speaks (diction, rhythm, idioms)."""
    tone: str = ""
    """The emotional colour of replies (warm, gruff, playful...)."""
    audience: str = ""
    """Who the character talks to (players, a Discord community, an older adult)."""
    response_format: str = ""
    """Shape of a reply (one short paragraph, a list, a spoken line...)."""


class SpeechRules(_Section):
    """Hard limits on how replies look, enforced in the prompt and checked by tests."""

    max_sentences: int | None = Field(default=None, ge=1, le=50)
    """At most this many sentences per reply; unset means no limit."""
    max_words_per_sentence: int | None = Field(default=None, ge=3, le=200)
    """At most this many words in one sentence; unset means no limit."""
    plain_text: bool = False
    """No markdown, lists, emoji or stage directions: replies are spoken aloud (TTS)."""
    language: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    """BCP 47 language tag the character answers in, e.g. `en`, `de`, `zh-Hans`."""


class Example(_Section):
    """One example exchange: what a user says and how the character answers."""

    user: str = Field(min_length=1)
    """What the other person says."""
    reply: str = Field(min_length=1)
    """The character's answer, in its own voice."""
    emotion: str | None = None
    """Emotion the character shows with this reply (one of `emotions`), if any."""


class LoreEntry(_Section):
    """A piece of knowledge, put in the prompt when one of its keys comes up."""

    keys: list[str] = Field(default_factory=list)
    """Words or phrases that bring this entry into the prompt (case-insensitive)."""
    content: str = Field(min_length=1)
    """What the character knows, written as facts."""
    constant: bool = False
    """Always in the prompt, whatever is said."""
    priority: int = Field(default=0, ge=-1000, le=1000)
    """Higher priority entries survive a tight token budget longer."""

    @model_validator(mode="after")
    def _keys_or_constant(self) -> LoreEntry:
        if not self.keys and not self.constant:
            raise ValueError(
                "a lore entry needs `keys` (words that bring it up) or `constant: true`"
            )
        return self


class HostAction(_Section):
    """An action the host (a game, a bot) carries out when the character asks for it.

    Host actions are never run inside personae: the agent returns them in
    `Reply.actions`, with arguments validated against `parameters`.
    """

    name: str = Field(pattern=_NAME_RE.pattern)
    """Identifier the host knows the action by, e.g. `give_item`."""
    description: str = Field(min_length=1)
    """When and why to use the action; the model reads this."""
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    """JSON Schema (draft 2020-12) of the action's arguments; must be an `object` schema."""

    @field_validator("parameters")
    @classmethod
    def _is_json_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
            raise ValueError(f"is not a valid JSON Schema at {where}: {exc.message}") from None
        if value.get("type") != "object":
            raise ValueError(
                "must be a JSON Schema with `type: object` (arguments are named)"
            )
        return value


class MemoryPolicy(_Section):
    """What the character remembers between conversations."""

    enabled: bool = True
    """Keep long-term memory at all."""
    recall_limit: int = Field(default=5, ge=0, le=50)
    """How many memories at most go into one prompt."""
    remember_episodes: bool = True
    """Store a record of every exchange."""
    extract_facts: bool = True
    """Extract facts about the user (names, preferences) from conversations."""
    half_life_days: float = Field(default=30.0, gt=0)
    """Recency half-life: a memory not used for this long counts half as recent."""


class SafetyProfile(_Section):
    """How the safety layer screens what comes in and what goes out."""

    profile: Literal["game", "community", "companion"] = "community"
    """`game` (fiction allowed), `community` (Discord defaults) or `companion` (strictest)."""
    avoid_topics: list[str] = Field(default_factory=list)
    """Topics the character steers away from."""


class ModelSettings(_Section):
    """Which language model speaks for the character."""

    spec: str | None = None
    """`provider:model`, e.g. `openai:gpt-4o-mini`, `ollama:llama3.1`, `qwen:qwen-plus`, or
    `offline`. Unset: `PERSONAE_MODEL`, else `offline`."""
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    """Sampling temperature, 0.0 to 2.0."""
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)
    """Most tokens in one reply; unset leaves it to the model."""
    fallbacks: list[str] = Field(default_factory=list)
    """Models tried in order when the one before fails; `offline` always ends the chain."""
    prompt_tokens: int = Field(default=3000, ge=200, le=1_000_000)
    """Token budget of the system prompt; the compiler cuts to fit (see the drop order)."""

    @field_validator("spec")
    @classmethod
    def _spec_shape(cls, value: str | None) -> str | None:
        if value is not None:
            _check_spec(value)
        return value

    @field_validator("fallbacks")
    @classmethod
    def _fallback_shapes(cls, value: list[str]) -> list[str]:
        for spec in value:
            _check_spec(spec)
        return value


def _check_spec(spec: str) -> None:
    if spec == "offline" or _SPEC_RE.match(spec):
        return
    raise ValueError(
        f"{spec!r} is not a model spec; write 'provider:model' "
        "(e.g. 'openai:gpt-4o-mini', 'ollama:llama3.1') or 'offline'"
    )


class Persona(_Section):
    """A character: who it is, how it speaks, what it knows and may do.

    Load one from a file with `personae.load_persona(path)`; build one in code
    for tests.

    Example:
        ```python
        from personae import Persona

        mira = Persona(
            id="mira",
            name="Mira",
            greetings=["Welcome to the Lantern!"],
            fallbacks=["Hm, I wouldn't know about that."],
        )
        ```

    """

    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["personae/v1"] = Field(default=SCHEMA_VERSION, alias="schema")
    """Version of the persona format; `personae/v1`."""
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    """Stable identifier: lowercase letters, digits, `-` and `_`. Memories are keyed by it."""
    name: str = Field(min_length=1)
    """The character's name as others say it."""
    nickname: str | None = None
    """A short or familiar name."""
    description: str = ""
    """One or two sentences: who the character is."""
    backstory: str = ""
    """Where the character comes from; the model uses it for colour, not recitation."""
    style: CoStar = Field(default_factory=CoStar)
    """CO-STAR block: context, objective, style, tone, audience, response format."""
    speech: SpeechRules = Field(default_factory=SpeechRules)
    """Hard limits on reply shape: sentences, words, plain text, language."""
    greetings: list[str] = Field(default_factory=list)
    """Opening lines; also what the offline model says to a greeting."""
    examples: list[Example] = Field(default_factory=list)
    """Example exchanges in the character's voice."""
    fallbacks: list[str] = Field(default_factory=list)
    """Lines for when the character has nothing better to say; never invent, deflect."""
    lore: list[LoreEntry] = Field(default_factory=list)
    """Knowledge entries brought into the prompt by their keys."""
    lore_files: list[Path] = Field(default_factory=list)
    """YAML/JSON files of lore entries, relative to this file; merged into `lore` on load."""
    goals: list[str] = Field(default_factory=list)
    """What the character wants; shapes what it steers towards."""
    emotions: list[str] = Field(default_factory=list)
    """Emotions the character may show (e.g. for a game's animations); empty: none."""
    tools: list[str] = Field(default_factory=list)
    """Tools the model may call: built-in names (`current_time`, `roll_dice`) or
    `module:function` for your own Python functions."""
    actions: list[HostAction] = Field(default_factory=list)
    """Actions the host carries out (give an item, open a door), returned in `Reply.actions`."""
    memory: MemoryPolicy = Field(default_factory=MemoryPolicy)
    """What the character remembers and recalls."""
    safety: SafetyProfile = Field(default_factory=SafetyProfile)
    """Safety profile and topics to avoid."""
    model: ModelSettings = Field(default_factory=ModelSettings)
    """Which model speaks, with fallbacks and token budget."""

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.match(r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$", name):
                raise ValueError(
                    f"{name!r} is not a tool name; use a built-in name like 'roll_dice' "
                    "or 'package.module:function'"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Persona:
        seen: set[str] = set()
        for action in self.actions:
            if action.name in seen:
                raise ValueError(f"two host actions are named {action.name!r}; names must differ")
            seen.add(action.name)
        for i, example in enumerate(self.examples):
            if example.emotion is not None and example.emotion not in self.emotions:
                raise ValueError(
                    f"examples[{i}].emotion={example.emotion!r} is not in `emotions` "
                    f"{self.emotions!r}; add it there or remove it"
                )
        return self

    @property
    def display_name(self) -> str:
        """The name to show, `nickname` when set."""
        return self.nickname or self.name
