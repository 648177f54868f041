"""Recall quality on LoCoMo: personae's `recall` against dense-only and BM25-only search.

LoCoMo (Maharana et al., ACL 2024) holds long two-person conversations over
many sessions, with questions whose evidence turns (`dia_id`s) are labelled.
Every turn is stored as an episode memory of its conversation (one scope per
conversation): text ``"Speaker: text"`` plus the shared image's caption,
created at its session's date. Each question of categories 1-4 (multi-hop,
temporal, open-domain, single-hop) is asked, and the evidence turns in the top
k are counted:

- ``recall@k``: mean over questions of (evidence turns in the top k / evidence turns);
- ``any@k``: share of questions with at least one evidence turn in the top k.

Three methods answer through the same `MemoryStore` and the same bundled
all-MiniLM-L6-v2 vectors: personae's `recall` (hybrid scoring), dense-only
cosine top-k (`MemoryStore.dense`), and BM25 alone over the same `tokenize`
(`MemoryStore.keyword`).

Fairness: LoCoMo gives one time per session, so turns are spaced 30 s apart
inside it (a live chat's pace), which `recall`'s neighbour context reads.
Every turn has the neutral importance 5, and after loading, every memory is
touched at one moment, the moment the questions are asked; so recency and
importance are equal for all turns and rank nothing. Questions are asked with
``touch=False`` so that one question cannot change the next one's ranking.
Questions with no evidence turns in the data are skipped.

The data (CC BY-NC 4.0) is read from the zip given with ``--data``, never
copied.

    python benchmarks/memory_locomo.py [--data PATH] [--k 5,10] [--json]
        [--limit-conversations N] [--only NAME,NAME]
"""

from __future__ import annotations

import argparse
import calendar
import json
import re
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from personae.memory.store import MemoryStore
    from personae.scope import Scope

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "locomo-dev.zip"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
METHODS = ("personae", "dense", "bm25")
TURN_SECONDS = 30.0
PERSONA = "locomo"

_SESSION = re.compile(r"session_(\d+)")
_DATE_FORMATS = ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y", "%H:%M on %d %B, %Y")


@dataclass
class Turn:
    dia_id: str
    speaker: str
    text: str
    created_at: float


@dataclass
class Question:
    text: str
    category: int
    evidence: frozenset[str]


@dataclass
class Conversation:
    name: str
    turns: list[Turn]
    questions: list[Question]
    skipped: int = 0


@dataclass
class Tally:
    """Per-question hits of one method, by category."""

    ks: tuple[int, ...]
    rows: list[tuple[int, dict[int, float], dict[int, bool]]] = field(default_factory=list)

    def add(self, category: int, ranked: list[str], evidence: frozenset[str]) -> None:
        fractions, anys = {}, {}
        for k in self.ks:
            found = len(evidence & set(ranked[:k]))
            fractions[k] = found / len(evidence)
            anys[k] = found > 0
        self.rows.append((category, fractions, anys))

    def summary(self, category: int | None = None) -> dict[str, float | None]:
        rows = [r for r in self.rows if category is None or r[0] == category]
        out: dict[str, float | None] = {}
        for k in self.ks:
            out[f"recall@{k}"] = _mean([r[1][k] for r in rows])
        for k in self.ks:
            out[f"any@{k}"] = _mean([float(r[2][k]) for r in rows])
        return out


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _session_time(raw: str | None, fallback: float) -> float:
    if raw:
        for fmt in _DATE_FORMATS:
            try:
                return float(calendar.timegm(datetime.strptime(raw.strip(), fmt).timetuple()))
            except ValueError:
                continue
    return fallback


def _evidence_ids(raw: Iterable[object]) -> set[str]:
    # A few labels hold several ids in one string ("D8:6; D9:17").
    ids: set[str] = set()
    for entry in raw:
        ids.update(part for part in re.split(r"[;,\s]+", str(entry)) if part)
    return ids


def _conversation(name: str, sample: dict[str, Any]) -> Conversation:
    body = sample.get("conversation", sample)
    assert isinstance(body, dict), f"{name}: no conversation"
    numbers = sorted(int(m.group(1)) for key in body if (m := _SESSION.fullmatch(key)))
    turns: list[Turn] = []
    start = 0.0
    for number in numbers:
        start = _session_time(body.get(f"session_{number}_date_time"), start + 86_400.0)
        for i, turn in enumerate(body[f"session_{number}"]):
            text = f"{turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                text += f" [shares {turn['blip_caption']}]"
            turns.append(Turn(turn["dia_id"], turn["speaker"], text, start + i * TURN_SECONDS))
    known = {turn.dia_id for turn in turns}
    questions, skipped = [], 0
    for qa in sample.get("qa", []):
        category = int(qa.get("category", 0))
        if category not in CATEGORIES:
            continue
        evidence = _evidence_ids(qa.get("evidence", [])) & known
        if not evidence:
            skipped += 1
            continue
        questions.append(Question(str(qa["question"]), category, frozenset(evidence)))
    return Conversation(name, turns, questions, skipped)


def load(path: Path) -> list[Conversation]:
    """Read every conversation of a LoCoMo zip (one JSON file each, or a list of samples)."""
    conversations = []
    with zipfile.ZipFile(path) as archive:
        for member in sorted(archive.namelist()):
            if not member.endswith(".json"):
                continue
            data = json.loads(archive.read(member))
            stem = Path(member).stem
            samples = data if isinstance(data, list) else [data]
            for i, sample in enumerate(samples):
                name = str(sample.get("sample_id", stem if len(samples) == 1 else f"{stem}-{i}"))
                conversations.append(_conversation(name, sample))
    return conversations


def _rankers(
    store: MemoryStore, scope: Scope, turns_of: dict[str, list[str]], *, top: int, asked_at: float
) -> dict[str, Callable[[str], list[str]]]:
    """One function per method: question -> dia_ids, best first."""
    from personae.memory.scoring import recall

    def dia(ids: Iterable[str]) -> list[str]:
        return [d for id_ in ids for d in turns_of.get(id_, [])]

    def personae(question: str) -> list[str]:
        found = recall(store, scope, question, limit=top, now=asked_at, touch=False, shared=False)
        return dia(item.record.id for item in found.items)

    def dense(question: str) -> list[str]:
        return dia(record.id for record, _ in store.dense(scope, question, top, shared=False))

    def bm25(question: str) -> list[str]:
        return dia(record.id for record, _ in store.keyword(scope, question, top, shared=False))

    return {"personae": personae, "dense": dense, "bm25": bm25}


def _print_table(title: str, results: dict[str, dict[str, Any]], ks: tuple[int, ...]) -> None:
    columns = [f"recall@{k}" for k in ks] + [f"any@{k}" for k in ks]
    print(title)
    print(f"  {'method':10s} {'slice':14s} " + " ".join(f"{c:>10s}" for c in columns))
    for method in METHODS:
        data = results[method]
        slices = [("overall", data["overall"])]
        slices += [(f"{c} {CATEGORIES[int(c)]}", v) for c, v in data["by_category"].items()]
        for label, values in slices:
            cells = " ".join(
                f"{values[c]:>10.3f}" if values[c] is not None else f"{'-':>10s}" for c in columns
            )
            print(f"  {method:10s} {label:14s} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LoCoMo zip")
    parser.add_argument("--k", default="5,10", help="cut-offs, comma-separated")
    parser.add_argument("--json", action="store_true", help="print the results as JSON last")
    parser.add_argument("--limit-conversations", type=int, default=None, metavar="N")
    parser.add_argument("--only", default=None, help="conversation names, comma-separated")
    args = parser.parse_args()
    ks = tuple(sorted({int(k) for k in args.k.split(",") if k.strip()}))
    if not args.data.is_file():
        sys.exit(f"no LoCoMo zip at {args.data}; pass its path with --data")

    from personae.memory.embeddings import default_embedder
    from personae.memory.records import NewMemory
    from personae.memory.store import MemoryStore
    from personae.scope import Scope

    conversations = load(args.data)
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")}
        conversations = [c for c in conversations if c.name in wanted]
    if args.limit_conversations is not None:
        conversations = conversations[: args.limit_conversations]
    if not conversations:
        sys.exit("no conversations selected")

    embedder = default_embedder()
    tallies = {method: Tally(ks) for method in METHODS}
    per_conversation: list[tuple[str, int, dict[str, float | None]]] = []
    seconds = {method: 0.0 for method in METHODS}
    top = max(ks)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as home, MemoryStore(Path(home), embedder=embedder) as store:
        for number, conversation in enumerate(conversations, 1):
            print(f"[{number}/{len(conversations)}] {conversation.name}: "
                  f"{len(conversation.turns)} turns, {len(conversation.questions)} questions",
                  file=sys.stderr, flush=True)  # fmt: skip
            scope = Scope(persona=PERSONA, user=f"conversation-{conversation.name}")
            records = store.add(scope, [
                NewMemory(text=t.text, kind="episode", importance=5, speaker=t.speaker,
                          created_at=t.created_at, turn_id=t.dia_id)
                for t in conversation.turns
            ])  # fmt: skip
            # Identical turns are stored once; the record stands for all of them.
            turns_of: dict[str, list[str]] = {}
            for turn, record in zip(conversation.turns, records, strict=True):
                turns_of.setdefault(record.id, []).append(turn.dia_id)
            asked_at = max(t.created_at for t in conversation.turns) + 86_400.0
            store.touch(scope, list(turns_of), when=asked_at)
            embedder.embed([q.text for q in conversation.questions])  # warm the cache in batches

            methods = _rankers(store, scope, turns_of, top=top, asked_at=asked_at)
            local = {method: Tally(ks) for method in METHODS}
            for question in conversation.questions:
                for method, rank in methods.items():
                    begin = time.perf_counter()
                    ranked = rank(question.text)
                    seconds[method] += time.perf_counter() - begin
                    tallies[method].add(question.category, ranked, question.evidence)
                    local[method].add(question.category, ranked, question.evidence)
            per_conversation.append((
                conversation.name, len(conversation.questions),
                {method: local[method].summary()[f"recall@{top}"] for method in METHODS},
            ))  # fmt: skip

    questions = len(tallies["personae"].rows)
    results: dict[str, dict[str, Any]] = {
        method: {
            "overall": tallies[method].summary(),
            "by_category": {str(c): tallies[method].summary(c) for c in CATEGORIES},
        }
        for method in METHODS
    }
    skipped = sum(c.skipped for c in conversations)
    _print_table(
        f"LoCoMo evidence recall: {len(conversations)} conversations, {questions} questions "
        f"(categories 1-4; {skipped} without evidence skipped), "
        f"{time.perf_counter() - started:.0f} s",
        results,
        ks,
    )
    print(f"\nrecall@{top} by conversation")
    print(f"  {'conversation':14s} {'questions':>9s} " + " ".join(f"{m:>9s}" for m in METHODS))
    for name, count, values in per_conversation:
        print(f"  {name:14s} {count:>9d} " + " ".join(f"{values[m] or 0:>9.3f}" for m in METHODS))
    overall = {m: tallies[m].summary()[f"recall@{top}"] or 0.0 for m in METHODS}
    best = max(("dense", "bm25"), key=overall.__getitem__)
    gain = overall["personae"] - overall[best]
    print(f"\npersonae recall@{top} vs the better baseline ({best}): {gain * 100:+.1f} points")
    print("mean ms per question: " + ", ".join(
        f"{m} {seconds[m] * 1000 / max(1, questions):.1f}" for m in METHODS))  # fmt: skip
    if args.json:
        print(json.dumps({"methods": results, "questions": questions}))


if __name__ == "__main__":
    main()
