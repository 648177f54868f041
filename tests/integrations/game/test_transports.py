"""Game protocol transports over real sockets and pipes on 127.0.0.1: one server, many games."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from personae.integrations.game.protocol import MAX_MESSAGE_BYTES, server_adapter
from personae.integrations.game.server import GameServer
from personae.integrations.game.transports import TcpListener, serve_stdio, serve_tcp
from personae.integrations.game.transports._jsonlines import LineSplitter, TooLarge
from personae.integrations.game.transports._outbox import Outbox
from personae.personas.loading import load_persona
from personae.testing import FakeChatModel

ROOT = Path(__file__).resolve().parents[3]
INNKEEPER = ROOT / "examples" / "personas" / "innkeeper.yaml"
NPC = "brenna-innkeeper"
ANSWER = "Aye, a room is two silver. Breakfast is included."
HELLO = {"type": "hello", "id": "h", "protocol": 1, "client": "tests"}
FINAL = ("reply", "no_response", "error")
T = 20.0  # seconds any single wait may take


def say(rid: str, text: str = "Have you got a room?") -> dict[str, Any]:
    return {"type": "say", "id": rid, "npc": NPC, "text": text}


def line(message: dict[str, Any]) -> bytes:
    return (json.dumps(message) + "\n").encode()


@pytest.fixture
async def game_server(tmp_path: Path) -> AsyncIterator[GameServer]:
    server = GameServer([load_persona(INNKEEPER)], model=FakeChatModel(default=ANSWER),
                        home=tmp_path / "home", memory=False)
    yield server
    await server.aclose()


class LineClient:
    """A game on the other end of a JSON-lines stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, *items: dict[str, Any] | bytes) -> None:
        for item in items:
            self.writer.write(item if isinstance(item, bytes) else line(item))
        await self.writer.drain()

    async def next(self) -> dict[str, Any] | None:
        raw = await asyncio.wait_for(self.reader.readline(), T)
        if not raw:
            return None
        message: dict[str, Any] = json.loads(raw)
        server_adapter.validate_python(message)  # everything sent follows the protocol
        return message

    async def until(self, rid: str | None, kinds: tuple[str, ...] = FINAL,
                    limit: int = 50) -> list[dict[str, Any]]:
        """Read messages until one of `kinds` answers `rid` (None: any); bounded."""
        seen = []
        for _ in range(limit):
            message = await self.next()
            assert message is not None, f"connection closed; got {seen}"
            seen.append(message)
            if message["type"] in kinds and (rid is None or message.get("reply_to") == rid):
                return seen
        raise AssertionError(f"no {kinds} for {rid!r} in {seen}")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await asyncio.wait_for(self.writer.wait_closed(), T)


async def connect(listener: TcpListener) -> LineClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port, limit=1 << 20)
    return LineClient(reader, writer)


async def hello(client: LineClient) -> None:
    await client.send(HELLO)
    (welcome,) = await client.until("h", ("welcome", "error"))
    assert welcome["type"] == "welcome" and welcome["npcs"] == [NPC]


# -- framing --------------------------------------------------------------------------


def test_splitter_joins_chunks_and_drops_blank_lines() -> None:
    splitter = LineSplitter(100)
    assert splitter.feed(b'{"a":') == []
    assert splitter.feed(b' 1}\r\n\n  \n{"b": 2}\n{"c"') == [b'{"a": 1}', b'{"b": 2}']
    assert splitter.finish() == [b'{"c"']


def test_splitter_skips_an_over_long_line_once_and_goes_on() -> None:
    splitter = LineSplitter(10)
    out = splitter.feed(b"x" * 8)
    assert out == []
    out = splitter.feed(b"y" * 8)  # over the limit before any newline: reported at once
    assert len(out) == 1 and isinstance(out[0], TooLarge) and out[0].size == 16
    assert splitter.feed(b"z" * 50) == []  # still the same line: no second report
    assert splitter.feed(b"zz\nok\n") == [b"ok"]
    exact = splitter.feed(b"a" * 10 + b"\n" + b"b" * 11 + b"\n")
    assert exact[0] == b"a" * 10
    assert isinstance(exact[1], TooLarge)


async def test_outbox_gives_up_on_a_peer_that_does_not_read() -> None:
    never = asyncio.Event()

    async def stuck_write(text: str) -> None:
        await never.wait()

    outbox = Outbox(stuck_write, name="stuck", max_pending=3)
    outbox.start()
    for i in range(10):  # never waits, however stuck the peer is
        await asyncio.wait_for(outbox.send({"type": "ack", "id": str(i)}), 1.0)
    assert outbox.failed.is_set()
    await outbox.aclose(timeout=0.1)


# -- TCP ------------------------------------------------------------------------------


async def test_tcp_answers_a_say_with_sentences_then_reply(game_server: GameServer) -> None:
    async with TcpListener(game_server) as listener:
        assert listener.port > 0
        client = await connect(listener)
        await hello(client)
        await client.send(say("s1"))
        messages = await client.until("s1")
        assert messages[-1]["type"] == "reply" and messages[-1]["text"] == ANSWER
        sentences = [m["text"] for m in messages if m["type"] == "sentence"]
        assert " ".join(sentences) == ANSWER
        await client.close()


async def test_tcp_bad_lines_get_errors_and_the_session_goes_on(game_server: GameServer) -> None:
    listener = await serve_tcp(game_server)
    try:
        client = await connect(listener)
        await client.send(b"this is not json\n")
        (error,) = await client.until(None, ("error",))
        assert error["code"] == "bad_json"
        await client.send(say("early"))
        (error,) = await client.until("early", ("error",))
        assert error["code"] == "no_hello"
        await hello(client)
        await client.send({"type": "say", "id": "bad", "npc": NPC})
        (error,) = await client.until("bad", ("error",))
        assert error["code"] == "bad_message" and "text" in error["message"]
        await client.send(say("s2"))
        assert (await client.until("s2"))[-1]["type"] == "reply"
        await client.close()
    finally:
        await listener.aclose()


async def test_tcp_over_long_line_is_skipped_not_fatal(game_server: GameServer) -> None:
    async with TcpListener(game_server) as listener:
        client = await connect(listener)
        await hello(client)
        big = json.dumps(say("big", "x" * (MAX_MESSAGE_BYTES + 1000))).encode()
        # Sent in pieces, as a slow network would deliver it.
        for start in range(0, len(big), 7000):
            await client.send(big[start:start + 7000])
        await client.send(b"\n", say("after"))
        messages = await client.until("after")
        errors = [m for m in messages if m["type"] == "error"]
        assert [e["code"] for e in errors] == ["too_large"]
        assert str(MAX_MESSAGE_BYTES) in errors[0]["message"]
        assert messages[-1]["type"] == "reply"
        # A line of exactly the limit is read (and then judged on its content).
        exact = b'"' + b"y" * (MAX_MESSAGE_BYTES - 2) + b'"'
        await client.send(exact + b"\n")
        (error,) = await client.until(None, ("error",))
        assert error["code"] == "bad_message"
        await client.close()


async def test_tcp_end_of_input_finishes_replies_then_closes(game_server: GameServer) -> None:
    async with TcpListener(game_server) as listener:
        client = await connect(listener)
        await client.send(HELLO, say("s1"), say("s2", "And supper?"))
        client.writer.write_eof()
        received = []
        for _ in range(50):
            message = await client.next()
            if message is None:
                break
            received.append(message)
        finals = {m["reply_to"]: m["type"] for m in received if m["type"] == "reply"}
        assert finals == {"s1": "reply", "s2": "reply"}
        assert await client.next() is None  # the server closed its side
        await client.close()


async def test_tcp_unterminated_over_long_input_then_eof(game_server: GameServer) -> None:
    async with TcpListener(game_server) as listener:
        client = await connect(listener)
        await client.send(b"z" * (MAX_MESSAGE_BYTES + 10))
        client.writer.write_eof()
        error = await client.next()
        assert error is not None and error["code"] == "too_large"
        assert await client.next() is None
        await client.close()


async def test_tcp_a_bad_client_never_disturbs_another(game_server: GameServer) -> None:
    async with TcpListener(game_server) as listener:
        good, bad = await connect(listener), await connect(listener)
        await hello(good)
        await hello(bad)
        await good.send(say("g1"))
        await bad.send(say("b1"), b"\xff\xfe garbage\n", b"q" * (MAX_MESSAGE_BYTES * 2))
        bad.writer.transport.abort()  # gone without a goodbye, mid-answer
        messages = await good.until("g1")
        assert messages[-1]["type"] == "reply"
        assert all(m.get("reply_to") in ("g1", None) for m in messages)
        # Both answer at once and each gets only its own messages.
        third = await connect(listener)
        await hello(third)
        await good.send(say("g2"))
        await third.send(say("t1"))
        assert {m["reply_to"] for m in await good.until("g2")} == {"g2"}
        assert {m["reply_to"] for m in await third.until("t1")} == {"t1"}
        await good.close()
        await third.close()


# -- stdio ----------------------------------------------------------------------------


async def test_stdio_serves_until_end_of_input(game_server: GameServer) -> None:
    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    with os.fdopen(in_read, "rb", buffering=0) as stdin, \
            os.fdopen(out_write, "wb", buffering=0) as stdout:
        payload = b"".join([line(HELLO), b"{broken\n", b"w" * (MAX_MESSAGE_BYTES + 1) + b"\n",
                            line(say("s1"))])

        def feed() -> None:
            os.write(in_write, payload)
            os.close(in_write)

        serving = asyncio.create_task(serve_stdio(game_server, stdin=stdin, stdout=stdout))
        await asyncio.to_thread(feed)
        await asyncio.wait_for(serving, T)
    with os.fdopen(out_read, "rb") as out:
        messages = [json.loads(raw) for raw in out.read().splitlines()]
    assert [m["type"] for m in messages[:3]] == ["welcome", "error", "error"]
    assert [m["code"] for m in messages[1:3]] == ["bad_json", "too_large"]
    assert messages[-1]["type"] == "reply" and messages[-1]["reply_to"] == "s1"


# -- WebSocket and HTTP + SSE (uvicorn on 127.0.0.1) ----------------------------------


@pytest.fixture
async def web(game_server: GameServer) -> AsyncIterator[Any]:
    pytest.importorskip("fastapi", reason='needs the game extra: pip install "personae[game]"')
    from personae.integrations.game.transports.web import HttpListener

    listener = HttpListener(game_server)
    await listener.start()
    yield listener
    await listener.aclose()


async def ws_until(ws: Any, rid: str | None, kinds: tuple[str, ...] = FINAL,
                   limit: int = 50) -> list[dict[str, Any]]:
    seen = []
    for _ in range(limit):
        message = json.loads(await asyncio.wait_for(ws.recv(), T))
        server_adapter.validate_python(message)
        seen.append(message)
        if message["type"] in kinds and (rid is None or message.get("reply_to") == rid):
            return seen
    raise AssertionError(f"no {kinds} for {rid!r} in {seen}")


async def test_websocket_session(web: Any) -> None:
    websockets = pytest.importorskip("websockets.asyncio.client")
    url = f"ws://127.0.0.1:{web.port}/v1/game/ws"
    async with websockets.connect(url, max_size=None) as ws, \
            websockets.connect(url) as other:
        await ws.send(json.dumps(HELLO))
        assert (await ws_until(ws, "h", ("welcome",)))[-1]["npcs"] == [NPC]
        await ws.send("x" * (MAX_MESSAGE_BYTES + 1))
        assert (await ws_until(ws, None, ("error",)))[-1]["code"] == "too_large"
        await ws.send("[1, 2")
        assert (await ws_until(ws, None, ("error",)))[-1]["code"] == "bad_json"
        await other.send(json.dumps(HELLO))
        await ws_until(other, "h", ("welcome",))
        await ws.send(json.dumps(say("w1")))
        await other.send(json.dumps(say("o1")))
        mine = await ws_until(ws, "w1")
        theirs = await ws_until(other, "o1")
        assert mine[-1]["text"] == ANSWER and theirs[-1]["text"] == ANSWER
        assert {m["reply_to"] for m in mine} == {"w1"}
        assert {m["reply_to"] for m in theirs} == {"o1"}
        await other.close()  # one leaves; the other carries on
        await ws.send(json.dumps(say("w2", "Bread too?")))
        assert (await ws_until(ws, "w2"))[-1]["type"] == "reply"


async def sse_messages(lines: Any, until: str, limit: int = 200) -> list[tuple[int, dict]]:
    """Read SSE `data:` events (with their ids) until a final message answers `until`."""
    out: list[tuple[int, dict[str, Any]]] = []
    event_id = 0
    for _ in range(limit):
        text = await asyncio.wait_for(lines.__anext__(), T)
        if text.startswith("id: "):
            event_id = int(text[4:])
        elif text.startswith("data: "):
            message = json.loads(text[6:])
            server_adapter.validate_python(message)
            out.append((event_id, message))
            if message.get("reply_to") == until and message["type"] in (*FINAL, "welcome"):
                return out
    raise AssertionError(f"no final message for {until!r} in {out}")


async def test_http_sse_session(web: Any) -> None:
    httpx = pytest.importorskip("httpx")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}", timeout=T) as http:
        opened = await http.post("/v1/game/sessions")
        assert opened.status_code == 201
        info = opened.json()
        async with http.stream("GET", info["events"]) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = response.aiter_lines()
            assert (await http.post(info["messages"], json=HELLO)).status_code == 202
            assert (await sse_messages(events, "h"))[-1][1]["type"] == "welcome"
            too_big = await http.post(info["messages"], content=b"{" * (MAX_MESSAGE_BYTES + 1))
            assert too_big.status_code == 413 and too_big.json()["code"] == "too_large"
            assert (await http.post(info["messages"], content=b"nope")).status_code == 202
            await http.post(info["messages"], json=say("p1"))
            got = await sse_messages(events, "p1")
            kinds = [m["type"] for _, m in got]
            assert "error" in kinds and kinds[-1] == "reply"
            assert [m["code"] for _, m in got if m["type"] == "error"] == ["bad_json"]
            last_id = got[-1][0]
        # A reader that comes back gets what it missed after its last event id.
        await http.post(info["messages"], json=say("p2", "Any stew?"))
        async with http.stream("GET", info["events"],
                               headers={"Last-Event-ID": str(last_id)}) as again:
            replayed = await sse_messages(again.aiter_lines(), "p2")
            assert all(event_id > last_id for event_id, _ in replayed)
            assert {m["reply_to"] for _, m in replayed} == {"p2"}
        assert (await http.delete(f"/v1/game/sessions/{info['session']}")).status_code == 204
        gone = await http.post(info["messages"], json=say("p3"))
        assert gone.status_code == 404 and "POST /v1/game/sessions" in gone.json()["error"]
        assert (await http.get(info["events"])).status_code == 404


async def test_closing_a_session_ends_its_event_stream(web: Any) -> None:
    httpx = pytest.importorskip("httpx")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}", timeout=T) as http:
        info = (await http.post("/v1/game/sessions")).json()
        async with http.stream("GET", info["events"]) as events:
            lines = events.aiter_lines()
            assert (await asyncio.wait_for(lines.__anext__(), T)).startswith(":")
            await http.delete(f"/v1/game/sessions/{info['session']}")
            rest = [text async for text in _bounded(lines, 20)]
            assert not any(text.startswith("data:") for text in rest)


async def test_idle_http_sessions_expire_and_the_number_open_is_capped(
    game_server: GameServer,
) -> None:
    httpx = pytest.importorskip("httpx")
    from personae.integrations.game.transports.web import HttpListener

    async with HttpListener(game_server, session_ttl=0.0, max_sessions=1) as listener, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{listener.port}", timeout=T) as http:
        first = (await http.post("/v1/game/sessions")).json()
        await asyncio.sleep(0.05)
        second = await http.post("/v1/game/sessions")  # the idle first one makes room
        assert second.status_code == 201
        assert (await http.post(first["messages"], json=HELLO)).status_code == 404
        async with http.stream("GET", second.json()["events"]) as response:
            await asyncio.wait_for(response.aiter_lines().__anext__(), T)
            full = await http.post("/v1/game/sessions")  # read from: not idle, kept
            assert full.status_code == 503 and "DELETE" in full.json()["error"]


async def _bounded(lines: Any, limit: int) -> AsyncIterator[str]:
    for _ in range(limit):
        try:
            yield await asyncio.wait_for(lines.__anext__(), T)
        except StopAsyncIteration:
            return
    raise AssertionError("the event stream did not end")


async def test_one_server_over_tcp_websocket_and_sse_at_once(
    game_server: GameServer, web: Any
) -> None:
    websockets = pytest.importorskip("websockets.asyncio.client")
    httpx = pytest.importorskip("httpx")
    async with TcpListener(game_server) as listener, \
            websockets.connect(f"ws://127.0.0.1:{web.port}/v1/game/ws") as ws, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}", timeout=T) as http:
        tcp = await connect(listener)
        info = (await http.post("/v1/game/sessions")).json()
        async with http.stream("GET", info["events"]) as response:
            events = response.aiter_lines()
            await hello(tcp)
            await ws.send(json.dumps(HELLO))
            await ws_until(ws, "h", ("welcome",))
            await http.post(info["messages"], json=HELLO)
            await sse_messages(events, "h")

            await tcp.send(say("t"))
            await ws.send(json.dumps(say("w")))
            await http.post(info["messages"], json=say("s"))
            results = await asyncio.gather(tcp.until("t"), ws_until(ws, "w"),
                                           sse_messages(events, "s"))
        assert results[0][-1]["text"] == results[1][-1]["text"] == results[2][-1][1]["text"]
        await tcp.close()


# -- the benchmark runs end to end ----------------------------------------------------


@pytest.mark.slow
def test_game_latency_benchmark_quick_smoke(tmp_path: Path) -> None:
    pytest.importorskip("fastapi", reason='needs the game extra: pip install "personae[game]"')
    env = {**os.environ, "PERSONAE_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "game_latency.py"), "--quick", "--json"],
        capture_output=True, text=True, env=env, timeout=280, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    scenes = [(row["npcs"], row["spread_s"]) for row in result["scenes"]]
    assert scenes == [(1, 0.0), (3, 0.0), (3, 0.1)]
    for row in result["scenes"]:
        for transport in ("langgraph_only", "stdio", "tcp", "websocket", "http_sse"):
            assert row[transport]["reply"]["p50_ms"] > 0
            assert row[transport]["first_sentence"]["ratio_p50"] > 0
