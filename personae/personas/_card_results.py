"""What an import or export gives back: the persona or lore, and a report of what went where."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from personae.personas._card_book import ENTRY_FIELDS
from personae.personas._card_residue import flatten, roundtrip_of, without_roundtrip
from personae.personas._card_values import as_text
from personae.personas.model import Lorebook, LoreEntry, Persona

__all__ = [
    "EXPORT_FORMATS",
    "CardExport",
    "CardImport",
    "CardReport",
    "Container",
    "ExportFormat",
    "LorebookImport",
    "SourceFormat",
    "character_mapping",
    "entry_fields",
    "kept_fields",
    "lore_warnings",
]

SourceFormat = Literal["v1", "v2", "v3", "lorebook_v3", "eliza_v0", "eliza_v1"]
"""What an imported file held."""

Container = Literal["json", "png", "charx"]
"""How it was packed."""

ExportFormat = Literal["v2", "v3", "png", "charx"]
"""What `export_card` writes."""

EXPORT_FORMATS: Final[tuple[ExportFormat, ...]] = ("v2", "v3", "png", "charx")

_TARGETS: Final = (
    ("name", "name"),
    ("nickname", "nickname"),
    ("description", "description"),
    ("personality", "style.tone"),
    ("scenario", "style.context"),
    ("first_mes", "greetings[0]"),
    ("alternate_greetings", "greetings[1:]"),
    ("mes_example", "examples"),
    ("system_prompt", "instructions"),
    ("character_book", "lore + lorebook"),
    ("extensions.personae", "personae fields"),
)


@dataclass
class CardReport:
    """What an import did.

    Attributes:
        source: The file (or `<card>` for an in-memory card).
        source_format: The kind of card or file.
        container: `json`, `png` or `charx`.
        hybrid: A V2/V3 card with V1 copies at the top level.
        mapped: `(card field, persona field)` for every field that was used.
        kept: Card fields kept only for round trip (in `card`), never prompted.
        dropped: Secrets that were not copied (names only, never values).
        warnings: Things to check: odd versions, entries that can never activate...
        notes: Other remarks: assets written, unpaired example turns...
    """

    source: str
    source_format: SourceFormat
    container: Container = "json"
    hybrid: bool = False
    mapped: list[tuple[str, str]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Return the report as lines of text, for the CLI."""
        kind = self.source_format + (" (hybrid with V1 copies)" if self.hybrid else "")
        out = [f"read {self.source}: {kind} in {self.container}"]
        if self.mapped:
            out.append("mapped:")
            out += [f"  {src} -> {dst}" for src, dst in self.mapped]
        if self.kept:
            out.append("kept for round trip only (in `card`, never in a prompt):")
            out += [f"  {name}" for name in self.kept]
        if self.dropped:
            out.append("dropped (secrets are never copied):")
            out += [f"  {name}" for name in self.dropped]
        for title, items in (("warnings:", self.warnings), ("notes:", self.notes)):
            if items:
                out.append(title)
                out += [f"  - {item}" for item in items]
        return out

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (for `--json`)."""
        return {
            "source": self.source,
            "source_format": self.source_format,
            "container": self.container,
            "hybrid": self.hybrid,
            "mapped": [{"from": src, "to": dst} for src, dst in self.mapped],
            "kept": list(self.kept),
            "dropped": list(self.dropped),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class CardImport:
    """A character read from a card or character.json.

    Attributes:
        persona: The persona (its `card` holds what personae does not use).
        report: What went where, what was kept, what to check.
        source_format: What the file held: `v1`, `v2`, `v3`, `eliza_v0`, `eliza_v1`.
    """

    persona: Persona
    report: CardReport
    source_format: SourceFormat


@dataclass(frozen=True)
class LorebookImport:
    """Lore read from a standalone `lorebook_v3` file.

    Attributes:
        lore: The entries, for a persona's `lore` or a lore file.
        lorebook: The book's settings (`Lorebook.card` keeps the rest).
        report: What went where.
    """

    lore: list[LoreEntry]
    lorebook: Lorebook
    report: CardReport


@dataclass(frozen=True)
class CardExport:
    """What `export_card` wrote.

    Attributes:
        path: The file written.
        format: `v2`, `v3`, `png` or `charx`.
        notes: Remarks: the image used, assets, fields only personae reads.
    """

    path: Path
    format: ExportFormat
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Return the export report as lines of text, for the CLI."""
        return [f"wrote {self.path} ({self.format})", *(f"  - {n}" for n in self.notes)]


def _filled(value: object) -> bool:
    return value not in (None, "", [], {})


def character_mapping(
    data: Mapping[str, Any], prefix: str, *, examples: int, lore: int
) -> list[tuple[str, str]]:
    """List the mapped card fields present in a character object, and where they went."""
    out: list[tuple[str, str]] = []
    ext = data.get("extensions")
    for src, dst in _TARGETS:
        if src == "extensions.personae":
            value = ext.get("personae") if isinstance(ext, Mapping) else None
            if isinstance(value, Mapping):
                names = [k for k in value if k not in ("schema",)]
                out.append((prefix + src, ", ".join(names) or "(nothing)"))
            continue
        if not _filled(data.get(src)):
            continue
        if src == "mes_example":
            dst = f"examples ({examples})"
        elif src == "character_book":
            dst = f"lore ({lore} entries) + lorebook"
        elif src == "alternate_greetings":
            dst = f"greetings[1:] ({len(data[src]) if isinstance(data[src], list) else 1})"
        out.append((prefix + src, dst))
    return out


def kept_fields(
    residue: Mapping[str, Any], prefix: str, mapped: AbstractSet[str] = frozenset()
) -> list[str]:
    """Name the card fields a residue keeps, dotted (extensions one level deep).

    Mapped fields kept for their exact text are marked `(as written)`.
    """
    out: list[str] = []
    for key in flatten(without_roundtrip(residue)):
        if key == "extensions" and "extensions" not in without_roundtrip(residue):
            continue
        if key == "extensions" and without_roundtrip(residue)["extensions"]:
            continue  # named by its sub-keys
        out.append(prefix + key + (" (as written)" if key in mapped else ""))
    return out


def entry_fields(lore: Sequence[LoreEntry], prefix: str) -> list[str]:
    """Sum up the kept fields of book entries in at most two lines."""
    own: dict[str, None] = {}
    exact: dict[str, None] = {}
    for entry in lore:
        for name in kept_fields(entry.card, ""):
            (exact if name in ENTRY_FIELDS.keys else own).setdefault(name, None)
    out = []
    if own:
        out.append(f"{prefix}entries[]: {', '.join(own)}")
    if exact:
        out.append(f"{prefix}entries[]: exact text of mapped {', '.join(exact)}")
    return out


def lore_warnings(lore: Sequence[LoreEntry], book: Lorebook) -> tuple[list[str], list[str]]:
    """Warnings about entries that can never activate, and notes about disabled ones."""
    warnings: list[str] = []
    disabled = 0
    for i, entry in enumerate(lore):
        label = f"lore[{i}]" + (f" ({entry.name!r})" if entry.name else "")
        if not entry.enabled:
            disabled += 1
            continue
        if not entry.keys and not entry.constant:
            warnings.append(f"{label} has no keys and is not constant: it can never activate")
        elif entry.probability == 0 and not entry.constant:
            warnings.append(f"{label} has probability 0: it can never activate")
        elif entry.delay_until_recursion and not book.recursive_scanning:
            warnings.append(f"{label} waits for recursion, which the book turns off: it can "
                            "never activate")
    kept = roundtrip_of(book.card).get("kept_entries")
    for item in kept if isinstance(kept, list) else []:
        raw = item.get("entry") if isinstance(item, Mapping) else None
        name = as_text(raw.get("comment") or raw.get("name")) if isinstance(
            raw, Mapping) else ""
        at = item.get("at") if isinstance(item, Mapping) else "?"
        warnings.append(f"book entry {at}{f' ({name!r})' if name else ''} has no content: kept "
                        "in the card only, it can never activate")
    notes = []
    if disabled:
        what = "entry is" if disabled == 1 else "entries are"
        notes.append(f"{disabled} lore {what} disabled (kept, never used)")
    return warnings, notes

