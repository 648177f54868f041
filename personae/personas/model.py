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
    "LoreLogic",
    "LorePosition",
    "Lorebook",
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


LoreLogic = Literal["and_any", "and_all", "not_any", "not_all"]
"""How `secondary_keys` combine with a primary key match (a card's `selectiveLogic`)."""

LorePosition = Literal["before_char", "after_char"]
"""Where an active entry goes: before the character's definition or after it."""


class LoreEntry(_Section):
    """A piece of knowledge, put in the prompt when one of its keys comes up.

    Keys match as whole words, case-insensitively, unless the entry or the
    `lorebook` says otherwise. A key written `/pattern/flags` is a regular
    expression. See `personae.personas.lore` for every activation rule.
    """

    name: str | None = None
    """A label for traces and editors (a card entry's `name` or `comment`)."""
    keys: list[str] = Field(default_factory=list)
    """Words, phrases or `/regex/flags` that bring this entry into the prompt."""
    secondary_keys: list[str] = Field(default_factory=list)
    """Further keys checked once a primary key matched, combined by `logic`."""
    logic: LoreLogic = "and_any"
    """`and_any`: one secondary key must match too; `and_all`: all of them; `not_any`: none
    may match; `not_all`: not all may match. Ignored without `secondary_keys`."""
    content: str = Field(min_length=1)
    """What the character knows, written as facts."""
    constant: bool = False
    """Always in the prompt, whatever is said."""
    enabled: bool = True
    """A disabled entry never activates; it is kept for editing and export."""
    priority: int = 0
    """Under a tight token budget, higher priority entries are kept longer."""
    order: int = 100
    """Insertion order: lower comes earlier in the prompt."""
    position: LorePosition = "after_char"
    """`before_char` puts the entry before the character's definition, `after_char` after it."""
    case_sensitive: bool | None = None
    """Match keys with exact case; unset: the lorebook's setting."""
    whole_words: bool | None = None
    """Match keys only as whole words; unset: the lorebook's setting."""
    regex: bool = False
    """Every key is a regular expression (a V3 card's `use_regex`); `/pattern/flags` keys
    are regular expressions anyway."""
    scan_depth: int | None = Field(default=None, ge=0, le=1000)
    """How many recent messages to look for keys in; unset: the lorebook's setting."""
    probability: int = Field(default=100, ge=0, le=100)
    """Chance in percent that a matched entry is used (seeded, so runs repeat)."""
    group: str = ""
    """Inclusion group(s), comma-separated: of the active entries in one group only one is
    used."""
    group_weight: int = Field(default=100, ge=1)
    """Weight of this entry when its inclusion group picks one entry at random."""
    group_override: bool = False
    """This entry wins its inclusion group over entries without the flag (highest `order`)."""
    sticky: int = Field(default=0, ge=0)
    """Once active, stay active for this many more messages."""
    cooldown: int = Field(default=0, ge=0)
    """Once no longer active, cannot activate again for this many messages."""
    delay: int = Field(default=0, ge=0)
    """Cannot activate before the conversation has this many messages."""
    exclude_recursion: bool = False
    """Only messages can activate this entry, not the content of other entries."""
    prevent_recursion: bool = False
    """This entry's content does not activate other entries."""
    delay_until_recursion: bool = False
    """Activates only from the content of other entries, never from messages directly."""
    card: dict[str, Any] = Field(default_factory=dict)
    """Fields of an imported card entry that personae does not use (`extensions`,
    `id`, `comment`...), written back unchanged on export."""

    @model_validator(mode="after")
    def _keys_or_constant(self) -> LoreEntry:
        # Imported entries may be keyless (a card tool left them so); keep them
        # rather than refuse the card: they never activate, as in their origin.
        if not self.keys and not self.constant and not self.card:
            raise ValueError(
                "a lore entry needs `keys` (words that bring it up) or `constant: true`"
            )
        return self


class Lorebook(_Section):
    """How lore entries are found: scan depth, budget, matching defaults, recursion."""

    name: str = ""
    """The book's name, if it has one."""
    description: str = ""
    """What the book is about; for editors, never put in the prompt."""
    scan_depth: int = Field(default=4, ge=0, le=1000)
    """How many recent messages (the new one included) keys are looked for in."""
    token_budget: int | None = Field(default=None, ge=1)
    """Most tokens all active entries may take; keyed entries are left out before constant
    ones, lowest priority first. Unset: only the prompt's own budget applies."""
    recursive_scanning: bool = False
    """Active entries' content can activate further entries. Off by default, so a constant
    entry that mentions a key does not pin that entry into every prompt."""
    max_recursion: int = Field(default=3, ge=0, le=20)
    """How many rounds of recursive scanning at most."""
    case_sensitive: bool = False
    """Default for entries: match keys with exact case."""
    whole_words: bool = True
    """Default for entries: match keys only as whole words (CJK keys always match inside
    text, since those scripts have no spaces)."""
    card: dict[str, Any] = Field(default_factory=dict)
    """Fields of an imported lorebook that personae does not use, written back on export."""


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
    unknown: list[str] = Field(default_factory=list)
    """Things the character has never heard of (for a medieval innkeeper: `smartphone`,
    `internet`); asked about them, it does not know, and its replies never name them."""


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
    avatar: Path | None = None
    """Image of the character (PNG, JPEG, WebP), relative to this file; used by card export
    and by integrations that show a picture (Discord webhooks)."""
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
    instructions: str = ""
    """Extra instructions from the author (a card's `system_prompt`), placed after who the
    character is; `{{original}}` in it stands for personae's own opening line."""
    lore: list[LoreEntry] = Field(default_factory=list)
    """Knowledge entries brought into the prompt by their keys."""
    lorebook: Lorebook = Field(default_factory=Lorebook)
    """How lore entries are activated: scan depth, token budget, matching, recursion."""
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
    card: dict[str, Any] = Field(default_factory=dict)
    """What an imported Character Card or character.json held that personae does not use
    (`creator_notes`, `extensions`, `tags`, unknown fields...): kept only to be written back
    on export, never put in a prompt."""

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
