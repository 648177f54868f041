"""Which matched entries are used: recursion, timed effects, chance, groups, budget, order."""

from __future__ import annotations

import json

from personae.personas.lore import LoreScan, LoreState, scan
from personae.personas.model import Lorebook, LoreEntry


def labels(found: LoreScan) -> list[str]:
    return [a.label for a in found.active]


def reason(found: LoreScan, label: str) -> str:
    return next(d.reason for d in found.trace if d.label == label)


class WordCounter:
    """One token per word, so budgets in tests are easy to read."""

    def count(self, text: str) -> int:
        return len(text.split())


# -- recursion ----------------------------------------------------------------------

MOUNTAIN = LoreEntry(name="mountain", keys=["mountain"], content="A dragon sleeps in Mount Ash.")
DRAGON = LoreEntry(name="dragon", keys=["dragon"], content="The dragon Vex hoards gold.")
GOLD = LoreEntry(name="gold", keys=["gold"], content="Ashby gold is stamped with a bell.")


RECURSIVE = Lorebook(recursive_scanning=True)


def test_recursion_is_off_by_default() -> None:
    found = scan([MOUNTAIN, DRAGON], ["Tell me about the mountain."])
    assert labels(found) == ["mountain"]


def test_active_content_activates_further_entries() -> None:
    found = scan([MOUNTAIN, DRAGON], ["Tell me about the mountain."], lorebook=RECURSIVE)
    assert labels(found) == ["mountain", "dragon"]
    assert reason(found, "dragon") == (
        "key 'dragon' in entry 'mountain' content (recursion round 1)"
    )
    assert found.rounds >= 1


def test_recursion_off() -> None:
    book = Lorebook(recursive_scanning=False)
    found = scan([MOUNTAIN, DRAGON], ["Tell me about the mountain."], lorebook=book)
    assert labels(found) == ["mountain"]
    assert found.rounds == 0


def test_recursion_is_bounded_by_max_recursion() -> None:
    said = ["the mountain"]
    one = scan(
        [MOUNTAIN, DRAGON, GOLD], said, lorebook=Lorebook(recursive_scanning=True, max_recursion=1)
    )
    assert labels(one) == ["mountain", "dragon"]
    two = scan(
        [MOUNTAIN, DRAGON, GOLD], said, lorebook=Lorebook(recursive_scanning=True, max_recursion=2)
    )
    assert labels(two) == ["mountain", "dragon", "gold"]
    assert "(recursion round 2)" in reason(two, "gold")
    none = scan(
        [MOUNTAIN, DRAGON, GOLD], said, lorebook=Lorebook(recursive_scanning=True, max_recursion=0)
    )
    assert labels(none) == ["mountain"]


def test_exclude_recursion_entry_needs_a_message() -> None:
    dragon = DRAGON.model_copy(update={"exclude_recursion": True})
    assert labels(scan([MOUNTAIN, dragon], ["the mountain"])) == ["mountain"]
    assert labels(scan([MOUNTAIN, dragon], ["the mountain", "a dragon"])) == [
        "mountain", "dragon",
    ]  # fmt: skip


def test_prevent_recursion_entry_content_is_not_scanned() -> None:
    mountain = MOUNTAIN.model_copy(update={"prevent_recursion": True})
    assert labels(scan([mountain, DRAGON], ["the mountain"], lorebook=RECURSIVE)) == ["mountain"]
    # A round still runs for other entries' content; the mountain's is left out of it.
    inn = LoreEntry(name="inn", keys=["inn"], content="The inn has a cellar.")
    found = scan([mountain, DRAGON, inn], ["the mountain inn"], lorebook=RECURSIVE)
    assert labels(found) == ["mountain", "inn"]
    assert found.rounds == 1
    assert "the content of 1 active entries" in reason(found, "dragon")


def test_delay_until_recursion_entry_ignores_messages() -> None:
    dragon = DRAGON.model_copy(update={"delay_until_recursion": True})
    alone = scan([MOUNTAIN, dragon], ["a dragon!"])
    assert labels(alone) == []
    assert reason(alone, "dragon") == (
        "delay_until_recursion: activates only from other entries' content; no recursion round ran"
    )
    both = scan([MOUNTAIN, dragon], ["a dragon on the mountain"], lorebook=RECURSIVE)
    assert labels(both) == ["mountain", "dragon"]
    assert reason(both, "dragon").startswith("key 'dragon' in entry 'mountain' content")


def test_secondary_keys_can_be_met_by_recursion() -> None:
    vex = LoreEntry(name="vex", keys=["vex"], secondary_keys=["mount ash"], content="Vex is old.")
    found = scan([MOUNTAIN, vex], ["Who is Vex? Is the mountain safe?"], lorebook=RECURSIVE)
    assert labels(found) == ["mountain", "vex"]
    assert "'mount ash' in entry 'mountain' content" in reason(found, "vex")
    assert labels(scan([MOUNTAIN, vex], ["Who is Vex?"], lorebook=RECURSIVE)) == []


# -- timed effects --------------------------------------------------------------------


def run(entry: LoreEntry, said: dict[int, str]) -> list[tuple[int, bool, str]]:
    """Scan message by message (1..max), carrying the state; return each decision."""
    state: LoreState | None = None
    out = []
    for count in range(1, max(said) + 1):
        found = scan([entry], [said.get(count, "hm")], message_count=count, state=state)
        state = found.state
        out.append((count, found.trace[0].active, found.trace[0].reason))
    return out


def test_sticky_stays_active_for_that_many_messages() -> None:
    entry = LoreEntry(keys=["dragon"], content="c", sticky=2)
    steps = run(entry, {1: "dragon", 5: "hm"})
    assert [active for _, active, _ in steps] == [True, True, True, False, False]
    assert steps[1][2] == "sticky: active since message 1, until message 3"


def test_cooldown_blocks_reactivation() -> None:
    entry = LoreEntry(keys=["dragon"], content="c", cooldown=2)
    steps = run(entry, {n: "dragon" for n in range(1, 6)})
    assert [active for _, active, _ in steps] == [True, False, False, True, False]
    assert steps[1][2] == "cooldown: active at message 1, cannot activate until after message 3"


def test_cooldown_starts_when_sticky_ends() -> None:
    entry = LoreEntry(keys=["dragon"], content="c", sticky=1, cooldown=2)
    steps = run(entry, {n: "dragon" for n in range(1, 7)})
    assert [active for _, active, _ in steps] == [True, True, False, False, True, True]


def test_delay_waits_for_enough_messages() -> None:
    entry = LoreEntry(keys=["dragon"], content="c", delay=3)
    steps = run(entry, {n: "dragon" for n in range(1, 4)})
    assert [active for _, active, _ in steps] == [False, False, True]
    assert steps[0][2] == "delay: needs 3 messages, the conversation has 1"
    constant = LoreEntry(constant=True, content="c", delay=2)
    assert [a for _, a, _ in run(constant, {2: "x"})] == [False, True]


def test_state_is_json_and_survives_a_round_trip() -> None:
    entry = LoreEntry(keys=["dragon"], content="c", sticky=4, cooldown=3)
    first = scan([entry], ["dragon"], message_count=1)
    data = json.loads(json.dumps(first.state.as_dict()))
    restored = LoreState.from_dict(data)
    assert restored == first.state
    later = scan([entry], ["hm"], message_count=3, state=restored)
    assert later.trace[0].active
    assert LoreState.from_dict(None) == LoreState()


def test_state_keeps_only_live_timers_of_existing_entries() -> None:
    dragon = LoreEntry(keys=["dragon"], content="c", sticky=2)
    ale = LoreEntry(keys=["ale"], content="a", cooldown=9)
    first = scan([dragon, ale], ["dragon ale"], message_count=1)
    assert len(first.state.timers) == 2
    later = scan([dragon, ale], ["hm"], message_count=4, state=first.state)
    assert [key.split("#")[0] for key in later.state.timers] == ["ale"]  # the sticky ran out
    gone = scan([dragon], ["hm"], message_count=2, state=first.state)
    assert [key.split("#")[0] for key in gone.state.timers] == ["dragon"]  # ale was removed


def test_timers_follow_the_entry_not_its_position() -> None:
    other = LoreEntry(keys=["ale"], content="ale")
    dragon = LoreEntry(keys=["dragon"], content="c", sticky=4)
    first = scan([other, dragon], ["dragon"], message_count=1)
    moved = scan([dragon, other], ["hm"], message_count=3, state=first.state)
    assert [a.entry.content for a in moved.active] == ["c"]
    edited = dragon.model_copy(update={"content": "changed"})
    assert scan([edited], ["hm"], message_count=3, state=first.state).active == ()


def test_state_from_a_longer_conversation_is_ignored() -> None:
    entry = LoreEntry(keys=["dragon"], content="c", cooldown=10)
    late = scan([entry], ["dragon"], message_count=20)
    fresh = scan([entry], ["dragon"], message_count=2, state=late.state)
    assert fresh.trace[0].active
    assert any("ignored" in note for note in fresh.notes)
    assert "note:" in fresh.explain()


# -- probability ------------------------------------------------------------------------


def test_probability_is_seeded_and_roughly_right() -> None:
    entry = LoreEntry(keys=["dragon"], content="c", probability=30)
    outcomes = [scan([entry], ["dragon"], seed=seed).trace[0] for seed in range(300)]
    hits = sum(d.active for d in outcomes)
    assert 60 < hits < 120  # about 30% of 300
    again = [scan([entry], ["dragon"], seed=seed).trace[0] for seed in range(300)]
    assert again == outcomes
    missed = next(d for d in outcomes if not d.active)
    assert "probability roll" in missed.reason and ">= 30" in missed.reason
    made = next(d for d in outcomes if d.active)
    assert "< 30" in made.reason


def test_probability_rolls_again_on_later_messages() -> None:
    entry = LoreEntry(keys=["dragon"], content="c", probability=50)
    results = {
        scan([entry], ["dragon"], message_count=n, seed="s").trace[0].active for n in range(1, 40)
    }
    assert results == {True, False}


def test_probability_extremes() -> None:
    never = LoreEntry(keys=["dragon"], content="c", probability=0)
    always = LoreEntry(keys=["dragon"], content="c")
    assert not any(scan([never], ["dragon"], seed=s).active for s in range(50))
    assert all(scan([always], ["dragon"], seed=s).active for s in range(50))
    assert "probability" not in scan([always], ["dragon"]).trace[0].reason


def test_sticky_entries_do_not_roll_again() -> None:
    entry = LoreEntry(keys=["dragon"], content="c", probability=50, sticky=100)
    seed = next(s for s in range(100) if scan([entry], ["dragon"], seed=s).active)
    state = scan([entry], ["dragon"], seed=seed).state
    for count in range(2, 40):
        found = scan([entry], ["hm"], message_count=count, state=state, seed=seed)
        assert found.active, count
        state = found.state


# -- inclusion groups -------------------------------------------------------------------


def drinks(**changes: dict[str, object]) -> list[LoreEntry]:
    base = [
        LoreEntry(name="ale", keys=["drink"], content="ale", group="drinks"),
        LoreEntry(name="cider", keys=["drink"], content="cider", group="drinks"),
        LoreEntry(name="tea", keys=["drink"], content="tea", group="drinks"),
    ]
    return [e.model_copy(update=changes.get(e.name or "", {})) for e in base]


def test_only_one_entry_of_a_group_is_used() -> None:
    found = scan(drinks(), ["a drink"], seed=7)
    assert len(found.active) == 1
    winner = found.active[0].label
    for d in found.trace:
        if d.label != winner:
            assert d.reason == f"inclusion group 'drinks' lost to {winner!r}"
    assert "won inclusion group 'drinks'" in reason(found, winner)


def test_group_override_wins_by_highest_order() -> None:
    entries = drinks(
        cider={"group_override": True, "order": 5},
        tea={"group_override": True, "order": 9},
        ale={"order": 500},
    )
    for seed in range(20):
        assert labels(scan(entries, ["a drink"], seed=seed)) == ["tea"]


def test_group_draw_follows_weights_and_the_seed() -> None:
    entries = drinks(ale={"group_weight": 1}, cider={"group_weight": 1}, tea={"group_weight": 98})
    winners = [labels(scan(entries, ["a drink"], seed=s))[0] for s in range(200)]
    assert winners.count("tea") > 170
    assert {"ale", "cider"} & set(winners)
    assert winners == [labels(scan(entries, ["a drink"], seed=s))[0] for s in range(200)]


def test_entries_may_belong_to_several_groups() -> None:
    entries = [
        LoreEntry(
            name="ale", keys=["drink"], content="ale", group="drinks, cheap", group_override=True
        ),
        LoreEntry(name="bread", keys=["drink"], content="bread", group="cheap"),
        LoreEntry(name="wine", keys=["drink"], content="wine", group="fancy"),
    ]
    found = scan(entries, ["a drink"])
    assert labels(found) == ["ale", "wine"]
    assert reason(found, "bread") == "inclusion group 'cheap' lost to 'ale'"


def test_member_from_an_earlier_round_keeps_its_group() -> None:
    mountain = MOUNTAIN.model_copy(update={"group": "places"})
    dragon = DRAGON.model_copy(update={"group": "places", "group_override": True})
    found = scan([mountain, dragon], ["the mountain"], lorebook=RECURSIVE)
    assert labels(found) == ["mountain"]
    assert reason(found, "dragon") == "inclusion group 'places' lost to 'mountain'"


def test_a_sticky_entry_wins_its_group() -> None:
    entries = drinks(cider={"sticky": 10}, tea={"group_override": True})
    first = scan(entries[1:2], ["a drink"], message_count=1)  # cider alone: it sticks
    found = scan(entries, ["a drink"], message_count=3, state=first.state, lorebook=RECURSIVE)
    assert labels(found) == ["cider"]
    assert "still sticky" in reason(found, "cider")


# -- token budget, priority, order and position -------------------------------------------


def test_token_budget_leaves_out_lowest_priority_first() -> None:
    entries = [
        LoreEntry(name="high", keys=["inn"], content="one two three", priority=10),
        LoreEntry(name="low", keys=["inn"], content="four five six", priority=-1),
        LoreEntry(name="mid", keys=["inn"], content="seven eight nine", priority=0),
    ]
    found = scan(entries, ["the inn"], lorebook=Lorebook(token_budget=6), counter=WordCounter())
    assert labels(found) == ["high", "mid"]
    assert reason(found, "low") == (
        "token budget: active entries need 9 tokens, the lorebook allows 6; left out at priority -1"
    )
    tight = scan(entries, ["the inn"], lorebook=Lorebook(token_budget=3), counter=WordCounter())
    assert labels(tight) == ["high"]
    roomy = scan(entries, ["the inn"], lorebook=Lorebook(token_budget=9), counter=WordCounter())
    assert len(roomy.active) == 3


def test_token_budget_keeps_constant_entries_longest() -> None:
    entries = [
        LoreEntry(name="world", constant=True, content="one two", priority=-5),
        LoreEntry(name="inn", keys=["inn"], content="three four", priority=5),
    ]
    found = scan(entries, ["inn"], lorebook=Lorebook(token_budget=3), counter=WordCounter())
    assert labels(found) == ["world"]


def test_token_budget_uses_the_default_counter() -> None:
    entries = [LoreEntry(name="long", keys=["inn"], content="word " * 50)]
    assert scan(entries, ["inn"], lorebook=Lorebook(token_budget=10)).active == ()
    assert scan(entries, ["inn"], lorebook=Lorebook(token_budget=100)).active


def test_timers_start_only_for_entries_that_were_used() -> None:
    entry = LoreEntry(name="big", keys=["inn"], content="a b c d", cooldown=5)
    book = Lorebook(token_budget=2)
    found = scan([entry], ["inn"], lorebook=book, counter=WordCounter())
    assert found.state.timers == {}


def test_prompt_order_is_by_order_then_constant_then_priority() -> None:
    entries = [
        LoreEntry(name="late", keys=["inn"], content="a", order=300),
        LoreEntry(name="early", keys=["inn"], content="b", order=1, position="before_char"),
        LoreEntry(name="mid-low", keys=["inn"], content="c", order=50, priority=-1),
        LoreEntry(name="mid-high", keys=["inn"], content="d", order=50, priority=4),
        LoreEntry(name="mid-constant", constant=True, content="e", order=50, priority=-9),
    ]
    found = scan(entries, ["the inn"])
    assert labels(found) == ["early", "mid-constant", "mid-high", "mid-low", "late"]
    assert found.active[0].entry.position == "before_char"
    assert [a.index for a in found.active] == [1, 4, 3, 2, 0]
