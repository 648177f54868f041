"""`offline`: a chat model that answers only with the persona's authored lines.

It needs no network and no LLM: given the conversation, it picks the
character's line that best fits the last thing the user said, from

- example dialogue (the user's message is matched against each example's
  `user` line; the answer is its `reply`, with its `emotion`),
- greetings (when the message is a greeting: matched against the persona's
  greeting lines and common greetings in several languages),
- lore (matched against the entry's keys and its content; the answer is
  the content),
- fallback lines, when nothing fits well enough.

It never invents text. It is the default model when nothing is configured and
the last link of every fallback chain, so a character never goes silent.
Card macros in the lines it speaks are expanded: `{{char}}` (`<BOT>`) is the
persona's name, `{{user}}` (`<USER>`) the name of the last human message
(`Turn.speaker`), else `User`.

How lines are matched, and the thresholds (tuned on an innkeeper persona
with five examples, two greetings and two lore entries, in English and in
Chinese, against paraphrases of its lines and off-topic questions):

- Latin-script text is compared by cosine similarity of all-MiniLM-L6-v2
  embeddings. Paraphrased questions scored 0.49-0.82 against the line they
  paraphrase ("what does a beer cost" vs "How much is a mug of ale?": 0.60);
  off-topic questions ("How do quantum computers work?", "What time is it?",
  "I feel lonely today") scored 0.08-0.35 against every line.
  `THRESHOLD = 0.45` sits between the two. Greetings get a higher bar,
  `GREETING_THRESHOLD = 0.55`: small talk ("ok", "bye", "thanks") scores
  0.38-0.45 against "hello"/"hi", while real greetings ("hiya", "hello
  there!") score 0.70-1.0.
- Chinese, Japanese and Korean text means almost nothing to this English-only
  model: unrelated Chinese questions scored 0.45-0.81 against each other,
  above some true paraphrases. For text mostly in those scripts the score is
  instead a weighted overlap of characters and character pairs (Dice
  coefficient, function characters dropped, each weighted by its rarity among
  the persona's lines). Paraphrases sharing a content word scored 0.27-0.74,
  unrelated questions 0.00-0.08 with one outlier at 0.29, hence
  `CJK_THRESHOLD = 0.25`. A paraphrase that shares no content characters
  ("请问您怎么称呼" for "你叫什么名字") falls through to a fallback line: a
  deflection, never a wrong fact. Greetings again get a higher bar,
  `CJK_GREETING_THRESHOLD = 0.42`: "好的" (okay) scored 0.37 against "你好",
  while "老王你好" scored 0.44 and "早上好啊掌柜的" 0.54.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from personae.memory.embeddings import Embedder, default_embedder
from personae.personas.macros import expand
from personae.personas.model import Persona

__all__ = [
    "CJK_GREETING_THRESHOLD",
    "CJK_THRESHOLD",
    "GENERIC_GREETINGS",
    "GREETING_THRESHOLD",
    "NEUTRAL_FALLBACKS",
    "THRESHOLD",
    "OfflineChatModel",
    "OfflineChoice",
    "Source",
]

THRESHOLD = 0.45
GREETING_THRESHOLD = 0.55
CJK_THRESHOLD = 0.25
CJK_GREETING_THRESHOLD = 0.42

Source = Literal["example", "greeting", "lore", "fallback"]

# Used only to recognise a greeting; the answer is always one of the persona's own.
GENERIC_GREETINGS: tuple[str, ...] = (
    "hello", "hi", "hey", "good morning", "good afternoon", "good evening",
    "你好", "您好", "早上好", "晚上好", "嗨", "好久不见",
    "hallo", "guten tag", "guten morgen", "hola", "buenos días", "buenas tardes",
    "bonjour", "salut", "ciao", "buongiorno", "olá", "bom dia", "こんにちは", "おはよう",
)  # fmt: skip

# Spoken when a persona has no fallback lines of its own; two per language so
# that repeated unknown questions do not get the same line twice in a row.
NEUTRAL_FALLBACKS: dict[str, tuple[str, str]] = {
    "en": ("I'm not sure about that.", "I couldn't say."),
    "de": ("Da bin ich mir nicht sicher.", "Das kann ich nicht sagen."),
    "es": ("No estoy seguro de eso.", "No sabría decirte."),
    "fr": ("Je n'en suis pas sûr.", "Je ne saurais pas le dire."),
    "it": ("Non ne sono sicuro.", "Non saprei dirlo."),
    "pt": ("Não tenho certeza disso.", "Não saberia dizer."),
    "zh": ("这个我不太确定。", "这个我说不好。"),
    "ja": ("それはよく分かりません。", "何とも言えません。"),
}

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_NOT_WORD = re.compile(r"[\W_]+")
_CJK_STOP_CHARS = frozenset("的了吗呢吧啊呀嘛哦么是我你您他她它们这那有在个请问都些和与就也还很")
_CJK_STOP_PAIRS = frozenset(
    {"什么", "怎么", "一个", "这个", "那个", "我们", "你们", "他们", "可以"}
)


@dataclass(frozen=True)
class OfflineChoice:
    """The line the offline model chose, and why.

    Attributes:
        text: The authored line.
        source: Where it comes from: `example`, `greeting`, `lore` or `fallback`.
        score: Similarity of the user's message to what was matched; for a
            fallback, the best similarity seen, which fell short.
        emotion: The example's emotion, if it has one.

    """

    text: str
    source: Source
    score: float
    emotion: str | None = None


@dataclass(frozen=True)
class _Probe:
    source: Source
    probe: str
    reply: str
    emotion: str | None


@dataclass(frozen=True)
class _Rarity:
    """Inverse document frequency of grams over the persona's lines."""

    counts: dict[str, int]
    lines: int

    @classmethod
    def of(cls, lines: Sequence[str]) -> _Rarity:
        counts: dict[str, int] = {}
        for line in lines:
            for gram in _grams(line):
                counts[gram] = counts.get(gram, 0) + 1
        return cls(counts, len(lines))

    def weight(self, gram: str) -> float:
        return math.log(1 + (self.lines + 1) / (self.counts.get(gram, 0) + 1))


class OfflineChatModel(BaseChatModel):
    """Answers from the persona's authored lines only, chosen by similarity.

    See the module docstring for how lines are matched. Deterministic: the
    same conversation gets the same answer. It never repeats the character's
    last line: it takes the next best line, or the next fallback line.

    Args:
        persona: The character whose lines are spoken.
        embedder: Any `Embedder`; the bundled all-MiniLM-L6-v2 when unset.
        threshold: Least similarity for an example or lore entry.
        greeting_threshold: Least similarity for a message to count as a greeting.
        cjk_threshold: Least character overlap, for Chinese/Japanese/Korean text.
        cjk_greeting_threshold: Least character overlap for a CJK greeting.

    Example:
        ```python
        model = OfflineChatModel(persona=mira)
        reply = model.invoke("Do you have a room for tonight?")
        reply.response_metadata["source"]  # "example"
        ```

    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    persona: Persona
    embedder: Embedder | None = None
    threshold: float = THRESHOLD
    greeting_threshold: float = GREETING_THRESHOLD
    cjk_threshold: float = CJK_THRESHOLD
    cjk_greeting_threshold: float = CJK_GREETING_THRESHOLD

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _probes: list[_Probe] | None = PrivateAttr(default=None)
    _vectors: list[list[float]] | None = PrivateAttr(default=None)
    _rarity: _Rarity | None = PrivateAttr(default=None)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> OfflineChatModel:
        # The lock cannot be copied; the persona, the embedder and the built
        # index are never mutated, so a copy may share them.
        return self.model_copy()

    @property
    def _llm_type(self) -> str:
        return "personae-offline"

    @property
    def model_name(self) -> str:
        """Always `offline`, as in its replies' `response_metadata`."""
        return "offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": "offline", "persona": self.persona.id}

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> OfflineChatModel:
        """Accept tools and ignore them: authored lines never call tools."""
        return self

    def choose(self, messages: Sequence[BaseMessage]) -> OfflineChoice:
        """Return the line that answers the conversation. Blocking (embeds).

        Args:
            messages: The conversation; the last human message is answered and
                the last AI message is not repeated. The last human message's
                `name` is who `{{user}}` stands for.

        """
        query = _last_text(messages, HumanMessage)
        last_line = _normalise(_last_text(messages, AIMessage))
        turn_index = sum(1 for message in messages if isinstance(message, AIMessage))
        speaker = _last_speaker(messages)
        choices, best = self._ranked(query)
        for choice in choices:
            said = replace(choice, text=self._say(choice.text, speaker))
            if _normalise(said.text) != last_line:
                return said
        return self._fallback(turn_index, last_line, best, speaker)

    def _say(self, line: str, speaker: str | None) -> str:
        return expand(line, char=self.persona.name, user=speaker)

    def _ranked(self, query: str) -> tuple[list[OfflineChoice], float]:
        """Return the lines above their threshold, best first, and the best score seen."""
        if not query.strip():
            return [], 0.0
        probes, scores = self._score(query)
        cjk = _is_cjk(query)
        bar = self.cjk_threshold if cjk else self.threshold
        greeting_bar = self.cjk_greeting_threshold if cjk else self.greeting_threshold
        best: dict[tuple[Source, str], OfflineChoice] = {}
        greeting_score = 0.0
        for probe, score in zip(probes, scores, strict=True):
            if probe.source == "greeting":
                greeting_score = max(greeting_score, score)
                continue
            # A lore entry has two probes (keys, content); keep its better score.
            key = (probe.source, probe.reply)
            if score >= bar and (key not in best or best[key].score < score):
                best[key] = OfflineChoice(probe.reply, probe.source, score, probe.emotion)
        choices = sorted(best.values(), key=lambda c: -c.score)
        if self.persona.greetings and greeting_score >= greeting_bar:
            # Every greeting line answers a greeting equally well; the one
            # closest to what was said goes first ("Good evening" -> "Evening!").
            own = {
                p.reply: s
                for p, s in zip(probes, scores, strict=True)
                if p.source == "greeting" and p.reply in self.persona.greetings
            }
            lines = sorted(self.persona.greetings, key=lambda line: -own.get(line, 0.0))
            choices.extend(OfflineChoice(line, "greeting", greeting_score) for line in lines)
            choices.sort(key=lambda c: -c.score)
        return choices, max(scores, default=0.0)

    def _fallback(
        self, turn_index: int, last_line: str, best: float, speaker: str | None
    ) -> OfflineChoice:
        language = self.persona.speech.language.split("-")[0].lower()
        neutral = list(NEUTRAL_FALLBACKS.get(language, NEUTRAL_FALLBACKS["en"]))
        pool = [self._say(line, speaker) for line in self.persona.fallbacks] or neutral
        if len(pool) == 1:
            pool += neutral
        for offset in range(len(pool)):
            line = pool[(turn_index + offset) % len(pool)]
            if _normalise(line) != last_line:
                return OfflineChoice(line, "fallback", best)
        return OfflineChoice(pool[0], "fallback", best)

    def _score(self, query: str) -> tuple[list[_Probe], list[float]]:
        probes, vectors, rarity = self._index()
        if _is_cjk(query):
            return probes, [_overlap(query, p.probe, rarity) for p in probes]
        [q] = self._embedder().embed([query])
        return probes, [sum(a * b for a, b in zip(q, v, strict=True)) for v in vectors]

    def _index(self) -> tuple[list[_Probe], list[list[float]], _Rarity]:
        with self._lock:
            if self._probes is None or self._vectors is None or self._rarity is None:
                probes = _probes_of(self.persona)
                self._vectors = self._embedder().embed([p.probe for p in probes])
                self._rarity = _Rarity.of([p.probe for p in probes])
                self._probes = probes
            return self._probes, self._vectors, self._rarity

    def warm(self) -> None:
        """Load the embedding model and embed the persona's lines now, not on the first reply."""
        self._index()

    def _embedder(self) -> Embedder:
        return self.embedder if self.embedder is not None else default_embedder()

    def _message(self, messages: list[BaseMessage]) -> AIMessage:
        choice = self.choose(messages)
        return AIMessage(
            content=choice.text,
            additional_kwargs=_extra(choice),
            response_metadata=_metadata(choice),
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._message(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = await asyncio.to_thread(self._message, messages)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from _chunks(self.choose(messages))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        choice = await asyncio.to_thread(self.choose, messages)
        for chunk in _chunks(choice):
            yield chunk


def _probes_of(persona: Persona) -> list[_Probe]:
    # What a message is compared with has its macros expanded (the speaker is
    # not known yet); replies stay as written until they are spoken.
    def probe(text: str) -> str:
        return expand(text, char=persona.name)

    probes = [_Probe("example", probe(ex.user), ex.reply, ex.emotion) for ex in persona.examples]
    for entry in persona.lore:
        probes.append(_Probe("lore", probe(entry.content), entry.content, None))
        if entry.keys:
            probes.append(_Probe("lore", ", ".join(entry.keys), entry.content, None))
    for line in (*persona.greetings, *GENERIC_GREETINGS):
        probes.append(_Probe("greeting", probe(line), line, None))
    return probes


def _metadata(choice: OfflineChoice) -> dict[str, Any]:
    return {
        "model_name": "offline",
        "personae_offline": True,
        "source": choice.source,
        "score": round(choice.score, 4),
    }


def _extra(choice: OfflineChoice) -> dict[str, Any]:
    return {"emotion": choice.emotion} if choice.emotion is not None else {}


def _chunks(choice: OfflineChoice, pieces: int = 4) -> Iterator[ChatGenerationChunk]:
    """Split a line into a few deltas; metadata rides on the last one only.

    Chunk metadata is merged by concatenating strings, so repeating it on every
    chunk would turn `"example"` into `"exampleexample..."`.
    """
    text = choice.text
    if re.search(r"\s", text):
        parts = re.findall(r"\S+\s*", text)
        # Leading whitespace belongs to the first part, so the parts join back exactly.
        parts[0] = text[: len(text) - len("".join(parts[1:]))]
    else:
        parts = list(text)
    size = max(1, math.ceil(len(parts) / pieces))
    groups = ["".join(parts[i : i + size]) for i in range(0, len(parts), size)] or [""]
    for group in groups[:-1]:
        yield ChatGenerationChunk(message=AIMessageChunk(content=group))
    yield ChatGenerationChunk(
        message=AIMessageChunk(
            content=groups[-1],
            additional_kwargs=_extra(choice),
            response_metadata=_metadata(choice),
            chunk_position="last",
        )
    )


def _last_speaker(messages: Sequence[BaseMessage]) -> str | None:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.name or None
    return None


def _last_text(messages: Sequence[BaseMessage], kind: type[BaseMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, kind):
            return message.text
    return ""


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def _is_cjk(text: str) -> bool:
    letters = _NOT_WORD.sub("", text)
    return bool(letters) and len(_CJK.findall(letters)) * 2 >= len(letters)


def _grams(text: str) -> set[str]:
    """Content characters and character pairs of a CJK text (Latin words kept whole)."""
    grams: set[str] = set()
    for run in _NOT_WORD.sub(" ", text.casefold()).split():
        if not _CJK.search(run):
            grams.add(run)
            continue
        grams.update(c for c in run if c not in _CJK_STOP_CHARS)
        grams.update(
            pair
            for pair in (run[i : i + 2] for i in range(len(run) - 1))
            if pair not in _CJK_STOP_PAIRS and not set(pair) <= _CJK_STOP_CHARS
        )
    return grams


def _overlap(a: str, b: str, rarity: _Rarity) -> float:
    """Weighted Dice coefficient of the grams of two texts, in [0, 1]."""
    ga, gb = _grams(a), _grams(b)
    if not ga or not gb:
        return 0.0
    shared = sum(rarity.weight(g) for g in ga & gb)
    total = sum(rarity.weight(g) for g in ga) + sum(rarity.weight(g) for g in gb)
    return 2 * shared / total
