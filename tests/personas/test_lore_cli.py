"""`personae prompt` shows the lore trace: several messages, scan depth, recursion, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personae.cli import app

runner = CliRunner()

PERSONA = """\
schema: personae/v1
id: mira
name: Mira
description: Keeper of the Lantern, friend of {{user}}.
lorebook:
  scan_depth: 2
  recursive_scanning: true
lore:
  - name: mill
    keys: [mill]
    content: The old mill burned down; a dragon was seen there.
  - name: dragon
    keys: [dragon]
    content: The dragon Vex sleeps under Mount Ash.
  - name: ale
    keys: [ale]
    content: "{{char}} brews a dark ale."
    position: before_char
"""


@pytest.fixture
def persona_file(tmp_path: Path) -> Path:
    path = tmp_path / "mira.yaml"
    path.write_text(PERSONA, encoding="utf-8")
    return path


def test_prompt_explains_lore_over_several_messages(persona_file: Path) -> None:
    result = runner.invoke(app, [
        "prompt", str(persona_file),
        "--message", "Any ale?", "--message", "The old mill?", "--message", "Thanks.",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    prompt, _, explanation = result.stdout.partition("---- explain ----")
    assert "The dragon Vex sleeps under Mount Ash." in prompt
    assert "Mira brews a dark ale." not in prompt  # message 1 is beyond scan depth 2
    assert "Lore: 2 of 3 entries active at message 3" in explanation
    assert "+ mill: key 'mill' in message 2" in explanation
    assert "+ dragon: key 'dragon' in entry 'mill' content (recursion round 1)" in explanation
    assert "- ale: no key matched in the last 2 messages" in explanation


def test_prompt_json_has_the_lore_trace(persona_file: Path) -> None:
    result = runner.invoke(app, [
        "prompt", str(persona_file), "--message", "An ale, please.", "--user", "Ann", "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["lore"]["active"] == ["ale"]
    assert [(t["label"], t["active"]) for t in data["lore"]["trace"]] == [
        ("mill", False), ("dragon", False), ("ale", True),
    ]  # fmt: skip
    assert "Mira brews a dark ale." in data["text"]
    assert "friend of Ann." in data["text"]
    assert data["text"].index("Mira brews") < data["text"].index("Keeper of the Lantern")


def test_prompt_without_messages(persona_file: Path) -> None:
    result = runner.invoke(app, ["prompt", str(persona_file)])
    assert result.exit_code == 0, result.output
    assert "Lore: 0 of 3 entries active at message 0" in result.stdout
    assert "friend of User." in result.stdout
