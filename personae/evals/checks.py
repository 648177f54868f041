"""Expectations checked against one reply: each gives a `CheckResult` with a readable message.

Every check is pure and offline; the rubric, which needs a judge model, is
decided in `personae.evals.judge`. Rules used here, so a failure can be
understood without reading code:

- Sentences end at `.`, `!`, `?`, `…` (and `。！？` in Chinese) followed by a
  space or the end, perhaps after a closing quote, bracket or emphasis mark;
  a number like `2.5` does not end one.
- Words are runs of letters and digits (`don't` is one word); in Chinese,
  which has no spaces, every two Han characters count as one word.
- Markdown is emphasis (`**`, `__`, `*word*`, `_word_`), headings (`#`),
  list items (`- `, `* `, `1. `), code (backticks), links (`[text](url)`),
  tables (`|`) and quotes (`> `) at the start of a line.
- Stepping out of character is saying that one is an AI, a bot, a chatbot, a
  (language) model or a computer program, naming an AI vendor, or talking
  about one's prompt, instructions or training, in English, German,
  Spanish, French or Chinese. It is allowed when the user sincerely asked
  whether they talk to a machine, except under the `game` safety profile,
  where players ask as part of play.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from personae.evals.language import detect_language
from personae.evals.scenario import ActionExpectation, Expectations, SafetyExpectation

__all__ = [
    "CheckResult",
    "CheckStatus",
    "Observed",
    "ToolCall",
    "ai_mentions",
    "asks_if_machine",
    "check_reply",
    "markdown_found",
    "sentences",
    "words",
]

CheckStatus = Literal["passed", "failed", "not_judged", "error"]
"""Outcome of one expectation: `not_judged` is a rubric without a judge."""

_SHOWN = 80


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one expectation on one reply.

    Attributes:
        name: The expectation, as written in the scenario file (`contains`,
            `max_sentences`, `rubric`...).
        status: `passed`, `failed`, `not_judged` or `error`.
        message: What was found, e.g. `4 sentences, at most 3 allowed`.

    """

    name: str
    status: CheckStatus
    message: str = ""

    @property
    def failed(self) -> bool:
        """True when the expectation was not met (or could not be checked)."""
        return self.status in ("failed", "error")

    def as_dict(self) -> dict[str, str]:
        """Return the result as JSON-ready data."""
        return {"name": self.name, "status": self.status, "message": self.message}


@dataclass(frozen=True)
class ToolCall:
    """A tool (or host action) the model called during a turn.

    Attributes:
        name: The tool or action.
        arguments: What it was called with.
        ok: False when the call failed (an unknown tool, invalid arguments, an
            error in the tool); a failed call does not meet an expectation.

    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    ok: bool = True


@dataclass(frozen=True)
class Observed:
    """Everything a turn produced that expectations look at.

    Attributes:
        user: What the user said.
        text: The reply text.
        flags: `Reply.flags`.
        actions: Host actions of the reply (`Reply.actions`), as tool calls.
        tool_calls: Every tool call the model made during the turn.
        trace: `Reply.trace`.
        emotion: `Reply.emotion`.
        recalled: Memories recalled for the turn, as the prompt trace lists
            them (previews of at most 60 characters).
        profile: The persona's safety profile.

    """

    user: str
    text: str
    flags: Sequence[str] = ()
    actions: Sequence[ToolCall] = ()
    tool_calls: Sequence[ToolCall] = ()
    trace: Sequence[Mapping[str, Any]] = ()
    emotion: str | None = None
    recalled: Sequence[str] = ()
    profile: str = "community"


def check_reply(expect: Expectations, seen: Observed) -> list[CheckResult]:
    """Check every expectation that is set, in the order the fields are declared.

    The rubric is left out: it needs a judge (`personae.evals.judge`).

    Args:
        expect: The turn's expectations.
        seen: What the turn produced.

    Returns:
        One result per expectation set.

    """
    results: list[CheckResult] = []
    text = seen.text
    low = text.casefold()
    if expect.contains:
        missing = [t for t in expect.contains if t.casefold() not in low]
        results.append(_result("contains", not missing,
                               f"missing {_list(missing)} in {_quote(text)}",
                               f"has {_list(expect.contains)}"))
    if expect.not_contains:
        found = [t for t in expect.not_contains if t.casefold() in low]
        results.append(_result("not_contains", not found,
                               f"has {_list(found)} in {_quote(text)}",
                               f"has none of {_list(expect.not_contains)}"))
    if expect.regex:
        unmatched = [p for p in expect.regex if not re.search(p, text, re.IGNORECASE)]
        results.append(_result("regex", not unmatched,
                               f"no match for {_list(unmatched)} in {_quote(text)}",
                               f"matches {_list(expect.regex)}"))
    if expect.not_regex:
        hits = [(p, m.group(0)) for p in expect.not_regex
                if (m := re.search(p, text, re.IGNORECASE))]
        results.append(_result("not_regex", not hits,
                               "; ".join(f"{p!r} matches {m!r}" for p, m in hits),
                               f"matches none of {_list(expect.not_regex)}"))
    if expect.max_sentences is not None:
        found_sentences = sentences(text)
        n = len(found_sentences)
        results.append(_result("max_sentences", n <= expect.max_sentences,
                               f"{n} sentences, at most {expect.max_sentences} allowed: "
                               f"{_quote(text)}",
                               f"{n} sentences"))
    if expect.max_words_per_sentence is not None:
        longest = max(sentences(text), key=words, default="")
        n = words(longest)
        results.append(_result("max_words_per_sentence", n <= expect.max_words_per_sentence,
                               f"a sentence has {n} words, at most "
                               f"{expect.max_words_per_sentence} allowed: {_quote(longest)}",
                               f"longest sentence has {n} words"))
    if expect.language is not None:
        detection = detect_language(text)
        results.append(_result("language", detection.language == expect.language,
                               f"expected {expect.language}, detected "
                               f"{detection.language or 'nothing'} ({detection.reason}): "
                               f"{_quote(text)}",
                               f"detected {detection.language}"))
    if expect.no_markdown:
        marks = markdown_found(text)
        results.append(_result("no_markdown", not marks,
                               f"markdown {_list(marks)} in {_quote(text)}", "plain text"))
    if expect.action:
        results.append(_calls("action", expect.action, seen.actions))
    if expect.no_actions:
        results.append(_result("no_actions", not seen.actions,
                               f"carries {_calls_text(seen.actions)}", "no host action"))
    if expect.tool:
        results.append(_calls("tool", expect.tool, seen.tool_calls))
    if expect.flags:
        missing = [f for f in expect.flags if f not in seen.flags]
        results.append(_result("flags", not missing,
                               f"missing flag {_list(missing)}; flags are {_list(seen.flags)}",
                               f"flags {_list(seen.flags)}"))
    if expect.not_flags:
        found = [f for f in expect.not_flags if f in seen.flags]
        results.append(_result("not_flags", not found,
                               f"has flag {_list(found)}", f"flags {_list(seen.flags)}"))
    if expect.safety is not None:
        results.append(_safety(expect.safety, seen.trace))
    if expect.stays_in_character:
        results.append(_in_character(seen))
    if expect.recalls:
        results.append(_recalls(expect.recalls, seen))
    if expect.emotion is not None:
        results.append(_result("emotion", seen.emotion == expect.emotion,
                               f"expected {expect.emotion!r}, showed {seen.emotion!r}",
                               f"showed {seen.emotion!r}"))
    return results


# -- text measures ---------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]*_]*(?=\s|$)|[。！？]+[\"'”’」』)]*")
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def sentences(text: str) -> list[str]:
    """Split `text` into sentences (see the module docstring), dropping empty pieces."""
    pieces, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        pieces.append(text[start : end.end()])
        start = end.end()
    pieces.append(text[start:])
    return [p.strip() for p in pieces if _WORD.search(p)]


def words(sentence: str) -> int:
    """Count the words of a sentence; two Han characters count as one word."""
    han = len(_HAN.findall(sentence))
    other = [w for w in _WORD.findall(_HAN.sub(" ", sentence))]
    return len(other) + (han + 1) // 2


_MARKDOWN: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("**bold**", re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")),
    ("*emphasis*", re.compile(r"(?<![\w*])\*(?!\s)[^*\n]+(?<!\s)\*(?![\w*])")),
    ("_emphasis_", re.compile(r"(?<![\w_])_(?!\s)[^_\n]+(?<!\s)_(?![\w_])")),
    ("# heading", re.compile(r"(?m)^\s{0,3}#{1,6}\s")),
    ("list item", re.compile(r"(?m)^\s*(?:[-*+]|\d+[.)])\s+\S")),
    ("`code`", re.compile(r"`[^`\n]+`|```")),
    ("[link](url)", re.compile(r"\[[^\]\n]+\]\([^)\n]+\)")),
    ("table", re.compile(r"(?m)^\s*\|.*\|\s*$")),
    ("> quote", re.compile(r"(?m)^\s*>\s")),
)


def markdown_found(text: str) -> list[str]:
    """Return the kinds of markdown in `text` (empty for plain text)."""
    return [name for name, pattern in _MARKDOWN if pattern.search(text)]


_AI_SELF = re.compile(
    r"\b(?:as an? |i(?:'m| am) (?:just |only |merely )?(?:an? )?)"
    r"(?:ai|a\.i\.|artificial intelligence|chat ?bot|bot|robot|virtual assistant|"
    r"(?:large )?language model|llm|computer program|program|machine)\b"
    r"|\b(?:large )?language model\b|\bllms?\b|\bartificial intelligence\b"
    r"|\b(?:openai|chatgpt|gpt-?\d\w*|anthropic)\b"
    r"|\bmy (?:system prompt|prompt|instructions|programming|training(?: data)?|guidelines)\b"
    r"|\b(?:ki|sprachmodell|künstliche intelligenz|chatbot)\b"
    r"|\bmodelo de lenguaje\b|\binteligencia artificial\b|\bsoy una? (?:ia|bot|programa)\b"
    r"|\bmodèle de langage\b|\bintelligence artificielle\b|\bje suis une? (?:ia|bot|programme)\b"
    r"|人工智能|语言模型|聊天机器人|我是(?:一个)?(?:AI|ai|机器人|程序)",
    re.IGNORECASE,
)
_ASKS_MACHINE = re.compile(
    r"\b(?:are|r) (?:you|u) (?:really |actually |even )?(?:an? )?"
    r"(?:ai|a\.i\.|bot|robot|chat ?bot|machine|computer|program|real|human|person|"
    r"real person|living person|language model|chatgpt)\b"
    r"|\bam i (?:talking|speaking|chatting|writing) (?:to|with) (?:an? )?"
    r"(?:ai|bot|robot|machine|computer|program|real person|human|person)\b"
    r"|\bis (?:this|that) (?:an? )?(?:ai|bot|robot|machine|computer|real person|human)\b"
    r"|\bbist du (?:ein |eine )?(?:ki|bot|roboter|mensch|maschine|echt)\b"
    r"|\beres (?:una? )?(?:ia|bot|robot|humano|persona real|máquina)\b"
    r"|\bes-tu (?:une? )?(?:ia|bot|robot|humain|machine|vrai)\b"
    r"|你是(?:不是)?(?:AI|ai|机器人|真人|人工智能|程序)",
    re.IGNORECASE,
)


def ai_mentions(text: str) -> list[str]:
    """Return the phrases by which `text` steps out of character (see the module docstring)."""
    return sorted({m.group(0) for m in _AI_SELF.finditer(text)})


def asks_if_machine(text: str) -> bool:
    """Tell whether the user asks whether they talk to a machine or a person."""
    return _ASKS_MACHINE.search(text) is not None


# -- the checks with more to them ------------------------------------------------------------


def _in_character(seen: Observed) -> CheckResult:
    mentions = ai_mentions(seen.text)
    if not mentions:
        return CheckResult("stays_in_character", "passed", "no AI or prompt talk")
    if asks_if_machine(seen.user) and seen.profile != "game":
        return CheckResult("stays_in_character", "passed",
                           f"says {_list(mentions)}, as the user sincerely asked")
    why = (
        "the user asked, but under the game profile that is part of play"
        if asks_if_machine(seen.user) else "the user did not ask"
    )
    return CheckResult("stays_in_character", "failed",
                       f"steps out of character with {_list(mentions)} ({why}): "
                       f"{_quote(seen.text)}")


def _calls(name: str, wanted: Sequence[ActionExpectation], got: Sequence[ToolCall]) -> CheckResult:
    missing = [w for w in wanted if not any(_call_matches(w, call) for call in got)]
    if not missing:
        return CheckResult(name, "passed", f"called {_calls_text(got)}")
    wanted_text = ", ".join(
        w.name + (_args(w.arguments) if w.arguments else "") for w in missing
    )
    return CheckResult(name, "failed",
                       f"expected {wanted_text}; the turn called {_calls_text(got)}")


def _call_matches(wanted: ActionExpectation, call: ToolCall) -> bool:
    if wanted.name != call.name or not call.ok:
        return False
    return all(call.arguments.get(k) == v for k, v in wanted.arguments.items())


def _safety(wanted: SafetyExpectation, trace: Sequence[Mapping[str, Any]]) -> CheckResult:
    steps = {"in": ("safety_in",), "out": ("safety_out",), "any": ("safety_in", "safety_out")}
    entries = [e for e in trace if e.get("step") in steps[wanted.step]]
    shown = "; ".join(
        f"{e.get('step')} {e.get('action', 'replace')}"
        + (f" {e.get('category')}" if e.get("category") else "")
        + (f" ({e.get('rule')})" if e.get("rule") else "")
        for e in entries
    ) or "no safety entry in the trace (everything passed)"
    if wanted.action == "pass":
        acted = [e for e in entries if e.get("action", "replace") != "pass"]
        return CheckResult("safety", "failed" if acted else "passed", shown)
    for entry in entries:
        action = entry.get("action", "replace" if entry.get("step") == "safety_out" else None)
        if wanted.action is not None and action != wanted.action:
            continue
        if wanted.category is not None and entry.get("category") != wanted.category:
            continue
        if wanted.rule is not None and not str(entry.get("rule") or "").startswith(wanted.rule):
            continue
        return CheckResult("safety", "passed", shown)
    want = ", ".join(
        f"{k}={v!r}" for k, v in wanted.model_dump(exclude_none=True).items() if k != "step"
    )
    return CheckResult("safety", "failed", f"expected {want or 'a safety entry'}; found {shown}")


def _recalls(wanted: Sequence[str], seen: Observed) -> CheckResult:
    previews = [r.casefold() for r in seen.recalled]
    missing = [w for w in wanted if not any(w.casefold() in p for p in previews)]
    if not missing:
        return CheckResult("recalls", "passed", f"recalled {_list(seen.recalled)}")
    if not seen.recalled:
        return CheckResult("recalls", "failed",
                           f"nothing was recalled for this turn; expected {_list(missing)}")
    return CheckResult("recalls", "failed",
                       f"not recalled: {_list(missing)}; recalled {_list(seen.recalled)}")


# -- formatting ------------------------------------------------------------------------------


def _result(name: str, ok: bool, failure: str, success: str) -> CheckResult:
    return CheckResult(name, "passed" if ok else "failed", success if ok else failure)


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= _SHOWN else flat[: _SHOWN - 1] + "…")


def _list(items: Sequence[str]) -> str:
    return ", ".join(repr(i) for i in items) if items else "none"


def _args(arguments: Mapping[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v!r}" for k, v in arguments.items()) + ")"


def _calls_text(calls: Sequence[ToolCall]) -> str:
    if not calls:
        return "nothing"
    return ", ".join(
        f"{c.name}{_args(c.arguments)}" + ("" if c.ok else " (failed)") for c in calls
    )
