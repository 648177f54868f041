"""Phrase packs: the words the safety layer listens for, one YAML file per language.

A pack lives in `personae/agents/safety_phrases/<language>.yaml` and holds
regular expressions by category plus the lines the layer says itself (the
out-of-character pointer to help, neutral deflections). Adding a language is
adding a file; the rules that use the categories do not change. The file
format is described at the top of `en.yaml`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from personae.agents._safety_text import term_in
from personae.errors import SafetyError

__all__ = [
    "CATEGORIES",
    "LINES",
    "PhrasePack",
    "Rule",
    "RuleMatch",
    "first_match",
    "load_phrase_pack",
    "packs_for",
    "phrase_pack",
]

CATEGORIES: Final = frozenset(
    {
        "distress",
        "distress_if_out_of_character",
        "out_of_character",
        "prompt_trick",
        "ai_question",
        "out_of_world",
        "ai_disclosure",
    }
)
"""Phrase categories a pack may fill; the profiles' rules say what each means."""

LINES: Final = frozenset({"crisis_help", "deflect"})
"""Lines a pack may give: `crisis_help` (one out-of-character pointer to real
help) and `deflect` (neutral lines for a persona without fallbacks)."""

_PACKAGE = "personae.agents"
_FOLDER = "safety_phrases"
_TERM = "term"


class _PackFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str = Field(pattern=r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
    phrases: dict[str, list[str]] = Field(default_factory=dict)
    lines: dict[str, str | list[str]] = Field(default_factory=dict)


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
    """A rule that matched, what it matched, and the pack it belongs to."""

    rule: Rule
    evidence: str
    pack: PhrasePack


@dataclass(frozen=True)
class PhrasePack:
    """The phrases and lines of one language, compiled.

    Attributes:
        language: Lower-case BCP 47 tag, e.g. `en`.
        source: The file it was read from.
        rules: Compiled patterns by category.
        lines: Lines by name (`crisis_help`, `deflect`).

    """

    language: str
    source: str
    rules: Mapping[str, tuple[Rule, ...]]
    lines: Mapping[str, tuple[str, ...]]

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
    return PhrasePack(language=data.language, source=source, rules=rules, lines=lines)


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


def _matches(
    pack: PhrasePack, category: str, text: str, setting: Callable[[], str] | None
) -> Iterator[RuleMatch]:
    for rule in pack.category(category):
        for match in rule.pattern.finditer(text):
            term = match.groupdict().get(_TERM)
            if term and setting is not None and term_in(term, setting()):
                continue
            yield RuleMatch(rule, match.group(0), pack)


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
