"""The style prompt compiler: a persona (plus lore, world, memories) -> system prompt.

`compile_prompt` writes the system prompt from sections in a fixed order:

1. `identity`: "You are NAME, also called NICKNAME." (personae's opening line)
2. `lore_before`: active lore entries with `position: before_char`
3. `description`: who the character is
4. `instructions`: the author's instructions (a card's system prompt), with
   `{{original}}` standing for the opening line
5. `costar`: context, objective, style, tone, audience, response format
6. `speech`: the speech rules as instructions ("Answer in at most 3 sentences.")
7. `goals`
8. `safety`: topics to avoid, staying in character
9. `backstory`
10. `actions`: host actions, when to use them (the model gets them as tools)
11. `emotions`: the emotions the character may show
12. `examples`: example exchanges, as `User: ...` / `Name: ...`
13. `lore`: active lore entries with `position: after_char` (the default)
14. `world`: world state, keys sorted, and the time when `now` is given
15. `memories`: recalled memories, most relevant first
16. `summary`: summary of the conversation so far

Lore entries keep the order they are given in (`personae.personas.lore.scan`
returns them by `order`). Card macros (`{{char}}`, `{{user}}`, `<BOT>`,
`<USER>`) are expanded in every text of the persona that reaches the prompt:
description, instructions, style, goals, topics, backstory, action
descriptions, examples and lore; `{{char}}` is the persona's name and
`{{user}}` the `user` argument (`User` when unset). World state, memories
and the summary are not persona text and are left as given. The persona's
`card` fields (creator notes and the like) never reach the prompt.

The output is deterministic: the same inputs give the same string byte for
byte. Nothing depends on the clock, on dict insertion order or on chance.

Token budget and drop order:
    The prompt must fit in `budget` tokens (default:
    `persona.model.prompt_tokens`), counted by `counter` (default: the
    offline WordPiece counter). When it does not fit, whole items are cut in
    this order (`DROP_ORDER`) until it does:

    1. `examples`, from the last
    2. `lore` (after the character), keyed before constant, lowest priority
       first, later before earlier
    3. `lore_before` (before the character), in the same order: such
       entries usually set the scene the description relies on
    4. `memories`, least relevant (last given) first
    5. `summary`, oldest sentences first (cut at sentence boundaries)
    6. `backstory`
    7. `world`, last key first; the time goes last
    8. `actions`, from the last
    9. `emotions`
    10. `goals`, from the last
    11. `costar`, from response format back to context
    12. `instructions`, last of all: the author wrote them for this character

    `identity`, `description`, `speech` and `safety` are never dropped
    (`NEVER_DROPPED`). If they alone exceed the budget they are kept anyway
    and the result has `over_budget=True`.

Example:
    ```python
    from personae.personas.model import Persona
    from personae.personas.prompt import compile_prompt

    mira = Persona(id="mira", name="Mira", description="Keeper of the Lantern inn.")
    compiled = compile_prompt(mira, memories=["Ann likes dark ale."], budget=500, user="Ann")
    print(compiled.text)
    print(compiled.explain())
    ```

"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from personae.personas.lore import Activation, LoreScan, entry_label
from personae.personas.macros import expand
from personae.personas.model import Persona
from personae.tokens import TokenCounter, default_counter

__all__ = [
    "DROP_ORDER",
    "NEVER_DROPPED",
    "SECTION_ORDER",
    "CompiledPrompt",
    "DropStep",
    "DroppedItem",
    "Section",
    "compile_prompt",
]


class DropStep(NamedTuple):
    """One step of the drop order: which section loses items, and in which order."""

    section: str
    order: str


SECTION_ORDER: tuple[str, ...] = (
    "identity", "lore_before", "description", "instructions", "costar", "speech", "goals",
    "safety", "backstory", "actions", "emotions", "examples", "lore", "world", "memories",
    "summary",
)  # fmt: skip
"""Sections in the order they appear in the prompt."""

DROP_ORDER: tuple[DropStep, ...] = (
    DropStep("examples", "from the last"),
    DropStep("lore", "lowest priority first"),
    DropStep("lore_before", "lowest priority first"),
    DropStep("memories", "least relevant (last given) first"),
    DropStep("summary", "oldest sentences first"),
    DropStep("backstory", "whole"),
    DropStep("world", "last key first, the time last"),
    DropStep("actions", "from the last"),
    DropStep("emotions", "whole"),
    DropStep("goals", "from the last"),
    DropStep("costar", "from response format back to context"),
    DropStep("instructions", "whole"),
)
"""Order in which sections lose items when the prompt exceeds its budget."""

NEVER_DROPPED: tuple[str, ...] = ("identity", "description", "speech", "safety")
"""Sections kept whatever the budget."""

_PREVIEW_CHARS = 60

# Latin sentence ends need following whitespace (so "3.5" is not cut);
# CJK full stops end a sentence on their own.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*\s+|[。！？]+[”’」』）]*\s*")

_LANGUAGES = {
    "ar": "Arabic", "bn": "Bengali", "ca": "Catalan", "cs": "Czech", "da": "Danish",
    "de": "German", "el": "Greek", "en": "English", "es": "Spanish", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "ms": "Malay",
    "nb": "Norwegian", "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sv": "Swedish", "th": "Thai", "tr": "Turkish",
    "uk": "Ukrainian", "vi": "Vietnamese", "yue": "Cantonese", "zh": "Chinese",
    "zh-hans": "Simplified Chinese", "zh-hant": "Traditional Chinese",
    "zh-cn": "Simplified Chinese", "zh-tw": "Traditional Chinese",
    "zh-hk": "Traditional Chinese", "pt-br": "Brazilian Portuguese",
}  # fmt: skip


@dataclass(frozen=True)
class Section:
    """What one section of a compiled prompt holds.

    Attributes:
        name: Section name, one of `SECTION_ORDER`.
        tokens: Tokens of the section as it appears in the prompt (0 if absent).
        items_kept: The items in the prompt, each with why it is there.
        items_dropped: The items cut, each with why.
        reason: Where the section comes from and whether it can be dropped.

    """

    name: str
    tokens: int
    items_kept: tuple[str, ...]
    items_dropped: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class DroppedItem:
    """An item cut to fit the budget.

    Attributes:
        section: The section it belonged to.
        item: Its label, e.g. `examples[7]` or `lore 'ale'`.
        preview: The start of its text.
        reason: Why it was cut, e.g. `budget 600 tokens, drop order step 1`.

    """

    section: str
    item: str
    preview: str
    reason: str


@dataclass(frozen=True)
class CompiledPrompt:
    """A system prompt and the record of how it was built.

    Attributes:
        text: The system prompt.
        tokens: Its length in tokens, by the counter used to compile it.
        budget: The token budget it was compiled for.
        sections: Every section in prompt order, present or not.
        dropped: Items cut to fit the budget, in the order they were cut.
        over_budget: True when even the never-dropped sections exceed the budget.
        lore_scan: The lore scan the prompt was compiled with, when given as one:
            why every entry is active or not.

    """

    text: str
    tokens: int
    budget: int
    sections: tuple[Section, ...]
    dropped: tuple[DroppedItem, ...]
    over_budget: bool
    lore_scan: LoreScan | None = None

    def explain(self) -> str:
        """Return a readable report: each section, its tokens, what was kept or cut and why.

        Ends with the lore trace (every entry, active or not, and why) when
        the prompt was compiled from a `LoreScan`.
        """
        verdict = (
            "OVER BUDGET: the never-dropped sections alone do not fit"
            if (self.over_budget)
            else "fits"
        )
        lines = [f"System prompt: {self.tokens} of {self.budget} tokens ({verdict})."]
        steps = ", ".join(f"{n}) {s.section} {s.order}" for n, s in enumerate(DROP_ORDER, 1))
        lines.append(f"Drop order: {steps}; never dropped: {', '.join(NEVER_DROPPED)}.")
        for section in self.sections:
            lines.append(f"{section.name}: {section.tokens} tokens - {section.reason}")
            lines.extend(f"  + {item}" for item in section.items_kept)
            lines.extend(f"  - {item}" for item in section.items_dropped)
        if self.lore_scan is not None:
            lines.append(self.lore_scan.explain())
        return "\n".join(lines)

    def as_dict(self, *, full: bool = True) -> dict[str, object]:
        """Return the prompt and its record as JSON-ready data (for `--json`).

        Args:
            full: Include the prompt text; False gives only the record, for traces.

        Returns:
            The record; with a `lore` key (`LoreScan.as_dict()`) when the
            prompt was compiled from a `LoreScan`.

        """
        data: dict[str, object] = {"text": self.text} if full else {}
        record = data | {
            "tokens": self.tokens,
            "budget": self.budget,
            "over_budget": self.over_budget,
            "drop_order": [step.section for step in DROP_ORDER],
            "sections": [
                {
                    "name": s.name,
                    "tokens": s.tokens,
                    "reason": s.reason,
                    "items_kept": list(s.items_kept),
                    "items_dropped": list(s.items_dropped),
                }
                for s in self.sections
            ],
            "dropped": [
                {"section": d.section, "item": d.item, "preview": d.preview, "reason": d.reason}
                for d in self.dropped
            ],
        }
        if self.lore_scan is not None:
            record["lore"] = self.lore_scan.as_dict()
        return record


@dataclass
class _Item:
    label: str
    text: str
    why: str
    tokens: int = 0
    kept: bool = True
    dropped_why: str = ""


@dataclass
class _Part:
    name: str
    header: str
    reason: str
    items: list[_Item]
    joiner: str = "\n"
    # Indices of `items` in the order they are cut; None: from the last.
    order: list[int] | None = None
    header_tokens: int = 0

    def cut_order(self) -> list[int]:
        if self.name in NEVER_DROPPED:
            return []
        return self.order if self.order is not None else list(range(len(self.items)))[::-1]

    def present(self) -> bool:
        return any(item.kept for item in self.items)

    def render(self) -> str:
        body = self.joiner.join(item.text for item in self.items if item.kept).strip()
        return f"{self.header}\n{body}" if self.header else body


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW_CHARS else flat[: _PREVIEW_CHARS - 1] + "…"


def _opening_line(persona: Persona) -> str:
    also = f", also called {persona.nickname}" if persona.nickname else ""
    return f"You are {persona.name}{also}."


def _with_macros(persona: Persona, user: str | None) -> Persona:
    """Return a copy of `persona` whose prompt texts have their card macros expanded."""

    def say(text: str) -> str:
        return expand(text, char=persona.name, user=user, original=_opening_line(persona))

    style = persona.style.model_copy(
        update={attr: say(getattr(persona.style, attr)) for attr, _ in _COSTAR_FIELDS}
    )
    return persona.model_copy(
        update={
            "description": say(persona.description),
            "instructions": say(persona.instructions),
            "backstory": say(persona.backstory),
            "style": style,
            "goals": [say(goal) for goal in persona.goals],
            "safety": persona.safety.model_copy(
                update={"avoid_topics": [say(t) for t in persona.safety.avoid_topics]}
            ),
            "actions": [
                a.model_copy(update={"description": say(a.description)}) for a in persona.actions
            ],
            "examples": [
                e.model_copy(update={"user": say(e.user), "reply": say(e.reply)})
                for e in persona.examples
            ],
        }
    )


def _identity(persona: Persona) -> _Part:
    items = [_Item("name", _opening_line(persona), persona.name)]
    return _Part("identity", "", "never dropped: who the character is", items)


def _description(persona: Persona) -> _Part:
    items = []
    if persona.description:
        items.append(_Item("description", persona.description, _preview(persona.description)))
    return _Part("description", "", "never dropped: persona.description", items)


def _instructions(persona: Persona) -> _Part:
    items = []
    if persona.instructions:
        text = persona.instructions
        items.append(_Item("instructions", text, _preview(text)))
    return _Part("instructions", "## Instructions", "persona.instructions, dropped last", items)


_COSTAR_FIELDS = (
    ("context", "Context"), ("objective", "Objective"), ("style", "Style"),
    ("tone", "Tone"), ("audience", "Audience"), ("response_format", "Response format"),
)  # fmt: skip


def _costar(persona: Persona) -> _Part:
    items = []
    for attr, title in _COSTAR_FIELDS:
        value: str = getattr(persona.style, attr)
        if value:
            items.append(_Item(attr, f"{title}: {value}", _preview(value)))
    return _Part("costar", "## Your part", "persona.style (CO-STAR)", items)


def _language(tag: str) -> str:
    name = _LANGUAGES.get(tag.lower()) or _LANGUAGES.get(tag.split("-")[0].lower())
    return f"{name} ({tag})" if name else f"the language with BCP 47 tag {tag!r}"


def _speech(persona: Persona) -> _Part:
    rules = persona.speech
    items = []
    if rules.max_sentences is not None:
        unit = "sentence" if rules.max_sentences == 1 else "sentences"
        text = f"Answer in at most {rules.max_sentences} {unit}."
        items.append(_Item("max_sentences", text, text))
    if rules.max_words_per_sentence is not None:
        text = f"Use at most {rules.max_words_per_sentence} words in any sentence."
        items.append(_Item("max_words_per_sentence", text, text))
    if rules.plain_text:
        text = "No markdown, lists, emoji or stage directions: your words are read aloud."
        items.append(_Item("plain_text", text, text))
    text = f"Always answer in {_language(rules.language)}."
    items.append(_Item("language", text, text))
    reason = "never dropped: persona.speech as instructions"
    return _Part("speech", "## How you answer", reason, items)


def _goals(persona: Persona) -> _Part:
    items = [_Item(f"goals[{i}]", f"- {g}", _preview(g)) for i, g in enumerate(persona.goals)]
    return _Part("goals", "## Your goals", "persona.goals", items)


def _safety(persona: Persona, lines: Sequence[tuple[str, str]]) -> _Part:
    items = []
    if persona.safety.avoid_topics:
        topics = ", ".join(persona.safety.avoid_topics)
        items.append(_Item("avoid_topics", f"Steer away from these topics: {topics}.", topics))
    given = {label for label, _ in lines}
    if persona.safety.unknown and "unknown" not in given:
        terms = ", ".join(persona.safety.unknown)
        text = (
            f"You have never heard of: {terms}. If someone asks about them, you do not know "
            "what they are, and you never name them yourself."
        )
        items.append(_Item("unknown", text, terms))
    if "in_role" not in given:
        rule = (
            "Stay in character. Never say you are a language model or an AI unless someone "
            "sincerely asks; then answer honestly."
        )
        items.append(_Item("in_character", rule, "stay in character"))
    for label, text in lines:
        items.append(_Item(label, text, f"safety profile {persona.safety.profile}"))
    return _Part("safety", "## Boundaries", "never dropped: persona.safety", items)


def _backstory(persona: Persona) -> _Part:
    items = []
    if persona.backstory:
        items.append(_Item("backstory", persona.backstory, _preview(persona.backstory)))
    return _Part(
        "backstory", "## Your backstory (for colour; do not recite it)", "persona.backstory", items
    )


def _actions(persona: Persona) -> _Part:
    items = [
        _Item(f"action {a.name!r}", f"- {a.name}: {a.description}", _preview(a.description))
        for a in persona.actions
    ]
    header = "## Host actions\nCall the tool of the same name when the moment calls for it:"
    return _Part("actions", header, "persona.actions (the model gets them as tools)", items)


def _emotions(persona: Persona) -> _Part:
    items = []
    if persona.emotions:
        names = ", ".join(persona.emotions)
        items.append(_Item("emotions", f"You can show these emotions: {names}.", names))
    return _Part("emotions", "## Emotions", "persona.emotions", items)


def _examples(persona: Persona) -> _Part:
    items = [
        _Item(f"examples[{i}]", f"User: {e.user}\n{persona.name}: {e.reply}", _preview(e.user))
        for i, e in enumerate(persona.examples)
    ]
    header = "## Example exchanges\nThey show your voice; do not repeat them word for word."
    return _Part("examples", header, "persona.examples", items, joiner="\n\n")


def _lore_label(activation: Activation, position: int) -> str:
    entry = activation.entry
    index = activation.index if activation.index is not None else position
    label = entry_label(entry, index)
    return f"lore {label!r}" if entry.name or any(k.strip() for k in entry.keys) else label


def _lore(persona: Persona, lore: Sequence[Activation], user: str | None, *, before: bool) -> _Part:
    """Return the lore part for one position, entries in the order given."""
    placed = [(i, a) for i, a in enumerate(lore) if (a.entry.position == "before_char") == before]
    items = [
        _Item(
            _lore_label(activation, i),
            f"- {expand(activation.entry.content, char=persona.name, user=user)}",
            activation.reason,
        )
        for i, activation in placed
    ]
    # Keep constant entries longest, then high priority, then what came first.
    keep_rank = sorted(
        range(len(placed)),
        key=lambda n: (not placed[n][1].entry.constant, -placed[n][1].entry.priority, n),
    )
    if before:
        return _Part(
            "lore_before",
            "## Background",
            "active lore entries placed before the character (position before_char)",
            items,
            order=keep_rank[::-1],
        )
    return _Part("lore", "## What you know", "active lore entries", items, order=keep_rank[::-1])


def _plain(value: object) -> object:
    """Turn sets into sorted lists so that JSON output never depends on hash order."""
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=lambda v: json.dumps(v, default=str))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _render_value(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(_plain(value), sort_keys=True, ensure_ascii=False, default=str)


def _world(world: Mapping[str, object] | None, now: str | None) -> _Part:
    items = []
    if now:
        items.append(_Item("now", f"- Current time: {now}", now))
    for key in sorted((world or {}), key=str):
        value = _render_value((world or {})[key])
        items.append(_Item(f"world {key!r}", f"- {key}: {value}", _preview(value)))
    # Cut from the last key; the time, first, goes last.
    return _Part("world", "## The world right now", "world state from the host", items)


def _memories(memories: Sequence[str]) -> _Part:
    items = [
        _Item(f"memories[{i}]", f"- {m.strip()}", f"rank {i + 1}: {_preview(m)}")
        for i, m in enumerate(memories)
        if m.strip()
    ]
    return _Part(
        "memories", "## What you remember", "recalled memories, most relevant first", items
    )


def _sentences(text: str) -> list[str]:
    """Split `text` into sentences whose concatenation is `text`."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _summary(summary: str) -> _Part:
    sentences = _sentences(summary.strip())
    items = [_Item(f"summary sentence {i + 1}", s, _preview(s)) for i, s in enumerate(sentences)]
    return _Part(
        "summary",
        "## The conversation so far",
        "summary of earlier conversation",
        items,
        joiner="",
        order=list(range(len(items))),
    )


def _drops(parts: Mapping[str, _Part]) -> list[tuple[int, _Part, _Item]]:
    return [
        (number, parts[step.section], parts[step.section].items[index])
        for number, step in enumerate(DROP_ORDER, start=1)
        for index in parts[step.section].cut_order()
    ]


def compile_prompt(
    persona: Persona,
    *,
    memories: Sequence[str] = (),
    lore: LoreScan | Sequence[Activation] = (),
    world: Mapping[str, object] | None = None,
    summary: str = "",
    budget: int | None = None,
    counter: TokenCounter | None = None,
    now: str | None = None,
    user: str | None = None,
    safety: Sequence[tuple[str, str]] = (),
) -> CompiledPrompt:
    """Compile the system prompt of `persona` within a token budget.

    Args:
        persona: The character.
        memories: Recalled memories, most relevant first.
        lore: A `LoreScan` (from `personae.personas.lore.scan`; its trace then
            goes into `explain()` and `as_dict()`), or active entries in prompt
            order, as `personae.personas.lore.activate` returns them.
        world: World state from the host; keys are sorted, values shown as text or JSON.
        summary: Summary of the conversation so far.
        budget: Token budget; defaults to `persona.model.prompt_tokens`.
        counter: Token counter; defaults to `personae.tokens.default_counter()`.
        now: Current time as the host wants the character to see it; omitted when None.
        user: Name of who the character talks to, for `{{user}}` in persona
            texts; `User` when None.
        safety: `(label, text)` lines of the safety profile (the agent passes
            `personae.agents.safety.prompt_lines(persona)`); a line labelled
            `in_role` replaces the default stay-in-character rule.

    Returns:
        The prompt and its record. Items are cut in `DROP_ORDER` until the
        prompt fits; `over_budget` is True when the never-dropped sections
        alone exceed the budget.

    """
    budget = persona.model.prompt_tokens if budget is None else budget
    counter = counter if counter is not None else default_counter()
    lore_scan = lore if isinstance(lore, LoreScan) else None
    active = lore.active if isinstance(lore, LoreScan) else lore
    said = _with_macros(persona, user)
    built = [
        _identity(said), _lore(said, active, user, before=True), _description(said),
        _instructions(said), _costar(said), _speech(said), _goals(said), _safety(said, safety),
        _backstory(said), _actions(said), _emotions(said), _examples(said),
        _lore(said, active, user, before=False), _world(world, now), _memories(memories),
        _summary(summary),
    ]  # fmt: skip
    parts = {part.name: part for part in built}
    assert tuple(parts) == SECTION_ORDER
    for part in built:
        part.header_tokens = counter.count(part.header)
        for item in part.items:
            item.tokens = counter.count(item.text)

    def estimate() -> int:
        # Sections are joined by blank lines, which add no tokens to WordPiece;
        # the real count below corrects for counters where they do.
        return sum(
            part.header_tokens + sum(i.tokens for i in part.items if i.kept)
            for part in built
            if part.present()
        )

    def render() -> str:
        return "\n\n".join(part.render() for part in built if part.present())

    dropped: list[DroppedItem] = []

    def drop(number: int, part: _Part, item: _Item) -> None:
        item.kept = False
        item.dropped_why = f"budget {budget} tokens, drop order step {number}"
        dropped.append(DroppedItem(part.name, item.label, _preview(item.text), item.dropped_why))

    # Cut by the additive estimate first (one count per item, not per cut),
    # then confirm with a real count of the whole text.
    pending = _drops(parts)
    total = estimate()
    while pending and total > budget:
        drop(*pending.pop(0))
        total = estimate()
    text = render()
    tokens = counter.count(text)
    while pending and tokens > budget:
        drop(*pending.pop(0))
        text = render()
        tokens = counter.count(text)

    sections = tuple(
        Section(
            name=part.name,
            tokens=counter.count(part.render()) if part.present() else 0,
            items_kept=tuple(f"{i.label}: {i.why}" for i in part.items if i.kept),
            items_dropped=tuple(
                f"{i.label} dropped: {i.dropped_why}" for i in part.items if not i.kept
            ),
            reason=part.reason if part.items else f"{part.reason}: nothing to include",
        )
        for part in built
    )
    return CompiledPrompt(
        text=text,
        tokens=tokens,
        budget=budget,
        sections=sections,
        dropped=tuple(dropped),
        over_budget=tokens > budget,
        lore_scan=lore_scan,
    )
