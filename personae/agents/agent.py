"""`Agent`: a persona running on LangChain's `create_agent`, with personae's middleware.

One turn: lore is activated from the recent conversation, the style prompt is
compiled within its token budget, and LangChain's agent loop runs the model
with the persona's tools. personae adds middleware rather than a loop of its
own: a dynamic prompt, LangChain's `ModelFallbackMiddleware` over the model
chain (which always ends with the offline model, so a character never goes
silent) and tenacity retries inside each link. History is checkpointed per
scope in SQLite under the data directory and survives a restart.

Lore is scanned with the persona's `lorebook` settings over the conversation
of the turn's scope: messages are counted from the start of that
conversation, probability rolls and inclusion-group draws are seeded by the
scope's thread id, and the timed state (sticky and cooldown entries) is kept
in the checkpointed graph state next to the history, so it carries from turn
to turn and survives a restart; `reset` and `forget` clear it with the
history.

Hosts that act in a world (games) get a few more hooks: `Turn.affordances`
limits the host actions to those usable now (the model is offered only
those, and the action tools refuse the rest); `on_action` hears of each
valid action while the turn runs; `note` adds what the character perceived
to its history without a model call; `thread_state`/`restore_thread` and
`memory_mark`/`rewind_memory`/`copy_memory` put a conversation and its
memories back to a save point.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    ModelFallbackMiddleware,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException

from personae.agents._middleware import (
    Affordances,
    AnsweredBy,
    OnAction,
    RecentHistory,
    StylePrompt,
    TurnContext,
    lore_state_of,
    record_step,
    said_texts,
    turn_trace,
)
from personae.agents._save_points import SavePoints
from personae.agents._tracing import run_untraced_hooks_inline
from personae.agents.memory_tools import MEMORY_TOOLS, memory_tools
from personae.agents.models import make_chat_model, model_chain
from personae.agents.offline import OfflineChatModel
from personae.agents.resilience import RetryMiddleware
from personae.agents.safety import (
    canary_for,
    canary_line,
    prompt_lines,
    redact,
    screen_in,
    screen_out,
)
from personae.agents.tools import EMOTION_TOOL, build_tools, collect_actions, host_action_tool
from personae.agents.turn import Reply, Scope, Turn, Usage
from personae.errors import ToolLoadError
from personae.personas.loading import load_persona
from personae.personas.lore import LoreState, scan
from personae.personas.model import HostAction, Persona
from personae.personas.prompt import CompiledPrompt, compile_prompt
from personae.settings import Settings, get_settings

if TYPE_CHECKING:
    from personae.memory.facts import Fact, FactExtractor
    from personae.memory.store import MemoryStore
    from personae.memory.writer import MemoryWriter

__all__ = ["Agent", "OnAction"]

log = logging.getLogger(__name__)



class _Admitted:
    """A turn's slot in an admission semaphore; released once, whichever comes first."""

    def __init__(self, semaphore: asyncio.Semaphore | None) -> None:
        self._semaphore = semaphore

    @classmethod
    async def enter(cls, semaphore: asyncio.Semaphore | None) -> _Admitted:
        if semaphore is not None:
            await semaphore.acquire()
        return cls(semaphore)

    def release(self) -> None:
        if self._semaphore is not None:
            self._semaphore.release()
            self._semaphore = None


class Agent(SavePoints):
    """A persona that answers turns: the one API every integration calls.

    Args:
        persona: The character.
        model: A spec (`provider:model`) or a ready chat model; default: the
            persona's `model.spec`, then `PERSONAE_MODEL`, then `offline`.
        fallbacks: Specs or models tried when the one before fails; default:
            the persona's `model.fallbacks`. `offline` always ends the chain.
        tools: Extra LangChain tools, on top of those the persona names.
        settings: Service settings; default read from `PERSONAE_*` env vars.
        home: Data directory (history database); default `settings.home`.
        embedder: Embedder for the offline model; default the bundled MiniLM.
        turn_timeout: Seconds after which a turn gives up and answers offline.
        history_messages: How many recent messages the model sees; older ones
            stay stored but are not sent.
        memory: A `MemoryStore` to use, `False` for none; default: a store
            under `home` when the persona's `memory.enabled` is true.
        fact_extractor: Finds facts about the user after each turn; default:
            the first model of the chain when it is a real one, else rules.
        open_memory: Opens the memory store when the first turn needs one,
            instead of a store under `home` (several agents of one process
            share a store this way); the caller closes that store.
        middleware: Extra LangChain middleware wrapped around each model call
            of the chain, inside the fallback and outside the retries (so it
            sees which link answers, e.g. to record outputs), outermost first.
        admission: A semaphore shared by agents of one process: a turn holds
            a slot from its start until its first model call begins (history
            read, screening, prompt compiled). Turns that arrive together then
            reach their model in arrival order instead of all late together;
            the game server shares one between its NPCs.

    Raises:
        ModelSpecError, UnknownProviderError, MissingCredentialsError,
        ToolLoadError: When the model chain or tools cannot be built.

    Example:
        ```python
        from personae import Agent

        agent = Agent.from_file("examples/personas/innkeeper.yaml")
        reply = agent.respond_sync("What's on the menu tonight?")
        print(reply.text, reply.flags)
        ```
    """

    def __init__(
        self,
        persona: Persona,
        *,
        model: str | BaseChatModel | None = None,
        fallbacks: Sequence[str | BaseChatModel] | None = None,
        tools: Sequence[BaseTool] = (),
        settings: Settings | None = None,
        home: Path | None = None,
        embedder: Any = None,
        turn_timeout: float = 120.0,
        history_messages: int = 40,
        memory: MemoryStore | bool | None = None,
        fact_extractor: FactExtractor | None = None,
        open_memory: Callable[[], MemoryStore] | None = None,
        middleware: Sequence[AgentMiddleware[Any, Any, Any]] = (),
        admission: asyncio.Semaphore | None = None,
    ) -> None:
        self.persona = persona
        self._admission = admission
        self.settings = settings or get_settings()
        secret = self.settings.canary_secret
        self._canary = canary_for(
            persona.id, secret.get_secret_value() if secret else f"personae:{persona.id}"
        )
        self._safety_lines = tuple(
            (line.label, line.text) for line in (*prompt_lines(persona), canary_line(self._canary))
        )
        # Companion and community conversations are kept with personal data
        # (card numbers, IBANs, phone numbers...) redacted; game text is fiction.
        self._redact = persona.safety.profile != "game"
        self.home = Path(home) if home is not None else self.settings.home
        self.turn_timeout = turn_timeout
        self.history_messages = history_messages
        self._embedder = embedder
        self.chain = self._build_chain(model, fallbacks)
        self._action_names = {a.name for a in persona.actions}
        self._store: MemoryStore | None = (
            None if memory is None or isinstance(memory, bool) else memory
        )
        self._owns_store = False
        self._open_memory = open_memory
        self.memory_enabled = (
            self._store is not None
            or memory is True
            or (memory is None and persona.memory.enabled)
        )
        self._writer: MemoryWriter | None = None
        self._fact_extractor = fact_extractor
        self._tasks: set[asyncio.Task[None]] = set()
        self._middleware = list(middleware)
        extra = list(tools)
        if persona.emotions:
            extra.append(host_action_tool(_emotion_action(persona.emotions), restricted=False))
        wanted = tuple(name for name in persona.tools if name in MEMORY_TOOLS)
        if wanted and not self.memory_enabled:
            raise ToolLoadError(
                wanted[0], "needs long-term memory", "set `memory: {enabled: true}` in the persona"
            )
        named = {t.name: t for t in memory_tools(self._require_store, names=wanted)}
        self.tools = build_tools(persona, extra=extra, named=named)
        self._graph: Any = None
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self._scope_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._runner: asyncio.Runner | None = None

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Agent:
        """Load a persona file and make its agent; keyword arguments go to `Agent`.

        Raises:
            PersonaFileError: The file does not load or validate.
        """
        return cls(load_persona(path), **kwargs)

    # -- building -----------------------------------------------------------

    def _build_chain(
        self,
        model: str | BaseChatModel | None,
        fallbacks: Sequence[str | BaseChatModel] | None,
    ) -> list[tuple[str, BaseChatModel]]:
        persona, settings = self.persona, self.settings
        links: list[str | BaseChatModel]
        if isinstance(model, BaseChatModel):
            links = [model, *(fallbacks if fallbacks is not None else persona.model.fallbacks)]
        else:
            specs = model_chain(persona, override=model, settings=settings)
            links = [*specs[:-1]] if fallbacks is None else [specs[0], *fallbacks]
        chain: list[tuple[str, BaseChatModel]] = []
        for link in links:
            if isinstance(link, BaseChatModel):
                chain.append((getattr(link, "name_tag", None) or link._llm_type, link))
            elif link != "offline":
                chain.append((link, self._make(link)))
        # A chain given in code may bring its own last link labelled `offline`
        # (a replay stands in for it that way); otherwise the real one ends it.
        if not chain or chain[-1][0] != "offline":
            chain.append(("offline", self._make("offline")))
        return chain

    def _make(self, spec: str) -> BaseChatModel:
        return make_chat_model(
            spec,
            persona=self.persona,
            settings=self.settings,
            temperature=self.persona.model.temperature,
            max_tokens=self.persona.model.max_tokens,
            embedder=self._embedder,
        )

    async def _ensure_graph(self) -> Any:
        async with self._lock:
            if self._graph is not None:
                return self._graph
            import aiosqlite
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            if self.memory_enabled and self._store is None:
                if self._open_memory is not None:
                    self._store = await asyncio.to_thread(self._open_memory)
                else:
                    self._store = await asyncio.to_thread(self._open_store)
                    self._owns_store = True
            if self._store is not None and self._writer is None:
                self._writer = self._make_writer(self._store)

            self.home.mkdir(parents=True, exist_ok=True)
            connecting = aiosqlite.connect(str(self.home / "conversations.sqlite"))
            # aiosqlite's worker thread is not a daemon: a script that never
            # calls `close()` would hang at exit. The saver commits every
            # write, so nothing is lost when a daemon worker ends with the process.
            worker = getattr(connecting, "_thread", None)
            if worker is not None:
                worker.daemon = True
            self._conn = await connecting
            saver = AsyncSqliteSaver(self._conn)
            await saver.setup()
            # The saver puts the file in WAL mode; there NORMAL syncs at
            # checkpoints instead of every commit: safe against a crashed
            # process, and it roughly halves the cost of a turn's writes.
            await self._conn.execute("PRAGMA synchronous=NORMAL")
            run_untraced_hooks_inline()
            labels = {id(m): (i, spec) for i, (spec, m) in enumerate(self.chain)}
            middleware: list[Any] = [
                StylePrompt(),
                RecentHistory(self.history_messages),
                Affordances(self._action_names),
            ]
            if len(self.chain) > 1:
                middleware.append(ModelFallbackMiddleware(*(m for _, m in self.chain[1:])))
            middleware += [
                AnsweredBy(labels),
                *self._middleware,
                RetryMiddleware.from_settings(self.settings, on_attempt=record_step),
            ]
            self._graph = create_agent(
                self.chain[0][1],
                self.tools,
                middleware=middleware,
                context_schema=TurnContext,
                checkpointer=saver,
                name=f"personae-{self.persona.id}",
            )
            return self._graph

    # -- a turn ---------------------------------------------------------------

    def _turn(self, turn: Turn | str) -> tuple[Turn, Scope, RunnableConfig]:
        if isinstance(turn, str):
            turn = Turn(text=turn)
        scope = turn.scope or Scope(persona=self.persona.id)
        config: RunnableConfig = {"configurable": {"thread_id": scope.thread_id()}}
        return turn, scope, config

    async def history(self, scope: Scope | None = None) -> list[BaseMessage]:
        """Return the stored conversation of `scope` (default: the local user), oldest first."""
        graph = await self._ensure_graph()
        _, _, config = self._turn(Turn(scope=scope))
        state = await graph.aget_state(config)
        return list(state.values.get("messages", [])) if state.values else []

    async def explain(self, turn: Turn | str) -> CompiledPrompt:
        """Return the system prompt this turn would get, with `explain()` of what went in.

        Nothing is stored: the lore scan starts from the scope's timed state
        and its result is not kept. `explain()` of the result ends with the
        lore trace.
        """
        graph = await self._ensure_graph()
        turn, scope, config = self._turn(turn)
        state = await graph.aget_state(config)
        values = state.values or {}
        said = said_texts([*values.get("messages", []), HumanMessage(_human_text(turn))])
        memories, _ = await self._recall(scope, turn)
        return self.compile(
            turn,
            said,
            memories,
            message_count=len(said),
            lore_state=lore_state_of(values),
        )

    def compile(
        self,
        turn: Turn,
        recent: Sequence[str],
        memories: Sequence[str] = (),
        *,
        message_count: int | None = None,
        lore_state: LoreState | None = None,
    ) -> CompiledPrompt:
        """Compile the style prompt for `turn`.

        Args:
            turn: The turn being answered (its world state and speaker go in).
            recent: Texts of the conversation, oldest first, the turn's own
                message last; lore keys are looked for in the last
                `lorebook.scan_depth` of them (or an entry's own `scan_depth`).
            memories: Recalled memories, most relevant first.
            message_count: Messages in the whole conversation, the turn's
                included; default `len(recent)`.
            lore_state: Timed lore state after the previous message; None starts fresh.

        Returns:
            The prompt; its `lore_scan` holds the lore trace and the new timed state.
        """
        _, scope, _ = self._turn(turn)
        found = scan(
            self.persona.lore,
            _lore_window(self.persona, recent),
            lorebook=self.persona.lorebook,
            message_count=len(recent) if message_count is None else message_count,
            state=lore_state,
            seed=scope.thread_id(),
        )
        return compile_prompt(
            self.persona,
            memories=memories,
            lore=found,
            world=turn.world or None,
            user=turn.speaker,
            safety=self._safety_lines,
        )

    # -- memory -----------------------------------------------------------------

    def _open_store(self) -> MemoryStore:
        from personae.memory.store import MemoryStore

        embedder = self._embedder
        if embedder is None:
            from personae.memory.embeddings import default_embedder

            embedder = default_embedder()
        server = self.settings.env("PERSONAE_CHROMA_URL")
        return MemoryStore(self.home / "memory", server=server, embedder=embedder)

    async def open(self) -> None:
        """Open the history database and build the agent's graph now, not on the first turn.

        Servers call it at start-up, so the first request does not pay for it
        and what it loads is in place before `personae.heap.settle_heap`.
        """
        await self._ensure_graph()

    def warm(self) -> None:
        """Load the embedding model now (blocking), so the first turn does not wait for it.

        Does nothing when neither memory nor the offline model as first choice needs it.
        """
        first = self.chain[0][1]
        if isinstance(first, OfflineChatModel):
            first.warm()
        elif self.memory_enabled and self._embedder is None:
            from personae.memory.embeddings import default_embedder

            default_embedder().embed(["warm up"])

    def _make_writer(self, store: MemoryStore) -> MemoryWriter:
        from personae.memory.facts import ModelFactExtractor, RuleFactExtractor
        from personae.memory.writer import MemoryWriter

        policy = self.persona.memory
        extractor: FactExtractor
        first_spec, first_model = self.chain[0]
        if not policy.extract_facts:
            extractor = _NoFacts()
        elif self._fact_extractor is not None:
            extractor = self._fact_extractor
        elif first_spec != "offline" and not isinstance(first_model, OfflineChatModel):
            # A real model reads facts better than rules; it costs one
            # background call per turn, never on the reply's path.
            extractor = ModelFactExtractor(first_model)
        else:
            extractor = RuleFactExtractor()
        return MemoryWriter(store, persona_name=self.persona.display_name, extractor=extractor)

    def _require_store(self) -> MemoryStore:
        if self._store is None:
            raise ToolException("memory is not open yet")
        return self._store

    @property
    def memory(self) -> MemoryStore | None:
        """The long-term memory store, once the first turn has opened it (or as given)."""
        return self._store

    async def _recall(self, scope: Scope, turn: Turn) -> tuple[list[str], list[str]]:
        """Return texts and ids of memories recalled for the turn, most relevant first.

        Last-access times are not updated here: that write is slow in Chroma,
        so the turn does it in the background once the reply is out.
        """
        store = self._store
        if store is None or not turn.text.strip() or self.persona.memory.recall_limit == 0:
            return [], []
        from personae.memory.scoring import recall

        found = await asyncio.to_thread(
            recall, store, scope, turn.text,
            limit=self.persona.memory.recall_limit,
            half_life_days=self.persona.memory.half_life_days,
            touch=False,
        )
        return [item.record.text for item in found.items], list(found.ids)

    async def respond(self, turn: Turn | str, *, on_action: OnAction | None = None) -> Reply:
        """Answer one turn and return the full `Reply`.

        Never raises for a failing model: the chain falls back, ending with
        the offline model, and if even that fails the reply is a fallback line
        flagged `error`. The user's message is stored either way.

        Args:
            turn: The turn, or just its text.
            on_action: Awaited with each valid host action (and emotion shown)
                as soon as the model asks for it, before the reply is done;
                the same actions are in `Reply.actions` at the end.
        """
        reply: Reply | None = None
        async for item in self._run(turn, stream=False, on_action=on_action):
            if isinstance(item, Reply):
                reply = item
        assert reply is not None
        return reply

    async def stream(
        self, turn: Turn | str, *, on_action: OnAction | None = None
    ) -> AsyncIterator[str | Reply]:
        """Yield text deltas as the model produces them, then the final `Reply`.

        `on_action` is as for `respond`.
        """
        async for item in self._run(turn, stream=True, on_action=on_action):
            yield item

    def respond_sync(self, turn: Turn | str) -> Reply:
        """Blocking `respond` for scripts and game loops without an event loop."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self.respond(turn))

    def _scope_lock(self, scope: Scope) -> asyncio.Lock:
        # Turns (and notes) of one scope run one after another: two at once
        # would both extend the same history and one of the messages could be lost.
        return self._scope_locks.setdefault(scope.thread_id(), asyncio.Lock())

    async def _run(
        self, turn_in: Turn | str, *, stream: bool, on_action: OnAction | None = None
    ) -> AsyncIterator[str | Reply]:
        graph = await self._ensure_graph()
        turn, scope, config = self._turn(turn_in)
        async with self._scope_lock(scope):
            admitted = await _Admitted.enter(self._admission)
            try:
                async for item in self._locked_run(
                    graph, turn, scope, config, stream=stream, on_action=on_action,
                    admitted=admitted,
                ):  # fmt: skip
                    yield item
            finally:
                admitted.release()

    def _stored_text(self, turn: Turn) -> str:
        """Return the user's message as the history keeps it (personal data redacted)."""
        text = _human_text(turn)
        return redact(text) if self._redact else text

    async def _screen_in(
        self, graph: Any, turn: Turn, config: RunnableConfig
    ) -> tuple[Reply | None, list[dict[str, Any]]]:
        """Screen what comes in before any model runs; a `Reply` answers without the model.

        The single place where input screening (per the persona's safety
        profile, `personae.agents.safety`) hooks into a turn. A screened
        exchange is stored in the history like any other, so the character
        knows what it said.
        """
        if not turn.text.strip():
            return None, []
        history_matters = self.persona.safety.profile != "game"
        if not history_matters:
            verdict = screen_in(self.persona, turn.text, speaker=turn.speaker)
            if verdict.passed:
                return None, []
        # Read the history: crisis wording adds up over a conversation, and a
        # deflection should differ from the last one.
        state = await graph.aget_state(config)
        stored = list(state.values.get("messages", [])) if state.values else []
        said = said_texts(stored)
        earlier = [m.text for m in stored if isinstance(m, HumanMessage) and m.text]
        verdict = screen_in(
            self.persona, turn.text, history=said, user_history=earlier, speaker=turn.speaker
        )
        noted = [verdict.as_trace()] if verdict.topic is not None or not verdict.passed else []
        if verdict.passed or verdict.reply is None:
            return None, noted
        human = HumanMessage(self._stored_text(turn), id=str(uuid.uuid4()))
        if turn.speaker:
            human.name = turn.speaker
        answer = AIMessage(verdict.reply, response_metadata={"model_name": "safety"})
        await graph.aupdate_state(config, {"messages": [human, answer]}, as_node="model")
        reply = Reply(
            text=verdict.reply, flags=list(verdict.flags), model="safety", trace=noted
        )
        return reply, noted

    async def _screen_out(
        self, graph: Any, config: RunnableConfig, reply: Reply, messages: list[BaseMessage],
        turn: Turn, system_prompt: str | None,
    ) -> Reply:
        """Replace (or restyle) a reply the safety profile refuses, in the answer and history."""
        verdict = screen_out(self.persona, reply.text, speaker=turn.speaker,
                             system_prompt=system_prompt, canary=self._canary)  # fmt: skip
        if verdict.action == "pass":
            return reply
        verdict = screen_out(self.persona, reply.text, history=said_texts(messages[:-1]),
                             speaker=turn.speaker, system_prompt=system_prompt,
                             canary=self._canary)  # fmt: skip
        if verdict.action == "pass":
            return reply
        last = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        if last is not None and last.id is not None:
            # Same id: the checkpointer's reducer replaces the message, so the
            # model does not see its own refused words next turn.
            fixed = AIMessage(verdict.text, id=last.id, response_metadata=last.response_metadata)
            await graph.aupdate_state(config, {"messages": [fixed]}, as_node="model")
        reply.trace.append(verdict.as_trace())
        return reply.model_copy(
            update={"text": verdict.text, "flags": [*reply.flags, *verdict.flags]}
        )

    async def _locked_run(
        self,
        graph: Any,
        turn: Turn,
        scope: Scope,
        config: RunnableConfig,
        *,
        stream: bool,
        on_action: OnAction | None = None,
        admitted: _Admitted | None = None,
    ) -> AsyncIterator[str | Reply]:
        screened, noted = await self._screen_in(graph, turn, config)
        if screened is not None:
            if stream:
                yield screened.text
            yield screened
            return
        trace: list[dict[str, Any]] = list(noted)
        token = turn_trace.set(trace)
        human = HumanMessage(self._stored_text(turn), id=str(uuid.uuid4()))
        if turn.speaker:
            human.name = turn.speaker
        context = TurnContext(
            turn=turn, scope=scope, compile=self.compile, trace=trace, on_action=on_action,
            model_starting=admitted.release if admitted is not None else None,
        )
        messages: list[BaseMessage] = []
        recalled_ids: list[str] = []
        try:
            async with asyncio.timeout(self.turn_timeout):
                context.memories, recalled_ids = await self._recall(scope, turn)
                trace.append({"step": "memory", "recalled": len(context.memories)})
                if stream:
                    last_node_step: object = None
                    emitted = False
                    async for mode, payload in graph.astream(
                        {"messages": [human]}, config, context=context,
                        stream_mode=["messages", "values"], durability="exit",
                    ):
                        if mode == "values":
                            messages = list(payload["messages"])
                            continue
                        chunk, meta = payload
                        if (
                            not isinstance(chunk, AIMessageChunk)
                            or not chunk.text
                            or meta.get("langgraph_node") != "model"
                        ):
                            continue
                        step = meta.get("langgraph_step")
                        if emitted and step != last_node_step:
                            yield " "
                        last_node_step, emitted = step, True
                        yield chunk.text
                else:
                    state = await graph.ainvoke(
                        {"messages": [human]}, config, context=context, durability="exit"
                    )
                    messages = list(state["messages"])
        except Exception as exc:  # the turn must end with a defined outcome
            log.exception("turn failed for %s", scope.key())
            trace.append({"step": "error", "error": type(exc).__name__})
            reply = await self._salvage(graph, config, human, trace)
            turn_trace.reset(token)
            if stream:
                yield reply.text
            yield reply
            return
        turn_trace.reset(token)
        reply = self._reply(messages, human, trace)
        reply = await self._screen_out(
            graph, config, reply, messages, turn, context.prompt.text if context.prompt else None
        )
        if self._store is not None and recalled_ids:
            self._background(asyncio.to_thread(self._store.touch, scope, recalled_ids))
        if self._writer is not None:
            # After the reply is built and before it is handed over: the write
            # runs as a background task, so the reply never waits for it.
            self._writer.schedule(
                scope,
                user_text=redact(turn.text) if self._redact else turn.text,
                reply_text=redact(reply.text) if self._redact else reply.text,
                speaker=turn.speaker,
                turn_id=human.id,
                game_time=_game_time(turn),
                recalled=context.memories,
                system_texts=[context.prompt.text] if context.prompt else [],
            )
        yield reply

    def _reply(
        self, messages: list[BaseMessage], human: HumanMessage, trace: list[dict[str, Any]]
    ) -> Reply:
        start = next(i for i, m in enumerate(messages) if m.id == human.id)
        produced = messages[start + 1 :]
        ai = [m for m in produced if isinstance(m, AIMessage)]
        text = " ".join(m.text.strip() for m in ai if m.text.strip())
        all_actions = collect_actions(produced, self._action_names | {EMOTION_TOOL})
        emotions = [a.arguments.get("emotion") for a in all_actions if a.name == EMOTION_TOOL]
        emotion = emotions[-1] if emotions else None
        if emotion is None and ai:
            emotion = ai[-1].additional_kwargs.get("emotion")
        usage = Usage(model_calls=len(ai))
        for m in ai:
            if m.usage_metadata:
                usage.input_tokens += m.usage_metadata.get("input_tokens", 0)
                usage.output_tokens += m.usage_metadata.get("output_tokens", 0)
        answered = [e for e in trace if e.get("step") == "model" and e["outcome"] == "answered"]
        link, spec = (answered[-1]["link"], answered[-1]["model"]) if answered else (0, "?")
        flags: list[str] = []
        if spec == "offline":
            flags.append("offline")
        if link > 0:
            flags.append("fallback")
        for message in produced:
            if getattr(message, "status", None) == "error":
                trace.append({"step": "tool", "name": message.name, "outcome": "error"})
        return Reply(
            text=text,
            actions=[a for a in all_actions if a.name != EMOTION_TOOL],
            emotion=emotion if isinstance(emotion, str) else None,
            flags=flags,
            model=spec,
            usage=usage,
            trace=trace,
        )

    async def _salvage(
        self, graph: Any, config: RunnableConfig, human: HumanMessage, trace: list[dict[str, Any]]
    ) -> Reply:
        """End a failed turn: store the user's message and answer with a fallback line."""
        text = (self.persona.fallbacks or ["Sorry, I lost my train of thought."])[0]
        answer = AIMessage(text, response_metadata={"model_name": "offline"})
        try:
            state = await graph.aget_state(config)
            stored = {m.id for m in state.values.get("messages", [])} if state.values else set()
            new = ([] if human.id in stored else [human]) + [answer]
            await graph.aupdate_state(config, {"messages": new}, as_node="model")
        except Exception:  # keep the reply even if the store is broken
            log.exception("could not store the failed turn")
        return Reply(text=text, flags=["offline", "error"], model="offline", trace=trace)

    async def reset(self, scope: Scope | None = None) -> None:
        """Forget the conversation history of `scope` (default: the local user)."""
        graph = await self._ensure_graph()
        _, _, config = self._turn(Turn(scope=scope))
        await graph.checkpointer.adelete_thread(config["configurable"]["thread_id"])

    def _background(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run `work` after the reply; keep a reference, log failures (never user text)."""

        async def guarded() -> None:
            try:
                await work
            except Exception as exc:
                log.warning("background memory work failed: %s", type(exc).__name__)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self) -> None:
        """Wait for background memory work (touches and writes) to finish."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        if self._writer is not None:
            await self._writer.drain()

    async def forget(self, scope: Scope | None = None) -> int:
        """Erase everything kept about `scope`: memories, transcript and checkpoints.

        The erased text is gone from every file under the data directory (the
        databases are compacted), not only hidden. Returns the number of
        memories erased.
        """
        graph = await self._ensure_graph()
        _, scope, config = self._turn(Turn(scope=scope))
        await self._settle()
        erased = 0
        if self._store is not None:
            erased = await asyncio.to_thread(self._store.forget, scope)
        await graph.checkpointer.adelete_thread(config["configurable"]["thread_id"])
        # Deleted rows stay in free pages and the write-ahead log until compacted.
        await self._conn.commit()
        await self._conn.execute("VACUUM")
        await self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return erased

    async def aclose(self) -> None:
        """Finish pending memory writes, then close the history database and memory store."""
        await self._settle()
        if self._store is not None and self._owns_store:
            await asyncio.to_thread(self._store.close)
            self._store, self._owns_store, self._writer = None, False, None
        elif self._open_memory is not None:
            self._store, self._writer = None, None
        if self._conn is not None:
            await self._conn.close()
            self._conn, self._graph = None, None

    def close(self) -> None:
        """Close the history database and the sync runner, if `respond_sync` was used."""
        if self._runner is not None:
            self._runner.run(self.aclose())
            self._runner.close()
            self._runner = None


class _NoFacts:
    """Extracts nothing: for personas whose policy turns fact extraction off."""

    def extract(self, text: str, *, speaker: str | None = None) -> list[Fact]:
        return []

    async def aextract(self, text: str, *, speaker: str | None = None) -> list[Fact]:
        return []


def _lore_window(persona: Persona, said: Sequence[str]) -> Sequence[str]:
    """Return the last messages any lore entry of `persona` scans (its deepest scan depth)."""
    depths = [e.scan_depth for e in persona.lore if e.scan_depth is not None]
    depth = max([persona.lorebook.scan_depth, *depths])
    return said[max(0, len(said) - depth) :]


def _game_time(turn: Turn) -> str | None:
    value = turn.world.get("time") or turn.world.get("game_time")
    return str(value) if value is not None else None


def _human_text(turn: Turn) -> str:
    if not turn.events:
        return turn.text
    seen = "\n".join(f"[{event}]" for event in turn.events)
    return f"{seen}\n{turn.text}".strip()


def _emotion_action(emotions: list[str]) -> HostAction:
    return HostAction(
        name=EMOTION_TOOL,
        description="Show an emotion on your face and body while you answer.",
        parameters={
            "type": "object",
            "properties": {"emotion": {"type": "string", "enum": emotions}},
            "required": ["emotion"],
            "additionalProperties": False,
        },
    )
