"""What a finished turn leaves behind: an episode, facts about the user, nothing twice.

`MemoryWriter.write_turn` stores, for one exchange:

- an **episode**: "Ann said: ... / Brenna replied: ...", compacted, with an
  importance from `importance_of`;
- **facts** about the user, extracted from the user's words only (never from
  the reply) by a `FactExtractor` (`RuleFactExtractor` unless another is given);
- nothing that is already there: a near-duplicate of a stored memory of the
  same kind (cosine similarity at or above `dedupe_threshold`, which includes
  exact copies) is skipped;
- nothing that came from the prompt: a sentence of the user's text or the
  reply that repeats a recalled memory or system text is left out, so memories
  do not echo themselves.

A fact that contradicts a stored one (same subject and attribute, a different
value, e.g. "Ann lives in York" after "Ann lives in Leeds") supersedes it with
`store.supersede`: the old fact stays, marked, and is no longer recalled by
default. Attributes a person has several of (`likes`, a granddaughter's name:
see `is_multi_valued`) add values instead; "likes tea" and "dislikes tea"
contradict each other.

To find facts again, each one carries its key in `MemoryRecord.source` as
``fact:<subject>:<attribute>:<value>`` (see `fact_source`). The subject is
``user`` for facts about the scope's own user, whatever name they go by.

The turn's caller uses `schedule` after the reply is sent, so the reply never
waits for memory; `drain` awaits what is pending (at shutdown, and in tests).

Example:
    ```python
    writer = MemoryWriter(store, persona_name="Brenna")
    writer.schedule(scope, user_text="My granddaughter is called Mia.", reply_text="Lovely name!",
                    speaker="Ann")
    ...
    await writer.drain()
    ```

"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

from personae.memory.facts import (
    USER_SUBJECT,
    Fact,
    FactExtractor,
    RuleFactExtractor,
    importance_of,
    is_multi_valued,
)
from personae.memory.records import MemoryRecord, NewMemory
from personae.scope import Scope

if TYPE_CHECKING:
    from personae.memory.store import MemoryStore

__all__ = ["MemoryWriter", "fact_source", "parse_fact_source"]

logger = logging.getLogger(__name__)

_FACT_PREFIX = "fact:"
_USER_ALIASES = frozenset({USER_SUBJECT, "the user", "i", "me", "myself"})
# Most characters kept of each side of an episode: enough for what was said,
# short enough that one long reply does not crowd out other memories.
_USER_CHARS = 600
_REPLY_CHARS = 300
_LIST_LIMIT = 5000
_ECHO_RATIO = 0.9
_ECHO_CONTAINED_WORDS = 5


def _slug(text: str) -> str:
    return re.sub(r"[\s:]+", "_", text.strip().casefold()) or "_"


def fact_source(subject: str, attribute: str, value: str) -> str:
    """Return the `source` a fact is stored with: ``fact:<subject>:<attribute>:<value>``.

    Args:
        subject: Subject key, e.g. ``user``; lowercased, colons and spaces become `_`.
        attribute: The fact's attribute, normalised the same way.
        value: The value, whitespace collapsed; it may contain colons.

    """
    return f"{_FACT_PREFIX}{_slug(subject)}:{_slug(attribute)}:{' '.join(value.split())}"


def parse_fact_source(source: str | None) -> tuple[str, str, str] | None:
    """Return `(subject, attribute, value)` from a fact's `source`, or None for other sources."""
    if not source or not source.startswith(_FACT_PREFIX):
        return None
    parts = source[len(_FACT_PREFIX) :].split(":", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def _same(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def _slot(attribute: str, value: str) -> str:
    # Likes and dislikes of one thing share a slot so each replaces the other.
    if attribute in ("likes", "dislikes"):
        return "preference:" + " ".join(value.casefold().split())
    if is_multi_valued(attribute):
        return f"{attribute}:" + " ".join(value.casefold().split())
    return attribute


_SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？]*")
_LABEL = re.compile(r"^[^:\n]{1,40}:\s+")


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


class _Echoes:
    """Sentences the turn was given (recalled memories, system text), to keep out of memory."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.sentences: set[str] = set()
        for text in texts:
            for line in text.splitlines():
                for sentence in (line, _LABEL.sub("", line)):
                    self.sentences.update(_normal(s) for s in _SENTENCE.findall(sentence))
        self.sentences.discard("")
        self.blob = " " + " ".join(_normal(text) for text in texts) + " "

    def __contains__(self, sentence: str) -> bool:
        norm = _normal(sentence)
        if not norm or norm in self.sentences:
            return bool(norm)
        if len(norm.split()) >= _ECHO_CONTAINED_WORDS and f" {norm} " in self.blob:
            return True
        return any(
            0.8 <= len(norm) / len(echo) <= 1.25
            and SequenceMatcher(None, norm, echo).ratio() >= _ECHO_RATIO
            for echo in self.sentences
        )

    def strip(self, text: str) -> str:
        if not self.sentences:
            return " ".join(text.split())
        kept = [s.strip() for s in _SENTENCE.findall(text) if s.strip() and s not in self]
        return " ".join(" ".join(kept).split())


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "), cut.rfind("。"))
    return (cut[: end + 1] if end > limit // 2 else cut.rsplit(" ", 1)[0]) + " …"


class MemoryWriter:
    """Write what a turn leaves behind: an episode, facts, no duplicates, no echoes.

    Args:
        store: Where memories go (a `MemoryStore`).
        extractor: Finds facts in the user's words; `RuleFactExtractor()` by default.
            Pass a `ModelFactExtractor` when a real model is configured.
        persona_name: The character's display name, used in episodes ("Brenna replied: ...").
        dedupe_threshold: Cosine similarity at or above which a new memory counts
            as a copy of a stored one of the same kind and is skipped.

    Example:
        ```python
        writer = MemoryWriter(MemoryStore(Path("memory")), persona_name="Brenna")
        records = await writer.write_turn(
            Scope(persona="brenna", user="ann"),
            user_text="I live in Leeds.", reply_text="A fine city.", speaker="Ann",
        )
        ```

    """

    def __init__(
        self,
        store: MemoryStore,
        *,
        persona_name: str,
        extractor: FactExtractor | None = None,
        dedupe_threshold: float = 0.92,
    ) -> None:
        self.store = store
        self.persona_name = persona_name
        self.extractor: FactExtractor = extractor or RuleFactExtractor()
        self.dedupe_threshold = dedupe_threshold
        self._tasks: set[asyncio.Task[list[MemoryRecord]]] = set()
        # One write at a time per scope, so two quick turns cannot both
        # supersede the same fact; locks vanish with the last writer holding one.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @property
    def pending(self) -> int:
        """Number of scheduled writes not finished yet."""
        return len(self._tasks)

    async def write_turn(
        self,
        scope: Scope,
        *,
        user_text: str,
        reply_text: str,
        speaker: str | None = None,
        turn_id: str | None = None,
        game_time: str | None = None,
        recalled: Sequence[str] = (),
        system_texts: Sequence[str] = (),
    ) -> list[MemoryRecord]:
        """Store the episode and the user's facts of one exchange; return what was added.

        Args:
            scope: Whose memory it is.
            user_text: What the user said.
            reply_text: What the character answered.
            speaker: The user's display name; "User" in episodes when None.
            turn_id: Id of the turn, stored on each memory.
            game_time: In-game time of the turn, stored on each memory.
            recalled: Texts of the memories recalled for this turn.
            system_texts: The system prompt and any other text the turn was given.

        Returns:
            The memories written; copies skipped are not in it.

        Raises:
            MemoryStoreError: When the store fails.

        """
        # The user's words are theirs even when they match a line of the prompt
        # ("I feel lonely." is also an example dialogue line): only echoes of
        # recalled memories are dropped from them. The reply also loses what
        # it repeats of the system text, so the prompt never becomes memory.
        said = _Echoes(recalled).strip(user_text)
        replied = _Echoes([*recalled, *system_texts]).strip(reply_text)
        facts = await self.extractor.aextract(said, speaker=speaker) if said else []
        lock = self._locks.get(scope.key())
        if lock is None:
            lock = self._locks[scope.key()] = asyncio.Lock()
        async with lock:
            written = await asyncio.to_thread(
                self._write, scope, said, replied, facts, speaker, turn_id, game_time
            )
        logger.debug("stored %d memories for turn %s", len(written), turn_id)
        return written

    def schedule(
        self,
        scope: Scope,
        *,
        user_text: str,
        reply_text: str,
        speaker: str | None = None,
        turn_id: str | None = None,
        game_time: str | None = None,
        recalled: Sequence[str] = (),
        system_texts: Sequence[str] = (),
    ) -> asyncio.Task[list[MemoryRecord]]:
        """Run `write_turn` in the background and return its task at once.

        The writer keeps a reference to the task until it ends. A failure is
        logged (error type, turn id and scope; never the user's text) and
        swallowed: the task then returns an empty list. Needs a running loop.
        Takes the same arguments as `write_turn`.
        """

        async def guarded() -> list[MemoryRecord]:
            try:
                return await self.write_turn(
                    scope, user_text=user_text, reply_text=reply_text, speaker=speaker,
                    turn_id=turn_id, game_time=game_time, recalled=recalled,
                    system_texts=system_texts,
                )
            except Exception as exc:
                logger.warning(
                    "memory write for turn %s in %s failed: %s",
                    turn_id, scope.key(), type(exc).__name__,
                )
                return []

        task = asyncio.get_running_loop().create_task(guarded(), name=f"memory-write:{turn_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until every scheduled write has finished (or `timeout` seconds have passed)."""
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while self._tasks:
            left = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if left is not None and left <= 0:
                return
            await asyncio.wait(set(self._tasks), timeout=left)

    def _episode_text(self, said: str, replied: str, speaker: str | None) -> str:
        lines = []
        if said:
            lines.append(f"{speaker or 'User'} said: {_shorten(said, _USER_CHARS)}")
        if replied:
            lines.append(f"{self.persona_name} replied: {_shorten(replied, _REPLY_CHARS)}")
        return "\n".join(lines)

    def _is_copy(self, scope: Scope, memory: NewMemory) -> bool:
        hits = self.store.dense(scope, memory.text, 3, shared=False)
        return any(
            record.kind == memory.kind and score >= self.dedupe_threshold for record, score in hits
        )

    def _write(
        self,
        scope: Scope,
        said: str,
        replied: str,
        facts: Sequence[Fact],
        speaker: str | None,
        turn_id: str | None,
        game_time: str | None,
    ) -> list[MemoryRecord]:
        written: list[MemoryRecord] = []
        common = {"speaker": speaker, "turn_id": turn_id, "game_time": game_time}
        if said or replied:
            importance = importance_of(said) if said else 1
            if replied:
                # The reply weighs less: a character's warm words are its style,
                # not news about the user.
                importance = max(importance, importance_of(replied) - 2)
            episode = NewMemory(text=self._episode_text(said, replied, speaker), kind="episode",
                                importance=importance, **common)
            if not self._is_copy(scope, episode):
                written.extend(self.store.add(scope, [episode]))
        if facts:
            known = self._known_facts(scope)
            for fact in facts:
                record = self._write_fact(scope, fact, speaker, known, common)
                if record is not None:
                    written.append(record)
        return written

    def _subject(self, subject: str, speaker: str | None) -> str:
        folded = subject.strip().casefold()
        if folded in _USER_ALIASES or (speaker and folded == speaker.strip().casefold()):
            return USER_SUBJECT
        return _slug(subject)

    def _known_facts(self, scope: Scope) -> dict[tuple[str, str], list[tuple[MemoryRecord, str]]]:
        known: dict[tuple[str, str], list[tuple[MemoryRecord, str]]] = {}
        for record in self.store.list(scope, kind="fact", include_superseded=False,
                                      limit=_LIST_LIMIT):
            parsed = parse_fact_source(record.source)
            if parsed is not None and record.superseded_by is None:
                subject, attribute, value = parsed
                known.setdefault((subject, _slot(attribute, value)), []).append(
                    (record, attribute + ":" + value)
                )
        return known

    def _write_fact(
        self,
        scope: Scope,
        fact: Fact,
        speaker: str | None,
        known: dict[tuple[str, str], list[tuple[MemoryRecord, str]]],
        common: dict[str, str | None],
    ) -> MemoryRecord | None:
        subject = self._subject(fact.subject, speaker)
        attribute = _slug(fact.attribute)
        key = (subject, _slot(attribute, fact.value))
        held = known.get(key, [])
        if any(_same(value, f"{attribute}:{fact.value}") for _, value in held):
            return None
        memory = NewMemory(text=fact.text, kind="fact", importance=fact.importance,
                           source=fact_source(subject, attribute, fact.value), **common)
        # A contradiction is decided by the key alone; similarity would call
        # "Ann is 81" and "Ann is 82" copies of each other.
        if not held and self._is_copy(scope, memory):
            return None
        [record] = self.store.add(scope, [memory])
        if record.superseded_by is not None:
            # The value came back ("Leeds", then "York", then "Leeds" again): the
            # store returned the old, superseded copy of this text. Replace it by
            # a fresh one, so the fact is current and dated now.
            self.store.delete(scope, record.id, purge=False)
            [record] = self.store.add(scope, [memory])
        for old, _ in held:
            if old.id != record.id:
                self.store.supersede(scope, old.id, record.id)
        known[key] = [(record, f"{attribute}:{fact.value}")]
        return record
