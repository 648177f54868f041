"""Bad files get a clear error naming the file and the problem, and leave nothing behind."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import card_fixtures as F
import pytest

from personae.errors import CardError, ConfigError
from personae.personas.cards import card_to_persona, export_card, import_card, import_file

CASES = [
    "not a card", "broken json", "json list", "unknown spec", "no name", "broken base64",
    "payload not json", "encrypted payload", "truncated png", "png without card",
    "encrypted zip", "zip without card", "zip slip", "not a zip", "unknown format", "empty",
    "not utf8",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_file_error_names_file_and_problem(case: str, tmp_path: Path) -> None:
    path, pattern = F.broken_files(tmp_path / "in")[case]
    assets = tmp_path / "assets"
    with pytest.raises(CardError, match=pattern) as caught:
        import_file(path, assets_dir=assets)
    error = caught.value
    assert isinstance(error, ConfigError)
    assert error.path == path and str(error).startswith(f"{path}: ")
    assert error.fix and "; " in str(error)
    assert not assets.exists()  # nothing written for a bad file


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="file not found"):
        import_card(tmp_path / "nope.json")


def test_a_directory_is_not_a_card(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="is a directory"):
        import_card(tmp_path)


def test_unknown_export_format(tmp_path: Path) -> None:
    persona = card_to_persona(F.minimal_v3()).persona
    with pytest.raises(CardError, match="unknown export format 'gif'"):
        export_card(persona, "gif", tmp_path / "x.gif")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    persona = card_to_persona(F.v2_card()).persona
    target = tmp_path / "taken"
    target.mkdir()  # a directory where the file should go: the rename fails
    with pytest.raises(CardError, match="cannot be written"):
        export_card(persona, "v2", target)
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]
    assert list(target.iterdir()) == []


def test_existing_output_survives_a_failed_export(tmp_path: Path) -> None:
    out = F.write(tmp_path / "card.png", b"previous content")
    persona = card_to_persona(F.minimal_v3()).persona.model_copy(
        update={"avatar": tmp_path / "missing.png"})
    with pytest.raises(CardError):
        export_card(persona, "png", out)
    assert out.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.png"]


def test_charx_with_missing_assets_folder(tmp_path: Path) -> None:
    path = F.write(tmp_path / "wren.charx", F.charx(F.v3_card()))
    persona = import_card(path, assets_dir=tmp_path / "assets").persona
    (tmp_path / "assets" / "assets" / "other" / "audio" / "hello.bin").unlink()
    out = tmp_path / "out.charx"
    with pytest.raises(CardError, match=r"hello\.bin: asset cannot be read"):
        export_card(persona, "charx", out)
    assert not out.exists()


def test_asset_missing_from_the_archive_is_a_warning(tmp_path: Path) -> None:
    card = F.v3_card()
    archive = F.charx(card)
    path = F.write(tmp_path / "w.charx", archive)
    result = import_card(path, assets_dir=tmp_path / "a")
    assert not any("is not in the archive" in w for w in result.report.warnings)
    card["data"]["assets"] = [{"type": "icon", "uri": "embeded://nowhere.png", "name": "main",
                               "ext": "png"}]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        out.writestr("card.json", json.dumps(card))
    path = F.write(tmp_path / "missing.charx", buffer.getvalue())
    result = import_card(path, assets_dir=tmp_path / "b")
    assert any("'embeded://nowhere.png' is not in the archive" in w
               for w in result.report.warnings)
    assert result.persona.avatar is None
