"""Latency of game NPC replies through each transport, against the model's own latency.

A fake streaming chat model with a fixed time to first token and a fixed
token rate stands in for the LLM. The same model is first timed on its own
(in this process, with as many streams at once as NPCs), then behind a
`GameServer` in a separate process, reached over stdio, TCP, WebSocket and
HTTP + SSE. For 1 and for 50 NPCs answering at once (one `say` to each, all
sent together on one connection) it measures, per request, the time to the
first `sentence` and to the final `reply`, and prints p50/p95 and their
ratio to the bare model's p50/p95: what the framework (agent, prompt,
sentence splitting, protocol, transport) adds. The `no_transport` row calls
a `GameSession` directly in this process, to tell the cost of the agent
and the dispatcher from the cost of the transports.

    python benchmarks/game_latency.py [--rounds 5] [--ttft 0.3] [--rate 40] [--quick] [--json]
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
ROWS = ("no_transport", *TRANSPORTS)
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


async def _bare_once(model: PacedChatModel) -> tuple[float, float]:
    start = time.perf_counter()
    first = None
    text = ""
    async for chunk in model.astream([HumanMessage("Have you got a room?")]):
        text += str(chunk.content)
        if first is None and _SENTENCE_DONE.search(text):
            first = time.perf_counter() - start
    done = time.perf_counter() - start
    return (first if first is not None else done), done


async def bare_model(model: PacedChatModel, npcs: int, rounds: int) -> dict[str, list[float]]:
    firsts: list[float] = []
    finals: list[float] = []
    for r in range(rounds + 1):
        timed = await asyncio.gather(*[_bare_once(model) for _ in range(npcs)])
        if r == 0:
            continue  # warm-up, as for the server
        for first, final in timed:
            firsts.append(first)
            finals.append(final)
    return {"first_sentence": firsts, "reply": finals}


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


async def _drive(send: Any, timings: _Timings, npcs: int, rounds: int,
                 timeout: float) -> dict[str, list[float]]:
    """Say something to every NPC at once, `rounds` times (after one warm-up round)."""
    firsts: list[float] = []
    finals: list[float] = []
    for r in range(rounds + 1):
        ids = [f"r{r}-n{i}" for i in range(npcs)]
        timings.start(ids)

        async def say(i: int, rid: str) -> None:
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


async def _over_lines(reader: asyncio.StreamReader, write: Any, npcs: int, rounds: int,
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
        return await _drive(send, timings, npcs, rounds, timeout)
    finally:
        reading.cancel()


def _server_argv(role: str, npcs: int, ttft: float, rate: float, home: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--serve", role, "--npcs", str(npcs),
            "--ttft", str(ttft), "--rate", str(rate), "--home", str(home)]


async def through_stdio(npcs: int, ttft: float, rate: float, rounds: int, home: Path,
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
        return await _over_lines(proc.stdout, write, npcs, rounds, timeout)
    finally:
        stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def through_tcp(port: int, npcs: int, rounds: int,
                      timeout: float) -> dict[str, list[float]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)

    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    try:
        return await _over_lines(reader, write, npcs, rounds, timeout)
    finally:
        writer.close()


async def through_websocket(port: int, npcs: int, rounds: int,
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
            return await _drive(send, timings, npcs, rounds, timeout)
        finally:
            reading.cancel()


async def through_http_sse(port: int, npcs: int, rounds: int,
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
            return await _drive(send, timings, npcs, rounds, timeout)
        finally:
            reading.cancel()


async def in_process(npcs: int, ttft: float, rate: float, rounds: int, home: Path,
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
        return await _drive(send, timings, npcs, rounds, timeout)
    finally:
        await session.close()
        await server.aclose()


async def through_network(npcs: int, ttft: float, rate: float, rounds: int, home: Path,
                          timeout: float) -> dict[str, dict[str, list[float]]]:
    proc = await asyncio.create_subprocess_exec(
        *_server_argv("net", npcs, ttft, rate, home), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ports = json.loads(await asyncio.wait_for(proc.stdout.readline(), 120))
        return {
            "tcp": await through_tcp(ports["tcp"], npcs, rounds, timeout),
            "websocket": await through_websocket(ports["http"], npcs, rounds, timeout),
            "http_sse": await through_http_sse(ports["http"], npcs, rounds, timeout),
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


async def run(npc_counts: list[int], ttft: float, rate: float, rounds: int,
              timeout: float) -> dict[str, Any]:
    model = PacedChatModel(ttft=ttft, rate=rate)
    result: dict[str, Any] = {"ttft_s": ttft, "tokens_per_s": rate,
                              "reply_tokens": len(model.tokens()), "rounds": rounds,
                              "npcs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for npcs in npc_counts:
            bare = await bare_model(model, npcs, rounds)
            row: dict[str, Any] = {"bare_model": {
                kind: {"p50_ms": round(_pct(v, 0.5) * 1000, 1),
                       "p95_ms": round(_pct(v, 0.95) * 1000, 1)} for kind, v in bare.items()}}
            measured = {
                "no_transport": await in_process(npcs, ttft, rate, rounds,
                                                 Path(tmp) / f"direct-{npcs}", timeout),
                "stdio": await through_stdio(npcs, ttft, rate, rounds,
                                             Path(tmp) / f"stdio-{npcs}", timeout),
            }
            measured.update(await through_network(npcs, ttft, rate, rounds,
                                                  Path(tmp) / f"net-{npcs}", timeout))
            for name in ROWS:
                row[name] = {kind: _summary(measured[name][kind], bare[kind])
                             for kind in ("first_sentence", "reply")}
            # What the transport alone adds: each against the same server without one.
            for transport in TRANSPORTS:
                for kind in ("first_sentence", "reply"):
                    row[transport][kind]["vs_no_transport_p50"] = round(
                        _pct(measured[transport][kind], 0.5)
                        / _pct(measured["no_transport"][kind], 0.5), 3)
            result["npcs"][str(npcs)] = row
    worst = max(row[t][k]["ratio_p50"] for row in result["npcs"].values()
                for t in TRANSPORTS for k in ("first_sentence", "reply"))
    result["worst_overhead_p50_pct"] = round((worst - 1) * 100, 1)
    return result


def _print(result: dict[str, Any]) -> None:
    print(f"fake model: {result['ttft_s'] * 1000:.0f} ms to first token, "
          f"{result['tokens_per_s']:g} tokens/s, {result['reply_tokens']} tokens per reply; "
          f"{result['rounds']} rounds")
    for npcs, row in result["npcs"].items():
        print(f"\n{npcs} NPC(s) answering at once")
        print(f"  {'':<14}{'first sentence p50/p95 (x model)':<40}{'reply p50/p95 (x model)'}")
        b = row["bare_model"]
        print(f"  {'bare model':<14}"
              f"{b['first_sentence']['p50_ms']:>7.1f} / {b['first_sentence']['p95_ms']:<7.1f} ms"
              f"{'':<21}{b['reply']['p50_ms']:>7.1f} / {b['reply']['p95_ms']:.1f} ms")
        for name in ROWS:
            f, r = row[name]["first_sentence"], row[name]["reply"]
            print(f"  {name:<14}{f['p50_ms']:>7.1f} / {f['p95_ms']:<7.1f} ms "
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
        args.rounds, args.ttft, args.rate, args.npcs = 1, 0.05, 400.0, "1,3"
    counts = [int(n) for n in args.npcs.split(",")]
    result = asyncio.run(run(counts, args.ttft, args.rate, args.rounds, args.timeout))
    _print(result)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
