"""Nothing is lost: import then export in the same format gives the card back, field for field."""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path
from typing import Any

import card_fixtures as F
import pytest

from personae.personas._card_values import same
from personae.personas._png import card_payloads, decode_payload
from personae.personas.cards import (
    card_to_persona,
    dump_persona_yaml,
    export_card,
    import_card,
    persona_to_card,
)
from personae.personas.loading import load_persona
from personae.personas.model import Example, LoreEntry, Persona

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples" / "personas"
_NOT_CARRIED = {"card", "avatar", "lore_files"}


def through_yaml(persona: Persona, tmp_path: Path) -> Persona:
    """Write the persona as YAML and load it back, as `personae import` then `export` do."""
    path = tmp_path / "persona.yaml"
    path.write_text(dump_persona_yaml(persona, base_dir=tmp_path), encoding="utf-8")
    return load_persona(path)


CARDS = {
    "v2": (F.v2_card, "v2"),
    "v3": (F.v3_card, "v3"),
    "v3 numeric version": (lambda: F.v3_card(3.0), "v3"),
    "v3 odd version": (lambda: F.v3_card("3.5"), "v3"),
    "hybrid": (F.hybrid_card, "v2"),
    "minimal v3": (F.minimal_v3, "v3"),
}


@pytest.mark.parametrize("name", list(CARDS))
def test_json_round_trip_is_equal_field_for_field(name: str, tmp_path: Path) -> None:
    make, version = CARDS[name]
    original = make()
    path = F.write(tmp_path / "in.json", original)
    persona = through_yaml(import_card(path).persona, tmp_path)
    out = tmp_path / "out.json"
    export_card(persona, version, out)  # type: ignore[arg-type]
    assert json.loads(out.read_text(encoding="utf-8")) == original
    assert same(json.loads(out.read_text(encoding="utf-8")), original)  # 1 vs 1.0 too


def test_v2_card_without_spec_gets_one_and_nothing_else_changes() -> None:
    card = F.v2_card()
    del card["spec"], card["spec_version"]
    out = persona_to_card(card_to_persona(card).persona, "v2")
    assert out.pop("spec") == "chara_card_v2" and out.pop("spec_version") == "2.0"
    assert out == card


def test_hybrid_copies_follow_edits_of_data() -> None:
    persona = card_to_persona(F.hybrid_card()).persona
    edited = persona.model_copy(update={"description": "A retired lighthouse keeper."})
    out = persona_to_card(edited, "v2")
    assert out["data"]["description"] == "A retired lighthouse keeper."
    assert out["description"] == "A retired lighthouse keeper."  # the mirror follows
    assert out["personality"] == "grumpy (old version)"  # a differing copy stays


def test_edits_are_written_and_untouched_fields_stay_as_they_were() -> None:
    original = F.v2_card()
    persona = card_to_persona(original).persona
    lore = list(persona.lore)
    lore[1] = lore[1].model_copy(update={"probability": 25, "keys": ["smuggler"]})
    edited = persona.model_copy(update={
        "style": persona.style.model_copy(update={"tone": "cheerful"}),
        "examples": [*persona.examples, Example(user="Tea?", reply="Always.")],
        "lore": lore,
    })
    out = persona_to_card(edited, "v2")
    data = out["data"]
    assert data["personality"] == "cheerful"
    assert data["mes_example"].endswith("<START>\n{{user}}: Tea?\n{{char}}: Always.")
    entry = data["character_book"]["entries"][1]
    assert entry["keys"] == ["smuggler"]
    assert entry["extensions"]["probability"] == 25
    assert entry["secondary_keys"] == "cove, night"  # unchanged, so as written
    assert entry["insertion_order"] == 40.0
    assert data["description"] == original["data"]["description"]  # trailing newline kept
    assert data["creator_notes"] == original["data"]["creator_notes"]
    assert data["character_book"]["entries"][3] == original["data"]["character_book"]["entries"][3]
    assert card_to_persona(out).persona.lore[1].probability == 25


def test_converting_v2_to_v3_and_back() -> None:
    v2 = F.v2_card()
    persona = card_to_persona(v2).persona
    v3 = persona_to_card(persona, "v3")
    assert v3["spec"] == "chara_card_v3" and v3["spec_version"] == "3.0"
    assert v3["data"]["group_only_greetings"] == []
    back = card_to_persona(v3).persona
    assert back.model_dump(exclude={"card"}) == persona.model_dump(exclude={"card"})
    assert persona_to_card(back, "v2")["data"] == v2["data"] | {"group_only_greetings": []}


def test_v1_exports_as_v2_with_its_leftovers_beside_data() -> None:
    v1 = F.v1_card()
    out = persona_to_card(card_to_persona(v1).persona, "v2")
    assert out["spec"] == "chara_card_v2"
    for key in ("name", "description", "personality", "scenario", "first_mes", "mes_example"):
        assert out["data"][key] == v1[key]
    assert {k: out[k] for k in ("creatorcomment", "avatar", "talkativeness")} == {
        "creatorcomment": "old comment", "avatar": "none", "talkativeness": "0.5"}
    for key in ("creator_notes", "tags", "creator", "character_version", "extensions"):
        assert key in out["data"]


@pytest.mark.parametrize(("kind", "after_idat"), [
    ("tEXt", False), ("tEXt", True), ("zTXt", False), ("zTXt", True), ("iTXt", False),
    ("iTXt", True)])
def test_png_round_trip(kind: str, after_idat: bool, tmp_path: Path) -> None:
    original = F.png_card(F.v2_card(), kind=kind, after_idat=after_idat)
    path = F.write(tmp_path / "wren.png", original)
    persona = through_yaml(import_card(path, assets_dir=tmp_path / "assets").persona, tmp_path)
    out = tmp_path / "out.png"
    export_card(persona, "png", out)
    written = out.read_bytes()
    payloads = card_payloads(written)
    assert decode_payload(payloads["chara"]) == F.v2_card()
    assert decode_payload(payloads["ccv3"])["spec"] == "chara_card_v3"
    assert F.without_card_chunks(written) == F.without_card_chunks(original)
    # Both chunks are tEXt, just before IEND.
    kinds = [(k, whole[8:].split(b"\0", 1)[0] if k == b"tEXt" else b"")
             for k, whole in F.split_chunks(written)]
    assert kinds[-3:] == [(b"tEXt", b"chara"), (b"tEXt", b"ccv3"), (b"IEND", b"")]


def test_png_with_both_chunks_reads_ccv3_and_gives_both_back(tmp_path: Path) -> None:
    v2, v3 = F.v2_card(), F.v3_card()
    v2["data"]["description"] = "The V2 chunk says something else."
    original = F.image(before=F.text_chunk("chara", F.b64(v2)),
                       after_idat=F.ztxt_chunk("ccv3", F.b64(v3)))
    path = F.write(tmp_path / "both.png", original)
    result = import_card(path)
    assert result.persona.nickname == "Wren"  # V3 won
    assert result.persona.description == "A lighthouse keeper on a cold northern coast."
    persona = through_yaml(result.persona, tmp_path)
    out = tmp_path / "out.png"
    export_card(persona, "png", out)
    payloads = card_payloads(out.read_bytes())
    assert decode_payload(payloads["ccv3"]) == v3
    assert decode_payload(payloads["chara"]) == v2  # unchanged persona: the V2 chunk as it was
    edited = persona.model_copy(update={"goals": ["Keep the light burning."]})
    export_card(edited, "png", out)
    chara = decode_payload(card_payloads(out.read_bytes())["chara"])
    assert chara["data"]["description"] == v3["data"]["description"]  # rewritten from persona


def test_png_image_comes_from_the_avatar_or_a_placeholder(tmp_path: Path) -> None:
    persona = card_to_persona(F.v2_card()).persona
    out = tmp_path / "plain.png"
    done = export_card(persona, "png", out)
    assert any("placeholder" in note for note in done.notes)
    data = out.read_bytes()
    assert decode_payload(card_payloads(data)["chara"]) == F.v2_card()
    PIL = pytest.importorskip("PIL.Image")
    with PIL.open(out) as shown:
        assert shown.size == (64, 64)
    F.write(tmp_path / "face.png", F.image())
    export_card(persona.model_copy(update={"avatar": Path("face.png")}), "png", out,
                base_dir=tmp_path)
    assert F.without_card_chunks(out.read_bytes()) == F.image()


def test_charx_extracts_assets_and_exports_them_back(tmp_path: Path) -> None:
    for style in ("embeded://", "embedded://", "__asset:"):
        original = F.charx(F.v3_card(), style)
        path = F.write(tmp_path / style.strip(":/_") / "wren.charx", original)
        assets = path.parent / "assets"
        result = import_card(path, assets_dir=assets)
        for name, blob in F.charx_files(style).items():
            assert (assets / name).read_bytes() == blob
        assert result.persona.avatar == (assets / "assets/icon/images/main.png").resolve()
        persona = through_yaml(result.persona, path.parent)
        out = path.parent / "out.charx"
        export_card(persona, "charx", out, base_dir=path.parent)
        with zipfile.ZipFile(out) as written, zipfile.ZipFile(path) as source:
            assert json.loads(written.read("card.json")) == json.loads(source.read("card.json"))
            names = [n for n in source.namelist() if n != "card.json"]
            assert sorted(n for n in written.namelist() if n != "card.json") == sorted(names)
            for name in names:
                assert written.read(name) == source.read(name), (style, name)


def test_charx_default_assets_folder_is_beside_the_card(tmp_path: Path) -> None:
    path = F.write(tmp_path / "wren.charx", F.charx(F.v3_card()))
    import_card(path)
    assert (tmp_path / "wren_assets" / "assets/other/audio/hello.bin").read_bytes() == F.VOICE


def test_charx_export_of_a_card_without_charx_embeds_the_avatar(tmp_path: Path) -> None:
    path = F.write(tmp_path / "wren.png", F.png_card(F.v3_card(), keyword="ccv3"))
    persona = import_card(path).persona
    out = tmp_path / "wren.charx"
    export_card(persona, "charx", out)
    with zipfile.ZipFile(out) as archive:
        card = json.loads(archive.read("card.json"))
        [icon] = [a for a in card["data"]["assets"] if a["type"] == "icon"]
        assert icon["uri"] == "embeded://assets/icon/images/main.png"
        assert archive.read("assets/icon/images/main.png") == path.read_bytes()
    again = import_card(out, assets_dir=tmp_path / "again")
    assert again.persona.model_dump(exclude=_NOT_CARRIED) == persona.model_dump(
        exclude=_NOT_CARRIED)


def native(persona: Persona) -> dict[str, Any]:
    return persona.model_dump(exclude=_NOT_CARRIED)


@pytest.mark.parametrize("name", ["innkeeper", "guide", "companion"])
@pytest.mark.parametrize("fmt", ["v2", "v3", "png", "charx"])
def test_native_persona_exports_and_imports_as_the_same_persona(
    name: str, fmt: str, tmp_path: Path
) -> None:
    persona = load_persona(EXAMPLES / f"{name}.yaml")
    out = tmp_path / f"{name}.{fmt if fmt in ('png', 'charx') else 'json'}"
    export_card(persona, fmt, out)  # type: ignore[arg-type]
    back = import_card(out, assets_dir=tmp_path / "assets").persona
    assert native(back) == native(persona)
    assert back.id == persona.id
    again = through_yaml(back, tmp_path)
    assert native(again) == native(persona)


def test_native_export_uses_the_card_fields_first() -> None:
    persona = load_persona(EXAMPLES / "innkeeper.yaml")
    data = persona_to_card(persona, "v3")["data"]
    assert data["name"] == "Brenna Hollowell" and data["nickname"] == "Brenna"
    assert data["personality"] == persona.style.tone
    assert data["first_mes"] == persona.greetings[0]
    assert len(data["character_book"]["entries"]) == len(persona.lore)
    own = data["extensions"]["personae"]
    assert own["schema"] == "personae/v1" and own["id"] == "brenna-innkeeper"
    assert own["backstory"] == persona.backstory
    assert own["speech"] == {"max_sentences": 3, "plain_text": True}
    assert own["actions"][0]["name"] == "give_item"
    for key in ("name", "description", "greetings", "lore", "examples", "instructions"):
        assert key not in own  # the card carries those itself


def test_lore_with_every_field_survives_native_export() -> None:
    entry = LoreEntry(
        name="Bell", keys=["bell", "/ring(s|ing)?/i"], secondary_keys=["river"],
        logic="not_all", content="The Drowned Bell rings before floods.", constant=False,
        enabled=False, priority=4, order=7, position="before_char", case_sensitive=True,
        whole_words=False, regex=True, scan_depth=3, probability=55, group="a,b",
        group_weight=9, group_override=True, sticky=1, cooldown=2, delay=3,
        exclude_recursion=True, prevent_recursion=True, delay_until_recursion=True)
    persona = Persona(id="bell", name="Bell", lore=[entry])
    persona.lorebook.max_recursion = 7
    back = card_to_persona(persona_to_card(persona, "v2")).persona
    assert back.lore[0].model_dump(exclude={"card"}) == entry.model_dump(exclude={"card"})
    assert back.lorebook.max_recursion == 7


def test_examples_that_mes_example_cannot_hold_survive() -> None:
    tricky = [Example(user="line one\n{{char}}: not a turn", reply="ok"),
              Example(user="<START>", reply="fine")]
    persona = Persona(id="t", name="T", examples=tricky, greetings=["", "hi"])
    back = card_to_persona(persona_to_card(persona, "v3")).persona
    assert back.examples == tricky
    assert back.greetings == ["", "hi"]


def test_export_import_export_is_stable(tmp_path: Path) -> None:
    persona = load_persona(EXAMPLES / "innkeeper.yaml")
    first = persona_to_card(persona, "v3")
    second = persona_to_card(card_to_persona(copy.deepcopy(first)).persona, "v3")
    assert second == first


@pytest.mark.parametrize("name", ["innkeeper", "guide", "companion"])
def test_persona_yaml_is_readable_and_loads_back_equal(name: str, tmp_path: Path) -> None:
    persona = load_persona(EXAMPLES / f"{name}.yaml")
    text = dump_persona_yaml(persona, base_dir=tmp_path, header=["Written by a test."])
    assert text.startswith("# Written by a test.\nschema: personae/v1\nid: ")
    assert "lore_files" not in text  # their entries are inline now
    assert "memory:\n  enabled: true" not in text  # defaults are left out
    fields = [line.split(":")[0] for line in text.splitlines()
              if line and line[0].isalpha()]
    names = list(Persona.model_fields)
    assert fields[0] == "schema" and len(fields) > 5
    assert fields[1:] == sorted(fields[1:], key=names.index)  # the model's order
    back = through_yaml(persona, tmp_path)
    assert back == persona.model_copy(update={"lore_files": []})


def test_multi_line_text_is_a_block_scalar(tmp_path: Path) -> None:
    persona = Persona(id="m", name="M", description="line one\nline two\n",
                      backstory="  odd  \nspacing\t\n")
    text = dump_persona_yaml(persona)
    assert "description: |-\n  line one\n  line two\n" in text
    assert through_yaml(persona, tmp_path) == persona
