"""From discord.py objects to the plain facts the policy decides on.

`where(channel)` names the place of a channel (guild, category, channel,
thread, or a DM) and `message_facts(...)` turns a `discord.Message` into
`MessageFacts`. The live bot and `personae discord why` both go through
here, so an explanation matches what the bot did.

`BotTurns` counts bot-written messages in a row per place, for the cap on
bot-to-bot exchanges (`max_bot_turns`).
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass

import discord

from personae.integrations.discord.policy import MessageFacts

__all__ = ["BotTurns", "Place", "message_facts", "spoken_text", "where"]


@dataclass(frozen=True)
class Place:
    """Where a message was written, as ids.

    Attributes:
        guild_id: The guild; None in direct messages.
        category_id: The category of the channel, if any.
        channel_id: The text channel; for a thread, its parent channel.
        thread_id: The thread, if the message is in one.
        is_dm: A direct message (or a group DM).
    """

    guild_id: int | None
    category_id: int | None
    channel_id: int | None
    thread_id: int | None
    is_dm: bool

    @property
    def id(self) -> int | None:
        """The narrowest place: the thread, else the channel."""
        return self.thread_id if self.thread_id is not None else self.channel_id


def where(channel: object, *, parent: object | None = None) -> Place:
    """Return the place of a channel or thread.

    Args:
        channel: A guild channel, thread, DM or partial messageable.
        parent: The parent channel of a thread, when the cache lacks it (the
            category of a thread is its parent's).
    """
    if isinstance(channel, discord.DMChannel | discord.GroupChannel):
        return Place(None, None, channel.id, None, True)
    guild = getattr(channel, "guild", None)
    guild_id = guild.id if guild is not None else getattr(channel, "guild_id", None)
    if isinstance(channel, discord.Thread):
        parent = channel.parent or parent
        category_id = getattr(parent, "category_id", None)
        return Place(guild_id, category_id, channel.parent_id, channel.id, False)
    channel_id = getattr(channel, "id", None)
    if guild_id is None:
        return Place(None, None, channel_id, None, True)
    return Place(guild_id, getattr(channel, "category_id", None), channel_id, None, False)


_MENTION = re.compile(r"<@!?(\d+)>")


def spoken_text(message: discord.Message, me_id: int) -> str:
    """Return what the author said to the bot: the text without the bot's own mention.

    Other mentions become the member's display name, so the model reads names, not ids.
    """
    names = {m.id: m.display_name for m in message.mentions}

    def name(match: re.Match[str]) -> str:
        user_id = int(match.group(1))
        if user_id == me_id:
            return ""
        return f"@{names[user_id]}" if user_id in names else match.group(0)

    text = _MENTION.sub(name, message.content)
    return " ".join(text.split())


def message_facts(
    message: discord.Message,
    *,
    me_id: int,
    own_webhooks: Container[int],
    content_intent: bool,
    bot_turns: int = 0,
    bot_role_id: int | None = None,
    parent: object | None = None,
) -> MessageFacts:
    """Return the facts of a message that the answer policy decides on.

    Args:
        message: The message.
        me_id: The bot's user id.
        own_webhooks: Ids of the webhooks the bot speaks through.
        content_intent: Whether the bot has the message-content intent. Without
            it Discord still sends the text of DMs and of messages that mention the bot.
        bot_turns: Bot-written messages in a row just before this one.
        bot_role_id: The bot's managed role in the guild, if known.
        parent: The parent channel of a thread, when the cache lacks it.
    """
    place = where(message.channel, parent=parent)
    author = message.author
    mentions_bot = any(user.id == me_id for user in message.mentions)
    referenced = message.reference.resolved if message.reference is not None else None
    reply_to_bot = isinstance(referenced, discord.Message) and (
        referenced.author.id == me_id
        or (referenced.webhook_id is not None and referenced.webhook_id in own_webhooks)
    )
    is_webhook = message.webhook_id is not None
    is_self = author.id == me_id or (is_webhook and message.webhook_id in own_webhooks)
    readable = content_intent or place.is_dm or mentions_bot or bool(message.content)
    return MessageFacts(
        author_id=author.id,
        channel_id=place.channel_id,
        guild_id=place.guild_id,
        category_id=place.category_id,
        thread_id=place.thread_id,
        is_bot=author.bot,
        is_webhook=is_webhook,
        is_self=is_self,
        mentions_bot=mentions_bot,
        mentions_bot_role=bot_role_id is not None and bot_role_id in message.raw_role_mentions,
        is_reply_to_bot=reply_to_bot,
        is_dm=place.is_dm,
        text=message.content,
        content_available=readable,
        bot_turns=bot_turns,
    )


class BotTurns:
    """Counts bot-written messages in a row, per place, so bot conversations end.

    Each message is counted once, whether the bot saw it from the gateway or
    recorded it when sending; a message from a person resets the count.

    Args:
        remember: How many message ids to keep for the once-only check.
    """

    def __init__(self, *, remember: int = 4096) -> None:
        self._runs: dict[int, int] = {}
        self._seen: dict[int, None] = {}
        self._remember = remember

    def before(self, place_id: int | None) -> int:
        """Bot messages in a row in the place so far."""
        return self._runs.get(place_id or 0, 0)

    def saw(self, place_id: int | None, message_id: int, *, by_bot: bool) -> None:
        """Count a message written in the place (by a bot or webhook, or by a person)."""
        if message_id in self._seen:
            return
        self._seen[message_id] = None
        if len(self._seen) > self._remember:
            del self._seen[next(iter(self._seen))]
        key = place_id or 0
        self._runs[key] = self._runs.get(key, 0) + 1 if by_bot else 0
