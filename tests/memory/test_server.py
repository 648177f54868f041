"""Server mode: the same store against a real `chroma run`, isolation included."""

from __future__ import annotations

from pathlib import Path

import pytest

from personae.errors import MemoryStoreError
from personae.memory.records import NewMemory
from personae.memory.store import MemoryStore
from personae.scope import Scope
from personae.testing import FakeEmbeddings

pytestmark = pytest.mark.slow

ANN = Scope(persona="mira", user="ann")
BOB = Scope(persona="mira", user="bob")
ANN_OTHER_PERSONA = Scope(persona="tor", user="ann")


def test_server_mode_keeps_users_apart(chroma_server: str, tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "a", server=chroma_server, embedder=FakeEmbeddings()) as store:
        assert store.mode == "server"
        store.add(ANN, [NewMemory(text=f"Ann secret {i} about the garden") for i in range(15)])
        store.add(BOB, [NewMemory(text="Bob secret about the garden and his boat")])
        store.add(ANN_OTHER_PERSONA, [NewMemory(text="Ann told Tor about the garden")])
        [lore] = store.add_shared("mira", [NewMemory(text="The garden lore of the village",
                                                     kind="lore")])
        for query in ("garden", "Bob secret about the garden and his boat", "Ann secret"):
            bob = [r.text for r, _ in store.dense(BOB, query, 50)]
            bob += [r.text for r, _ in store.keyword(BOB, query, 50)]
            assert set(bob) <= {"Bob secret about the garden and his boat", lore.text}
            ann = [r.text for r, _ in store.dense(ANN, query, 50)]
            ann += [r.text for r, _ in store.keyword(ANN, query, 50)]
            assert ann and all(t.startswith("Ann secret") or t == lore.text for t in ann)
            tor = [r.text for r, _ in store.dense(ANN_OTHER_PERSONA, query, 50)]
            assert tor == ["Ann told Tor about the garden"]
        assert [r.text for r, _ in store.keyword(BOB, "boat", 5)] == [
            "Bob secret about the garden and his boat"]
        assert store.dense(BOB, "garden", 50, shared=False)[0][0].scope == {"user": "bob"}
        assert store.forget(ANN) == 15
        assert store.dense(ANN, "Ann secret", 5, shared=False) == []
        assert len(store.dense(BOB, "garden", 5, shared=False)) == 1


def test_a_second_process_sees_the_same_memories(chroma_server: str, tmp_path: Path) -> None:
    scope = Scope(persona="mira", user="carol")
    with MemoryStore(tmp_path / "one", server=chroma_server, embedder=FakeEmbeddings()) as one, \
            MemoryStore(tmp_path / "two", server=chroma_server, embedder=FakeEmbeddings(),
                        recheck=0.0) as two:
        assert [r.text for r, _ in two.keyword(scope, "lighthouse", 5)] == []
        one.add(scope, [NewMemory(text="Carol kept the lighthouse")])
        found = two.dense(scope, "Carol kept the lighthouse", 5, shared=False)
        assert [r.text for r, _ in found] == ["Carol kept the lighthouse"]
        assert [r.text for r, _ in two.keyword(scope, "lighthouse", 5, shared=False)] == [
            "Carol kept the lighthouse"]


def test_server_checks_the_model_too(chroma_server: str, tmp_path: Path) -> None:
    scope = Scope(persona="mira", user="dan")
    with MemoryStore(tmp_path / "x", server=chroma_server, embedder=FakeEmbeddings(64)) as store:
        store.add(scope, [NewMemory(text="hello")])
    with MemoryStore(tmp_path / "y", server=chroma_server, embedder=FakeEmbeddings(16)) as store, \
            pytest.raises(MemoryStoreError, match="fake-bow-64"):
        store.dense(scope, "hello", 3)


def test_records_read_in_server_mode_are_fresh(chroma_server: str, tmp_path: Path) -> None:
    scope = Scope(persona="mira", user="erin")
    with MemoryStore(tmp_path / "one", server=chroma_server, embedder=FakeEmbeddings()) as one, \
            MemoryStore(tmp_path / "two", server=chroma_server, embedder=FakeEmbeddings()) as two:
        [record] = one.add(scope, [NewMemory(text="Erin's tea is green", importance=3)])
        assert two.get(scope, [record.id]) == [record]
        one.touch(scope, [record.id], when=4242.0)
        one.update(scope, record.id, importance=9)
        [seen] = two.get(scope, [record.id])
        assert seen.accessed_at == 4242.0 and seen.importance == 9
        assert [r.importance for r in two.list(scope)] == [9]
        assert two.export(scope)[0]["accessed_at"] == 4242.0
        assert two.delete(scope, record.id) is True
        assert one.get(scope, [record.id]) == []
