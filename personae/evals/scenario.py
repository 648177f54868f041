"""Scenario files, `schema: personae-scenarios/v1`, as pydantic models.

A scenario file is a suite: the persona it tests (a path relative to the
file), optional setup shared by every scenario, then scenarios. A scenario is
a short conversation: optional setup of its own (memories pre-loaded into the
persona's memory for the scenario's scope, world state, game time), then
turns. Each turn is something the user says and/or events the character
perceives, with expectations on the reply:

```yaml
schema: personae-scenarios/v1
persona: ../personas/innkeeper.yaml
scenarios:
  - id: room-for-the-night
    turns:
      - user: Have you got a room for the night?
        expect:
          contains: [silver]
          max_sentences: 3
          no_markdown: true
          action: {name: rent_room}
```

`Suite.model_json_schema()` (or `personae eval --schema`) is the JSON Schema
editors validate scenario YAML with; field docs come from the docstrings
below. `personae.evals.loading.load_suite` reads a file with errors named by
file, line and field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PrivateAttr,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

__all__ = [
    "LANGUAGES",
    "SCENARIO_SCHEMA_VERSION",
    "ActionExpectation",
    "Expectations",
    "MemorySeed",
    "SafetyExpectation",
    "Scenario",
    "ScenarioTurn",
    "Setup",
    "Suite",
    "suite_json_schema",
]

SCENARIO_SCHEMA_VERSION: Final = "personae-scenarios/v1"

LANGUAGES: Final = ("de", "en", "es", "fr", "zh")
"""Languages the offline detector tells apart (see `personae.evals.language`)."""

_ID_RE = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


def _listify(value: object) -> object:
    """Let a single item stand for a list of one (`contains: silver`)."""
    if value is None:
        return []
    if isinstance(value, str | dict):
        return [value]
    return value


class _OneOrList:
    """JSON Schema of a list field that also takes a single item."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        many = handler(core_schema)
        return {"anyOf": [many["items"], many]}


class _OrText:
    """JSON Schema of a model field that also takes a plain text."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"anyOf": [{"type": "string"}, handler(core_schema)]}


Texts = Annotated[list[str], BeforeValidator(_listify), _OneOrList()]
"""One text or a list of texts."""


class _Section(BaseModel):
    """Base of every scenario section: unknown keys are errors, docs come from docstrings."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        str_strip_whitespace=True,
        validate_default=True,
    )


class MemorySeed(_Section):
    """A memory stored in the scenario's scope before the first turn."""

    text: str = Field(min_length=1)
    """The memory, in plain words, e.g. `The traveller's name is Ann`."""
    importance: int = Field(default=5, ge=1, le=10)
    """1 (trivial) to 10 (life-changing)."""
    game_time: str | None = None
    """In-game time it happened, for game characters."""
    speaker: str | None = None
    """Who said or did it."""


def _seed(value: object) -> object:
    return {"text": value} if isinstance(value, str) else value


Seed = Annotated[MemorySeed, BeforeValidator(_seed), _OrText()]


class Setup(_Section):
    """What is true before the first turn.

    A scenario's own setup is merged over the suite's: `memories` add up,
    `world` keys are merged (the scenario's win), `user`, `speaker` and
    `time` are replaced when the scenario sets them.
    """

    user: str | None = None
    """Who the character talks to: the scope's user (default `tester`)."""
    speaker: str | None = None
    """Display name of the user, for `{{user}}` and group chats."""
    memories: list[Seed] = Field(default_factory=list)
    """Memories pre-loaded into the persona's memory for the scenario's scope; a text or
    `{text, importance, game_time, speaker}`. The persona needs `memory.enabled: true`."""
    world: dict[str, Any] = Field(default_factory=dict)
    """World state shown to the model on every turn (location, weather...)."""
    time: str | None = None
    """Current time (in-game time for game characters); goes into the world state as `time`."""

    def merged(self, over: Setup | None) -> Setup:
        """Return this setup with `over` (a scenario's own setup) applied on top."""
        if over is None:
            return self
        return Setup(
            user=over.user or self.user,
            speaker=over.speaker or self.speaker,
            memories=[*self.memories, *over.memories],
            world={**self.world, **over.world},
            time=over.time or self.time,
        )


class ActionExpectation(_Section):
    """A host action or tool the reply must call, with at least these arguments."""

    name: str = Field(min_length=1)
    """The action or tool name, e.g. `rent_room` or `roll_dice`."""
    arguments: dict[str, Any] = Field(default_factory=dict)
    """Arguments it must be called with; others may be there too. Empty: any arguments."""


Calls = Annotated[list[ActionExpectation], BeforeValidator(_listify), _OneOrList()]


class SafetyExpectation(_Section):
    """What the safety layer must have decided about the turn (`Reply.trace`).

    Matches a `safety_in` (the message) or `safety_out` (the reply) trace
    entry whose given fields all agree. `action: pass` means no safety entry
    of the turn did anything but pass.
    """

    step: Literal["in", "out", "any"] = "any"
    """Which screening: `in` (the user's message), `out` (the reply), or `any`."""
    action: str | None = None
    """E.g. `pass`, `deflect`, `ooc_help` (in) or `replace` (out)."""
    category: str | None = None
    """E.g. `ai_question`, `prompt_trick`, `distress`, `unknown_topic`."""
    rule: str | None = None
    """Start of the rule name, e.g. `en:prompt_trick`."""


class Expectations(_Section):
    """What a reply must (or must not) do. Every check given must pass."""

    contains: Texts = Field(default_factory=list)
    """Texts the reply must contain (case-insensitive)."""
    not_contains: Texts = Field(default_factory=list)
    """Texts the reply must not contain (case-insensitive)."""
    regex: Texts = Field(default_factory=list)
    """Python regular expressions the reply must match somewhere (case-insensitive)."""
    not_regex: Texts = Field(default_factory=list)
    """Python regular expressions the reply must not match (case-insensitive)."""
    max_sentences: int | None = Field(default=None, ge=1, le=50)
    """Most sentences the reply may have."""
    max_words_per_sentence: int | None = Field(default=None, ge=1, le=200)
    """Most words in any sentence (in Chinese, two characters count as a word)."""
    language: str | None = None
    """Language of the reply: one of de, en, es, fr, zh (an offline detector judges)."""
    no_markdown: bool = False
    """The reply has no markdown: no emphasis, headings, lists, code, links, tables or quotes."""
    action: Calls = Field(default_factory=list)
    """Host actions the reply must carry (`Reply.actions`), each `{name, arguments}`."""
    no_actions: bool = False
    """The reply carries no host action at all."""
    tool: Calls = Field(default_factory=list)
    """Tools (or host actions) the model must have called during the turn."""
    flags: Texts = Field(default_factory=list)
    """Flags the reply must carry, e.g. `deflected`, `offline`."""
    not_flags: Texts = Field(default_factory=list)
    """Flags the reply must not carry, e.g. `fallback`, `error`."""
    safety: SafetyExpectation | None = None
    """What the safety layer must have decided."""
    stays_in_character: bool = False
    """The reply does not say it is an AI, a bot or a language model, nor talk about its
    prompt or instructions, unless the user sincerely asked whether they talk to a machine
    (never sincere for the `game` safety profile, where players ask in play)."""
    recalls: Texts = Field(default_factory=list)
    """Texts that must be among the memories recalled for this turn (case-insensitive)."""
    emotion: str | None = None
    """Emotion the reply must show."""
    rubric: str | None = None
    """A criterion a judge model decides (`personae eval --judge SPEC`); without a judge it
    is reported as not judged."""

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in LANGUAGES:
            raise ValueError(
                f"{value!r} is not a language the detector knows; use one of "
                f"{', '.join(LANGUAGES)}"
            )
        return value.lower() if value is not None else None

    @field_validator("regex", "not_regex")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"{pattern!r} is not a valid regular expression ({exc}); "
                    "fix the pattern, or use `contains` for plain text"
                ) from None
        return patterns


class ScenarioTurn(_Section):
    """One turn: something said and/or events perceived, and what the reply must do."""

    user: str = ""
    """What the user says (may be empty when only `events` happen)."""
    events: Texts = Field(default_factory=list)
    """Things the character perceives this turn, in plain words (a game event)."""
    world: dict[str, Any] = Field(default_factory=dict)
    """World state for this turn, merged over the setup's."""
    affordances: dict[str, list[str]] | None = None
    """Host actions usable now, each with the targets it may be used on (games)."""
    expect: Expectations = Field(default_factory=Expectations)
    """What the reply must do."""

    @model_validator(mode="after")
    def _something_happens(self) -> ScenarioTurn:
        if not self.user and not self.events:
            raise ValueError(
                "a turn needs `user` (what is said) or `events` (what happens); add one"
            )
        return self


class Scenario(_Section):
    """A short conversation with expectations on every reply."""

    id: str = Field(pattern=_ID_RE)
    """Unique name: lowercase letters, digits, `-`, `_` and `.`; used in reports."""
    description: str = ""
    """What the scenario checks, in a sentence."""
    skip: str | None = None
    """Why the scenario is not run (yet); reported as skipped."""
    tags: list[str] = Field(default_factory=list)
    """Free labels, e.g. `safety`, for filtering with `personae eval --tag`."""
    setup: Setup | None = None
    """What is true before the first turn, over the suite's setup."""
    turns: list[ScenarioTurn] = Field(min_length=1)
    """The conversation, in order."""


class Suite(_Section):
    """A scenario file: the persona under test and its scenarios."""

    schema_: Literal["personae-scenarios/v1"] = Field(
        default=SCENARIO_SCHEMA_VERSION, alias="schema"
    )
    """Scenario file format version."""
    persona: Path
    """The persona file under test, relative to this file."""
    description: str = ""
    """What the suite covers."""
    setup: Setup = Field(default_factory=Setup)
    """Setup every scenario starts from."""
    scenarios: list[Scenario] = Field(min_length=1)
    """The scenarios."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        str_strip_whitespace=True,
        validate_default=True,
        populate_by_name=True,
        json_schema_extra={"title": "personae scenario suite"},
    )

    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique_ids(self) -> Suite:
        seen: set[str] = set()
        for scenario in self.scenarios:
            if scenario.id in seen:
                raise ValueError(
                    f"scenario id {scenario.id!r} is used twice; give each scenario its own id"
                )
            seen.add(scenario.id)
        return self

    @property
    def source(self) -> Path | None:
        """The file the suite was read from, if any."""
        return self._source

    @property
    def name(self) -> str:
        """The suite's name in reports: its file name without the extension."""
        return self._source.stem if self._source is not None else "suite"

    def with_source(self, path: Path) -> Suite:
        """Return the suite marked as read from `path` (for relative persona paths)."""
        self._source = path
        return self

    def persona_path(self) -> Path:
        """Return the persona file, resolved against the scenario file's folder."""
        if self.persona.is_absolute() or self._source is None:
            return self.persona
        return self._source.parent / self.persona


def suite_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of scenario files (what `personae eval --schema` prints)."""
    schema = Suite.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
