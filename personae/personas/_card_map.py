"""A card's character object (`data`, or a V1 card's top level) to persona values and back.

| card field | persona field |
| --- | --- |
| `name`, `nickname` | `name`, `nickname` |
| `description` | `description` |
| `personality` | `style.tone` |
| `scenario` | `style.context` |
| `first_mes`, `alternate_greetings` | `greetings[0]`, `greetings[1:]` |
| `mes_example` | `examples` (parsed; the text itself is kept when it cannot be rebuilt) |
| `system_prompt` | `instructions` |
| `character_book` | `lore` + `lorebook` (see `_card_book`) |
| `extensions.personae` | every persona field a card has no place for |

`extensions.personae` is written by personae itself: it holds exactly what
reading the rest of the card would not give back (backstory, speech rules,
fallbacks, goals, tools, host actions, memory, safety, model settings,
lorebook settings beyond the book's, `example_emotions`, an `id` that is not
the name's slug), so exporting a persona and importing the card gives the
same persona. Only fields that differ are written, sub-fields one level deep.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from personae.personas._card_book import book_is_default, join_book, split_book
from personae.personas._card_residue import FieldMap, Fields, Values
from personae.personas._card_values import as_text, same
from personae.personas._mes_example import parse_examples, render_examples
from personae.personas.model import SCHEMA_VERSION, Persona

__all__ = ["CHARACTER_FIELDS", "PERSONA_EXTENSION", "persona_values", "slug_id"]

PERSONA_EXTENSION: Final = "personae"
"""Name of the card extension (`data.extensions.personae`) personae writes."""

# Persona fields that are never part of a card's values: identity on disk,
# file paths, and the card record itself.
_NOT_VALUES: Final = {"id", "card", "avatar", "lore_files", "schema_"}
_ORDER: Final = (
    "name", "description", "personality", "scenario", "first_mes", "mes_example",
    "creator_notes", "system_prompt", "post_history_instructions", "alternate_greetings",
    "character_book", "tags", "creator", "character_version", "extensions",
    "group_only_greetings", "assets", "nickname", "creator_notes_multilingual", "source",
    "creation_date", "modification_date",
)  # fmt: skip


def slug_id(name: str) -> str:
    """Make a persona id from a name: ASCII slug, or `c-` and a hash for names with no ASCII.

    Args:
        name: The character's name.

    Returns:
        Lowercase letters, digits and `-`, at most 64 characters.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:64].strip("-")
    if slug:
        return slug
    return "c-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]


def persona_values(persona: Persona) -> Values:
    """Return the values of a persona that a card carries, as `CHARACTER_FIELDS` reads them.

    `id` is there only when it is not the name's slug, so that only such an
    id travels in `extensions.personae`.
    """
    values = persona.model_dump(mode="json", exclude=_NOT_VALUES)
    values["id"] = persona.id if persona.id != slug_id(persona.name) else None
    return values


def _names(m: Mapping[str, Any]) -> list[str]:
    """Speaker names of the character in `mes_example`: name, nickname, first name."""
    name = as_text(m.get("name")).strip()
    first = name.split()[0] if len(name.split()) > 1 and len(name.split()[0]) > 1 else ""
    return [name, as_text(m.get("nickname")), first]


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Lay `extra` over `base`, one level deep for mappings."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            base[key] = {**base[key], **value}
        else:
            base[key] = value


def _read(m: Mapping[str, Any]) -> Values:
    greetings = [as_text(m.get("first_mes")).strip()]
    alternates = m.get("alternate_greetings")
    if isinstance(alternates, list):
        greetings += [as_text(g).strip() for g in alternates]
    elif alternates is not None:
        greetings.append(as_text(alternates).strip())
    parsed = parse_examples(as_text(m.get("mes_example")), _names(m))
    nickname = as_text(m.get("nickname")).strip() or None
    base: dict[str, Any] = {
        "id": "probe",
        "name": as_text(m.get("name")),
        "nickname": nickname,
        "description": as_text(m.get("description")),
        "style": {"tone": as_text(m.get("personality")), "context": as_text(m.get("scenario"))},
        "greetings": [g for g in greetings if g],
        "examples": [{"user": u, "reply": r} for u, r in parsed.pairs],
        "instructions": as_text(m.get("system_prompt")),
    }
    book = m.get("character_book")
    if isinstance(book, Mapping):
        base["lore"], base["lorebook"] = _split_book(book)
    ext = m.get(f"extensions.{PERSONA_EXTENSION}")
    own_id = None
    if isinstance(ext, Mapping):
        emotions = ext.get("example_emotions")
        if isinstance(emotions, list) and len(emotions) == len(base["examples"]):
            for example, emotion in zip(base["examples"], emotions, strict=True):
                example["emotion"] = emotion
        fields = {k: v for k, v in ext.items() if k in Persona.model_fields and k not in
                  _NOT_VALUES}
        _merge(base, fields)
        if isinstance(ext.get("id"), str):
            own_id = ext["id"]
    values = Persona.model_validate(base).model_dump(mode="json", exclude=_NOT_VALUES)
    values["id"] = own_id
    return values


def _split_book(book: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """`split_book`, remembered: reading and writing a card splits the same book many times."""
    key = json.dumps(book, ensure_ascii=False, default=repr)
    lore, lorebook = _split_book_cached(key)
    return copy.deepcopy(lore), copy.deepcopy(lorebook)


@functools.lru_cache(maxsize=16)
def _split_book_cached(key: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return split_book(json.loads(key))


def _diff(want: Mapping[str, Any], got: Mapping[str, Any]) -> dict[str, Any]:
    """Return what `extensions.personae` must hold for reading to give `want`, not `got`."""
    out: dict[str, Any] = {}
    for key, value in want.items():
        if key == "id" or same(value, got.get(key)):
            continue
        other = got.get(key)
        if isinstance(value, Mapping) and isinstance(other, Mapping):
            out[key] = {k: v for k, v in value.items() if not same(v, other.get(k))}
        else:
            out[key] = value
    return out


def _write(v: Mapping[str, Any]) -> Fields:
    greetings = list(v["greetings"])
    examples = [(e["user"], e["reply"]) for e in v["examples"]]
    out: Fields = {
        "name": v["name"],
        "description": v["description"],
        "personality": v["style"]["tone"],
        "scenario": v["style"]["context"],
        "first_mes": greetings[0] if greetings else "",
        "mes_example": render_examples(examples),
        "system_prompt": v["instructions"],
        "alternate_greetings": greetings[1:],
        "extensions": {},
    }
    if v["nickname"] is not None:
        out["nickname"] = v["nickname"]
    if v["lore"] or not book_is_default(v["lorebook"]):
        out["character_book"] = join_book(v["lore"], v["lorebook"])
    # Example emotions have no place in `mes_example`; a list of them is
    # shorter than the examples again, when that is all that is missing.
    emotions = [e.get("emotion") for e in v["examples"]]
    probe = dict(out)
    ext: dict[str, Any] = {}
    if any(emotions):
        ext.update(emotions=v["emotions"], example_emotions=emotions)
        probe[f"extensions.{PERSONA_EXTENSION}"] = ext
    ext.update(_diff(v, _read(probe)))
    if ext or v.get("id"):
        own = {"schema": SCHEMA_VERSION}
        if v.get("id"):
            own["id"] = v["id"]
        out[f"extensions.{PERSONA_EXTENSION}"] = {**own, **ext}
    return out


CHARACTER_FIELDS: Final = FieldMap(
    keys=frozenset({
        "name", "nickname", "description", "personality", "scenario", "first_mes",
        "alternate_greetings", "mes_example", "system_prompt", "character_book", "extensions",
        f"extensions.{PERSONA_EXTENSION}",
    }),
    read=_read,
    write=_write,
    order=_ORDER,
)  # fmt: skip
