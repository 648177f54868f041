"""Personas and lore entries written as YAML a person can read and `load_persona` can load.

Fields come in the model's order, defaults are left out, multi-line text is a
`|` block, and paths (the avatar, a CHARX's assets folder) are written
relative to the file's own directory, as persona files expect them. Lore
from `lore_files` is written inline.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from personae.personas._card_residue import ROUNDTRIP
from personae.personas.model import SCHEMA_VERSION, Lorebook, LoreEntry, Persona

__all__ = ["dump_lore_yaml", "dump_persona_yaml", "persona_file_data", "relative_path"]


class _Dumper(yaml.SafeDumper):
    """Block scalars for multi-line text; list items indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def relative_path(path: str | Path, base_dir: Path | None) -> str:
    """`path` relative to `base_dir` when both are on one drive, else as it is."""
    if base_dir is None:
        return str(path)
    try:
        return Path(os.path.relpath(Path(path).resolve(), base_dir.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return str(path)


def _dump(data: Any, header: Sequence[str]) -> str:
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header)
    return lines + body


def dump_persona_yaml(
    persona: Persona, *, base_dir: Path | None = None, header: Sequence[str] = ()
) -> str:
    """Write a persona as YAML that `load_persona` loads back to an equal persona.

    Args:
        persona: The persona.
        base_dir: The directory the file will be in; paths are written relative
            to it. None keeps paths as they are.
        header: Comment lines to put at the top.

    Returns:
        The YAML text.
    """
    return _dump(persona_file_data(persona, base_dir=base_dir), header)


def persona_file_data(persona: Persona, *, base_dir: Path | None = None) -> dict[str, Any]:
    """Return the content of a persona file: model order, no defaults, paths relative.

    A loaded persona's `lore` already holds the entries of its `lore_files`, so
    they are written inline and `lore_files` is left out (naming both would
    load each entry twice).
    """
    data = persona.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data.pop("lore_files", None)
    data.pop("schema", None)
    data = {"schema": SCHEMA_VERSION, **data}
    if persona.avatar is not None:
        data["avatar"] = relative_path(persona.avatar, base_dir)
    card = data.get("card")
    record = card.get(ROUNDTRIP) if isinstance(card, dict) else None
    charx = record.get("charx") if isinstance(record, dict) else None
    if isinstance(charx, dict) and isinstance(charx.get("assets_dir"), str):
        charx["assets_dir"] = relative_path(charx["assets_dir"], base_dir)
    return data


def dump_lore_yaml(
    lore: Sequence[LoreEntry], lorebook: Lorebook, *, header: Sequence[str] = ()
) -> str:
    """Write lore entries as a lore file (for `lore_files`), with the book's settings.

    `load_persona` reads only `entries:` from a lore file; the `lorebook:`
    section records the book's own settings so they can be copied into a
    persona's `lorebook:` (and nothing of the book is lost).

    Args:
        lore: The entries.
        lorebook: The book's settings.
        header: Comment lines to put at the top.

    Returns:
        The YAML text.
    """
    book: Mapping[str, Any] = lorebook.model_dump(mode="json", exclude_defaults=True)
    entries = [e.model_dump(mode="json", exclude_defaults=True) for e in lore]
    data: dict[str, Any] = {"lorebook": dict(book)} if book else {}
    data["entries"] = entries
    return _dump(data, header)
