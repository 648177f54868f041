"""What the bot posts: pings made harmless, long replies split, webhook names cleaned.

`neutralise` breaks `@everyone`, `@here` and role mentions with a zero-width
joiner, so they show as text and never ping, even if `allowed_mentions` were
misconfigured. User mentions stay as written: the bot's `allowed_mentions`
lets only the asker be pinged.

`split_message` cuts a reply into messages of at most 2000 characters (the
Discord limit), at a paragraph, line or space rather than inside a word, and
closes a code block at the cut and reopens it, with the same language, in
the next message.

Example:
    ```python
    for part in split_message(neutralise(reply.text)):
        await channel.send(part)
    ```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["MESSAGE_LIMIT", "NAME_LIMIT", "neutralise", "sanitise_name", "split_message"]

MESSAGE_LIMIT: Final = 2000
"""Most characters in one Discord message."""
NAME_LIMIT: Final = 80
"""Most characters in a webhook's username."""

_ZWJ: Final = "\u200d"
_MASS_PING = re.compile(r"@(everyone|here)\b")
_ROLE_PING = re.compile(r"<@&(\d+)>")
_FENCE: Final = "```"
_CLOSE: Final = "\n```"
_LANG = re.compile(r"([A-Za-z0-9_+\-.#]+)\n")
# The smallest limit that leaves room for a reopened fence and some text.
_MIN_LIMIT: Final = 40


def neutralise(text: str) -> str:
    """Make `@everyone`, `@here` and role mentions harmless text.

    Args:
        text: What the bot is about to post.

    Returns:
        The text, with a zero-width joiner after each such `@`.
    """
    text = _MASS_PING.sub(lambda m: f"@{_ZWJ}{m.group(1)}", text)
    return _ROLE_PING.sub(lambda m: f"<@{_ZWJ}&{m.group(1)}>", text)


@dataclass(frozen=True)
class _Fence:
    """A code block open at some point of the text: its language (may be empty)."""

    lang: str


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split `text` into messages of at most `limit` characters each.

    Cuts at the last paragraph break, else line break, else space that fits
    (the break itself is dropped); cuts inside a word only when a word is
    longer than a whole message. A code block open at a cut is closed in
    that message and reopened with the same language in the next.

    Args:
        text: The text to post.
        limit: Most characters per message (at least 40).

    Returns:
        The messages in order; empty when `text` is blank.

    Raises:
        ValueError: `limit` is below 40.
    """
    if limit < _MIN_LIMIT:
        raise ValueError(f"limit={limit!r} is too small; use at least {_MIN_LIMIT}")
    parts: list[str] = []
    rest = text.strip("\n")
    fence: _Fence | None = None
    while rest.strip():
        head = _reopen(fence, limit)
        if len(head) + len(rest) <= limit:
            parts.append(head + rest)
            break
        body, rest, fence = _cut(rest, fence, limit - len(head))
        parts.append(head + body)
        rest = rest if fence is not None else rest.lstrip("\n")
    return [p for p in parts if p.strip()]


def _reopen(fence: _Fence | None, limit: int) -> str:
    """Return the line reopening `fence` atop a message; with the language only if it fits."""
    if fence is None:
        return ""
    head = f"{_FENCE}{fence.lang}\n"
    return head if len(head) <= limit // 4 else f"{_FENCE}\n"


def _cut(text: str, fence: _Fence | None, room: int) -> tuple[str, str, _Fence | None]:
    """Cut one message's body off `text`: (body with any closing fence, rest, fence open at cut)."""
    budget = room
    while True:
        at, skip = _break_at(text, budget)
        open_at_cut = _fence_after(text[:at], fence)
        if open_at_cut is None:
            return text[:at].rstrip(), text[at + skip :], None
        closer = "```" if text[:at].endswith("\n") else _CLOSE
        if at + len(closer) <= room:
            return text[:at] + closer, text[at + skip :], open_at_cut
        budget = room - len(_CLOSE)  # leave room for the closing fence and cut again


def _break_at(text: str, budget: int) -> tuple[int, int]:
    """Where to cut `text` within `budget` characters, and how many break characters to drop."""
    window = text[: budget + 1]  # a break just past the budget still ends the body in time
    half = budget // 2
    for sep in ("\n\n", "\n"):
        at = window.rfind(sep, 0, budget + 1)
        if at >= max(half, 1):
            return at, len(sep)
    at = max(window.rfind(" ", 0, budget + 1), window.rfind("\n", 0, budget + 1))
    if at >= 1:
        return at, 1
    return budget, 0  # one word longer than a message: no choice but to cut it


def _fence_after(text: str, fence: _Fence | None) -> _Fence | None:
    """Return the code block open at the end of `text`, given the one open at its start.

    As in Discord's markdown, every ```` ``` ```` opens or closes a block,
    wherever it stands; an opening one followed by a word and a line break
    names the language.
    """
    at = text.find(_FENCE)
    while at >= 0:
        if fence is not None:
            fence = None
        else:
            lang = _LANG.match(text, at + len(_FENCE))
            fence = _Fence(lang.group(1) if lang else "")
        at = text.find(_FENCE, at + len(_FENCE))
    return fence


_NAME_FORBIDDEN = re.compile(r"[@#:]|```")
_NAME_RESERVED = re.compile(r"discord|clyde", re.IGNORECASE)


def sanitise_name(name: str, *, fallback: str = "personae") -> str:
    """Make `name` acceptable to Discord as a webhook username.

    Discord refuses names with `@`, `#`, `:` or ```` ``` ````, names containing
    "discord" or "clyde" (any case), `everyone`, `here`, and names outside
    1-80 characters.

    Args:
        name: The persona's name.
        fallback: Used when nothing of `name` is left; cleaned the same way.

    Returns:
        A name Discord accepts.
    """
    cleaned = " ".join(_NAME_FORBIDDEN.sub("", name).split())
    while _NAME_RESERVED.search(cleaned):  # removing one may join the parts of another
        cleaned = _NAME_RESERVED.sub("", cleaned)
    cleaned = " ".join(cleaned.split())[:NAME_LIMIT].strip()
    if not cleaned or cleaned.lower() in {"everyone", "here"}:
        return "personae" if name == fallback else sanitise_name(fallback, fallback="personae")
    return cleaned
