"""The image of a PNG card when the persona has no avatar: a small PNG made here.

A 64x64 soft gradient in the colours of a blank portrait, built with zlib and
struct alone, so exporting needs no image library and always gives the same
bytes.
"""

from __future__ import annotations

import struct
import zlib
from functools import cache

from personae.personas._png import PNG_SIGNATURE

__all__ = ["placeholder_png"]

_SIZE = 64


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@cache
def placeholder_png() -> bytes:
    """Return the placeholder image: a 64x64 RGB PNG."""
    rows = bytearray()
    for y in range(_SIZE):
        rows.append(0)  # filter type None for every scanline
        for x in range(_SIZE):
            shade = (x + y) * 48 // (2 * _SIZE)
            rows += bytes((96 + shade, 112 + shade, 140 + shade))
    header = struct.pack(">IIBBBBB", _SIZE, _SIZE, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )
