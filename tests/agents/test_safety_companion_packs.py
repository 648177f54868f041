"""The phrase packs are versioned and ship their own test cases; every case holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from personae.agents.safety import (
    load_phrase_pack,
    phrase_pack,
    screen_in,
    screen_out,
    shipped_languages,
)
from personae.errors import SafetyError
from personae.personas.model import Persona

LANGUAGES = ["de", "en", "es", "zh"]
IN_GROUPS = ["crisis", "emergency", "scam", "medication", "injection"]


def companion(language: str) -> Persona:
    return Persona(id="rosie", name="Rosie", safety={"profile": "companion"},
                   speech={"language": language})


def _cases(group: str) -> list[tuple[str, str]]:
    found = []
    for language in shipped_languages():
        pack = phrase_pack(language)
        assert pack is not None
        found += [(language, text) for text in pack.cases.get(group, ())]
    return found


def test_the_four_languages_ship_versioned_packs_with_resources() -> None:
    assert list(shipped_languages()) == LANGUAGES
    for language in LANGUAGES:
        pack = phrase_pack(language)
        assert pack is not None and pack.version and pack.tag == f"{language}@{pack.version}"
        assert pack.region and pack.region in pack.resources and "default" in pack.resources
        assert len(pack.cases["pass"]) >= 5, language
        assert len(pack.cases["crisis"]) >= 3, language
        for group in IN_GROUPS:
            assert pack.cases.get(group), (language, group)
        for line in ("crisis_support", "emergency_help", "scam_warning", "medication_referral"):
            assert pack.line(line), (language, line)


@pytest.mark.parametrize(("language", "text"), _cases("pass"))
def test_the_false_alarms_of_every_pack_pass(language: str, text: str) -> None:
    verdict = screen_in(companion(language), text)
    assert verdict.passed and verdict.category is None, verdict


@pytest.mark.parametrize("group", IN_GROUPS)
def test_the_caught_cases_of_every_pack_are_caught_as_their_category(group: str) -> None:
    for language, text in _cases(group):
        verdict = screen_in(companion(language), text)
        assert verdict.category == group, (language, text, verdict)
        assert verdict.pack_version is not None


@pytest.mark.parametrize(("language", "text"), _cases("honesty"))
def test_the_honesty_cases_reach_the_model_marked(language: str, text: str) -> None:
    verdict = screen_in(companion(language), text)
    assert verdict.passed and verdict.topic == "honesty"


@pytest.mark.parametrize(("language", "text"), _cases("reply_pass"))
def test_the_good_replies_of_every_pack_pass(language: str, text: str) -> None:
    assert screen_out(companion(language), text).action == "pass"


@pytest.mark.parametrize(("language", "text"), _cases("reply_replaced"))
def test_the_bad_replies_of_every_pack_are_replaced(language: str, text: str) -> None:
    assert screen_out(companion(language), text).action == "replace"


def test_a_pack_may_carry_version_region_resources_and_cases(tmp_path: Path) -> None:
    path = tmp_path / "fr.yaml"
    path.write_text(
        "language: fr\nversion: '0.1'\nregion: FR\n"
        "phrases:\n  crisis_active: ['\\bje veux mourir\\b']\n"
        "lines:\n  crisis_support: 'Appelez le {crisis_line}.'\n"
        "resources:\n  FR: {emergency: '112', crisis_line: '3114'}\n"
        "cases:\n  crisis: ['Je veux mourir.']\n  pass: ['Je meurs de faim.']\n",
        encoding="utf-8",
    )
    pack = load_phrase_pack(path)
    assert pack.tag == "fr@0.1" and pack.region == "FR"
    assert pack.resources["FR"].crisis_line == "3114"
    assert pack.cases["crisis"] == ("Je veux mourir.",)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("language: en\ncases:\n  maybe: ['x']\n", "cases.maybe: is not a case group"),
        ("language: en\nresources:\n  usa: {emergency: '911', crisis_line: '988'}\n",
         "resources.usa: is not a region"),
        ("language: en\nresources:\n  US: {emergency: '911'}\n", "crisis_line"),
        ("language: en\nregion: usa\n", "region"),
    ],
)
def test_a_broken_pack_section_says_where(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "en.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(SafetyError, match=expected):
        load_phrase_pack(path)
