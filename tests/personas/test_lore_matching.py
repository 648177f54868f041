"""Lore keys: secondary logic, case, whole words, regexes, scan depth, labels and the trace."""

from __future__ import annotations

import re

import pytest

import personae.personas.lore as lore_module
from personae.personas.lore import Decision, LoreScan, activate, entry_label, scan
from personae.personas.model import Lorebook, LoreEntry


def active(found: LoreScan) -> list[str]:
    return [a.entry.content for a in found.active]


def decision(found: LoreScan, index: int = 0) -> Decision:
    return found.trace[index]


# -- secondary keys -------------------------------------------------------------


@pytest.mark.parametrize(
    ("logic", "text", "expected"),
    [
        ("and_any", "a dark ale", True),
        ("and_any", "a stout ale", True),
        ("and_any", "a pale ale", False),
        ("and_all", "a dark stout ale", True),
        ("and_all", "a dark ale", False),
        ("not_any", "an ale", True),
        ("not_any", "a dark ale", False),
        ("not_all", "a dark ale", True),
        ("not_all", "an ale", True),
        ("not_all", "a dark stout ale", False),
    ],
)
def test_secondary_keys_combine_by_logic(logic: str, text: str, expected: bool) -> None:
    entry = LoreEntry.model_validate(
        {"keys": ["ale"], "secondary_keys": ["dark", "stout"], "logic": logic, "content": "c"}
    )
    found = scan([entry], [text])
    assert decision(found).active is expected, decision(found).reason
    if not expected:
        assert f"secondary keys ({logic}) failed" in decision(found).reason


@pytest.mark.parametrize("logic", ["and_any", "and_all", "not_any", "not_all"])
def test_secondary_keys_are_checked_only_after_a_primary_key(logic: str) -> None:
    entry = LoreEntry.model_validate(
        {"keys": ["ale"], "secondary_keys": ["dark", "stout"], "logic": logic, "content": "c"}
    )
    # `not_any` and `not_all` would pass on their own here; the primary key is missing.
    found = scan([entry], ["a dark stout"] if logic.startswith("and") else ["nothing here"])
    assert not decision(found).active
    assert decision(found).reason.startswith("no key matched")


def test_secondary_reason_names_what_was_found_and_missing() -> None:
    entry = LoreEntry(keys=["ale"], secondary_keys=["dark", "stout"], logic="and_all", content="c")
    reason = decision(scan([entry], ["dark", "any ale?"])).reason
    assert reason == (
        "key 'ale' in message 2, but secondary keys (and_all) failed: 'stout' not found"
    )
    any_entry = entry.model_copy(update={"logic": "and_any"})
    assert decision(scan([any_entry], ["dark", "any ale?"])).reason == (
        "key 'ale' in message 2; secondary and_any: 'dark' in message 1"
    )


# -- case and whole words ---------------------------------------------------------


def test_case_sensitive_entry() -> None:
    entry = LoreEntry(keys=["Ash"], content="Mount Ash.", case_sensitive=True)
    assert active(scan([entry], ["Mount Ash"])) == ["Mount Ash."]
    assert active(scan([entry], ["wood ash"])) == []


def test_case_sensitivity_defaults_to_the_lorebook() -> None:
    entry = LoreEntry(keys=["Ash"], content="Mount Ash.")
    strict = Lorebook(case_sensitive=True)
    assert active(scan([entry], ["wood ash"])) == ["Mount Ash."]
    assert active(scan([entry], ["wood ash"], lorebook=strict)) == []
    loose = entry.model_copy(update={"case_sensitive": False})
    assert active(scan([loose], ["wood ash"], lorebook=strict)) == ["Mount Ash."]


def test_whole_words_off_for_the_entry() -> None:
    entry = LoreEntry(keys=["ale"], content="Ale.", whole_words=False)
    assert active(scan([entry], ["Is it for sale?"])) == ["Ale."]


def test_whole_words_default_comes_from_the_lorebook() -> None:
    entry = LoreEntry(keys=["ale"], content="Ale.")
    inside = Lorebook(whole_words=False)
    assert active(scan([entry], ["Is it for sale?"])) == []
    assert active(scan([entry], ["Is it for sale?"], lorebook=inside)) == ["Ale."]
    strict = entry.model_copy(update={"whole_words": True})
    assert active(scan([strict], ["Is it for sale?"], lorebook=inside)) == []


def test_cjk_keys_match_inside_text_even_with_whole_words() -> None:
    entry = LoreEntry(keys=["麦酒"], content="灯笼酒馆自酿麦酒。", whole_words=True)
    assert active(scan([entry], ["我想喝麦酒了"])) == ["灯笼酒馆自酿麦酒。"]


# -- regular expressions ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("/dr[ao]gons?/i", "DRAGONS!", True),
        ("/dr[ao]gons?/", "DRAGONS!", False),  # its own flags decide, not the lorebook
        ("/Dragon/", "a Dragon", True),
        ("/^ale$/m", "hello\nale\nbye", True),
        ("/^ale$/", "hello\nale\nbye", False),
        ("/ale.bread/s", "ale\nbread", True),
        ("/ale.bread/", "ale\nbread", False),
        ("/a l e # spaced/x", "pale", True),
        ("/ale/u", "an ale", True),
        ("/ale/g", "an ale", True),
    ],
)
def test_slash_keys_are_regexes_with_flags(key: str, text: str, expected: bool) -> None:
    entry = LoreEntry(keys=[key], content="c")
    assert decision(scan([entry], [text])).active is expected


@pytest.mark.parametrize(("key", "error"), [("/(/", "missing )"), ("/ale/q", "unknown flag 'q'")])
def test_invalid_regex_matches_nothing_and_is_reported(key: str, error: str) -> None:
    entry = LoreEntry(keys=[key], content="c")
    found = scan([entry], ["(ale"])
    assert not decision(found).active
    assert f"invalid regex {key!r}" in decision(found).reason
    assert error in decision(found).reason
    # The entry's other keys still work, and the bad one is still named.
    both = LoreEntry(keys=[key, "ale"], content="c")
    found = scan([both], ["(ale"])
    assert decision(found).active
    assert f"invalid regex {key!r}" in decision(found).reason


def test_regex_flag_makes_every_key_a_regex() -> None:
    plain = LoreEntry(keys=["dr[ao]gon"], content="c")
    regex = plain.model_copy(update={"regex": True})
    assert active(scan([plain], ["drogon"])) == []
    assert active(scan([regex], ["DROGON"])) == ["c"]
    strict = regex.model_copy(update={"case_sensitive": True})
    assert active(scan([strict], ["DROGON"])) == []
    assert active(scan([strict], ["drogon"])) == ["c"]


# -- scan depth and message numbers ------------------------------------------------


def test_scan_depth_is_the_last_n_messages() -> None:
    entry = LoreEntry(keys=["dragon"], content="c")
    said = ["the dragon", "hm", "ok"]
    assert active(scan([entry], said, lorebook=Lorebook(scan_depth=3))) == ["c"]
    shallow = scan([entry], said, lorebook=Lorebook(scan_depth=2))
    assert active(shallow) == []
    assert decision(shallow).reason.startswith("no key matched in the last 2 messages")


def test_entry_scan_depth_overrides_the_lorebook() -> None:
    said = ["the dragon", "hm", "ok"]
    deep = LoreEntry(keys=["dragon"], content="c", scan_depth=3)
    assert active(scan([deep], said, lorebook=Lorebook(scan_depth=1))) == ["c"]
    blind = LoreEntry(keys=["dragon"], content="c", scan_depth=0)
    found = scan([blind], ["dragon"], lorebook=Lorebook(scan_depth=10))
    assert active(found) == []
    assert "scan depth 0" in decision(found).reason


def test_messages_are_numbered_from_the_start_of_the_conversation() -> None:
    entry = LoreEntry(keys=["dragon"], content="c")
    found = scan([entry], ["the dragon", "hm"], message_count=12)
    assert decision(found).reason == "key 'dragon' in message 11"
    with pytest.raises(ValueError, match="message_count=1 is less than the 2 messages"):
        scan([entry], ["a", "b"], message_count=1)


# -- labels, trace, explain, wrapper ----------------------------------------------


def test_labels_and_a_decision_for_every_entry_in_file_order() -> None:
    entries = [
        LoreEntry(name="The mill", keys=["mill"], content="a"),
        LoreEntry(keys=[" ", "ale"], content="b"),
        LoreEntry(constant=True, content="c"),
        LoreEntry(keys=["x"], content="d", enabled=False),
    ]
    found = scan(entries, ["the mill"])
    assert [(d.label, d.index, d.active) for d in found.trace] == [
        ("The mill", 0, True), ("ale", 1, False), ("lore[2]", 2, True), ("x", 3, False),
    ]  # fmt: skip
    assert [entry_label(e, i) for i, e in enumerate(entries)] == [d.label for d in found.trace]
    assert found.trace[3].reason == "disabled"
    report = found.explain()
    assert "+ The mill: key 'mill' in message 1" in report
    assert "- ale: no key matched in message 1" in report
    assert "- x: disabled" in report
    assert report.startswith("Lore: 2 of 4 entries active at message 1")


def test_disabled_entry_never_activates() -> None:
    entries = [
        LoreEntry(constant=True, content="always", enabled=False),
        LoreEntry(keys=["ale"], content="ale", enabled=False),
    ]
    assert active(scan(entries, ["ale"])) == []


def test_activate_is_scan_without_state() -> None:
    entries = [
        LoreEntry(keys=["ale"], content="a", order=50),
        LoreEntry(keys=["mill"], content="b", order=10),
    ]
    texts = ["ale", "x", "y", "z", "w", "mill"]
    wrapped = activate(entries, texts)
    assert [a.entry.content for a in wrapped] == ["b", "a"]  # all texts scanned, by order
    assert wrapped == list(scan(entries, texts, lorebook=Lorebook(scan_depth=6)).active)
    assert wrapped[1].reason == "key 'ale' in message 1"
    assert activate(entries, texts, lorebook=Lorebook(scan_depth=1)) == [wrapped[0]]


def test_module_docs_describe_every_rule() -> None:
    doc = lore_module.__doc__ or ""
    for term in [
        "enabled", "sticky", "cooldown", "delay", "constant", "secondary_keys", "and_any",
        "and_all", "not_any", "not_all", "case_sensitive", "whole_words", "/pattern/flags",
        "regex: true", "scan_depth", "recursive_scanning", "max_recursion",
        "exclude_recursion", "prevent_recursion", "delay_until_recursion", "probability",
        "group_override", "group_weight", "token_budget", "priority", "order", "before_char",
        "after_char",
    ]:  # fmt: skip
        spans = re.findall(r"`([^`]+)`", doc)
        assert any(term in span for span in spans), term
