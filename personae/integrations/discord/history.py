"""Reading the conversation around a message from Discord, for its context.

`gather_context` follows the reply chain through message references
(`referenced_message` when the gateway sent it, else a fetch), reads the
thread's or channel's recent messages, and hands them to `build_context`,
which keeps what fits the token budget. A message or history the bot may
not read (deleted, no Read Message History) is skipped, never an error.
"""

from __future__ import annotations

import logging
from collections.abc import Container

import discord

from personae.integrations.discord.context import (
    ContextMessage,
    TurnContext,
    build_context,
    reply_chain,
)

__all__ = ["as_context_message", "gather_context"]

log = logging.getLogger(__name__)

_CHAIN_LIMIT = 10


def as_context_message(message: discord.Message, *, me_id: int,
                       own_webhooks: Container[int] = ()) -> ContextMessage:
    """Return a message as the context sees it: author's name, readable text, reply link."""
    author = message.author
    name = getattr(author, "display_name", None) or author.name
    text = message.clean_content
    if not text and message.attachments:
        text = " ".join(f"[attachment: {a.filename}]" for a in message.attachments)
    mine = author.id == me_id or (message.webhook_id is not None
                                  and message.webhook_id in own_webhooks)
    reference = message.reference
    return ContextMessage(
        author=name,
        text=text,
        is_bot=mine or author.bot or message.webhook_id is not None,
        id=message.id,
        reply_to=reference.message_id if reference is not None else None,
    )


async def _chain(message: discord.Message, me_id: int, own_webhooks: Container[int],
                 ) -> dict[int, ContextMessage]:
    """Fetch the messages `message` replies to, up the chain, as far as readable."""
    known: dict[int, ContextMessage] = {}
    current = message
    for _ in range(_CHAIN_LIMIT):
        reference = current.reference
        if reference is None or reference.message_id is None:
            break
        parent = reference.resolved if isinstance(reference.resolved, discord.Message) else None
        if parent is None and reference.cached_message is not None:
            parent = reference.cached_message
        if parent is None:
            if reference.channel_id != current.channel.id:
                break
            try:
                parent = await current.channel.fetch_message(reference.message_id)
            except (discord.NotFound, discord.Forbidden):
                break
        known[parent.id] = as_context_message(parent, me_id=me_id, own_webhooks=own_webhooks)
        current = parent
    return known


async def _recent(channel: discord.abc.Messageable, before: discord.Message, limit: int,
                  me_id: int, own_webhooks: Container[int]) -> list[ContextMessage]:
    """Return up to `limit` messages before `before`, oldest first."""
    if limit <= 0:
        return []
    try:
        found = [m async for m in channel.history(limit=limit, before=before)]
    except discord.Forbidden:
        log.info("no permission to read the history of channel %s", getattr(channel, "id", None))
        return []
    return [as_context_message(m, me_id=me_id, own_webhooks=own_webhooks)
            for m in reversed(found)]


async def gather_context(
    message: discord.Message,
    *,
    me_id: int,
    own_webhooks: Container[int],
    messages: int,
    budget: int,
    content_available: bool,
) -> TurnContext:
    """Return the context of `message`: reply chain, then its thread or channel, within budget.

    Args:
        message: The message being answered.
        me_id: The bot's user id.
        own_webhooks: Ids of the bot's webhooks (their messages are the bot's).
        messages: Recent messages to read from the thread or channel.
        budget: Token budget of the context.
        content_available: Whether the bot can read message text.
    """
    current = as_context_message(message, me_id=me_id, own_webhooks=own_webhooks)
    if budget <= 0:
        return build_context(current, budget=0, content_available=content_available)
    known = await _chain(message, me_id, own_webhooks)
    chain = reply_chain(current, known, limit=_CHAIN_LIMIT)
    recent = await _recent(message.channel, message, messages, me_id, own_webhooks)
    in_thread = isinstance(message.channel, discord.Thread)
    return build_context(
        current,
        reply_chain=chain,
        thread=recent if in_thread else (),
        channel=() if in_thread else recent,
        budget=budget,
        content_available=content_available,
    )
