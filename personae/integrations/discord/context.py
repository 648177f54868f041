"""The conversation around a message, as text for the character, within a token budget.

A Discord message rarely stands alone: it replies to another, sits in a
thread, or follows a lively channel. `build_context` takes what the bot
fetched, as plain `ContextMessage`s, and keeps first the reply chain (the
message replied to, the one that replied to, ...), then the thread's
history, then the channel's recent messages, newest first within each, until
the token budget is spent. The kept messages are shown oldest first, each as
`author: text`, under a heading that says where they come from.

Without the message-content intent Discord sends empty text for messages
that neither mention the bot nor are direct messages. Such messages are left
out and the context says so in one line (`degraded`), so the character
knows it sees only part of the conversation.

Example:
    ```python
    chain = reply_chain(current, known)
    context = build_context(current, reply_chain=chain, channel=recent, budget=1500)
    turn = Turn(text=current.text, events=[context.text] if context.text else [])
    ```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from personae.tokens import TokenCounter, default_counter

__all__ = ["ContextMessage", "TurnContext", "build_context", "reply_chain"]

_HEADINGS: Final = {
    "channel": "Earlier in the channel:",
    "thread": "Earlier in this thread:",
    "reply_chain": "The message is a reply to:",
}
_DEGRADED_NOTE: Final = (
    "(Some earlier messages are not shown: the bot cannot read message text without the "
    "message-content intent.)"
)


@dataclass(frozen=True)
class ContextMessage:
    """One Discord message as the context sees it.

    Attributes:
        author: Display name of the author.
        text: The text; empty when unavailable (no message-content intent) or
            when the message holds only attachments.
        is_bot: Written by a bot (the character's own earlier replies too).
        id: The message id.
        reply_to: Id of the message it replies to, if any.
    """

    author: str
    text: str
    is_bot: bool
    id: int
    reply_to: int | None = None


@dataclass(frozen=True)
class TurnContext:
    """The context of one turn.

    Attributes:
        text: The rendered context; empty when there is nothing to show.
        messages: The messages kept, in the order shown.
        tokens: Tokens of `text`.
        dropped: Messages left out because the budget was spent.
        degraded: Some messages had no text because the bot lacks the
            message-content intent.
    """

    text: str
    messages: tuple[ContextMessage, ...]
    tokens: int
    dropped: int
    degraded: bool


def reply_chain(
    message: ContextMessage, known: Mapping[int, ContextMessage], *, limit: int = 10
) -> list[ContextMessage]:
    """Follow `reply_to` links from `message` through the messages at hand.

    Stops at a message not in `known`, after `limit` messages, or on a loop.

    Args:
        message: The message being answered.
        known: Messages by id (fetched history and referenced messages).
        limit: Most messages to follow.

    Returns:
        The chain, nearest first: the message replied to, then the one it replied to, ...
    """
    chain: list[ContextMessage] = []
    seen = {message.id}
    next_id = message.reply_to
    while next_id is not None and next_id not in seen and len(chain) < limit:
        found = known.get(next_id)
        if found is None:
            break
        chain.append(found)
        seen.add(found.id)
        next_id = found.reply_to
    return chain


def build_context(
    message: ContextMessage,
    *,
    reply_chain: Sequence[ContextMessage] = (),
    thread: Sequence[ContextMessage] = (),
    channel: Sequence[ContextMessage] = (),
    budget: int = 1500,
    counter: TokenCounter | None = None,
    content_available: bool = True,
) -> TurnContext:
    """Build the context of a turn: reply chain, then thread, then channel, within `budget`.

    The message itself is not part of the context (it is the turn's text), and
    a message seen in more than one source is shown once, in the first.

    Args:
        message: The message being answered.
        reply_chain: The chain it replies to, nearest first (`reply_chain()`).
        thread: The thread's recent messages, oldest first.
        channel: The channel's recent messages, oldest first.
        budget: Most tokens of the rendered context, headings and notes included.
        counter: Counts tokens; default `personae.tokens.default_counter()`.
        content_available: False when the bot lacks the message-content
            intent: messages without text are then reported as unreadable.

    Returns:
        The context, with what was kept and dropped.
    """
    counter = counter or default_counter()
    seen = {message.id}
    sections: dict[str, list[ContextMessage]] = {}
    missing = dropped = 0
    for name, newest_first in (
        ("reply_chain", list(reply_chain)), ("thread", thread[::-1]), ("channel", channel[::-1]),
    ):
        candidates = []
        for item in newest_first:
            if item.id in seen:
                continue
            seen.add(item.id)
            if item.text.strip():
                candidates.append(item)
            elif not content_available:
                missing += 1
        sections[name] = candidates
    degraded = missing > 0
    note = counter.count(_DEGRADED_NOTE) + 1
    show_note = degraded and note <= budget
    used = note if show_note else 0
    kept: dict[str, list[ContextMessage]] = {}
    for name, candidates in sections.items():
        if not candidates:
            continue
        cost = counter.count(_HEADINGS[name]) + 1
        taken: list[ContextMessage] = []
        for i, item in enumerate(candidates):
            line = counter.count(_line(item)) + 1
            if used + cost + line > budget and i == 0 and name == "reply_chain":
                # The message replied to is what the question is about: keep its start.
                item = _shorten(item, budget - used - cost - 1, counter)
                line = counter.count(_line(item)) + 1
            if used + cost + line > budget:
                # Keep each source contiguous: an older message without the ones
                # after it would read as if it came just before the question.
                dropped += len(candidates) - i
                break
            cost += line
            taken.append(item)
        if taken:
            used += cost
            kept[name] = taken
        # Once a source is cut short, older context from the next source would
        # skip the gap, so the remaining sources are dropped.
        if len(taken) < len(candidates):
            for later in list(sections)[list(sections).index(name) + 1 :]:
                dropped += len(sections[later])
            break
    blocks: list[str] = []
    shown: list[ContextMessage] = []
    for name in ("channel", "thread", "reply_chain"):  # the widest first, the nearest last
        if name in kept:
            oldest_first = kept[name][::-1]
            shown.extend(oldest_first)
            blocks.append("\n".join([_HEADINGS[name], *(_line(m) for m in oldest_first)]))
    if show_note:
        blocks.insert(0, _DEGRADED_NOTE)
    text = "\n".join(blocks)
    return TurnContext(text, tuple(shown), counter.count(text) if text else 0, dropped, degraded)


def _line(message: ContextMessage) -> str:
    author = f"{message.author} (bot)" if message.is_bot else message.author
    return f"{author}: {' '.join(message.text.split())}"


def _shorten(message: ContextMessage, tokens: int, counter: TokenCounter) -> ContextMessage:
    """Return `message` with its text cut at a word so that its line fits in `tokens`."""
    words = message.text.split()
    low, high = 0, len(words)  # the most words whose line fits lies in [low, high]
    while low < high:
        mid = (low + high + 1) // 2
        if counter.count(_line(replace(message, text=" ".join(words[:mid]) + " …"))) <= tokens:
            low = mid
        else:
            high = mid - 1
    if low == 0:
        return message  # not even one word fits: leave it whole, to be dropped
    return replace(message, text=" ".join(words[:low]) + " …")
