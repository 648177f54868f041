"""The stdlib client (`client.py`) against a real GameServer, over TCP and a spawned process."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from personae.integrations.game import client as client_module
from personae.integrations.game.client import (
    ConnectionClosed,
    PersonaeClient,
    ResponseTimeout,
    ServerError,
)
from personae.integrations.game.protocol import PROTOCOL_VERSION
from personae.integrations.game.server import GameServer
from personae.integrations.game.transports import TcpListener
from personae.personas.loading import load_persona
from personae.testing import FakeChatModel

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "personas"
INNKEEPER = "brenna-innkeeper"
CLIENT_FILE = ROOT / "personae" / "integrations" / "game" / "client.py"


class SlowChatModel(FakeChatModel):
    """Answers like FakeChatModel, after a pause (to test timeouts and cancelling)."""

    __test__ = False
    pause: float = 2.0

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        await asyncio.sleep(self.pause)
        async for chunk in super()._astream(*args, **kwargs):
            yield chunk


class ServerThread:
    """A GameServer behind a TcpListener, in its own thread and event loop."""

    def __init__(self, make: Callable[[], GameServer]) -> None:
        self._make = make
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(60), "server did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "server did not stop"

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            server = self._make()
            try:
                async with TcpListener(server) as listener:
                    self.port = listener.port
                    self._ready.set()
                    await self._stop.wait()
            finally:
                await server.aclose()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the test thread
            self._error = exc
            self._ready.set()


def innkeeper_server(tmp_path: Path, model: Any, *more: str) -> Callable[[], GameServer]:
    def make() -> GameServer:
        personas = [load_persona(EXAMPLES / "innkeeper.yaml")]
        personas += [load_persona(EXAMPLES / f"{name}.yaml") for name in more]
        return GameServer(personas, model=model, home=tmp_path / "home", memory=False)

    return make


@pytest.fixture
def brenna(tmp_path: Path) -> Iterator[PersonaeClient]:
    model = FakeChatModel(default="Aye, two silver a night. The key is yours.")
    with ServerThread(innkeeper_server(tmp_path, model)) as running, \
            PersonaeClient.connect_tcp("127.0.0.1", running.port, timeout=20) as client:
        yield client


def test_the_client_file_needs_only_the_standard_library() -> None:
    tree = ast.parse(CLIENT_FILE.read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    # And it loads with no site-packages at all, as a copy inside a game would.
    code = ("import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('pc', {str(CLIENT_FILE)!r}); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "print(m.PROTOCOL_VERSION, 'pydantic' in sys.modules, 'personae' in sys.modules)")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == [str(PROTOCOL_VERSION), "False", "False"]
    assert client_module.PROTOCOL_VERSION == PROTOCOL_VERSION


def test_hello_say_and_the_answer_in_order(brenna: PersonaeClient) -> None:
    welcome = brenna.hello(world="millbrook", slot="s1")
    assert welcome["type"] == "welcome" and brenna.npcs == [INNKEEPER]
    messages = brenna.say(INNKEEPER, "Have you a room?", player={"id": "ana", "name": "Ana"})
    assert [m["type"] for m in messages] == ["sentence", "sentence", "reply"]
    assert messages[-1]["text"] == "Aye, two silver a night. The key is yours."
    assert all(m["reply_to"] == messages[0]["reply_to"] for m in messages)
    assert brenna.poll() == []  # nothing left over


def test_errors_come_back_as_messages_or_server_errors(brenna: PersonaeClient) -> None:
    early = brenna.say(INNKEEPER, "Hello?")  # before hello
    assert early[-1]["type"] == "error" and early[-1]["code"] == "no_hello"
    brenna.hello()
    unknown = brenna.say("nobody", "Hello?")
    assert unknown == [unknown[-1]] and unknown[-1]["code"] == "unknown_npc"
    assert INNKEEPER in unknown[-1]["message"]
    with pytest.raises(ServerError) as caught:
        brenna.world("nobody", location="Nowhere")
    assert caught.value.code == "unknown_npc"
    with pytest.raises(ServerError, match="bad_blob"):
        brenna.load("not a save")
    with pytest.raises(ServerError, match="unknown_action"):
        brenna.action_result("no-such-action", True)


def test_actions_results_and_refused_actions(tmp_path: Path) -> None:
    rent = AIMessage("", tool_calls=[{"name": "rent_room", "args": {"nights": 2}, "id": "c1"}])
    model = FakeChatModel(responses=[rent, "Here is your key.", rent, "Then no room for you."])
    with ServerThread(innkeeper_server(tmp_path, model)) as running, \
            PersonaeClient.connect_tcp("127.0.0.1", running.port, timeout=20) as client:
        client.hello()
        ack = client.world(INNKEEPER, location="The Copper Kettle",
                           affordances=[{"action": "rent_room"}])
        assert ack["type"] == "ack"
        messages = client.say(INNKEEPER, "I'll take a room for two nights.")
        (action,) = [m for m in messages if m["type"] == "action"]
        assert action["name"] == "rent_room" and action["arguments"] == {"nights": 2}
        assert messages[-1]["actions"] == [action["action_id"]]
        assert client.action_result(action["action_id"], True, "paid 4 silver")["type"] == "ack"
        # Renting is no longer possible here: the call is refused inside, never sent.
        client.world(INNKEEPER, mode="update", affordances=[{"action": "give_item"}])
        messages = client.say(INNKEEPER, "Another room, please.")
        assert [m for m in messages if m["type"] == "action"] == []
        assert messages[-1]["type"] == "reply" and messages[-1]["actions"] == []


def test_event_waits_for_every_witness(tmp_path: Path) -> None:
    model = FakeChatModel(default="I saw that.")
    with ServerThread(innkeeper_server(tmp_path, model, "guide")) as running, \
            PersonaeClient.connect_tcp("127.0.0.1", running.port, timeout=20) as client:
        npcs = client.hello()["npcs"]
        assert len(npcs) == 2
        answers = client.event("A mug smashes on the floor.", witnesses=npcs, react="always")
        finals = [m for m in answers if m["type"] in ("reply", "no_response")]
        assert sorted(m["npc"] for m in finals) == sorted(npcs)
        quiet = client.event("A cat walks by.", witnesses=npcs, react="never")
        assert sorted(m["reason"] for m in quiet) == ["witness_only", "witness_only"]


def test_save_then_load(brenna: PersonaeClient) -> None:
    brenna.hello(world="millbrook", slot="one")
    brenna.say(INNKEEPER, "I'm Ana.", player="ana")
    blob = brenna.save()
    assert isinstance(blob, str) and blob
    loaded = brenna.load(blob)
    assert loaded["type"] == "loaded" and loaded["npcs"] == [INNKEEPER]


def test_send_then_read_messages_as_they_come(brenna: PersonaeClient) -> None:
    brenna.hello()
    first = brenna.send({"type": "say", "npc": INNKEEPER, "text": "One."})
    second = brenna.send({"type": "say", "npc": INNKEEPER, "text": "Two."})
    assert first != second
    got: list[dict[str, Any]] = []
    for message in brenna.messages(timeout=20):
        got.append(message)
        if sum(m["type"] == "reply" for m in got) == 2 or len(got) > 20:
            break
    assert [m["reply_to"] for m in got if m["type"] == "reply"] == [first, second]


def test_timeout_then_late_answers_do_not_leak(tmp_path: Path) -> None:
    model = SlowChatModel(default="Sorry, I was busy.", pause=1.5)
    with ServerThread(innkeeper_server(tmp_path, model)) as running, \
            PersonaeClient.connect_tcp("127.0.0.1", running.port, timeout=20) as client:
        client.hello()
        with pytest.raises(ResponseTimeout) as caught:
            client.say(INNKEEPER, "Quick, a room!", timeout=0.2)
        assert isinstance(caught.value, TimeoutError)
        # The next request waits behind the first (one NPC, one player: in order).
        answer = client.say(INNKEEPER, "Still there?")
        assert answer[-1]["type"] == "reply"
        assert client.poll() == []  # the late answer to the timed-out request was dropped


def test_cancel_stops_a_request(tmp_path: Path) -> None:
    model = SlowChatModel(default="Finally.", pause=5.0)
    with ServerThread(innkeeper_server(tmp_path, model)) as running, \
            PersonaeClient.connect_tcp("127.0.0.1", running.port, timeout=20) as client:
        client.hello()
        request = client.send({"type": "say", "npc": INNKEEPER, "text": "Hello?"})
        assert client.cancel(request)[-1]["type"] == "ack"
        stopped = [m for m in client.messages(timeout=5) if m.get("reply_to") == request]
        assert stopped[-1]["type"] == "no_response" and stopped[-1]["reason"] == "cancelled"


def test_server_going_away_is_reported(tmp_path: Path) -> None:
    model = SlowChatModel(default="...", pause=30.0)
    running = ServerThread(innkeeper_server(tmp_path, model))
    with running:
        client = PersonaeClient.connect_tcp("127.0.0.1", running.port, timeout=20)
        client.hello()
        errors: list[BaseException] = []

        def ask() -> None:
            try:
                client.say(INNKEEPER, "Are you there?")
            except BaseException as exc:
                errors.append(exc)

        asking = threading.Thread(target=ask)
        asking.start()
        running.stop()
        asking.join(20)
    assert len(errors) == 1 and isinstance(errors[0], ConnectionClosed)
    assert client.closed
    with pytest.raises(ConnectionClosed):
        client.send({"type": "say", "npc": INNKEEPER, "text": "Hello?"})
    client.close()


def test_connect_to_nothing_fails_fast() -> None:
    with pytest.raises(OSError):
        PersonaeClient.connect_tcp("127.0.0.1", 1, connect_timeout=5)


@pytest.mark.slow
def test_spawned_stdio_server_round_trip(tmp_path: Path) -> None:
    env = {**os.environ, "PERSONAE_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, "-m", "personae.cli", "game", "--stdio",
            str(EXAMPLES / "innkeeper.yaml"), "--no-memory"]
    log = tmp_path / "server.log"
    with log.open("wb") as stderr:
        client = PersonaeClient.spawn_stdio(argv, env=env, stderr=stderr, timeout=240)
        try:
            assert client.hello()["npcs"] == [INNKEEPER]
            answer = client.say(INNKEEPER, "Do you have a room for the night?")
            persona = load_persona(EXAMPLES / "innkeeper.yaml")
            expected = next(e.reply for e in persona.examples
                            if e.user == "Do you have a room for the night?")
            assert answer[-1]["text"] == expected
            assert "offline" in answer[-1]["flags"]
        finally:
            client.close(timeout=60)
    assert client.process is not None
    assert client.process.returncode == 0, log.read_text()
    assert client.bad_lines == 0  # stdout carried protocol lines only
    json.dumps(answer)
