"""A card's `mes_example` text to example exchanges, and back.

Cards write example dialogue as one text: blocks opened by `<START>`, each a
run of lines with a speaker prefix, `{{user}}:` / `<USER>:` for the other
person and `{{char}}:` / `<BOT>:` / the character's own name (full, first
name or nickname) for the character (case-insensitive). A line without a prefix continues the turn
above it. Each user turn followed by a character turn makes one example;
consecutive turns of one speaker are joined. Macros inside the text stay as
written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ParsedExamples", "parse_examples", "render_examples"]

_START = re.compile(r"^\s*<start>\s*$", re.IGNORECASE)
_USER = r"\{\{\s*user\s*\}\}|<user>"
_CHAR = r"\{\{\s*char\s*\}\}|<bot>"


@dataclass(frozen=True)
class ParsedExamples:
    """What `parse_examples` found.

    Attributes:
        pairs: `(user, reply)` exchanges, in order.
        unpaired: Turns that made no exchange (a reply with no user line
            before it, a user line with no reply, text before any prefix).
    """

    pairs: list[tuple[str, str]]
    unpaired: int


def _speaker_re(names: Sequence[str]) -> re.Pattern[str]:
    own = [re.escape(n.strip()) for n in sorted(names, key=len, reverse=True) if n.strip()]
    char = "|".join([_CHAR, *own])
    return re.compile(rf"^\s*(?:(?P<user>{_USER})|(?P<char>{char}))\s*:[ \t]?", re.IGNORECASE)


def parse_examples(text: str, names: Sequence[str]) -> ParsedExamples:
    """Parse `mes_example` text into exchanges.

    Args:
        text: The card's `mes_example`.
        names: The character's names (name, nickname, first name), accepted as
            speaker prefixes.

    Returns:
        The exchanges, and how many turns could not be paired.
    """
    speaker = _speaker_re(names)
    blocks: list[list[tuple[str, list[str]]]] = [[]]
    stray = 0
    for line in text.replace("\r\n", "\n").split("\n"):
        if _START.match(line):
            blocks.append([])
            continue
        match = speaker.match(line)
        turns = blocks[-1]
        if match:
            who = "user" if match.group("user") else "char"
            turns.append((who, [line[match.end() :]]))
        elif turns:
            turns[-1][1].append(line)
        elif line.strip():
            stray += 1
    pairs: list[tuple[str, str]] = []
    for turns in blocks:
        merged: list[tuple[str, str]] = []
        for who, lines in turns:
            said = "\n".join(lines).strip()
            if not said:
                continue
            if merged and merged[-1][0] == who:
                merged[-1] = (who, merged[-1][1] + "\n" + said)
            else:
                merged.append((who, said))
        i = 0
        while i < len(merged):
            if merged[i][0] == "user" and i + 1 < len(merged):
                pairs.append((merged[i][1], merged[i + 1][1]))
                i += 2
            else:
                stray += 1
                i += 1
    return ParsedExamples(pairs, stray)


def render_examples(pairs: Sequence[tuple[str, str]]) -> str:
    """Write exchanges as `mes_example` text, one `<START>` block each."""
    blocks = (f"<START>\n{{{{user}}}}: {user}\n{{{{char}}}}: {reply}" for user, reply in pairs)
    return "\n".join(blocks)
