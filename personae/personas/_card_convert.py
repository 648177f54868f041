"""Card objects to personas and back, in memory: the mapping with its report.

See `personae.personas.cards` for the mapping table and how nothing is lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import ValidationError

from personae.errors import CardError
from personae.personas._card_book import BOOK_FIELDS, split_book
from personae.personas._card_layout import (
    SPECS,
    assemble_card,
    card_kind,
    split_card,
    version_warning,
)
from personae.personas._card_map import CHARACTER_FIELDS, persona_values, slug_id
from personae.personas._card_residue import (
    ROUNDTRIP,
    flatten,
    roundtrip_of,
    unflatten,
    without_roundtrip,
)
from personae.personas._card_results import (
    CardImport,
    CardReport,
    LorebookImport,
    SourceFormat,
    character_mapping,
    entry_fields,
    kept_fields,
    lore_warnings,
)
from personae.personas._card_values import as_text
from personae.personas._eliza import eliza_to_persona
from personae.personas._mes_example import parse_examples
from personae.personas.model import Lorebook, LoreEntry, Persona

__all__ = ["card_to_persona", "lorebook_to_lore", "persona_to_card"]

_ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def card_to_persona(
    card: Mapping[str, Any], *, persona_id: str | None = None, source: str | Path = "<card>"
) -> CardImport:
    """Read a card object (V1, V2, V3, hybrid) or an ElizaOS character.json into a persona.

    Args:
        card: The parsed JSON.
        persona_id: The persona's id; default: the one the card carries from a
            personae export, else a slug of the name.
        source: Where the card came from, for messages.

    Returns:
        The persona and the import report.

    Raises:
        CardError: Not a card, a lorebook, no name, or values no persona can hold.
    """
    kind = card_kind(card, source)
    if kind == "lorebook_v3":
        raise CardError(source, "this is a lorebook (lorebook_v3), not a character",
                        "import it as lore: `personae import FILE -o lore.yaml` writes a lore "
                        "file for `lore_files` (in Python: import_lorebook)")
    if kind == "eliza":
        return _eliza(card, persona_id, source)
    report = CardReport(str(source), kind)
    warning = version_warning(card)
    if warning:
        report.warnings.append(warning)
    data, top, mirrored = split_card(card, kind)
    report.hybrid = bool(mirrored) or (kind != "v1" and any(
        k in card for k in ("name", "description", "first_mes", "mes_example")))
    name = as_text(data.get("name")).strip()
    prefix = "" if kind == "v1" else "data."
    if not name:
        raise CardError(source, f"the card has no name ({prefix}name is empty)",
                        f"set {prefix}name to the character's name")
    try:
        values, residue = CHARACTER_FIELDS.split(data)
    except ValidationError as exc:
        raise CardError(source, f"the card's fields do not make a persona: {_first(exc)}",
                        "fix that field in the card") from exc
    if kind == "v1":
        # V1 fields personae does not use stay at the top level, as hybrid cards
        # have them; mapped fields kept for their exact text belong to `data`.
        flat = flatten(without_roundtrip(residue))
        record: dict[str, Any] = unflatten(
            {k: v for k, v in flat.items() if k not in CHARACTER_FIELDS.keys})
        exact = {k: v for k, v in flat.items() if k in CHARACTER_FIELDS.keys}
        if exact:
            record["data"] = unflatten(exact)
    else:
        record = {**top, "data": residue}
        for key in ("name", "description", "personality", "scenario", "first_mes",
                    "mes_example"):
            if key in top and key in data and key not in mirrored:
                report.warnings.append(f"top-level {key} differs from data.{key}: data is used, "
                                       "the top-level copy is kept for round trip")
    own_id = values.pop("id")
    pid = _persona_id(persona_id, own_id, values["name"], source, report)
    persona = Persona.model_validate({**values, "id": pid, "card": record})
    _describe(report, data, residue, top, persona, prefix)
    return CardImport(persona, report, kind)


def persona_to_card(persona: Persona, version: Literal["v2", "v3"]) -> dict[str, Any]:
    """Write a persona as a V2 or V3 card object.

    An imported persona gives back its card (equal field for field when
    unchanged); a persona written by hand gets a complete card, with what
    cards have no field for under `data.extensions.personae`.

    Args:
        persona: Any persona.
        version: `v2` or `v3`.

    Returns:
        The card as a JSON object.
    """
    card = persona.card
    residue = card.get("data")
    same_spec = card.get("spec") == SPECS[version]
    data = CHARACTER_FIELDS.join(persona_values(persona),
                                 residue if isinstance(residue, Mapping) else {},
                                 honor_omitted=same_spec)
    out = assemble_card(data, card, version)
    order = CHARACTER_FIELDS.order
    out["data"] = {k: out["data"][k] for k in sorted(
        out["data"], key=lambda k: order.index(k) if k in order else len(order))}
    return out


def lorebook_to_lore(book: Mapping[str, Any], *, source: str | Path = "<lorebook>"
                     ) -> LorebookImport:
    """Read a `lorebook_v3` object into lore entries and book settings.

    Raises:
        CardError: Not a lorebook_v3 object.
    """
    if card_kind(book, source) != "lorebook_v3":
        raise CardError(source, "not a lorebook: `spec` is not 'lorebook_v3'",
                        "import characters with import_card")
    report = CardReport(str(source), "lorebook_v3")
    warning = version_warning(book)
    if warning:
        report.warnings.append(warning)
    try:
        lore_dicts, settings = split_book(book["data"])
        lore = [LoreEntry.model_validate(e) for e in lore_dicts]
        file_fields = {k: v for k, v in book.items() if k != "data"}
        settings["card"] = {**settings["card"], ROUNDTRIP: {
            **roundtrip_of(settings["card"]), "lorebook_file": file_fields}}
        lorebook = Lorebook.model_validate(settings)
    except ValidationError as exc:
        raise CardError(source, f"the lorebook does not make lore entries: {_first(exc)}",
                        "fix that field in the lorebook") from exc
    data = book["data"]
    for key in ("name", "description", "scan_depth", "token_budget", "recursive_scanning"):
        if key in data:
            report.mapped.append((f"data.{key}", f"lorebook.{key}"))
    report.mapped.append(("data.entries", f"entries ({len(lore)})"))
    report.kept += kept_fields(lorebook.card, "data.", BOOK_FIELDS.keys)
    report.kept += entry_fields(lore, "data.")
    report.warnings += lore_warnings(lore, lorebook)[0]
    report.notes += lore_warnings(lore, lorebook)[1]
    return LorebookImport(lore, lorebook, report)


def _first(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "(card)"
    return f"{where}: {err['msg']}"


def _persona_id(given: str | None, own: object, name: str, source: str | Path,
                report: CardReport) -> str:
    if given is not None:
        if not _ID_RE.match(given):
            raise CardError(source, f"id {given!r} is not a valid persona id",
                            "use lowercase letters, digits, '-' and '_', e.g. "
                            f"{slug_id(given)!r}")
        return given
    if isinstance(own, str) and _ID_RE.match(own):
        return own
    if own is not None:
        report.warnings.append(f"extensions.personae.id {own!r} is not a valid id; "
                               "the name's slug is used")
    return slug_id(name)


def _describe(report: CardReport, data: Mapping[str, Any], residue: Mapping[str, Any],
              top: Mapping[str, Any], persona: Persona, prefix: str) -> None:
    """Fill the report of a character card import."""
    report.mapped += character_mapping(data, prefix, examples=len(persona.examples),
                                       lore=len(persona.lore))
    report.kept += [k for k in kept_fields(top, "") if k != "data"]
    report.kept += kept_fields(residue, prefix, CHARACTER_FIELDS.keys)
    book_prefix = f"{prefix}character_book."
    report.kept += kept_fields(persona.lorebook.card, book_prefix, BOOK_FIELDS.keys)
    report.kept += entry_fields(persona.lore, book_prefix)
    names = [persona.name, persona.nickname or ""]
    unpaired = parse_examples(as_text(data.get("mes_example")), names).unpaired
    if unpaired:
        report.notes.append(f"mes_example: {unpaired} turn(s) without a user/character pair are "
                            "not examples (the text is kept and written back)")
    warnings, notes = lore_warnings(persona.lore, persona.lorebook)
    report.warnings += warnings
    report.notes += notes


def _eliza(obj: Mapping[str, Any], persona_id: str | None, source: str | Path) -> CardImport:
    found = eliza_to_persona(obj)
    if not found.fields["name"]:
        raise CardError(source, "the character.json has no name", "set `name`")
    fmt: SourceFormat = "eliza_v0" if found.version == "v0" else "eliza_v1"
    report = CardReport(str(source), fmt, mapped=found.mapped, dropped=found.dropped,
                        notes=found.notes)
    report.kept = [f"{key} (in card.data.extensions.eliza)" for key in found.kept]
    if found.dropped:
        report.warnings.append(f"dropped {len(found.dropped)} secret(s): "
                               f"{', '.join(found.dropped)}; set them in the environment "
                               "instead (values were not copied)")
    pid = _persona_id(persona_id, None, found.fields["name"], source, report)
    card = {"data": {"extensions": {"eliza": found.kept}}} if found.kept else {}
    try:
        persona = Persona.model_validate({**found.fields, "id": pid, "card": card})
    except ValidationError as exc:
        raise CardError(source, f"the character.json does not make a persona: {_first(exc)}",
                        "fix that field") from exc
    return CardImport(persona, report, fmt)
