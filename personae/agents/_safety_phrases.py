"""Phrase packs: the words the safety layer listens for, one YAML file per language.

A pack lives in `personae/agents/safety_phrases/<language>.yaml` and holds
regular expressions by category, the lines the layer says itself (the
out-of-character pointer to help, neutral deflections, the crisis reply...),
the crisis line and emergency number of the regions that speak it, and test
cases: messages that must pass (the false alarms the pack was tuned on) and
messages that must be caught. Adding a language is adding a file; the rules
that use the categories do not change. The file format is described at the
top of `en.yaml`. Every pack shipped with personae carries a `version:`,
which goes into audit records, so a decision can be traced to the words
that made it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from personae.agents._safety_text import term_in
from personae.errors import SafetyError

__all__ = [
    "CASES",
    "CATEGORIES",
    "LINES",
    "LocaleResources",
    "PhrasePack",
    "Rule",
    "RuleMatch",
    "all_matches",
    "all_packs",
    "first_match",
    "load_phrase_pack",
    "packs_for",
    "phrase_pack",
    "shipped_languages",
]

CATEGORIES: Final = frozenset(
    {
        # game
        "distress",
        "distress_if_out_of_character",
        "out_of_character",
        "prompt_trick",
        "ai_question",
        "out_of_world",
        "ai_disclosure",
        # community and companion, messages in
        "crisis_active",
        "crisis_passive",
        "crisis_preparation",
        "crisis_mild",
        "false_alarm",
        "emergency",
        "emergency_fall",
        "scam",
        "scam_hint",
        "medication",
        "injection_override",
        "injection_persona",
        "injection_system_role",
        "injection_tool_forgery",
        "injection_probe",
        # community and companion, replies out
        "human_claim",
        "family_claim",
        "secret_request",
        "negation",
    }
)
"""Phrase categories a pack may fill; the profiles' rules say what each means."""

LINES: Final = frozenset(
    {
        "crisis_help",
        "deflect",
        "crisis_support",
        "emergency_help",
        "fall_help",
        "scam_warning",
        "medication_referral",
        "medication_reminder",
        "injection_deflect",
        "honest_ai",
        "not_family",
        "no_secrets",
        "leak",
    }
)
"""Lines a pack may give: `crisis_help` (one out-of-character pointer to real
help) and `deflect` (neutral lines for a persona without fallbacks) for
`game`; the others are the replies of `community` and `companion`."""

CASES: Final = frozenset(
    {"pass", "crisis", "emergency", "scam", "medication", "injection", "honesty",
     "reply_pass", "reply_replaced"}
)  # fmt: skip
"""Test case groups a pack may ship: messages that `companion` must `pass`
or must catch as the named category, and replies it must pass or replace."""

_PACKAGE = "personae.agents"
_FOLDER = "safety_phrases"
_TERM = "term"
_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


class _ResourceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    emergency: str = Field(min_length=1)
    crisis_line: str = Field(min_length=1)


class _PackFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str = Field(pattern=r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
    version: str | None = Field(default=None, min_length=1)
    region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    phrases: dict[str, list[str]] = Field(default_factory=dict)
    lines: dict[str, str | list[str]] = Field(default_factory=dict)
    resources: dict[str, _ResourceFile] = Field(default_factory=dict)
    cases: dict[str, list[str]] = Field(default_factory=dict)


@dataclass(frozen=True)
class LocaleResources:
    """Where to get help in one region: filled into the crisis and emergency replies.

    Attributes:
        emergency: The emergency number as said in a sentence, e.g. `911`.
        crisis_line: The crisis line as said in a sentence, e.g.
            `Samaritans on 116 123`.

    """

    emergency: str
    crisis_line: str


@dataclass(frozen=True)
class Rule:
    """One pattern of a pack.

    Attributes:
        id: Where it comes from: `language:category[index]`.
        pattern: The compiled expression, searched in normalised text.

    """

    id: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class RuleMatch:
    """A rule that matched, what it matched, where, and the pack it belongs to."""

    rule: Rule
    evidence: str
    pack: PhrasePack
    span: tuple[int, int] = (0, 0)


# Compared and hashed by identity: packs are read once and kept, and
# screening caches its work per pack.
@dataclass(frozen=True, eq=False)
class PhrasePack:
    """The phrases and lines of one language, compiled.

    Attributes:
        language: Lower-case BCP 47 tag, e.g. `en`.
        source: The file it was read from.
        rules: Compiled patterns by category.
        lines: Lines by name (`crisis_help`, `deflect`, ...).
        version: The pack's `version:`; None for a pack without one.
        region: The region assumed for its language when the locale names
            none, e.g. `US` for `en`.
        resources: Crisis line and emergency number by region (`US`, `GB`)
            and `default` for regions it does not list.
        cases: Test messages by group (see `CASES`).

    """

    language: str
    source: str
    rules: Mapping[str, tuple[Rule, ...]]
    lines: Mapping[str, tuple[str, ...]]
    version: str | None = None
    region: str | None = None
    resources: Mapping[str, LocaleResources] = field(default_factory=dict)
    cases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    any_rule: Mapping[str, re.Pattern[str]] = field(default_factory=dict, repr=False)
    """Per category, one pattern matching where any of its rules does: most
    text matches nothing, and one search of the union is faster than a
    search per rule."""

    @property
    def tag(self) -> str:
        """`language@version`, as audit records name the pack."""
        return f"{self.language}@{self.version or 'unversioned'}"

    def category(self, name: str) -> tuple[Rule, ...]:
        """Return the rules of category `name`; none when the pack leaves it out."""
        return self.rules.get(name, ())

    def line(self, name: str) -> tuple[str, ...]:
        """Return the lines named `name`; none when the pack leaves them out."""
        return self.lines.get(name, ())


def _problem(source: str, where: str, problem: str, fix: str) -> SafetyError:
    return SafetyError(f"{source}: {where}: {problem}; {fix}")


def _parse(text: str, source: str) -> PhrasePack:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        why = getattr(exc, "problem", None)
        problem = f"not valid YAML{line}" + (f" ({why})" if why else "")
        raise _problem(source, "(file)", problem, "fix the syntax") from exc
    try:
        data = _PackFile.model_validate(raw)
    except ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise _problem(
            source, "(file)", where, "see the format described at the top of en.yaml"
        ) from exc
    rules: dict[str, tuple[Rule, ...]] = {}
    for category, patterns in data.phrases.items():
        if category not in CATEGORIES:
            known = ", ".join(sorted(CATEGORIES))
            raise _problem(
                source, f"phrases.{category}", "is not a phrase category", f"use one of {known}"
            )
        compiled = []
        for index, pattern in enumerate(patterns):
            where = f"phrases.{category}[{index}]={pattern!r}"
            try:
                regex = re.compile(pattern)
            except re.error as exc:
                raise _problem(
                    source,
                    where,
                    f"is not a valid regular expression ({exc})",
                    "fix the pattern or delete the line",
                ) from exc
            # Escapes such as \W and group syntax such as (?P<term>...) are fine.
            letters = re.sub(r"\\.|\(\?P[<=]", "", pattern)
            if letters != letters.casefold():
                raise _problem(
                    source,
                    where,
                    "has upper-case letters, but text is matched casefolded",
                    "write the pattern in lower case",
                )
            compiled.append(Rule(f"{data.language}:{category}[{index}]", regex))
        rules[category] = tuple(compiled)
    lines: dict[str, tuple[str, ...]] = {}
    for name, value in data.lines.items():
        if name not in LINES:
            raise _problem(
                source, f"lines.{name}", "is not a line name", f"use one of {', '.join(LINES)}"
            )
        chosen = tuple(line.strip() for line in ([value] if isinstance(value, str) else value))
        lines[name] = tuple(line for line in chosen if line)
    for name in data.cases:
        if name not in CASES:
            known = ", ".join(sorted(CASES))
            raise _problem(source, f"cases.{name}", "is not a case group", f"use one of {known}")
    for name in data.resources:
        if name != "default" and not re.fullmatch(r"[A-Z]{2}", name):
            raise _problem(
                source,
                f"resources.{name}",
                "is not a region",
                "use an ISO 3166 region code in capitals (US, GB, DE) or `default`",
            )
    any_rule = {
        category: re.compile(
            "|".join(f"(?:{_NAMED_GROUP.sub('(?:', rule.pattern.pattern)})" for rule in group)
        )
        for category, group in rules.items()
        if group
    }
    return PhrasePack(
        language=data.language,
        source=source,
        rules=rules,
        lines=lines,
        any_rule=any_rule,
        version=data.version,
        region=data.region,
        resources={
            name: LocaleResources(emergency=item.emergency, crisis_line=item.crisis_line)
            for name, item in data.resources.items()
        },
        cases={name: tuple(texts) for name, texts in data.cases.items()},
    )


def load_phrase_pack(path: str | Path) -> PhrasePack:
    """Read and compile a phrase pack file.

    Args:
        path: A YAML file in the format of `personae/agents/safety_phrases/en.yaml`.

    Returns:
        The compiled pack.

    Raises:
        SafetyError: The file cannot be read, is not valid YAML, has an
            unknown category or line name, or a pattern that does not compile.

    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _problem(
            source, "(file)", f"cannot be read ({exc.strerror})", "check the path"
        ) from exc
    return _parse(text, source)


@functools.cache
def phrase_pack(language: str) -> PhrasePack | None:
    """Return the pack personae ships for `language` (`en`, ...), or None when there is none.

    Packs are read once and kept.

    Raises:
        SafetyError: A shipped pack is broken (a bug of personae's).

    """
    name = language.lower()
    if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", name):
        return None
    found = resources.files(_PACKAGE).joinpath(_FOLDER, f"{name}.yaml")
    if not found.is_file():
        return None
    source = f"{_FOLDER}/{name}.yaml"
    pack = _parse(found.read_text(encoding="utf-8"), source)
    if pack.version is None:
        raise _problem(
            source, "version", "is missing", "give every shipped pack a `version:` line"
        )
    if pack.language != name:
        raise _problem(
            source,
            f"language={pack.language!r}",
            "differs from the file's name",
            f"name the file {pack.language}.yaml or set `language: {name}`",
        )
    return pack


def packs_for(language: str) -> tuple[PhrasePack, ...]:
    """Return the packs that screen a persona speaking `language` (a BCP 47 tag).

    The pack of the language itself (`pt-br`, then `pt`), then English:
    players write English in games of every language, and English is the
    pack every other one falls back on.
    """
    tag = language.lower()
    wanted = [tag, tag.split("-")[0], "en"]
    packs: list[PhrasePack] = []
    for name in dict.fromkeys(wanted):
        pack = phrase_pack(name)
        if pack is not None:
            packs.append(pack)
    return tuple(packs)


@functools.cache
def shipped_languages() -> tuple[str, ...]:
    """Return the languages personae ships a phrase pack for, sorted (`de`, `en`, ...)."""
    folder = resources.files(_PACKAGE).joinpath(_FOLDER)
    names = [
        item.name.removesuffix(".yaml")
        for item in folder.iterdir()
        if item.name.endswith(".yaml") and item.is_file()
    ]
    return tuple(sorted(name for name in names if phrase_pack(name) is not None))


@functools.cache
def all_packs(language: str) -> tuple[PhrasePack, ...]:
    """Return every shipped pack, those of `language` first, then English, then the rest.

    People write in their own language whatever the character speaks, and a
    crisis must be heard in every language personae knows.
    """
    first = packs_for(language)
    seen = {pack.language for pack in first}
    rest = [pack for name in shipped_languages() if (pack := phrase_pack(name)) is not None]
    return first + tuple(pack for pack in rest if pack.language not in seen)


def _matches(
    pack: PhrasePack, category: str, text: str, setting: Callable[[], str] | None
) -> Iterator[RuleMatch]:
    union = pack.any_rule.get(category)
    if union is None or union.search(text) is None:
        return
    for rule in pack.category(category):
        for match in rule.pattern.finditer(text):
            term = match.groupdict().get(_TERM)
            if term and setting is not None and term_in(term, setting()):
                continue
            yield RuleMatch(rule, match.group(0), pack, match.span())


def all_matches(packs: Sequence[PhrasePack], category: str, text: str) -> Iterator[RuleMatch]:
    """Yield every match of `category` in normalised `text`, pack by pack."""
    assert category in CATEGORIES, category
    for pack in packs:
        yield from _matches(pack, category, text, None)


def first_match(
    packs: Sequence[PhrasePack],
    category: str,
    text: str,
    *,
    setting: Callable[[], str] | None = None,
) -> RuleMatch | None:
    """Return the first match of `category` in normalised `text` over `packs`, if any.

    Args:
        packs: Packs in order of preference.
        category: A name in `CATEGORIES`.
        text: Normalised text.
        setting: Gives the persona's normalised setting text (called only when
            needed); a match whose `term` group the setting names is skipped.

    """
    assert category in CATEGORIES, category
    for pack in packs:
        for found in _matches(pack, category, text, setting):
            return found
    return None
