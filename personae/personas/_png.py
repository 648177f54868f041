"""PNG text chunks that carry Character Cards, read and written with struct and zlib.

Character Cards hide their JSON in PNG text chunks: `chara` (V2) and `ccv3`
(V3), each base64 of UTF-8 JSON. Writers disagree on the chunk type (`tEXt`,
`zTXt`, `iTXt`) and on where it goes (some put it after the image data), so
reading accepts all three kinds anywhere before IEND. Writing touches nothing
but card chunks: every other chunk, image data included, is copied byte for
byte, which image libraries that re-encode on save cannot promise.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CARD_KEYWORDS",
    "PNG_SIGNATURE",
    "PngError",
    "TextChunk",
    "card_payloads",
    "decode_payload",
    "encode_payload",
    "read_text_chunks",
    "write_card_chunks",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_KEYWORDS = frozenset({"chara", "ccv3"})

TextKind = Literal["tEXt", "zTXt", "iTXt"]
_TEXT_KINDS: frozenset[bytes] = frozenset({b"tEXt", b"zTXt", b"iTXt"})
# Chunk length (4) + type (4) before the data, CRC (4) after it.
_HEADER = 8
_CRC = 4
# Keywords are 1-79 bytes in the spec; longer ones are tolerated on read
# because some writers ignore the limit, but never produced on write.
_MAX_KEYWORD = 79


class PngError(ValueError):
    """A PNG, or a card payload inside one, that cannot be read.

    Args:
        problem: What is wrong, e.g. ``"bad CRC in tEXt chunk"``.
        offset: Byte offset in the file where the problem was found, if any.
    """

    def __init__(self, problem: str, *, offset: int | None = None) -> None:
        self.problem = problem
        self.offset = offset
        where = "" if offset is None else f" at byte {offset}"
        super().__init__(f"{problem}{where}")


@dataclass(frozen=True)
class TextChunk:
    """One decoded PNG text chunk.

    Attributes:
        kind: The chunk type.
        keyword: The keyword, as written (case preserved).
        text: The decoded (and decompressed) text.
        offset: Byte offset of the chunk's length field in the file.
    """

    kind: TextKind
    keyword: str
    text: str
    offset: int


@dataclass(frozen=True)
class _RawChunk:
    type: bytes
    data: bytes
    offset: int
    end: int


def _chunks(data: bytes) -> Iterator[_RawChunk]:
    """Yield every chunk up to and including IEND, checking framing and CRCs."""
    if not data.startswith(PNG_SIGNATURE):
        raise PngError("not a PNG file: bad signature", offset=0)
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + _HEADER > len(data):
            raise PngError("truncated PNG: chunk header cut short (no IEND)", offset=pos)
        length, ctype = struct.unpack(">I4s", data[pos : pos + _HEADER])
        name = ctype.decode("latin-1")
        if not ctype.isalpha():
            raise PngError(f"malformed chunk type {name!r}", offset=pos)
        end = pos + _HEADER + length + _CRC
        if end > len(data):
            raise PngError(
                f"truncated PNG: {name} chunk declares {length} bytes, file ends first",
                offset=pos,
            )
        body = data[pos + _HEADER : end - _CRC]
        (crc,) = struct.unpack(">I", data[end - _CRC : end])
        if zlib.crc32(ctype + body) != crc:
            raise PngError(f"bad CRC in {name} chunk", offset=pos)
        yield _RawChunk(ctype, body, pos, end)
        if ctype == b"IEND":
            if end != len(data):
                raise PngError("data after IEND chunk", offset=end)
            return
        pos = end


def _inflate(blob: bytes, kind: str, offset: int) -> bytes:
    try:
        return zlib.decompress(blob)
    except zlib.error as exc:
        raise PngError(f"corrupt compressed text in {kind} chunk ({exc})", offset=offset) from exc


def _decode_text(chunk: _RawChunk) -> TextChunk:
    kind = chunk.type.decode("ascii")
    keyword_bytes, sep, rest = chunk.data.partition(b"\0")
    if not sep or not keyword_bytes:
        raise PngError(f"malformed {kind} chunk: missing keyword", offset=chunk.offset)
    keyword = keyword_bytes.decode("latin-1")
    if kind == "tEXt":
        return TextChunk("tEXt", keyword, rest.decode("latin-1"), chunk.offset)
    if kind == "zTXt":
        if not rest or rest[0] != 0:
            raise PngError("zTXt chunk uses an unknown compression method", offset=chunk.offset)
        text = _inflate(rest[1:], kind, chunk.offset).decode("latin-1")
        return TextChunk("zTXt", keyword, text, chunk.offset)
    # iTXt: flag, method, language NUL, translated keyword NUL, UTF-8 text.
    if len(rest) < 2:
        raise PngError("malformed iTXt chunk: missing compression fields", offset=chunk.offset)
    flag, method = rest[0], rest[1]
    _language, sep1, rest = rest[2:].partition(b"\0")
    _translated, sep2, raw = rest.partition(b"\0")
    if not (sep1 and sep2):
        raise PngError("malformed iTXt chunk: missing language or translation", offset=chunk.offset)
    if flag not in (0, 1) or (flag == 1 and method != 0):
        raise PngError("iTXt chunk uses an unknown compression method", offset=chunk.offset)
    if flag == 1:
        raw = _inflate(raw, kind, chunk.offset)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PngError("iTXt chunk text is not UTF-8", offset=chunk.offset) from exc
    return TextChunk("iTXt", keyword, text, chunk.offset)


def read_text_chunks(data: bytes) -> list[TextChunk]:
    """Read every tEXt, zTXt and iTXt chunk of a PNG, in file order.

    Args:
        data: The whole PNG file.

    Returns:
        The text chunks, wherever they sit before IEND.

    Raises:
        PngError: Bad signature, truncated or malformed chunk, bad CRC, or
            data after IEND; the message names the byte offset.
    """
    return [_decode_text(c) for c in _chunks(data) if c.type in _TEXT_KINDS]


def card_payloads(data: bytes) -> dict[str, str]:
    """Find the Character Card payloads of a PNG.

    Args:
        data: The whole PNG file.

    Returns:
        Lowercased keyword (``chara``, ``ccv3``) to the chunk's text; when a
        keyword occurs twice, the last chunk wins.

    Raises:
        PngError: The file is not a readable PNG.
    """
    found: dict[str, str] = {}
    for chunk in read_text_chunks(data):
        key = chunk.keyword.lower()
        if key in CARD_KEYWORDS:
            found[key] = chunk.text
    return found


def _is_card_chunk(chunk: _RawChunk) -> bool:
    if chunk.type not in _TEXT_KINDS:
        return False
    keyword = chunk.data.partition(b"\0")[0]
    return keyword.decode("latin-1").lower() in CARD_KEYWORDS


def _text_chunk(keyword: str, text: str) -> bytes:
    try:
        key = keyword.encode("latin-1")
        body = key + b"\0" + text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise PngError(f"tEXt chunk {keyword!r} must be latin-1 text (use base64)") from exc
    if not 1 <= len(key) <= _MAX_KEYWORD or b"\0" in key:
        raise PngError(f"invalid PNG text keyword {keyword!r}")
    return (
        struct.pack(">I4s", len(body), b"tEXt")
        + body
        + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    )


def write_card_chunks(data: bytes, chunks: Mapping[str, str]) -> bytes:
    """Replace a PNG's card chunks, leaving every other byte alone.

    Args:
        data: The whole PNG file.
        chunks: Keyword (e.g. ``chara``, ``ccv3``) to text, usually from
            `encode_payload`; written as tEXt chunks just before IEND.

    Returns:
        The new PNG: existing ``chara``/``ccv3`` chunks of any text kind
        removed, all other chunks copied verbatim in their order.

    Raises:
        PngError: The file is not a readable PNG, or a keyword or text
            cannot go in a tEXt chunk.
    """
    new = b"".join(_text_chunk(k, v) for k, v in chunks.items())
    out = bytearray(PNG_SIGNATURE)
    for chunk in _chunks(data):
        if chunk.type == b"IEND":
            out += new
        if not _is_card_chunk(chunk):
            out += data[chunk.offset : chunk.end]
    return bytes(out)


def decode_payload(text: str) -> dict[str, object]:
    """Decode a card payload: base64, then UTF-8, then a JSON object.

    Args:
        text: The chunk text.

    Returns:
        The card as a JSON object.

    Raises:
        PngError: Names the step that failed: not base64, not UTF-8, not
            JSON, or not a JSON object.
    """
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PngError(f"card payload is not base64 ({exc})") from exc
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PngError(f"card payload is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        value: object = json.loads(decoded)
    except json.JSONDecodeError as exc:
        raise PngError(f"card payload is not JSON ({exc.msg} at char {exc.pos})") from exc
    if not isinstance(value, dict):
        raise PngError(f"card payload is not a JSON object (got {type(value).__name__})")
    return {str(k): v for k, v in value.items()}


def encode_payload(obj: Mapping[str, object]) -> str:
    """Encode a card as compact UTF-8 JSON in base64.

    Args:
        obj: The card.

    Returns:
        ASCII base64 text, fit for a tEXt chunk.
    """
    compact = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(compact.encode("utf-8")).decode("ascii")
