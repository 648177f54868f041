"""Character Cards, lorebooks and character.json files for the card tests, built here.

Every card describes Wren Calloway, a lighthouse keeper written for these
tests; the containers (PNG chunks, CHARX zips) are assembled byte by byte so
each test knows exactly what the file holds.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from personae.personas._png import PNG_SIGNATURE

# ------------------------------------------------------------------ cards

MES_EXAMPLE = (
    "<START>\n"
    "{{user}}: When do you light the lamp?\n"
    "{{char}}: At dusk, every day, storm or calm. The lamp does not care about my plans.\n"
    "<START>\n"
    "<USER>: Who are you?\n"
    "<BOT>: I'm {{char}}, keeper of the Greyhook light. Mind the fourth stair, {{user}}.\n"
    "<START>\n"
    "{{user}}: Is the sea rough tonight?\n"
    "Wren: Rough enough to sink a careless boat.\n"
    "She taps the barometer twice.\n"
)

ST_ENTRY_EXTENSIONS: dict[str, Any] = {
    "position": 0, "exclude_recursion": False, "display_index": 0, "probability": 100,
    "useProbability": True, "depth": 4, "selectiveLogic": 0, "group": "",
    "group_override": False, "group_weight": 100, "prevent_recursion": False,
    "delay_until_recursion": False, "scan_depth": None, "match_whole_words": None,
    "use_group_scoring": False, "case_sensitive": None, "automation_id": "", "role": 0,
    "vectorized": False, "sticky": 0, "cooldown": 0, "delay": 0,
}  # fmt: skip


def book() -> dict[str, Any]:
    """A character_book with SillyTavern-style, V3-style and odd entries."""
    return {
        "name": "Greyhook",
        "description": "Places and people around the Greyhook light.",
        "scan_depth": 6,
        "token_budget": 900,
        "recursive_scanning": False,
        "extensions": {"editor": "hand"},
        "entries": [
            {
                "id": 0, "keys": ["lighthouse", "Greyhook light"], "secondary_keys": [],
                "comment": "The light", "content": "The Greyhook light has 112 stairs.",
                "constant": False, "selective": True, "insertion_order": 100,
                "enabled": True, "position": "before_char", "use_regex": True,
                "extensions": dict(ST_ENTRY_EXTENSIONS),
            },
            {
                "id": 1, "keys": "smuggler, smugglers", "secondary_keys": "cove, night",
                "comment": "", "content": "Smugglers use Thimble Cove on moonless nights.",
                "selective": True, "insertion_order": 40.0, "enabled": True,
                "position": "after_char", "priority": 3, "case_sensitive": True,
                "extensions": {
                    "selectiveLogic": 3, "probability": 60, "useProbability": True,
                    "group": "secrets", "group_weight": 30, "group_override": True,
                    "sticky": 2, "cooldown": 3, "delay": 1, "scan_depth": 2,
                    "match_whole_words": False, "exclude_recursion": True,
                    "prevent_recursion": True, "delay_until_recursion": False,
                },
            },
            {
                "id": 2, "name": "Harbour", "keys": ["harbour", "/docks?/i"],
                "content": "The harbour master is Tomas Reel.", "constant": True,
                "enabled": False, "insertion_order": 10, "use_regex": True,
                "extensions": {}, "secondary_keys": ["boat"], "selective": False,
            },
            {"id": 3, "keys": [], "content": "", "extensions": {}, "comment": "empty"},
            {
                "id": 4, "keys": [], "secondary_keys": [], "content": "Keyless forgotten note.",
                "insertion_order": 5, "enabled": True, "extensions": {},
            },
            {
                "id": 5, "keys": ["storm"], "content": "Storms come from the west.",
                "insertion_order": 7, "enabled": True,
                "extensions": {"selectiveLogic": 2, "useProbability": False,
                               "probability": 0, "delay_until_recursion": True},
                "secondary_keys": ["summer"], "selective": True,
            },
        ],
    }


def v2_card() -> dict[str, Any]:
    """A full V2 card: every mapped field and a good number of kept ones."""
    return {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": "Wren Calloway",
            "description": "A lighthouse keeper on a cold northern coast.\n",
            "personality": "patient, dry-humoured, watchful",
            "scenario": "{{user}} arrives at the lighthouse during a storm.",
            "first_mes": "*The door bangs open.* You're soaked, {{user}}. Get in.",
            "mes_example": MES_EXAMPLE,
            "creator_notes": "CREATOR-NOTES-SECRET: written for tests only.",
            "system_prompt": "{{original}}\nStay in character as {{char}}.",
            "post_history_instructions": "Keep replies short.",
            "alternate_greetings": ["  Another visitor? Up the stairs, then.  ",
                                    "The lamp's lit. What brings you?"],
            "character_book": book(),
            "tags": ["coast", "slice of life"],
            "creator": "personae tests",
            "character_version": "1.2",
            "extensions": {"talkativeness": "0.4", "fav": False,
                           "depth_prompt": {"prompt": "Wren is tired.", "depth": 4,
                                            "role": "system"}},
            "x_unknown_field": {"kept": [1, 2.5, None]},
        },
    }


def v3_card(spec_version: object = "3.0") -> dict[str, Any]:
    """The V2 card as V3, with V3's own fields."""
    card = v2_card()
    card["spec"] = "chara_card_v3"
    card["spec_version"] = spec_version
    data = card["data"]
    data["nickname"] = "Wren"
    data["group_only_greetings"] = ["Everyone in, before the tide turns."]
    data["assets"] = [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}]
    data["creator_notes_multilingual"] = {"de": "Nur fuer Tests."}
    data["source"] = ["https://example.invalid/wren"]
    data["creation_date"] = 1700000000
    data["modification_date"] = 1700000500
    for entry in data["character_book"]["entries"]:
        entry.setdefault("use_regex", False)
    return card


def v1_card() -> dict[str, Any]:
    """An old V1 card: the fields at the top level, with leftovers of its editor."""
    data = v2_card()["data"]
    return {
        "name": data["name"],
        "description": data["description"],
        "personality": data["personality"],
        "scenario": data["scenario"],
        "first_mes": data["first_mes"],
        "mes_example": data["mes_example"],
        "creatorcomment": "old comment",
        "avatar": "none",
        "talkativeness": "0.5",
    }


def hybrid_card() -> dict[str, Any]:
    """A V2 card with V1 copies at the top level, the way SillyTavern exports them."""
    card = v2_card()
    data = card["data"]
    top = {
        "name": data["name"],
        "description": data["description"],
        "personality": data["personality"],
        "scenario": data["scenario"],
        "first_mes": data["first_mes"],
        "mes_example": data["mes_example"],
        "creatorcomment": data["creator_notes"],
        "avatar": "none",
        "chat": "Wren Calloway - 2024-01-01",
        "talkativeness": "0.4",
        "fav": False,
        "tags": list(data["tags"]),
        "create_date": "2024-01-01T00:00:00Z",
    }
    # A stale top-level copy: `data` must win, the copy must survive.
    top["personality"] = "grumpy (old version)"
    return {**top, **card}


def lorebook_v3() -> dict[str, Any]:
    """A standalone lorebook_v3 file."""
    return {"spec": "lorebook_v3", "data": book()}


def minimal_v3() -> dict[str, Any]:
    """The smallest V3 card a tool might write."""
    return {"spec": "chara_card_v3", "spec_version": "3.0",
            "data": {"name": "Pip", "description": "A small robot.", "first_mes": "Beep."}}


# ------------------------------------------------------------------ eliza


def eliza_v0() -> dict[str, Any]:
    """An ElizaOS character.json of the old kind: `clients`, `modelProvider`, `user`."""
    return {
        "name": "Wren",
        "username": "wren_keeper",
        "clients": ["discord"],
        "modelProvider": "openai",
        "settings": {
            "secrets": {"OPENAI_API_KEY": "sk-test-00000000000000000000"},
            "voice": {"model": "en_GB-northern"},
            "DISCORD_TOKEN": "not-a-real-token-value",
            "avatarUrl": "sk-live-abcdefghijklmnop",
        },
        "system": "Speak like a lighthouse keeper.",
        "bio": "Keeps the Greyhook light.",
        "lore": ["Once rowed through a gale to save a fisherman.", "Hates fog horns."],
        "messageExamples": [
            [
                {"user": "{{user1}}", "content": {"text": "Is the lamp lit?"}},
                {"user": "Wren", "content": {"text": "Since dusk, as always."}},
            ],
            [
                {"user": "Wren", "content": {"text": "Who's there?"}},
            ],
        ],
        "postExamples": ["Fog again. The horn sings."],
        "topics": ["lighthouses", "weather"],
        "style": {"all": ["short sentences", "dry humour"], "chat": ["answer plainly"],
                  "post": ["no hashtags"]},
        "adjectives": ["patient", "watchful"],
        "knowledge": ["The light flashes every ten seconds.", {"path": "docs/tides.md"}],
        "people": [],
    }


def eliza_v1() -> dict[str, Any]:
    """An ElizaOS character.json of the new kind: `plugins`, `name` speakers."""
    return {
        "name": "Wren",
        "plugins": ["@elizaos/plugin-sql", "@elizaos/plugin-openai"],
        "settings": {"secrets": {"ANTHROPIC_API_KEY": "abc123abc123"}, "model": "small"},
        "secrets": {"DISCORD_API_TOKEN": "xyz"},
        "system": "Speak like a lighthouse keeper.",
        "bio": ["Keeps the Greyhook light.", "Lives alone with a cat."],
        "topics": ["tides"],
        "messageExamples": [
            [
                {"name": "{{name1}}", "content": {"text": "Any ships tonight?"}},
                {"name": "Wren", "content": {"text": "One trawler, heading home."}},
            ],
        ],
        "postExamples": [],
        "style": {"all": ["short sentences"], "chat": [], "post": []},
        "adjectives": ["patient"],
        "templates": {"messageHandlerTemplate": "..."},
    }


# ------------------------------------------------------------------ PNG


def chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def b64(card: dict[str, Any]) -> str:
    """A card payload: base64 of compact UTF-8 JSON."""
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8")).decode("ascii")


def text_chunk(keyword: str, value: str) -> bytes:
    """A tEXt chunk."""
    return chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + value.encode("latin-1"))


def ztxt_chunk(keyword: str, value: str) -> bytes:
    """A zTXt chunk (deflate)."""
    return chunk(b"zTXt", keyword.encode("latin-1") + b"\0\0" + zlib.compress(value.encode()))


def itxt_chunk(keyword: str, value: str, *, compressed: bool = True) -> bytes:
    """An iTXt chunk, compressed or not."""
    raw = value.encode("utf-8")
    payload = zlib.compress(raw) if compressed else raw
    body = (keyword.encode("latin-1") + b"\0" + bytes([int(compressed), 0]) + b"en\0"
            + b"Karte" + b"\0" + payload)
    return chunk(b"iTXt", body)


IHDR = chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
_ROWS = b"\x00" + bytes([200, 40, 40, 40, 200, 40]) + b"\x00" + bytes([40, 40, 200, 220, 220, 220])
_PIXELS = zlib.compress(_ROWS)
IDAT_1 = chunk(b"IDAT", _PIXELS[:5])
IDAT_2 = chunk(b"IDAT", _PIXELS[5:])
IEND = chunk(b"IEND", b"")
EXTRA_BEFORE = chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1)) + text_chunk(
    "Comment", "drawn by hand")
EXTRA_AFTER = chunk(b"tIME", struct.pack(">HBBBBB", 2024, 5, 6, 7, 8, 9))


def image(*, before: bytes = b"", after_idat: bytes = b"") -> bytes:
    """A 2x2 RGB PNG with extra chunks around its two IDATs."""
    return (PNG_SIGNATURE + IHDR + EXTRA_BEFORE + before + IDAT_1 + IDAT_2 + after_idat
            + EXTRA_AFTER + IEND)


def png_card(card: dict[str, Any], *, kind: str = "tEXt", keyword: str = "chara",
             after_idat: bool = False) -> bytes:
    """The image with the card in one chunk of the given kind and place."""
    payload = b64(card)
    made = {"tEXt": text_chunk, "zTXt": ztxt_chunk, "iTXt": itxt_chunk}[kind](keyword, payload)
    return image(after_idat=made) if after_idat else image(before=made)


def split_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every chunk as (type, whole chunk bytes), in order."""
    out, pos = [], len(PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        end = pos + 12 + length
        out.append((data[pos + 4 : pos + 8], data[pos:end]))
        pos = end
    return out


def without_card_chunks(data: bytes) -> bytes:
    """The PNG with its chara/ccv3 chunks taken out, everything else as it is."""
    keep = []
    for kind, whole in split_chunks(data):
        keyword = whole[8:].split(b"\0", 1)[0].lower()
        if kind in (b"tEXt", b"zTXt", b"iTXt") and keyword in (b"chara", b"ccv3"):
            continue
        keep.append(whole)
    return PNG_SIGNATURE + b"".join(keep)


def sillytavern_write(data: bytes, card: dict[str, Any]) -> bytes:
    """Write a card into a PNG the way SillyTavern's writer does.

    Its writer drops the tEXt chunks named `chara` or `ccv3`, then inserts a
    tEXt `chara` with the V2 card and a tEXt `ccv3` with the same card marked
    V3, both just before IEND.
    """
    chunks = [whole for kind, whole in split_chunks(data)
              if not (kind == b"tEXt" and whole[8:].split(b"\0", 1)[0] in (b"chara", b"ccv3"))]
    v3 = copy.deepcopy(card)
    v3["spec"], v3["spec_version"] = "chara_card_v3", "3.0"
    new = [text_chunk("chara", b64(card)), text_chunk("ccv3", b64(v3))]
    return PNG_SIGNATURE + b"".join(chunks[:-1] + new + chunks[-1:])


# ------------------------------------------------------------------ CHARX

ICON = image()
EXPRESSION = b"\x89PNG fake expression bytes \x00\x01\x02"
VOICE = bytes(range(256)) * 3


def charx(card: dict[str, Any], style: str = "embeded://", *,
          extra: dict[str, bytes] | None = None) -> bytes:
    """A CHARX zip whose assets are referenced with the given URI style."""
    card = copy.deepcopy(card)
    files = {
        "assets/icon/images/main.png": ICON,
        "assets/other/image/smile.png": EXPRESSION,
        "assets/other/audio/hello.bin": VOICE,
    }
    card["data"]["assets"] = [
        {"type": "icon", "uri": f"{style}assets/icon/images/main.png", "name": "main",
         "ext": "png"},
        {"type": "emotion", "uri": f"{style}assets/other/image/smile.png", "name": "smile",
         "ext": "png"},
        {"type": "x-voice", "uri": f"{style}assets/other/audio/hello.bin", "name": "hello",
         "ext": "bin"},
        {"type": "background", "uri": "https://example.invalid/bg.png", "name": "bg",
         "ext": "png"},
    ]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("card.json", json.dumps(card, ensure_ascii=False, indent=1))
        for name, data in {**files, **(extra or {})}.items():
            archive.writestr(name, data)
        archive.writestr("x_meta/1.json", b'{"note": "unreferenced member"}')
    return out.getvalue()


def charx_files(style: str = "embeded://") -> dict[str, bytes]:
    """The asset members `charx` writes (besides card.json)."""
    return {
        "assets/icon/images/main.png": ICON,
        "assets/other/image/smile.png": EXPRESSION,
        "assets/other/audio/hello.bin": VOICE,
        "x_meta/1.json": b'{"note": "unreferenced member"}',
    }


def encrypted_flag(data: bytes) -> bytes:
    """Mark every member of a zip as encrypted (bit 0 of the general purpose flags)."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (at := out.find(signature, start)) >= 0:
            out[at + offset] |= 0x01
            start = at + 4
    return bytes(out)


# ------------------------------------------------------------------ files


def write(path: Path, data: bytes | dict[str, Any] | str) -> Path:
    """Write a fixture file and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, dict):
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    elif isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def broken_files(root: Path) -> dict[str, tuple[Path, str]]:
    """One file per error a user can run into, with a pattern its message must match."""
    v2 = v2_card()
    files: dict[str, tuple[Path, str]] = {
        "not a card": (write(root / "shopping.json", {"eggs": 12, "milk": True}),
                       "not a Character Card"),
        "broken json": (write(root / "broken.json", '{"spec": "chara_card_v2", "data": {'),
                        "not valid JSON"),
        "json list": (write(root / "list.json", "[1, 2]"), "not a card object"),
        "unknown spec": (write(root / "future.json", {"spec": "chara_card_v9", "data": {}}),
                         "unknown card spec 'chara_card_v9'"),
        "no name": (write(root / "noname.json", {"spec": "chara_card_v2", "spec_version": "2.0",
                                                  "data": {"name": "  ", "description": "x"}}),
                    "has no name"),
        "broken base64": (write(root / "b64.png", image(before=text_chunk(
            "chara", "!!not*base64!!"))),
            "`chara` chunk is not a card: card payload is not base64"),
        "payload not json": (write(root / "pjson.png", image(before=text_chunk(
            "ccv3", base64.b64encode(b"{not json").decode()))), "`ccv3` chunk is not a card:.*"
            "not JSON"),
        "encrypted payload": (write(root / "enc.png", image(before=text_chunk(
            "chara", base64.b64encode(bytes(range(7, 200))).decode()))), "not UTF-8"),
        "truncated png": (write(root / "cut.png", png_card(v2)[:300]), "truncated PNG"),
        "png without card": (write(root / "plain.png", image()), "holds no character card"),
        "encrypted zip": (write(root / "locked.charx", encrypted_flag(charx(v3_card()))),
                          "encrypted members"),
        "zip without card": (write(root / "nocard.charx", _zip({"readme.txt": b"hi"})),
                             "has no card.json"),
        "zip slip": (write(root / "slip.charx", _zip({"card.json": json.dumps(v3_card()).encode(),
                                                      "../evil.txt": b"x"})),
                     "outside its folder"),
        "not a zip": (write(root / "junk.charx", b"PK\x03\x04 this is not really a zip"),
                      "not a readable CHARX"),
        "unknown format": (write(root / "notes.txt", b"\x00\x01\x02 binary junk"),
                           "unknown format"),
        "empty": (write(root / "empty.json", b""), "the file is empty"),
        "not utf8": (write(root / "latin.json", '{"name": "Zoë"}'.encode("latin-1")),
                     "not UTF-8"),
    }
    return files


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()
