"""Erasure: forgotten and deleted text is in no file under the data directory."""

from __future__ import annotations

import uuid
from pathlib import Path

from personae.memory.records import NewMemory
from personae.memory.store import MemoryStore
from personae.scope import Scope
from personae.testing import FakeEmbeddings

ANN = Scope(persona="mira", user="ann")
BOB = Scope(persona="mira", user="bob")


def _files_containing(root: Path, needle: str) -> list[str]:
    data = needle.encode("utf-8")
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and data in p.read_bytes())


def _fill(store: MemoryStore, scope: Scope, count: int) -> None:
    # Enough writes that Chroma flushes its vector index to disk, so the
    # index files exist and its write log has been partly purged.
    store.add(scope, [NewMemory(text=f"filler memory {i} of {scope.user}") for i in range(count)])


def test_forget_leaves_no_trace_of_a_users_text(tmp_path: Path) -> None:
    ann_secret, bob_secret = uuid.uuid4().hex, uuid.uuid4().hex
    root = tmp_path / "memory"
    with MemoryStore(root, embedder=FakeEmbeddings()) as store:
        _fill(store, ANN, 1200)
        store.add(ANN, [NewMemory(text=f"Ann's code word is {ann_secret}", kind="fact"),
                        NewMemory(text=f"{ann_secret} again, said twice", speaker="Ann"),
                        NewMemory(text=f"她的密码是{ann_secret}")])
        [edited] = store.add(ANN, [NewMemory(text=f"to be edited {ann_secret}")])
        store.update(ANN, edited.id, text="edited away")
        _fill(store, BOB, 30)
        store.add(BOB, [NewMemory(text=f"Bob's code word is {bob_secret}")])
        assert _files_containing(root, ann_secret)
        assert store.forget(ANN) == 1204
        assert _files_containing(root, ann_secret) == []
        assert _files_containing(root, bob_secret)
        assert [r.text for r, _ in store.keyword(BOB, bob_secret, 3)] == [
            f"Bob's code word is {bob_secret}"]
        assert store.dense(BOB, f"Bob's code word is {bob_secret}", 1)[0][0].text.endswith(
            bob_secret)
        assert store.list(ANN) == [] and store.dense(ANN, "code word", 5) == []
        assert store.keyword(ANN, ann_secret, 5) == []
    assert _files_containing(root, ann_secret) == []
    with MemoryStore(root, embedder=FakeEmbeddings()) as store:
        assert store.keyword(ANN, "filler", 5) == []
        assert len(store.list(BOB, limit=1000)) == 31
        store.add(ANN, [NewMemory(text="a fresh start")])
        assert [r.text for r in store.list(ANN)] == ["a fresh start"]


def test_delete_leaves_no_trace_of_one_record(tmp_path: Path) -> None:
    gone, kept = uuid.uuid4().hex, uuid.uuid4().hex
    root = tmp_path / "memory"
    with MemoryStore(root, embedder=FakeEmbeddings()) as store:
        _fill(store, ANN, 20)
        a, b = store.add(ANN, [NewMemory(text=f"delete me {gone}"),
                               NewMemory(text=f"keep me {kept}")])
        lore = store.add_shared("mira", [NewMemory(text=f"old lore {gone}", kind="lore")])[0]
        assert store.delete(ANN, a.id) is True
        assert store.delete(BOB, lore.id) is True
        assert _files_containing(root, gone) == []
        assert _files_containing(root, kept)
        assert store.get(ANN, [a.id, b.id, lore.id]) == [b]
    with MemoryStore(root, embedder=FakeEmbeddings()) as store:
        assert [r.text for r, _ in store.dense(ANN, f"delete me {gone}", 30)
                if gone in r.text] == []
        assert [r.id for r, _ in store.keyword(ANN, kept, 3)] == [b.id]


def test_edited_text_is_gone_after_a_purging_update(tmp_path: Path) -> None:
    old = uuid.uuid4().hex
    root = tmp_path / "memory"
    with MemoryStore(root, embedder=FakeEmbeddings()) as store:
        [record] = store.add(ANN, [NewMemory(text=f"my address is {old}")])
        store.update(ANN, record.id, text="my address is private", purge=True)
        assert _files_containing(root, old) == []
        assert store.get(ANN, [record.id])[0].text == "my address is private"
