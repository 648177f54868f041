"""Latency of game NPC replies through each transport, against the model's own latency.

A fake streaming chat model with a fixed time to first token and a fixed
token rate stands in for the LLM. The same model is first timed on its own
(in this process, with as many streams at once as NPCs), then behind a
`GameServer` in a separate process, reached over stdio, TCP, WebSocket and
HTTP + SSE. For 1 and for 50 NPCs, spoken to all at once (one `say` to
each, all sent together on one connection, as when a crowd witnesses one
event) and, with `--spread`, one after another over that many seconds (as
players talk to NPCs in a busy scene), it measures, per request, the time
to the first `sentence` and to the final `reply`, and prints p50/p95 and their
ratio to the bare model's p50/p95: what the framework (agent, prompt,
sentence splitting, protocol, transport) adds. The `no_transport` row calls
a `GameSession` directly in this process, to tell the cost of the agent
and the dispatcher from the cost of the transports. The `langgraph_only`
row runs the same model in LangChain's `create_agent` with a SQLite history
per NPC and nothing of personae: the floor the chosen stack sets on this
machine, measured in the same run.

    python benchmarks/game_latency.py [--rounds 5] [--ttft 0.3] [--rate 40] [--spread 1]
                                      [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable

ROOT = Path(__file__).resolve().parent.parent
PERSONA = ROOT / "examples" / "personas" / "innkeeper.yaml"
REPLY = ("Aye, I have a room for you. Two silver a night, breakfast included. "
         "The sheets are fresh and the fire is lit.")
TRANSPORTS = ("stdio", "tcp", "websocket", "http_sse")
ROWS = ("langgraph_only", "no_transport", *TRANSPORTS)
_SENTENCE_DONE = re.compile(r"[.!?][\"')\]]*\s")


class PacedChatModel(BaseChatModel):
    """A chat model that streams a fixed reply word by word at a fixed pace.

    Waits `ttft` seconds before the first token, then `1 / rate` seconds
    between tokens (a token is a word with its leading space).
    """

    ttft: float = 0.3
    rate: float = 40.0
    reply: str = REPLY

    @property
    def _llm_type(self) -> str:
        return "paced-fake"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self

    def tokens(self) -> list[str]:
        words = self.reply.split(" ")
        return [words[0]] + [" " + word for word in words[1:]]

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        time.sleep(self.ttft + len(self.tokens()) / self.rate)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        time.sleep(self.ttft)
        for i, token in enumerate(self.tokens()):
            if i:
                time.sleep(1.0 / self.rate)
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        await asyncio.sleep(self.ttft)
        tokens = self.tokens()
        for i, token in enumerate(tokens):
            if i:
                await asyncio.sleep(1.0 / self.rate)
            chunk = ChatGenerationChunk(message=AIMessageChunk(
                content=token, chunk_position="last" if i == len(tokens) - 1 else None))
            if run_manager is not None:
                await run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the bare model -------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """How the NPCs are spoken to: `rounds` measured rounds (after a warm-up), each
    speaking to every NPC once; all in one frame (`spread` 0) or one after another,
    evenly over `spread` seconds."""

    rounds: int
    spread: float = 0.0

    async def wait_turn(self, i: int, npcs: int) -> None:
        if self.spread:
            await asyncio.sleep(self.spread * i / npcs)


async def _bare_once(model: PacedChatModel, load: Load, i: int,
                     npcs: int) -> tuple[float, float]:
    await load.wait_turn(i, npcs)
    start = time.perf_counter()
    first = None
    text = ""
    async for chunk in model.astream([HumanMessage("Have you got a room?")]):
        text += str(chunk.content)
        if first is None and _SENTENCE_DONE.search(text):
            first = time.perf_counter() - start
    done = time.perf_counter() - start
    return (first if first is not None else done), done


async def bare_model(model: PacedChatModel, npcs: int, load: Load) -> dict[str, list[float]]:
    firsts: list[float] = []
    finals: list[float] = []
    for r in range(load.rounds + 1):
        timed = await asyncio.gather(*[_bare_once(model, load, i, npcs) for i in range(npcs)])
        if r == 0:
            continue  # warm-up, as for the server
        for first, final in timed:
            firsts.append(first)
            finals.append(final)
    return {"first_sentence": firsts, "reply": finals}


# -- the chosen stack alone -----------------------------------------------------------


async def _graph_once(agent: Any, load: Load, i: int, npcs: int) -> tuple[float, float]:
    await load.wait_turn(i, npcs)
    start = time.perf_counter()
    first = None
    text = ""
    async for mode, payload in agent.astream(
            {"messages": [HumanMessage("Have you got a room for the night?")]},
            {"configurable": {"thread_id": "bench"}}, stream_mode=["messages", "values"],
            durability="exit"):
        if mode != "messages":
            continue
        text += str(payload[0].content)
        if first is None and _SENTENCE_DONE.search(text):
            first = time.perf_counter() - start
    done = time.perf_counter() - start
    return (first if first is not None else done), done


async def langgraph_only(model: PacedChatModel, npcs: int, load: Load,
                         home: Path) -> dict[str, list[float]]:
    """LangChain's `create_agent` with a SQLite history per NPC and no personae code.

    What the chosen stack costs by itself: the same model, the same
    streaming, one durable history per NPC (as personae keeps), no prompt,
    lore, safety, middleware or protocol: the floor personae builds on.
    """
    import aiosqlite
    from langchain.agents import create_agent
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    home.mkdir(parents=True, exist_ok=True)
    conns = [await aiosqlite.connect(str(home / f"npc-{i}.sqlite")) for i in range(npcs)]
    try:
        agents = []
        for conn in conns:
            saver = AsyncSqliteSaver(conn)
            await saver.setup()
            await conn.execute("PRAGMA synchronous=NORMAL")
            agents.append(create_agent(model, [], system_prompt="You are an innkeeper.",
                                       checkpointer=saver))
        firsts: list[float] = []
        finals: list[float] = []
        for r in range(load.rounds + 1):
            timed = await asyncio.gather(*[_graph_once(agent, load, i, npcs)
                                           for i, agent in enumerate(agents)])
            if r == 0:
                continue
            for first, final in timed:
                firsts.append(first)
                finals.append(final)
        return {"first_sentence": firsts, "reply": finals}
    finally:
        for conn in conns:
            await conn.close()


# -- the server process ---------------------------------------------------------------


def _game_server(npcs: int, ttft: float, rate: float, home: Path) -> Any:
    from personae.integrations.game.server import GameServer
    from personae.personas.loading import load_persona

    base = load_persona(PERSONA)
    personas = [base.model_copy(update={"id": f"npc-{i}"}) for i in range(npcs)]
    return GameServer(personas, model=PacedChatModel(ttft=ttft, rate=rate), home=home,
                      memory=False)


async def _serve(role: str, npcs: int, ttft: float, rate: float, home: Path) -> None:
    from personae.integrations.game.transports import claim_stdout, serve_stdio
    from personae.integrations.game.transports.tcp import TcpListener
    from personae.integrations.game.transports.web import HttpListener

    server = _game_server(npcs, ttft, rate, home)
    try:
        await server.start()  # as `personae game` does
        if role == "stdio":
            await serve_stdio(server, stdout=claim_stdout())
            return
        async with TcpListener(server) as tcp, HttpListener(server) as http:
            print(json.dumps({"tcp": tcp.port, "http": http.port}), flush=True)
            # Serve until the benchmark closes our stdin.
            await asyncio.to_thread(sys.stdin.read)
    finally:
        await server.aclose()


# -- the game side --------------------------------------------------------------------


class _Timings:
    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.first: dict[str, float] = {}
        self.final: dict[str, float] = {}
        self.done = asyncio.Event()
        self.expected = 0
        self.errors: list[dict[str, Any]] = []

    def start(self, ids: list[str]) -> None:
        self.sent.clear()
        self.first.clear()
        self.final.clear()
        self.done = asyncio.Event()
        self.expected = len(ids)

    def on_message(self, message: dict[str, Any]) -> None:
        now = time.perf_counter()
        rid = message.get("reply_to")
        if rid not in self.sent:
            return
        kind = message.get("type")
        if kind == "sentence":
            self.first.setdefault(rid, now - self.sent[rid])
        elif kind in ("reply", "no_response", "error"):
            if kind != "reply":
                self.errors.append(message)
            self.final[rid] = now - self.sent[rid]
            self.first.setdefault(rid, self.final[rid])
            if len(self.final) >= self.expected:
                self.done.set()


async def _drive(send: Any, timings: _Timings, npcs: int, load: Load,
                 timeout: float) -> dict[str, list[float]]:
    """Say something to every NPC as `load` says, `load.rounds` times (after a warm-up round)."""
    firsts: list[float] = []
    finals: list[float] = []
    for r in range(load.rounds + 1):
        ids = [f"r{r}-n{i}" for i in range(npcs)]
        timings.start(ids)

        async def say(i: int, rid: str) -> None:
            await load.wait_turn(i, npcs)
            timings.sent[rid] = time.perf_counter()
            await send({"type": "say", "id": rid, "npc": f"npc-{i}",
                        "player": {"id": "bench", "name": "Bench"},
                        "text": "Have you got a room for the night?"})

        # All at once, as a game does when many NPCs are spoken to in one frame (for
        # HTTP this means concurrent POSTs, not one after the other).
        await asyncio.gather(*(say(i, rid) for i, rid in enumerate(ids)))
        await asyncio.wait_for(timings.done.wait(), timeout)
        if r == 0:
            continue  # warm-up: agents and their histories are created now
        firsts.extend(timings.first[i] for i in ids)
        finals.extend(timings.final[i] for i in ids)
    if timings.errors:
        raise RuntimeError(f"the server did not reply normally: {timings.errors[:3]}")
    return {"first_sentence": firsts, "reply": finals}


HELLO = {"type": "hello", "id": "hello", "protocol": 1, "client": "game_latency",
         "world": "bench", "capabilities": {"streaming": False, "sentences": True}}


async def _over_lines(reader: asyncio.StreamReader, write: Any, npcs: int, load: Load,
                      timeout: float) -> dict[str, list[float]]:
    timings = _Timings()
    welcomed = asyncio.Event()

    async def read() -> None:
        while True:
            line = await reader.readline()
            if not line:
                return
            message = json.loads(line)
            if message.get("type") == "welcome":
                welcomed.set()
            timings.on_message(message)

    reading = asyncio.create_task(read())

    async def send(message: dict[str, Any]) -> None:
        await write((json.dumps(message) + "\n").encode())

    await send(HELLO)
    await asyncio.wait_for(welcomed.wait(), timeout)
    try:
        return await _drive(send, timings, npcs, load, timeout)
    finally:
        reading.cancel()


def _server_argv(role: str, npcs: int, ttft: float, rate: float, home: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--serve", role, "--npcs", str(npcs),
            "--ttft", str(ttft), "--rate", str(rate), "--home", str(home)]


async def through_stdio(npcs: int, ttft: float, rate: float, load: Load, home: Path,
                        timeout: float) -> dict[str, list[float]]:
    proc = await asyncio.create_subprocess_exec(
        *_server_argv("stdio", npcs, ttft, rate, home), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, limit=1 << 20)
    assert proc.stdin is not None and proc.stdout is not None
    stdin = proc.stdin

    async def write(data: bytes) -> None:
        stdin.write(data)
        await stdin.drain()

    try:
        return await _over_lines(proc.stdout, write, npcs, load, timeout)
    finally:
        stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def through_tcp(port: int, npcs: int, load: Load,
                      timeout: float) -> dict[str, list[float]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)

    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    try:
        return await _over_lines(reader, write, npcs, load, timeout)
    finally:
        writer.close()


async def through_websocket(port: int, npcs: int, load: Load,
                            timeout: float) -> dict[str, list[float]]:
    from websockets.asyncio.client import connect

    timings = _Timings()
    async with connect(f"ws://127.0.0.1:{port}/v1/game/ws") as ws:
        await ws.send(json.dumps(HELLO))
        json.loads(await asyncio.wait_for(ws.recv(), timeout))

        async def read() -> None:
            async for frame in ws:
                timings.on_message(json.loads(frame))

        reading = asyncio.create_task(read())

        async def send(message: dict[str, Any]) -> None:
            await ws.send(json.dumps(message))

        try:
            return await _drive(send, timings, npcs, load, timeout)
        finally:
            reading.cancel()


async def through_http_sse(port: int, npcs: int, load: Load,
                           timeout: float) -> dict[str, list[float]]:
    import httpx

    timings = _Timings()
    welcomed = asyncio.Event()
    limits = httpx.Limits(max_connections=npcs + 4)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=timeout,
                                 limits=limits) as client:
        opened = (await client.post("/v1/game/sessions")).json()

        async def read() -> None:
            async with client.stream("GET", opened["events"]) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        message = json.loads(line[6:])
                        if message.get("type") == "welcome":
                            welcomed.set()
                        timings.on_message(message)

        reading = asyncio.create_task(read())

        async def send(message: dict[str, Any]) -> None:
            response = await client.post(opened["messages"], json=message)
            response.raise_for_status()

        try:
            await send(HELLO)
            await asyncio.wait_for(welcomed.wait(), timeout)
            return await _drive(send, timings, npcs, load, timeout)
        finally:
            reading.cancel()


async def in_process(npcs: int, ttft: float, rate: float, load: Load, home: Path,
                     timeout: float) -> dict[str, list[float]]:
    """A `GameSession` called directly: the framework without any transport."""
    server = _game_server(npcs, ttft, rate, home)
    await server.start()
    timings = _Timings()
    welcomed = asyncio.Event()

    async def deliver(message: dict[str, Any]) -> None:
        if message.get("type") == "welcome":
            welcomed.set()
        timings.on_message(message)

    session = server.session(deliver)

    async def send(message: dict[str, Any]) -> None:
        await session.receive(json.dumps(message))

    try:
        await send(HELLO)
        await asyncio.wait_for(welcomed.wait(), timeout)
        return await _drive(send, timings, npcs, load, timeout)
    finally:
        await session.close()
        await server.aclose()


async def through_network(npcs: int, ttft: float, rate: float, load: Load, home: Path,
                          timeout: float) -> dict[str, dict[str, list[float]]]:
    proc = await asyncio.create_subprocess_exec(
        *_server_argv("net", npcs, ttft, rate, home), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ports = json.loads(await asyncio.wait_for(proc.stdout.readline(), 120))
        return {
            "tcp": await through_tcp(ports["tcp"], npcs, load, timeout),
            "websocket": await through_websocket(ports["http"], npcs, load, timeout),
            "http_sse": await through_http_sse(ports["http"], npcs, load, timeout),
        }
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


# -- report ---------------------------------------------------------------------------


def _summary(values: list[float], bare: list[float]) -> dict[str, float]:
    p50, p95 = _pct(values, 0.5), _pct(values, 0.95)
    b50, b95 = _pct(bare, 0.5), _pct(bare, 0.95)
    return {"p50_ms": round(p50 * 1000, 1), "p95_ms": round(p95 * 1000, 1),
            "ratio_p50": round(p50 / b50, 3), "ratio_p95": round(p95 / b95, 3)}


def _scenes(npcs: int, spread: float) -> list[tuple[str, float]]:
    """One frame for everyone; with more than one NPC, also one after another."""
    scenes = [("at once", 0.0)]
    if npcs > 1 and spread > 0:
        scenes.append((f"one after another over {spread:g} s", spread))
    return scenes


async def _scene(model: PacedChatModel, npcs: int, load: Load, home: Path,
                 timeout: float) -> dict[str, Any]:
    ttft, rate = model.ttft, model.rate
    bare = await bare_model(model, npcs, load)
    row: dict[str, Any] = {"bare_model": {
        kind: {"p50_ms": round(_pct(v, 0.5) * 1000, 1),
               "p95_ms": round(_pct(v, 0.95) * 1000, 1)} for kind, v in bare.items()}}
    measured = {
        "langgraph_only": await langgraph_only(model, npcs, load, home / "graph"),
        "no_transport": await in_process(npcs, ttft, rate, load, home / "direct", timeout),
        "stdio": await through_stdio(npcs, ttft, rate, load, home / "stdio", timeout),
    }
    measured.update(await through_network(npcs, ttft, rate, load, home / "net", timeout))
    for name in ROWS:
        row[name] = {kind: _summary(measured[name][kind], bare[kind])
                     for kind in ("first_sentence", "reply")}
    # What the transport alone adds: each against the same server without one.
    for transport in TRANSPORTS:
        for kind in ("first_sentence", "reply"):
            row[transport][kind]["vs_no_transport_p50"] = round(
                _pct(measured[transport][kind], 0.5)
                / _pct(measured["no_transport"][kind], 0.5), 3)
    return row


async def run(npc_counts: list[int], ttft: float, rate: float, rounds: int, spread: float,
              timeout: float) -> dict[str, Any]:
    model = PacedChatModel(ttft=ttft, rate=rate)
    result: dict[str, Any] = {"ttft_s": ttft, "tokens_per_s": rate,
                              "reply_tokens": len(model.tokens()), "rounds": rounds,
                              "scenes": []}
    with tempfile.TemporaryDirectory() as tmp:
        for npcs in npc_counts:
            for n, (label, seconds) in enumerate(_scenes(npcs, spread)):
                row = await _scene(model, npcs, Load(rounds, seconds),
                                   Path(tmp) / f"{npcs}-{n}", timeout)
                result["scenes"].append({"npcs": npcs, "spoken_to": label,
                                         "spread_s": seconds, **row})
    worst = max(scene[t][k]["ratio_p50"] for scene in result["scenes"]
                for t in TRANSPORTS for k in ("first_sentence", "reply"))
    result["worst_overhead_p50_pct"] = round((worst - 1) * 100, 1)
    return result


def _print(result: dict[str, Any]) -> None:
    print(f"fake model: {result['ttft_s'] * 1000:.0f} ms to first token, "
          f"{result['tokens_per_s']:g} tokens/s, {result['reply_tokens']} tokens per reply; "
          f"{result['rounds']} rounds")
    for row in result["scenes"]:
        print(f"\n{row['npcs']} NPC(s), spoken to {row['spoken_to']}")
        print(f"  {'':<16}{'first sentence p50/p95 (x model)':<40}{'reply p50/p95 (x model)'}")
        b = row["bare_model"]
        print(f"  {'bare model':<16}"
              f"{b['first_sentence']['p50_ms']:>7.1f} / {b['first_sentence']['p95_ms']:<7.1f} ms"
              f"{'':<21}{b['reply']['p50_ms']:>7.1f} / {b['reply']['p95_ms']:.1f} ms")
        for name in ROWS:
            f, r = row[name]["first_sentence"], row[name]["reply"]
            print(f"  {name:<16}{f['p50_ms']:>7.1f} / {f['p95_ms']:<7.1f} ms "
                  f"({f['ratio_p50']:.2f} / {f['ratio_p95']:.2f})"
                  f"{'':<6}{r['p50_ms']:>7.1f} / {r['p95_ms']:.1f} ms "
                  f"({r['ratio_p50']:.2f} / {r['ratio_p95']:.2f})")
        added = ", ".join(
            f"{t} {row[t]['first_sentence']['vs_no_transport_p50']:.2f}"
            f"/{row[t]['reply']['vs_no_transport_p50']:.2f}" for t in TRANSPORTS)
        print(f"  transport alone (p50 first sentence/reply vs no_transport): {added}")
    print(f"\nworst p50 overhead over the bare model: {result['worst_overhead_p50_pct']}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ttft", type=float, default=0.3, help="seconds to first token")
    parser.add_argument("--rate", type=float, default=40.0, help="tokens per second")
    parser.add_argument("--npcs", default="1,50", help="comma-separated NPC counts")
    parser.add_argument("--spread", type=float, default=1.0,
                        help="also speak to the NPCs one after another over this many "
                             "seconds (0: only all at once)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", choices=["stdio", "net"], help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    if args.serve:
        asyncio.run(_serve(args.serve, int(args.npcs), args.ttft, args.rate, args.home))
        return
    if args.quick:
        args.rounds, args.ttft, args.rate, args.npcs, args.spread = 1, 0.05, 400.0, "1,3", 0.1
    counts = [int(n) for n in args.npcs.split(",")]
    result = asyncio.run(run(counts, args.ttft, args.rate, args.rounds, args.spread,
                             args.timeout))
    _print(result)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
