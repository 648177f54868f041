"""Speed of `MemoryStore`: recall and writes against bare Chroma, in one run.

Three measurements, each ours against a bare `chromadb` baseline holding the
same vectors, documents and metadata, queries interleaved:

1. Recall in one scope holding N memories (`--sizes`): `MemoryStore.dense`
   (top 10) against `collection.query` on one collection.
2. Write throughput: `MemoryStore.add` in batches (content-hash dedupe, Chroma,
   keyword index) against `collection.add` of the same records; and `add`
   with the real model embedding every text.
3. Many users in one persona (`--users`, the largest size in total): one
   user's recall against (a) an unfiltered query on a collection holding only
   that user's memories, and (b) a filtered query (`where={"user": ...}`)
   over one collection holding everyone's.

Recall times include embedding the query with all-MiniLM-L6-v2 on both sides:
each query text is encoded for real at query time (the embedder's cache is
off). Embedding 100k texts with MiniLM on 2 cores takes too long, so stored
memories are made from a pool of `--pool` distinct generated sentences,
embedded once with MiniLM: memory i is pool sentence i mod pool with a note
number appended, and its vector is that sentence's vector plus small Gaussian
noise, renormalised. Query texts are separate generated sentences.

    python benchmarks/memory_speed.py [--sizes 10000,100000] [--users 100] [--json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from personae.memory.embeddings import MiniLMEmbedder  # noqa: E402
from personae.memory.records import NewMemory, content_hash  # noqa: E402
from personae.memory.store import MemoryStore  # noqa: E402
from personae.scope import Scope  # noqa: E402

NAMES = ["Ann", "Bob", "Carol", "Dev", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kemi",
         "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tomas"]
VERBS = ["visited", "talked about", "lost", "found", "cooked", "painted", "repaired", "sold",
         "bought", "planted", "forgot", "remembered", "wrote about", "dreamed of", "photographed",
         "borrowed", "cleaned", "built", "carried", "sang about"]
THINGS = ["the old bicycle", "a red kite", "grandma's recipe book", "the garden shed",
          "a silver ring", "the village bakery", "a birthday cake", "the fishing boat",
          "a wooden chair", "the family dog", "a blue scarf", "the piano", "a jar of honey",
          "the school concert", "a train ticket", "the broken clock", "a wedding photo",
          "the lighthouse", "a new job", "the football match", "a letter from Spain",
          "the apple tree", "a pair of boots", "the doctor's appointment", "a chess set"]
PLACES = ["at the market", "by the river", "in the kitchen", "at work", "in the park",
          "on the beach", "at the station", "in the attic", "at church", "in town",
          "at the hospital", "in the garden", "at the library", "on holiday", "at school"]
TIMES = ["last Sunday", "this morning", "yesterday", "in the spring", "two weeks ago",
         "on her birthday", "after lunch", "before the storm", "at Christmas", "last night"]
QUESTIONS = ["What did {n} do with {t}?", "When was {n} {p}?", "Who {v} {t}?",
             "Tell me about {t}.", "Did {n} ever mention {t} {p}?"]
TOP_K = 10


def _sentences(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < count:
        seen.add(f"{rng.choice(NAMES)} {rng.choice(VERBS)} {rng.choice(THINGS)} "
                 f"{rng.choice(PLACES)} {rng.choice(TIMES)}.")
    return sorted(seen)


def _questions(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(QUESTIONS).format(n=rng.choice(NAMES), t=rng.choice(THINGS),
                                         p=rng.choice(PLACES), v=rng.choice(VERBS))
            + f" ({i})" for i in range(count)]


class PoolEmbedder:
    """MiniLM for query texts; precomputed vectors for the generated memories."""

    def __init__(self, model: MiniLMEmbedder) -> None:
        self.model = model
        self.model_id = model.model_id
        self.dimension = model.dimension
        self.known: dict[str, list[float]] = {}

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        missing = [t for t in texts if t not in self.known]
        fresh = dict(zip(missing, self.model.embed(missing), strict=True)) if missing else {}
        return [self.known[t] if t in self.known else fresh[t] for t in texts]


class Corpus:
    """Memory i: pool sentence i mod pool + a note number; its vector perturbed from the pool's."""

    def __init__(self, pool: list[str], vectors: np.ndarray, total: int, users: int) -> None:
        rng = np.random.default_rng(7)
        self.texts = [f"{pool[i % len(pool)]} (note {i})" for i in range(total)]
        base = vectors[np.arange(total) % len(pool)]
        noisy = base + rng.normal(0.0, 0.25 / np.sqrt(vectors.shape[1]), base.shape)
        self.vectors = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)
        self.users = [f"user{i % users}" for i in range(total)]

    def register(self, embedder: PoolEmbedder, indices: Sequence[int]) -> None:
        for i in indices:
            embedder.known[self.texts[i]] = self.vectors[i].tolist()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _stats(times: list[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(times) * 1000, "p95_ms": _pct(times, 0.95) * 1000}


def _interleaved(paths: dict[str, Callable[[str], object]], queries: list[str],
                 warmup: int = 5) -> dict[str, dict[str, float]]:
    for query in queries[:warmup]:
        for run in paths.values():
            run(query)
    times: dict[str, list[float]] = {name: [] for name in paths}
    for i, query in enumerate(queries):
        names = list(paths)
        if i % 2:
            names.reverse()
        for name in names:
            start = time.perf_counter()
            paths[name](query)
            times[name].append(time.perf_counter() - start)
    return {name: _stats(values) for name, values in times.items()}


def _bare_client(path: Path) -> Any:
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


def _bare_collection(client: Any, name: str, corpus: Corpus, indices: Sequence[int]) -> Any:
    """The same vectors, texts and record fields as the store writes, in one plain collection."""
    collection = client.create_collection(name, configuration={"hnsw": {"space": "cosine"}},
                                          embedding_function=None)
    step = client.get_max_batch_size()
    for start in range(0, len(indices), step):
        some = indices[start:start + step]
        collection.add(ids=[f"r{i}" for i in some], embeddings=corpus.vectors[list(some)],
                       documents=[corpus.texts[i] for i in some],
                       metadatas=[{"persona": "bench", "user": corpus.users[i], "kind": "episode",
                                   "importance": 5, "created_at": 1.7e9 + i,
                                   "accessed_at": 1.7e9 + i,
                                   "content_hash": content_hash(corpus.texts[i])}
                                  for i in some])
    return collection


def _store_add(store: MemoryStore, scope: Scope, corpus: Corpus, indices: Sequence[int],
               batch: int) -> float:
    start = time.perf_counter()
    for at in range(0, len(indices), batch):
        some = indices[at:at + batch]
        store.add(scope, [NewMemory(text=corpus.texts[i], created_at=1.7e9 + i) for i in some])
    return time.perf_counter() - start


def _single_scope(home: Path, bare: Any, model: MiniLMEmbedder, embedder: PoolEmbedder,
                  corpus: Corpus, size: int, queries: list[str],
                  batch: int) -> tuple[dict[str, float], Any]:
    indices = list(range(size))
    corpus.register(embedder, indices)
    scope = Scope(persona="bench", user="solo")
    with MemoryStore(home / f"one-{size}", embedder=embedder) as store:
        ours_add = _store_add(store, scope, corpus, indices, batch)
        start = time.perf_counter()
        collection = _bare_collection(bare, f"one-{size}", corpus, indices)
        bare_add = time.perf_counter() - start
        times = _interleaved({
            "personae": lambda q: store.dense(scope, q, TOP_K),
            "bare": lambda q: collection.query(query_embeddings=model.embed([q]), n_results=TOP_K),
        }, queries)
        # The same without the query embedding: what the store itself adds.
        vectors = {q: model.embed([q])[0] for q in queries}
        raw = _interleaved({
            "personae": lambda q: store.dense(scope, vectors[q], TOP_K),
            "bare": lambda q: collection.query(query_embeddings=[vectors[q]], n_results=TOP_K),
        }, queries, warmup=0)
    row = {**{f"personae_{k}": v for k, v in times["personae"].items()},
           **{f"bare_{k}": v for k, v in times["bare"].items()},
           "ratio_p50": times["personae"]["p50_ms"] / times["bare"]["p50_ms"],
           "ratio_p95": times["personae"]["p95_ms"] / times["bare"]["p95_ms"],
           **{f"no_embed_personae_{k}": v for k, v in raw["personae"].items()},
           **{f"no_embed_bare_{k}": v for k, v in raw["bare"].items()},
           "personae_add_per_s": size / ours_add,
           "bare_add_per_s": size / bare_add}
    print(f"one scope, {size:>7} memories: recall p50 {row['personae_p50_ms']:.2f} ms "
          f"p95 {row['personae_p95_ms']:.2f} ms | bare p50 {row['bare_p50_ms']:.2f} ms "
          f"p95 {row['bare_p95_ms']:.2f} ms | ratio p95 {row['ratio_p95']:.2f}x")
    print(f"  without the query embedding: p50 {row['no_embed_personae_p50_ms']:.2f} ms "
          f"p95 {row['no_embed_personae_p95_ms']:.2f} ms | bare p50 "
          f"{row['no_embed_bare_p50_ms']:.2f} ms p95 {row['no_embed_bare_p95_ms']:.2f} ms")
    print(f"  writes (vectors ready, batches of {batch}): {row['personae_add_per_s']:.0f}/s "
          f"vs bare {row['bare_add_per_s']:.0f}/s "
          f"({row['personae_add_per_s'] / row['bare_add_per_s']:.2f}x)")
    return row, collection


def _writes_with_embedding(home: Path, model: MiniLMEmbedder, texts: list[str]) -> float:
    with MemoryStore(home / "embed-writes", embedder=model) as store:
        start = time.perf_counter()
        for at in range(0, len(texts), 100):
            store.add(Scope(persona="bench", user="writer"),
                      [NewMemory(text=t) for t in texts[at:at + 100]])
        rate = len(texts) / (time.perf_counter() - start)
    print(f"writes with MiniLM embedding every text (batches of 100): {rate:.0f}/s")
    return rate


def _many_users(home: Path, bare: Any, everyone: Any, model: MiniLMEmbedder,
                embedder: PoolEmbedder, corpus: Corpus, users: int, queries: list[str],
                batch: int) -> dict[str, float]:
    """Recall for one user of many; `everyone` is a bare collection of all the memories."""
    total = len(corpus.texts)
    corpus.register(embedder, range(total))
    query_users = [f"user{u}" for u in range(0, users, max(1, users // 5))][:5]
    turn = [0]

    def who() -> str:
        turn[0] += 1
        return query_users[turn[0] % len(query_users)]

    with MemoryStore(home / "many", embedder=embedder) as store:
        start = time.perf_counter()
        for u in range(users):
            _store_add(store, Scope(persona="bench", user=f"user{u}"), corpus,
                       list(range(u, total, users)), batch)
        many_add = time.perf_counter() - start
        alone = {user: _bare_collection(bare, f"alone-{user}", corpus,
                                        [i for i in range(total) if corpus.users[i] == user])
                 for user in query_users}
        times = _interleaved({
            "personae": lambda q: store.dense(Scope(persona="bench", user=who()), q, TOP_K),
            "bare_user_collection": lambda q: alone[who()].query(
                query_embeddings=model.embed([q]), n_results=TOP_K),
            "bare_filtered": lambda q: everyone.query(
                query_embeddings=model.embed([q]), n_results=TOP_K, where={"user": who()}),
        }, queries)
        # The same without the query embedding, where the filter's cost shows plainly.
        vectors = {q: model.embed([q])[0] for q in queries}
        raw = _interleaved({
            "personae": lambda q: store.dense(Scope(persona="bench", user=who()), vectors[q],
                                              TOP_K),
            "bare_user_collection": lambda q: alone[who()].query(
                query_embeddings=[vectors[q]], n_results=TOP_K),
            "bare_filtered": lambda q: everyone.query(
                query_embeddings=[vectors[q]], n_results=TOP_K, where={"user": who()}),
        }, queries, warmup=0)
        # Erasure rewrites the files (merge, vacuum): its cost grows with the store.
        last = Scope(persona="bench", user=f"user{users - 1}")
        start = time.perf_counter()
        store.delete(last, store.list(last, limit=1)[0].id)
        delete_seconds = time.perf_counter() - start
        start = time.perf_counter()
        store.forget(last)
        forget_seconds = time.perf_counter() - start
    row = {**{f"{name}_{k}": v for name, stats in times.items() for k, v in stats.items()},
           **{f"no_embed_{name}_{k}": v for name, stats in raw.items() for k, v in stats.items()},
           "memories": total, "per_user": total // users,
           "personae_add_per_s": total / many_add,
           "ratio_p95_vs_user_collection":
               times["personae"]["p95_ms"] / times["bare_user_collection"]["p95_ms"],
           "ratio_p95_filtered_vs_personae":
               times["bare_filtered"]["p95_ms"] / times["personae"]["p95_ms"],
           "no_embed_ratio_p95_vs_user_collection":
               raw["personae"]["p95_ms"] / raw["bare_user_collection"]["p95_ms"],
           "no_embed_ratio_p95_filtered_vs_personae":
               raw["bare_filtered"]["p95_ms"] / raw["personae"]["p95_ms"],
           "delete_one_s": delete_seconds, "forget_user_s": forget_seconds}
    print(f"{users} users x {total // users} memories in one persona, one user's recall:")
    for name in ("personae", "bare_user_collection", "bare_filtered"):
        print(f"  {name:<22} p50 {times[name]['p50_ms']:.2f} ms  "
              f"p95 {times[name]['p95_ms']:.2f} ms | without the query embedding: "
              f"p50 {raw[name]['p50_ms']:.2f} ms  p95 {raw[name]['p95_ms']:.2f} ms")
    print(f"  ratio p95 personae / bare user collection: "
          f"{row['ratio_p95_vs_user_collection']:.2f}x; bare filtered / personae: "
          f"{row['ratio_p95_filtered_vs_personae']:.2f}x (without embedding: "
          f"{row['no_embed_ratio_p95_vs_user_collection']:.2f}x; "
          f"{row['no_embed_ratio_p95_filtered_vs_personae']:.2f}x)")
    print(f"  erasure with {total} memories on disk: delete one {delete_seconds:.2f} s, "
          f"forget one user {forget_seconds:.2f} s (files rewritten)")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000",
                        help="memories in one scope, comma-separated")
    parser.add_argument("--users", type=int, default=100, help="users in the many-users case")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--pool", type=int, default=5000, help="distinct sentences embedded")
    parser.add_argument("--batch", type=int, default=1000, help="memories per add call")
    parser.add_argument("--quick", action="store_true", help="2k memories, 20 users, 40 queries")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.users, args.queries, args.pool = "2000", 20, 40, 500
    sizes = sorted(int(s) for s in args.sizes.split(","))

    model = MiniLMEmbedder(cache_size=0)
    model.embed(["load the model"])
    start = time.perf_counter()
    pool = _sentences(args.pool, seed=1)
    pool_vectors = np.asarray(model.embed(pool), dtype=np.float32)
    pool_seconds = time.perf_counter() - start
    corpus = Corpus(pool, pool_vectors, max(sizes), args.users)
    queries = _questions(args.queries, seed=2)
    print(f"embedded {args.pool} pool sentences in {pool_seconds:.1f} s; "
          f"query texts embedded at query time on both sides; top {TOP_K}")
    result: dict[str, Any] = {"sizes": sizes, "users": args.users, "queries": args.queries,
                              "pool": args.pool, "top_k": TOP_K,
                              "pool_embed_per_s": args.pool / pool_seconds}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        bare = _bare_client(home / "bare")
        embedder = PoolEmbedder(model)
        result["single_scope"] = {}
        for size in sizes:
            # Memory i belongs to user i mod users, so the largest collection
            # doubles as the everyone-in-one baseline of the many-users case.
            result["single_scope"][str(size)], everyone = _single_scope(
                home, bare, model, embedder, corpus, size, queries, args.batch)
        fresh = _sentences(args.pool + 300, seed=3)[:300]
        result["write_with_embedding_per_s"] = _writes_with_embedding(home, model, fresh)
        result["many_users"] = _many_users(home, bare, everyone, model, embedder, corpus,
                                           args.users, queries, args.batch)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
