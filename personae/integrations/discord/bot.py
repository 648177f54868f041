"""`PersonaeBot`: personas as a Discord bot, on discord.py.

One bot speaks as several personas: the config routes each guild, category,
channel and thread to one, and `/persona set` changes that at run time.
For each message the bot sees, it builds the facts (`facts.py`), asks the
place's policy whether to answer (`policy.py`), and if so runs the turn
(`runner.py`): limits, context, the agent, the reply through the persona's
webhook or as the bot itself.

discord.py runs every event handler in its own task, and the bot keeps
every blocking call off the event loop, so a slow model in one channel holds
up neither other channels nor the gateway's heartbeat.

Example:
    ```python
    from personae.integrations.discord.bot import PersonaeBot
    from personae.integrations.discord.config import load_config

    config = load_config("bot.yaml")
    bot = PersonaeBot.from_config(config)
    bot.run(config.require_token().get_secret_value(), log_handler=None)
    ```
"""

from __future__ import annotations

try:
    import discord
    from discord import app_commands
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        'the Discord bot needs discord.py: pip install "personae[discord]"'
    ) from exc

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from personae.agents.agent import Agent
from personae.integrations.discord.commands import CommandTree, add_commands
from personae.integrations.discord.config import DiscordConfig
from personae.integrations.discord.facts import BotTurns, Place, message_facts, where
from personae.integrations.discord.limits import Limiter
from personae.integrations.discord.policy import Decision, PolicyState, decide, resolve_policy
from personae.integrations.discord.routing import PersonaChoice, resolve_persona
from personae.integrations.discord.runner import TurnRunner, scope_for
from personae.integrations.discord.state import DiscordState, PlaceKind
from personae.integrations.discord.webhooks import ChannelWebhooks
from personae.integrations.discord.why import Explanation, MessageLink, explain_message
from personae.settings import Settings, get_settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from personae.memory.store import MemoryStore

__all__ = ["PersonaeBot", "default_intents"]

log = logging.getLogger(__name__)


def default_intents() -> discord.Intents:
    """Return the gateway intents the bot asks for.

    Guilds, guild and direct messages, and message content (privileged: turn
    it on in the Developer Portal under Bot; without it the bot still answers
    mentions, replies and DMs). No members or presences.
    """
    intents = discord.Intents.default()
    intents.members = False
    intents.presences = False
    intents.message_content = True
    return intents


class PersonaeBot(discord.Client):
    """A discord.py client that answers as personas, per the config's policy.

    Args:
        config: The bot's config (`load_config`).
        agents: Persona id -> a ready agent, for every persona of the config
            (closed with the bot); default: made from the persona files, sharing
            one memory store.
        state: What survives restarts; default `PERSONAE_HOME/discord/state.sqlite`.
        model: Model spec or chat model for every persona; default each persona's.
        embedder: Embedder for memory and the offline model; default the bundled MiniLM.
        settings: Service settings; default from `PERSONAE_*` env vars.
        intents: Gateway intents; default `default_intents()`.
        clock: Seconds since the epoch, for the limits (injected by tests).
        monotonic: Monotonic seconds, for cooldowns and the edit throttle.
        sleep: Waits, for the edit throttle (injected by tests).
        options: More `discord.Client` options.

    Raises:
        PersonaFileError: A persona file of the config does not load.
        ConfigError: `agents` lacks a persona of the config.
    """

    def __init__(
        self,
        config: DiscordConfig,
        *,
        agents: Mapping[str, Agent] | None = None,
        state: DiscordState | None = None,
        model: str | BaseChatModel | None = None,
        embedder: Any = None,
        settings: Settings | None = None,
        intents: discord.Intents | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **options: Any,
    ) -> None:
        super().__init__(intents=intents or default_intents(), **options)
        self.config = config
        self.settings = settings or get_settings()
        self.embedder = embedder
        self._store: MemoryStore | None = None
        self._store_lock = threading.Lock()
        self.agents: dict[str, Agent] = dict(agents) if agents is not None else \
            self._make_agents(model)
        missing = sorted(set(config.personas) - set(self.agents))
        if missing:
            from personae.errors import ConfigError

            raise ConfigError(f"no agent for the personas {', '.join(missing)}; pass one per "
                              "persona of the config, or leave `agents` out")
        self.state = state if state is not None else DiscordState()
        self.tree: app_commands.CommandTree[PersonaeBot] = CommandTree(self)
        add_commands(self.tree)
        self.policy_state = PolicyState(seed=config.seed, clock=monotonic)
        self.limiter = Limiter(config.limits, self.state, clock=clock)
        self.webhooks = ChannelWebhooks(self, self.state, enabled=config.webhooks)
        self.bot_turns = BotTurns()
        self.overrides: dict[int, str] = {}
        self.runner = TurnRunner(config, self.agents, limiter=self.limiter,
                                 webhooks=self.webhooks, me_id=self._me_id,
                                 on_posted=self._posted, clock=monotonic, sleep=sleep)
        self.decisions: deque[tuple[int, Decision]] = deque(maxlen=256)
        """The latest decisions, (message id, decision), newest last."""
        self._busy: set[asyncio.Task[Any]] = set()
        self._state_open = False

    @classmethod
    def from_config(cls, config: DiscordConfig, **kwargs: Any) -> PersonaeBot:
        """Make the bot of a config; keyword arguments go to `PersonaeBot`."""
        return cls(config, **kwargs)

    # -- agents and memory -------------------------------------------------------------

    def _make_agents(self, model: str | BaseChatModel | None) -> dict[str, Agent]:
        from personae.personas.loading import load_persona

        home = self.settings.home / "discord"
        agents = {}
        for persona_id, path in self.config.personas.items():
            persona = load_persona(path)
            agents[persona_id] = Agent(
                persona, model=model, settings=self.settings,
                # One history database per persona: SQLite lets one connection
                # write at a time, and personas answer at once.
                home=home / "personas" / persona_id,
                embedder=self.embedder, open_memory=self._open_store)
        return agents

    def _open_store(self) -> MemoryStore:
        """Open the one memory store all personas share (an embedded store has one owner)."""
        with self._store_lock:
            if self._store is None:
                from personae.memory.store import MemoryStore

                embedder = self.embedder
                if embedder is None:
                    from personae.memory.embeddings import default_embedder

                    embedder = default_embedder()
                server = self.settings.env("PERSONAE_CHROMA_URL")
                self._store = MemoryStore(self.settings.home / "memory", server=server,
                                          embedder=embedder)
            return self._store

    # -- lifecycle ----------------------------------------------------------------------

    async def setup_hook(self) -> None:
        """Open the state, load `/persona set` overrides, check the content intent."""
        await self._open_state()
        flags = self.application_flags
        if self.intents.message_content and not (
            flags.gateway_message_content or flags.gateway_message_content_limited
        ):
            # Asking for a privileged intent the portal has not granted makes
            # Discord close the gateway (4014); run without it instead.
            log.warning("the Message Content intent is off in the Developer Portal: answering "
                        "mentions, replies and DMs only (turn it on under Bot -> Privileged "
                        "Gateway Intents)")
            self._connection._intents.message_content = False

    async def _open_state(self) -> None:
        if not self._state_open:
            await self.state.open()
            self._state_open = True
            self.overrides = await self.state.persona_overrides()

    async def close(self) -> None:
        """Stop answering, disconnect, then close agents, memory and state."""
        for task in list(self._busy):
            task.cancel()
        if self._busy:
            await asyncio.wait(set(self._busy), timeout=10)
        await super().close()
        for agent in self.agents.values():
            await agent.aclose()
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
            self._store = None
        if self._state_open:
            await self.state.aclose()
            self._state_open = False

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until every message seen so far has been handled (answered or not)."""
        await asyncio.sleep(0)
        deadline = asyncio.get_running_loop().time() + timeout
        while self._busy:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError("messages still being handled")
            await asyncio.wait(set(self._busy), timeout=left)

    # -- messages -----------------------------------------------------------------------

    def _me_id(self) -> int:
        assert self.user is not None, "the bot is not logged in"
        return self.user.id

    def _posted(self, message: discord.Message) -> None:
        self.bot_turns.saw(where(message.channel).id, message.id, by_bot=True)

    def persona_for(self, place: Place) -> PersonaChoice:
        """Return the persona that speaks in a place, and where that was set."""
        return resolve_persona(self.config, place.guild_id, place.category_id,
                               place.channel_id, place.thread_id, overrides=self.overrides,
                               is_dm=place.is_dm)

    def track(self) -> None:
        """Count the current task as work in progress, for `settle` and `close`."""
        task = asyncio.current_task()
        if task is not None and task not in self._busy:
            self._busy.add(task)
            task.add_done_callback(self._busy.discard)

    async def on_message(self, message: discord.Message) -> None:
        """Decide whether to answer a message, and answer it."""
        self.track()
        try:
            await self._handle(message)
        except Exception:
            # Never the message text: it is a user's.
            log.exception("could not handle message %s in channel %s", message.id,
                          message.channel.id)

    async def _handle(self, message: discord.Message) -> None:
        if self.user is None:
            return
        place = where(message.channel)
        by_bot = message.author.bot or message.webhook_id is not None
        before = self.bot_turns.before(place.id)
        self.bot_turns.saw(place.id, message.id, by_bot=by_bot)
        await self.webhooks.is_own(message.webhook_id, message.channel)
        reference = message.reference.resolved if message.reference is not None else None
        if isinstance(reference, discord.Message):
            await self.webhooks.is_own(reference.webhook_id, reference.channel)
        role = message.guild.self_role if message.guild is not None else None
        facts = message_facts(message, me_id=self.user.id, own_webhooks=self.webhooks.own_ids,
                              content_intent=self.intents.message_content, bot_turns=before,
                              bot_role_id=role.id if role is not None else None)
        policy = resolve_policy(self.config, place.guild_id, place.category_id,
                                place.channel_id, place.thread_id, is_dm=place.is_dm)
        decision = decide(facts, policy, self.policy_state)
        self.decisions.append((message.id, decision))
        if not decision.answer:
            log.debug("not answering message %s: %s", message.id, decision.reason)
            return
        log.info("answering message %s in %s: %s", message.id, place.id, decision.reason)
        # Noted before the turn runs, so messages arriving meanwhile see the cooldown.
        self.policy_state.answered(place.id)
        choice = self.persona_for(place)
        await self.runner.answer(message, choice.persona_id,
                                 content_available=facts.content_available)

    # -- what the commands need ---------------------------------------------------------

    async def set_persona(self, place_id: int, persona_id: str, *, kind: PlaceKind,
                          guild_id: int | None, set_by: int | None) -> None:
        """Make `persona_id` speak in a place from now on (kept across restarts)."""
        await self.state.set_persona(place_id, persona_id, kind=kind, guild_id=guild_id,
                                     set_by=set_by)
        self.overrides[place_id] = persona_id

    def describe_place(self, place: Place) -> str:
        """Say who speaks in a place and when the bot answers there, for `/persona show`."""
        choice = self.persona_for(place)
        persona = self.agents[choice.persona_id].persona
        policy = resolve_policy(self.config, place.guild_id, place.category_id,
                                place.channel_id, place.thread_id, is_dm=place.is_dm)
        calls = []
        if place.is_dm:
            calls.append("every direct message" if policy.dm else "no direct messages")
        else:
            if policy.mention:
                calls.append("a mention")
            if policy.reply_to_bot:
                calls.append("a reply to it")
            if policy.wake_words:
                calls.append("the words " + ", ".join(repr(w) for w in policy.wake_words))
            if policy.always_on:
                calls.append("every message (always on)")
            elif policy.talkativeness > 0:
                calls.append(f"now and then on its own ({policy.talkativeness:.0%} of messages)")
        answers = ", ".join(calls) if calls else "nothing (it stays quiet here)"
        return (f"Here {persona.display_name} ({choice.persona_id}) speaks, set by "
                f"{choice.where}.\nIt answers {answers}.")

    async def forget_user(self, user_id: int, place: Place) -> int:
        """Erase a user's memories and conversation in a place, with every persona."""
        erased = 0
        for persona_id, agent in self.agents.items():
            erased += await agent.forget(scope_for(persona_id, user_id, place))
        return erased

    async def memories_of(self, user_id: int, place: Place, *, limit: int = 25
                          ) -> list[str] | None:
        """Return what the place's persona remembers about a user there; None without memory."""
        persona_id = self.persona_for(place).persona_id
        agent = self.agents[persona_id]
        if not agent.memory_enabled:
            return None
        scope = scope_for(persona_id, user_id, place)
        await agent.history(scope)  # opens the memory store on first use
        store = agent.memory
        if store is None:
            return None
        records = await asyncio.to_thread(store.list, scope, include_superseded=False,
                                          limit=limit)
        return [record.text for record in records]

    async def explain(self, link: MessageLink) -> Explanation:
        """Explain what the bot decides about a message (the `why` of it)."""
        await self._open_state()
        await self.webhooks.remember(link.channel_id)
        return await explain_message(
            self, self.config, link, overrides=self.overrides,
            own_webhooks=self.webhooks.own_ids, content_intent=self.intents.message_content)

