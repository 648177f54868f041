"""Loading persona files: the examples load, and every broken file says what to fix, where."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import personae.personas as personas
from personae.errors import PersonaFileError, Problem
from personae.personas import Persona, load_persona, validate_files

BROKEN = Path(__file__).resolve().parent / "broken"
EXAMPLE_NAMES = ["innkeeper", "guide", "companion"]


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_persona_loads_with_enough_lines_for_the_offline_model(
    examples_dir: Path, name: str
) -> None:
    path = examples_dir / f"{name}.yaml"
    persona = load_persona(path)

    assert isinstance(persona, Persona)
    assert 12 <= len(persona.examples) <= 20
    assert len(persona.greetings) >= 3
    assert len(persona.fallbacks) >= 4
    assert persona.lore
    assert len({e.user.lower() for e in persona.examples}) == len(persona.examples)
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=../../personae-v1.schema.json"
    assert validate_files([path]) == {path: []}


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_authored_lines_obey_their_own_speech_rules(examples_dir: Path, name: str) -> None:
    persona = load_persona(examples_dir / f"{name}.yaml")
    rules = persona.speech
    lines = persona.greetings + persona.fallbacks + [e.reply for e in persona.examples]
    for line in lines:
        sentences = _sentences(line)
        if rules.max_sentences is not None:
            assert len(sentences) <= rules.max_sentences, line
        if rules.max_words_per_sentence is not None:
            assert max(len(s.split()) for s in sentences) <= rules.max_words_per_sentence, line
        if rules.plain_text:
            assert not re.search(r"[*_#`\[\]]", line), line


def test_innkeeper_is_a_game_npc_with_actions_tools_and_lore_from_its_lore_file(
    examples_dir: Path,
) -> None:
    brenna = load_persona(examples_dir / "innkeeper.yaml")

    assert brenna.safety.profile == "game"
    assert set(brenna.tools) == {"roll_dice", "current_time"}
    actions = {a.name: a.parameters for a in brenna.actions}
    assert actions["give_item"]["properties"]["quantity"]["maximum"] == 5
    assert "ale" in actions["give_item"]["properties"]["item"]["enum"]
    nights = actions["rent_room"]["properties"]["nights"]
    assert (nights["type"], nights["minimum"], nights["maximum"]) == ("integer", 1, 7)
    assert {e.emotion for e in brenna.examples} - {None} <= set(brenna.emotions)
    assert {"happy", "wary", "angry", "neutral"} <= set(brenna.emotions)
    keys = {k.lower() for entry in brenna.lore for k in entry.keys}
    assert {"bell", "menu", "room", "blacksmith"} <= keys  # the last one comes from the lore file
    inline = [e for e in brenna.lore if "forge" in e.content]
    assert brenna.lore.index(inline[0]) > 3, "lore file entries come after inline entries"


def test_guide_and_companion_profiles(examples_dir: Path) -> None:
    guide = load_persona(examples_dir / "guide.yaml")
    rosie = load_persona(examples_dir / "companion.yaml")

    assert guide.safety.profile == "community"
    assert any("#help" in e.content for e in guide.lore)
    assert rosie.safety.profile == "companion"
    assert rosie.safety.avoid_topics
    assert rosie.speech.max_sentences == 3
    assert rosie.speech.max_words_per_sentence == 15
    assert rosie.speech.plain_text is True
    assert rosie.memory.enabled is True


# (file, fragments its message must contain)
BROKEN_CASES = [
    ("wrong_type.yaml",
     ["wrong_type.yaml:7: speech.max_sentences='three': expected a whole number",
      "write a number like 3"]),
    ("missing_id.yaml", ["missing_id.yaml:2: id: is required but missing", "`id: "]),
    ("missing_name.yaml",
     ["missing_name.yaml:1: name: is required but missing", "`name: ",
      "missing_name.yaml:7: examples.1.reply: is required but missing"]),
    ("unknown_top.yaml",
     ["unknown_top.yaml:4: greeting: is not a known field", "did you mean 'greetings'?"]),
    ("unknown_nested.yaml",
     ["unknown_nested.yaml:5: speech.max_sentence: is not a known field",
      "did you mean 'max_sentences'?",
      "unknown_nested.yaml:8: style.audiance: is not a known field", "did you mean 'audience'?"]),
    ("bad_indent.yaml",
     ["bad_indent.yaml:6:", "indentation", "line 6, column 6", "indent with spaces",
      "align `content:` under `keys:`"]),
    ("tabs.yaml", ["tabs.yaml:5:", "tab", "line 5, column 1", "indent with spaces"]),
    ("unclosed_quote.yaml",
     ["unclosed_quote.yaml:3:", "quote", "never closed", "line 3, column 7", 'close it with "']),
    ("colon_in_value.yaml", ["colon_in_value.yaml:4:", "': '", "put the whole value in quotes"]),
    ("duplicate_key.yaml", ["duplicate_key.yaml:5: name: appears twice (first on line 3)"]),
    ("bad_model_spec.yaml",
     ["bad_model_spec.yaml:5: model.spec='gpt4': is not a model spec", "'provider:model'"]),
    ("bad_fallback_spec.yaml",
     ["bad_fallback_spec.yaml:8: model.fallbacks.1='gpt 4o': is not a model spec",
      "'provider:model'"]),
    ("temperature.yaml",
     ["temperature.yaml:5: model.temperature=3.5: is outside 0.0–2.0",
      "use a value from 0.0 to 2.0, or delete the line to use the default 0.7"]),
    ("action_not_json_schema.yaml",
     ["action_not_json_schema.yaml:7: actions.0.parameters:", "is not a valid JSON Schema",
      "properties/item/type", "type: object"]),
    ("action_not_object.yaml",
     ["action_not_object.yaml:7: actions.0.parameters:", "`type: object`"]),
    ("duplicate_actions.yaml",
     ["duplicate_actions.yaml:9: actions.2.name='give_item': actions.0 already has this name",
      "give each host action its own name"]),
    ("wrong_schema.yaml",
     ["wrong_schema.yaml:1: schema='personae/v2': is not a supported schema version",
      "`schema: personae/v1`"]),
    ("bad_id.yaml",
     ["bad_id.yaml:2: id='Mira The Innkeeper': must be lowercase", "`id: mira-the-innkeeper`"]),
    ("lore_no_keys.yaml",
     ["lore_no_keys.yaml:7: lore.1: a lore entry needs `keys`", "`constant: true`"]),
    ("missing_lore_file.yaml",
     ["missing_lore_file.yaml:5: lore_files.0='lore/nowhere.yaml': lore file not found",
      str(BROKEN / "lore" / "nowhere.yaml"), "relative to the persona file"]),
    ("bad_lore_file.yaml",
     ["bad_entries.yaml:5: entries.1.contents: is not a known field", "did you mean 'content'?",
      "bad_entries.yaml:4: entries.1.content: is required but missing"]),
    ("empty.yaml", ["empty.yaml: (file): the file is empty", "`schema: personae/v1`"]),
    ("hash_in_text.yaml",
     ["hash_in_text.yaml:5: greetings.0='Welcome! Ask in': the text after it, "
      "'#help if you are stuck.  # a real comment after is fine', was dropped",
      "put the whole value in double quotes"]),
    ("top_list.yaml", ["top_list.yaml:1: (file): the file holds a list, not a mapping"]),
    ("invalid.json",
     ["invalid.json:5: (file): invalid JSON at line 5, column 3", "add a comma"]),
    ("bad_type.json",
     ["bad_type.json:6: speech.plain_text='sometimes': expected true or false"]),
    ("bad_language.yaml",
     ["bad_language.yaml:5: speech.language='EN_us': is not a BCP 47 language tag",
      "`language: en-us`"]),
    ("unknown_emotion.yaml",
     ["unknown_emotion.yaml:11: examples.1.emotion='angry': is not one of `emotions`",
      "add 'angry' to `emotions`"]),
    ("not_utf8.yaml", ["not_utf8.yaml:4: (file): is not UTF-8 text", "save the file as UTF-8"]),
    ("wrong_extension.txt",
     ["wrong_extension.txt: (file): has extension '.txt'", "wrong_extension.yaml"]),
]


@pytest.mark.parametrize(("name", "fragments"), BROKEN_CASES, ids=[c[0] for c in BROKEN_CASES])
def test_broken_file_names_file_line_field_and_fix(name: str, fragments: list[str]) -> None:
    with pytest.raises(PersonaFileError) as caught:
        load_persona(BROKEN / name)

    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message
    assert "Traceback" not in message
    assert "Input should be" not in message, "raw pydantic wording leaked"
    assert all(isinstance(p, Problem) and p.message and p.fix for p in caught.value.problems)


def test_every_broken_fixture_has_a_case() -> None:
    fixtures = {p.name for p in BROKEN.iterdir() if p.is_file()}
    assert fixtures - {"several.yaml"} == {name for name, _ in BROKEN_CASES}


def test_a_file_with_several_mistakes_reports_all_of_them_in_line_order() -> None:
    with pytest.raises(PersonaFileError) as caught:
        load_persona(BROKEN / "several.yaml")

    problems = caught.value.problems
    assert [(p.line, p.field) for p in problems] == [
        (2, "id"),
        (6, "speech.max_sentences"),
        (8, "greting"),
        (11, "model.temperature"),
        (13, "actions.0.description"),
        (14, "actions.0.parameters"),
    ]
    assert problems[1].value == "three"
    assert problems[2].value is None  # an unknown key's value is not echoed
    # Only the bad values are quoted, never the rest of the file.
    assert "secret recipe" not in str(caught.value)


def test_problem_carries_path_line_field_and_value() -> None:
    [problem] = validate_files([BROKEN / "temperature.yaml"])[BROKEN / "temperature.yaml"]

    assert problem.path == BROKEN / "temperature.yaml"
    assert (problem.line, problem.field, problem.value) == (5, "model.temperature", 3.5)
    assert problem.as_dict()["line"] == 5


def test_validate_files_on_good_and_bad_files(examples_dir: Path, tmp_path: Path) -> None:
    good = examples_dir / "guide.yaml"
    missing = tmp_path / "nowhere.yaml"
    results = validate_files([good, str(BROKEN / "unknown_top.yaml"), missing])

    assert list(results) == [good, BROKEN / "unknown_top.yaml", missing]
    assert results[good] == []
    assert [p.field for p in results[BROKEN / "unknown_top.yaml"]] == ["greeting"]
    [not_found] = results[missing]
    assert "file not found" in not_found.message
    assert str(missing) in not_found.message


def test_json_persona_with_lore_files_loads_inline_lore_first(tmp_path: Path) -> None:
    (tmp_path / "lore").mkdir()
    (tmp_path / "lore" / "town.yml").write_text(
        "- keys: [bridge]\n  content: The bridge is old.\n", encoding="utf-8"
    )
    (tmp_path / "lore" / "more.json").write_text(
        json.dumps({"entries": [{"constant": True, "content": "It rains a lot."}]}),
        encoding="utf-8",
    )
    (tmp_path / "mira.json").write_text(
        json.dumps({
            "schema": "personae/v1", "id": "mira", "name": "Mira",
            "lore": [{"keys": ["ale"], "content": "Dark ale."}],
            "lore_files": ["lore/town.yml", "lore/more.json"],
        }, indent="\t"),
        encoding="utf-8",
    )

    mira = load_persona(tmp_path / "mira.json")

    assert [e.content for e in mira.lore] == ["Dark ale.", "The bridge is old.", "It rains a lot."]


def test_json_persona_problems_have_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "mira.json"
    path.write_text(
        json.dumps({"id": "mira", "name": "Mira", "model": {"temperature": 7}}, indent="\t"),
        encoding="utf-8",
    )

    with pytest.raises(PersonaFileError, match=r"mira\.json:5: model\.temperature=7: is outside"):
        load_persona(path)


def test_a_missing_persona_file_is_a_persona_file_error(tmp_path: Path) -> None:
    with pytest.raises(PersonaFileError, match="file not found"):
        load_persona(tmp_path / "ghost.yaml")


def test_package_exports_are_importable() -> None:
    for name in personas.__all__:
        assert getattr(personas, name) is not None
    assert {"Persona", "load_persona", "validate_files", "LoreEntry"} <= set(personas.__all__)
