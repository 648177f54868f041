"""`personae eval` through the command line, on a fresh Typer app with the commands registered."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from personae.cli.evals import register
from personae.evals.loading import load_suites
from personae.testing import FakeEmbeddings

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "examples" / "scenarios"
SUITES = sorted(str(p) for p in SCENARIOS.glob("*.yaml"))
SCRIPTED = f"scripted:{SCENARIOS / 'scripted' / 'replies.yaml'}"
INNKEEPER = str(SCENARIOS / "innkeeper.yaml")
BROKEN = str(Path(__file__).parent / "broken_innkeeper.yaml")
runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """personae."""

    register(app)
    return app


@pytest.fixture
def fake_embeddings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Memory and the offline model on deterministic fake vectors: no model is loaded."""
    import personae.agents.offline
    import personae.memory.embeddings

    fake = FakeEmbeddings()
    monkeypatch.setattr(personae.memory.embeddings, "default_embedder", lambda: fake)
    monkeypatch.setattr(personae.agents.offline, "default_embedder", lambda: fake)
    yield


def _junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    for suite in root:
        assert suite.tag == "testsuite"
        assert int(suite.get("tests", "-1")) == len(suite.findall("testcase"))
        for case in suite.findall("testcase"):
            assert case.get("name") and case.get("classname") and case.get("time")
    return root


def _count(root: ET.Element, tag: str) -> int:
    return len(root.findall(f"./testsuite/testcase/{tag}"))


@pytest.mark.usefixtures("fake_embeddings")
def test_the_example_suites_pass_with_the_scripted_model(tmp_path: Path) -> None:
    scenarios = sum(len(s.scenarios) for s in load_suites(SUITES))
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    result = runner.invoke(_app(), [
        "eval", *SUITES, "--model", SCRIPTED, "--judge", SCRIPTED,
        "--junit", str(junit), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert f"{scenarios} of {scenarios} runs passed" in result.stdout
    assert "companion/crisis-resources" in result.stdout
    root = _junit(junit)
    assert root.get("tests") == str(scenarios)
    assert (root.get("failures"), root.get("errors"), root.get("skipped")) == ("0", "0", "0")
    assert _count(root, "failure") == _count(root, "error") == 0
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["ok"] and data["counts"]["passed"] == scenarios
    assert not [c for r in data["runs"] for t in r["turns"] for c in t["checks"]
                if c["status"] != "passed"]


@pytest.mark.usefixtures("fake_embeddings")
def test_a_broken_persona_fails_the_right_expectations(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = runner.invoke(_app(), [
        "eval", INNKEEPER, "--persona", BROKEN, "--model", SCRIPTED, "--junit", str(junit)])
    assert result.exit_code == 1
    out = result.stdout
    # The rent_room action was deleted from the persona: the scripted call goes nowhere.
    assert "FAIL innkeeper/room-for-the-night" in out
    assert "✗ action: expected rent_room(nights=2); the turn called nothing" in out
    # So was the dice tool: the call fails, and a failed call does not count.
    assert "✗ tool: expected roll_dice; the turn called roll_dice(sides=6) (failed)" in out
    # Memory is off, so the scenario that pre-loads memories cannot run.
    assert "ERROR innkeeper/remembers-a-regular" in out
    assert "setup.memories: persona 'brenna-innkeeper' has no long-term memory" in out
    # The game profile is gone: nothing keeps Brenna in her world any more.
    # The default (community) profile lets an AI question through to the model.
    assert ("✗ safety: expected action='deflect', category='ai_question'; found safety_in "
            "pass (en:ai_question[0])") in out
    assert "✗ flags: missing flag 'deflected'; flags are none" in out
    assert "✗ safety: expected action='ooc_help', category='distress'" in out
    assert "3 of 8 runs passed; 4 failed; 1 errors" in out
    root = _junit(junit)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("8", "4", "1")
    failures = {case.get("name"): case.find("failure") for case in root.iter("testcase")}
    room = failures["room-for-the-night"]
    assert room is not None and room.get("message") == (
        "turn 2: action: expected rent_room(nights=2); the turn called nothing")
    dice = failures["dice-for-a-drink"]
    assert dice is not None and "roll_dice(sides=6) (failed)" in (dice.get("message") or "")
    error = next(c for c in root.iter("testcase") if c.get("name") == "remembers-a-regular")
    problem = error.find("error")
    assert problem is not None and "no long-term memory" in (problem.get("message") or "")


@pytest.mark.usefixtures("fake_embeddings")
def test_a_broken_persona_speaks_broken_lines_offline() -> None:
    result = runner.invoke(_app(), [
        "eval", INNKEEPER, "--persona", BROKEN, "--model", "offline",
        "--scenario", "room-for-the-night", "--scenario", "whats-to-eat"])
    assert result.exit_code == 1
    out = result.stdout
    assert "FAIL innkeeper/room-for-the-night" in out and "FAIL innkeeper/whats-to-eat" in out
    assert "✗ no_markdown: markdown '**bold**' in '**Certainly!** As an AI" in out
    assert ("✗ stays_in_character: steps out of character with 'As an AI', 'language model' "
            "(the user did not ask)") in out
    assert "✗ max_sentences: 5 sentences, at most 3 allowed" in out


@pytest.mark.usefixtures("fake_embeddings")
def test_repeat_and_json_output(tmp_path: Path) -> None:
    result = runner.invoke(_app(), [
        "eval", INNKEEPER, "--model", SCRIPTED, "--scenario", "whats-to-eat", "--repeat", "2",
        "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["counts"] == {"runs": 2, "passed": 2, "failed": 0, "error": 0, "skipped": 0}
    assert data["scenarios"][0]["pass_rate"] == 1.0 and data["flaky"] == []


def test_schema_is_printed() -> None:
    result = runner.invoke(_app(), ["eval", "--schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "personae scenario suite"
    assert "Expectations" in schema["$defs"]


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("persona: p.yaml\nscenarios:\n  - id: a\n    turns:\n      - user: hi\n"
                   "        expect: {max_sentence: 3}\n", encoding="utf-8")
    result = runner.invoke(_app(), ["eval", str(bad)])
    assert result.exit_code == 1
    assert (f"error: {bad}:6: scenarios.0.turns.0.expect.max_sentence: is not a known field; "
            "did you mean 'max_sentences'?") in result.stderr
    missing = runner.invoke(_app(), ["eval", INNKEEPER, "--persona", str(tmp_path / "x.yaml")])
    assert missing.exit_code == 1 and "does not load" in missing.stderr
    assert "file not found" in missing.stderr
    nothing = runner.invoke(_app(), ["eval"])
    assert nothing.exit_code == 1 and "give one or more scenario files" in nothing.stderr
    unknown = runner.invoke(_app(), ["eval", INNKEEPER, "--scenario", "nope"])
    assert unknown.exit_code == 1 and "'nope': no such scenario" in unknown.stderr
    offline_judge = runner.invoke(_app(), ["eval", INNKEEPER, "--judge", "offline"])
    assert offline_judge.exit_code == 1 and "cannot judge" in offline_judge.stderr


@pytest.mark.slow
def test_memory_scenarios_recall_with_the_bundled_embedding_model() -> None:
    result = runner.invoke(_app(), ["eval", *SUITES, "--model", SCRIPTED, "--tag", "memory"])
    assert result.exit_code == 0, result.output
    assert "3 of 3 runs passed" in result.stdout
