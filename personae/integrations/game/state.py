"""NPC state that follows the game's save file: relationships, players met, save blobs.

`NpcState` is what an NPC keeps per world and save slot besides its
conversations and memories: how it regards each actor (-1 to 1) and which
players it has talked to (whose conversations a save must hold).
`StateFiles` keeps it under the data directory, so it survives a restart.

A `save` turns the state of NPCs into a blob the game stores in its own save
file; `load` gives it back. The blob is opaque to the game but not secret:

```
personae-save.1.<base64url of zlib-compressed JSON>.<checksum>
```

The JSON holds the format version, the world and slot it was saved in, and
per NPC its conversations (LangChain message dicts) and timed lore state per
player, its relationships, and a memory watermark: the time its long-term
memories were stored up to. The checksum (the first 32 hex digits of the
SHA-256 of the compressed bytes) catches a damaged or edited blob, not a
forger: a game that needs that signs its save files itself.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import math
import os
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from personae.agents.turn import Scope
from personae.errors import IntegrationError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from personae.agents.agent import Agent

__all__ = [
    "BLOB_FORMAT",
    "BLOB_VERSION",
    "NpcState",
    "NpcStates",
    "StateFiles",
    "decode_blob",
    "encode_blob",
    "restore_npc",
    "save_npcs",
]

BLOB_FORMAT: Final = "personae-save"
"""First part of every save blob."""
BLOB_VERSION: Final = 1
"""Version of the blob's content; a blob of another version is refused."""

_MAX_BLOB_BYTES = 64 * 1024 * 1024


@dataclass
class NpcState:
    """What one NPC keeps about one world and save slot (besides history and memories).

    Attributes:
        relationships: How the NPC regards each actor id, -1 (hostile) to 1 (close).
        players: Ids of the players it has talked to or perceived, oldest first.
    """

    relationships: dict[str, float] = field(default_factory=dict)
    players: list[str] = field(default_factory=list)

    def meet(self, player: str) -> bool:
        """Note a player; return True when it is new."""
        if player in self.players:
            return False
        self.players.append(player)
        return True

    def change(self, actor: str, change: float) -> tuple[float, float]:
        """Move the regard for `actor` by `change`, clamped to -1..1; return (value, moved)."""
        old = self.relationships.get(actor, 0.0)
        new = round(max(-1.0, min(1.0, old + change)), 4)
        self.relationships[actor] = new
        return new, round(new - old, 4)

    def as_dict(self) -> dict[str, Any]:
        """Return the state as JSON-ready data."""
        return {"relationships": dict(self.relationships), "players": list(self.players)}

    @classmethod
    def from_dict(cls, data: Any) -> NpcState:
        """Rebuild a state from `as_dict()` data; anything malformed is left out."""
        if not isinstance(data, dict):
            return cls()
        relationships = {
            str(k): max(-1.0, min(1.0, float(v)))
            for k, v in (data.get("relationships") or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        players = [str(p) for p in (data.get("players") or []) if isinstance(p, str)]
        return cls(relationships=relationships, players=players)


class StateFiles:
    """`NpcState` kept in small JSON files under `directory`, one per NPC, world and slot.

    File names are hashes, so world and slot names never become paths.
    Methods block; call them through `asyncio.to_thread` from async code.

    Args:
        directory: Where the files go (created when first written).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, npc: str, world: str, slot: str) -> Path:
        key = json.dumps([npc, world, slot]).encode("utf-8")
        return self.directory / f"{hashlib.sha256(key).hexdigest()[:32]}.json"

    def read(self, npc: str, world: str, slot: str) -> NpcState:
        """Return the stored state (empty when there is none or it does not parse)."""
        try:
            data = json.loads(self._path(npc, world, slot).read_text("utf-8"))
        except (OSError, ValueError):
            return NpcState()
        return NpcState.from_dict(data)

    def write(self, npc: str, world: str, slot: str, state: NpcState) -> None:
        """Store the state, replacing the file in one step."""
        path = self._path(npc, world, slot)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state.as_dict(), handle, sort_keys=True)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class NpcStates:
    """The `NpcState`s of a server, read once from `StateFiles` and written on every change.

    Args:
        files: Where the states are kept.
    """

    def __init__(self, files: StateFiles) -> None:
        self.files = files
        self._cache: dict[tuple[str, str, str], NpcState] = {}
        self._lock = asyncio.Lock()

    async def get(self, npc: str, world: str, slot: str) -> NpcState:
        """Return the state of `npc` in `world` and `slot` (the same object each time)."""
        key = (npc, world, slot)
        async with self._lock:
            state = self._cache.get(key)
            if state is None:
                state = await asyncio.to_thread(self.files.read, npc, world, slot)
                self._cache[key] = state
            return state

    async def keep(self, npc: str, world: str, slot: str, state: NpcState) -> None:
        """Make `state` the state of `npc` in `world` and `slot`, and store it."""
        self._cache[(npc, world, slot)] = state
        await asyncio.to_thread(self.files.write, npc, world, slot, state)


async def save_npcs(agents: Mapping[str, Agent], states: NpcStates, world: str, slot: str) -> str:
    """Return the blob of `agents` (persona id -> agent) as they stand in `world` and `slot`.

    Holds each NPC's conversation with every player it met there, its
    relationships and its memory watermark (pending memory writes finish first).
    """
    npcs: dict[str, dict[str, Any]] = {}
    for name, agent in agents.items():
        state = await states.get(name, world, slot)
        threads = {
            player: await agent.thread_state(_scope(name, player, world, slot))
            for player in state.players
        }
        npcs[name] = {
            **state.as_dict(),
            "threads": threads,
            "memory_mark": await agent.memory_mark(),
        }
    return await asyncio.to_thread(encode_blob, world, slot, npcs)


async def restore_npc(
    agent: Agent, states: NpcStates, data: Any, world: str, source: str, target: str
) -> int:
    """Put one NPC back as saved (in slot `source`) into slot `target`; return memories forgotten.

    Conversations with players it had met in `target` since are emptied.
    Memories: in the same slot, those formed after the save point are
    deleted; into another slot, that slot's memories are replaced by a copy
    of the saved slot's memories up to the save point.
    """
    name = agent.persona.id
    data = data if isinstance(data, dict) else {}
    threads = data.get("threads") if isinstance(data.get("threads"), dict) else {}
    current = await states.get(name, world, target)
    for player in {*current.players, *threads}:
        await agent.restore_thread(_scope(name, player, world, target), threads.get(player))
    mark = data.get("memory_mark")
    mark = float(mark) if isinstance(mark, int | float) else -math.inf
    within = {"world": world, "save_slot": target}
    if source == target:
        forgotten = await agent.rewind_memory(after=mark, within=within)
    else:
        forgotten = await agent.rewind_memory(after=-math.inf, within=within)
        await agent.copy_memory(until=mark, source={**within, "save_slot": source}, target=within)
    await states.keep(name, world, target, NpcState.from_dict(data))
    return forgotten


def _scope(npc: str, player: str, world: str, slot: str) -> Scope:
    return Scope(persona=npc, user=player, world=world, save_slot=slot)


def encode_blob(world: str, slot: str, npcs: dict[str, dict[str, Any]]) -> str:
    """Return the save blob of `npcs` (id -> saved NPC data) saved in `world` and `slot`."""
    payload = {
        "format": BLOB_FORMAT,
        "version": BLOB_VERSION,
        "world": world,
        "slot": slot,
        "npcs": npcs,
    }
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    packed = zlib.compress(raw.encode("utf-8"), 6)
    body = base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")
    return f"{BLOB_FORMAT}.{BLOB_VERSION}.{body}.{_checksum(packed)}"


def decode_blob(blob: str) -> dict[str, Any]:
    """Return the payload of a blob made by `encode_blob`, checked.

    Raises:
        IntegrationError: The blob is not one of ours, of another version,
            damaged or edited; the message says which and what to do.
    """
    parts = blob.strip().split(".")
    if len(parts) != 4 or parts[0] != BLOB_FORMAT:
        raise IntegrationError(
            "load.blob is not a personae save blob (it should start with "
            f"'{BLOB_FORMAT}.{BLOB_VERSION}.'); pass the `blob` of a `saved` message unchanged"
        )
    version, body, checksum = parts[1:]
    if version != str(BLOB_VERSION):
        raise IntegrationError(
            f"load.blob has version {version!r}, this server reads version {BLOB_VERSION}; "
            "load it with the personae version that saved it"
        )
    try:
        packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise _damaged("its body is not base64") from exc
    if _checksum(packed) != checksum:
        raise _damaged("its checksum does not match its content")
    try:
        unpacker = zlib.decompressobj()
        raw = unpacker.decompress(packed, _MAX_BLOB_BYTES)
        payload = json.loads(raw.decode("utf-8"))
    except (zlib.error, ValueError) as exc:
        raise _damaged("its content does not unpack") from exc
    if (
        not isinstance(payload, dict)
        or payload.get("format") != BLOB_FORMAT
        or payload.get("version") != BLOB_VERSION
        or not isinstance(payload.get("world"), str)
        or not isinstance(payload.get("slot"), str)
        or not isinstance(payload.get("npcs"), dict)
    ):
        raise _damaged("its content is not a save of this format")
    return payload


def _checksum(packed: bytes) -> str:
    return hashlib.sha256(packed).hexdigest()[:32]


def _damaged(why: str) -> IntegrationError:
    return IntegrationError(
        f"load.blob is damaged or was edited ({why}); pass the `blob` of a `saved` "
        "message unchanged, or load an older save"
    )
