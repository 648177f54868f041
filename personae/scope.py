"""`Scope`: whose conversation and memories a turn belongs to.

Used by every layer (memory, agents, integrations), so it lives at the root of
the package, below all of them.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict

__all__ = ["SCOPE_KEYS", "Scope"]

SCOPE_KEYS = ("tenant", "guild", "channel", "world", "save_slot", "user")
"""Scope keys besides the persona, from the widest to the narrowest."""


class Scope(BaseModel):
    """Whose conversation this is: memory, history and limits are keyed by it.

    At least the persona and the user; Discord adds guild and channel, games
    add world and save slot, the HTTP endpoint adds tenant. Two scopes that
    differ in any key never see each other's history.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    persona: str
    """Persona id."""
    user: str = "local"
    """Who the character talks to."""
    tenant: str | None = None
    """Deployment tenant (HTTP endpoint)."""
    guild: str | None = None
    """Discord guild."""
    channel: str | None = None
    """Discord channel or thread."""
    world: str | None = None
    """Game world."""
    save_slot: str | None = None
    """Game save slot."""

    def key(self) -> str:
        """Return a stable, readable key of every part that is set, e.g. `mira/user=ann`."""
        parts = [self.persona]
        for name in SCOPE_KEYS:
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value}")
        return "/".join(parts)

    def keys(self) -> dict[str, str]:
        """Return the scope keys that are set, persona excluded, e.g. `{"user": "ann"}`."""
        return {name: getattr(self, name) for name in SCOPE_KEYS if getattr(self, name) is not None}

    def thread_id(self) -> str:
        """Return the checkpointer thread id: a hash of `key()`, safe in any store."""
        return hashlib.sha256(self.key().encode("utf-8")).hexdigest()[:32]
