"""Chroma plumbing for `MemoryStore`: clients, the directory lock, record metadata, erasure.

Private to `personae.memory.store`; kept apart so the store reads as what it
does, not how Chroma is driven.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from personae.errors import MemoryStoreError
from personae.memory.records import Kind, MemoryRecord
from personae.scope import SCOPE_KEYS

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

LOCK_FILE = "memory.lock"
SERVER_FIX = "run a Chroma server: `chroma run --path {path}` and set PERSONAE_CHROMA_URL"
OPTIONAL_FIELDS = ("speaker", "game_time", "turn_id", "source", "superseded_by")


def stamp(when: float) -> float:
    # Chroma keeps about 16 significant digits of a float: a time rounded to
    # the millisecond comes back exactly as written.
    return round(when, 3)


def not_found() -> tuple[type[Exception], ...]:
    from chromadb.errors import NotFoundError

    # ValueError: what Chroma raised for a missing collection before NotFoundError.
    return (NotFoundError, ValueError)


def metadata_of(record: MemoryRecord) -> dict[str, str | int | float | bool]:
    # Chroma metadata cannot hold None: unset fields are left out.
    meta: dict[str, str | int | float | bool] = {
        "persona": record.persona,
        "kind": record.kind,
        "importance": record.importance,
        "created_at": record.created_at,
        "accessed_at": record.accessed_at,
        "content_hash": record.content_hash,
        **record.scope,
    }
    for name in OPTIONAL_FIELDS:
        value = getattr(record, name)
        if value is not None:
            meta[name] = value
    return meta


def records_of(result: Mapping[str, object]) -> dict[str, MemoryRecord]:
    ids = cast("list[str]", result["ids"])
    documents = cast("list[str | None]", result.get("documents") or [None] * len(ids))
    metadatas = cast("list[Mapping[str, object] | None]", result.get("metadatas") or [])
    found: dict[str, MemoryRecord] = {}
    for id_, text, meta in zip(ids, documents, metadatas, strict=True):
        if meta is None or text is None:
            continue
        fields = {name: meta[name] for name in OPTIONAL_FIELDS if name in meta}
        found[id_] = MemoryRecord(
            id=id_,
            text=text,
            kind=cast(Kind, meta["kind"]),
            persona=str(meta["persona"]),
            scope={key: str(meta[key]) for key in SCOPE_KEYS if key in meta},
            importance=cast(int, meta["importance"]),
            created_at=cast(float, meta["created_at"]),
            accessed_at=cast(float, meta["accessed_at"]),
            content_hash=str(meta["content_hash"]),
            **cast("dict[str, str]", fields),
        )
    return found


def take_lock(path: Path) -> int | None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one process per directory is on the user.
        return None
    lock_path = path / LOCK_FILE
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip()
        os.close(fd)
        if holder == str(os.getpid()):
            who = f"this process (pid {holder}) already has it open; close that MemoryStore first"
        elif holder:
            who = f"pid {holder} holds it"
        else:
            who = "another process holds it"
        raise MemoryStoreError(
            f"memory directory {str(path)!r} is in use: {who}. An embedded memory store has "
            "one owner process. Stop the other process, or "
            + SERVER_FIX.format(path=path / "chroma")
            + " (e.g. PERSONAE_CHROMA_URL=http://127.0.0.1:8000) in every process"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode("ascii"))
    return fd


def persistent_client(path: Path) -> ClientAPI:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    try:
        return chromadb.PersistentClient(
            path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
        )
    except Exception as exc:
        raise MemoryStoreError(
            f"Chroma cannot open its store at {str(path)!r} ({type(exc).__name__}: {exc}); "
            "check the directory's permissions, or move it away to start empty"
        ) from exc


def http_client(url: str) -> ClientAPI:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    parts = urlsplit(url if "://" in url else f"http://{url}")
    ssl = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if ssl else 8000)
    try:
        client = chromadb.HttpClient(
            host=host, port=port, ssl=ssl, settings=ChromaSettings(anonymized_telemetry=False)
        )
        client.heartbeat()
    except Exception as exc:
        raise MemoryStoreError(
            f"cannot reach the Chroma server at {url!r} ({type(exc).__name__}); start it with "
            f"`chroma run --path DIR --host {host} --port {port}`, or unset PERSONAE_CHROMA_URL "
            "to use the embedded store"
        ) from exc
    return client


def chroma_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path / "chroma.sqlite3"), timeout=10.0)
    db.isolation_level = None
    return db


def scrub_chroma_queue(path: Path, ids: Sequence[str], *, deleted: bool) -> None:
    """Drop the text of deleted or edited records from Chroma's write log.

    Chroma's embedded store keeps every write, document included, in its
    `embeddings_queue` table until the vector index flushes (every 1000
    writes by default). The metadata segment has already applied these rows,
    and replaying them into the vector index needs only the vectors.
    """
    value = "'{}'" if deleted else """json_remove(metadata, '$."chroma:document"')"""
    with contextlib.closing(chroma_db(path)) as db:
        db.execute("PRAGMA secure_delete = ON")
        db.executemany(
            f"UPDATE embeddings_queue SET metadata = {value} WHERE id = ?", [(i,) for i in ids]
        )


def purge_chroma_files(path: Path) -> None:
    """Merge Chroma's full-text index, vacuum its SQLite file, remove orphaned index folders."""
    with contextlib.closing(chroma_db(path)) as db:
        db.execute(
            "INSERT INTO embedding_fulltext_search(embedding_fulltext_search) VALUES ('optimize')"
        )
        db.execute("VACUUM")
        if db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        live = {str(row[0]) for row in db.execute("SELECT id FROM segments")}
    for child in path.iterdir():
        if child.is_dir() and is_uuid(child.name) and child.name not in live:
            shutil.rmtree(child, ignore_errors=True)


def is_uuid(name: str) -> bool:
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True
