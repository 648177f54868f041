"""What a memory is: `MemoryRecord`, and `NewMemory` for one about to be written."""

from __future__ import annotations

import hashlib
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Kind", "MemoryRecord", "NewMemory", "content_hash"]

Kind = Literal["episode", "fact", "lore", "reflection"]
"""`episode`: an exchange that happened; `fact`: something true about someone;
`lore`: authored knowledge; `reflection`: a conclusion drawn from other memories."""


def content_hash(text: str) -> str:
    """Return the hash that identifies a text's content (whitespace-normalised)."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


class NewMemory(BaseModel):
    """A memory to write; the store fills in id, scope, times and hash."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    """The memory, in plain words."""
    kind: Kind = "episode"
    """What sort of memory it is."""
    importance: int = Field(default=5, ge=1, le=10)
    """1 (trivial) to 10 (life-changing)."""
    speaker: str | None = None
    """Who said or did it."""
    created_at: float | None = None
    """Unix time it happened; default now."""
    game_time: str | None = None
    """In-game time it happened, as the game gives it."""
    turn_id: str | None = None
    """Id of the turn it came from."""
    source: str | None = None
    """Where lore came from (file and chunk), for idempotent ingestion."""


class MemoryRecord(BaseModel):
    """A stored memory, as recalled, listed and exported."""

    model_config = ConfigDict(extra="forbid")

    id: str
    text: str
    kind: Kind
    persona: str
    scope: dict[str, str]
    """Scope keys it belongs to (`user`, `channel`, `guild`, `tenant`, `world`, `save_slot`)."""
    importance: int = Field(ge=1, le=10)
    speaker: str | None = None
    created_at: float
    accessed_at: float
    game_time: str | None = None
    turn_id: str | None = None
    source: str | None = None
    superseded_by: str | None = None
    """Id of the fact that replaced this one; superseded facts are not recalled by default."""
    content_hash: str

    @classmethod
    def now(cls) -> float:
        """Return the current wall-clock time, as stored in records."""
        return time.time()
