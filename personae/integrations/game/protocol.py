"""The personae game protocol, version 1: every message a game and its NPCs exchange.

Messages are JSON objects, one per line on stdio and TCP, one per frame on
WebSocket, one per request (game -> NPC) or SSE event (NPC -> game) on HTTP.
Every message has a `type` and an `id`; a message that answers another
carries that message's id in `reply_to`. Unknown fields are errors, so a typo
in a game's code is reported instead of silently ignored.

A session starts with `hello` (the client's protocol version and what it
can use) answered by `welcome` (the server's version, its NPCs, the
capabilities granted). Every request then ends with a terminal message:
`say` with `reply` or `no_response`, `event` with one of those per witness,
`world`, `action_result` and `cancel` with `ack`, `save` with `saved`, `load`
with `loaded`, and anything that cannot be handled with `error` (the session
goes on).

Game -> NPC:
    `world`          a snapshot or an update of what the NPC can perceive and do
    `event`          something happened (with witnesses, and whether to react)
    `say`            a player speaks to an NPC
    `action_result`  whether an action the NPC asked for worked
    `cancel`         stop answering a `say` or `event`
    `save` / `load`  state for the game's own save file

NPC -> game:
    `delta`          streamed text (only when the client asked for streaming)
    `sentence`       a finished sentence, plain text, ready for TTS
    `action`         a validated host action, with a target from the affordances
    `emotion`        the emotion the NPC shows
    `relationship`   a change in how the NPC regards an actor
    `reply`          the final reply; always the last message for its request
    `no_response`    the NPC stays silent, and why
    `saved`, `loaded`, `ack`, `error`

`personae game schema` prints the JSON Schema of both directions.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "Ack",
    "ActionMessage",
    "ActionResult",
    "Actor",
    "Affordance",
    "Cancel",
    "Capabilities",
    "ClientMessage",
    "Delta",
    "EmotionMessage",
    "ErrorMessage",
    "Event",
    "Hello",
    "Load",
    "Loaded",
    "NoResponse",
    "Player",
    "Relationship",
    "ReplyMessage",
    "Save",
    "Saved",
    "Say",
    "Sentence",
    "ServerMessage",
    "Welcome",
    "World",
    "client_adapter",
    "explain",
    "protocol_schema",
    "server_adapter",
]

PROTOCOL_VERSION: Final = 1
"""The protocol's major version; a client speaking another major version is refused."""

MAX_MESSAGE_BYTES: Final = 64 * 1024
"""Largest message a server accepts; larger ones get an `error` and are skipped."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    id: str = Field(min_length=1, max_length=128)
    """Identifier chosen by the sender; replies name it in `reply_to`."""


class _Reply(_Message):
    # Server ids are built from the request's id (`<id>:<npc>:reply`), so they
    # may be longer than a client's.
    id: str = Field(min_length=1)
    """Identifier of the message; derived from the request it answers."""
    reply_to: str | None = None
    """The `id` of the message this one answers."""


# -- game -> NPC ------------------------------------------------------------------


class Capabilities(BaseModel):
    """What a client can use; the server sends nothing the client did not ask for."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    streaming: bool = False
    """Send `delta` messages while the reply is produced."""
    sentences: bool = True
    """Send each finished sentence as a `sentence` message (for TTS)."""
    emotions: bool = True
    """Send `emotion` messages."""
    actions: bool = True
    """The game carries out host actions; without this, NPCs get no action tools."""


class Hello(_Message):
    """First message of a session: the client's protocol version and capabilities."""

    type: Literal["hello"] = "hello"
    protocol: int = Field(ge=1)
    """Protocol major version the client speaks; must equal the server's."""
    client: str = Field(default="", max_length=200)
    """Name and version of the client, for logs."""
    world: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """The game world (one game, one mod, one server) memories belong to."""
    slot: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """The save slot being played; memories formed now belong to it."""
    capabilities: Capabilities = Field(default_factory=Capabilities)
    """What the client can use."""


class Actor(BaseModel):
    """Someone (or something) in the scene."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    id: str = Field(min_length=1, max_length=128)
    """The game's id of the actor, also used as action target."""
    name: str = Field(min_length=1, max_length=200)
    """How the NPC calls it."""
    description: str = Field(default="", max_length=2000)
    """What the NPC sees."""
    relationship: float | None = Field(default=None, ge=-1.0, le=1.0)
    """How the NPC regards this actor, -1 (hostile) to 1 (close); unset: as the NPC remembers."""


class Affordance(BaseModel):
    """An action the NPC may take right now, and on which targets."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    action: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
    """Name of one of the persona's host actions."""
    targets: list[str] = Field(default_factory=list)
    """Actor or object ids it may be used on; empty: the action takes no target."""


class World(_Message):
    """What an NPC can perceive and do: a full snapshot or an update of some fields."""

    type: Literal["world"] = "world"
    npc: str | None = None
    """The NPC this is for; unset: every NPC of the session."""
    mode: Literal["snapshot", "update"] = "snapshot"
    """`snapshot` replaces what was known; `update` changes only the fields given."""
    location: str | None = Field(default=None, max_length=500)
    """Where the NPC is."""
    time: str | None = Field(default=None, max_length=100)
    """The time in the game, as the game writes it (e.g. `Day 3, evening`)."""
    weather: str | None = Field(default=None, max_length=200)
    """The weather, if it matters."""
    actors: list[Actor] | None = None
    """Who is present."""
    facts: list[str] | None = None
    """Free-text facts about the scene."""
    affordances: list[Affordance] | None = None
    """The actions (and targets) the NPC may use now; actions not listed are refused."""


class Event(_Message):
    """Something happened in the game that NPCs may perceive."""

    type: Literal["event"] = "event"
    npc: str | None = None
    """The NPC addressed, if any."""
    description: str = Field(min_length=1, max_length=4000)
    """What happened, in plain words (`The player drops a gold coin on the counter`)."""
    actor: str | None = None
    """Id of who did it."""
    witnesses: list[str] = Field(default_factory=list)
    """NPC ids that perceived it; only they remember it. Empty: the addressed NPC only."""
    react: Literal["auto", "always", "never"] = "auto"
    """`always`: the NPC answers; `never`: it only remembers; `auto`: it answers if addressed."""


class Player(BaseModel):
    """The player who speaks."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    id: str = Field(default="player", pattern=r"^[A-Za-z0-9_.@-]{1,128}$")
    """Stable id of the player; memories about them are keyed by it."""
    name: str = Field(default="Player", min_length=1, max_length=200)
    """How the NPC addresses them."""


class Say(_Message):
    """A player speaks to an NPC."""

    type: Literal["say"] = "say"
    npc: str = Field(min_length=1)
    """The NPC spoken to (its persona id)."""
    player: Player = Field(default_factory=Player)
    """Who speaks."""
    text: str = Field(min_length=1, max_length=4000)
    """What they say."""


class ActionResult(_Message):
    """Whether an action the NPC asked for worked; the NPC is told."""

    type: Literal["action_result"] = "action_result"
    action_id: str = Field(min_length=1)
    """The `action_id` of the `action` message."""
    ok: bool
    """True when the game carried the action out."""
    detail: str = Field(default="", max_length=2000)
    """What happened, e.g. `the player has no room for the key`."""


class Cancel(_Message):
    """Stop answering a request; the NPC sends `no_response` (reason `cancelled`)."""

    type: Literal["cancel"] = "cancel"
    target: str = Field(min_length=1)
    """The `id` of the `say` or `event` to stop."""


class Save(_Message):
    """Ask for the state of NPCs, to store in the game's save file."""

    type: Literal["save"] = "save"
    npc: str | None = None
    """The NPC to save; unset: every NPC of the session."""


class Load(_Message):
    """Restore state from a `saved` blob; memories formed after it in the slot are forgotten."""

    type: Literal["load"] = "load"
    blob: str = Field(min_length=1)
    """The `blob` of a `saved` message, unchanged."""
    slot: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """Save slot to continue in; unset: the slot the blob was saved in."""


ClientMessage = Annotated[
    Hello | World | Event | Say | ActionResult | Cancel | Save | Load,
    Field(discriminator="type"),
]
"""Any message a game sends."""


# -- NPC -> game ------------------------------------------------------------------


class Welcome(_Reply):
    """The server's answer to `hello`."""

    type: Literal["welcome"] = "welcome"
    protocol: int = PROTOCOL_VERSION
    """The server's protocol major version."""
    server: str = ""
    """Name and version of the server."""
    npcs: list[str] = Field(default_factory=list)
    """Persona ids of the NPCs this server hosts."""
    capabilities: Capabilities = Field(default_factory=Capabilities)
    """What the server will use in this session: the client's capabilities, as granted."""


class Delta(_Reply):
    """A piece of reply text as it is produced (streaming clients only)."""

    type: Literal["delta"] = "delta"
    npc: str
    """The NPC speaking."""
    text: str
    """The new text."""


class Sentence(_Reply):
    """A finished sentence: plain text without markdown or emoji, ready for TTS."""

    type: Literal["sentence"] = "sentence"
    npc: str
    """The NPC speaking."""
    index: int = Field(ge=0)
    """Position of the sentence in the reply, from 0."""
    text: str
    """The sentence."""


class ActionMessage(_Reply):
    """A host action the NPC takes; arguments validated, target among the affordances."""

    type: Literal["action"] = "action"
    npc: str
    """The NPC acting."""
    action_id: str
    """Identifier to report the result with (`action_result`)."""
    name: str
    """The action's name."""
    arguments: dict[str, Any] = Field(default_factory=dict)
    """Arguments, valid against the action's JSON Schema."""
    target: str | None = None
    """Actor or object id from the affordance, when the action takes one."""


class EmotionMessage(_Reply):
    """The emotion the NPC shows (for animation)."""

    type: Literal["emotion"] = "emotion"
    npc: str
    """The NPC."""
    emotion: str
    """One of the persona's `emotions`."""


class Relationship(_Reply):
    """How the NPC regards an actor changed."""

    type: Literal["relationship"] = "relationship"
    npc: str
    """The NPC."""
    actor: str
    """The actor's id."""
    value: float = Field(ge=-1.0, le=1.0)
    """The new value, -1 to 1."""
    change: float
    """How much it moved (after clamping to -1..1)."""
    reason: str = ""
    """Why, in the NPC's words."""


class ReplyMessage(_Reply):
    """The NPC's finished reply; always the last message for its request."""

    type: Literal["reply"] = "reply"
    npc: str
    """The NPC speaking."""
    text: str
    """The whole reply text."""
    emotion: str | None = None
    """The emotion shown, if any."""
    actions: list[str] = Field(default_factory=list)
    """`action_id`s of the actions sent for this reply."""
    flags: list[str] = Field(default_factory=list)
    """Markers such as `offline`, `fallback`, `error`, `deflected`."""


class NoResponse(_Reply):
    """The NPC stays silent, and says why."""

    type: Literal["no_response"] = "no_response"
    npc: str
    """The NPC."""
    reason: Literal["cooldown", "budget", "not_addressed", "cancelled", "witness_only"]
    """Why: in cooldown, out of its token/time budget, not addressed, cancelled, or
    an event it only witnessed (`react: never`)."""
    retry_after: float | None = None
    """Seconds until the NPC can answer again, for `cooldown` and `budget`."""


class Saved(_Reply):
    """State to keep in the game's save file; give it back in `load`."""

    type: Literal["saved"] = "saved"
    blob: str
    """Opaque, versioned; do not edit."""


class Loaded(_Reply):
    """A `load` was applied."""

    type: Literal["loaded"] = "loaded"
    npcs: list[str] = Field(default_factory=list)
    """The NPCs restored."""
    forgotten: int = 0
    """Memories formed after the save point that are no longer recalled."""


class Ack(_Reply):
    """A message without a reply of its own (`world`, `action_result`, `cancel`) was applied."""

    type: Literal["ack"] = "ack"


class ErrorMessage(_Reply):
    """A message could not be handled; the session goes on."""

    type: Literal["error"] = "error"
    code: Literal[
        "bad_json",
        "bad_message",
        "too_large",
        "unknown_npc",
        "unknown_action",
        "protocol_version",
        "no_hello",
        "bad_blob",
        "internal",
    ]
    """Machine-readable kind of problem."""
    message: str
    """What is wrong and how to fix it."""


ServerMessage = Annotated[
    Welcome
    | Delta
    | Sentence
    | ActionMessage
    | EmotionMessage
    | Relationship
    | ReplyMessage
    | NoResponse
    | Saved
    | Loaded
    | Ack
    | ErrorMessage,
    Field(discriminator="type"),
]
"""Any message an NPC server sends."""

client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
"""Validates a game's message: `client_adapter.validate_json(line)`."""
server_adapter: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)
"""Validates a server's message (used by tests and the replay checker)."""


def protocol_schema() -> dict[str, Any]:
    """Return the JSON Schema of protocol v1: `client` (game -> NPC) and `server` messages."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"personae game protocol v{PROTOCOL_VERSION}",
        "client": client_adapter.json_schema(),
        "server": server_adapter.json_schema(),
    }


_CLIENT_TYPES = ("hello", "world", "event", "say", "action_result", "cancel", "save", "load")
_SCHEMA_HINT = "`personae game schema` prints every message's fields"


def explain(raw: Any, exc: ValidationError) -> str:
    """Say what is wrong with a game's message, field by field, and how to fix it.

    Args:
        raw: The message as parsed from JSON.
        exc: What `client_adapter.validate_python(raw)` raised.

    Returns:
        One line, e.g. ``say.text: is required; add it (`personae game schema` prints
        every message's fields)``.
    """
    if not isinstance(raw, dict):
        return (f"message is a JSON {type(raw).__name__}, not an object; send an object "
                'with `type` and `id`, e.g. {"type": "say", "id": "7", ...}')
    kind = raw.get("type")
    types = ", ".join(_CLIENT_TYPES)
    problems: list[str] = []
    for error in exc.errors():
        loc = list(error["loc"])
        if loc and loc[0] == kind:
            loc = loc[1:]
        path = str(kind)
        for part in loc:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        if error["type"] == "union_tag_not_found":
            problems.append(f"the message has no `type`; add one of: {types}")
        elif error["type"] == "union_tag_invalid":
            problems.append(f"type={kind!r} is not a message type; use one of: {types}")
        elif error["type"] == "extra_forbidden":
            problems.append(f"{path}: is not a field of `{kind}`; remove it or fix its spelling")
        elif error["type"] == "missing":
            problems.append(f"{path}: is required; add it")
        else:
            problems.append(f"{path}={error.get('input')!r}: {error['msg']}")
    return "; ".join(problems) + f" ({_SCHEMA_HINT})"

