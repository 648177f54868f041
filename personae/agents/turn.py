"""What goes into a turn and what comes out: `Scope`, `Turn`, `Reply`, `Action`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from personae.scope import Scope

__all__ = ["Action", "Reply", "Scope", "Turn", "Usage"]


class Turn(BaseModel):
    """One thing said or done to the character, built by an integration.

    Args:
        text: What the other person said (may be empty when only events happen).
        scope: Whose conversation; defaults to the persona's local user.
        speaker: Display name of who speaks, when it matters (group chats).
        events: Things the character perceived, in plain words.
        world: Current world state (location, time, weather...), shown to the model.
        affordances: The host actions usable now, each with the targets it may
            be used on (an empty list: the action takes no target). `None`
            (the default) puts no restriction on host actions; a mapping
            refuses every action not in it, and a `target` argument not
            listed for its action.
    """

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    scope: Scope | None = None
    speaker: str | None = None
    events: list[str] = Field(default_factory=list)
    world: dict[str, Any] = Field(default_factory=dict)
    affordances: dict[str, list[str]] | None = None


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
