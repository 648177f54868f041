"""What goes into a turn and what comes out: `Scope`, `Turn`, `Reply`, `Action`."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Action", "Reply", "Scope", "Turn", "Usage"]


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
        for name in ("tenant", "guild", "channel", "world", "save_slot", "user"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value}")
        return "/".join(parts)

    def thread_id(self) -> str:
        """Return the checkpointer thread id: a hash of `key()`, safe in any store."""
        return hashlib.sha256(self.key().encode("utf-8")).hexdigest()[:32]


class Turn(BaseModel):
    """One thing said or done to the character, built by an integration.

    Args:
        text: What the other person said (may be empty when only events happen).
        scope: Whose conversation; defaults to the persona's local user.
        speaker: Display name of who speaks, when it matters (group chats).
        events: Things the character perceived, in plain words.
        world: Current world state (location, time, weather...), shown to the model.
    """

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    scope: Scope | None = None
    speaker: str | None = None
    events: list[str] = Field(default_factory=list)
    world: dict[str, Any] = Field(default_factory=dict)


class Action(BaseModel):
    """A host action the character asked for, arguments already validated."""

    model_config = ConfigDict(frozen=True)

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    id: str
    """Id of the call, so the host can report the result back."""


class Usage(BaseModel):
    """Tokens spent on the turn, summed over every model call."""

    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0


class Reply(BaseModel):
    """What the character answers.

    Attributes:
        text: The reply text.
        actions: Host actions to carry out, validated against their schemas.
        emotion: Emotion shown, one of the persona's `emotions`, if any.
        flags: Markers such as `offline` (answered from authored lines only),
            `fallback` (a later link of the model chain answered) or `error`.
        model: Spec of the model that answered.
        usage: Tokens and model calls.
        trace: What happened, step by step (prompt sections, model attempts, tools).
    """

    text: str
    actions: list[Action] = Field(default_factory=list)
    emotion: str | None = None
    flags: list[str] = Field(default_factory=list)
    model: str = ""
    usage: Usage = Field(default_factory=Usage)
    trace: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def offline(self) -> bool:
        """True when the offline model answered from authored lines."""
        return "offline" in self.flags
