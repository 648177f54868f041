"""Conversations as chat-format JSONL for fine-tuning, with personal data redacted.

Two sources:

- a data directory (`PERSONAE_HOME`): the conversations in
  `conversations.sqlite`, read with `Agent.history` for every scope found.
  Conversations are stored under a hash of their scope, so a scope is found
  from the memory store's list of scopes (every scope that has memories),
  plus the users given (`users`) for each persona; a conversation of no
  known scope is counted and left out;
- a report of `personae eval --report`: the conversations of passing runs.

Each conversation becomes one line `{"messages": [{"role", "content"}, ...]}`
(roles `system`, `user`, `assistant`), the format OpenAI-compatible
fine-tuning and most open-source trainers read. Tool traffic is left out;
consecutive messages of one role are joined; a reply written by the safety
layer (model `safety`) is left out together with the message it answered:
rules wrote it, not the model, and the rules keep writing it at run time.
Every text goes through `redact_pii` first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personae.errors import ConfigError
from personae.evals.results import EvalReport

__all__ = [
    "Conversation",
    "HomeExport",
    "chat_messages",
    "chat_records",
    "conversations_from_home",
    "conversations_from_report",
    "redact_pii",
    "write_jsonl",
]

SAFETY_MODEL = "safety"
"""`model_name` of replies the safety layer wrote instead of the model."""


@dataclass(frozen=True)
class Conversation:
    """One conversation: whose it was and its messages, oldest first.

    Attributes:
        persona: Persona id.
        scope: The scope key (e.g. `rosie/user=ann`) or the run it came from.
        messages: `{"role", "content"}` items; an assistant item may carry
            `model` (who wrote it).

    """

    persona: str
    scope: str
    messages: list[dict[str, str]]


@dataclass
class HomeExport:
    """What `conversations_from_home` found.

    Attributes:
        conversations: The conversations of the known scopes.
        unmatched: Stored conversations whose scope is not known (left out).
        notes: Things the user should know (e.g. the memory store was busy).

    """

    conversations: list[Conversation] = field(default_factory=list)
    unmatched: int = 0
    notes: list[str] = field(default_factory=list)


# -- redaction ------------------------------------------------------------------------------

_EXTRA_PII: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("[url]", re.compile(r"\bhttps?://\S+", re.IGNORECASE)),
    ("[ip]", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")),
)


def redact_pii(text: str) -> str:
    """Replace personal data for a training set.

    The safety layer's `redact` (e-mail addresses, phone numbers, checked
    card and IBAN numbers, national ID numbers), then URLs (which may carry
    tokens) and IP addresses. Pattern-based: names, street addresses and
    anything said in words ("my PIN is one two three four") are not found.
    Check a sample of the output before training on it.
    """
    from personae.agents.safety import redact

    text = redact(text)
    for label, pattern in _EXTRA_PII:
        text = pattern.sub(label, text)
    return text


# -- sources ---------------------------------------------------------------------------------


def conversations_from_report(
    path: Path, *, personas: Sequence[str] = ()
) -> list[Conversation]:
    """Return the conversations of the passing runs in a `personae eval --report` file.

    Args:
        path: The report.
        personas: Keep only these persona ids (all when empty).

    Raises:
        ConfigError: The file is not a readable report.

    """
    try:
        report = EvalReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ConfigError(
            f"{path}: not a report of `personae eval --report` ({reason}); "
            "write one with `personae eval ... --report PATH`"
        ) from exc
    return [
        Conversation(run.persona, f"{run.suite}/{run.scenario} [{run.model}] "
                     f"run {run.repetition}", run.transcript)
        for run in report.runs
        if run.status == "passed" and run.transcript and (not personas or run.persona in personas)
    ]  # fmt: skip


async def conversations_from_home(
    home: Path, *, personas: Sequence[str] = (), users: Sequence[str] = ()
) -> HomeExport:
    """Return the stored conversations of a data directory (see the module docstring).

    Args:
        home: The data directory (`PERSONAE_HOME`).
        personas: Keep only these persona ids (all found when empty).
        users: More users whose conversations to look for, for each persona
            (`local`, the command line's user, is always looked for).

    Raises:
        ConfigError: `home` holds no `conversations.sqlite`.

    """
    database = home / "conversations.sqlite"
    if not database.is_file():
        raise ConfigError(
            f"{home}: no conversations.sqlite here; give the data directory the "
            "conversations were held in (PERSONAE_HOME, default ~/.local/share/personae)"
        )
    found = HomeExport()
    threads = await _thread_ids(database)
    scopes = _known_scopes(home, found.notes)
    if not personas:
        personas = sorted({s.persona for s in scopes})
    from personae.scope import Scope

    candidates = [s for s in scopes if s.persona in personas]
    candidates += [Scope(persona=p, user=u) for p in personas for u in ("local", *users)]
    by_thread = {s.thread_id(): s for s in candidates}
    matched = [by_thread[t] for t in threads if t in by_thread]
    found.unmatched = len(threads) - len(matched)
    for persona in sorted({s.persona for s in matched}):
        agent = _reader(persona, home)
        try:
            for scope in (s for s in matched if s.persona == persona):
                messages = chat_messages(await agent.history(scope))
                if messages:
                    found.conversations.append(Conversation(persona, scope.key(), messages))
        finally:
            await agent.aclose()
    return found


async def _thread_ids(database: Path) -> list[str]:
    """Return the thread ids of every stored conversation, in first-seen order."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    seen: dict[str, None] = {}
    async with AsyncSqliteSaver.from_conn_string(str(database)) as saver:
        async for item in saver.alist(None):
            thread = item.config["configurable"].get("thread_id")
            if isinstance(thread, str):
                seen.setdefault(thread, None)
    return list(seen)


def _known_scopes(home: Path, notes: list[str]) -> list[Any]:
    memory = home / "memory"
    if not memory.is_dir():
        return []
    from personae.errors import MemoryStoreError
    from personae.memory.store import MemoryStore

    try:
        with MemoryStore(memory) as store:
            return store.scopes()
    except MemoryStoreError as exc:
        notes.append(f"the memory store could not be read ({exc}); only the users "
                     "given with --user were looked for")
        return []


def _reader(persona: str, home: Path) -> Any:
    """Return an agent that only reads histories: no memory, the offline model, never run."""
    from personae.agents.agent import Agent
    from personae.personas.model import Persona

    return Agent(Persona(id=persona, name=persona), model="offline", home=home, memory=False)


def chat_messages(history: Sequence[Any]) -> list[dict[str, str]]:
    """Return a stored history as chat messages, oldest first; tool traffic is left out.

    Assistant messages carry `model`: the model that wrote them (`safety` for
    the safety layer's replies).
    """
    from langchain_core.messages import AIMessage, HumanMessage

    out: list[dict[str, str]] = []
    for message in history:
        if isinstance(message, HumanMessage) and message.text:
            out.append({"role": "user", "content": message.text})
        elif isinstance(message, AIMessage) and message.text.strip():
            model = str(message.response_metadata.get("model_name", ""))
            out.append({"role": "assistant", "content": message.text.strip(), "model": model})
    return out


# -- output ------------------------------------------------------------------------------------


def chat_records(
    conversations: Iterable[Conversation],
    *,
    redact: Callable[[str], str] | None = None,
    system: str | None = None,
) -> list[dict[str, list[dict[str, str]]]]:
    """Return one `{"messages": [...]}` record per conversation that has a reply to learn from.

    Args:
        conversations: The conversations.
        redact: Applied to every text; default `redact_pii`.
        system: A system message put first in every record (e.g. the persona's prompt).

    """
    clean = redact or redact_pii
    records = []
    for conversation in conversations:
        messages = _without_safety(conversation.messages)
        merged: list[dict[str, str]] = []
        for message in messages:
            text = clean(message["content"]).strip()
            if not text:
                continue
            if merged and merged[-1]["role"] == message["role"]:
                merged[-1]["content"] += "\n" + text
            else:
                merged.append({"role": message["role"], "content": text})
        if not any(m["role"] == "assistant" for m in merged):
            continue
        if system:
            merged.insert(0, {"role": "system", "content": clean(system)})
        records.append({"messages": merged})
    return records


def _without_safety(messages: Sequence[Mapping[str, str]]) -> list[Mapping[str, str]]:
    kept: list[Mapping[str, str]] = []
    for message in messages:
        if message.get("role") == "assistant" and message.get("model") == SAFETY_MODEL:
            if kept and kept[-1].get("role") == "user":
                kept.pop()
            continue
        kept.append(message)
    return kept


def write_jsonl(records: Iterable[Mapping[str, Any]], path: Path) -> int:
    """Write one JSON object per line to `path`; return how many lines were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
