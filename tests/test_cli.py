"""The `personae` CLI, driven as a user drives it: a subprocess in pipe mode, and CliRunner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personae.cli import app
from personae.personas.loading import load_persona

ROOT = Path(__file__).resolve().parent.parent
INNKEEPER = ROOT / "examples" / "personas" / "innkeeper.yaml"
runner = CliRunner()


@pytest.mark.slow
def test_chat_pipe_mode_answers_each_line(tmp_path: Path) -> None:
    persona = load_persona(INNKEEPER)
    question, answer = persona.examples[0].user, persona.examples[0].reply
    env = {**os.environ, "PERSONAE_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "personae.cli", "chat", str(INNKEEPER), "--json"],
        input=f"{question}\n\nWhat is the airspeed of a quantum spreadsheet?\n",
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2  # the empty line is skipped, one reply per message
    first, second = (json.loads(line) for line in lines)
    assert first["text"] == answer
    assert first["model"] == "offline" and "offline" in first["flags"]
    assert second["text"] in persona.fallbacks
    # The conversation was stored: a second process sees the same history file.
    assert (tmp_path / "conversations.sqlite").exists()


@pytest.mark.slow
def test_chat_plain_pipe_prints_one_line_per_reply(tmp_path: Path) -> None:
    env = {**os.environ, "PERSONAE_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "personae.cli", "chat", str(INNKEEPER)],
        input="hello\nthanks, goodbye\n", capture_output=True, text=True, env=env,
        timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 2


def test_chat_with_a_broken_file_says_why(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: personae/v1\nid: x\nname: X\ngreetigns: [hi]\n", encoding="utf-8")
    result = runner.invoke(app, ["chat", str(bad)], input="hi\n")
    assert result.exit_code == 1
    assert "greetigns" in result.output and "greetings" in result.output


def test_chat_with_a_bad_model_spec_says_why(tmp_path: Path) -> None:
    result = runner.invoke(app, ["chat", str(INNKEEPER), "--model", "nosuch:thing"], input="hi\n")
    assert result.exit_code == 1
    assert "nosuch" in result.output and "openai" in result.output


def test_validate_good_and_bad(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: personae/v1\nid: x\nname: X\nspeech:\n  max_sentences: three\n",
                   encoding="utf-8")
    ok = runner.invoke(app, ["validate", str(INNKEEPER)])
    assert ok.exit_code == 0 and "1 ok, 0 with problems" in ok.output
    mixed = runner.invoke(app, ["validate", str(INNKEEPER), str(bad), "--json"])
    assert mixed.exit_code == 1
    report = json.loads(mixed.stdout)
    assert report["ok"] is False
    assert [f["ok"] for f in report["files"]] == [True, False]
    problem = report["files"][1]["problems"][0]
    assert problem["field"] == "speech.max_sentences" and problem["line"] == 5


def test_schema_is_json_schema_and_checked_in_copy_is_current() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "schema" in schema["properties"] and "id" in schema["required"]
    checked_in = json.loads((ROOT / "personae-v1.schema.json").read_text(encoding="utf-8"))
    assert checked_in == schema, "run: personae schema > personae-v1.schema.json"


def test_prompt_prints_prompt_and_explanation() -> None:
    result = runner.invoke(app, ["prompt", str(INNKEEPER), "--message", "hello"])
    assert result.exit_code == 0
    prompt, _, explanation = result.stdout.partition("---- explain ----")
    assert "Brenna" in prompt or load_persona(INNKEEPER).name in prompt
    assert "tokens" in explanation
    as_json = runner.invoke(app, ["prompt", str(INNKEEPER), "--message", "hello", "--json"])
    assert json.loads(as_json.stdout)["text"] == prompt.rstrip("\n")
