"""PNG cards as other programs write them, and what happens when an image editor re-saves one."""

from __future__ import annotations

import io
from pathlib import Path

import card_fixtures as F
import pytest

from personae.errors import CardError
from personae.personas._png import card_payloads, decode_payload
from personae.personas.cards import card_to_persona, export_card, import_card


@pytest.mark.parametrize("kind", ["tEXt", "zTXt", "iTXt"])
@pytest.mark.parametrize("keyword", ["chara", "ccv3"])
def test_card_is_found_in_any_text_chunk_anywhere(kind: str, keyword: str,
                                                  tmp_path: Path) -> None:
    card = F.v3_card() if keyword == "ccv3" else F.v2_card()
    for after in (False, True):
        path = F.write(tmp_path / f"{after}.png", F.png_card(card, kind=kind, keyword=keyword,
                                                            after_idat=after))
        result = import_card(path)
        assert result.persona.name == "Wren Calloway"
        assert result.report.container == "png"
        assert f"read the `{keyword}` chunk" in result.report.notes


def test_ccv3_wins_over_chara(tmp_path: Path) -> None:
    v2 = F.minimal_v3() | {"spec": "chara_card_v2", "spec_version": "2.0"}
    v2["data"] = {"name": "Old Pip"}
    data = F.image(before=F.text_chunk("chara", F.b64(v2)),
                   after_idat=F.itxt_chunk("ccv3", F.b64(F.minimal_v3())))
    result = import_card(F.write(tmp_path / "pip.png", data))
    assert result.persona.name == "Pip" and result.source_format == "v3"


def test_unreadable_ccv3_falls_back_to_chara_with_a_warning(tmp_path: Path) -> None:
    data = F.image(before=F.text_chunk("chara", F.b64(F.v2_card())),
                   after_idat=F.text_chunk("ccv3", "%%%"))
    result = import_card(F.write(tmp_path / "w.png", data))
    assert result.persona.name == "Wren Calloway"
    assert any("`ccv3` chunk is unreadable" in w for w in result.report.warnings)


def test_card_written_the_way_sillytavern_writes_it(tmp_path: Path) -> None:
    older = F.png_card(F.minimal_v3(), keyword="chara")
    data = F.sillytavern_write(older, F.v2_card())
    path = F.write(tmp_path / "st.png", data)
    payloads = card_payloads(data)
    assert set(payloads) == {"chara", "ccv3"}
    result = import_card(path)
    assert result.source_format == "v3" and result.persona.name == "Wren Calloway"
    out = tmp_path / "back.png"
    export_card(result.persona, "png", out)
    written = card_payloads(out.read_bytes())
    assert decode_payload(written["ccv3"]) == decode_payload(payloads["ccv3"])
    assert decode_payload(written["chara"]) == decode_payload(payloads["chara"])
    assert F.without_card_chunks(out.read_bytes()) == F.without_card_chunks(data)


def test_pillow_resave_drops_the_card_personae_keeps_it(tmp_path: Path) -> None:
    image_mod = pytest.importorskip("PIL.Image")
    original = F.png_card(F.v2_card(), kind="zTXt", after_idat=True)
    with image_mod.open(io.BytesIO(original)) as picture:
        picture.load()  # chunks after the image data are read with it
        assert "chara" in picture.info  # Pillow reads the chunk...
        resaved = io.BytesIO()
        picture.save(resaved, format="PNG")
    assert card_payloads(resaved.getvalue()) == {}  # ...and its plain save drops it
    with pytest.raises(CardError, match=r"holds no character card.*re-saved by an image editor"):
        import_card(F.write(tmp_path / "resaved.png", resaved.getvalue()))
    path = F.write(tmp_path / "card.png", original)
    out = tmp_path / "kept.png"
    export_card(import_card(path).persona, "png", out)
    assert decode_payload(card_payloads(out.read_bytes())["chara"]) == F.v2_card()
    with image_mod.open(out) as shown:  # still a valid image for image libraries
        assert shown.size == (2, 2)


def test_imported_png_avatar_is_the_image_without_card_chunks(tmp_path: Path) -> None:
    data = F.png_card(F.v2_card())
    result = import_card(F.write(tmp_path / "w.png", data), assets_dir=tmp_path / "assets")
    avatar = tmp_path / "assets" / "avatar.png"
    assert result.persona.avatar == avatar.resolve()
    assert avatar.read_bytes() == F.without_card_chunks(data)
    assert card_payloads(avatar.read_bytes()) == {}


def test_non_png_avatar_cannot_make_a_png_card(tmp_path: Path) -> None:
    jpeg = F.write(tmp_path / "face.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    persona = card_to_persona(F.minimal_v3()).persona.model_copy(update={"avatar": jpeg})
    out = tmp_path / "pip.png"
    with pytest.raises(CardError, match=r"face.jpg'? is not a PNG.*convert the avatar to PNG"):
        export_card(persona, "png", out)
    assert not out.exists()
    export_card(persona, "v3", tmp_path / "pip.json")  # JSON needs no image


def test_missing_avatar_is_named(tmp_path: Path) -> None:
    persona = card_to_persona(F.minimal_v3()).persona.model_copy(
        update={"avatar": tmp_path / "gone.png"})
    with pytest.raises(CardError, match=r"gone.png'? cannot be read"):
        export_card(persona, "png", tmp_path / "pip.png")
    assert list(tmp_path.iterdir()) == []


def test_a_chara_chunk_that_is_no_card_does_not_stop_a_good_ccv3(tmp_path: Path) -> None:
    data = F.image(before=F.text_chunk("chara", F.b64({"hello": "world"})),
                   after_idat=F.text_chunk("ccv3", F.b64(F.v3_card())))
    path = F.write(tmp_path / "odd.png", data)
    persona = import_card(path).persona
    out = tmp_path / "out.png"
    export_card(persona, "png", out)
    payloads = card_payloads(out.read_bytes())
    assert decode_payload(payloads["ccv3"]) == F.v3_card()
    assert decode_payload(payloads["chara"]) == {"hello": "world"}  # kept as it was
