"""`GameServer`: many NPCs behind protocol v1; `GameSession`: one game connected to them.

Transports (stdio, TCP, WebSocket, HTTP) only move text: each incoming
message goes to `await session.receive(data)`, each outgoing one comes out
of the `send` callback as a JSON-ready dict. Everything else happens here.

Rules of the dispatcher:

- `hello` comes first (anything else before it gets `error` `no_hello`); a
  client of another protocol version gets `error` `protocol_version`.
- Every request ends with a terminal message: `say` with `reply` or
  `no_response`; `event` with one of those per witness; `world`,
  `action_result` and `cancel` with `ack`; `save` with `saved`; `load` with
  `loaded`; a message that cannot be handled with `error`. The session goes
  on after an error, and every other NPC keeps answering.
- Answers run as tasks, so several NPCs answer at once; the requests of
  one NPC and one player are answered in the order they came.
- A `say` runs one `Agent` turn in the scope (NPC, player, world, slot):
  `delta`s while the text streams (if the client asked for streaming),
  each finished `sentence` as plain text, `action` and `emotion` as the
  model calls them, `relationship` when it changes its regard for someone,
  then `reply`. An action not among the affordances of the last `world`
  message is refused inside the tool: the model hears why and the game
  never sees it. Action ids are `<request id>:<npc>:<n>`, so a replay
  gives the same ones.
- An `event` is perceived by its witnesses only (the addressed NPC when
  none are listed): it goes into their long-term memory and conversation
  with the player, and those who react answer it like a `say`. The player
  is the event's `actor` when that is not an NPC, else the player who
  spoke last in the session (`player` before anyone has).
- `action_result` is told to the NPC that acted, in its conversation with
  that player, without a model call; the next turn knows whether it worked.
- Cooldowns and token/time budgets (`NpcLimits`) are checked when a request
  arrives; one over a limit gets `no_response` with `retry_after`.
- `save` waits for the session's answers in progress (and the requests
  after it wait for the save, and likewise for `load`), then returns a blob
  (see `personae.integrations.game.state`); `load` restores it and deletes
  the memories the NPCs formed in that slot after the save point, so they
  are not recalled again (to a different slot: that slot's memories are
  replaced by a copy of those of the save).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel

from personae.agents.agent import Agent
from personae.agents.tools import host_action_tool
from personae.errors import ConfigError
from personae.heap import settle_heap
from personae.integrations.game.limits import NpcBudget, NpcLimits
from personae.integrations.game.perception import relationship_action
from personae.integrations.game.session import GameSession, Send
from personae.integrations.game.state import NpcStates, StateFiles
from personae.personas.loading import load_persona
from personae.personas.model import Persona
from personae.settings import Settings, get_settings

if TYPE_CHECKING:
    from langchain.agents.middleware import AgentMiddleware

    from personae.integrations.game.recording import Recorder
    from personae.memory.store import MemoryStore

__all__ = ["GameServer", "GameSession", "Npc", "Send"]

ModelChoice = str | BaseChatModel | None


@dataclass
class Npc:
    """One hosted NPC: its persona, agent and budget (shared by every session)."""

    persona: Persona
    agent: Agent
    budget: NpcBudget

    @property
    def id(self) -> str:
        """The NPC's id: its persona's."""
        return self.persona.id


class GameServer:
    """Hosts NPCs (one `Agent` per persona) for any number of game sessions.

    Args:
        personas: The NPCs; their ids must differ.
        model: A spec (`provider:model`) or chat model for every NPC, or a
            mapping of persona id to one; default: each persona's own.
        home: Data directory (conversations, memories, NPC state); default
            `PERSONAE_HOME`.
        limits: Cooldown and budgets per NPC; default none.
        clock: Monotonic time in seconds, for the limits (injected in tests).
        recorder: Records every session for `replay`.
        memory: Long-term memory on or off for every NPC; default: as each
            persona says.
        embedder: Embedder for memory and the offline model; default the
            bundled MiniLM.
        settings: Service settings; default from `PERSONAE_*` env vars.
        admission_slots: How many turns may prepare their first model call
            at once (history read, screening, prompt); the others wait in the
            order they were asked. Under a burst this lets the first NPC
            spoken to answer first; see `Agent`'s `admission`.

    Attributes:
        npcs: The hosted NPCs by id, each with its `Agent`.
        states: Relationships and players met, per NPC, world and slot.

    Raises:
        ConfigError: Two personas share an id, or a persona's model or tools
            cannot be set up.

    Example:
        ```python
        server = GameServer.from_files(["innkeeper.yaml", "guard.yaml"])

        async def send(message: dict) -> None:
            print(json.dumps(message))

        session = server.session(send)
        await session.receive('{"type": "hello", "id": "1", "protocol": 1}')
        await session.receive('{"type": "say", "id": "2", "npc": "brenna", "text": "Hi!"}')
        await session.drain()
        await server.aclose()
        ```
    """

    def __init__(
        self,
        personas: Sequence[Persona],
        *,
        model: ModelChoice | Mapping[str, str | BaseChatModel] = None,
        home: Path | None = None,
        limits: NpcLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        recorder: Recorder | None = None,
        memory: bool | None = None,
        embedder: Any = None,
        settings: Settings | None = None,
        admission_slots: int = 8,
    ) -> None:
        if admission_slots < 1:
            raise ConfigError(
                f"admission_slots must be at least 1, not {admission_slots}; it is how many "
                "NPC turns may prepare their model call at once (default 8)"
            )
        if not personas:
            raise ConfigError(
                "GameServer needs at least one persona; pass Persona objects, or use "
                "GameServer.from_files(paths)"
            )
        seen: set[str] = set()
        for persona in personas:
            if persona.id in seen:
                raise ConfigError(
                    f"two personas have the id {persona.id!r}; NPC ids must differ, "
                    "change `id` in one of the files"
                )
            seen.add(persona.id)
        self.settings = settings or get_settings()
        self.home = Path(home) if home is not None else self.settings.home
        self.limits = limits or NpcLimits()
        self.clock = clock
        self.recorder = recorder
        self.memory = memory
        self.embedder = embedder
        self._models = model
        self._store: MemoryStore | None = None
        self._store_lock = threading.Lock()
        self.states = NpcStates(StateFiles(self.home / "game" / "state"))
        self._sessions: set[GameSession] = set()
        self._session_count = 0
        # NPCs spoken to in the same frame reach their model in the order they
        # were spoken to: the first answers first, instead of all answering
        # late together while each one's prompt work waits for the others'.
        self._admission = asyncio.Semaphore(admission_slots)
        self.npcs: dict[str, Npc] = {}
        for persona in personas:
            agent = self._make_agent(persona)
            self.npcs[persona.id] = Npc(persona, agent, NpcBudget(self.limits, clock))
        if recorder is not None:
            recorder.start(self)

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], **kwargs: Any) -> GameServer:
        """Load persona files and host them; keyword arguments go to `GameServer`.

        Raises:
            PersonaFileError: A file does not load or validate.
        """
        return cls([load_persona(path) for path in paths], **kwargs)

    # -- agents -------------------------------------------------------------------

    def _model_for(self, persona: Persona) -> ModelChoice:
        if isinstance(self._models, Mapping):
            return self._models.get(persona.id)
        return self._models

    def _make_agent(self, persona: Persona) -> Agent:
        """Make the agent of one NPC (a replay makes its own, with recorded outputs)."""
        return Agent(
            persona,
            model=self._model_for(persona),
            settings=self.settings,
            # One history database per NPC: SQLite lets one connection write
            # at a time, and NPCs answer at once.
            home=self.home / "game" / persona.id,
            embedder=self.embedder,
            memory=self.memory,
            open_memory=self._open_store,
            tools=self._game_tools(),
            middleware=self._model_middleware(),
            admission=self._admission,
        )

    def _game_tools(self) -> list[Any]:
        return [host_action_tool(relationship_action(), restricted=False)]

    def _model_middleware(self) -> list[AgentMiddleware[Any, Any, Any]]:
        return [self.recorder.middleware()] if self.recorder is not None else []

    def _open_store(self) -> MemoryStore:
        """Open the one memory store every NPC shares (an embedded store has one owner)."""
        with self._store_lock:
            if self._store is None:
                from personae.memory.store import MemoryStore

                embedder = self.embedder
                if embedder is None:
                    from personae.memory.embeddings import default_embedder

                    embedder = default_embedder()
                server = self.settings.env("PERSONAE_CHROMA_URL")
                self._store = MemoryStore(self.home / "memory", server=server, embedder=embedder)
            return self._store

    # -- sessions -----------------------------------------------------------------

    async def start(self) -> None:
        """Open every NPC's history and graph now, then settle the heap.

        Optional: an NPC opens on its first turn otherwise. The CLI servers call
        it before they accept a game, so no first `say` waits for a database
        and the long-lived objects are out of the collector's way
        (`personae.heap.settle_heap`).
        """
        for npc in self.npcs.values():
            await npc.agent.open()
        settle_heap()

    def session(self, send: Send) -> GameSession:
        """Start a session for one connected game; `send` receives each outgoing message."""
        self._session_count += 1
        made = GameSession(self, send, number=self._session_count)
        self._sessions.add(made)
        return made

    async def aclose(self) -> None:
        """Close every session, finish memory writes, close the agents and the memory store."""
        for session in list(self._sessions):
            await session.close()
        for npc in self.npcs.values():
            await npc.agent.aclose()
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
            self._store = None
        if self.recorder is not None:
            self.recorder.close()
