from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest

from personae.personas._png import (
    PNG_SIGNATURE,
    PngError,
    TextChunk,
    card_payloads,
    decode_payload,
    encode_payload,
    read_text_chunks,
    write_card_chunks,
)


def chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def text(keyword: str, value: str) -> bytes:
    return chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + value.encode("latin-1"))


def ztext(keyword: str, value: str) -> bytes:
    return chunk(
        b"zTXt", keyword.encode("latin-1") + b"\0\0" + zlib.compress(value.encode("latin-1"))
    )


def itext(
    keyword: str, value: str, *, compressed: bool, lang: str = "", translated: str = ""
) -> bytes:
    raw = value.encode("utf-8")
    payload = zlib.compress(raw) if compressed else raw
    body = (
        keyword.encode("latin-1")
        + b"\0"
        + bytes([1 if compressed else 0, 0])
        + lang.encode("ascii")
        + b"\0"
        + translated.encode("utf-8")
        + b"\0"
        + payload
    )
    return chunk(b"iTXt", body)


IHDR = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
IDAT = chunk(b"IDAT", zlib.compress(b"\x00\xff\x80\x10"))  # filter 0, one RGB pixel
IEND = chunk(b"IEND", b"")


def png(*middle: bytes, after_idat: tuple[bytes, ...] = ()) -> bytes:
    return PNG_SIGNATURE + IHDR + b"".join(middle) + IDAT + b"".join(after_idat) + IEND


CARD_V2 = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {"name": "Mira", "description": "Zoë ☕"},
}
CARD_V3 = {
    "spec": "chara_card_v3",
    "spec_version": "3.0",
    "data": {"name": "Mira", "nickname": "ミラ"},
}


def test_round_trip_write_then_read() -> None:
    out = write_card_chunks(
        png(), {"chara": encode_payload(CARD_V2), "ccv3": encode_payload(CARD_V3)}
    )
    payloads = card_payloads(out)
    assert set(payloads) == {"chara", "ccv3"}
    assert decode_payload(payloads["chara"]) == CARD_V2
    assert decode_payload(payloads["ccv3"]) == CARD_V3


def test_chunks_written_just_before_iend() -> None:
    out = write_card_chunks(png(), {"chara": "QQ==", "ccv3": "Qg=="})
    assert out.endswith(text("chara", "QQ==") + text("ccv3", "Qg==") + IEND)
    assert out.startswith(PNG_SIGNATURE + IHDR + IDAT)


def test_chunk_after_idat_is_found() -> None:
    data = png(after_idat=(text("chara", "abc"),))
    chunks = read_text_chunks(data)
    assert chunks == [TextChunk("tEXt", "chara", "abc", len(PNG_SIGNATURE + IHDR + IDAT))]
    assert card_payloads(data) == {"chara": "abc"}


def test_ztxt_is_read() -> None:
    data = png(ztext("chara", "zipped text"))
    [found] = read_text_chunks(data)
    assert (found.kind, found.keyword, found.text) == ("zTXt", "chara", "zipped text")


@pytest.mark.parametrize("compressed", [False, True])
def test_itxt_is_read(compressed: bool) -> None:
    data = png(itext("ccv3", "héllo ✓", compressed=compressed, lang="en", translated="Karte"))
    [found] = read_text_chunks(data)
    assert (found.kind, found.keyword, found.text) == ("iTXt", "ccv3", "héllo ✓")


def test_keyword_match_is_case_insensitive_and_non_card_keywords_ignored() -> None:
    data = png(text("Chara", "v2"), text("Comment", "hi"), itext("CCV3", "v3", compressed=True))
    assert card_payloads(data) == {"chara": "v2", "ccv3": "v3"}
    assert [c.keyword for c in read_text_chunks(data)] == ["Chara", "Comment", "CCV3"]


def test_v2_and_v3_both_present() -> None:
    data = png(
        text("chara", encode_payload(CARD_V2)), after_idat=(ztext("ccv3", encode_payload(CARD_V3)),)
    )
    payloads = card_payloads(data)
    assert decode_payload(payloads["chara"])["spec"] == "chara_card_v2"
    assert decode_payload(payloads["ccv3"])["spec"] == "chara_card_v3"


def test_write_removes_old_card_chunks_and_keeps_others_verbatim() -> None:
    comment = text("Comment", "made by hand")
    private = chunk(b"prVt", b"\x00\x01secret\xff")
    original = png(
        text("chara", "old-v2"),
        comment,
        ztext("CCV3", "old-v3"),
        private,
        after_idat=(itext("chara", "older", compressed=False),),
    )
    out = write_card_chunks(original, {"chara": "new-v2"})
    assert out == PNG_SIGNATURE + IHDR + comment + private + IDAT + text("chara", "new-v2") + IEND
    assert card_payloads(out) == {"chara": "new-v2"}


def test_image_data_untouched() -> None:
    idats = chunk(b"IDAT", b"\x78\x9c") + chunk(b"IDAT", zlib.compress(b"x")[2:])
    original = PNG_SIGNATURE + IHDR + idats + IEND
    out = write_card_chunks(original, {"ccv3": "QQ=="})
    assert idats in out
    assert out.replace(text("ccv3", "QQ=="), b"") == original


def test_write_with_no_chunks_strips_cards() -> None:
    assert write_card_chunks(png(text("chara", "x")), {}) == png()


def test_bad_signature() -> None:
    with pytest.raises(PngError, match=r"bad signature at byte 0"):
        read_text_chunks(b"GIF89a" + png()[6:])


def test_truncated_file() -> None:
    data = png(text("chara", "abcdef"))
    cut = len(PNG_SIGNATURE + IHDR) + 10
    with pytest.raises(
        PngError, match=rf"truncated PNG: tEXt chunk .* at byte {len(PNG_SIGNATURE + IHDR)}"
    ):
        read_text_chunks(data[:cut])


def test_missing_iend() -> None:
    data = png()[: -len(IEND)]
    with pytest.raises(PngError, match=rf"truncated PNG.*no IEND.*at byte {len(data)}"):
        card_payloads(data)


def test_bad_crc() -> None:
    good = text("chara", "abc")
    bad = good[:-1] + bytes([good[-1] ^ 0xFF])
    offset = len(PNG_SIGNATURE + IHDR)
    with pytest.raises(PngError, match=rf"bad CRC in tEXt chunk at byte {offset}"):
        read_text_chunks(png(bad))
    with pytest.raises(PngError, match="bad CRC"):
        write_card_chunks(png(bad), {})


def test_chunk_after_iend_is_an_error() -> None:
    data = png() + text("chara", "late")
    with pytest.raises(PngError, match=rf"data after IEND chunk at byte {len(png())}"):
        read_text_chunks(data)


def test_corrupt_ztxt_names_chunk() -> None:
    body = b"chara\0\0" + b"not zlib"
    with pytest.raises(PngError, match=r"corrupt compressed text in zTXt chunk"):
        read_text_chunks(png(chunk(b"zTXt", body)))


def test_payload_not_base64() -> None:
    with pytest.raises(PngError, match="not base64"):
        decode_payload("@@@not base64@@@")


def test_payload_not_utf8() -> None:
    with pytest.raises(PngError, match="not UTF-8"):
        decode_payload(base64.b64encode(b"\xff\xfe{}").decode())


def test_payload_not_json() -> None:
    with pytest.raises(PngError, match="not JSON"):
        decode_payload(base64.b64encode(b'{"name": ').decode())


def test_payload_not_object() -> None:
    with pytest.raises(PngError, match="not a JSON object"):
        decode_payload(base64.b64encode(b"[1, 2]").decode())


def test_png_error_is_value_error() -> None:
    assert issubclass(PngError, ValueError)


def test_encode_is_compact_utf8() -> None:
    encoded = encode_payload({"name": "Zoë", "tags": [1]})
    assert base64.b64decode(encoded) == '{"name":"Zoë","tags":[1]}'.encode()


def test_write_rejects_non_latin1_text() -> None:
    with pytest.raises(PngError, match="latin-1"):
        write_card_chunks(png(), {"chara": "ü✓"})


def test_pillow_png_still_opens_with_same_pixel() -> None:
    image_module = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    image_module.new("RGB", (2, 2), (12, 34, 56)).save(buffer, format="PNG")
    original = buffer.getvalue()
    out = write_card_chunks(
        original, {"chara": encode_payload(CARD_V2), "ccv3": encode_payload(CARD_V3)}
    )
    with image_module.open(io.BytesIO(out)) as reopened:
        reopened.load()
        assert reopened.getpixel((1, 1)) == (12, 34, 56)
    assert decode_payload(card_payloads(out)["ccv3"]) == CARD_V3
