"""Lorebook activation: which lore entries the conversation brings up, and why.

An entry is active when it is `constant` or when one of its `keys` occurs
in one of the given texts (usually the latest messages, oldest first):

- Latin-script keys match case-insensitively as whole words: `ale` matches
  "Ale, please!" but not "sale" or "ales". Runs of spaces in a key match any
  whitespace.
- Keys containing CJK characters match as substrings, since those scripts do
  not put spaces between words: `麦酒` matches "我想喝麦酒了".

Active entries come back in prompt order: constant entries first, then by
`priority` (highest first), then in file order. Each carries the reason it
is active, which `CompiledPrompt.explain()` shows.

Example:
    ```python
    from personae.personas.lore import activate
    from personae.personas.model import LoreEntry

    ale = LoreEntry(keys=["ale"], content="The Lantern brews a dark ale.")
    [a.reason for a in activate([ale], ["Any ALE today?"])]
    # ["key 'ale' in message 1"]
    ```

"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from personae.personas.model import LoreEntry

__all__ = ["Activation", "activate"]

_CJK_CLASS = (
    "\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0002ffff"
)
_CJK_RE = re.compile(f"[{_CJK_CLASS}]")
# A word character that is not CJK: CJK text has no spaces, so "我要ale" still
# has `ale` as a whole word.
_LATIN_WORD = f"[^\\W{_CJK_CLASS}]"


@dataclass(frozen=True)
class Activation:
    """A lore entry that goes into the prompt, with the reason it does.

    Attributes:
        entry: The activated entry.
        reason: Why it is active, e.g. `"key 'ale' in message 1"` or `"constant"`.

    """

    entry: LoreEntry
    reason: str


@functools.lru_cache(maxsize=1024)
def _key_pattern(key: str) -> re.Pattern[str]:
    if _CJK_RE.search(key):
        return re.compile(re.escape(key), re.IGNORECASE)
    words = [re.escape(word) for word in key.split()]
    body = r"\s+".join(words)
    return re.compile(f"(?<!{_LATIN_WORD}){body}(?!{_LATIN_WORD})", re.IGNORECASE)


def _match(entry: LoreEntry, texts: Sequence[str]) -> str | None:
    for key in entry.keys:
        if not key.strip():
            continue
        pattern = _key_pattern(key.strip())
        for number, text in enumerate(texts, start=1):
            if pattern.search(text):
                return f"key {key.strip()!r} in message {number}"
    return None


def activate(entries: Sequence[LoreEntry], texts: Sequence[str]) -> list[Activation]:
    """Return the entries that `texts` bring up, in prompt order, each with its reason.

    Args:
        entries: Lore entries in file order.
        texts: What was said, oldest first; "message 1" in a reason is `texts[0]`.

    Returns:
        Constant entries first, then keyed matches; within each group by
        `priority` (highest first), then file order. The reason names the
        first of the entry's keys that matched and the first message it
        occurs in.

    """
    found: list[tuple[int, Activation]] = []
    for index, entry in enumerate(entries):
        reason = "constant" if entry.constant else _match(entry, texts)
        if reason is not None:
            found.append((index, Activation(entry=entry, reason=reason)))
    found.sort(key=lambda pair: (not pair[1].entry.constant, -pair[1].entry.priority, pair[0]))
    return [activation for _, activation in found]
