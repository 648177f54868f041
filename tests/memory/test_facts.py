"""Facts about the user from what they said: rules, model, importance."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage

from personae.memory.facts import (
    Fact,
    FactList,
    ModelFactExtractor,
    RuleFactExtractor,
    fact_sentence,
    importance_of,
    is_multi_valued,
)
from personae.testing import FakeChatModel

EXTRACTOR = RuleFactExtractor()


def _pairs(text: str, speaker: str | None = "Ann") -> list[tuple[str, str]]:
    return [(f.attribute, f.value) for f in EXTRACTOR.extract(text, speaker=speaker)]


POSITIVE = [
    ("My name is Ann.", [("name", "Ann")]),
    ("I'm called Ann Smith and I live in Leeds.", [("name", "Ann Smith"), ("lives_in", "Leeds")]),
    ("Call me Annie, please.", [("name", "Annie")]),
    ("Hello, I'm Margaret.", [("name", "Margaret")]),
    ("I'm Ann Smith and I'm from Leeds.", [("name", "Ann Smith"), ("home_town", "Leeds")]),
    ("my name is ann and i live in leeds", [("name", "Ann"), ("lives_in", "leeds")]),
    ("I told you, my name is Ann.", [("name", "Ann")]),
    ("I'm from Spain but I live in Berlin now.", [("lives_in", "Berlin"), ("home_town", "Spain")]),
    ("I live in Leeds, do you?", [("lives_in", "Leeds")]),
    ("I moved to York last year.", [("lives_in", "York")]),
    ("I work as a nurse at the hospital.", [("job", "nurse")]),
    ("I'm a retired teacher.", [("job", "retired teacher")]),
    ("I'm retired.", [("job", "retired")]),
    ("My granddaughter is called Mia.", [("granddaughter_name", "Mia")]),
    ("My granddaughter's name is Mia.", [("granddaughter_name", "Mia")]),
    ("My granddaughter Mia visits on Sundays.", [("granddaughter_name", "Mia")]),
    ("My mum's name is Rose.", [("mother_name", "Rose")]),
    ("I have a little dog called Rex.", [("dog_name", "Rex")]),
    ("I've got a cat named Tom.", [("cat_name", "Tom")]),
    ("I love gardening and I hate golf.", [("likes", "gardening"), ("dislikes", "golf")]),
    ("I don't like loud music.", [("dislikes", "loud music")]),
    ("I really enjoy long walks with my dog.", [("likes", "long walks with their dog")]),
    ("My favourite drink is tea.", [("favourite_drink", "tea")]),
    ("My favorite color is blue!", [("favourite_colour", "blue")]),
    ("I'm 82 years old.", [("age", "82")]),
    ("I'm 82.", [("age", "82")]),
    ("I just turned 80!", [("age", "80")]),
    ("My birthday is on 3 May.", [("birthday", "3 May")]),
    ("I was born in 1942.", [("birth_year", "1942")]),
    ("I was born in York.", [("birthplace", "York")]),
    ("我叫小明。", [("name", "小明")]),
    ("我的名字是李华", [("name", "李华")]),
    ("我住在北京。", [("lives_in", "北京")]),
    ("我喜欢喝茶。", [("likes", "喝茶")]),
    ("我不喜欢下雨。", [("dislikes", "下雨")]),
    ("我今年82岁。", [("age", "82")]),
    ("Ich heiße Anna und ich wohne in Berlin.", [("name", "Anna"), ("lives_in", "Berlin")]),
    ("Me llamo Ana y vivo en Madrid.", [("name", "Ana"), ("lives_in", "Madrid")]),
    ("no me gusta el café", [("dislikes", "el café")]),
]

NEGATIVE = [
    "Is my name Bob?",
    "My name is Bob, right?",
    "What if my name was Bob?",
    "If I were a pilot I'd fly to Rome.",
    "Suppose I live in Paris.",
    "My friend said his name is Max.",
    "She said my name is Bob.",
    '"My name is Bob," he shouted.',
    "My name is not Bob.",
    "I don't live in Paris.",
    "Do I live in Leeds?",
    "Call me later.",
    "I'm a big fan of jazz.",
    "I'm tired.",
    "I'm English.",
    "I'm OK, thanks.",
    "I'm 5 minutes away.",
    "I love you.",
    "I like it here.",
    "I'd like a cup of tea.",
    "My birthday is next week.",
    "我叫什么名字？",
    "Wie heiße ich?",
    "¿Me llamo Ana?",
    "Hello, how are you today?",
    "The blacksmith's name is Goran.",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVE)
def test_rule_extractor_finds_stated_facts(text: str, expected: list[tuple[str, str]]) -> None:
    assert _pairs(text) == expected


@pytest.mark.parametrize("text", NEGATIVE)
def test_rule_extractor_ignores_questions_hypotheticals_negations_and_others(text: str) -> None:
    assert _pairs(text) == []


def test_fact_text_is_third_person_about_the_speaker() -> None:
    [fact] = EXTRACTOR.extract("My granddaughter is called Mia.", speaker="Ann")
    assert fact == Fact(text="Ann's granddaughter is called Mia", subject="Ann",
                        attribute="granddaughter_name", value="Mia", importance=8)
    [anonymous] = EXTRACTOR.extract("I live in Leeds.")
    assert anonymous.subject == "user"
    assert anonymous.text == "The user lives in Leeds"


def test_fact_sentence_templates() -> None:
    assert fact_sentence("Ann", "job", "nurse") == "Ann works as a nurse"
    assert fact_sentence("Ann", "job", "engineer") == "Ann works as an engineer"
    assert fact_sentence("James", "favourite_drink", "tea") == "James' favourite drink is tea"
    assert fact_sentence("user", "age", "82") == "The user is 82 years old"
    assert fact_sentence("Ann", "shoe_size", "38") == "Ann's shoe size is 38"


def test_multi_valued_attributes() -> None:
    assert is_multi_valued("likes")
    assert is_multi_valued("granddaughter_name")
    assert is_multi_valued("best_friend_name")
    assert not is_multi_valued("name")
    assert not is_multi_valued("lives_in")
    assert not is_multi_valued("husband_name")


def test_importance_heuristic_ranks_what_matters() -> None:
    assert importance_of("hi") == 1
    assert importance_of("Thanks!") == 1
    assert importance_of("") == 1
    small = importance_of("nice weather today")
    family = importance_of("My granddaughter Mia was born on 3 May")
    health = importance_of("I fell and went to hospital, I'm scared")
    assert small <= 3
    assert family >= 8
    assert health >= 8
    assert 1 <= importance_of("word " * 500) <= 10


def _structured(facts: list[dict[str, object]]) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "FactList", "args": {"facts": facts}, "id": "c1"}])


async def test_model_extractor_uses_structured_output() -> None:
    model = FakeChatModel(responses=[_structured([
        {"text": "Ann's granddaughter is called Mia", "subject": "Ann",
         "attribute": "granddaughter_name", "value": "Mia", "importance": 9},
    ])])
    facts = await ModelFactExtractor(model).aextract("Mia is my granddaughter.", speaker="Ann")
    assert facts == [Fact(text="Ann's granddaughter is called Mia", subject="Ann",
                          attribute="granddaughter_name", value="Mia", importance=9)]
    system, human = model.calls[0]
    assert "Ann" in system.text and human.text == "Mia is my granddaughter."


def test_model_extractor_sync_and_empty() -> None:
    model = FakeChatModel(responses=[_structured([])])
    assert ModelFactExtractor(model).extract("Nice weather.") == []


async def test_model_extractor_falls_back_to_rules_when_the_model_fails() -> None:
    model = FakeChatModel(responses=[TimeoutError("slow"), AIMessage("no tool call here")])
    extractor = ModelFactExtractor(model)
    facts = await extractor.aextract("I live in Leeds.", speaker="Ann")
    assert [(f.attribute, f.value) for f in facts] == [("lives_in", "Leeds")]
    facts = await extractor.aextract("My name is Ann.", speaker="Ann")
    assert [(f.attribute, f.value) for f in facts] == [("name", "Ann")]
    silent = ModelFactExtractor(FakeChatModel(responses=[TimeoutError("slow")]), fallback=None)
    assert await silent.aextract("I live in Leeds.") == []


def test_fact_list_schema_is_usable_by_models() -> None:
    schema = FactList.model_json_schema()
    assert schema["properties"]["facts"]["type"] == "array"


def test_extra_rules_extend_the_extractor() -> None:
    import re

    from personae.memory.facts import FactRule

    rule = FactRule(re.compile(r"\bmy guild is (?P<v>\w+)", re.IGNORECASE),
                    lambda m: ("guild", m["v"]))
    facts = RuleFactExtractor(rules=[rule]).extract("My guild is Ironhand.", speaker="Kael")
    assert [(f.attribute, f.value, f.text) for f in facts] == [
        ("guild", "Ironhand", "Kael's guild is Ironhand"),
    ]
