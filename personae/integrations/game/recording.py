"""Record game sessions to JSONL and replay them with no model running.

A `Recorder` given to `GameServer(recorder=...)` writes one JSON object per
line:

```
{"kind": "header", "format": "personae-game-recording", "version": 1, "protocol": 1,
 "personas": [...], "chains": {"npc": ["openai:gpt-4o-mini", "offline"]}, "limits": {...}}
{"kind": "in", "session": 1, "data": "<the message as received>"}
{"kind": "out", "session": 1, "message": {...}}
{"kind": "model", "session": 1, "npc": "brenna", "request": "7", "link": 0,
 "messages": [<LangChain message dicts>]}          (or "error": "<error type>")
{"kind": "gate", "session": 1, "npc": "brenna", "request": "7", "gate": null}
```

`replay(path)` runs the recorded messages through a fresh server whose NPCs'
model chains answer with the recorded outputs, in order, per NPC and
request, and compares what comes out with what was recorded. Cooldown and
budget decisions depend on the clock, so they are replayed as recorded
(`gate` lines). Memory is off during a replay, which runs in a temporary
data directory. Differences name the session, request, NPC and message.

Volatile fields, which are not compared: `welcome.server` (the version),
`saved.blob` (it holds message ids and times), `loaded.forgotten` (it counts
memories, which a replay does not keep), how streamed text is cut into
`delta`s (their joined text is compared), and, for a request that was
cancelled, the messages sent before its `no_response`.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import difflib
import json
import tempfile
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    messages_from_dict,
    messages_to_dict,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import PrivateAttr

from personae.errors import IntegrationError
from personae.integrations.game.limits import Gate, NpcLimits
from personae.integrations.game.protocol import PROTOCOL_VERSION
from personae.personas.model import Persona

if TYPE_CHECKING:
    from personae.agents.agent import Agent
    from personae.integrations.game.server import GameServer

__all__ = [
    "RECORDING_FORMAT",
    "VOLATILE_FIELDS",
    "Difference",
    "RecordedChatModel",
    "Recorder",
    "ReplayReport",
    "areplay",
    "current_turn",
    "replay",
]

RECORDING_FORMAT = "personae-game-recording"
"""`format` of a recording's header line."""

VOLATILE_FIELDS: dict[str, tuple[str, ...]] = {
    "welcome": ("server",),
    "saved": ("blob",),
    "loaded": ("forgotten",),
}
"""Fields a replay does not compare, per message type (see the module docstring)."""

current_turn: ContextVar[tuple[int, str, str] | None] = ContextVar(
    "personae_game_turn", default=None
)
"""(session, NPC, request) of the turn running in this context; set by the server."""


class Recorder:
    """Writes every session of a `GameServer` to a JSONL file (see the module docstring).

    Args:
        path: The file; created or replaced.

    Example:
        ```python
        server = GameServer(personas, recorder=Recorder("session.jsonl"))
        ...
        await server.aclose()            # closes the recording too
        report = replay("session.jsonl")
        print(report.summary())
        ```
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        self._links: dict[int, int] = {}

    def _write(self, entry: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
            self._file.flush()

    def start(self, server: GameServer) -> None:
        """Write the header: the personas, each NPC's model chain, the limits."""
        chains: dict[str, list[str]] = {}
        for name, npc in server.npcs.items():
            chains[name] = [spec for spec, _ in npc.agent.chain]
            for link, (_, model) in enumerate(npc.agent.chain):
                self._links.setdefault(id(model), link)
        self._write({
            "kind": "header",
            "format": RECORDING_FORMAT,
            "version": 1,
            "protocol": PROTOCOL_VERSION,
            "personas": [
                npc.persona.model_dump(mode="json", by_alias=True, exclude_defaults=True)
                for npc in server.npcs.values()
            ],
            "chains": chains,
            "limits": dataclasses.asdict(server.limits),
        })

    def incoming(self, session: int, data: str | bytes) -> None:
        """Record a message as it arrived (bytes that are not UTF-8 as base64)."""
        if isinstance(data, bytes):
            try:
                self._write({"kind": "in", "session": session, "data": data.decode("utf-8")})
            except UnicodeDecodeError:
                encoded = base64.b64encode(data).decode("ascii")
                self._write({"kind": "in", "session": session, "bytes": encoded})
            return
        self._write({"kind": "in", "session": session, "data": data})

    def outgoing(self, session: int, message: dict[str, Any]) -> None:
        """Record a message sent to the game."""
        self._write({"kind": "out", "session": session, "message": message})

    def admit(self, session: int, npc: str, request: str, gate: Gate | None) -> Gate | None:
        """Record a cooldown/budget decision and return the one to apply."""
        self._write({
            "kind": "gate", "session": session, "npc": npc, "request": request,
            "gate": None if gate is None else dataclasses.asdict(gate),
        })
        return gate

    def model_call(
        self, link: int, messages: Sequence[BaseMessage] | None, error: str | None = None
    ) -> None:
        """Record what one link of an NPC's model chain answered (or how it failed)."""
        turn = current_turn.get()
        if turn is None:
            return
        session, npc, request = turn
        entry: dict[str, Any] = {"kind": "model", "session": session, "npc": npc,
                                 "request": request, "link": link}
        if messages is not None:
            entry["messages"] = messages_to_dict(list(messages))
        else:
            entry["error"] = error
        self._write(entry)

    def middleware(self) -> AgentMiddleware[Any, Any, Any]:
        """Return the middleware that records each model call's output for this recorder."""
        return _RecordModelCalls(self)

    def link_of(self, model: object) -> int:
        """Return the position of `model` in its NPC's chain (0 when unknown)."""
        return self._links.get(id(model), 0)

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


class _RecordModelCalls(AgentMiddleware[Any, Any, Any]):
    """Records the output of every model call, per link of the chain."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    async def awrap_model_call(self, request: ModelRequest[Any], handler: Any) -> Any:
        link = self.recorder.link_of(request.model)
        try:
            response: ModelResponse[Any] = await handler(request)
        except Exception as exc:
            self.recorder.model_call(link, None, type(exc).__name__)
            raise
        self.recorder.model_call(link, response.result)
        return response


# -- replay -------------------------------------------------------------------------


class ReplayError(Exception):
    """A recorded model output is missing or does not belong to this link (replay only)."""


class _Feed:
    """Recorded model outputs, per (session, NPC, request), in order."""

    def __init__(self) -> None:
        self.calls: dict[tuple[int, str, str], deque[dict[str, Any]]] = defaultdict(deque)

    def next(self, link: int) -> AIMessage:
        turn = current_turn.get()
        if turn is None:
            raise ReplayError("a model was called outside a recorded turn")
        queue = self.calls.get(turn)
        if not queue:
            raise ReplayError(f"no recorded model output left for {turn}")
        if queue[0].get("link") != link:
            raise ReplayError(f"the recording has link {queue[0].get('link')} next, not {link}")
        entry = queue.popleft()
        if "messages" not in entry:
            raise ReplayError(f"recorded failure: {entry.get('error')}")
        found = [m for m in messages_from_dict(entry["messages"]) if isinstance(m, AIMessage)]
        if not found:
            raise ReplayError("the recorded output holds no AI message")
        return found[-1]


class RecordedChatModel(BaseChatModel):
    """A chat model that answers with recorded outputs: one link of a replayed chain.

    Args:
        name_tag: The label of the link it stands in for (e.g. `offline`).
        link: Its position in the chain.
    """

    name_tag: str = "recorded"
    link: int = 0
    _feed: _Feed = PrivateAttr(default_factory=_Feed)

    @property
    def _llm_type(self) -> str:
        return "personae-recorded"

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Return the model itself: the recording decides the tool calls."""
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._feed.next(self.link))])

    def _chunks(self, message: AIMessage) -> Iterator[ChatGenerationChunk]:
        if message.text:
            yield ChatGenerationChunk(message=AIMessageChunk(content=message.text))
        yield ChatGenerationChunk(message=AIMessageChunk(
            content="",
            tool_call_chunks=[
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                for i, c in enumerate(message.tool_calls)
            ],
            response_metadata=message.response_metadata,
            additional_kwargs=message.additional_kwargs,
            usage_metadata=message.usage_metadata,
            chunk_position="last",
        ))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._feed.next(self.link)):
            if run_manager is not None and chunk.text:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._feed.next(self.link)):
            if run_manager is not None and chunk.text:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


class _ReplayRecorder(Recorder):
    """Records nothing; hands out the recorded cooldown/budget decisions."""

    def __init__(self, gates: dict[tuple[int, str, str], deque[Gate | None]]) -> None:
        self._file = None
        self._links = {}
        self.gates = gates

    def start(self, server: GameServer) -> None:
        return None

    def admit(self, session: int, npc: str, request: str, gate: Gate | None) -> Gate | None:
        queue = self.gates.get((session, npc, request))
        return queue.popleft() if queue else gate


def _replay_server(
    personas: list[Persona],
    header: dict[str, Any],
    feed: _Feed,
    recorder: _ReplayRecorder,
    home: Path,
) -> GameServer:
    from personae.agents.agent import Agent
    from personae.integrations.game.server import GameServer

    chains: dict[str, list[str]] = header.get("chains") or {}

    class ReplayServer(GameServer):
        def _make_agent(self, persona: Persona) -> Agent:
            labels = chains.get(persona.id) or ["offline"]
            if labels[-1] != "offline":
                labels = [*labels, "offline"]
            links: list[RecordedChatModel] = []
            for i, label in enumerate(labels):
                model = RecordedChatModel(name_tag=label, link=i)
                model._feed = feed
                links.append(model)
            return Agent(persona, model=links[0], fallbacks=links[1:],
                         home=self.home / "game" / persona.id,
                         settings=self.settings, memory=False, tools=self._game_tools())

    limits = NpcLimits(**(header.get("limits") or {}))
    return ReplayServer(personas, home=home, limits=limits, memory=False, recorder=recorder)


@dataclass(frozen=True)
class Difference:
    """One message that differs between the recording and the replay.

    Attributes:
        session: Session number in the recording.
        reply_to: The request the message answers (None for errors about unreadable input).
        npc: The NPC, for NPC messages.
        index: Position among the messages for that request and NPC.
        expected: The recorded message (None: the replay sent one more).
        actual: The replayed message (None: the replay sent one less).
    """

    session: int
    reply_to: str | None
    npc: str | None
    index: int
    expected: dict[str, Any] | None
    actual: dict[str, Any] | None

    def fields(self) -> list[str]:
        """Return the names of the fields that differ."""
        if self.expected is None or self.actual is None:
            return []
        keys = set(self.expected) | set(self.actual)
        return sorted(k for k in keys if self.expected.get(k) != self.actual.get(k))

    def __str__(self) -> str:
        where = f"session {self.session}, request {self.reply_to!r}"
        if self.npc:
            where += f", npc {self.npc!r}"
        where += f", message {self.index}"
        if self.actual is None:
            return f"{where}: missing in the replay: {json.dumps(self.expected)}"
        if self.expected is None:
            return f"{where}: only in the replay: {json.dumps(self.actual)}"
        parts = [
            f"{k}: {self.expected.get(k)!r} -> {self.actual.get(k)!r}" for k in self.fields()
        ]
        return f"{where} ({self.expected.get('type')}): " + "; ".join(parts)


@dataclass
class ReplayReport:
    """What a replay found.

    Attributes:
        path: The recording.
        sessions: Sessions replayed.
        received: Incoming messages replayed.
        expected: Outgoing messages in the recording (the deltas of one
            request and NPC counted as one).
        actual: Outgoing messages of the replay, counted the same way.
        differences: Messages that differ (empty when the replay matches).
    """

    path: Path
    sessions: int = 0
    received: int = 0
    expected: int = 0
    actual: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        """True when the replay sent the same messages as the recording."""
        return not self.differences

    def summary(self) -> str:
        """Return a readable report: counts, then one line per difference."""
        head = (
            f"{self.path}: {self.sessions} session(s), {self.received} message(s) in, "
            f"{self.expected} out recorded, {self.actual} out replayed: "
        )
        if self.equal:
            return head + "same"
        lines = [head + f"{len(self.differences)} difference(s)"]
        lines += [f"  {d}" for d in self.differences]
        return "\n".join(lines)


def _read(path: Path) -> list[dict[str, Any]]:
    entries = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise IntegrationError(f"cannot read recording {str(path)!r}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise IntegrationError(
                f"{path}:{number}: is not JSON ({exc}); a recording is one JSON object per line"
            ) from exc
        if not isinstance(entry, dict) or "kind" not in entry:
            raise IntegrationError(f"{path}:{number}: is not a recording entry (no `kind`)")
        entries.append(entry)
    if not entries or entries[0].get("format") != RECORDING_FORMAT:
        raise IntegrationError(
            f"{path} is not a personae game recording (its first line must be the header "
            f"with format {RECORDING_FORMAT!r}); record with `GameServer(recorder=Recorder(...))`"
        )
    return entries


def _personas(
    header: dict[str, Any], given: Sequence[Persona | str | Path] | None
) -> list[Persona]:
    from personae.personas.loading import load_persona

    recorded = [Persona.model_validate(p) for p in header.get("personas") or []]
    if not given:
        return recorded
    replaced = {p.id: p for p in (g if isinstance(g, Persona) else load_persona(g) for g in given)}
    return [replaced.pop(p.id, p) for p in recorded] + list(replaced.values())


def _comparable(message: dict[str, Any]) -> dict[str, Any]:
    volatile = VOLATILE_FIELDS.get(str(message.get("type")), ())
    return {k: v for k, v in message.items() if k not in volatile}


def _groups(messages: list[dict[str, Any]]) -> dict[tuple[Any, Any], list[dict[str, Any]]]:
    """Group messages by (request, NPC) in order; the deltas of a group become one, last."""
    groups: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    streamed: dict[tuple[Any, Any], str] = {}
    for message in messages:
        key = (message.get("reply_to"), message.get("npc"))
        group = groups.setdefault(key, [])
        if message.get("type") == "delta":
            streamed[key] = streamed.get(key, "") + str(message.get("text", ""))
        else:
            group.append(_comparable(message))
    for key, text in streamed.items():
        groups[key].append({"type": "delta", "reply_to": key[0], "npc": key[1],
                            "text": text, "id": "(all deltas, joined)"})
    for key, group in groups.items():
        ends = [m for m in group if m.get("type") == "no_response"]
        if ends and ends[-1].get("reason") == "cancelled":
            groups[key] = [ends[-1]]
    return groups


def _compare(
    session: int,
    want: dict[tuple[Any, Any], list[dict[str, Any]]],
    got: dict[tuple[Any, Any], list[dict[str, Any]]],
) -> list[Difference]:
    found: list[Difference] = []
    for key in [*want, *(k for k in got if k not in want)]:
        a, b = want.get(key, []), got.get(key, [])
        # Aligned, so one missing message reads as one difference, not a shift.
        matcher = difflib.SequenceMatcher(
            a=[json.dumps(m, sort_keys=True) for m in a],
            b=[json.dumps(m, sort_keys=True) for m in b],
            autojunk=False,
        )
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                continue
            for k in range(max(i2 - i1, j2 - j1)):
                left = a[i1 + k] if i1 + k < i2 else None
                right = b[j1 + k] if j1 + k < j2 else None
                index = i1 + k if left is not None else j1 + k
                found.append(Difference(session, key[0], key[1], index, left, right))
    return found


async def areplay(
    path: str | Path,
    *,
    personas: Sequence[Persona | str | Path] | None = None,
) -> ReplayReport:
    """Replay a recording with no model running and report what differs.

    Args:
        path: A recording made with `Recorder`.
        personas: Personas (or persona files) to use instead of the recorded
            ones with the same id, e.g. an edited version, to see what the
            edit changes.

    Raises:
        IntegrationError: The file is not a readable recording.
        PersonaFileError: A persona file given does not load.
    """
    path = Path(path)
    entries = _read(path)
    header = entries[0]
    feed = _Feed()
    gates: dict[tuple[int, str, str], deque[Gate | None]] = defaultdict(deque)
    incoming: dict[int, list[dict[str, Any]]] = defaultdict(list)
    outgoing: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries[1:]:
        kind, session = entry.get("kind"), int(entry.get("session", 0))
        if kind == "in":
            incoming[session].append(entry)
        elif kind == "out":
            outgoing[session].append(entry["message"])
        elif kind == "model":
            feed.calls[(session, str(entry["npc"]), str(entry["request"]))].append(entry)
        elif kind == "gate":
            raw = entry.get("gate")
            gate = Gate(raw["reason"], float(raw["retry_after"])) if raw else None
            gates[(session, str(entry["npc"]), str(entry["request"]))].append(gate)
    recorded_blobs = {
        m["blob"]: (session, m.get("reply_to"))
        for session, messages in outgoing.items()
        for m in messages
        if m.get("type") == "saved"
    }
    report = ReplayReport(path=path)
    replayed_blobs: dict[tuple[int, Any], str] = {}
    with tempfile.TemporaryDirectory(prefix="personae-replay-") as home:
        server = _replay_server(
            _personas(header, personas), header, feed, _ReplayRecorder(gates), Path(home)
        )
        try:
            for number in sorted({*incoming, *outgoing}):
                sent: list[dict[str, Any]] = []
                session = await _replay_session(
                    server, number, incoming[number], sent, recorded_blobs, replayed_blobs
                )
                await session.close()
                report.sessions += 1
                report.received += len(incoming[number])
                want, got = _groups(outgoing[number]), _groups(sent)
                report.expected += sum(len(group) for group in want.values())
                report.actual += sum(len(group) for group in got.values())
                report.differences += _compare(number, want, got)
        finally:
            await server.aclose()
    return report


async def _replay_session(
    server: GameServer,
    number: int,
    incoming: list[dict[str, Any]],
    sent: list[dict[str, Any]],
    recorded_blobs: dict[str, tuple[int, Any]],
    replayed_blobs: dict[tuple[int, Any], str],
) -> Any:
    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message.get("type") == "saved":
            replayed_blobs[(number, message.get("reply_to"))] = message["blob"]

    session = server.session(send)
    session.number = number
    for i, entry in enumerate(incoming):
        data: str | bytes = (
            base64.b64decode(entry["bytes"]) if "bytes" in entry else str(entry.get("data", ""))
        )
        data = _with_replayed_blob(data, recorded_blobs, replayed_blobs)
        await session.receive(data)
        following = incoming[i + 1] if i + 1 < len(incoming) else None
        # A cancel must find its request still running, as it did when recorded.
        if following is None or '"cancel"' not in str(following.get("data", "")):
            await session.drain()
    await session.drain()
    return session


def _with_replayed_blob(
    data: str | bytes,
    recorded: dict[str, tuple[int, Any]],
    replayed: dict[tuple[int, Any], str],
) -> str | bytes:
    """Swap a recorded save blob in a `load` for the blob the replay saved at that point."""
    if isinstance(data, bytes) or '"load"' not in data:
        return data
    try:
        message = json.loads(data)
    except ValueError:
        return data
    if not isinstance(message, dict) or message.get("type") != "load":
        return data
    source = recorded.get(str(message.get("blob")))
    if source is None or source not in replayed:
        return data
    return json.dumps({**message, "blob": replayed[source]})


def replay(
    path: str | Path, *, personas: Sequence[Persona | str | Path] | None = None
) -> ReplayReport:
    """Blocking `areplay`, for the command line and scripts."""
    return asyncio.run(areplay(path, personas=personas))
