"""Scenario files: validation with file:line errors, the JSON Schema, scripted replies."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from personae.errors import ConfigError
from personae.evals.loading import check_suite, load_suite, load_suites
from personae.evals.scenario import Setup, Suite, suite_json_schema
from personae.evals.scripted import load_scripted

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "examples" / "scenarios"
EXAMPLES = sorted(SCENARIOS.glob("*.yaml"))


def _write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_example_suite_loads_and_names_an_existing_persona() -> None:
    assert {p.stem for p in EXAMPLES} == {"innkeeper", "guide", "companion"}
    suites = load_suites(EXAMPLES)
    for suite in suites:
        assert suite.persona_path().is_file(), suite.source
        assert suite.scenarios


def test_example_suites_validate_against_the_exported_schema() -> None:
    schema = suite_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in EXAMPLES:
        jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema)


def test_the_schema_rejects_an_unknown_expectation() -> None:
    data = {"persona": "p.yaml", "scenarios": [
        {"id": "a", "turns": [{"user": "hi", "expect": {"contians": "x"}}]}]}
    with pytest.raises(jsonschema.ValidationError, match="contians"):
        jsonschema.validate(data, suite_json_schema())


def test_problems_are_reported_with_file_line_field_and_fix(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
schema: personae-scenarios/v1
persona: p.yaml
scenarios:
  - id: Room
    turns:
      - user: hi
        expect:
          max_sentences: three
          contians: silver
          language: it
      - expect: {}
""")
    suite, problems = check_suite(path)
    assert suite is None
    shown = [str(p) for p in problems]
    assert f"{path}:4: scenarios.0.id='Room': must be lowercase" in shown[0]
    assert any(s.startswith(f"{path}:8: scenarios.0.turns.0.expect.max_sentences='three': "
                            "expected a whole number") for s in shown)
    assert any(f"{path}:9:" in s and "did you mean 'contains'?" in s for s in shown)
    assert any(f"{path}:10:" in s and "use one of de, en, es, fr, zh" in s for s in shown)
    assert any(f"{path}:11: scenarios.0.turns.1:" in s and "needs `user`" in s for s in shown)
    with pytest.raises(ConfigError, match="did you mean 'contains'"):
        load_suite(path)


def test_a_hash_in_unquoted_text_is_caught(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
persona: p.yaml
scenarios:
  - id: a
    turns:
      - user: Where? # a real comment
      - user: Ask in #help please
""")
    _, problems = check_suite(path)
    assert [p.line for p in problems] == [6]
    assert "'#help please', was dropped" in problems[0].message


def test_single_items_stand_for_lists_and_setups_merge(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
persona: ../p.yaml
setup: {user: ann, world: {weather: rain}, memories: [Ann likes ale]}
scenarios:
  - id: a
    setup: {world: {time_of_day: night}, memories: [{text: Ann has a dog, importance: 7}]}
    turns:
      - user: hi
        expect: {contains: ale, action: {name: rent_room, arguments: {nights: 1}}}
""")
    suite = load_suite(path)
    expect = suite.scenarios[0].turns[0].expect
    assert expect.contains == ["ale"]
    assert [a.name for a in expect.action] == ["rent_room"]
    merged = suite.setup.merged(suite.scenarios[0].setup)
    assert merged.user == "ann"
    assert merged.world == {"weather": "rain", "time_of_day": "night"}
    assert [(m.text, m.importance) for m in merged.memories] == [
        ("Ann likes ale", 5), ("Ann has a dog", 7)]
    assert suite.persona_path() == tmp_path / ".." / "p.yaml"
    assert Setup().merged(None) == Setup()


def test_duplicate_scenario_ids_are_refused_within_and_across_files(tmp_path: Path) -> None:
    one = _write(tmp_path, "persona: p.yaml\nscenarios:\n"
                 "  - {id: a, turns: [{user: hi}]}\n  - {id: a, turns: [{user: yo}]}\n")
    with pytest.raises(ConfigError, match="'a' is used twice"):
        load_suite(one)
    first = _write(tmp_path, "persona: p.yaml\nscenarios: [{id: a, turns: [{user: hi}]}]\n",
                   "first.yaml")
    second = _write(tmp_path, "persona: p.yaml\nscenarios: [{id: a, turns: [{user: hi}]}]\n",
                    "second.yaml")
    with pytest.raises(ConfigError, match=r"scenarios\.0\.id='a': is also a scenario id in"):
        load_suites([first, second])


def test_missing_and_malformed_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_suite(tmp_path / "nope.yaml")
    bad = _write(tmp_path, "persona: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_suite(bad)
    empty = _write(tmp_path, "")
    with pytest.raises(ConfigError, match="the file is empty; start with `schema:"):
        load_suite(empty)
    assert isinstance(Suite.model_json_schema(), dict)


def test_scripted_replies_cover_every_example_scenario_the_model_answers() -> None:
    scripted = load_scripted(SCENARIOS / "scripted" / "replies.yaml")
    for suite in load_suites(EXAMPLES):
        for scenario in suite.scenarios:
            assert scenario.id in scripted.replies, scenario.id


def test_scripted_reply_becomes_tool_calls_then_text(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
replies:
  a:
    - text: Here you are.
      calls: [{name: rent_room, arguments: {nights: 2}}]
      emotion: happy
    - null
    - Plain.
  b: {3: Third.}
judge:
  a: {1: {passed: true, reason: fine}}
""", "replies.yaml")
    scripted = load_scripted(path)
    first = scripted.reply("a", 1)
    assert first is not None
    calls, text = first.messages("x")
    assert [c["name"] for c in calls.tool_calls] == ["rent_room", "show_emotion"]
    assert text.text == "Here you are."
    assert scripted.reply("a", 2) is None
    plain = scripted.reply("a", 3)
    assert plain is not None and plain.text == "Plain."
    assert scripted.reply("b", 3) is not None and scripted.reply("b", 1) is None
    verdict = scripted.verdict("a", 1)
    assert verdict is not None and verdict.passed
    broken = _write(tmp_path, "replies:\n  a:\n    - {txt: oops}\n", "broken.yaml")
    message = r"broken\.yaml:\d: replies\.a\.1\.txt: is not a known field; did you mean .text.\?"
    with pytest.raises(ConfigError, match=message):
        load_scripted(broken)
