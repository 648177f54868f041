"""What a character remembers, and how it finds and forgets it.

The Chroma-backed `MemoryStore`, hybrid `recall`, the `MemoryWriter` that
turns finished turns into memories, and lore `ingest`.

Importing this package stays light: Chroma, torch and sentence-transformers
load on first use, through the names below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from personae.memory.embeddings import Embedder, MiniLMEmbedder, default_embedder
    from personae.memory.ingest import IngestReport, ingest
    from personae.memory.records import MemoryRecord, NewMemory
    from personae.memory.scoring import Recall, recall
    from personae.memory.store import MemoryStore
    from personae.memory.writer import MemoryWriter

__all__ = [
    "Embedder",
    "IngestReport",
    "MemoryRecord",
    "MemoryStore",
    "MemoryWriter",
    "MiniLMEmbedder",
    "NewMemory",
    "Recall",
    "default_embedder",
    "ingest",
    "recall",
]

_WHERE = {
    "Embedder": "personae.memory.embeddings",
    "MiniLMEmbedder": "personae.memory.embeddings",
    "default_embedder": "personae.memory.embeddings",
    "IngestReport": "personae.memory.ingest",
    "ingest": "personae.memory.ingest",
    "MemoryRecord": "personae.memory.records",
    "NewMemory": "personae.memory.records",
    "Recall": "personae.memory.scoring",
    "recall": "personae.memory.scoring",
    "MemoryStore": "personae.memory.store",
    "MemoryWriter": "personae.memory.writer",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'personae.memory' has no attribute {name!r}")
