from __future__ import annotations

import json

import pytest

from personae.personas.lore import activate, scan
from personae.personas.model import (
    CoStar,
    Example,
    HostAction,
    LoreEntry,
    ModelSettings,
    Persona,
    SafetyProfile,
    SpeechRules,
)
from personae.personas.prompt import (
    DROP_ORDER,
    NEVER_DROPPED,
    SECTION_ORDER,
    CompiledPrompt,
    Section,
    compile_prompt,
)
from personae.tokens import HeuristicCounter, default_counter

SUMMARY = (
    "Ann came in from the rain. She asked about the old mill. "
    "Mira told her it burned down. Ann ordered a dark ale."
)
MEMORIES = [f"Ann mentioned fact number {i} about her farm." for i in range(5)]
WORLD = {"weather": "heavy rain", "location": "the Lantern taproom", "hour": 21}


def mira(**changes: object) -> Persona:
    fields: dict[str, object] = dict(
        id="mira",
        name="Mira",
        nickname="Mi",
        description="Keeper of the Lantern inn in Brackenford.",
        backstory="Mira grew up in the hills and took over the inn from her aunt.",
        style=CoStar(
            context="A busy village inn.",
            objective="Make guests feel welcome and sell ale.",
            tone="warm, a little teasing",
            response_format="one spoken line",
        ),
        speech=SpeechRules(max_sentences=3, max_words_per_sentence=20, plain_text=True),
        goals=["Keep the inn full", "Hear every rumour first"],
        emotions=["happy", "wary"],
        examples=[
            Example(user=f"Question number {i} for you?", reply=f"My answer number {i}, friend.")
            for i in range(8)
        ],
        lore=[
            LoreEntry(keys=["ale"], content="The Lantern brews its own dark ale.", priority=5),
            LoreEntry(keys=["mill"], content="The old mill burned down last winter."),
            LoreEntry(keys=["rain"], content="Rain floods the river road.", priority=-3),
            LoreEntry(constant=True, content="Brackenford is a river village."),
            LoreEntry(
                name="valley",
                keys=["mill"],
                content="The valley road runs past the mill.",
                position="before_char",
            ),
        ],
        instructions="{{original}} Speak as {{char}} would to {{user}}.",
        actions=[
            HostAction(name="give_item", description="Hand the guest something they paid for.")
        ],
        safety=SafetyProfile(avoid_topics=["politics", "religion"]),
    )
    fields.update(changes)
    return Persona.model_validate(fields)


def compile_full(persona: Persona, budget: int = 100_000) -> CompiledPrompt:
    return compile_prompt(
        persona,
        memories=MEMORIES,
        lore=activate(persona.lore, ["Any ale left? The mill and the rain worry me."]),
        world=WORLD,
        summary=SUMMARY,
        budget=budget,
    )


def section(compiled: CompiledPrompt, name: str) -> Section:
    return next(s for s in compiled.sections if s.name == name)


def test_same_inputs_give_identical_bytes() -> None:
    persona = mira()
    assert compile_full(persona).text == compile_full(persona).text
    assert compile_full(persona, budget=500).text == compile_full(persona, budget=500).text


def test_world_key_order_does_not_change_the_prompt() -> None:
    persona = mira()
    one = compile_prompt(persona, world={"b": 1, "a": {"y": [1, 2], "x": {3, 1, 2}}, "c": "fog"})
    two = compile_prompt(persona, world={"c": "fog", "a": {"x": {2, 3, 1}, "y": [1, 2]}, "b": 1})
    assert one.text.encode() == two.text.encode()
    assert "- a: " in one.text
    assert one.text.index("- a: ") < one.text.index("- b: ") < one.text.index("- c: fog")


def test_time_appears_only_when_given() -> None:
    persona = mira()
    assert "Current time" not in compile_prompt(persona).text
    assert "Current time: 21:00, day 3" in compile_prompt(persona, now="21:00, day 3").text


def test_sections_appear_in_fixed_order() -> None:
    text = compile_full(mira()).text
    markers = [
        "You are Mira, also called Mi.",
        "## Background\n- The valley road runs past the mill.",
        "Keeper of the Lantern inn in Brackenford.",
        "## Instructions\nYou are Mira, also called Mi. Speak as Mira would to User.",
        "Context: A busy village inn.",
        "Answer in at most 3 sentences.",
        "- Keep the inn full",
        "Steer away from these topics: politics, religion.",
        "took over the inn from her aunt",
        "- give_item: Hand the guest",
        "You can show these emotions: happy, wary.",
        "User: Question number 0 for you?\nMira: My answer number 0, friend.",
        "- The Lantern brews its own dark ale.",
        "- hour: 21",
        "- Ann mentioned fact number 0",
        "Ann came in from the rain.",
    ]
    positions = [text.index(marker) for marker in markers]
    assert positions == sorted(positions)
    assert [s.name for s in compile_full(mira()).sections] == list(SECTION_ORDER)


def test_speech_rules_become_instructions() -> None:
    text = compile_prompt(mira()).text
    assert "Answer in at most 3 sentences." in text
    assert "Use at most 20 words in any sentence." in text
    assert "No markdown, lists, emoji or stage directions: your words are read aloud." in text
    assert "Always answer in English (en)." in text
    assert "language model" in text


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("zh", "Always answer in Chinese (zh)."),
        ("zh-Hant", "Always answer in Traditional Chinese (zh-Hant)."),
        ("de-AT", "Always answer in German (de-AT)."),
        ("tlh", "Always answer in the language with BCP 47 tag 'tlh'."),
    ],
)
def test_language_tag_is_named(tag: str, expected: str) -> None:
    persona = mira(speech=SpeechRules(language=tag, max_sentences=1))
    text = compile_prompt(persona).text
    assert expected in text
    assert "Answer in at most 1 sentence." in text
    assert "No markdown" not in text


def first_losses(persona: Persona) -> list[str]:
    """Shrink the budget step by step; return sections in the order they first lose items."""
    full = compile_full(persona)
    order: list[str] = []
    for budget in range(full.tokens, 0, -5):
        compiled = compile_full(persona, budget=budget)
        assert compiled.tokens == default_counter().count(compiled.text)
        if not compiled.over_budget:
            assert compiled.tokens <= budget
        for item in compiled.dropped:
            if item.section not in order:
                order.append(item.section)
        # A section only loses items once every earlier step is emptied.
        for name in order[:-1]:
            assert not section(compiled, name).items_kept, (budget, name)
        for core in NEVER_DROPPED:
            assert not section(compiled, core).items_dropped
    return order


DOCUMENTED_ORDER = [
    "examples", "lore", "lore_before", "memories", "summary", "backstory",
    "world", "actions", "emotions", "goals", "costar", "instructions",
]  # fmt: skip


def test_drop_order_is_documented() -> None:
    import personae.personas.prompt as module

    assert [step.section for step in DROP_ORDER] == DOCUMENTED_ORDER
    _, _, doc = (module.__doc__ or "").partition("Token budget and drop order")
    positions = [doc.index(f"{n}. `{name}`") for n, name in enumerate(DOCUMENTED_ORDER, 1)]
    assert positions == sorted(positions)
    assert set(NEVER_DROPPED) == {"identity", "description", "speech", "safety"}
    sections = (module.__doc__ or "").partition("Token budget")[0]
    places = [sections.index(f"{n}. `{name}`") for n, name in enumerate(SECTION_ORDER, 1)]
    assert places == sorted(places)


def test_budget_cuts_follow_the_documented_drop_order() -> None:
    assert first_losses(mira()) == DOCUMENTED_ORDER


def test_each_section_loses_items_in_its_documented_order() -> None:
    persona = mira()
    full = compile_full(persona)
    # Step 1 takes the last example first.
    compiled = compile_full(persona, budget=full.tokens - 1)
    assert [(d.section, d.item) for d in compiled.dropped] == [("examples", "examples[7]")]
    assert "Question number 7" not in compiled.text
    assert "Question number 6" in compiled.text

    dropped_by_section: dict[str, list[str]] = {}
    for d in compile_full(persona, budget=1).dropped:
        dropped_by_section.setdefault(d.section, []).append(d.item)
    assert dropped_by_section["examples"] == [f"examples[{i}]" for i in range(7, -1, -1)]
    # Lowest priority first; the constant entry last.
    assert dropped_by_section["lore"] == ["lore 'rain'", "lore 'mill'", "lore 'ale'", "lore[3]"]
    assert dropped_by_section["lore_before"] == ["lore 'valley'"]
    assert dropped_by_section["memories"] == [f"memories[{i}]" for i in range(4, -1, -1)]
    assert dropped_by_section["summary"] == [f"summary sentence {i}" for i in range(1, 5)]
    assert dropped_by_section["world"] == ["world 'weather'", "world 'location'", "world 'hour'"]


def test_summary_is_cut_from_its_start_at_sentence_boundaries() -> None:
    persona = mira(examples=[], lore=[])
    full = compile_prompt(persona, summary=SUMMARY)
    for budget in range(full.tokens, full.tokens - 40, -1):
        compiled = compile_prompt(persona, summary=SUMMARY, budget=budget)
        _, _, kept = compiled.text.partition("## The conversation so far\n")
        assert SUMMARY.endswith(kept)
        assert kept == "" or kept[0].isupper()
        assert "Ann ordered a dark ale." in compiled.text or not kept


def test_core_is_kept_over_budget_and_flagged() -> None:
    compiled = compile_full(mira(), budget=10)
    assert compiled.over_budget
    assert compiled.tokens > 10
    assert "You are Mira, also called Mi." in compiled.text
    assert "Answer in at most 3 sentences." in compiled.text
    assert "Steer away from these topics: politics, religion." in compiled.text
    for name in SECTION_ORDER:
        kept = section(compiled, name).items_kept
        assert bool(kept) == (name in NEVER_DROPPED), name
    assert "over budget" in compiled.explain().lower()
    assert not compile_full(mira()).over_budget


def test_budget_defaults_to_the_persona_setting() -> None:
    persona = mira(model=ModelSettings(prompt_tokens=200))
    compiled = compile_full(persona, budget=None)  # type: ignore[arg-type]
    assert compiled.budget == 200
    assert compiled.tokens <= 200
    assert compiled.dropped


class FakeCharCounter:
    """One token per character: blank lines between sections cost tokens here."""

    def count(self, text: str) -> int:
        return len(text)


@pytest.mark.parametrize("counter", [HeuristicCounter(), FakeCharCounter()])
def test_other_counters_are_respected(counter: HeuristicCounter | FakeCharCounter) -> None:
    persona = mira()
    full = compile_full(persona)
    for budget in range(1500, 500, -7):
        compiled = compile_prompt(
            persona, summary=SUMMARY, memories=MEMORIES, budget=budget, counter=counter
        )
        assert compiled.tokens == counter.count(compiled.text)
        assert compiled.tokens <= budget
        assert len(compiled.text) < len(full.text)


def test_explain_reports_sections_and_reasons() -> None:
    persona = mira()
    full = compile_full(persona)
    report = full.explain()
    for name in SECTION_ORDER:
        assert f"\n{name}: " in report
    assert "lore 'ale': key 'ale' in message 1" in report
    assert "lore[3]: constant" in report
    assert " dropped: budget" not in report

    cut = compile_full(persona, budget=full.tokens - 60)
    report = cut.explain()
    assert f"examples[7] dropped: budget {full.tokens - 60} tokens, drop order step 1" in report
    assert f"System prompt: {cut.tokens} of {full.tokens - 60} tokens" in report


def test_as_dict_is_json_ready() -> None:
    compiled = compile_full(mira(), budget=400)
    data = json.loads(json.dumps(compiled.as_dict(), ensure_ascii=False))
    assert data["text"] == compiled.text
    assert data["tokens"] == compiled.tokens
    assert [s["name"] for s in data["sections"]] == list(SECTION_ORDER)
    assert data["dropped"][0]["section"] == "examples"
    assert "text" not in compiled.as_dict(full=False)


def lin(**changes: object) -> Persona:
    fields: dict[str, object] = dict(
        id="lin",
        name="林阿姨",
        description="住在小区三楼的退休语文老师，喜欢聊天和种花。",
        backstory="她在杭州教了三十年书，现在和孙女住在一起。",
        speech=SpeechRules(language="zh", max_sentences=2, plain_text=True),
        examples=[
            Example(user=f"今天天气怎么样{i}？", reply=f"挺好的，出去走走吧{i}。") for i in range(6)
        ],
        lore=[LoreEntry(keys=["茶"], content="林阿姨每天下午喝龙井茶。")],
        model=ModelSettings(prompt_tokens=200),
    )
    fields.update(changes)
    return Persona.model_validate(fields)


def test_chinese_persona_compiles_and_is_counted_per_character() -> None:
    persona = lin()
    activations = activate(persona.lore, ["我们一起喝茶吧"])
    compiled = compile_prompt(persona, lore=activations, budget=10_000)
    assert "You are 林阿姨." in compiled.text
    assert "Always answer in Chinese (zh)." in compiled.text
    assert "User: 今天天气怎么样0？\n林阿姨: 挺好的，出去走走吧0。" in compiled.text
    assert "林阿姨每天下午喝龙井茶。" in compiled.text
    cjk = sum(1 for ch in compiled.text if "\u4e00" <= ch <= "\u9fff")
    assert compiled.tokens > cjk

    tight = compile_prompt(persona, lore=activations, budget=compiled.tokens - 30)
    assert tight.tokens <= compiled.tokens - 30
    assert tight.dropped[0].item == "examples[5]"
    assert "林阿姨每天下午喝龙井茶。" in tight.text


# -- lore positions, instructions, macros, cards, lore trace ---------------------------


def test_lore_goes_before_or_after_the_character_in_insertion_order() -> None:
    persona = mira(
        lore=[
            LoreEntry(name="late-before", keys=["ale"], content="Before, order 90.",
                      position="before_char", order=90),
            LoreEntry(name="after", keys=["ale"], content="After, order 10.", order=10),
            LoreEntry(name="early-before", keys=["ale"], content="Before, order 5.",
                      position="before_char", order=5),
            LoreEntry(name="after-late", keys=["ale"], content="After, order 200.", order=200),
        ]
    )
    compiled = compile_prompt(persona, lore=scan(persona.lore, ["an ale"]), budget=100_000)
    text = compiled.text
    order = [
        "You are Mira, also called Mi.",
        "- Before, order 5.",
        "- Before, order 90.",
        "Keeper of the Lantern inn",
        "## What you know\n- After, order 10.",
        "- After, order 200.",
    ]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert section(compiled, "lore_before").items_kept == (
        "lore 'early-before': key 'ale' in message 1",
        "lore 'late-before': key 'ale' in message 1",
    )
    assert [i.split(":")[0] for i in section(compiled, "lore").items_kept] == [
        "lore 'after'", "lore 'after-late'",
    ]  # fmt: skip


def test_instructions_follow_the_description_with_original_expanded() -> None:
    persona = mira(instructions="Write in the present tense.\n{{original}}")
    text = compile_prompt(persona).text
    assert "## Instructions\nWrite in the present tense.\nYou are Mira, also called Mi." in text
    assert text.index("Keeper of the Lantern") < text.index("## Instructions")
    assert text.index("## Instructions") < text.index("## Your part")
    assert "## Instructions" not in compile_prompt(mira(instructions="")).text


def test_macros_are_expanded_in_every_persona_text() -> None:
    persona = mira(
        description="{{char}} keeps the inn for {{user}}.",
        backstory="<BOT> met <USER> long ago.",
        style=CoStar(context="{{char}}'s inn", tone="warm to {{User}}"),
        goals=["Make {{user}} smile"],
        safety=SafetyProfile(avoid_topics=["{{user}}'s debts"]),
        actions=[HostAction(name="give_item", description="Give {{user}} an item.")],
        examples=[Example(user="Hi {{char}}!", reply="Hello {{user}}.")],
        lore=[LoreEntry(keys=["ale"], content="{{char}} brews ale for {{user}}.")],
        instructions="{{original}} Never leave {{char}}'s voice.",
    )
    compiled = compile_prompt(
        persona,
        lore=activate(persona.lore, ["ale"]),
        memories=["{{user}} wrote this"],
        budget=100_000,
        user="Ann",
    )
    text = compiled.text
    for expected in [
        "Mira keeps the inn for Ann.",
        "Mira met Ann long ago.",
        "Context: Mira's inn",
        "Tone: warm to Ann",
        "- Make Ann smile",
        "Steer away from these topics: Ann's debts.",
        "- give_item: Give Ann an item.",
        "User: Hi Mira!\nMira: Hello Ann.",
        "- Mira brews ale for Ann.",
        "You are Mira, also called Mi. Never leave Mira's voice.",
        "- {{user}} wrote this",  # memories are not persona text
    ]:
        assert expected in text, expected
    assert "<BOT>" not in text and "{{char}}" not in text
    unnamed = compile_prompt(persona, lore=activate(persona.lore, ["ale"]), budget=100_000)
    assert "Mira keeps the inn for User." in unnamed.text
    assert "- Mira brews ale for User." in unnamed.text
    # The persona itself keeps its macros, so an exported card is unchanged.
    assert persona.description == "{{char}} keeps the inn for {{user}}."


def test_card_fields_never_reach_the_prompt() -> None:
    persona = mira(
        card={"creator_notes": "SECRET-CREATOR-NOTE", "tags": ["TAG-XYZZY"]},
        lore=[LoreEntry(keys=["ale"], content="Dark ale.", card={"comment": "CARD-COMMENT"})],
    )
    text = compile_prompt(persona, lore=activate(persona.lore, ["ale"]), budget=100_000).text
    assert "Dark ale." in text
    for hidden in ["SECRET-CREATOR-NOTE", "TAG-XYZZY", "CARD-COMMENT", "creator_notes"]:
        assert hidden not in text


def test_explain_and_as_dict_carry_the_lore_trace_of_a_scan() -> None:
    persona = mira()
    found = scan(persona.lore, ["Any ale left?"], lorebook=persona.lorebook, seed=3)
    compiled = compile_prompt(persona, lore=found, budget=100_000)
    assert compiled.lore_scan is found
    report = compiled.explain()
    assert report.endswith(found.explain())
    assert "  + ale: key 'ale' in message 1" in report
    assert "  - rain: no key matched" in report
    data = json.loads(json.dumps(compiled.as_dict(full=False)))
    assert data["lore"]["active"] == [a.label for a in found.active]
    rain = data["lore"]["trace"][2]
    assert (rain["label"], rain["index"], rain["active"]) == ("rain", 2, False)
    plain = compile_prompt(persona, lore=found.active, budget=100_000)
    assert plain.text == compiled.text
    assert "lore" not in plain.as_dict() and "Lore:" not in plain.explain()
