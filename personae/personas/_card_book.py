"""A card's `character_book` (or a `lorebook_v3` file's `data`) to lore entries and back.

Entry fields map to `LoreEntry` as follows; the SillyTavern ones live under
the entry's `extensions`:

| card entry | LoreEntry |
| --- | --- |
| `keys`, `secondary_keys` (a list, or one comma-separated string) | `keys`, `secondary_keys` |
| `selective` + `extensions.selectiveLogic` 0/1/2/3 | `logic` and_any/not_all/not_any/and_all |
| `name`, else `comment` | `name` |
| `content`, `constant`, `enabled`, `priority`, `position` | the same |
| `insertion_order` | `order` |
| `case_sensitive` (or `extensions.case_sensitive`) | `case_sensitive` |
| `use_regex` (but see SillyTavern below) | `regex` |
| `extensions.probability` + `useProbability` | `probability` |
| `extensions.group`, `group_weight`, `group_override` | the same |
| `extensions.sticky`, `cooldown`, `delay`, `scan_depth` | the same |
| `extensions.match_whole_words` | `whole_words` |
| `extensions.exclude_recursion`, `prevent_recursion`, `delay_until_recursion` | the same |

`selective: false` means the secondary keys are not checked, so they are
not given to the entry (they stay in the card). SillyTavern marks every entry
it exports `use_regex: true` without meaning it (it reads keys as regular
expressions only when written `/.../`, as personae does), so its entries,
recognised by `extensions.display_index`, keep `regex` off. Everything else (`id`,
other extensions) stays in the entry's `card`. Book fields `name`,
`description`, `scan_depth`, `token_budget` and `recursive_scanning` map to
`Lorebook`; the rest stays in `Lorebook.card`. An entry without content
cannot be a `LoreEntry`: it is kept whole in the book's round-trip record
and written back in its place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from personae.personas._card_residue import ROUNDTRIP, FieldMap, Fields, Values, roundtrip_of
from personae.personas._card_values import (
    as_bool,
    as_int,
    as_keys,
    as_opt_bool,
    as_opt_int,
    as_text,
    same,
)
from personae.personas.model import Lorebook, LoreEntry

__all__ = ["BOOK_FIELDS", "ENTRY_FIELDS", "book_is_default", "join_book", "split_book"]

LOGIC_CODES: Final = {0: "and_any", 1: "not_all", 2: "not_any", 3: "and_all"}
_LOGIC_NUMBERS: Final = {v: k for k, v in LOGIC_CODES.items()}
_POSITIONS: Final = ("before_char", "after_char")

_ENTRY_ORDER = (
    "id", "keys", "secondary_keys", "comment", "name", "content", "constant", "selective",
    "insertion_order", "enabled", "position", "use_regex", "priority", "case_sensitive",
    "extensions",
)  # fmt: skip
_BOOK_ORDER = (
    "name", "description", "scan_depth", "token_budget", "recursive_scanning", "extensions",
    "entries",
)  # fmt: skip

# SillyTavern writes `use_regex: true` on every entry it exports and never
# reads it: its keys are regular expressions only when written `/.../`, as in
# personae. Its entries always carry `extensions.display_index`.
_SILLYTAVERN_MARK: Final = "extensions.display_index"

# A keyless entry validates only with a non-empty `card`; this stands in for it
# while values are normalised, and is never stored.
_PROBE_CARD: Final = {"probe": True}


def _ext(fields: Mapping[str, Any], key: str) -> Any:
    return fields.get(f"extensions.{key}")


def _read_entry(m: Mapping[str, Any]) -> Values:
    secondary = as_keys(m.get("secondary_keys"))
    selective = as_opt_bool(m.get("selective"))
    if selective is False:
        secondary = []
    logic_code = _ext(m, "selectiveLogic")
    logic = LOGIC_CODES.get(logic_code, "and_any") if isinstance(logic_code, int) else "and_any"
    if isinstance(logic_code, str) and logic_code.lower() in _LOGIC_NUMBERS:
        logic = logic_code.lower()
    name = as_text(m.get("name")).strip() or as_text(m.get("comment")).strip() or None
    position = m.get("position")
    case = as_opt_bool(m.get("case_sensitive"))
    if case is None:
        case = as_opt_bool(_ext(m, "case_sensitive"))
    use_probability = as_opt_bool(_ext(m, "useProbability"))
    chance = as_opt_int(_ext(m, "probability"))
    depth = as_opt_int(_ext(m, "scan_depth"))
    entry = {
        "name": name,
        "keys": as_keys(m.get("keys")),
        "secondary_keys": secondary,
        "logic": logic,
        "content": as_text(m.get("content")),
        "constant": as_bool(m.get("constant"), False),
        "enabled": as_bool(m.get("enabled"), True),
        "priority": as_int(m.get("priority"), 0),
        "order": as_int(m.get("insertion_order"), 100),
        "position": position if position in _POSITIONS else "after_char",
        "case_sensitive": case,
        "whole_words": as_opt_bool(_ext(m, "match_whole_words")),
        "regex": as_bool(m.get("use_regex"), False) and _SILLYTAVERN_MARK not in m,
        "scan_depth": None if depth is None else min(max(depth, 0), 1000),
        "probability": 100 if use_probability is False or chance is None
        else min(max(chance, 0), 100),
        "group": as_text(_ext(m, "group")),
        "group_weight": as_int(_ext(m, "group_weight"), 100, low=1),
        "group_override": as_bool(_ext(m, "group_override"), False),
        "sticky": as_int(_ext(m, "sticky"), 0, low=0),
        "cooldown": as_int(_ext(m, "cooldown"), 0, low=0),
        "delay": as_int(_ext(m, "delay"), 0, low=0),
        "exclude_recursion": as_bool(_ext(m, "exclude_recursion"), False),
        "prevent_recursion": as_bool(_ext(m, "prevent_recursion"), False),
        "delay_until_recursion": as_bool(_ext(m, "delay_until_recursion"), False),
    }
    normal = LoreEntry.model_validate({**entry, "card": _PROBE_CARD})
    return normal.model_dump(mode="json", exclude={"card"})


def _write_entry(v: Mapping[str, Any]) -> Fields:
    out: Fields = {
        "keys": list(v["keys"]),
        "secondary_keys": list(v["secondary_keys"]),
        "content": v["content"],
        "constant": v["constant"],
        "selective": bool(v["secondary_keys"]),
        "insertion_order": v["order"],
        "enabled": v["enabled"],
        "position": v["position"],
        "use_regex": v["regex"],
        "extensions": {},
    }
    if v["name"] is not None:
        out["comment"] = v["name"]
    if v["priority"]:
        out["priority"] = v["priority"]
    if v["case_sensitive"] is not None:
        out["case_sensitive"] = out["extensions.case_sensitive"] = v["case_sensitive"]
    if v["secondary_keys"] or v["logic"] != "and_any":
        out["extensions.selectiveLogic"] = _LOGIC_NUMBERS[v["logic"]]
    if v["probability"] != 100:
        out["extensions.probability"] = v["probability"]
        out["extensions.useProbability"] = True
    if v["whole_words"] is not None:
        out["extensions.match_whole_words"] = v["whole_words"]
    if v["scan_depth"] is not None:
        out["extensions.scan_depth"] = v["scan_depth"]
    for key, default in (("group", ""), ("group_weight", 100), ("group_override", False),
                         ("sticky", 0), ("cooldown", 0), ("delay", 0),
                         ("exclude_recursion", False), ("prevent_recursion", False),
                         ("delay_until_recursion", False)):
        if v[key] != default:
            out[f"extensions.{key}"] = v[key]
    return out


ENTRY_FIELDS: Final = FieldMap(
    keys=frozenset({
        "keys", "secondary_keys", "comment", "name", "content", "constant", "selective",
        "insertion_order", "enabled", "position", "use_regex", "priority", "case_sensitive",
        "extensions", "extensions.selectiveLogic", "extensions.probability",
        "extensions.useProbability", "extensions.group", "extensions.group_weight",
        "extensions.group_override", "extensions.sticky", "extensions.cooldown",
        "extensions.delay", "extensions.scan_depth", "extensions.match_whole_words",
        "extensions.case_sensitive", "extensions.exclude_recursion",
        "extensions.prevent_recursion", "extensions.delay_until_recursion",
        _SILLYTAVERN_MARK,  # read (it turns `use_regex` off), never written
    }),
    read=_read_entry,
    write=_write_entry,
    order=_ENTRY_ORDER,
)  # fmt: skip


def _usable(entry: object) -> bool:
    return isinstance(entry, Mapping) and bool(as_text(entry.get("content")).strip())


def _split_entry(raw: Mapping[str, Any]) -> dict[str, Any]:
    values, residue = ENTRY_FIELDS.split(raw)
    if not values["keys"] and not values["constant"] and not residue:
        # A keyless entry needs a non-empty card; its own `keys` field will do.
        residue = {"keys": raw.get("keys", [])}
    return {**values, "card": residue}


def _join_entry(entry: Mapping[str, Any]) -> Fields:
    values = {k: v for k, v in entry.items() if k != "card"}
    card = entry.get("card") or {}
    return ENTRY_FIELDS.join(values, card if isinstance(card, Mapping) else {})


def _read_book(m: Mapping[str, Any]) -> Values:
    entries = m.get("entries")
    lore = [_split_entry(e) for e in entries if isinstance(e, Mapping)] if isinstance(
        entries, list) else []
    budget = as_opt_int(m.get("token_budget"))
    settings = {
        "name": as_text(m.get("name")),
        "description": as_text(m.get("description")),
        "scan_depth": as_int(m.get("scan_depth"), 4, low=0, high=1000),
        "token_budget": budget if budget is not None and budget >= 1 else None,
        "recursive_scanning": as_bool(m.get("recursive_scanning"), True),
    }
    normal = Lorebook.model_validate(settings).model_dump(mode="json", include=set(settings))
    return {"lorebook": normal, "lore": [LoreEntry.model_validate(e).model_dump(mode="json")
                                         for e in lore]}


def _write_book(v: Mapping[str, Any]) -> Fields:
    book = v["lorebook"]
    out: Fields = {}
    if book["name"]:
        out["name"] = book["name"]
    if book["description"]:
        out["description"] = book["description"]
    out["scan_depth"] = book["scan_depth"]
    if book["token_budget"] is not None:
        out["token_budget"] = book["token_budget"]
    out["recursive_scanning"] = book["recursive_scanning"]
    out["extensions"] = {}
    out["entries"] = [_join_entry(e) for e in v["lore"]]
    return out


BOOK_FIELDS: Final = FieldMap(
    keys=frozenset({"name", "description", "scan_depth", "token_budget", "recursive_scanning",
                    "extensions", "entries"}),
    read=_read_book,
    write=_write_book,
    order=_BOOK_ORDER,
)


def split_book(raw: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read a card's book into lore entry dicts and a `Lorebook` dict, each with its `card`.

    Args:
        raw: The `character_book` object.

    Returns:
        Lore entries (as `LoreEntry` dumps) and the lorebook settings, whose
        `card` holds the book's residue and any entries personae cannot use.
    """
    entries = raw.get("entries")
    kept: list[dict[str, Any]] = []
    if isinstance(entries, list):
        usable = []
        for i, entry in enumerate(entries):
            if _usable(entry):
                usable.append(entry)
            else:
                kept.append({"at": i, "entry": entry})
        raw = {**raw, "entries": usable}
    values, residue = BOOK_FIELDS.split(raw)
    if kept:
        residue[ROUNDTRIP] = {**roundtrip_of(residue), "kept_entries": kept}
    return values["lore"], {**values["lorebook"], "card": residue}


def join_book(lore: list[Mapping[str, Any]], lorebook: Mapping[str, Any]) -> Fields:
    """Write lore entries and lorebook settings (dumps, with their `card`) as a card's book."""
    settings = {k: lorebook[k] for k in ("name", "description", "scan_depth", "token_budget",
                                         "recursive_scanning")}
    card = lorebook.get("card") or {}
    residue = card if isinstance(card, Mapping) else {}
    book = BOOK_FIELDS.join({"lorebook": settings, "lore": list(lore)}, residue)
    kept = roundtrip_of(residue).get("kept_entries")
    entries = book.get("entries")
    if isinstance(kept, list) and isinstance(entries, list):
        for item in kept:
            if isinstance(item, Mapping) and "entry" in item:
                at = as_int(item.get("at"), len(entries), low=0, high=len(entries))
                entries.insert(at, item["entry"])
    return book


def book_is_default(lorebook: Mapping[str, Any]) -> bool:
    """Tell whether the lorebook settings say nothing a card's book would carry."""
    default = Lorebook().model_dump(mode="json")
    keys = ("name", "description", "scan_depth", "token_budget", "recursive_scanning", "card")
    return all(same(lorebook.get(k), default[k]) for k in keys)
