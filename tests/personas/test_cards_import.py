"""Card import: every mapping, the report, ids, versions, hybrids, lorebooks and Eliza."""

from __future__ import annotations

import json
from pathlib import Path

import card_fixtures as F
import pytest

from personae.errors import CardError
from personae.personas.cards import (
    LorebookImport,
    card_to_persona,
    dump_lore_yaml,
    import_card,
    import_file,
    import_lorebook,
    lorebook_to_lore,
    persona_to_card,
)
from personae.personas.loading import load_persona
from personae.personas.model import Persona


@pytest.fixture
def wren() -> Persona:
    return card_to_persona(F.v2_card()).persona


def test_character_fields_map_to_persona_fields(wren: Persona) -> None:
    data = F.v2_card()["data"]
    assert wren.id == "wren-calloway"
    assert wren.name == "Wren Calloway"
    assert wren.description == data["description"].strip()
    assert wren.style.tone == data["personality"]
    assert wren.style.context == data["scenario"]
    assert wren.greetings == [data["first_mes"], *(g.strip() for g in data["alternate_greetings"])]
    assert wren.instructions == data["system_prompt"]
    assert wren.nickname is None


def test_macros_stay_as_written(wren: Persona) -> None:
    assert "{{user}}" in wren.style.context
    assert wren.instructions.startswith("{{original}}")
    assert "{{char}}" in wren.examples[1].reply


def test_mes_example_speaker_prefixes_become_examples(wren: Persona) -> None:
    pairs = [(e.user, e.reply) for e in wren.examples]
    assert pairs == [
        ("When do you light the lamp?",
         "At dusk, every day, storm or calm. The lamp does not care about my plans."),
        ("Who are you?",
         "I'm {{char}}, keeper of the Greyhook light. Mind the fourth stair, {{user}}."),
        ("Is the sea rough tonight?",
         "Rough enough to sink a careless boat.\nShe taps the barometer twice."),
    ]


@pytest.mark.parametrize("prefixes", [
    ("{{user}}", "{{char}}"), ("{{USER}}", "{{Char}}"), ("<user>", "<bot>"), ("<USER>", "<BOT>"),
    ("{{user}}", "Wren Calloway"), ("{{user}}", "wren"), ("{{ user }}", "WREN CALLOWAY"),
])
def test_speaker_prefixes_are_case_insensitive(prefixes: tuple[str, str]) -> None:
    user, char = prefixes
    card = F.minimal_v3()
    card["data"].update(name="Wren Calloway", mes_example=f"<start>\n{user}: Hi\n{char}: Hello.\n")
    [example] = card_to_persona(card).persona.examples
    assert (example.user, example.reply) == ("Hi", "Hello.")


def test_unpaired_example_turns_are_reported_not_invented() -> None:
    card = F.minimal_v3()
    card["data"]["mes_example"] = (
        "<START>\n{{char}}: I talk first.\n{{user}}: And I never get a reply.")
    result = card_to_persona(card)
    assert result.persona.examples == []
    assert any("2 turn(s) without a user/character pair" in n for n in result.report.notes)


def test_kept_fields_stay_in_card_verbatim(wren: Persona) -> None:
    data = F.v2_card()["data"]
    kept = wren.card["data"]
    for key in ("creator_notes", "post_history_instructions", "tags", "creator",
                "character_version", "x_unknown_field"):
        assert kept[key] == data[key]
    assert kept["extensions"] == data["extensions"]
    assert wren.card["spec"] == "chara_card_v2" and wren.card["spec_version"] == "2.0"


def test_creator_notes_never_reach_a_persona_text_field(wren: Persona) -> None:
    texts = json.dumps(wren.model_dump(exclude={"card"}), ensure_ascii=False)
    assert "CREATOR-NOTES-SECRET" not in texts
    assert "CREATOR-NOTES-SECRET" in json.dumps(wren.card)


def test_book_settings_map_to_lorebook(wren: Persona) -> None:
    book = wren.lorebook
    assert (book.name, book.description, book.scan_depth, book.token_budget,
            book.recursive_scanning) == ("Greyhook", "Places and people around the Greyhook "
                                         "light.", 6, 900, False)
    assert book.card["extensions"] == {"editor": "hand"}


def test_sillytavern_entry_maps_with_defaults_from_its_extensions(wren: Persona) -> None:
    light = wren.lore[0]
    assert light.name == "The light"
    assert light.keys == ["lighthouse", "Greyhook light"]
    assert light.position == "before_char" and light.order == 100 and light.enabled
    assert light.probability == 100 and light.logic == "and_any" and light.scan_depth is None
    assert light.case_sensitive is None and light.whole_words is None
    assert not light.regex  # SillyTavern's blanket use_regex: true
    assert light.card["id"] == 0
    assert light.card["extensions"]["display_index"] == 0  # not mapped: kept


def test_every_entry_field_maps(wren: Persona) -> None:
    smugglers = wren.lore[1]
    assert smugglers.keys == ["smuggler", "smugglers"]  # a comma-separated string
    assert smugglers.secondary_keys == ["cove", "night"]
    assert smugglers.logic == "and_all"  # selectiveLogic 3
    assert smugglers.name is None  # an empty comment is no name
    assert smugglers.order == 40 and smugglers.priority == 3
    assert smugglers.position == "after_char" and smugglers.case_sensitive is True
    assert smugglers.probability == 60
    assert (smugglers.group, smugglers.group_weight, smugglers.group_override) == (
        "secrets", 30, True)
    assert (smugglers.sticky, smugglers.cooldown, smugglers.delay) == (2, 3, 1)
    assert smugglers.scan_depth == 2 and smugglers.whole_words is False
    assert smugglers.exclude_recursion and smugglers.prevent_recursion
    assert not smugglers.delay_until_recursion

    harbour = wren.lore[2]
    assert harbour.name == "Harbour" and harbour.constant and not harbour.enabled
    assert harbour.regex and harbour.keys == ["harbour", "/docks?/i"]
    assert harbour.secondary_keys == []  # selective: false switches them off
    assert harbour.card["secondary_keys"] == ["boat"]  # ...but they are kept

    storm = wren.lore[4]
    assert storm.logic == "not_any" and storm.secondary_keys == ["summer"]
    assert storm.probability == 100  # useProbability: false
    assert storm.delay_until_recursion


@pytest.mark.parametrize(("code", "logic"), [(0, "and_any"), (1, "not_all"), (2, "not_any"),
                                             (3, "and_all")])
def test_selective_logic_codes(code: int, logic: str) -> None:
    card = F.minimal_v3()
    card["data"]["character_book"] = {"entries": [{
        "keys": ["a"], "secondary_keys": ["b"], "selective": True, "content": "c",
        "insertion_order": 1, "enabled": True, "extensions": {"selectiveLogic": code}}]}
    assert card_to_persona(card).persona.lore[0].logic == logic


def test_entry_without_content_is_kept_not_imported(wren: Persona) -> None:
    assert all(entry.content for entry in wren.lore)
    assert len(wren.lore) == 5
    kept = wren.lorebook.card["_roundtrip"]["kept_entries"]
    assert kept == [{"at": 3, "entry": F.book()["entries"][3]}]


def test_report_says_what_went_where() -> None:
    report = card_to_persona(F.v2_card(), source="wren.json").report
    mapped = dict(report.mapped)
    assert mapped["data.personality"] == "style.tone"
    assert mapped["data.scenario"] == "style.context"
    assert mapped["data.first_mes"] == "greetings[0]"
    assert mapped["data.mes_example"] == "examples (3)"
    assert mapped["data.character_book"] == "lore (5 entries) + lorebook"
    assert mapped["data.system_prompt"] == "instructions"
    for kept in ("data.creator_notes", "data.tags", "data.extensions.depth_prompt",
                 "data.x_unknown_field", "data.mes_example (as written)"):
        assert kept in report.kept
    assert any(k.startswith("data.character_book.entries[]: id") for k in report.kept)
    text = str(report)
    assert text.startswith("read wren.json: v2 in json")
    assert "lore[3] has no keys and is not constant: it can never activate" in text
    assert "book entry 3 ('empty') has no content" in text
    assert "lore[4] waits for recursion, which the book turns off" in text
    assert "1 lore entry is disabled" in text
    assert json.loads(json.dumps(report.as_dict()))["source_format"] == "v2"


def test_probability_zero_can_never_activate() -> None:
    card = F.minimal_v3()
    card["data"]["character_book"] = {"entries": [{
        "keys": ["a"], "content": "c", "insertion_order": 1, "enabled": True,
        "extensions": {"probability": 0, "useProbability": True}}]}
    assert any("probability 0" in w for w in card_to_persona(card).report.warnings)


@pytest.mark.parametrize("version", ["3.0", "3", 3.0, 3])
def test_v3_versions_that_mean_three(version: object) -> None:
    result = card_to_persona(F.v3_card(version))
    assert result.source_format == "v3"
    assert not any("spec_version" in w for w in result.report.warnings)
    assert result.persona.nickname == "Wren"
    assert result.persona.card["spec_version"] == version


@pytest.mark.parametrize("version", ["3.5", 4, None, "three"])
def test_other_v3_versions_are_read_with_a_warning(version: object) -> None:
    result = card_to_persona(F.v3_card(version))
    assert result.persona.name == "Wren Calloway"
    assert any(f"spec_version {version!r} is not 3.0" in w for w in result.report.warnings)


def test_v3_only_fields_are_kept() -> None:
    kept = card_to_persona(F.v3_card()).persona.card["data"]
    for key in ("group_only_greetings", "assets", "creator_notes_multilingual", "source",
                "creation_date", "modification_date"):
        assert kept[key] == F.v3_card()["data"][key]
    assert "nickname" not in kept  # mapped


def test_v1_card() -> None:
    result = card_to_persona(F.v1_card())
    persona = result.persona
    assert result.source_format == "v1"
    assert persona.name == "Wren Calloway" and persona.style.tone.startswith("patient")
    assert len(persona.examples) == 3  # "Wren:" is the first name
    assert persona.card["creatorcomment"] == "old comment"
    assert "spec" not in persona.card


def test_hybrid_data_wins_and_top_level_copies_are_kept() -> None:
    result = card_to_persona(F.hybrid_card())
    persona = result.persona
    assert result.report.hybrid
    assert persona.style.tone == "patient, dry-humoured, watchful"
    assert persona.card["personality"] == "grumpy (old version)"  # the stale copy, kept
    assert set(persona.card["_roundtrip"]["mirrored"]) >= {"name", "description", "tags"}
    assert any("top-level personality differs from data.personality" in w
               for w in result.report.warnings)


def test_persona_id_is_a_slug_or_a_hash_or_given() -> None:
    card = F.minimal_v3()
    card["data"]["name"] = "  Zoë  d'Arc!! "
    assert card_to_persona(card).persona.id == "zoe-d-arc"
    card["data"]["name"] = "小明"
    made = card_to_persona(card).persona.id
    assert made.startswith("c-") and made == card_to_persona(card).persona.id
    assert card_to_persona(card, persona_id="ming").persona.id == "ming"
    with pytest.raises(CardError, match="id 'Bad Id' is not a valid persona id"):
        card_to_persona(card, persona_id="Bad Id")


def test_lorebook_is_not_a_character() -> None:
    with pytest.raises(CardError, match="lorebook"):
        card_to_persona(F.lorebook_v3())


def test_lorebook_v3_file_becomes_a_lore_file(tmp_path: Path) -> None:
    path = F.write(tmp_path / "greyhook.json", F.lorebook_v3())
    result = import_file(path)
    assert isinstance(result, LorebookImport)
    assert result == import_lorebook(path)
    assert [e.name for e in result.lore][:3] == ["The light", None, "Harbour"]
    assert result.lorebook.scan_depth == 6 and result.lorebook.token_budget == 900
    assert ("data.token_budget", "lorebook.token_budget") in result.report.mapped
    with pytest.raises(CardError, match="lorebook"):
        import_card(path)
    lore_file = tmp_path / "lore.yaml"
    lore_file.write_text(dump_lore_yaml(result.lore, result.lorebook), encoding="utf-8")
    persona_file = tmp_path / "wren.yaml"
    persona_file.write_text("schema: personae/v1\nid: wren\nname: Wren\nlore_files: [lore.yaml]\n",
                            encoding="utf-8")
    loaded = load_persona(persona_file)
    assert loaded.lore == result.lore


def test_lorebook_to_lore_rejects_characters() -> None:
    with pytest.raises(CardError, match="not a lorebook"):
        lorebook_to_lore(F.v2_card())


def test_eliza_v0() -> None:
    result = card_to_persona(F.eliza_v0())
    persona, report = result.persona, result.report
    assert result.source_format == "eliza_v0"
    assert persona.name == "Wren" and persona.description == "Keeps the Greyhook light."
    assert persona.backstory == "Once rowed through a gale to save a fisherman.\nHates fog horns."
    assert persona.instructions == "Speak like a lighthouse keeper."
    assert persona.style.tone == "patient, watchful"
    assert persona.style.style == "short sentences\ndry humour"
    assert persona.style.response_format == "answer plainly"
    assert "lighthouses, weather" in persona.style.context
    assert [(e.user, e.reply) for e in persona.examples] == [
        ("Is the lamp lit?", "Since dusk, as always.")]
    assert [(e.content, e.constant) for e in persona.lore] == [
        ("The light flashes every ten seconds.", True)]
    eliza = persona.card["data"]["extensions"]["eliza"]
    assert eliza["clients"] == ["discord"] and eliza["modelProvider"] == "openai"
    assert eliza["postExamples"] == ["Fog again. The horn sings."]
    assert eliza["style"] == {"post": ["no hashtags"]}
    assert eliza["knowledge"] == [{"path": "docs/tides.md"}]
    assert eliza["settings"] == {"voice": {"model": "en_GB-northern"}}
    assert set(report.dropped) == {"settings.secrets", "settings.DISCORD_TOKEN",
                                   "settings.avatarUrl"}


def test_eliza_v1() -> None:
    result = card_to_persona(F.eliza_v1())
    persona = result.persona
    assert result.source_format == "eliza_v1"
    assert persona.description == "Keeps the Greyhook light.\nLives alone with a cat."
    assert [(e.user, e.reply) for e in persona.examples] == [
        ("Any ships tonight?", "One trawler, heading home.")]
    eliza = persona.card["data"]["extensions"]["eliza"]
    assert eliza["plugins"] == ["@elizaos/plugin-sql", "@elizaos/plugin-openai"]
    assert eliza["settings"] == {"model": "small"}
    assert set(result.report.dropped) == {"settings.secrets", "secrets"}


@pytest.mark.parametrize("make", [F.eliza_v0, F.eliza_v1])
def test_eliza_secrets_never_reach_persona_or_report(make: object, tmp_path: Path) -> None:
    obj = make()  # type: ignore[operator]
    result = card_to_persona(obj)
    everything = json.dumps(result.persona.model_dump(mode="json")) + str(result.report) + \
        json.dumps(result.report.as_dict())
    for secret in ("sk-test-00000000000000000000", "abc123abc123", "xyz",
                   "not-a-real-token-value", "sk-live-abcdefghijklmnop"):
        assert secret not in everything
    assert any("secret" in w and "values were not copied" in w for w in result.report.warnings)


def test_missing_spec_version_is_a_warning_for_cards_only() -> None:
    card = F.v3_card()
    del card["spec_version"]
    assert any("spec_version is missing" in w for w in card_to_persona(card).report.warnings)
    assert not any("spec_version" in w for w in lorebook_to_lore(F.lorebook_v3()).report.warnings)


def test_keyless_entry_in_canonical_form_still_imports() -> None:
    card = F.minimal_v3()
    entry = {"keys": [], "secondary_keys": [], "content": "Never found.", "constant": False,
             "selective": False, "insertion_order": 100, "enabled": True,
             "position": "after_char", "use_regex": False, "extensions": {}}
    card["data"]["character_book"] = {"scan_depth": 4, "recursive_scanning": True,
                                      "extensions": {}, "entries": [entry]}
    result = card_to_persona(card)
    [lore] = result.persona.lore
    assert lore.keys == [] and lore.card == {"keys": []}
    assert any("can never activate" in w for w in result.report.warnings)
    assert persona_to_card(result.persona, "v3") == card


def test_personae_extension_with_a_bad_value_is_a_clear_error() -> None:
    card = F.minimal_v3()
    card["data"]["extensions"] = {"personae": {"schema": "personae/v1",
                                               "speech": {"max_sentences": "lots"}}}
    with pytest.raises(CardError, match=r"speech\.max_sentences"):
        card_to_persona(card)


def test_personae_extension_unknown_fields_are_ignored_but_kept() -> None:
    card = F.minimal_v3()
    card["data"]["extensions"] = {"personae": {"schema": "personae/v1", "future": 1,
                                               "goals": ["Beep more."]}}
    persona = card_to_persona(card).persona
    assert persona.goals == ["Beep more."]
    assert persona_to_card(persona, "v3") == card


def test_plain_card_export_has_no_personae_extension() -> None:
    persona = Persona(id="pip", name="Pip", description="A small robot.")
    data = persona_to_card(persona, "v2")["data"]
    assert data["extensions"] == {}
    assert set(data) >= {"name", "description", "personality", "scenario", "first_mes",
                         "mes_example", "creator_notes", "system_prompt",
                         "post_history_instructions", "alternate_greetings", "tags", "creator",
                         "character_version", "extensions"}


def test_smallest_eliza_file_is_recognised() -> None:
    result = card_to_persona({"name": "Ada", "system": "Be brief."})
    assert result.source_format == "eliza_v1" and result.persona.instructions == "Be brief."


def test_sillytavern_use_regex_is_not_taken_at_its_word() -> None:
    # SillyTavern writes `use_regex: true` on every entry and reads keys as
    # regular expressions only when written /.../; other writers mean it.
    card = F.minimal_v3()
    st_entry = {"keys": ["C++", "/rust(acean)?/i"], "content": "Languages.", "use_regex": True,
                "insertion_order": 1, "enabled": True,
                "extensions": {"display_index": 0, "probability": 100}}
    other = {"keys": ["colou?r"], "content": "Spelling.", "use_regex": True,
             "insertion_order": 2, "enabled": True, "extensions": {}}
    card["data"]["character_book"] = {"entries": [st_entry, other]}
    persona = card_to_persona(card).persona
    assert [e.regex for e in persona.lore] == [False, True]
    assert persona_to_card(persona, "v3") == card
    lore = [persona.lore[0].model_copy(update={"regex": True}), persona.lore[1]]
    edited = persona_to_card(persona.model_copy(update={"lore": lore}), "v3")
    assert card_to_persona(edited).persona.lore[0].regex is True
