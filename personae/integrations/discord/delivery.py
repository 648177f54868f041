"""Posting a reply: where it goes (outlets) and how (all at once, or streamed by edits).

An outlet posts, edits and deletes the messages of one reply:

- `ChannelOutlet` answers a message in its channel, through the bot's
  webhook as the persona when it can, else as the bot: then the first part
  is a reply to the asker's message, with `fail_if_not_exists=False` so a
  deleted question does not lose the answer;
- `InteractionOutlet` answers a slash command with follow-up messages.

Every part goes out with `allowed_mentions` that can ping the asker and no
one else (never `@everyone`, `@here` or roles), after `neutralise` made
such pings inert in the text as well, and is at most 2000 characters.

`ReplyWriter` streams: the reply appears as soon as there is text and grows
by edits, at most one edit per second per message (Discord rate-limits
edits); the final text is always shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import discord

from personae.integrations.discord.output import neutralise, split_message
from personae.integrations.discord.webhooks import ChannelWebhooks, Speaker

__all__ = [
    "ChannelOutlet",
    "InteractionOutlet",
    "Outlet",
    "ReplyWriter",
    "asker_only",
]

log = logging.getLogger(__name__)


def asker_only(asker: discord.abc.Snowflake) -> discord.AllowedMentions:
    """Mentions that may ping the asker (also as the replied-to author) and no one else."""
    return discord.AllowedMentions(everyone=False, roles=False, users=[asker], replied_user=True)


class Outlet(Protocol):
    """Where the parts of one reply are posted."""

    async def post(self, text: str) -> discord.Message:
        """Post a new message; the first one answers the asker."""
        ...

    async def edit(self, message: discord.Message, text: str) -> bool:
        """Change a posted message; False when it no longer exists."""
        ...

    async def delete(self, message: discord.Message) -> None:
        """Remove a posted message that the final reply does not need."""
        ...


class ChannelOutlet:
    """Answers `message` in its channel: as the persona through a webhook, else as the bot.

    Args:
        message: The message being answered.
        webhooks: The bot's webhooks; None to always speak as the bot.
        speaker: The persona's name and avatar for webhook messages.
        on_posted: Called with each message posted (the bot counts its own turns).
    """

    def __init__(self, message: discord.Message, *, webhooks: ChannelWebhooks | None,
                 speaker: Speaker | None,
                 on_posted: Callable[[discord.Message], None] | None = None) -> None:
        self.message = message
        self.webhooks = webhooks
        self.speaker = speaker
        self.on_posted = on_posted
        self.mentions = asker_only(message.author)
        self._replied = False

    async def post(self, text: str) -> discord.Message:
        """Post one part, through the webhook if possible; the first bot part is a reply."""
        posted: discord.Message | None = None
        channel = self.message.channel
        if self.webhooks is not None and self.speaker is not None:
            posted = await self.webhooks.send(channel, text, speaker=self.speaker,
                                              allowed_mentions=self.mentions)
        if posted is None:
            reference = None
            if not self._replied:
                reference = self.message.to_reference(fail_if_not_exists=False)
            posted = await channel.send(text, reference=reference,  # type: ignore[arg-type]
                                        allowed_mentions=self.mentions)
        self._replied = True
        if self.on_posted is not None:
            self.on_posted(posted)
        return posted

    async def edit(self, message: discord.Message, text: str) -> bool:
        """Edit one part (a webhook message through its webhook)."""
        try:
            await message.edit(content=text, allowed_mentions=self.mentions)
        except discord.NotFound:
            return False
        return True

    async def delete(self, message: discord.Message) -> None:
        """Delete one part; already gone is fine."""
        with contextlib.suppress(discord.NotFound):
            await message.delete()


class InteractionOutlet:
    """Answers a deferred slash command with follow-up messages.

    Args:
        interaction: The interaction, already deferred.
        ephemeral: Only the caller sees the answer.
    """

    def __init__(self, interaction: discord.Interaction, *, ephemeral: bool = False) -> None:
        self.interaction = interaction
        self.ephemeral = ephemeral
        self.mentions = asker_only(interaction.user)

    async def post(self, text: str) -> discord.Message:
        """Send one follow-up message."""
        return await self.interaction.followup.send(
            text, ephemeral=self.ephemeral, allowed_mentions=self.mentions, wait=True)

    async def edit(self, message: discord.Message, text: str) -> bool:
        """Edit one follow-up message."""
        try:
            await message.edit(content=text, allowed_mentions=self.mentions)
        except discord.NotFound:
            return False
        return True

    async def delete(self, message: discord.Message) -> None:
        """Delete one follow-up message; already gone is fine."""
        with contextlib.suppress(discord.NotFound):
            await message.delete()


class ReplyWriter:
    """Shows a reply through an outlet, streamed by throttled edits or all at once.

    Args:
        outlet: Where the parts go.
        interval: Least seconds between two edits of one message.
        clock: Monotonic seconds (injected by tests).
        sleep: Waits that many seconds (injected by tests).
    """

    def __init__(self, outlet: Outlet, *, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.outlet = outlet
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self.posted: list[discord.Message] = []
        self.edits = 0
        self._shown: list[str] = []
        self._touched: list[float] = []
        self._gone: set[int] = set()
        self._buffer = ""

    async def feed(self, delta: str) -> None:
        """Add streamed text; post or edit when an edit is due, else just keep it."""
        self._buffer += delta
        parts = split_message(neutralise(self._buffer))
        for i, part in enumerate(parts):
            if i >= len(self.posted):
                await self._post(part)
            elif part != self._shown[i] and self._due(i):
                await self._edit(i, part)

    async def finish(self, text: str) -> list[discord.Message]:
        """Show the final text: edit what was streamed (when due), post the rest.

        Returns:
            The messages that hold the reply, in order.
        """
        parts = split_message(neutralise(text))
        kept: list[discord.Message] = []
        for i, part in enumerate(parts):
            if i < len(self.posted) and i not in self._gone:
                if part != self._shown[i]:
                    wait = self._touched[i] + self.interval - self.clock()
                    if wait > 0:
                        await self.sleep(wait)
                    await self._edit(i, part)
                if i not in self._gone:
                    kept.append(self.posted[i])
                    continue
            kept.append(await self.outlet.post(part))
        for i in range(len(parts), len(self.posted)):
            if i not in self._gone:
                await self.outlet.delete(self.posted[i])
        self.posted = kept
        return kept

    def _due(self, i: int) -> bool:
        return i not in self._gone and self.clock() - self._touched[i] >= self.interval

    async def _post(self, part: str) -> None:
        self.posted.append(await self.outlet.post(part))
        self._shown.append(part)
        self._touched.append(self.clock())

    async def _edit(self, i: int, part: str) -> None:
        self.edits += 1
        if await self.outlet.edit(self.posted[i], part):
            self._shown[i] = part
            self._touched[i] = self.clock()
        else:
            log.info("a streamed message was deleted; posting the rest anew")
            self._gone.add(i)
