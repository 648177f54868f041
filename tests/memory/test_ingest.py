"""Lore ingestion: chunking by format, idempotence, changed files, errors, progress."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from personae.memory.ingest import IngestReport, chunk_file, ingest
from personae.memory.records import content_hash
from personae.memory.store import MemoryStore
from personae.scope import Scope
from personae.testing import FakeEmbeddings
from personae.tokens import default_counter

TOWN_MD = """\
# Oakvale

Oakvale is a river town. It has one bridge.

## The Lantern

The Lantern is the inn by the bridge. Brenna keeps it.

Stew is served at noon.

## The Forge

Goran the smith works the forge. He owes Brenna money.
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    with MemoryStore(tmp_path / "memory", embedder=FakeEmbeddings()) as opened:
        yield opened


def _lore(store: MemoryStore, persona: str = "brenna") -> list[str]:
    records = store.list(Scope(persona=persona), kind="lore", shared=True, limit=10_000)
    return sorted(r.text for r in records)


def test_markdown_is_split_by_headings_with_their_path(tmp_path: Path) -> None:
    path = tmp_path / "town.md"
    path.write_text(TOWN_MD, encoding="utf-8")
    assert chunk_file(path) == [
        "Oakvale\nOakvale is a river town. It has one bridge.",
        "Oakvale > The Lantern\nThe Lantern is the inn by the bridge. Brenna keeps it."
        "\n\nStew is served at noon.",
        "Oakvale > The Forge\nGoran the smith works the forge. He owes Brenna money.",
    ]


def test_headings_inside_code_fences_are_text(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Spells\n\n```\n# not a heading\n```\n", encoding="utf-8")
    assert chunk_file(path) == ["Spells\n```\n# not a heading\n```"]


def test_chunks_keep_to_the_budget_and_end_on_sentences(tmp_path: Path) -> None:
    sentences = [f"Sentence number {i} tells of the old mill and its wheel." for i in range(60)]
    path = tmp_path / "mill.txt"
    path.write_text(" ".join(sentences[:30]) + "\n\n" + " ".join(sentences[30:]), encoding="utf-8")
    counter = default_counter()
    chunks = chunk_file(path, chunk_tokens=60)
    assert len(chunks) > 5
    for chunk in chunks:
        assert counter.count(chunk) <= 60 + 2
        assert chunk.endswith(".")
    assert " ".join(" ".join(chunks).split()) == " ".join(" ".join(sentences).split())


def test_a_sentence_longer_than_a_chunk_is_cut_between_words(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("word " * 500, encoding="utf-8")
    chunks = chunk_file(path, chunk_tokens=50)
    assert len(chunks) >= 10
    assert all(default_counter().count(c) <= 50 for c in chunks)
    assert sum(len(c.split()) for c in chunks) == 500


def test_lore_entries_in_json_and_yaml(tmp_path: Path) -> None:
    world = tmp_path / "world.json"
    world.write_text(json.dumps({"entries": {
        "0": {"key": ["forge"], "comment": "The Forge", "content": "Goran works the forge."},
        "1": {"key": ["mill"], "content": "The mill burned down.", "disable": True},
    }}), encoding="utf-8")
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"spec": "chara_card_v2", "data": {"name": "Brenna",
        "character_book": {"entries": [
            {"keys": ["lantern"], "name": "Lantern", "content": "The inn by the bridge.",
             "enabled": True},
            {"keys": ["x"], "content": "Hidden.", "enabled": False},
        ]}}}), encoding="utf-8")
    book = tmp_path / "book.yaml"
    book.write_text("- keys: [river]\n  content: The river floods in spring.\n", encoding="utf-8")
    assert chunk_file(world) == ["The Forge\nGoran works the forge."]
    assert chunk_file(card) == ["Lantern\nThe inn by the bridge."]
    assert chunk_file(book) == ["The river floods in spring."]


def test_other_data_is_flattened_to_key_value_lines(tmp_path: Path) -> None:
    data = tmp_path / "town.yaml"
    data.write_text(
        "town:\n  name: Oakvale\n  founded: 1204\n  guilds: [smiths, millers]\n"
        "  npcs:\n    - name: Goran\n      job: smith\n",
        encoding="utf-8",
    )
    assert chunk_file(data) == [
        "town.name: Oakvale\ntown.founded: 1204\ntown.guilds: smiths, millers\n"
        "town.npcs[0].name: Goran\ntown.npcs[0].job: smith"
    ]


def test_ingest_stores_shared_lore_with_sources(store: MemoryStore, tmp_path: Path) -> None:
    folder = tmp_path / "lore"
    (folder / "places").mkdir(parents=True)
    (folder / "places" / "town.md").write_text(TOWN_MD, encoding="utf-8")
    (folder / "people.txt").write_text("Goran is gruff.\n\nBrenna is kind.", encoding="utf-8")
    (folder / ".hidden.md").write_text("# Secret", encoding="utf-8")
    report = ingest(store, "brenna", [folder])
    assert report == IngestReport(files=2, chunks=4, added=4, skipped=0, removed=0, errors={})
    assert report.as_dict() == {"files": 2, "chunks": 4, "added": 4, "skipped": 0, "removed": 0,
                                "errors": {}}
    records = store.list(Scope(persona="brenna"), kind="lore", shared=True)
    sources = sorted(r.source or "" for r in records)
    digest = content_hash("Goran is gruff.\n\nBrenna is kind.")[:12]
    assert sources[0] == f"lore/people.txt#0:{digest}"
    assert [s.split(":")[0] for s in sources] == [
        "lore/people.txt#0", "lore/places/town.md#0", "lore/places/town.md#1",
        "lore/places/town.md#2",
    ]
    assert all(r.kind == "lore" for r in records)
    ann = Scope(persona="brenna", user="ann")
    assert store.list(ann) == []
    hits = [r.text for r, _ in store.dense(ann, "Who works the forge?", 2)]
    assert any("Goran the smith works the forge" in text for text in hits)
    assert store.dense(Scope(persona="other", user="ann"), "forge", 5) == []


def test_ingest_twice_adds_nothing(store: MemoryStore, tmp_path: Path) -> None:
    (tmp_path / "town.md").write_text(TOWN_MD, encoding="utf-8")
    first = ingest(store, "brenna", [tmp_path / "town.md"])
    second = ingest(store, "brenna", [tmp_path / "town.md"])
    assert (first.added, first.skipped) == (3, 0)
    assert (second.added, second.skipped, second.removed) == (0, 3, 0)
    assert len(_lore(store)) == 3


def test_a_changed_file_adds_and_removes_only_its_changed_chunks(
    store: MemoryStore, tmp_path: Path
) -> None:
    path = tmp_path / "town.md"
    path.write_text(TOWN_MD, encoding="utf-8")
    other = tmp_path / "other.txt"
    other.write_text("The moon is green here.", encoding="utf-8")
    ingest(store, "brenna", [path, other])
    before = {r.text: r.id for r in store.list(Scope(persona="brenna"), kind="lore", shared=True)}
    path.write_text(TOWN_MD.replace("He owes Brenna money.", "He paid Brenna back."),
                    encoding="utf-8")
    report = ingest(store, "brenna", [path])
    assert (report.chunks, report.added, report.skipped, report.removed) == (3, 1, 2, 1)
    after = {r.text: r.id for r in store.list(Scope(persona="brenna"), kind="lore", shared=True)}
    assert "Oakvale > The Forge\nGoran the smith works the forge. He paid Brenna back." in after
    assert not any("owes" in text for text in after)
    assert "The moon is green here." in after
    unchanged = [text for text in before if "owes" not in text]
    assert all(after[text] == before[text] for text in unchanged)


def test_bad_files_are_reported_not_raised(store: MemoryStore, tmp_path: Path) -> None:
    folder = tmp_path / "lore"
    folder.mkdir()
    (folder / "good.md").write_text("# Ok\n\nFine lore.", encoding="utf-8")
    (folder / "map.png").write_bytes(b"\x89PNG\r\n")
    (folder / "broken.json").write_text('{"a": 1,\n "b": }', encoding="utf-8")
    (folder / "broken.yaml").write_text("a: [1, 2\nb: c\n", encoding="utf-8")
    (folder / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    report = ingest(store, "brenna", [folder, tmp_path / "missing.md"])
    assert report.files == 1 and report.added == 1
    assert set(report.errors) == {"lore/map.png", "lore/broken.json", "lore/broken.yaml",
                                  "lore/latin1.txt", str(tmp_path / "missing.md")}
    assert "unsupported file type '.png'" in report.errors["lore/map.png"]
    assert report.errors["lore/broken.json"].startswith("invalid JSON at line 2")
    assert report.errors["lore/broken.yaml"].startswith("invalid YAML at line")
    assert report.errors["lore/latin1.txt"] == "not UTF-8 text"
    assert report.errors[str(tmp_path / "missing.md")] == "no such file or folder"


def test_progress_reports_chunks(store: MemoryStore, tmp_path: Path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("\n\n".join(f"Fact {i} about the valley." for i in range(200)),
                    encoding="utf-8")
    calls: list[tuple[int, int]] = []
    report = ingest(store, "brenna", [path], chunk_tokens=20,
                    progress=lambda d, t: calls.append((d, t)))
    total = report.added
    assert total == report.chunks > 32
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    empty: list[tuple[int, int]] = []
    ingest(store, "brenna", [path], chunk_tokens=20, progress=lambda d, t: empty.append((d, t)))
    assert empty == [(0, 0)]


def test_lore_of_personas_is_separate(store: MemoryStore, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Only Brenna knows this.", encoding="utf-8")
    ingest(store, "brenna", [tmp_path / "a.txt"])
    report = ingest(store, "mira", [tmp_path / "a.txt"])
    assert report.added == 1
    assert _lore(store, "brenna") == _lore(store, "mira") == ["Only Brenna knows this."]


def test_files_deleted_from_a_folder_are_removed(store: MemoryStore, tmp_path: Path) -> None:
    folder = tmp_path / "lore"
    folder.mkdir()
    (folder / "keep.txt").write_text("The well is deep.", encoding="utf-8")
    (folder / "gone.txt").write_text("The tower fell.", encoding="utf-8")
    (folder / "bad.json").write_text('{"note": "The bell rings at dusk."}', encoding="utf-8")
    (tmp_path / "single.txt").write_text("A lone fact.", encoding="utf-8")
    ingest(store, "brenna", [folder, tmp_path / "single.txt"])
    (folder / "gone.txt").unlink()
    (folder / "bad.json").write_text("{oops", encoding="utf-8")
    report = ingest(store, "brenna", [folder])
    assert report.removed == 1
    assert set(report.errors) == {"lore/bad.json"}
    assert _lore(store) == ["A lone fact.", "The well is deep.", "note: The bell rings at dusk."]
