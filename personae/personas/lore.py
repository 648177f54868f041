"""Lorebook activation: which lore entries the conversation brings up, and why.

`scan` decides, for every entry of a lorebook, whether it goes into the
prompt, and records why or why not. The rules, in the order they apply:

Eligibility
    - `enabled: false`: the entry never activates.
    - `sticky`: an entry that activated stays active for `sticky` more
      messages, whatever is said (no keys, no probability roll, no delay).
    - `cooldown`: once an entry is no longer active (after its sticky
      messages, if any), it cannot activate for `cooldown` messages.
    - `delay`: the entry cannot activate before the conversation has `delay`
      messages.

    Timed effects are counted in messages (the user's and the character's
    alike) and carried from one scan to the next in a `LoreState`. Timers
    start when an entry goes into the prompt (not when a roll, its group or
    the budget keeps it out), and a sticky entry is not extended while it
    holds.

Keys
    - `constant: true`: active without keys.
    - Otherwise one of the primary `keys` must occur in the scanned text.
    - `secondary_keys` are checked only once a primary key matched, combined
      by `logic`: `and_any` (one of them must occur too), `and_all` (all of
      them), `not_any` (none may occur), `not_all` (not all may occur).
    - Plain keys match case-insensitively unless `case_sensitive` (the
      entry's, else the lorebook's) is true, and as whole words unless
      `whole_words` (the entry's, else the lorebook's) is false: `ale`
      matches "Ale, please!" but not "sale". Runs of spaces in a key match any
      whitespace. Keys containing CJK characters always match inside text,
      since those scripts do not put spaces between words: `麦酒` matches
      "我想喝麦酒了".
    - A key written `/pattern/flags` is a regular expression (Python syntax).
      Flags: `i` ignore case, `m` multiline, `s` dot matches newlines, `x`
      verbose, `u` unicode (always on); `g` is accepted and means nothing
      here. Its own flags decide its case; `whole_words` does not apply.
    - `regex: true` makes every key of the entry a regular expression; keys
      without slashes then follow the entry's (else the lorebook's) case
      setting.
    - A pattern that does not compile matches nothing; the trace names it
      and the error.

Scan depth
    Keys are looked for in the last `scan_depth` messages (the entry's, else
    the lorebook's; 0 scans no message). Messages are numbered from the
    start of the conversation, so "message 7" is the seventh message said.

Recursion
    When `lorebook.recursive_scanning` is on, the content of active entries
    is scanned too, in rounds, up to `lorebook.max_recursion` rounds: round 1
    looks for keys of entries still inactive in the content of the entries
    active so far (besides their messages), round 2 also in the content of
    those round 1 brought, and so on until a round brings nothing new.
    `exclude_recursion` entries activate only from messages;
    `prevent_recursion` entries' content is never scanned;
    `delay_until_recursion` entries activate only from other entries'
    content, never from messages directly.

Probability
    A matched entry with `probability` below 100 is used only when a roll of
    0-99 falls below it. The roll is seeded with the scan's `seed`, the
    entry's index and the message count, so the same conversation gives the
    same rolls. Sticky entries do not roll again.

Inclusion groups
    Of the entries activated in one round that share a `group` (several
    groups are separated by commas) only one is used: an entry still sticky
    wins first, then a `group_override` entry (the highest `order`, then the
    first in the file), else one drawn at random by `group_weight` (seeded as
    above). An entry of a group that already has an active member from an
    earlier round loses to that member.

Token budget
    When `lorebook.token_budget` is set, entries are left out until the
    content of the active ones fits, counted by the scan's token counter:
    keyed entries before constant ones, lowest `priority` first, later in
    the prompt before earlier. Entries that a left-out entry's content
    brought in by recursion stay.

Order and position
    Active entries come back in prompt order: lowest `order` first, then
    constant entries, then highest `priority`, then file order. `position`
    says where the prompt compiler puts each: `before_char` before the
    character's description, `after_char` (the default) after it.

Trace
    Every entry gets a `Decision` in file order: active or not, and why,
    e.g. "key 'ale' in message 3", "key 'dragon' in entry 'Mount Ash'
    content (recursion round 1)", "key 'ale' in message 3, but secondary
    keys (and_all) failed: 'stout' not found", "cooldown: active at message
    3, cannot activate until after message 9", "key 'omen' in message 5,
    but probability roll 73 >= 50", "inclusion group 'drinks' lost to
    'ale'", "token budget: ...", "invalid regex '/(/': ...".
    `LoreScan.explain()` prints it. An entry's label is its `name`, else its
    first key, else `lore[i]` (its index in the lorebook).

Example:
    ```python
    from personae.personas.lore import scan
    from personae.personas.model import LoreEntry

    ale = LoreEntry(keys=["ale"], content="The Lantern brews a dark ale.")
    found = scan([ale], ["Any ALE today?"])
    [a.reason for a in found.active]
    # ["key 'ale' in message 1"]
    print(found.explain())
    ```

"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from personae.personas.model import Lorebook, LoreEntry
from personae.tokens import TokenCounter, default_counter

__all__ = [
    "Activation",
    "Decision",
    "EntryTimer",
    "LoreScan",
    "LoreState",
    "activate",
    "entry_label",
    "scan",
]

_CJK_CLASS = (
    "\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0002ffff"
)
_CJK_RE = re.compile(f"[{_CJK_CLASS}]")
# A word character that is not CJK: CJK text has no spaces, so "我要ale" still
# has `ale` as a whole word.
_LATIN_WORD = f"[^\\W{_CJK_CLASS}]"

_REGEX_KEY = re.compile(r"^/(?P<body>.+)/(?P<flags>[A-Za-z]*)$", re.DOTALL)
_REGEX_FLAGS: Mapping[str, re.RegexFlag | int] = {
    "i": re.IGNORECASE,
    "m": re.MULTILINE,
    "s": re.DOTALL,
    "x": re.VERBOSE,
    "u": 0,  # str patterns are always unicode in Python
    "g": 0,  # JavaScript's "global" has no meaning for a yes/no search
}


def entry_label(entry: LoreEntry, index: int | None = None) -> str:
    """Return how traces name `entry`: its `name`, else its first key, else `lore[index]`.

    Args:
        entry: The lore entry.
        index: Its position in the lorebook, for entries with neither name nor keys.

    """
    if entry.name:
        return entry.name
    first = next((key.strip() for key in entry.keys if key.strip()), None)
    if first is not None:
        return first
    return f"lore[{'?' if index is None else index}]"


@dataclass(frozen=True)
class Activation:
    """A lore entry that goes into the prompt, with the reason it does.

    Attributes:
        entry: The activated entry.
        reason: Why it is active, e.g. `"key 'ale' in message 1"` or `"constant"`.
        index: Its position in the lorebook, when known.

    """

    entry: LoreEntry
    reason: str
    index: int | None = None

    @property
    def label(self) -> str:
        """How traces name the entry (see `entry_label`)."""
        return entry_label(self.entry, self.index)


@dataclass(frozen=True)
class Decision:
    """What a scan decided about one entry, and why.

    Attributes:
        label: The entry's label (`entry_label`).
        active: Whether it goes into the prompt.
        reason: Why it does, or why not.
        index: Its position in the lorebook.

    """

    label: str
    active: bool
    reason: str
    index: int


@dataclass(frozen=True)
class EntryTimer:
    """The timed effects of one entry, in message counts.

    Attributes:
        since: The message count at which the entry activated.
        sticky_until: It stays active up to and including this message count.
        cooldown_until: It cannot activate again up to and including this one.

    """

    since: int
    sticky_until: int | None = None
    cooldown_until: int | None = None

    def last(self) -> int:
        """Return the last message count this timer has any effect at."""
        return max(self.since, self.sticky_until or 0, self.cooldown_until or 0)


@dataclass(frozen=True)
class LoreState:
    """Timed lore state carried from one scan to the next (sticky, cooldown).

    JSON-ready through `as_dict` and `from_dict`, so it can be stored with a
    conversation. Timers are keyed by the entry's label and a digest of its
    keys and content: reordering entries keeps them, editing an entry resets
    its own.

    Attributes:
        message_count: The message count of the scan that produced it.
        timers: Live timers by entry key.

    """

    message_count: int = 0
    timers: Mapping[str, EntryTimer] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the state as JSON-ready data."""
        return {
            "message_count": self.message_count,
            "timers": {
                key: {
                    "since": t.since,
                    "sticky_until": t.sticky_until,
                    "cooldown_until": t.cooldown_until,
                }
                for key, t in sorted(self.timers.items())
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> LoreState:
        """Rebuild a state from `as_dict` data; None or empty data gives a fresh state."""
        if not data:
            return cls()
        timers = {
            str(key): EntryTimer(
                since=int(value["since"]),
                sticky_until=_optional_int(value.get("sticky_until")),
                cooldown_until=_optional_int(value.get("cooldown_until")),
            )
            for key, value in dict(data.get("timers") or {}).items()
        }
        return cls(message_count=int(data.get("message_count", 0)), timers=timers)


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


@dataclass(frozen=True)
class LoreScan:
    """The result of a scan: active entries, the decision on every entry, the new state.

    Attributes:
        active: Active entries in prompt order.
        trace: One decision per entry, in file order.
        state: Timed state to pass to the scan of the next message.
        message_count: The message count the scan ran at.
        rounds: Recursion rounds that ran.
        seed: The seed of probability rolls and group draws.
        notes: Remarks on the scan as a whole (e.g. a stale state ignored).

    """

    active: tuple[Activation, ...]
    trace: tuple[Decision, ...]
    state: LoreState
    message_count: int = 0
    rounds: int = 0
    seed: int | str = 0
    notes: tuple[str, ...] = ()

    def explain(self) -> str:
        """Return a readable report: every entry, active (+) or not (-), and why."""
        rounds = "1 recursion round" if self.rounds == 1 else f"{self.rounds} recursion rounds"
        lines = [
            f"Lore: {len(self.active)} of {len(self.trace)} entries active at message "
            f"{self.message_count} (seed {self.seed!r}, {rounds})."
        ]
        lines.extend(f"  note: {note}" for note in self.notes)
        lines.extend(f"  {'+' if d.active else '-'} {d.label}: {d.reason}" for d in self.trace)
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Return the scan as JSON-ready data (for `--json` and turn traces)."""
        return {
            "message_count": self.message_count,
            "rounds": self.rounds,
            "seed": self.seed,
            "notes": list(self.notes),
            "active": [a.label for a in self.active],
            "trace": [
                {"label": d.label, "index": d.index, "active": d.active, "reason": d.reason}
                for d in self.trace
            ],
            "state": self.state.as_dict(),
        }


# -- keys ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    text: str
    pattern: re.Pattern[str] | None
    error: str | None = None


def _regex(text: str, body: str, flags: int) -> _Key:
    try:
        return _Key(text, re.compile(body, flags))
    except re.error as exc:
        return _Key(text, None, str(exc))


@functools.lru_cache(maxsize=4096)
def _compile_key(text: str, regex: bool, case_sensitive: bool, whole_words: bool) -> _Key:
    ignore_case = 0 if case_sensitive else re.IGNORECASE
    written = _REGEX_KEY.match(text)
    if written is not None:
        flags = 0
        for flag in written["flags"]:
            if flag not in _REGEX_FLAGS:
                return _Key(text, None, f"unknown flag {flag!r} (use i, m, s, u or x)")
            flags |= _REGEX_FLAGS[flag]
        return _regex(text, written["body"], flags)
    if regex:
        return _regex(text, text, ignore_case)
    body = r"\s+".join(re.escape(word) for word in text.split())
    if _CJK_RE.search(text) or not whole_words:
        return _Key(text, re.compile(body, ignore_case))
    return _Key(text, re.compile(f"(?<!{_LATIN_WORD}){body}(?!{_LATIN_WORD})", ignore_case))


def _keys(entry: LoreEntry, keys: Sequence[str], book: Lorebook) -> list[_Key]:
    case = entry.case_sensitive if entry.case_sensitive is not None else book.case_sensitive
    whole = entry.whole_words if entry.whole_words is not None else book.whole_words
    return [_compile_key(k.strip(), entry.regex, case, whole) for k in keys if k.strip()]


@dataclass(frozen=True)
class _Source:
    name: str
    text: str


def _where(key: _Key, sources: Sequence[_Source]) -> _Source | None:
    if key.pattern is None:
        return None
    return next((s for s in sources if key.pattern.search(s.text)), None)


def _secondary(logic: str, keys: Sequence[_Key], sources: Sequence[_Source]) -> tuple[bool, str]:
    """Return whether the secondary keys pass `logic`, and a description either way."""
    found = [(key, _where(key, sources)) for key in keys]
    hits = [f"{key.text!r} in {source.name}" for key, source in found if source is not None]
    misses = [repr(key.text) for key, source in found if source is None]
    passed = {
        "and_any": bool(hits),
        "and_all": not misses,
        "not_any": not hits,
        "not_all": bool(misses),
    }[logic]
    if logic == "and_any":
        detail = hits[0] if passed else f"none of {', '.join(misses)} found"
    elif logic == "and_all":
        detail = "all found" if passed else f"{', '.join(misses)} not found"
    elif logic == "not_any":
        detail = "none found" if passed else ", ".join(hits)
    else:
        detail = f"{', '.join(misses)} not found" if passed else "all found"
    if passed:
        return True, f"secondary {logic}: {detail}"
    return False, f"secondary keys ({logic}) failed: {detail}"


# -- the scan -------------------------------------------------------------------

_Status = Literal["pending", "active", "out"]
_How = Literal["", "sticky", "constant", "keys"]


@dataclass
class _Slot:
    index: int
    entry: LoreEntry
    label: str
    timer_key: str
    primary: list[_Key]
    secondary: list[_Key]
    status: _Status = "pending"
    how: _How = ""
    round: int = 0
    reason: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, entry: LoreEntry, index: int, book: Lorebook) -> _Slot:
        label = entry_label(entry, index)
        return cls(
            index=index,
            entry=entry,
            label=label,
            timer_key=_timer_key(entry, label),
            primary=_keys(entry, entry.keys, book),
            secondary=_keys(entry, entry.secondary_keys, book),
        )

    def out(self, reason: str) -> None:
        self.status, self.reason = "out", [reason]

    def groups(self) -> list[str]:
        return [g.strip() for g in self.entry.group.split(",") if g.strip()]

    def errors(self) -> list[str]:
        return [
            f"invalid regex {key.text!r}: {key.error}"
            for key in (*self.primary, *self.secondary)
            if key.error is not None
        ]


def _timer_key(entry: LoreEntry, label: str) -> str:
    digest = hashlib.sha256(
        json.dumps([entry.keys, entry.content], ensure_ascii=False).encode("utf-8")
    ).hexdigest()[:10]
    return f"{label}#{digest}"


def _roll(seed: int | str, index: int, count: int) -> int:
    return random.Random(f"{seed}:{index}:{count}").randrange(100)


def _match(slot: _Slot, sources: Sequence[_Source], where: str) -> str | None:
    """Return the reason `slot` matches `sources`, or None (with `slot.reason` set)."""
    for key in slot.primary:
        source = _where(key, sources)
        if source is None:
            continue
        hit = f"key {key.text!r} in {source.name}"
        if not slot.secondary:
            return hit
        passed, detail = _secondary(slot.entry.logic, slot.secondary, sources)
        if passed:
            return f"{hit}; {detail}"
        slot.reason = [f"{hit}, but {detail}"]
        return None
    slot.reason = [f"no key matched in {where}"]
    return None


def _pick(members: Sequence[_Slot], rng: random.Random) -> tuple[_Slot, str]:
    sticky = [m for m in members if m.how == "sticky"]
    override = [m for m in members if m.entry.group_override]
    for chosen, why in ((sticky, "still sticky"), (override, "group_override")):
        if chosen:
            # Highest order wins; min() keeps the first in file order on ties.
            best = min(chosen, key=lambda m: (-m.entry.order, m.index))
            return best, f"{why}, order {best.entry.order}"
    weights = [m.entry.group_weight for m in members]
    winner = rng.choices(list(members), weights=weights)[0]
    return winner, f"drawn by weight {winner.entry.group_weight} of {sum(weights)}"


def _resolve_groups(
    new: Sequence[_Slot], earlier: Sequence[_Slot], seed: int | str, count: int
) -> None:
    for name in sorted({g for slot in new for g in slot.groups()}):
        members = [s for s in new if s.status == "active" and name in s.groups()]
        holder = next((s for s in earlier if s.status == "active" and name in s.groups()), None)
        if holder is not None:
            for member in members:
                member.out(f"inclusion group {name!r} lost to {holder.label!r}")
            continue
        if len(members) < 2:
            continue
        rng = random.Random(f"{seed}:group:{name}:{count}")
        winner, why = _pick(members, rng)
        for member in members:
            if member is not winner:
                member.out(f"inclusion group {name!r} lost to {winner.label!r}")
        winner.reason.append(f"won inclusion group {name!r} ({why})")


def _prompt_rank(slot: _Slot) -> tuple[int, bool, int, int]:
    e = slot.entry
    return (e.order, not e.constant, -e.priority, slot.index)


def _messages_name(sources: Sequence[_Source], depth: int) -> str:
    if depth == 0:
        return "no message (scan depth 0)"
    if not sources:
        return "no message (none said yet)"
    if len(sources) == 1:
        return sources[0].name
    return f"the last {len(sources)} messages"


@dataclass
class _Run:
    """One scan in progress: the steps `scan` takes, in order."""

    book: Lorebook
    count: int
    seed: int | str
    said: list[_Source]
    slots: list[_Slot]
    last_new: list[_Slot] = field(default_factory=list)

    def window(self, entry: LoreEntry) -> tuple[list[_Source], str]:
        """Return the messages within the entry's scan depth, and how to name them."""
        depth = entry.scan_depth if entry.scan_depth is not None else self.book.scan_depth
        window = self.said[max(0, len(self.said) - depth) :] if depth else []
        return window, _messages_name(window, depth)

    def admit(self, slot: _Slot, hit: str, round_: int) -> None:
        """Roll the entry's probability; mark it active (or out) accordingly."""
        chance = slot.entry.probability
        extra: list[str] = []
        if chance < 100:
            roll = _roll(self.seed, slot.index, self.count)
            if roll >= chance:
                slot.out(f"{hit}, but probability roll {roll} >= {chance}")
                return
            extra.append(f"probability roll {roll} < {chance}")
        slot.status, slot.round, slot.reason = "active", round_, [hit, *extra]
        self.last_new.append(slot)

    def first_round(self, prior: LoreState) -> None:
        """Eligibility (enabled, timers, delay), then constant entries and keys in messages."""
        count = self.count
        for slot in self.slots:
            entry = slot.entry
            timer = prior.timers.get(slot.timer_key)
            if not entry.enabled:
                slot.out("disabled")
            elif (
                timer is not None and timer.sticky_until is not None and count <= timer.sticky_until
            ):
                slot.status, slot.how = "active", "sticky"
                slot.reason = [
                    f"sticky: active since message {timer.since}, "
                    f"until message {timer.sticky_until}"
                ]
                self.last_new.append(slot)
            elif (
                timer is not None
                and timer.cooldown_until is not None
                and (count <= timer.cooldown_until)
            ):
                slot.out(
                    f"cooldown: active at message {timer.since}, "
                    f"cannot activate until after message {timer.cooldown_until}"
                )
            elif count < entry.delay:
                slot.out(f"delay: needs {entry.delay} messages, the conversation has {count}")
            elif entry.constant:
                slot.how = "constant"
                self.admit(slot, "constant", 0)
            elif not slot.primary:
                slot.out("no keys, and not constant")
            elif entry.delay_until_recursion:
                slot.reason = ["delay_until_recursion: activates only from other entries' content"]
            else:
                window, where = self.window(entry)
                hit = _match(slot, window, where)
                if hit is not None:
                    slot.how = "keys"
                    self.admit(slot, hit, 0)
        _resolve_groups(self.last_new, [], self.seed, count)

    def recurse(self) -> int:
        """Run recursion rounds while they bring new content; return how many ran."""
        rounds = 0
        if self.book.recursive_scanning:
            for round_ in range(1, self.book.max_recursion + 1):
                if not any(
                    s.status == "active" and not s.entry.prevent_recursion for s in self.last_new
                ):
                    break
                rounds = round_
                self.recursion_round(round_)
        for slot in self.slots:
            if slot.status == "pending" and slot.entry.delay_until_recursion and not rounds:
                slot.reason = [f"{slot.reason[0]}; no recursion round ran"]
        return rounds

    def recursion_round(self, round_: int) -> None:
        earlier = [s for s in self.slots if s.status == "active"]
        feeding = sorted(
            (s for s in earlier if not s.entry.prevent_recursion),
            key=lambda s: (s.round, s.index),
        )
        buffer = [_Source(f"entry {s.label!r} content", s.entry.content) for s in feeding]
        self.last_new = []
        for slot in self.slots:
            entry = slot.entry
            if slot.status != "pending" or entry.exclude_recursion:
                continue
            where = f"the content of {len(buffer)} active entries"
            window: list[_Source] = []
            if not entry.delay_until_recursion:
                window, messages = self.window(entry)
                where = f"{messages} or {where}" if window else where
            hit = _match(slot, [*window, *buffer], where)
            if hit is not None:
                slot.how = "keys"
                self.admit(slot, f"{hit} (recursion round {round_})", round_)
        _resolve_groups(self.last_new, earlier, self.seed, self.count)

    def fit_budget(self, counter: TokenCounter | None) -> list[_Slot]:
        """Leave entries out until the lorebook's token budget holds; return the rest in order."""
        chosen = sorted((s for s in self.slots if s.status == "active"), key=_prompt_rank)
        budget = self.book.token_budget
        if budget is None or not chosen:
            return chosen
        counter = counter if counter is not None else default_counter()
        tokens = {s.index: counter.count(s.entry.content) for s in chosen}
        total = needed = sum(tokens.values())
        position = {s.index: n for n, s in enumerate(chosen)}
        for slot in sorted(
            chosen, key=lambda s: (s.entry.constant, s.entry.priority, -position[s.index])
        ):
            if total <= budget:
                break
            total -= tokens[slot.index]
            slot.out(
                f"token budget: active entries need {needed} tokens, the lorebook allows "
                f"{budget}; left out at priority {slot.entry.priority}"
            )
        return [s for s in chosen if s.status == "active"]

    def timers(self, prior: LoreState, chosen: Sequence[_Slot]) -> dict[str, EntryTimer]:
        """Keep live timers of existing entries; start timers of entries that just activated."""
        live = {s.timer_key for s in self.slots}
        timers = {
            key: timer
            for key, timer in prior.timers.items()
            if key in live and timer.last() > self.count
        }
        for slot in chosen:
            entry = slot.entry
            if slot.how != "sticky" and (entry.sticky or entry.cooldown):
                timers[slot.timer_key] = EntryTimer(
                    since=self.count,
                    sticky_until=self.count + entry.sticky if entry.sticky else None,
                    cooldown_until=(
                        self.count + entry.sticky + entry.cooldown if entry.cooldown else None
                    ),
                )
        return timers


def scan(
    entries: Sequence[LoreEntry],
    messages: Sequence[str],
    *,
    lorebook: Lorebook | None = None,
    message_count: int | None = None,
    state: LoreState | None = None,
    seed: int | str = 0,
    counter: TokenCounter | None = None,
) -> LoreScan:
    """Decide which entries the conversation brings up; see the module docs for the rules.

    Args:
        entries: Lore entries in file order.
        messages: What was said, oldest first, the newest message last; only
            the last `scan_depth` of them are scanned for each entry.
        lorebook: Scan depth, token budget, matching defaults, recursion;
            default `Lorebook()`.
        message_count: How many messages the conversation has, the newest
            included; default `len(messages)`. Messages are numbered so that
            the last one is message `message_count`; sticky, cooldown and
            delay count in these numbers.
        state: The state the scan of the previous message returned; None
            starts fresh. A state from a later message count than this one
            (a conversation that was reset) is ignored.
        seed: Seeds probability rolls and group draws (with the entry and
            the message count), so a conversation replays the same way.
        counter: Counts tokens for `lorebook.token_budget`; default
            `personae.tokens.default_counter()`, loaded only when a budget is set.

    Returns:
        The active entries in prompt order, a decision on every entry and
        the state for the next scan.

    Raises:
        ValueError: `message_count` is smaller than the number of `messages`.

    """
    book = lorebook if lorebook is not None else Lorebook()
    count = len(messages) if message_count is None else message_count
    if count < len(messages):
        raise ValueError(
            f"message_count={count} is less than the {len(messages)} messages given; "
            "pass the length of the whole conversation, or leave it unset"
        )
    notes: list[str] = []
    prior = state if state is not None else LoreState()
    if prior.message_count > count:
        notes.append(
            f"timed state from message {prior.message_count} is later than message {count} "
            "(a new conversation); ignored"
        )
        prior = LoreState()
    first = count - len(messages) + 1
    run = _Run(
        book=book,
        count=count,
        seed=seed,
        said=[_Source(f"message {first + i}", text) for i, text in enumerate(messages)],
        slots=[_Slot.of(entry, index, book) for index, entry in enumerate(entries)],
    )
    run.first_round(prior)
    rounds = run.recurse()
    chosen = run.fit_budget(counter)
    trace = tuple(
        Decision(
            label=s.label,
            active=s.status == "active",
            reason="; ".join([*s.reason, *s.errors()]),
            index=s.index,
        )
        for s in run.slots
    )
    reasons = {d.index: d.reason for d in trace}
    return LoreScan(
        active=tuple(Activation(s.entry, reasons[s.index], s.index) for s in chosen),
        trace=trace,
        state=LoreState(message_count=count, timers=run.timers(prior, chosen)),
        message_count=count,
        rounds=rounds,
        seed=seed,
        notes=tuple(notes),
    )


def activate(
    entries: Sequence[LoreEntry], texts: Sequence[str], *, lorebook: Lorebook | None = None
) -> list[Activation]:
    """Return the entries that `texts` bring up, in prompt order, each with its reason.

    A thin wrapper over `scan` without timed state: every text is scanned
    (the lorebook's `scan_depth` is widened to `len(texts)` when no lorebook
    is given; entries' own `scan_depth` still applies).

    Args:
        entries: Lore entries in file order.
        texts: What was said, oldest first; "message 1" in a reason is `texts[0]`.
        lorebook: Matching defaults, recursion and budget; default: a default
            `Lorebook` that scans all of `texts`.

    Returns:
        The active entries in prompt order (see the module docs).

    """
    book = lorebook if lorebook is not None else Lorebook(scan_depth=min(len(texts), 1000))
    return list(scan(entries, texts, lorebook=book).active)
