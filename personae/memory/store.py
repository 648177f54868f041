"""`MemoryStore`: long-term memories in Chroma, partitioned by scope, with a keyword index.

Layout under the data directory (`$PERSONAE_HOME/memory` by default):

```
memory/
  chroma/          Chroma's embedded store (PersistentClient), unless a server is used
  keyword.sqlite   BM25 keyword index and a copy of each record for fast reads
                   (derived from Chroma: rebuilt when missing or behind)
  memory.lock      held by the one process that owns the embedded store
```

Every scope (persona plus its set keys) gets its own Chroma collection, named
from a hash of the scope, and each persona one more for shared lore. A recall
queries the small collection of one scope instead of filtering a large one:
Chroma's metadata-filtered search is 10-100x slower than an unfiltered query
at the selectivity of one user among many. Callers pass a `Scope`, never a
filter, so one user cannot read another's memories through this API.

Erasure is physical: `forget` and `delete` remove the text from Chroma's
write log, merge both full-text indexes and vacuum both SQLite files, so no
file under the data directory keeps it (in embedded mode; a server owns its
own files).
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from personae.errors import MemoryStoreError
from personae.memory._chroma import (
    http_client,
    metadata_of,
    not_found,
    persistent_client,
    purge_chroma_files,
    records_of,
    scrub_chroma_queue,
    stamp,
    take_lock,
)
from personae.memory.embeddings import Embedder, default_embedder
from personae.memory.keyword import KeywordIndex
from personae.memory.records import Kind, MemoryRecord, NewMemory, content_hash
from personae.scope import Scope

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from personae.settings import Settings

__all__ = ["MemoryStore"]

Mode = Literal["embedded", "server", "client"]

_COLLECTION_PREFIX = "personae-"
_SCOPE_ID, _SHARED_ID = "m", "l"
_FETCH_CHUNK = 500


def _part(scope: Scope) -> str:
    key = json.dumps([scope.persona, scope.keys()], sort_keys=True)
    return _SCOPE_ID + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def _shared_part(persona: str) -> str:
    key = json.dumps([persona, "shared"])
    return _SHARED_ID + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


class MemoryStore:
    """A character's long-term memories, kept per scope, searched by meaning and by keyword.

    Chroma runs embedded in the data directory by default (one owner process
    per directory, held by a lock file), or as a server (`chroma run`) that
    several processes and machines share. Both take the same code path. Vectors
    come from `embedder` (all-MiniLM-L6-v2 by default), never from Chroma; the
    model id and dimension are stored with each collection and checked when it
    is opened. All methods block and are thread-safe: call them through
    `asyncio.to_thread` from async code.

    Args:
        path: Data directory; the embedded store, the keyword index and the
            lock live there. Needed unless `server` or `client` is given, in
            which case the keyword index lives there (in memory when `None`).
        client: A ready Chroma client to use instead of opening one.
        server: URL of a Chroma server, e.g. `http://127.0.0.1:8000`.
        embedder: Makes the vectors; `default_embedder()` when `None`.
        embed_batch: Texts embedded per call when adding.
        recheck: Seconds this process trusts what it learnt about collections
            that other processes may change (that one is missing, that the
            keyword index matches one); server and client modes only.

    Raises:
        MemoryStoreError: When another process holds the directory, the
            server cannot be reached, or a collection was embedded with another model.

    Example:
        ```python
        from personae.memory.records import NewMemory
        from personae.memory.store import MemoryStore
        from personae.scope import Scope

        ann = Scope(persona="mira", user="ann")
        with MemoryStore(Path("data/memory")) as store:
            store.add(ann, [NewMemory(text="Ann's granddaughter is called Lily", kind="fact")])
            for record, similarity in store.dense(ann, "What is her grandchild's name?", 5):
                print(f"{similarity:.2f} {record.text}")
        ```

    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        client: ClientAPI | None = None,
        server: str | None = None,
        embedder: Embedder | None = None,
        embed_batch: int = 64,
        recheck: float = 5.0,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.embedder: Embedder = embedder if embedder is not None else default_embedder()
        self.embed_batch = embed_batch
        self.recheck = recheck
        self._lock = threading.RLock()
        self._collections: dict[str, Collection] = {}
        self._missing: dict[str, float] = {}
        self._synced: set[str] = set()
        self._lock_fd: int | None = None
        self._chroma_dir: Path | None = None
        self._owns_client = client is None
        self.mode: Mode
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
        if client is not None:
            self.mode, self._client = "client", client
        elif server:
            self.mode, self._client = "server", http_client(server)
        elif self.path is not None:
            self._lock_fd = take_lock(self.path)
            self._chroma_dir = self.path / "chroma"
            try:
                self.mode, self._client = "embedded", persistent_client(self._chroma_dir)
            except BaseException:
                self._release_lock()
                raise
        else:
            raise MemoryStoreError(
                "MemoryStore needs a data directory (`path`), a Chroma server URL "
                "(`server`, or PERSONAE_CHROMA_URL) or a Chroma `client`"
            )
        # The sole owner of an embedded store reads records from its own
        # index (microseconds); shared stores read Chroma, which others write.
        self._owner = self.mode == "embedded"
        self._index = KeywordIndex(self.path / "keyword.sqlite" if self.path else None)

    @classmethod
    def from_settings(cls, settings: Settings, *, embedder: Embedder | None = None) -> MemoryStore:
        """Open a service's store: `settings.home / "memory"`, server from `PERSONAE_CHROMA_URL`.

        Args:
            settings: Service settings.
            embedder: Makes the vectors; `default_embedder()` when `None`.

        Raises:
            MemoryStoreError: As the constructor.

        """
        server = settings.env("PERSONAE_CHROMA_URL")
        return cls(settings.home / "memory", server=server, embedder=embedder)

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the keyword index and the Chroma client we opened, and release the directory."""
        with self._lock:
            self._index.close()
            if self._owns_client:
                with contextlib.suppress(Exception):
                    getattr(self._client, "close", lambda: None)()
            self._collections.clear()
            self._release_lock()

    # -- writing --------------------------------------------------------------------------

    def add(self, scope: Scope, memories: Sequence[NewMemory]) -> builtins.list[MemoryRecord]:
        """Store memories of a scope; a text already stored there returns the existing record.

        Args:
            scope: Whose memories they are.
            memories: What to store; embedded in batches.

        Returns:
            One record per memory, in order (existing ones for repeated texts).

        """
        return self._add(_part(scope), scope.persona, scope.keys(), memories)

    def add_shared(
        self, persona: str, memories: Sequence[NewMemory]
    ) -> builtins.list[MemoryRecord]:
        """Store persona-wide memories (lore) that every scope of the persona recalls.

        Args:
            persona: Persona id.
            memories: What to store; a text already stored returns the existing record.

        """
        return self._add(_shared_part(persona), persona, {}, memories)

    def update(
        self,
        scope: Scope,
        id: str,
        *,
        text: str | None = None,
        importance: int | None = None,
        purge: bool = False,
    ) -> MemoryRecord:
        """Edit one memory's text (re-embedded) or importance.

        Args:
            scope: The scope the memory belongs to (or any scope of the persona, for lore).
            id: The memory's id.
            text: New text.
            importance: New importance, 1-10.
            purge: Also erase the old text from disk now (see `purge`).

        Raises:
            MemoryStoreError: When the scope holds no such memory or a value is invalid.

        """
        if importance is not None and not 1 <= importance <= 10:
            raise MemoryStoreError(f"importance={importance!r} is outside 1-10; pass 1 to 10")
        if text is not None and not text.strip():
            raise MemoryStoreError("a memory's text cannot be empty; delete the memory instead")
        part, collection, old = self._one(scope, id)
        changes: dict[str, str | int | float | bool] = {}
        if importance is not None:
            changes["importance"] = importance
        new_text = old.text if text is None else text
        vectors: builtins.list[Sequence[float]] = []
        if new_text != old.text:
            changes["content_hash"] = content_hash(new_text)
            vectors = [*self._embed([new_text])]
        with self._lock:
            if vectors:
                collection.update(ids=[id], embeddings=vectors, documents=[new_text],
                                  metadatas=[changes])  # fmt: skip
            elif changes:
                collection.update(ids=[id], metadatas=[changes])
            new = old.model_copy(update={**changes, "text": new_text})
            self._index.put(part, [new])
            if vectors:
                self._scrub([id], deleted=False)
            if purge:
                self.purge()
        return new

    def delete(self, scope: Scope, id: str, *, purge: bool = True) -> bool:
        """Delete one memory, its text gone from every file under the data directory.

        Args:
            scope: The scope the memory belongs to (or any scope of the persona, for lore).
            id: The memory's id.
            purge: Rewrite the files now (`purge()`); pass `False` when deleting
                many and call `purge()` once at the end.

        Returns:
            Whether the memory existed.

        """
        try:
            part, collection, _ = self._one(scope, id)
        except MemoryStoreError:
            return False
        with self._lock:
            collection.delete(ids=[id])
            self._index.remove(part, [id])
            self._scrub([id], deleted=True)
            if purge:
                self.purge()
        return True

    def supersede(self, scope: Scope, old_id: str, new_id: str) -> None:
        """Mark a fact as replaced by a newer one; it is then left out of recall by default.

        Raises:
            MemoryStoreError: When either memory is not in the scope.

        """
        part, collection, old = self._one(scope, old_id)
        self._one(scope, new_id)
        with self._lock:
            collection.update(ids=[old_id], metadatas=[{"superseded_by": new_id}])
            self._index.put(part, [old.model_copy(update={"superseded_by": new_id})])

    def touch(self, scope: Scope, ids: Sequence[str], when: float | None = None) -> None:
        """Set the last-access time of memories (recall does this for what it returns).

        Args:
            scope: The scope the memories belong to; unknown ids are ignored.
            ids: The memories' ids.
            when: Unix time; now when `None`.

        """
        moment = stamp(time.time() if when is None else when)
        for part, collection, some in self._routes(scope, ids):
            with self._lock:
                collection.update(ids=some, metadatas=[{"accessed_at": moment}] * len(some))
                self._index.touch(part, some, moment)

    def forget(self, scope: Scope, *, purge: bool = True) -> int:
        """Erase every memory of a scope, leaving no trace of their text under the data directory.

        Persona-wide lore is not touched. In server mode the server owns its
        files: deleted records are gone from the API at once, and from its
        disk when its own storage compacts (`chroma vacuum` on its directory).

        Args:
            scope: Whose memories to erase.
            purge: Rewrite the files now (see `purge()`).

        Returns:
            How many memories were erased.

        """
        part = _part(scope)
        with self._lock:
            collection = self._collection(part, create=False)
            count = 0
            if collection is not None:
                count = collection.count()
                with contextlib.suppress(*not_found()):
                    self._client.delete_collection(collection.name)
            self._collections.pop(part, None)
            self._missing[part] = time.monotonic()
            self._synced.discard(part)
            count = max(count, self._index.drop(part))
            if purge:
                self.purge()
        return count

    def rewind(self, scope: Scope, *, after: float, purge: bool = False) -> int:
        """Delete the scope's memories stored after a moment, as when a game loads a save.

        Args:
            scope: Whose memories.
            after: Unix time; memories with a later `created_at` are deleted.
            purge: Also erase their text from disk now (see `purge()`).

        Returns:
            How many memories were deleted.

        """
        part = _part(scope)
        doomed = [r.id for r in self.list(scope, limit=sys.maxsize) if r.created_at > after]
        if not doomed:
            return 0
        with self._lock:
            collection = self._collection(part, create=False)
            if collection is None:
                return 0
            collection.delete(ids=doomed)
            self._index.remove(part, doomed)
            self._scrub(doomed, deleted=True)
            if purge:
                self.purge()
        return len(doomed)

    def copy(self, source: Scope, target: Scope, *, until: float | None = None) -> int:
        """Copy a scope's memories (superseded facts left out) into another scope.

        Times, importance and the other fields are kept; texts the target
        already holds are not stored twice.

        Args:
            source: Whose memories.
            target: Where the copies go (e.g. the same player in another save slot).
            until: Unix time; only memories stored up to it are copied. None: all.

        Returns:
            How many memories the source had to copy.

        """
        records = [
            r for r in self.list(source, include_superseded=False, limit=sys.maxsize)
            if until is None or r.created_at <= until
        ]
        fields = set(NewMemory.model_fields)
        memories = [NewMemory(**r.model_dump(include=fields)) for r in reversed(records)]
        self.add(target, memories)
        return len(memories)

    def purge(self) -> None:
        """Rewrite the store's files so deleted and edited text is gone from disk.

        Compacts the keyword index, and, in embedded mode, Chroma's SQLite file
        (its full-text index merged, the file vacuumed) and the index folders
        of deleted collections. Takes time proportional to the store's size.
        """
        with self._lock:
            try:
                self._index.purge()
                if self._chroma_dir is not None:
                    purge_chroma_files(self._chroma_dir)
            except sqlite3.Error as exc:
                raise MemoryStoreError(
                    f"the memories are deleted, but rewriting the files under {str(self.path)!r} "
                    f"failed ({exc}); their text may remain on disk until `purge()` succeeds: "
                    "call it again when the store is idle"
                ) from exc

    # -- reading --------------------------------------------------------------------------

    def dense(
        self,
        scope: Scope,
        query: str | Sequence[float],
        n: int,
        *,
        shared: bool = True,
        include_superseded: bool = False,
    ) -> builtins.list[tuple[MemoryRecord, float]]:
        """Return the `n` memories most similar in meaning to the query, best first.

        Args:
            scope: Whose memories to search.
            query: Text (embedded here) or a ready query vector.
            n: Most results.
            shared: Also search the persona's shared lore.
            include_superseded: Also return superseded facts.

        Returns:
            `(record, cosine similarity)` pairs.

        """
        if n <= 0:
            return []
        vector = self._embed([query])[0] if isinstance(query, str) else list(query)
        if len(vector) != self.embedder.dimension:
            raise MemoryStoreError(
                f"query vector has {len(vector)} dimensions, the store's model "
                f"{self.embedder.model_id!r} has {self.embedder.dimension}"
            )
        found: builtins.list[tuple[MemoryRecord, float]] = []
        for part, collection in self._open(scope, shared):
            found.extend(self._nearest(part, collection, vector, n, include_superseded))
        found.sort(key=lambda pair: pair[1], reverse=True)
        return found[:n]

    def keyword(
        self,
        scope: Scope,
        query: str,
        n: int,
        *,
        shared: bool = True,
        include_superseded: bool = False,
    ) -> builtins.list[tuple[MemoryRecord, float]]:
        """Return the `n` memories that best match the query's words (BM25), best first.

        Stop-words are dropped from the query; Chinese, Japanese and Korean
        text is matched by character bigrams (see `personae.memory.text`).

        Args:
            scope: Whose memories to search.
            query: Free text.
            n: Most results.
            shared: Also search the persona's shared lore.
            include_superseded: Also return superseded facts.

        Returns:
            `(record, BM25 score)` pairs; scores are positive, higher is better.

        """
        collections = dict(self._open(scope, shared))
        hits = self._index.search(list(collections), query, n,
                                  include_superseded=include_superseded)  # fmt: skip
        records: dict[str, MemoryRecord] = {}
        for part, collection in collections.items():
            records.update(self._read(part, collection, [i for p, i, _ in hits if p == part]))
        return [
            (records[id_], score)
            for _, id_, score in hits
            if id_ in records and (include_superseded or records[id_].superseded_by is None)
        ]

    def get(self, scope: Scope, ids: Sequence[str]) -> builtins.list[MemoryRecord]:
        """Return the scope's memories (and its persona's lore) with these ids, in order.

        Ids of other scopes, and unknown ids, are left out.
        """
        records: dict[str, MemoryRecord] = {}
        for part, collection, some in self._routes(scope, ids):
            records.update(self._read(part, collection, some))
        return [records[id_] for id_ in ids if id_ in records]

    def list(
        self,
        scope: Scope,
        *,
        kind: Kind | None = None,
        include_superseded: bool = True,
        limit: int = 100,
        offset: int = 0,
        shared: bool = False,
    ) -> builtins.list[MemoryRecord]:
        """Return a page of the scope's memories, newest first.

        Args:
            scope: Whose memories to list.
            kind: Only this kind.
            include_superseded: Also list superseded facts.
            limit: Page size.
            offset: Memories to skip.
            shared: List the persona's shared lore instead of the scope's own memories.

        """
        part = _shared_part(scope.persona) if shared else _part(scope)
        collection = self._collection(part, create=False)
        if collection is None:
            return []
        if self._owner:
            self._sync(part, collection)
            return self._index.page(part, kind=kind, include_superseded=include_superseded,
                                    limit=limit, offset=offset)  # fmt: skip
        records = [
            record
            for record in self._fetch_all(collection).values()
            if (kind is None or record.kind == kind)
            and (include_superseded or record.superseded_by is None)
        ]
        records.sort(key=lambda record: record.created_at, reverse=True)
        return records[offset : offset + limit]

    def export(self, scope: Scope) -> builtins.list[dict[str, object]]:
        """Return every memory of the scope as JSON-ready dicts, oldest first (lore excluded)."""
        records = self.list(scope, limit=sys.maxsize)
        return [record.model_dump(mode="json") for record in reversed(records)]

    def scopes(self, persona: str | None = None) -> builtins.list[Scope]:
        """Return the scopes that have memories, of one persona or of all."""
        found = []
        for collection in self._all_collections():
            meta = collection.metadata or {}
            if meta.get("personae_kind") != "scope":
                continue
            if persona is not None and meta.get("persona") != persona:
                continue
            keys = json.loads(str(meta.get("scope_keys", "{}")))
            found.append(Scope(persona=str(meta.get("persona")), **keys))
        return sorted(found, key=Scope.key)

    def stats(self, persona: str | None = None) -> dict[str, object]:
        """Return counts of scopes and memories per persona, and how the store is set up."""
        personas: dict[str, dict[str, int]] = {}
        for collection in self._all_collections():
            meta = collection.metadata or {}
            name = str(meta.get("persona"))
            if persona is not None and name != persona:
                continue
            entry = personas.setdefault(name, {"scopes": 0, "memories": 0, "shared": 0})
            if meta.get("personae_kind") == "shared":
                entry["shared"] += collection.count()
            else:
                entry["scopes"] += 1
                entry["memories"] += collection.count()
        return {
            "mode": self.mode,
            "path": str(self.path) if self.path is not None else None,
            "model_id": self.embedder.model_id,
            "dimension": self.embedder.dimension,
            "memories": sum(p["memories"] + p["shared"] for p in personas.values()),
            "personas": personas,
        }

    # -- internals ------------------------------------------------------------------------

    def _add(
        self, part: str, persona: str, keys: dict[str, str], memories: Sequence[NewMemory]
    ) -> builtins.list[MemoryRecord]:
        if not memories:
            return []
        collection = self._collection(part, create=True, persona=persona, keys=keys)
        assert collection is not None
        self._sync(part, collection)
        hashes = [content_hash(memory.text) for memory in memories]
        firsts: dict[str, NewMemory] = {}
        for h, memory in zip(hashes, memories, strict=True):
            firsts.setdefault(h, memory)
        known = self._by_hash(part, collection, list(firsts))
        todo = [(h, m) for h, m in firsts.items() if h not in known]
        # Embedding is the slow part: done outside the lock, the check for
        # texts stored meanwhile by another thread is repeated inside.
        vectors = self._embed([m.text for _, m in todo])
        with self._lock:
            known.update(self._by_hash(part, collection, [h for h, _ in todo]))
            now = time.time()
            fresh: builtins.list[tuple[MemoryRecord, Sequence[float]]] = []
            for (h, memory), vector in zip(todo, vectors, strict=True):
                if h in known:
                    continue
                created = stamp(memory.created_at if memory.created_at is not None else now)
                known[h] = record = MemoryRecord(
                    id=part[0] + uuid.uuid4().hex,
                    persona=persona,
                    scope=keys,
                    created_at=created,
                    accessed_at=created,
                    content_hash=h,
                    **memory.model_dump(exclude={"created_at"}),
                )
                fresh.append((record, vector))
            step = max(1, self._client.get_max_batch_size())
            for start in range(0, len(fresh), step):
                batch = fresh[start : start + step]
                collection.add(
                    ids=[r.id for r, _ in batch],
                    embeddings=[v for _, v in batch],
                    documents=[r.text for r, _ in batch],
                    metadatas=[metadata_of(r) for r, _ in batch],
                )
            self._index.put(part, [r for r, _ in fresh])
        return [known[h] for h in hashes]

    def _embed(self, texts: Sequence[str]) -> builtins.list[builtins.list[float]]:
        vectors: builtins.list[builtins.list[float]] = []
        for start in range(0, len(texts), self.embed_batch):
            vectors.extend(self.embedder.embed(texts[start : start + self.embed_batch]))
        for vector in vectors:
            if len(vector) != self.embedder.dimension:
                raise MemoryStoreError(
                    f"embedder {self.embedder.model_id!r} returned {len(vector)} dimensions "
                    f"but declares {self.embedder.dimension}; fix its `dimension`"
                )
        return vectors

    def _nearest(
        self,
        part: str,
        collection: Collection,
        vector: builtins.list[float],
        n: int,
        include_superseded: bool,
    ) -> builtins.list[tuple[MemoryRecord, float]]:
        wanted = n
        query: builtins.list[Sequence[float]] = [vector]
        while True:
            try:
                result = collection.query(
                    query_embeddings=query,
                    n_results=wanted,
                    include=["distances"] if self._owner else
                    ["distances", "documents", "metadatas"],
                )  # fmt: skip
            except not_found():
                self._forget_cached(part)
                return []
            ids = result["ids"][0]
            distances = (result["distances"] or [[]])[0]
            if self._owner:
                records = self._index.get(part, ids)
            else:
                records = records_of({"ids": ids, "documents": (result["documents"] or [[]])[0],
                                    "metadatas": (result["metadatas"] or [[]])[0]})  # fmt: skip
            kept = [
                (records[id_], 1.0 - float(distance))
                for id_, distance in zip(ids, distances, strict=True)
                if id_ in records and (include_superseded or records[id_].superseded_by is None)
            ]
            # Superseded facts among the nearest: ask for more until n are live.
            if len(kept) >= n or len(ids) < wanted:
                return kept[:n]
            wanted = wanted * 2 + (n - len(kept))

    def _open(self, scope: Scope, shared: bool) -> builtins.list[tuple[str, Collection]]:
        parts = [_part(scope), _shared_part(scope.persona)] if shared else [_part(scope)]
        opened = []
        for part in parts:
            collection = self._collection(part, create=False)
            if collection is not None:
                self._sync(part, collection)
                opened.append((part, collection))
        return opened

    def _one(self, scope: Scope, id: str) -> tuple[str, Collection, MemoryRecord]:
        for part, collection, _ in self._routes(scope, [id]):
            found = self._read(part, collection, [id])
            if id in found:
                return part, collection, found[id]
        raise MemoryStoreError(f"no memory {id!r} in scope {scope.key()!r}")

    def _routes(
        self, scope: Scope, ids: Sequence[str]
    ) -> builtins.list[tuple[str, Collection, builtins.list[str]]]:
        # An id's first letter says whether it is the scope's or the persona's lore.
        groups: dict[str, builtins.list[str]] = {}
        for id_ in ids:
            if id_[:1] == _SHARED_ID:
                groups.setdefault(_shared_part(scope.persona), []).append(id_)
            elif id_[:1] == _SCOPE_ID:
                groups.setdefault(_part(scope), []).append(id_)
        routes = []
        for part, some in groups.items():
            collection = self._collection(part, create=False)
            if collection is not None:
                self._sync(part, collection)
                routes.append((part, collection, some))
        return routes

    def _collection(
        self,
        part: str,
        *,
        create: bool,
        persona: str = "",
        keys: Mapping[str, str] | None = None,
    ) -> Collection | None:
        cached = self._collections.get(part)
        if cached is not None:
            return cached
        missed = self._missing.get(part)
        if not create and missed is not None and (
            self._owner or time.monotonic() - missed < self.recheck
        ):
            return None
        name = _COLLECTION_PREFIX + part
        with self._lock:
            try:
                if create:
                    collection = self._client.get_or_create_collection(
                        name,
                        configuration={"hnsw": {"space": "cosine"}},
                        metadata={
                            "personae_kind": "shared" if part[0] == _SHARED_ID else "scope",
                            "persona": persona,
                            "scope_keys": json.dumps(dict(keys or {}), sort_keys=True),
                            "model_id": self.embedder.model_id,
                            "dimension": self.embedder.dimension,
                        },
                        embedding_function=None,
                    )
                else:
                    collection = self._client.get_collection(name, embedding_function=None)
            except not_found():
                self._missing[part] = time.monotonic()
                return None
            except Exception as exc:
                raise MemoryStoreError(
                    f"Chroma cannot open collection {name!r} ({type(exc).__name__}: {exc})"
                ) from exc
            self._check_model(collection)
            self._collections[part] = collection
            self._missing.pop(part, None)
            return collection

    def _check_model(self, collection: Collection) -> None:
        meta = collection.metadata or {}
        model, dimension = meta.get("model_id"), meta.get("dimension")
        if model == self.embedder.model_id and dimension == self.embedder.dimension:
            return
        raise MemoryStoreError(
            f"memory collection {collection.name!r} of persona {meta.get('persona')!r} was "
            f"embedded with {model!r} ({dimension} dimensions), but the store is configured "
            f"with {self.embedder.model_id!r} ({self.embedder.dimension} dimensions); "
            "configure the same embedding model again, or re-embed: point the store at a new "
            "data directory (PERSONAE_HOME) and write the memories there"
        )

    def _forget_cached(self, part: str) -> None:
        with self._lock:
            self._collections.pop(part, None)
            self._missing[part] = time.monotonic()
            self._synced.discard(part)

    def _sync(self, part: str, collection: Collection) -> None:
        """Rebuild the partition's index from Chroma when it is missing or behind."""
        if part in self._synced:
            return
        now = time.time()
        if not self._owner and now - self._index.checked_at(part) < self.recheck:
            return
        with self._lock:
            if part in self._synced:
                return
            if not self._index.known(part) or collection.count() != self._index.count(part):
                self._index.rebuild(part, self._fetch_all(collection).values())
            if self._owner:
                # One check per process: afterwards only this process writes.
                self._synced.add(part)
            else:
                self._index.mark_checked(part, now)

    def _read(
        self, part: str, collection: Collection, ids: Sequence[str]
    ) -> dict[str, MemoryRecord]:
        if self._owner:
            return self._index.get(part, ids)
        if not ids:
            return {}
        try:
            result = collection.get(ids=list(ids), include=["documents", "metadatas"])
        except not_found():
            return {}
        return records_of(result)

    def _by_hash(
        self, part: str, collection: Collection, hashes: Sequence[str]
    ) -> dict[str, MemoryRecord]:
        if self._owner:
            return self._index.by_hash(part, hashes)
        found: dict[str, MemoryRecord] = {}
        for start in range(0, len(hashes), _FETCH_CHUNK):
            where = {"content_hash": {"$in": list(hashes[start : start + _FETCH_CHUNK])}}
            result = collection.get(where=where, include=["documents", "metadatas"])  # type: ignore[arg-type]
            for record in records_of(result).values():
                found.setdefault(record.content_hash, record)
        return found

    def _fetch_all(self, collection: Collection) -> dict[str, MemoryRecord]:
        found: dict[str, MemoryRecord] = {}
        offset, page = 0, 5000
        while True:
            result = collection.get(include=["documents", "metadatas"], limit=page, offset=offset)
            found.update(records_of(result))
            if len(result["ids"]) < page:
                return found
            offset += page

    def _all_collections(self) -> builtins.list[Collection]:
        found: builtins.list[Collection] = []
        offset, page = 0, 1000
        while True:
            batch = self._client.list_collections(limit=page, offset=offset)
            found.extend(c for c in batch if c.name.startswith(_COLLECTION_PREFIX))
            if len(batch) < page:
                return found
            offset += page

    def _scrub(self, ids: Sequence[str], *, deleted: bool) -> None:
        if self._chroma_dir is not None:
            scrub_chroma_queue(self._chroma_dir, ids, deleted=deleted)

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
