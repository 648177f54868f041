"""What hosts with save files need from an `Agent`: notes, memories and save points.

A game keeps its own save files; these methods let it put a character's
conversation and memories back to the point a save was made: `note` and
`remember` add what the character perceived, `thread_state`/`restore_thread`
carry a conversation in and out of a save, and `memory_mark`,
`rewind_memory` and `copy_memory` move long-term memory to a save point.
Mixed into `personae.agents.agent.Agent`; not used on its own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.messages import HumanMessage, messages_from_dict, messages_to_dict
from langchain_core.runnables import RunnableConfig

from personae.agents._middleware import LORE_STATE, lore_state_of
from personae.agents.turn import Scope, Turn
from personae.personas.model import Persona

if TYPE_CHECKING:
    from personae.memory.store import MemoryStore

__all__ = ["SavePoints"]


class SavePoints:
    """Notes, memories and save points of an `Agent` (a mixin; see the module docstring)."""

    persona: Persona
    _store: MemoryStore | None

    if TYPE_CHECKING:

        async def _ensure_graph(self) -> Any: ...

        def _turn(self, turn: Turn | str) -> tuple[Turn, Scope, RunnableConfig]: ...

        def _scope_lock(self, scope: Scope) -> asyncio.Lock: ...

        async def _settle(self) -> None: ...

    async def note(self, scope: Scope, text: str, *, speaker: str | None = None) -> None:
        """Add `text` to the conversation of `scope` as something the character perceived.

        No model runs: the next turn of that scope sees it in the history. For
        what a character should know without answering, such as the outcome
        of an action it took or an event it witnessed.

        Args:
            scope: Whose conversation.
            text: What the character perceives, in plain words.
            speaker: Who it came from, when it matters.
        """
        graph = await self._ensure_graph()
        _, scope, config = self._turn(Turn(scope=scope))
        message = HumanMessage(text, id=str(uuid.uuid4()))
        if speaker:
            message.name = speaker
        async with self._scope_lock(scope):
            await graph.aupdate_state(config, {"messages": [message]}, as_node="model")

    async def remember(
        self,
        scope: Scope,
        text: str,
        *,
        game_time: str | None = None,
        importance: int = 5,
        speaker: str | None = None,
    ) -> bool:
        """Store `text` in the long-term memory of `scope`, if the character has memory.

        Args:
            scope: Whose memory.
            text: The memory, in plain words.
            game_time: In-game time it happened.
            importance: 1 (trivial) to 10 (life-changing).
            speaker: Who said or did it.

        Returns:
            Whether a memory store took it (False when memory is off).
        """
        await self._ensure_graph()
        if self._store is None:
            return False
        from personae.memory.records import NewMemory

        memory = NewMemory(text=text, kind="episode", importance=max(1, min(10, importance)),
                           game_time=game_time, speaker=speaker)  # fmt: skip
        await asyncio.to_thread(self._store.add, scope, [memory])
        return True

    async def thread_state(self, scope: Scope) -> dict[str, Any]:
        """Return the conversation state of `scope` as JSON-ready data, for a save file.

        Holds the history (LangChain message dicts) and the timed lore state;
        `restore_thread` puts it back.
        """
        graph = await self._ensure_graph()
        _, scope, config = self._turn(Turn(scope=scope))
        async with self._scope_lock(scope):
            state = await graph.aget_state(config)
        values = state.values or {}
        return {
            "messages": messages_to_dict(list(values.get("messages", []))),
            "lore": lore_state_of(values).as_dict(),
        }

    async def restore_thread(self, scope: Scope, data: Mapping[str, Any] | None) -> None:
        """Replace the conversation of `scope` with one `thread_state` returned.

        Args:
            scope: Whose conversation.
            data: What `thread_state` returned; None leaves the conversation empty.

        Raises:
            ValueError: `data` does not hold LangChain message dicts.
        """
        messages = messages_from_dict(list(data.get("messages", []))) if data else []
        lore = data.get("lore") if data else None
        graph = await self._ensure_graph()
        _, scope, config = self._turn(Turn(scope=scope))
        async with self._scope_lock(scope):
            await graph.checkpointer.adelete_thread(config["configurable"]["thread_id"])
            if messages or lore:
                values: dict[str, Any] = {"messages": messages}
                if isinstance(lore, Mapping):
                    values[LORE_STATE] = dict(lore)
                await graph.aupdate_state(config, values, as_node="model")

    async def memory_mark(self) -> float:
        """Finish pending memory writes and return the time they are stored up to.

        Memories stored later have a later `created_at`; `rewind_memory(after=mark)`
        removes them.
        """
        await self._ensure_graph()
        await self._settle()
        # Stored times are rounded to the millisecond (see `MemoryStore`).
        return round(time.time(), 3)

    async def rewind_memory(self, *, after: float, within: Mapping[str, str]) -> int:
        """Delete the memories stored after `after` in every scope of this persona within `within`.

        Args:
            after: A `memory_mark()`.
            within: Scope keys the scopes must have, e.g.
                `{"world": "w1", "save_slot": "s2"}`.

        Returns:
            How many memories were deleted.
        """
        await self._ensure_graph()
        await self._settle()
        store = self._store
        if store is None:
            return 0
        return await asyncio.to_thread(_rewind, store, self.persona.id, dict(within), after)

    async def copy_memory(
        self, *, until: float, source: Mapping[str, str], target: Mapping[str, str]
    ) -> int:
        """Copy the memories stored up to `until` from scopes within `source` to `target`.

        Each scope of this persona whose keys include `source` is copied to
        the same scope with the keys of `target` instead (e.g. another save
        slot), keeping the memories' times.

        Returns:
            How many memories were copied.
        """
        await self._ensure_graph()
        await self._settle()
        store = self._store
        if store is None:
            return 0
        return await asyncio.to_thread(
            _copy, store, self.persona.id, dict(source), dict(target), until
        )


def _within(scope: Scope, keys: Mapping[str, str]) -> bool:
    have = scope.keys()
    return all(have.get(k) == v for k, v in keys.items())


def _rewind(store: MemoryStore, persona: str, within: dict[str, str], after: float) -> int:
    return sum(
        store.rewind(scope, after=after)
        for scope in store.scopes(persona)
        if _within(scope, within)
    )


def _copy(
    store: MemoryStore,
    persona: str,
    source: dict[str, str],
    target: dict[str, str],
    until: float,
) -> int:
    copied = 0
    for scope in store.scopes(persona):
        if _within(scope, source):
            copied += store.copy(scope, scope.model_copy(update=target), until=until)
    return copied
