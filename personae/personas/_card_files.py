"""Card files: reading JSON, PNG and CHARX, and writing PNG and CHARX around a card.

Everything is checked before anything is written, and every file is written
through a temporary file, so a bad input or a failed write leaves nothing
half-done.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from personae.errors import CardError
from personae.personas._atomic import write_atomic
from personae.personas._card_convert import card_to_persona, persona_to_card
from personae.personas._card_map import persona_values
from personae.personas._card_residue import ROUNDTRIP, roundtrip_of
from personae.personas._card_results import CardImport
from personae.personas._card_values import same
from personae.personas._charx import asset_path, read_charx, write_charx
from personae.personas._placeholder_png import placeholder_png
from personae.personas._png import (
    PNG_SIGNATURE,
    PngError,
    card_payloads,
    decode_payload,
    encode_payload,
    write_card_chunks,
)
from personae.personas.model import Persona

__all__ = [
    "charx_bytes",
    "from_charx",
    "from_png",
    "parse_json",
    "png_bytes",
    "read_file",
    "sniff",
]

_IMAGE_EXTS: Final = ("png", "jpg", "jpeg", "webp", "gif")
_NATIVE_ICON: Final = "assets/icon/images/main"


def read_file(path: Path) -> bytes:
    """Read a card file whole; a missing, unreadable or empty file is a `CardError`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CardError(path, f"file not found (looked at {path.resolve()})",
                        "check the path") from exc
    except IsADirectoryError as exc:
        raise CardError(path, "is a directory, not a card file",
                        "give a .json, .png or .charx file") from exc
    except OSError as exc:
        raise CardError(path, f"cannot be read: {exc.strerror or exc}",
                        "check the file's permissions") from exc
    if not data.strip():
        raise CardError(path, "the file is empty", "give a card file")
    return data


def sniff(path: Path, data: bytes) -> Literal["png", "charx", "json"]:
    """Tell a PNG, a CHARX (zip) and JSON apart, by content first, then by extension."""
    suffix = path.suffix.lower()
    if data.startswith(PNG_SIGNATURE) or suffix in (".png", ".apng"):
        return "png"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")) or suffix in (".charx", ".zip"):
        return "charx"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"{", b"[") or suffix == ".json":
        return "json"
    raise CardError(path, "unknown format: not JSON, PNG or CHARX (zip)",
                    "give a Character Card (.json, .png, .charx), a lorebook_v3 .json or an "
                    "ElizaOS character.json")


def parse_json(path: Path, data: bytes) -> dict[str, Any]:
    """Parse UTF-8 JSON (a BOM is fine) holding one object."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CardError(path, f"is not UTF-8 text ({exc.reason} at byte {exc.start})",
                        "save the card as UTF-8 JSON") from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CardError(path, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column "
                        f"{exc.colno})", "fix the JSON or export the card again") from exc
    if not isinstance(value, dict):
        raise CardError(path, f"holds a JSON {type(value).__name__}, not a card object",
                        "a card file holds one JSON object")
    return value


def _fingerprint(persona: Persona) -> str:
    blob = json.dumps(persona_values(persona), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def from_png(path: Path, data: bytes, persona_id: str | None,
              assets_dir: str | Path | None) -> CardImport:
    """Import the card of a PNG (`ccv3` first, else `chara`); the image becomes the avatar."""
    try:
        payloads = card_payloads(data)
    except PngError as exc:
        raise CardError(path, f"not a readable PNG: {exc}",
                        "the file is damaged or cut short; get the card again") from exc
    if not payloads:
        raise CardError(path, "this PNG holds no character card (no `chara` or `ccv3` text "
                        "chunk)", "it may have been re-saved by an image editor, which drops "
                        "the card; use the original file")
    cards: dict[str, dict[str, Any]] = {}
    problems: dict[str, str] = {}
    for key in ("ccv3", "chara"):
        if key in payloads:
            try:
                cards[key] = dict(decode_payload(payloads[key]))
            except PngError as exc:
                problems[key] = exc.problem
    used = "ccv3" if "ccv3" in cards else "chara" if "chara" in cards else None
    if used is None:
        key, problem = next(iter(problems.items()))
        raise CardError(path, f"the `{key}` chunk is not a card: {problem}",
                        "the card data is damaged or encrypted; export it again")
    result = card_to_persona(cards[used], persona_id=persona_id, source=path)
    report = result.report
    report.container = "png"
    report.notes.append(f"read the `{used}` chunk")
    for key, problem in problems.items():
        report.warnings.append(f"the `{key}` chunk is unreadable ({problem}); the `{used}` "
                               "chunk was used")
    persona = result.persona
    card = dict(persona.card)
    if used == "ccv3" and "chara" in cards:
        written = persona_to_card(persona, "v2")
        if not same(written, cards["chara"]):
            card[ROUNDTRIP] = {**roundtrip_of(card), "png_chara": {
                "persona": _fingerprint(persona), "card": cards["chara"]}}
            report.notes.append("the `chara` chunk differs from the `ccv3` card: kept as it is, "
                                "and written back while the persona is unchanged")
    if assets_dir is not None:
        avatar = Path(assets_dir) / "avatar.png"
        _write_asset(path, avatar, write_card_chunks(data, {}))
        report.notes.append(f"image (card chunks removed) -> {avatar}")
    else:
        avatar = path
    persona = persona.model_copy(update={"avatar": avatar.resolve(), "card": card})
    return CardImport(persona, report, result.source_format)


def _write_asset(source: Path, target: Path, data: bytes) -> None:
    try:
        write_atomic(target, data)
    except OSError as exc:
        raise CardError(source, f"cannot write {target}: {exc.strerror or exc}",
                        "choose a writable output directory") from exc


def from_charx(path: Path, data: bytes, persona_id: str | None, assets_dir: Path
                ) -> CardImport:
    """Import a CHARX: its card, and its files unpacked into `assets_dir`."""
    contents = read_charx(data, path)
    result = card_to_persona(contents.card, persona_id=persona_id, source=path)
    report = result.report
    report.container = "charx"
    names = [name for name, _ in contents.members]
    assets = contents.card.get("data", {}).get("assets") if isinstance(
        contents.card.get("data"), Mapping) else None
    avatar: Path | None = None
    for asset in assets if isinstance(assets, list) else []:
        if not isinstance(asset, Mapping):
            continue
        inner = asset_path(asset.get("uri"))
        if inner is None:
            continue
        if inner not in names:
            report.warnings.append(f"asset {asset.get('uri')!r} is not in the archive")
            continue
        is_icon = asset.get("type") == "icon" and inner.rsplit(".", 1)[-1].lower() in _IMAGE_EXTS
        if is_icon and (avatar is None or asset.get("name") == "main"):
            avatar = assets_dir / inner
    for name, blob in contents.members:
        _write_asset(path, assets_dir / name, blob)
    if names:
        report.notes.append(f"{len(names)} asset file(s) -> {assets_dir}")
    card = dict(result.persona.card)
    card[ROUNDTRIP] = {**roundtrip_of(card), "charx": {
        "assets_dir": str(assets_dir.resolve()), "files": names}}
    update: dict[str, Any] = {"card": card}
    if avatar is not None:
        update["avatar"] = avatar.resolve()
    return CardImport(result.persona.model_copy(update=update), report, result.source_format)


def _avatar_bytes(persona: Persona, base: Path, out: Path) -> tuple[bytes, Path] | None:
    if persona.avatar is None:
        return None
    where = persona.avatar if persona.avatar.is_absolute() else base / persona.avatar
    try:
        return where.read_bytes(), where
    except OSError as exc:
        raise CardError(out, f"the avatar {str(where)!r} cannot be read: "
                        f"{exc.strerror or exc}", "fix `avatar` in the persona, or remove it "
                        "to use the built-in placeholder") from exc


def png_bytes(persona: Persona, base: Path, out: Path, notes: list[str]) -> bytes:
    """Build a PNG card: the avatar (or a placeholder) with `chara` and `ccv3` chunks."""
    found = _avatar_bytes(persona, base, out)
    if found is None:
        image = placeholder_png()
        notes.append("image: built-in placeholder (the persona has no avatar)")
    else:
        image, where = found
        if not image.startswith(PNG_SIGNATURE):
            raise CardError(out, f"the avatar {str(where)!r} is not a PNG",
                            "PNG cards need a PNG image: convert the avatar to PNG, or export "
                            "as v3 or charx")
        notes.append(f"image: {where}")
    v2 = persona_to_card(persona, "v2")
    kept = roundtrip_of(persona.card).get("png_chara")
    unchanged = isinstance(kept, Mapping) and kept.get("persona") == _fingerprint(persona)
    if unchanged and isinstance(kept, Mapping) and isinstance(kept.get("card"), Mapping):
        v2 = dict(kept["card"])
    v3 = persona_to_card(persona, "v3")
    try:
        return write_card_chunks(image, {"chara": encode_payload(v2),
                                         "ccv3": encode_payload(v3)})
    except PngError as exc:
        raise CardError(out, f"the avatar is not a readable PNG: {exc}",
                        "fix or replace the avatar image") from exc


def charx_bytes(persona: Persona, card: dict[str, Any], base: Path, notes: list[str]) -> bytes:
    """Build a CHARX: the card, and the imported assets or the avatar as its icon."""
    record = roundtrip_of(persona.card).get("charx")
    members: list[tuple[str, bytes]] = []
    if isinstance(record, Mapping) and isinstance(record.get("files"), list):
        folder = Path(str(record.get("assets_dir", ".")))
        folder = folder if folder.is_absolute() else base / folder
        for name in record["files"]:
            try:
                members.append((str(name), (folder / str(name)).read_bytes()))
            except OSError as exc:
                raise CardError(folder / str(name), f"asset cannot be read: "
                                f"{exc.strerror or exc}", "restore the assets folder written "
                                "by the import, or re-import the CHARX") from exc
        notes.append(f"{len(members)} asset file(s) from {folder}")
        return write_charx(card, members)
    found = _avatar_bytes(persona, base, Path("<charx>"))
    if found is not None:
        image, where = found
        ext = where.suffix.lower().lstrip(".") or "png"
        inner = f"{_NATIVE_ICON}.{ext}"
        members.append((inner, image))
        icon = {"type": "icon", "uri": f"embeded://{inner}", "name": "main", "ext": ext}
        data = card["data"]
        assets = [a for a in data.get("assets") or [] if not (
            isinstance(a, Mapping) and a.get("type") == "icon" and a.get("name") == "main")]
        data["assets"] = [icon, *assets]
        notes.append(f"avatar {where} -> {inner}")
    return write_charx(card, members)
