"""Character Card macros in persona text: `{{char}}`, `{{user}}`, `{{original}}`.

Cards written for SillyTavern and similar front ends say `{{char}}` (or
`<BOT>`) for the character's name and `{{user}}` (or `<USER>`) for the
person talking to it; `{{original}}` in a card's system prompt stands for the
front end's own prompt. personae keeps these macros as written, so a card
exported again is unchanged, and expands them whenever text is used: in the
compiled prompt and in the offline model's lines. Matching is
case-insensitive (`{{Char}}`, `<bot>`). Other macros are left alone.

Example:
    ```python
    from personae.personas.macros import expand

    expand("Hello {{user}}, I am <BOT>.", char="Mira", user="Ann")
    # "Hello Ann, I am Mira."
    ```

"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["DEFAULT_USER", "MACRO_RE", "expand", "has_macros"]

DEFAULT_USER: Final = "User"
"""What `{{user}}` becomes when the speaker's name is not known."""

MACRO_RE: Final = re.compile(r"\{\{\s*(char|user|original)\s*\}\}|<(BOT|USER)>", re.IGNORECASE)
"""The macros personae understands, in either spelling."""


def has_macros(text: str) -> bool:
    """Return True when `text` contains a macro personae expands."""
    return MACRO_RE.search(text) is not None


def expand(text: str, *, char: str, user: str | None = None, original: str = "") -> str:
    """Replace the card macros in `text`.

    Args:
        text: Text that may contain macros.
        char: The character's name (`{{char}}`, `<BOT>`).
        user: The speaker's name (`{{user}}`, `<USER>`); `DEFAULT_USER` when None.
        original: What `{{original}}` stands for (personae's own instruction line).

    Returns:
        `text` with the macros replaced; unchanged when it has none.

    """
    if "{" not in text and "<" not in text:
        return text
    values = {"char": char, "bot": char, "user": user or DEFAULT_USER, "original": original}

    def replace(match: re.Match[str]) -> str:
        return values[(match.group(1) or match.group(2)).lower()]

    return MACRO_RE.sub(replace, text)
