"""`personae import` and `personae export`, driven through the command line."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
import typer
from personas import card_fixtures as F
from typer.testing import CliRunner

from personae.cli import app as personae_app
from personae.cli.cards import register
from personae.personas._png import card_payloads, decode_payload
from personae.personas.cards import import_card
from personae.personas.loading import load_persona

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "personas"
runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    cards = typer.Typer(pretty_exceptions_show_locals=False)
    register(cards)
    return cards


def test_import_json_writes_a_loadable_persona_and_prints_the_report(
    app: typer.Typer, tmp_path: Path
) -> None:
    card = F.write(tmp_path / "wren.json", F.v2_card())
    out = tmp_path / "out" / "wren.yaml"
    result = runner.invoke(app, ["import", str(card), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"read {card}: v2 in json" in result.output
    assert "data.personality -> style.tone" in result.output
    assert "kept for round trip only" in result.output and "data.creator_notes" in result.output
    assert "can never activate" in result.output
    assert f"wrote {out} (persona 'wren-calloway')" in result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Imported from wren.json")
    assert "mes_example: |" in text  # multi-line text as a block
    loaded = load_persona(out)
    assert loaded == import_card(card).persona
    assert not (tmp_path / "out" / "wren_assets").exists()  # a JSON card has no assets


def test_import_with_id_and_json_output(app: typer.Typer, tmp_path: Path) -> None:
    card = F.write(tmp_path / "wren.json", F.v3_card())
    out = tmp_path / "wren.json.yaml"
    result = runner.invoke(app, ["import", str(card), "-o", str(out), "--id", "keeper",
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source_format"] == "v3" and report["output"] == str(out)
    assert {"from": "data.nickname", "to": "nickname"} in report["mapped"]
    assert load_persona(out).id == "keeper"


def test_import_to_json_persona_file(app: typer.Typer, tmp_path: Path) -> None:
    card = F.write(tmp_path / "pip.json", F.minimal_v3())
    out = tmp_path / "pip-persona.json"
    assert runner.invoke(app, ["import", str(card), "-o", str(out)]).exit_code == 0
    assert load_persona(out).name == "Pip"


def test_png_import_then_export_gives_the_card_and_image_back(
    app: typer.Typer, tmp_path: Path
) -> None:
    original = F.png_card(F.v2_card(), kind="iTXt", after_idat=True)
    card = F.write(tmp_path / "in" / "wren.png", original)
    out = tmp_path / "chars" / "wren.yaml"
    result = runner.invoke(app, ["import", str(card), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "avatar: wren_assets/avatar.png" in out.read_text(encoding="utf-8")
    exported = tmp_path / "exported.png"
    result = runner.invoke(app, ["export", str(out), "--format", "png", "-o", str(exported)])
    assert result.exit_code == 0, result.output
    assert f"wrote {exported} (png)" in result.output
    data = exported.read_bytes()
    assert decode_payload(card_payloads(data)["chara"]) == F.v2_card()
    assert F.without_card_chunks(data) == F.without_card_chunks(original)


def test_charx_import_then_export(app: typer.Typer, tmp_path: Path) -> None:
    card = F.write(tmp_path / "wren.charx", F.charx(F.v3_card(), "__asset:"))
    out = tmp_path / "p" / "wren.yaml"
    assert runner.invoke(app, ["import", str(card), "-o", str(out)]).exit_code == 0
    assert (tmp_path / "p" / "wren_assets" / "assets/other/audio/hello.bin").read_bytes() == (
        F.VOICE)
    exported = tmp_path / "again.charx"
    result = runner.invoke(app, ["export", str(out), "-f", "charx", "-o", str(exported)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(exported) as written, zipfile.ZipFile(card) as source:
        assert json.loads(written.read("card.json")) == json.loads(source.read("card.json"))
        for name, blob in F.charx_files().items():
            assert written.read(name) == blob


@pytest.mark.parametrize("fmt", ["v2", "v3", "png", "charx"])
def test_export_native_persona_then_import_it(app: typer.Typer, fmt: str,
                                              tmp_path: Path) -> None:
    out = tmp_path / f"brenna.{ {'v2': 'json', 'v3': 'json'}.get(fmt, fmt) }"
    result = runner.invoke(app, ["export", str(EXAMPLES / "innkeeper.yaml"), "--format", fmt,
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "data.extensions.personae: id, emotions, example_emotions, backstory" in result.output
    persona_file = tmp_path / "brenna.yaml"
    result = runner.invoke(app, ["import", str(out), "-o", str(persona_file)])
    assert result.exit_code == 0, result.output
    back, original = load_persona(persona_file), load_persona(EXAMPLES / "innkeeper.yaml")
    skip = {"card", "avatar", "lore_files"}
    assert back.model_dump(exclude=skip) == original.model_dump(exclude=skip)


def test_lorebook_import_writes_a_lore_file(app: typer.Typer, tmp_path: Path) -> None:
    book = F.write(tmp_path / "greyhook.json", F.lorebook_v3())
    out = tmp_path / "lore" / "greyhook.yaml"
    result = runner.invoke(app, ["import", str(book), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "lorebook_v3" in result.output and "5 lore entries" in result.output
    text = out.read_text(encoding="utf-8")
    assert "lore_files: [greyhook.yaml]" in text and "\nlorebook:\n" in text
    persona = F.write(tmp_path / "lore" / "p.yaml",
                      "schema: personae/v1\nid: p\nname: P\nlore_files: [greyhook.yaml]\n")
    assert len(load_persona(persona).lore) == 5
    bad = runner.invoke(app, ["import", str(book), "-o", str(tmp_path / "book.json")])
    assert bad.exit_code == 1 and "becomes a YAML lore file" in bad.output


def test_eliza_import(app: typer.Typer, tmp_path: Path) -> None:
    path = F.write(tmp_path / "character.json", F.eliza_v0())
    out = tmp_path / "wren.yaml"
    result = runner.invoke(app, ["import", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "eliza_v0" in result.output and "settings.secrets" in result.output
    text = out.read_text(encoding="utf-8")
    assert "sk-test" not in text and "sk-test" not in result.output
    assert load_persona(out).backstory.startswith("Once rowed")


@pytest.mark.parametrize("case", ["not a card", "broken json", "broken base64",
                                  "payload not json", "encrypted payload", "truncated png",
                                  "encrypted zip", "zip slip", "unknown format", "empty"])
def test_bad_file_exits_1_names_file_and_writes_nothing(app: typer.Typer, case: str,
                                                       tmp_path: Path) -> None:
    path, pattern = F.broken_files(tmp_path / "in")[case]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = runner.invoke(app, ["import", str(path), "-o", str(out_dir / "p.yaml")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}: ")
    assert re.search(pattern, result.stderr)
    assert "Traceback" not in result.output
    assert list(out_dir.iterdir()) == []  # no persona file, no assets, no temp file


def test_import_refuses_an_output_that_is_no_persona_file(app: typer.Typer,
                                                           tmp_path: Path) -> None:
    card = F.write(tmp_path / "w.json", F.v2_card())
    result = runner.invoke(app, ["import", str(card), "-o", str(tmp_path / "w.txt")])
    assert result.exit_code == 1 and "must end in .yaml" in result.stderr
    assert not (tmp_path / "w.txt").exists()


def test_export_errors(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "x.gif"
    result = runner.invoke(app, ["export", str(EXAMPLES / "guide.yaml"), "-f", "gif",
                                 "-o", str(out)])
    assert result.exit_code == 1 and "--format 'gif' is not one of v2, v3, png, charx" in (
        result.stderr)
    broken = F.write(tmp_path / "broken.yaml", "schema: personae/v1\nid: x\n")
    result = runner.invoke(app, ["export", str(broken), "-f", "v2", "-o", str(tmp_path / "x")])
    assert result.exit_code == 1 and "name" in result.stderr
    persona = F.write(tmp_path / "p.yaml",
                      "schema: personae/v1\nid: p\nname: P\navatar: face.jpg\n")
    F.write(tmp_path / "face.jpg", b"\xff\xd8\xff not a png")
    result = runner.invoke(app, ["export", str(persona), "-f", "png",
                                 "-o", str(tmp_path / "p.png")])
    assert result.exit_code == 1 and "is not a PNG" in result.stderr
    assert not (tmp_path / "p.png").exists() and not out.exists()


def test_avatar_is_relative_to_the_persona_file(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    F.write(tmp_path / "img" / "face.png", F.image())
    persona = F.write(tmp_path / "p.yaml", "schema: personae/v1\nid: p\nname: P\n"
                      "avatar: img/face.png\n")
    assert load_persona(persona).avatar == (tmp_path / "img" / "face.png").resolve()
    missing = F.write(tmp_path / "q.yaml", "schema: personae/v1\nid: q\nname: Q\n"
                      "avatar: img/nope.png\n")
    result = runner.invoke(personae_app, ["validate", str(missing)])
    assert result.exit_code == 1
    assert "q.yaml:4: avatar='img/nope.png': avatar image not found" in result.output


def test_creator_notes_never_reach_the_prompt(app: typer.Typer, tmp_path: Path) -> None:
    card = F.write(tmp_path / "wren.json", F.v2_card())
    out = tmp_path / "wren.yaml"
    assert runner.invoke(app, ["import", str(card), "-o", str(out)]).exit_code == 0
    result = runner.invoke(personae_app, ["prompt", str(out), "--message",
                                          "tell me about the lighthouse and the smugglers"])
    assert result.exit_code == 0, result.output
    assert "lighthouse keeper on a cold northern coast" in result.output
    assert "CREATOR-NOTES-SECRET" not in result.output
    assert "Keep replies short." not in result.output  # post_history_instructions: kept only
