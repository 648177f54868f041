"""`personae memory ...` through the CLI runner, on a real store under PERSONAE_HOME."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personae.cli import app

ROOT = Path(__file__).resolve().parent.parent
INNKEEPER = ROOT / "examples" / "personas" / "innkeeper.yaml"
runner = CliRunner()


def _json(args: list[str]) -> object:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_memory_commands_end_to_end(tmp_path: Path) -> None:
    lore = tmp_path / "lore"
    lore.mkdir()
    (lore / "mill.md").write_text(
        "# The mill\n\nThe old water mill on the Amberwash grinds barley for the whole valley.\n",
        encoding="utf-8",
    )
    report = _json(["memory", "ingest", str(INNKEEPER), str(lore)])
    assert isinstance(report, dict) and report["added"] >= 1
    again = _json(["memory", "ingest", str(INNKEEPER), str(lore)])
    assert isinstance(again, dict) and again["added"] == 0  # idempotent

    found = _json(["memory", "recall", str(INNKEEPER), "who grinds the barley?", "--user", "ann"])
    assert "water mill" in json.dumps(found)

    stats = _json(["memory", "stats", str(INNKEEPER)])
    assert isinstance(stats, dict)

    listed = _json(["memory", "list", str(INNKEEPER), "--user", "ann"])
    assert listed == []  # lore is shared, nothing of Ann's own yet

    exported = _json(["memory", "export", str(INNKEEPER), "--user", "ann"])
    assert isinstance(exported, dict) and exported["scope"] == {"user": "ann"}

    erased = _json(["memory", "forget", str(INNKEEPER), "--user", "ann", "--yes"])
    assert isinstance(erased, dict) and erased["memories_erased"] == 0


def test_memory_list_rejects_an_unknown_kind() -> None:
    result = runner.invoke(app, ["memory", "list", str(INNKEEPER), "--kind", "dreams"])
    assert result.exit_code == 1
    assert "episode, fact, lore, reflection" in result.output
