"""MemoryStore: records, isolation between scopes, shared lore, model checks, the directory lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from personae.errors import MemoryStoreError
from personae.memory.records import MemoryRecord, NewMemory
from personae.memory.store import MemoryStore
from personae.scope import Scope
from personae.settings import Settings
from personae.testing import FakeEmbeddings

ANN = Scope(persona="mira", user="ann")
BOB = Scope(persona="mira", user="bob")
ANN_OTHER_PERSONA = Scope(persona="tor", user="ann")
ANN_IN_CHANNEL = Scope(persona="mira", user="ann", guild="g1", channel="c1")


def _texts(pairs: list[tuple[MemoryRecord, float]]) -> list[str]:
    return [record.text for record, _ in pairs]


def test_add_fills_in_the_record_and_get_returns_it(store: MemoryStore) -> None:
    before = time.time()
    [record] = store.add(ANN, [NewMemory(text="Ann's granddaughter is called Lily", kind="fact",
                                         importance=8, speaker="Ann", game_time="day 3",
                                         turn_id="t1")])
    assert record.persona == "mira" and record.scope == {"user": "ann"}
    assert record.kind == "fact" and record.importance == 8 and record.speaker == "Ann"
    assert record.game_time == "day 3" and record.turn_id == "t1" and record.source is None
    assert before - 0.001 <= record.created_at == record.accessed_at <= time.time() + 0.001
    assert record.superseded_by is None
    assert store.get(ANN, [record.id]) == [record]


def test_add_keeps_a_given_creation_time(store: MemoryStore) -> None:
    [record] = store.add(ANN, [NewMemory(text="Old news", created_at=1000.0)])
    assert store.get(ANN, [record.id])[0].created_at == 1000.0


def test_add_is_idempotent_by_content_within_a_scope(store: MemoryStore) -> None:
    first = store.add(ANN, [NewMemory(text="Ann likes tea"), NewMemory(text="Ann likes  tea ")])
    assert first[0].id == first[1].id
    again = store.add(ANN, [NewMemory(text="Ann likes tea"), NewMemory(text="Ann walks daily")])
    assert again[0].id == first[0].id and again[1].id != first[0].id
    assert len(store.list(ANN)) == 2
    [bobs] = store.add(BOB, [NewMemory(text="Ann likes tea")])
    assert bobs.id != first[0].id


def test_concurrent_adds_of_one_text_store_it_once(store: MemoryStore) -> None:
    results: list[str] = []

    def add() -> None:
        results.append(store.add(ANN, [NewMemory(text="Ann's birthday is in May")])[0].id)

    threads = [threading.Thread(target=add) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 6 and len(set(results)) == 1
    assert len(store.list(ANN)) == 1


def test_dense_is_best_first_with_cosine_similarity(store: MemoryStore) -> None:
    store.add(ANN, [NewMemory(text="the red fox jumps"), NewMemory(text="a quiet blue lake"),
                    NewMemory(text="the red fox sleeps")])
    found = store.dense(ANN, "the red fox jumps", 3)
    assert _texts(found)[0] == "the red fox jumps"
    assert found[0][1] == pytest.approx(1.0, abs=1e-4)
    scores = [score for _, score in found]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= score <= 1.0 + 1e-6 for score in scores)


def test_dense_takes_a_ready_vector_and_checks_its_size(
    store: MemoryStore, embedder: FakeEmbeddings
) -> None:
    store.add(ANN, [NewMemory(text="the red fox jumps")])
    [vector] = embedder.embed(["the red fox jumps"])
    assert _texts(store.dense(ANN, vector, 1)) == ["the red fox jumps"]
    with pytest.raises(MemoryStoreError, match="3 dimensions"):
        store.dense(ANN, [0.1, 0.2, 0.3], 1)


def test_searches_of_an_empty_scope_return_nothing(store: MemoryStore) -> None:
    assert store.dense(ANN, "anything", 5) == []
    assert store.keyword(ANN, "anything", 5) == []
    assert store.list(ANN) == [] and store.export(ANN) == []
    assert store.get(ANN, ["m0", "nonsense"]) == []


def test_users_never_see_each_other(store: MemoryStore) -> None:
    store.add(ANN, [NewMemory(text=f"Ann secret number {i} about gardening") for i in range(20)])
    store.add(BOB, [NewMemory(text="Bob secret about gardening and fishing")])
    store.add(ANN_IN_CHANNEL, [NewMemory(text="Ann said in the guild channel: gardening")])
    store.add(ANN_OTHER_PERSONA, [NewMemory(text="Ann told Tor about gardening")])
    for query in ("gardening", "Bob secret about gardening and fishing", "Ann secret"):
        assert _texts(store.dense(BOB, query, 50)) == ["Bob secret about gardening and fishing"]
        assert _texts(store.keyword(BOB, query, 50)) == ["Bob secret about gardening and fishing"]
        ann = _texts(store.dense(ANN, query, 50)) + _texts(store.keyword(ANN, query, 50))
        assert ann and all(text.startswith("Ann secret") for text in ann)
        assert _texts(store.keyword(ANN_IN_CHANNEL, query, 50)) in (
            [], ["Ann said in the guild channel: gardening"])
        assert all("Tor" in t for t in _texts(store.dense(ANN_OTHER_PERSONA, query, 50)))


def test_ids_of_another_scope_are_invisible_and_untouchable(store: MemoryStore) -> None:
    [bobs] = store.add(BOB, [NewMemory(text="Bob's bank PIN hint", importance=5)])
    assert store.get(ANN, [bobs.id]) == []
    assert store.delete(ANN, bobs.id) is False
    with pytest.raises(MemoryStoreError, match="no memory"):
        store.update(ANN, bobs.id, importance=1)
    store.touch(ANN, [bobs.id], when=5.0)
    assert store.get(BOB, [bobs.id]) == [bobs]


def test_shared_lore_is_seen_by_every_scope_of_its_persona_only(store: MemoryStore) -> None:
    [lore] = store.add_shared("mira", [NewMemory(text="The blacksmith Tor lives by the river",
                                                 kind="lore", source="village.md#1")])
    assert lore.scope == {} and lore.source == "village.md#1" and lore.id.startswith("l")
    assert store.add_shared("mira", [NewMemory(text="The blacksmith Tor lives by the river",
                                               kind="lore")])[0].id == lore.id
    for scope in (ANN, BOB, ANN_IN_CHANNEL):
        assert _texts(store.dense(scope, "blacksmith river", 5)) == [lore.text]
        assert _texts(store.keyword(scope, "where does the blacksmith live?", 5)) == [lore.text]
        assert store.get(scope, [lore.id]) == [lore]
        assert store.dense(scope, "blacksmith river", 5, shared=False) == []
        assert store.keyword(scope, "blacksmith", 5, shared=False) == []
    assert store.dense(ANN_OTHER_PERSONA, "blacksmith river", 5) == []
    assert store.keyword(ANN_OTHER_PERSONA, "blacksmith", 5) == []
    assert store.get(ANN_OTHER_PERSONA, [lore.id]) == []
    assert [r.id for r in store.list(ANN, shared=True)] == [lore.id]
    assert store.list(ANN) == []


def test_dense_merges_scope_and_lore_by_score(store: MemoryStore) -> None:
    store.add(ANN, [NewMemory(text="river fishing trip"), NewMemory(text="cooking pasta")])
    store.add_shared("mira", [NewMemory(text="river fishing lore", kind="lore"),
                              NewMemory(text="the mayor's election", kind="lore")])
    found = store.dense(ANN, "river fishing", 2)
    assert sorted(_texts(found)) == ["river fishing lore", "river fishing trip"]


def test_keyword_scores_are_bm25_best_first(store: MemoryStore) -> None:
    store.add(ANN, [NewMemory(text="the lighthouse keeper"),
                    NewMemory(text="lighthouse lighthouse storm keeper"),
                    NewMemory(text="a storm at sea")])
    found = store.keyword(ANN, "Where is the lighthouse storm?", 5)
    assert _texts(found)[0] == "lighthouse lighthouse storm keeper"
    assert {t for t in _texts(found)} == {"the lighthouse keeper",
                                          "lighthouse lighthouse storm keeper", "a storm at sea"}
    scores = [score for _, score in found]
    assert all(score > 0 for score in scores) and scores == sorted(scores, reverse=True)
    assert store.keyword(ANN, "what was it?", 5) == []


def test_keyword_finds_chinese_and_japanese_records(store: MemoryStore) -> None:
    store.add(ANN, [NewMemory(text="我的孙女叫小丽，她住在上海。"),
                    NewMemory(text="東京タワーに行きました"),
                    NewMemory(text="My granddaughter lives in Shanghai")])
    assert _texts(store.keyword(ANN, "孙女叫什么名字？", 5)) == ["我的孙女叫小丽，她住在上海。"]
    assert _texts(store.keyword(ANN, "東京タワー", 5)) == ["東京タワーに行きました"]
    assert _texts(store.keyword(BOB, "孙女", 5)) == []


def test_update_changes_text_and_importance(store: MemoryStore) -> None:
    [record] = store.add(ANN, [NewMemory(text="Ann likes tea", importance=3)])
    updated = store.update(ANN, record.id, text="Ann likes strong coffee", importance=9)
    assert updated.text == "Ann likes strong coffee" and updated.importance == 9
    assert updated.content_hash != record.content_hash
    assert store.get(ANN, [record.id]) == [updated]
    assert _texts(store.dense(ANN, "Ann likes strong coffee", 1)) == ["Ann likes strong coffee"]
    assert store.dense(ANN, "Ann likes strong coffee", 1)[0][1] == pytest.approx(1.0, abs=1e-4)
    assert _texts(store.keyword(ANN, "coffee", 5)) == ["Ann likes strong coffee"]
    assert store.keyword(ANN, "tea", 5) == []
    assert store.add(ANN, [NewMemory(text="Ann likes strong coffee")])[0].id == record.id
    assert store.update(ANN, record.id, importance=2).importance == 2
    with pytest.raises(MemoryStoreError, match="importance=11"):
        store.update(ANN, record.id, importance=11)
    with pytest.raises(MemoryStoreError, match="empty"):
        store.update(ANN, record.id, text="  ")


def test_delete_removes_from_every_search(store: MemoryStore) -> None:
    kept, gone = store.add(ANN, [NewMemory(text="keep the kettle"), NewMemory(text="gone kettle")])
    assert store.delete(ANN, gone.id, purge=False) is True
    assert store.delete(ANN, gone.id) is False
    assert store.get(ANN, [gone.id, kept.id]) == [kept]
    assert _texts(store.dense(ANN, "gone kettle", 5)) == ["keep the kettle"]
    assert _texts(store.keyword(ANN, "kettle", 5)) == ["keep the kettle"]


def test_supersede_hides_the_old_fact_unless_asked(store: MemoryStore) -> None:
    old, new = store.add(ANN, [NewMemory(text="Ann lives in Leeds", kind="fact"),
                               NewMemory(text="Ann lives in York now", kind="fact")])
    store.supersede(ANN, old.id, new.id)
    assert store.get(ANN, [old.id])[0].superseded_by == new.id
    assert _texts(store.dense(ANN, "Ann lives in Leeds", 5)) == ["Ann lives in York now"]
    assert "Ann lives in Leeds" in _texts(
        store.dense(ANN, "Ann lives in Leeds", 5, include_superseded=True))
    assert _texts(store.keyword(ANN, "Ann lives", 5)) == ["Ann lives in York now"]
    assert len(store.keyword(ANN, "Ann lives", 5, include_superseded=True)) == 2
    assert [r.text for r in store.list(ANN, include_superseded=False)] == ["Ann lives in York now"]
    with pytest.raises(MemoryStoreError, match="no memory"):
        store.supersede(ANN, old.id, "m-unknown")
    with pytest.raises(MemoryStoreError, match="no memory"):
        store.supersede(BOB, old.id, new.id)


def test_dense_fills_n_when_many_top_hits_are_superseded(store: MemoryStore) -> None:
    records = store.add(ANN, [NewMemory(text=f"apple pie recipe {i}") for i in range(8)])
    replacement = store.add(ANN, [NewMemory(text="banana bread")])[0]
    for record in records[:6]:
        store.supersede(ANN, record.id, replacement.id)
    found = store.dense(ANN, "apple pie recipe", 3)
    assert len(found) == 3
    assert all(record.superseded_by is None for record, _ in found)


def test_touch_sets_last_access(store: MemoryStore) -> None:
    a, b = store.add(ANN, [NewMemory(text="first"), NewMemory(text="second")])
    store.touch(ANN, [a.id], when=1234.5)
    assert store.get(ANN, [a.id])[0].accessed_at == 1234.5
    assert store.get(ANN, [b.id])[0].accessed_at == b.accessed_at
    store.touch(ANN, [b.id])
    assert store.get(ANN, [b.id])[0].accessed_at >= b.accessed_at


def test_list_is_newest_first_paged_and_filtered(store: MemoryStore) -> None:
    for i in range(5):
        store.add(ANN, [NewMemory(text=f"episode {i}", created_at=100.0 + i)])
    store.add(ANN, [NewMemory(text="a fact", kind="fact", created_at=50.0)])
    assert [r.text for r in store.list(ANN, limit=3)] == ["episode 4", "episode 3", "episode 2"]
    assert [r.text for r in store.list(ANN, limit=3, offset=3)] == [
        "episode 1", "episode 0", "a fact"]
    assert [r.text for r in store.list(ANN, kind="fact")] == ["a fact"]
    assert store.list(ANN, kind="lore") == []


def test_export_is_json_ready(store: MemoryStore) -> None:
    store.add(ANN, [NewMemory(text="Ann likes tea", speaker="Ann", created_at=1.0),
                    NewMemory(text="我的猫叫小白", kind="fact", created_at=2.0)])
    store.add_shared("mira", [NewMemory(text="lore is not exported", kind="lore")])
    exported = store.export(ANN)
    again = json.loads(json.dumps(exported, ensure_ascii=False))
    assert again == exported
    assert [item["text"] for item in exported] == ["Ann likes tea", "我的猫叫小白"]
    assert exported[0]["scope"] == {"user": "ann"} and exported[0]["speaker"] == "Ann"
    assert MemoryRecord.model_validate(exported[1]).kind == "fact"


def test_stats_and_scopes(store: MemoryStore) -> None:
    store.add(ANN, [NewMemory(text="one"), NewMemory(text="two")])
    store.add(ANN_IN_CHANNEL, [NewMemory(text="three")])
    store.add(ANN_OTHER_PERSONA, [NewMemory(text="four")])
    store.add_shared("mira", [NewMemory(text="lore", kind="lore")])
    stats = store.stats()
    assert stats["mode"] == "embedded" and stats["memories"] == 5
    assert stats["personas"] == {"mira": {"scopes": 2, "memories": 3, "shared": 1},
                                 "tor": {"scopes": 1, "memories": 1, "shared": 0}}
    assert store.stats("tor")["memories"] == 1
    assert store.scopes("mira") == sorted([ANN, ANN_IN_CHANNEL], key=Scope.key)
    assert set(store.scopes()) == {ANN, ANN_IN_CHANNEL, ANN_OTHER_PERSONA}


def test_memories_survive_reopening_and_a_lost_keyword_index(
    tmp_path: Path, embedder: FakeEmbeddings
) -> None:
    with MemoryStore(tmp_path / "m", embedder=embedder) as store:
        store.add(ANN, [NewMemory(text="the lighthouse keeper"), NewMemory(text="我的猫叫小白")])
        store.add_shared("mira", [NewMemory(text="lighthouse lore", kind="lore")])
    (tmp_path / "m" / "keyword.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / "m" / f"keyword.sqlite{suffix}").unlink(missing_ok=True)
    with MemoryStore(tmp_path / "m", embedder=embedder) as store:
        assert sorted(_texts(store.keyword(ANN, "lighthouse", 5))) == [
            "lighthouse lore", "the lighthouse keeper"]
        assert _texts(store.keyword(ANN, "小白", 5)) == ["我的猫叫小白"]
        assert _texts(store.dense(ANN, "the lighthouse keeper", 1)) == ["the lighthouse keeper"]


def test_another_model_or_dimension_is_an_error(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "m", embedder=FakeEmbeddings(64)) as store:
        store.add(ANN, [NewMemory(text="hello")])
        store.add_shared("mira", [NewMemory(text="lore", kind="lore")])
    with MemoryStore(tmp_path / "m", embedder=FakeEmbeddings(32)) as store:
        with pytest.raises(MemoryStoreError) as caught:
            store.dense(ANN, "hello", 3)
        message = str(caught.value)
        assert "'fake-bow-64' (64 dimensions)" in message
        assert "'fake-bow-32' (32 dimensions)" in message
        assert "same embedding model" in message and "new data directory" in message
        with pytest.raises(MemoryStoreError, match="fake-bow-64"):
            store.add(ANN, [NewMemory(text="more")])
        with pytest.raises(MemoryStoreError, match="fake-bow-64"):
            store.keyword(BOB, "lore", 3)


def test_a_second_process_gets_a_clear_error_fast(store: MemoryStore) -> None:
    assert store.path is not None
    code = textwrap.dedent(f"""
        from pathlib import Path
        from personae.memory.store import MemoryStore
        from personae.errors import MemoryStoreError
        from personae.testing import FakeEmbeddings
        try:
            MemoryStore(Path({str(store.path)!r}), embedder=FakeEmbeddings())
        except MemoryStoreError as exc:
            print(exc)
            raise SystemExit(3)
    """)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    elapsed = time.monotonic() - start
    assert proc.returncode == 3, proc.stderr
    assert str(store.path) in proc.stdout
    assert f"pid {os.getpid()}" in proc.stdout
    assert "chroma run --path" in proc.stdout and "PERSONAE_CHROMA_URL" in proc.stdout
    assert elapsed < 15


def test_the_directory_is_free_again_after_close(tmp_path: Path, embedder: FakeEmbeddings) -> None:
    first = MemoryStore(tmp_path / "m", embedder=embedder)
    with pytest.raises(MemoryStoreError, match="this process"):
        MemoryStore(tmp_path / "m", embedder=embedder)
    first.close()
    with MemoryStore(tmp_path / "m", embedder=embedder) as second:
        assert second.list(ANN) == []


def test_a_path_server_or_client_is_required() -> None:
    with pytest.raises(MemoryStoreError, match="data directory"):
        MemoryStore(embedder=FakeEmbeddings())


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MemoryStoreError, match="chroma run"):
        MemoryStore(tmp_path, server="http://127.0.0.1:9", embedder=FakeEmbeddings())


def test_from_settings_uses_home_and_the_server_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home")
    with MemoryStore.from_settings(settings, embedder=FakeEmbeddings()) as store:
        assert store.mode == "embedded" and store.path == tmp_path / "home" / "memory"
    monkeypatch.setenv("PERSONAE_CHROMA_URL", "http://127.0.0.1:9")
    with pytest.raises(MemoryStoreError, match=r"127\.0\.0\.1:9"):
        MemoryStore.from_settings(settings, embedder=FakeEmbeddings())


def test_an_injected_client_is_used_and_left_open(tmp_path: Path) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=str(tmp_path / "own"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    with MemoryStore(client=client, embedder=FakeEmbeddings()) as store:
        store.add(ANN, [NewMemory(text="through my own client")])
        assert store.mode == "client"
        assert _texts(store.keyword(ANN, "client", 3)) == ["through my own client"]
    assert any(c.name.startswith("personae-") for c in client.list_collections())


@pytest.mark.slow
def test_real_model_recalls_by_meaning(tmp_path: Path) -> None:
    from personae.memory.embeddings import default_embedder

    with MemoryStore(tmp_path / "m", embedder=default_embedder()) as store:
        store.add(ANN, [NewMemory(text="My granddaughter Lily visits every Sunday"),
                        NewMemory(text="The boiler broke last winter"),
                        NewMemory(text="I used to work as a nurse")])
        found = store.dense(ANN, "Who comes to see you at the weekend?", 3)
        assert _texts(found)[0] == "My granddaughter Lily visits every Sunday"


def test_a_stale_keyword_index_is_rebuilt_on_open(tmp_path: Path, embedder: FakeEmbeddings) -> None:
    root = tmp_path / "m"
    with MemoryStore(root, embedder=embedder) as store:
        store.add(ANN, [NewMemory(text="the lighthouse keeper")])
    saved = (root / "keyword.sqlite").read_bytes()
    with MemoryStore(root, embedder=embedder) as store:
        store.add(ANN, [NewMemory(text="a lighthouse storm")])
    for suffix in ("-wal", "-shm"):
        (root / f"keyword.sqlite{suffix}").unlink(missing_ok=True)
    (root / "keyword.sqlite").write_bytes(saved)
    with MemoryStore(root, embedder=embedder) as store:
        assert sorted(_texts(store.keyword(ANN, "lighthouse", 5))) == [
            "a lighthouse storm", "the lighthouse keeper"]
        assert len(store.list(ANN)) == 2
