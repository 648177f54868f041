"""The Godot, Lua and C# reference clients, run by their runtimes against `personae game serve`.

One server (`personae game serve innkeeper.yaml --tcp 0`, offline model) is
started for the module; each test runs a driver script from
`reference_clients/` with its runtime. A driver prints one
`RESULT <step> <json>` line per step of the exchange and exits non-zero on
the first failure; the assertions on what the server answered are made here.
A test skips when its runtime is not installed (`.ci/run` installs them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from personae.personas.loading import load_persona

ROOT = Path(__file__).resolve().parents[3]
INNKEEPER = ROOT / "examples" / "personas" / "innkeeper.yaml"
CLIENTS = ROOT / "personae" / "integrations" / "game" / "clients"
DRIVERS = Path(__file__).resolve().parent / "reference_clients"
NPC = "brenna-innkeeper"
# A second NPC, so that an event can have two witnesses.
OTHER = "tam-fisher"
OTHER_YAML = """\
schema: personae/v1
id: tam-fisher
name: Old Tam
description: A fisherman who drinks at the Copper Kettle every evening.
"""
RUN_TIMEOUT = 25.0
SERVER_START_TIMEOUT = 120.0

_SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_BASE_URL")


@dataclass
class GameServerProcess:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _clean_env(home: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("PERSONAE_") and not name.endswith(_SECRET_SUFFIXES)}
    env.update(PERSONAE_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


# `personae game serve` prints this line once the TCP port accepts connections.
_LISTENING = re.compile(r"personae game: listening on tcp://[^\s]+:(\d+)")


def _warm_up(server: GameServerProcess) -> None:
    """Have the NPC answer once, so the clients' tests do not pay for its first turn."""
    say = {"type": "say", "id": "warm-up", "npc": NPC, "text": "Hello!"}
    hello = {"type": "hello", "id": "warm-hello", "protocol": 1, "world": "warm-up"}
    with socket.create_connection(("127.0.0.1", server.port),
                                  timeout=SERVER_START_TIMEOUT) as conn:
        conn.sendall(f"{json.dumps(hello)}\n{json.dumps(say)}\n".encode())
        lines = conn.makefile("rb")
        for _ in range(100):
            message = json.loads(lines.readline() or b"{}")
            if message.get("reply_to") == "warm-up" and message.get("type") in (
                    "reply", "no_response", "error"):
                return
        pytest.fail(f"the warm-up `say` got no reply:\n{server.output()}")


@pytest.fixture(scope="module")
def game_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GameServerProcess]:
    home = tmp_path_factory.mktemp("game-server")
    log = home / "server.log"
    other = home / "tam.yaml"
    other.write_text(OTHER_YAML, encoding="utf-8")
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "personae.cli", "game", "serve", str(INNKEEPER), str(other),
             "--tcp", "0"],
            stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            env=_clean_env(home / "personae"), cwd=home,
        )
    server = GameServerProcess(0, process, log)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while (found := _LISTENING.search(server.output())) is None:
            if process.poll() is not None:
                pytest.fail(f"`personae game serve` exited with {process.returncode}:\n"
                            f"{server.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"`personae game serve` did not start listening within "
                            f"{SERVER_START_TIMEOUT} s:\n{server.output()}")
            time.sleep(0.1)
        server.port = int(found.group(1))
        _warm_up(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data or ""


def _run(cmd: list[str], server: GameServerProcess, *, cwd: Path,
         env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a driver; return its RESULT steps, or fail showing everything it printed."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env,
                              timeout=RUN_TIMEOUT, check=False)
        out, err, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out, err, code = _text(exc.stdout), _text(exc.stderr), None
    results: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            _, name, payload = line.split(" ", 2)
            results[name] = json.loads(payload)
    if code != 0 or "SCRIPT ERROR" in err:
        ending = "timed out" if code is None else f"exited with {code}"
        pytest.fail(f"{cmd[0]} {ending}\n--- stdout\n{out}\n--- stderr\n{err}\n"
                    f"--- server\n{server.output()[-4000:]}")
    return results


def _room_example() -> tuple[str, str]:
    example = load_persona(INNKEEPER).examples[0]
    assert example.reply is not None
    return example.user, example.reply


def _check_exchange(results: dict[str, Any], answer: str) -> None:
    welcome = results["welcome"]
    assert welcome["type"] == "welcome" and welcome["protocol"] == 1
    assert NPC in welcome["npcs"]
    assert welcome["reply_to"].startswith("hello")

    assert results["world"]["type"] == "ack"
    assert results["world"]["reply_to"] == results["world"]["id"]

    said = results["say"]
    assert said["type"] == "reply"
    assert said["reply_to"] == said["id"]
    # The offline model answers an authored example question with its authored reply,
    # sentence by sentence.
    assert said["text"] == answer
    assert said["sentences"], "no `sentence` message arrived before the reply"
    assert " ".join(said["sentences"]) == answer

    unknown = results["unknown_npc"]
    assert unknown["code"] == "unknown_npc"
    assert "nobody-here" in unknown["message"]
    assert unknown["reply_to"].startswith("say")


def _check_event(results: dict[str, Any]) -> None:
    # Witnessed by both NPCs (one of them listed twice), reacting never: the request
    # ended after one `no_response` from each.
    event = results["event"]
    assert event["type"] == "no_response"
    replies = event["replies"]
    assert sorted(r["npc"] for r in replies) == sorted([NPC, OTHER])
    for reply in replies:
        assert reply["type"] == "no_response" and reply["reason"] == "witness_only"
        assert reply["reply_to"] == event["id"]


def _check_bad_message(results: dict[str, Any]) -> None:
    bad = results["bad_message"]
    assert bad["code"] == "bad_message"
    assert "mood" in bad["message"]  # the unknown field is named


def _lua_problem() -> str | None:
    if shutil.which("lua5.4") is None:
        return "lua5.4 is not on PATH (Debian packages lua5.4, lua-cjson, lua-socket)"
    probe = subprocess.run(["lua5.4", "-e", 'require("cjson"); require("socket")'],
                           capture_output=True, text=True, timeout=10, check=False)
    if probe.returncode != 0:
        return f"lua5.4 cannot load cjson and socket (Debian lua-cjson, lua-socket): {probe.stderr}"
    return None


_LUA_PROBLEM = _lua_problem()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("godot3-server") is None,
                    reason="godot3-server is not on PATH (Debian package godot3-server)")
def test_godot_client_exchange(game_server: GameServerProcess, tmp_path: Path) -> None:
    question, answer = _room_example()
    # Godot wants a writable home for its user data; `LANG` keeps it from
    # complaining about the C locale.
    env = {**os.environ, "HOME": str(tmp_path), "LANG": "en_US.UTF-8", "LC_ALL": "en_US.UTF-8"}
    results = _run(
        ["godot3-server", "--no-window", "-s", str(DRIVERS / "exchange.gd"), "--",
         str(CLIENTS / "godot" / "personae_client.gd"), str(game_server.port), NPC, OTHER,
         question],
        game_server, cwd=tmp_path, env=env,
    )
    _check_exchange(results, answer)
    _check_event(results)
    _check_bad_message(results)
    assert results["bad_message"]["reply_to"] == "bad-godot-1"
    # The `error_received` signal fired for both errors.
    assert [e["code"] for e in results["errors_seen"]] == ["unknown_npc", "bad_message"]


@pytest.mark.slow
@pytest.mark.skipif(_LUA_PROBLEM is not None, reason=str(_LUA_PROBLEM))
def test_lua_client_exchange(game_server: GameServerProcess, tmp_path: Path) -> None:
    question, answer = _room_example()
    results = _run(
        ["lua5.4", str(DRIVERS / "exchange.lua"), str(CLIENTS / "lua"), str(game_server.port),
         NPC, OTHER, question],
        game_server, cwd=tmp_path,
    )
    _check_exchange(results, answer)
    _check_event(results)
    _check_bad_message(results)
    assert results["bad_message"]["reply_to"].startswith("say")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mcs") is None or shutil.which("mono") is None,
                    reason="mcs or mono is not on PATH (Debian package mono-mcs)")
def test_csharp_client_exchange(game_server: GameServerProcess, tmp_path: Path) -> None:
    question, answer = _room_example()
    exe = tmp_path / "exchange.exe"
    compiled = subprocess.run(
        ["mcs", "-warnaserror+", f"-out:{exe}", str(CLIENTS / "csharp" / "PersonaeClient.cs"),
         str(DRIVERS / "Exchange.cs")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    results = _run(["mono", str(exe), str(game_server.port), NPC, OTHER, question],
                   game_server, cwd=tmp_path)
    _check_exchange(results, answer)
    _check_event(results)
    unknown_action = results["unknown_action"]
    assert unknown_action["code"] == "unknown_action"
    assert "no-such-action" in unknown_action["message"]
