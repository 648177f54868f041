"""Why the bot answered a message, or did not: the decision, replayed and explained.

`explain_message` fetches a message through the Discord API, builds the
same facts the live bot builds, resolves the place's policy and persona, and
runs the same `decide`. Used by `personae discord why MESSAGE_LINK`.

What the live bot knew at that moment and a replay cannot (how long ago it
last answered in the channel, the talkativeness dice) is replayed from a
fresh state; the explanation says so when it matters.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, fields
from typing import Any

import discord

from personae.errors import ConfigError
from personae.integrations.discord.config import DiscordConfig
from personae.integrations.discord.facts import Place, message_facts, where
from personae.integrations.discord.policy import (
    Decision,
    MessageFacts,
    Policy,
    PolicyState,
    decide,
    resolve_policy,
)
from personae.integrations.discord.routing import PersonaChoice, resolve_persona

__all__ = ["Explanation", "MessageLink", "explain_message", "parse_message_link"]

_LINK = re.compile(
    r"^https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/"
    r"(?P<guild>\d+|@me)/(?P<channel>\d+)/(?P<message>\d+)/?$"
)
_PREVIEW = 80


@dataclass(frozen=True)
class MessageLink:
    """The ids in a message link (Discord: right-click a message, Copy Message Link).

    Attributes:
        guild_id: The guild, None for a direct message (`@me`).
        channel_id: The channel or thread.
        message_id: The message.
    """

    guild_id: int | None
    channel_id: int
    message_id: int


def parse_message_link(link: str) -> MessageLink:
    """Read a message link such as `https://discord.com/channels/1/2/3`.

    Raises:
        ConfigError: The text is not a Discord message link.
    """
    found = _LINK.match(link.strip())
    if found is None:
        raise ConfigError(
            f"{link!r} is not a Discord message link; in Discord, right-click the message (or "
            "long-press it), choose Copy Message Link, and pass that, e.g. "
            "https://discord.com/channels/GUILD_ID/CHANNEL_ID/MESSAGE_ID"
        )
    guild = found.group("guild")
    return MessageLink(None if guild == "@me" else int(guild), int(found.group("channel")),
                       int(found.group("message")))


@dataclass(frozen=True)
class Explanation:
    """A message, and what the bot decides about it, with the reasons.

    Attributes:
        message_id: The message.
        author: Who wrote it (display name).
        preview: Its first characters.
        place: Where it was written.
        facts: What the policy saw.
        policy: The policy of the place, with where each value was set.
        decision: Answer or not, and why.
        persona: Who would speak there, and where that was set.
    """

    message_id: int
    author: str
    preview: str
    place: Place
    facts: MessageFacts
    policy: Policy
    decision: Decision
    persona: PersonaChoice

    def lines(self) -> list[str]:
        """Return the explanation as lines of text, for a terminal or a chat message."""
        verdict = "answers" if self.decision.answer else "does not answer"
        out = [
            f"message {self.message_id} by {self.author}: {self.preview!r}",
            f"decision: the bot {verdict} ({self.decision.rule}): {self.decision.reason}",
            f"persona: {self.persona.persona_id} (set by {self.persona.where})",
        ]
        if not self.facts.content_available:
            out.append("note: the bot cannot read this message's text (no message-content "
                       "intent), so wake words cannot match")
        if self.decision.rule in ("talkative", "quiet") and self.policy.talkativeness > 0:
            out.append("note: talkative answers are random; this replay rolled its own dice")
        out.append("policy here:")
        for name in (f.name for f in fields(self.policy) if f.name != "sources"):
            shown = _plain(getattr(self.policy, name))
            out.append(f"  {name} = {shown!r}  ({self.policy.source(name)})")
        return out

    def as_dict(self) -> dict[str, Any]:
        """Return the explanation as JSON-ready data."""
        return {
            "message_id": str(self.message_id),
            "author": self.author,
            "guild_id": _id(self.place.guild_id),
            "channel_id": _id(self.place.channel_id),
            "thread_id": _id(self.place.thread_id),
            "answer": self.decision.answer,
            "rule": self.decision.rule,
            "reason": self.decision.reason,
            "persona": self.persona.persona_id,
            "persona_set_by": self.persona.where,
            "content_available": self.facts.content_available,
            "policy": {f.name: _plain(getattr(self.policy, f.name))
                       for f in fields(self.policy) if f.name != "sources"},
            "policy_sources": dict(self.policy.sources),
        }


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _id(value: int | None) -> str | None:
    return str(value) if value is not None else None


async def _bot_turns(message: discord.Message, limit: int) -> int:
    """Count bot-written messages in a row just before `message`."""
    count = 0
    try:
        async for earlier in message.channel.history(limit=limit, before=message):
            if not (earlier.author.bot or earlier.webhook_id is not None):
                break
            count += 1
    except discord.Forbidden:
        return 0
    return count


async def explain_message(
    client: discord.Client,
    config: DiscordConfig,
    link: MessageLink,
    *,
    overrides: Mapping[int, str] | None = None,
    own_webhooks: Container[int] = (),
    content_intent: bool = True,
    policy_state: PolicyState | None = None,
) -> Explanation:
    """Fetch a message and explain what the bot decides about it.

    Args:
        client: A logged-in client (a running bot, or one logged in over HTTP only).
        config: The bot's config.
        link: Which message.
        overrides: Personas set with `/persona set`, place id -> persona id.
        own_webhooks: Ids of the bot's webhooks.
        content_intent: Whether the bot has the message-content intent.
        policy_state: The live bot's state; default a fresh one.

    Raises:
        discord.NotFound: The channel or message does not exist.
        discord.Forbidden: The bot may not read it.
    """
    assert client.user is not None, "log the client in first"
    channel = client.get_channel(link.channel_id) or await client.fetch_channel(link.channel_id)
    message = await channel.fetch_message(link.message_id)  # type: ignore[union-attr]
    parent = None
    if isinstance(channel, discord.Thread) and channel.parent is None:
        parent = await client.fetch_channel(channel.parent_id)
    role_id = None
    guild_id = link.guild_id
    if guild_id is not None:
        guild = client.get_guild(guild_id) or await client.fetch_guild(guild_id)
        role = guild.self_role
        role_id = role.id if role is not None else None
    policy_state = policy_state or PolicyState(seed=config.seed)
    place = where(channel, parent=parent)
    policy = resolve_policy(config, place.guild_id, place.category_id, place.channel_id,
                            place.thread_id, is_dm=place.is_dm)
    turns = await _bot_turns(message, policy.max_bot_turns + 1)
    facts = message_facts(message, me_id=client.user.id, own_webhooks=own_webhooks,
                          content_intent=content_intent, bot_turns=turns,
                          bot_role_id=role_id, parent=parent)
    decision = decide(facts, policy, policy_state)
    persona = resolve_persona(config, place.guild_id, place.category_id, place.channel_id,
                              place.thread_id, overrides=overrides, is_dm=place.is_dm)
    text = " ".join(message.content.split())
    preview = text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"
    author = getattr(message.author, "display_name", None) or message.author.name
    return Explanation(message.id, author, preview, place, facts, policy, decision, persona)
