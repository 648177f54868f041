"""The outer shape of a card: which kind it is, and what sits around the character object.

- V1: the character fields at the top level, no `spec`.
- V2 / V3: `spec` (`chara_card_v2` / `chara_card_v3`), `spec_version` and a
  `data` object with the character fields.
- Hybrid: a V2/V3 card that also carries V1 copies at the top level, as
  SillyTavern writes them. `data` wins; a top-level field equal to the
  `data` field of the same name is recorded as a mirror and written back from
  `data` (so it follows edits); one that differs is kept verbatim.
- `lorebook_v3`: a standalone lorebook, `data` is the book.
- ElizaOS character.json: `bio`, `messageExamples`, `clients`/`plugins`...

`Persona.card` of an imported card holds the top-level fields personae does
not use (`spec`, `spec_version`, V1 leftovers), `data` with the character
object's residue (see `_card_residue`), and `_roundtrip` with `mirrored`
(hybrid copies), `png_chara` (a PNG's V2 chunk, when it was not what
personae writes for the same persona) and `charx` (the assets of a CHARX).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from personae.errors import CardError
from personae.personas._card_residue import ROUNDTRIP, roundtrip_of
from personae.personas._card_values import same

__all__ = [
    "SPECS",
    "CardKind",
    "assemble_card",
    "card_kind",
    "split_card",
    "version_warning",
]

CardKind = Literal["v1", "v2", "v3", "lorebook_v3", "eliza"]
SPECS: Final = {"v2": "chara_card_v2", "v3": "chara_card_v3"}
_SPEC_VERSIONS: Final = {"chara_card_v2": ("2.0", 2.0), "chara_card_v3": ("3.0", 3.0),
                         "lorebook_v3": ("3.0", 3.0)}
_V1_FIELDS: Final = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
_ELIZA_FIELDS: Final = ("bio", "messageExamples", "clients", "modelProvider", "plugins",
                        "system", "postExamples", "adjectives", "topics", "knowledge")
# Fields a V2 / V3 `data` object must have; added with empty values when a
# persona is written as a card version it did not come from.
_REQUIRED: Final = {
    "v2": {"creator_notes": "", "system_prompt": "", "post_history_instructions": "",
           "alternate_greetings": [], "tags": [], "creator": "", "character_version": "",
           "extensions": {}},
    "v3": {"creator_notes": "", "system_prompt": "", "post_history_instructions": "",
           "alternate_greetings": [], "tags": [], "creator": "", "character_version": "",
           "extensions": {}, "group_only_greetings": []},
}


def card_kind(obj: Mapping[str, Any], where: Path | str) -> CardKind:
    """Tell what kind of card a JSON object is.

    Raises:
        CardError: An unknown `spec`, a `data` that is not an object, or an
            object that is no card at all.
    """
    spec = obj.get("spec")
    if spec is not None:
        kinds: dict[object, CardKind] = {"chara_card_v2": "v2", "chara_card_v3": "v3",
                                         "lorebook_v3": "lorebook_v3"}
        kind = kinds.get(spec)
        if kind is None:
            raise CardError(where, f"unknown card spec {spec!r}",
                            "personae reads chara_card_v2, chara_card_v3 and lorebook_v3; "
                            "convert the card with the tool that made it")
        if not isinstance(obj.get("data"), Mapping):
            raise CardError(where, f"`data` of this {spec} card is missing or not an object",
                            "the character's fields belong in a `data` object")
        return kind
    if isinstance(obj.get("data"), Mapping) and "name" in obj["data"]:
        return "v2"  # some writers leave `spec` out; the shape is V2's
    if "name" in obj and any(k in obj for k in _ELIZA_FIELDS) and "first_mes" not in obj:
        return "eliza"
    if "name" in obj and any(k in obj for k in _V1_FIELDS[1:]):
        return "v1"
    raise CardError(where, "not a Character Card or character.json: no `spec`, `data` or "
                    "character fields (`name`, `description`, `first_mes`, `bio`...)",
                    "give a Character Card (JSON, PNG, CHARX), a lorebook_v3 file or an "
                    "ElizaOS character.json")


def version_warning(obj: Mapping[str, Any]) -> str | None:
    """Warn when `spec_version` is not the version of `spec` (`"3"`, `3.0` are `3.0`)."""
    spec = obj.get("spec")
    if spec not in _SPEC_VERSIONS:
        return None
    shown, number = _SPEC_VERSIONS[spec]
    if "spec_version" not in obj:
        # lorebook_v3 files have no version field of their own.
        return None if spec == "lorebook_v3" else (
            f"spec_version is missing: read as {spec} {shown}; check the result")
    version = obj.get("spec_version")
    try:
        if version is not None and not isinstance(version, bool) and float(version) == number:
            return None
    except (TypeError, ValueError):
        pass
    return (f"spec_version {version!r} is not {shown}: read as {spec} {shown}; check the "
            "result (the version is kept as written)")


def split_card(
    obj: Mapping[str, Any], kind: CardKind
) -> tuple[Mapping[str, Any], dict[str, Any], list[str]]:
    """Separate the character object from what surrounds it.

    Returns:
        The character object, the top-level fields to keep (with
        `_roundtrip.mirrored` for hybrid copies), and the mirrored names.
    """
    if kind == "v1":
        return obj, {}, []
    data = obj["data"]
    top: dict[str, Any] = {}
    mirrored: list[str] = []
    for key, value in obj.items():
        if key == "data":
            continue
        if key not in ("spec", "spec_version") and key in data and same(value, data[key]):
            mirrored.append(key)
        else:
            top[key] = value
    if mirrored:
        top[ROUNDTRIP] = {"mirrored": mirrored}
    return data, top, mirrored


def assemble_card(
    data: dict[str, Any], card: Mapping[str, Any], version: Literal["v2", "v3"]
) -> dict[str, Any]:
    """Put a written character object back into its card.

    Args:
        data: The character object, as `CHARACTER_FIELDS.join` wrote it.
        card: `Persona.card`.
        version: The card version to write.

    Returns:
        The card JSON object.
    """
    spec = SPECS[version]
    same_spec = card.get("spec") == spec
    if not same_spec:
        for key, value in _REQUIRED[version].items():
            data.setdefault(key, value)
    top: dict[str, Any] = {
        "spec": spec,
        "spec_version": card.get("spec_version", _SPEC_VERSIONS[spec][0]) if same_spec
        else _SPEC_VERSIONS[spec][0],
        "data": data,
    }
    for key, value in card.items():
        if key not in ("spec", "spec_version", "data", ROUNDTRIP):
            top[key] = value
    mirrored = roundtrip_of(card).get("mirrored")
    if isinstance(mirrored, list):
        for key in mirrored:
            if isinstance(key, str) and key in data:
                top[key] = data[key]
    return top
