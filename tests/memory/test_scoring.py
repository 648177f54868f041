"""Recall ranking: normalisation, recency, fusion, context, dedupe, budget, explain, the store."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from personae.memory.records import MemoryRecord, NewMemory, content_hash
from personae.memory.scoring import (
    COMPONENTS,
    Recall,
    Recalled,
    RecallWeights,
    collapse_duplicates,
    cut_to_budget,
    min_max,
    recall,
    recency,
    score_candidates,
)
from personae.memory.store import MemoryStore
from personae.scope import Scope

DAY = 86_400.0
NOW = 1_700_000_000.0
ANN = Scope(persona="mira", user="ann")
BOB = Scope(persona="mira", user="bob")
NEUTRAL = RecallWeights(speaker=0.0, context=0.0, recency=0.0, importance=0.0)


def rec(id: str, text: str | None = None, *, importance: int = 5, speaker: str | None = None,
        created_at: float = NOW - DAY, accessed_at: float | None = None,
        kind: str = "episode", user: str = "ann") -> MemoryRecord:
    text = text if text is not None else f"memory {id}"
    return MemoryRecord(id=id, text=text, kind=kind, persona="mira", scope={"user": user},  # type: ignore[arg-type]
                        importance=importance, speaker=speaker, created_at=created_at,
                        accessed_at=created_at if accessed_at is None else accessed_at,
                        content_hash=content_hash(text))


def item(record: MemoryRecord, score: float) -> Recalled:
    return Recalled(record=record, score=score, components={"score": score})


class FakeStore:
    """Serves fixed candidate lists and records every call."""

    def __init__(self, dense: list[tuple[MemoryRecord, float]],
                 keyword: list[tuple[MemoryRecord, float]]) -> None:
        self._dense, self._keyword = dense, keyword
        self.calls: list[tuple[str, object, int, dict[str, object]]] = []
        self.touched: list[tuple[Scope, list[str], float | None]] = []

    def dense(self, scope: Scope, query: str | Sequence[float], n: int, *, shared: bool = True,
              include_superseded: bool = False) -> list[tuple[MemoryRecord, float]]:
        options = {"shared": shared, "superseded": include_superseded}
        self.calls.append(("dense", query, n, options))
        return self._dense[:n]

    def keyword(self, scope: Scope, query: str, n: int, *, shared: bool = True,
                include_superseded: bool = False) -> list[tuple[MemoryRecord, float]]:
        options = {"shared": shared, "superseded": include_superseded}
        self.calls.append(("keyword", query, n, options))
        return self._keyword[:n]

    def touch(self, scope: Scope, ids: Sequence[str], when: float | None = None) -> None:
        self.touched.append((scope, list(ids), when))


# -- pure parts -----------------------------------------------------------------------------


def test_min_max_scales_to_unit_range_and_ties_count_as_best() -> None:
    assert min_max([2.0, 4.0, 3.0]) == [0.0, 1.0, 0.5]
    assert min_max([0.7, 0.7]) == [1.0, 1.0]
    assert min_max([5.0]) == [1.0]
    assert min_max([]) == []


def test_recency_halves_every_half_life_since_last_access() -> None:
    assert recency(NOW, NOW, 30) == 1.0
    assert recency(NOW - 30 * DAY, NOW, 30) == pytest.approx(0.5)
    assert recency(NOW - 60 * DAY, NOW, 30) == pytest.approx(0.25)
    assert recency(NOW - 7 * DAY, NOW, 7) == pytest.approx(0.5)
    assert recency(NOW + DAY, NOW, 30) == 1.0  # a clock ahead of ours is not "fresher than now"
    with pytest.raises(ValueError, match="half_life_days=0"):
        recency(NOW, NOW, 0)


def test_weights_reject_negative_values() -> None:
    with pytest.raises(ValueError, match=r"RecallWeights.keyword=-1"):
        RecallWeights(keyword=-1)
    with pytest.raises(ValueError, match="rrf_k"):
        RecallWeights(rrf_k=0)


def test_candidates_are_normalised_over_the_union() -> None:
    a, b, c = rec("a"), rec("b"), rec("c")
    items = score_candidates("q", [(a, 0.9), (b, 0.5)], [(b, 12.0), (c, 4.0)], now=NOW,
                             weights=NEUTRAL)
    parts = {i.record.id: i.components for i in items}
    assert parts["a"]["relevance"] == 1.0 and parts["b"]["relevance"] == 0.0
    assert parts["c"]["relevance"] == 0.0 and "relevance_raw" not in parts["c"]
    assert parts["b"]["keyword"] == 1.0 and parts["c"]["keyword"] == 0.0
    assert "keyword_raw" not in parts["a"] and parts["b"]["keyword_raw"] == 12.0
    assert parts["a"]["relevance_raw"] == 0.9
    # b: 0.5 * 0 + 1.0 * 1 = 1.0 beats a: 0.5 * 1 + 0 = 0.5
    assert [i.record.id for i in items] == ["b", "a", "c"]
    assert items[0].score == pytest.approx(1.0)


def test_a_memory_found_by_both_searches_beats_one_found_by_one() -> None:
    both, dense_only, keyword_only = rec("both"), rec("d"), rec("k")
    items = score_candidates("q", [(dense_only, 0.8), (both, 0.79), (rec("x"), 0.1)],
                             [(keyword_only, 9.0), (both, 8.9), (rec("y"), 1.0)], now=NOW)
    assert items[0].record.id == "both"


def test_rank_fusion_scores_first_in_both_lists_as_one() -> None:
    a, b = rec("a"), rec("b")
    items = score_candidates("q", [(a, 0.9), (b, 0.8)], [(a, 5.0)], now=NOW,
                             weights=RecallWeights(relevance=0, keyword=0, rrf=1, rrf_k=60,
                                                   speaker=0, context=0, recency=0, importance=0))
    parts = {i.record.id: i.components for i in items}
    assert parts["a"]["rrf"] == pytest.approx(1.0)
    assert parts["b"]["rrf"] == pytest.approx((1 / 62) / (2 / 61))


def test_recency_and_importance_break_ties() -> None:
    old = rec("old", accessed_at=NOW - 90 * DAY)
    fresh = rec("fresh", accessed_at=NOW - DAY)
    items = score_candidates("q", [(old, 0.5), (fresh, 0.5)], [], now=NOW)
    assert [i.record.id for i in items] == ["fresh", "old"]
    assert items[0].components["recency"] == pytest.approx(0.5 ** (1 / 30))
    low, high = rec("low", importance=2), rec("high", importance=9)
    items = score_candidates("q", [(low, 0.5), (high, 0.5)], [], now=NOW)
    assert [i.record.id for i in items] == ["high", "low"]
    assert items[0].components["importance"] == 0.9


def test_recency_does_not_outrank_a_clearly_better_match() -> None:
    match = rec("match", accessed_at=NOW - 365 * DAY, importance=3)
    fresh = rec("fresh", accessed_at=NOW, importance=9)
    items = score_candidates("q", [(match, 0.9), (fresh, 0.2)], [(match, 7.0), (fresh, 1.0)],
                             now=NOW)
    assert items[0].record.id == "match"


def test_a_speaker_named_in_the_query_gets_the_bonus() -> None:
    caroline = rec("c", speaker="Caroline")
    melanie = rec("m", speaker="Melanie")
    wang = rec("w", speaker="小明")
    items = score_candidates("What did Caroline paint?", [(melanie, 0.6), (caroline, 0.55),
                             (wang, 0.1)], [], now=NOW)
    assert items[0].record.id == "c"
    assert items[0].components["speaker"] == 1.0 and items[1].components["speaker"] == 0.0
    cjk = score_candidates("小明说了什么?", [(wang, 0.1)], [], now=NOW)
    assert cjk[0].components["speaker"] == 1.0


def test_an_answer_inherits_the_match_of_the_question_just_before_it() -> None:
    question = rec("q", "Did you go to the pottery class?", created_at=NOW - 100)
    answer = rec("a", "Yes, last Friday!", created_at=NOW - 70)
    far = rec("f", "Yes, I loved it", created_at=NOW - 10 * DAY)
    other = rec("o", "Pottery is fun", created_at=NOW - 20 * DAY)
    dense = [(question, 0.8), (other, 0.5), (answer, 0.3), (far, 0.3)]
    items = score_candidates("When did she go to the pottery class?", dense, [], now=NOW)
    parts = {i.record.id: i.components for i in items}
    assert parts["a"]["context"] == pytest.approx(0.5)  # the question's match: 0.5 * 1.0
    assert parts["f"]["context"] == 0.0
    assert [i.record.id for i in items][:2] == ["q", "a"]
    off = score_candidates("pottery class", dense, [], now=NOW,
                           weights=RecallWeights(context=0))
    assert [i.record.id for i in off][:2] == ["q", "o"]


def test_context_links_only_episodes_of_one_scope() -> None:
    lore = [rec(f"l{i}", f"lore {i}", kind="lore", created_at=NOW) for i in range(3)]
    bobs = rec("b", "Bob's line", created_at=NOW - 10, user="bob")
    mine = rec("m", "my line", created_at=NOW - 20)
    items = score_candidates("q", [(lore[0], 0.9), (bobs, 0.9), (lore[1], 0.2), (mine, 0.2),
                                   (lore[2], 0.1)], [], now=NOW)
    assert all(i.components["context"] == 0.0 for i in items)


def test_collapse_keeps_the_best_of_near_duplicates() -> None:
    best = rec("1", "Ann's granddaughter is called Lily")
    same_hash = rec("2", "Ann's  granddaughter is called   Lily")
    near = rec("3", "ann's granddaughter is called lily!")
    other = rec("4", "Ann likes tea")
    kept = collapse_duplicates([item(best, 3), item(same_hash, 2), item(near, 1.5),
                                item(other, 1)])
    assert [i.record.id for i in kept] == ["1", "4"]
    assert [i.record.id for i in collapse_duplicates([item(other, 2), item(best, 1)], 0.9,
                                                     keep=1)] == ["4"]


def test_cut_to_budget_keeps_order_and_skips_what_does_not_fit() -> None:
    class Words:
        def count(self, text: str) -> int:
            return len(text.split())

    items = [item(rec("a", "one two three"), 3),
             item(rec("b", "a much longer memory text here"), 2),
             item(rec("c", "short one"), 1)]
    assert [i.record.id for i in cut_to_budget(items, limit=2)] == ["a", "b"]
    kept = cut_to_budget(items, limit=5, budget_tokens=5, counter=Words())
    assert [i.record.id for i in kept] == ["a", "c"]
    assert cut_to_budget(items, limit=5, budget_tokens=2, counter=Words())[0].record.id == "c"
    assert cut_to_budget(items, limit=5, budget_tokens=0, counter=Words()) == []


def test_explain_lists_every_component_of_every_item() -> None:
    a, b = rec("a", "Ann's granddaughter is called Lily", speaker="Ann"), rec("b", "Ann likes tea")
    items = score_candidates("Ann granddaughter", [(a, 0.9)], [(b, 3.0), (a, 2.0)], now=NOW)
    text = Recall(query="Ann granddaughter", items=items, candidates=2).explain()
    lines = text.splitlines()
    assert "'Ann granddaughter'" in lines[0] and "2 of 2 candidates" in lines[0]
    header = lines[1].split()
    for short in ("cos", "cos~", "bm25", "bm25~", "rrf", "spk", "ctx", "rec", "imp", "score"):
        assert short in header
    row_a = next(line for line in lines if "granddaughter" in line and "Lily" in line)
    assert f"{items[0].components['score']:.3f}" in row_a and "0.900" in row_a
    row_b = next(line for line in lines if "tea" in line)
    assert " - " in row_b  # not found by the dense search: no cosine
    assert len(items[0].components) == len(COMPONENTS)


def test_as_dict_is_json() -> None:
    items = score_candidates("q", [(rec("a"), 0.5)], [], now=NOW)
    data = json.loads(json.dumps(Recall(query="q", items=items, candidates=1).as_dict()))
    assert data["items"][0]["record"]["id"] == "a"
    assert set(data["items"][0]["components"]) == set(COMPONENTS) - {"keyword_raw"}


# -- recall() against a fake store -----------------------------------------------------------


def test_recall_asks_both_searches_cuts_to_limit_and_touches_what_it_keeps() -> None:
    records = [rec(str(i), f"memory number {i} " + "x" * i) for i in range(8)]
    store = FakeStore([(r, 0.9 - i / 10) for i, r in enumerate(records)],
                      [(records[3], 5.0), (records[5], 4.0)])
    found = recall(store, ANN, "number three", limit=3, candidates=20, now=NOW,
                   include_superseded=True, shared=False)
    assert [c[0] for c in store.calls] == ["dense", "keyword"]
    assert all(c[2] == 20 and c[3] == {"shared": False, "superseded": True} for c in store.calls)
    assert len(found.items) == 3 and found.candidates == 8
    assert found.over_budget == 5 and found.duplicates == 0
    assert found.items[0].record.id == "3"
    assert store.touched == [(ANN, [i.record.id for i in found.items], NOW)]
    assert found.records == [i.record for i in found.items]


def test_recall_without_touch_leaves_access_times_alone() -> None:
    store = FakeStore([(rec("a"), 0.5)], [])
    recall(store, ANN, "q", touch=False)
    assert store.touched == []


def test_recall_of_a_blank_query_skips_the_keyword_search() -> None:
    store = FakeStore([(rec("a"), 0.5)], [(rec("b"), 1.0)])
    found = recall(store, ANN, "  ")
    assert [c[0] for c in store.calls] == ["dense"]
    assert [i.record.id for i in found.items] == ["a"]


def test_recall_applies_the_token_budget_and_counts_duplicates() -> None:
    class Chars:
        def count(self, text: str) -> int:
            return len(text)

    long = rec("long", "a long memory " * 20)
    dup = rec("dup", "a long memory " * 20 + " ")
    short = rec("short", "tea")
    store = FakeStore([(long, 0.9), (dup, 0.89), (short, 0.5)], [])
    found = recall(store, ANN, "memory", budget_tokens=50, counter=Chars(), now=NOW)
    assert [i.record.id for i in found.items] == ["short"]
    assert found.duplicates == 1 and found.over_budget == 1


def test_recall_rejects_a_bad_limit() -> None:
    with pytest.raises(ValueError, match="limit=0"):
        recall(FakeStore([], []), ANN, "q", limit=0)


# -- recall() on the real store --------------------------------------------------------------


def test_recall_on_the_store_stays_in_scope_and_updates_last_access(store: MemoryStore) -> None:
    store.add(ANN, [NewMemory(text="Ann's granddaughter Lily plays the violin",
                              created_at=NOW - 9 * DAY),
                    NewMemory(text="Ann grows tomatoes in her garden", created_at=NOW - 8 * DAY)])
    [bobs] = store.add(BOB, [NewMemory(text="Bob's granddaughter Lily plays the violin too")])
    found = recall(store, ANN, "granddaughter violin", limit=5, now=NOW)
    texts = [i.record.text for i in found.items]
    assert texts[0] == "Ann's granddaughter Lily plays the violin"
    assert not any("Bob" in text for text in texts)
    [fresh] = store.get(ANN, [found.items[0].record.id])
    assert fresh.accessed_at == NOW
    untouched = recall(store, BOB, "granddaughter", now=NOW + 1, touch=False)
    assert store.get(BOB, [untouched.items[0].record.id])[0].accessed_at == bobs.accessed_at


def test_recall_on_the_store_leaves_out_superseded_facts_unless_asked(store: MemoryStore) -> None:
    old, new = store.add(ANN, [NewMemory(text="Ann lives in Leeds", kind="fact"),
                               NewMemory(text="Ann lives in York now", kind="fact")])
    store.supersede(ANN, old.id, new.id)
    found = recall(store, ANN, "where does Ann live?", now=NOW)
    assert [i.record.id for i in found.items] == [new.id]
    both = recall(store, ANN, "where does Ann live?", now=NOW, include_superseded=True)
    assert {i.record.id for i in both.items} == {old.id, new.id}


def test_recall_on_the_store_prefers_the_important_among_equals(store: MemoryStore) -> None:
    store.add(ANN, [NewMemory(text="Ann talked about her cat Tom and the weather", importance=2,
                              created_at=NOW - DAY),
                    NewMemory(text="Ann talked about her cat Max and the weather", importance=9,
                              created_at=NOW - DAY)])
    found = recall(store, ANN, "Ann cat weather", now=NOW, weights=RecallWeights(context=0))
    assert found.items[0].record.importance == 9
