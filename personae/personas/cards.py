"""Character Cards (V1, V2, V3 as JSON, PNG or CHARX), lorebooks and ElizaOS character.json.

Import turns a card into a `Persona`; export turns any persona, imported or
written by hand, into a card. A card imported and exported again in the same
format is equal to the original, field for field.

| card (V2/V3 `data`) | persona |
| --- | --- |
| `name`, `nickname` | `name`, `nickname` |
| `description` | `description` |
| `personality` | `style.tone` |
| `scenario` | `style.context` |
| `first_mes`, `alternate_greetings` | `greetings[0]`, `greetings[1:]` |
| `mes_example` | `examples` (the text is kept and written back while they are unchanged) |
| `system_prompt` | `instructions` |
| `character_book` | `lore` and `lorebook` (entry by entry, see `_card_book`) |
| `extensions.personae` | persona fields no card has a place for (written by export) |
| everything else | `card`, verbatim, never in a prompt |

"Everything else" is `creator_notes`, `tags`, `creator`, `character_version`,
`post_history_instructions`, `group_only_greetings`, `assets`, other
`extensions`, dates, and unknown fields.

How nothing is lost:

- Fields personae does not use are kept verbatim in `Persona.card` (and in
  each `LoreEntry.card` and `Lorebook.card`), and so are mapped fields whose
  text personae would write differently (`null` where personae writes a
  default, the exact `mes_example` text, surrounding whitespace the persona
  model strips). A `_roundtrip` record notes fields the card did not have.
  Export writes the originals back while they still mean the same as the
  persona's values, so edits win and untouched fields stay as they were.
- `Persona.card` is the card without its mapped fields: the top level
  (`spec`, `spec_version`, V1 leftovers), `data` (the character's other
  fields) and `_roundtrip` (`mirrored` hybrid copies, `png_chara`, `charx`
  assets). An ElizaOS import keeps its other fields under
  `data.extensions.eliza`, so a card export carries them.
- Hybrid cards' top-level V1 copies follow `data` on export; copies that
  differed from `data` are kept as they were.
- PNG: both `chara` (V2) and `ccv3` (V3) are written as tEXt chunks just
  before IEND, old card chunks are removed, and every other byte of the
  image (`avatar`, or a built-in placeholder) is copied unchanged.
- CHARX: assets are extracted beside the output and put back byte for byte.
- Lorebooks (`lorebook_v3`) import as lore entries and book settings, for a
  lore file (`dump_lore_yaml`) that a persona names in `lore_files`.

Normalisations (the only differences a round trip can show): key order; a
V2 card without `spec` gets one; a V1 card is written as V2 or V3 with its
other top-level fields beside `data`; a PNG's V2 chunk is rewritten from the
persona when it was not what personae writes and the persona changed.

Persona ids are a slug of the name (`Seraphina` -> `seraphina`; names with no
ASCII letters get `c-` and a hash), unless given, or unless the card was
exported by personae with another id.

Example:
    ```python
    from personae.personas.cards import export_card, import_card

    result = import_card("seraphina.png", assets_dir="assets")
    print(result.report)
    export_card(result.persona, "v3", "seraphina.json")
    ```

"""


from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from personae.errors import CardError
from personae.personas._atomic import write_atomic
from personae.personas._card_convert import card_to_persona, lorebook_to_lore, persona_to_card
from personae.personas._card_files import (
    charx_bytes,
    from_charx,
    from_png,
    parse_json,
    png_bytes,
    read_file,
    sniff,
)
from personae.personas._card_results import (
    EXPORT_FORMATS,
    CardExport,
    CardImport,
    CardReport,
    Container,
    ExportFormat,
    LorebookImport,
    SourceFormat,
)
from personae.personas._persona_yaml import dump_lore_yaml, dump_persona_yaml
from personae.personas.model import Persona

__all__ = [
    "EXPORT_FORMATS",
    "CardExport",
    "CardImport",
    "CardReport",
    "Container",
    "ExportFormat",
    "LorebookImport",
    "SourceFormat",
    "card_to_persona",
    "dump_lore_yaml",
    "dump_persona_yaml",
    "export_card",
    "import_card",
    "import_file",
    "import_lorebook",
    "lorebook_to_lore",
    "persona_to_card",
]

_PERSONA_EXTENSION_NOTE: Final = (
    "persona fields other front ends do not read are in data.extensions.personae: "
)


def import_card(
    path: str | Path, *, persona_id: str | None = None, assets_dir: str | Path | None = None
) -> CardImport:
    """Import a character from a card file: JSON (V1, V2, V3, hybrid), PNG, CHARX or Eliza.

    Args:
        path: The file.
        persona_id: The persona's id; default from the card (see `card_to_persona`).
        assets_dir: Where images and assets go: a PNG's image (as the avatar,
            card chunks removed) and a CHARX's assets. Default: a PNG is its
            own avatar; a CHARX is unpacked into `<name>_assets` beside it.

    Returns:
        The persona and the import report.

    Raises:
        CardError: The file cannot be read, is not a card, or is damaged; the
            message names the file and the problem.
    """
    result = import_file(path, persona_id=persona_id, assets_dir=assets_dir)
    if isinstance(result, LorebookImport):
        raise CardError(path, "this is a lorebook (lorebook_v3), not a character",
                        "use import_lorebook, or `personae import FILE -o lore.yaml`")
    return result


def import_lorebook(path: str | Path) -> LorebookImport:
    """Import a standalone `lorebook_v3` JSON file.

    Raises:
        CardError: The file cannot be read or is not a lorebook.
    """
    where = Path(path)
    book = parse_json(where, read_file(where))
    return lorebook_to_lore(book, source=where)


def import_file(
    path: str | Path, *, persona_id: str | None = None, assets_dir: str | Path | None = None
) -> CardImport | LorebookImport:
    """Import whatever card file `path` is: a character, or a standalone lorebook.

    Arguments and errors are those of `import_card`.
    """
    where = Path(path)
    raw = read_file(where)
    kind = sniff(where, raw)
    if kind == "png":
        return from_png(where, raw, persona_id, assets_dir)
    if kind == "charx":
        target = Path(assets_dir) if assets_dir is not None else (
            where.parent / f"{where.stem}_assets")
        return from_charx(where, raw, persona_id, target)
    obj = parse_json(where, raw)
    if obj.get("spec") == "lorebook_v3":
        return lorebook_to_lore(obj, source=where)
    return card_to_persona(obj, persona_id=persona_id, source=where)


def export_card(
    persona: Persona, fmt: ExportFormat, out_path: str | Path, *,
    base_dir: str | Path | None = None,
) -> CardExport:
    """Write a persona as a card file, atomically (a failure leaves no partial file).

    Args:
        persona: Any persona, imported or not.
        fmt: `v2` or `v3` (JSON), `png` (image with both `chara` and `ccv3`
            chunks) or `charx` (zip with card.json and assets).
        out_path: The file to write.
        base_dir: What relative paths in the persona (avatar, CHARX assets)
            are relative to; default: the current directory.

    Returns:
        What was written.

    Raises:
        CardError: Unknown format, an avatar or asset that cannot be read, or
            an output that cannot be written.
    """
    out = Path(out_path)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    notes: list[str] = []
    if fmt in ("v2", "v3"):
        card = persona_to_card(persona, fmt)
        body = (json.dumps(card, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    elif fmt == "png":
        body = png_bytes(persona, base, out, notes)
        card = persona_to_card(persona, "v3")
    elif fmt == "charx":
        card = persona_to_card(persona, "v3")
        body = charx_bytes(persona, card, base, notes)
    else:
        raise CardError(out, f"unknown export format {fmt!r}", "use v2, v3, png or charx")
    own = card["data"].get("extensions", {}).get("personae") if isinstance(
        card["data"].get("extensions"), Mapping) else None
    if isinstance(own, Mapping):
        fields = [k for k in own if k != "schema"]
        if fields:
            notes.append(_PERSONA_EXTENSION_NOTE + ", ".join(fields))
    try:
        write_atomic(out, body)
    except OSError as exc:
        raise CardError(out, f"cannot be written: {exc.strerror or exc}",
                        "check the directory exists and is writable") from exc
    return CardExport(out, fmt, notes)
