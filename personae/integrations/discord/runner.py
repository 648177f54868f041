"""One answer, from a Discord message (or `/ask`) to the posted reply.

`TurnRunner.answer` runs the steps the bot takes once the policy said yes:

1. the per-user limits (one polite notice when over, then silence);
2. a slot of the guild's concurrency pool;
3. the context: reply chain, thread or channel history, within the token budget;
4. the turn, as the persona, in the scope (persona, user, guild, channel),
   under the channel's typing indicator;
5. the reply, streamed by throttled edits or posted at once, split at 2000
   characters, pinging no one but the asker.

Every step is a coroutine: the agent is async, and anything blocking
(memory, embeddings, SQLite) runs in worker threads, so one slow model
never holds up the gateway heartbeat or another channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import discord

from personae.agents.agent import Agent
from personae.agents.turn import Reply, Turn
from personae.integrations.discord.config import DiscordConfig
from personae.integrations.discord.delivery import (
    ChannelOutlet,
    InteractionOutlet,
    Outlet,
    ReplyWriter,
)
from personae.integrations.discord.facts import Place, spoken_text, where
from personae.integrations.discord.history import gather_context
from personae.integrations.discord.limits import Limiter
from personae.integrations.discord.webhooks import ChannelWebhooks, Speaker
from personae.scope import Scope

__all__ = ["TurnRunner", "scope_for"]

log = logging.getLogger(__name__)

OFFLINE_LABEL = "\n-# answered offline, from the character's own lines"


def scope_for(persona_id: str, user_id: int, place: Place) -> Scope:
    """Return the scope of a user's conversation with a persona in a place.

    Memory and history are kept per guild, channel (or thread, or DM) and user.
    """
    return Scope(
        persona=persona_id,
        user=str(user_id),
        guild=str(place.guild_id) if place.guild_id is not None else None,
        channel=str(place.id) if place.id is not None else None,
    )


def _place_words(channel: object) -> str:
    if isinstance(channel, discord.DMChannel | discord.GroupChannel):
        return "a direct message on Discord"
    name = getattr(channel, "name", None)
    guild = getattr(channel, "guild", None)
    guild_name = getattr(guild, "name", None)
    kind = "thread" if isinstance(channel, discord.Thread) else "channel"
    words = f"the Discord {kind} #{name}" if name else f"a Discord {kind}"
    return f"{words} on the server {guild_name}" if guild_name else words


class TurnRunner:
    """Answers messages and `/ask` as the persona of the place.

    Args:
        config: The bot's config (context budget, streaming, webhooks).
        agents: Persona id -> its agent.
        limiter: Per-user limits and per-guild concurrency.
        webhooks: The bot's webhooks (persona names and avatars).
        me_id: Returns the bot's user id once logged in.
        on_posted: Called with every message the bot posts.
        clock: Monotonic seconds, for the edit throttle (injected by tests).
        sleep: Waits, for the edit throttle (injected by tests).
    """

    def __init__(
        self,
        config: DiscordConfig,
        agents: Mapping[str, Agent],
        *,
        limiter: Limiter,
        webhooks: ChannelWebhooks,
        me_id: Callable[[], int],
        on_posted: Callable[[discord.Message], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.agents = agents
        self.limiter = limiter
        self.webhooks = webhooks
        self.me_id = me_id
        self.on_posted = on_posted
        self.clock = clock
        self.sleep = sleep

    def speaker(self, persona_id: str) -> Speaker:
        """Return the name and avatar a persona speaks with."""
        persona = self.agents[persona_id].persona
        return Speaker(persona_id, persona.display_name, persona.avatar)

    async def answer(self, message: discord.Message, persona_id: str, *,
                     content_available: bool = True) -> list[discord.Message]:
        """Answer `message` as `persona_id`, within the limits; return what was posted."""
        verdict = await self.limiter.check(message.author.id)
        if not verdict.allowed:
            log.info("not answering user %s: %s", message.author.id, verdict.reason)
            if verdict.notice:
                notice = ChannelOutlet(message, webhooks=None, speaker=None,
                                       on_posted=self.on_posted)
                return [await notice.post(verdict.notice)]
            return []
        place = where(message.channel)
        async with self.limiter.slot(place.guild_id):
            context = await gather_context(
                message, me_id=self.me_id(), own_webhooks=self.webhooks.own_ids,
                messages=self.config.context_messages, budget=self.config.context_tokens,
                content_available=content_available)
            turn = self._turn(message, persona_id, place, context.text)
            use_webhook = self.config.webhooks and self.webhooks.usable(message.channel)
            outlet = ChannelOutlet(message, webhooks=self.webhooks if use_webhook else None,
                                   speaker=self.speaker(persona_id), on_posted=self.on_posted)
            typing: AbstractAsyncContextManager[Any] = message.channel.typing()
            return await self._run(self.agents[persona_id], turn, outlet, typing)

    async def ask(self, interaction: discord.Interaction, question: str, persona_id: str
                  ) -> list[discord.Message]:
        """Answer `/ask` (already deferred) with follow-up messages; limits apply."""
        verdict = await self.limiter.check(interaction.user.id)
        outlet = InteractionOutlet(interaction)
        if not verdict.allowed:
            text = verdict.notice or "I can't answer you right now; please try again later."
            return [await InteractionOutlet(interaction, ephemeral=True).post(text)]
        place = where(interaction.channel)
        async with self.limiter.slot(place.guild_id):
            persona = self.agents[persona_id].persona
            speaker = getattr(interaction.user, "display_name", interaction.user.name)
            turn = Turn(text=question, scope=scope_for(persona_id, interaction.user.id, place),
                        speaker=speaker, world=self._world(interaction.channel, ""))
            posted = await self._run(self.agents[persona_id], turn, outlet, nullcontext(),
                                     name=persona.display_name)
        return posted

    def _turn(self, message: discord.Message, persona_id: str, place: Place,
              context: str) -> Turn:
        author = message.author
        speaker = getattr(author, "display_name", None) or author.name
        text = spoken_text(message, self.me_id())
        events: list[str] = []
        if not text:
            names = [a.filename for a in message.attachments]
            events.append(f"{speaker} sent {', '.join(names)}" if names
                          else f"{speaker} calls you without saying anything more")
        return Turn(text=text, scope=scope_for(persona_id, author.id, place), speaker=speaker,
                    events=events, world=self._world(message.channel, context))

    @staticmethod
    def _world(channel: object, context: str) -> dict[str, Any]:
        world: dict[str, Any] = {"where": _place_words(channel)}
        if context:
            world["conversation"] = context
        return world

    async def _run(self, agent: Agent, turn: Turn, outlet: Outlet,
                   typing: AbstractAsyncContextManager[Any], *, name: str | None = None
                   ) -> list[discord.Message]:
        """Run the turn and show its reply; streaming when configured."""
        writer = ReplyWriter(outlet, clock=self.clock, sleep=self.sleep)
        reply: Reply | None = None
        async with typing:
            if self.config.streaming:
                async for item in agent.stream(turn):
                    if isinstance(item, Reply):
                        reply = item
                    elif item:
                        await writer.feed(item)
            else:
                reply = await agent.respond(turn)
        assert reply is not None
        text = reply.text
        if name and len(self.agents) > 1 and text.strip():
            text = f"**{name}:** {text}"
        if reply.offline and text.strip():
            text += OFFLINE_LABEL
        return await writer.finish(text)
