"""CHARX files: a zip with `card.json` (a V3 card) and the assets it names.

An asset's `uri` points into the zip as `embeded://path` (the spelling of
the V3 spec), `embedded://path` or `__asset:path`. Reading checks the whole
archive before anything is written: no encrypted member, no path that
leaves the assets folder, no member larger than the archive could hold.
Writing stores members in the given order with fixed timestamps, so the same
persona gives the same bytes.
"""

from __future__ import annotations

import io
import json
import posixpath
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from personae.errors import CardError

__all__ = ["CARD_MEMBER", "CharxContents", "asset_path", "read_charx", "safe_member", "write_charx"]

CARD_MEMBER: Final = "card.json"
_URI_PREFIXES: Final = ("embeded://", "embedded://", "__asset:")
_MAX_TOTAL: Final = 1 << 30  # an asset pack larger than 1 GiB is almost surely a zip bomb
_FIXED_TIME: Final = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class CharxContents:
    """A read CHARX.

    Attributes:
        card: The parsed `card.json`.
        members: Every other file, `(path in the zip, bytes)`, in zip order.
    """

    card: dict[str, Any]
    members: list[tuple[str, bytes]]


def asset_path(uri: object) -> str | None:
    """Return the path inside the zip that an asset URI names, or None for other URIs."""
    if not isinstance(uri, str):
        return None
    for prefix in _URI_PREFIXES:
        if uri.startswith(prefix):
            return uri[len(prefix) :].lstrip("/")
    return None


def safe_member(name: str) -> bool:
    """Tell whether a zip path is relative and stays inside the folder it is extracted to."""
    if not name or name.startswith(("/", "\\")) or ":" in name.split("/")[0]:
        return False
    parts = posixpath.normpath(name.replace("\\", "/")).split("/")
    return ".." not in parts and parts != ["."]


def read_charx(data: bytes, where: Path | str) -> CharxContents:
    """Read and check a CHARX archive.

    Args:
        data: The whole file.
        where: The file, for error messages.

    Raises:
        CardError: Not a zip, encrypted or unsafe members, no or broken `card.json`.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise CardError(where, f"not a readable CHARX (zip) file: {exc}",
                        "export the card again from the tool that made it") from exc
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        encrypted = [i.filename for i in infos if i.flag_bits & 0x1]
        if encrypted:
            raise CardError(where, f"the CHARX has encrypted members ({', '.join(encrypted)})",
                            "personae cannot read encrypted cards; export it without a password")
        unsafe = [i.filename for i in infos if not safe_member(i.filename)]
        if unsafe:
            raise CardError(where, f"the CHARX has member paths outside its folder "
                            f"({', '.join(unsafe)})", "rebuild the archive with relative paths")
        if sum(i.file_size for i in infos) > _MAX_TOTAL:
            raise CardError(where, "the CHARX unpacks to more than 1 GiB",
                            "remove large assets from the card")
        names = [i.filename for i in infos]
        if CARD_MEMBER not in names:
            raise CardError(where, "the CHARX has no card.json",
                            "a CHARX is a zip with the card as card.json at its top level")
        try:
            card_bytes = archive.read(CARD_MEMBER)
            members = [(i.filename, archive.read(i)) for i in infos
                       if i.filename != CARD_MEMBER]
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError,
                NotImplementedError) as exc:
            raise CardError(where, f"the CHARX is damaged: {exc}",
                            "export the card again from the tool that made it") from exc
    try:
        card = json.loads(card_bytes.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise CardError(where, f"card.json in the CHARX is not UTF-8 ({exc.reason})",
                        "save card.json as UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise CardError(where, f"card.json in the CHARX is not JSON ({exc.msg} at line "
                        f"{exc.lineno}, column {exc.colno})", "fix or re-export the card") from exc
    if not isinstance(card, dict):
        raise CardError(where, "card.json in the CHARX is not a JSON object",
                        "card.json holds one card object")
    return CharxContents(card, members)


def write_charx(card: Mapping[str, Any], members: Sequence[tuple[str, bytes]]) -> bytes:
    """Build a CHARX: `card.json` first, then the members in order."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        body = json.dumps(card, ensure_ascii=False, indent=2).encode("utf-8")
        archive.writestr(zipfile.ZipInfo(CARD_MEMBER, _FIXED_TIME), body,
                         compress_type=zipfile.ZIP_DEFLATED)
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name, _FIXED_TIME), data,
                             compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()
