"""`personae game ...`: schema, replay, stdio and serve, as a user (or a game) runs them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from personae.cli.game import register
from personae.integrations.game.client import PersonaeClient
from personae.integrations.game.protocol import (
    MAX_MESSAGE_BYTES,
    client_adapter,
    protocol_schema,
    server_adapter,
)
from personae.integrations.game.recording import Recorder
from personae.integrations.game.server import GameServer
from personae.personas.loading import load_persona
from personae.testing import FakeChatModel

ROOT = Path(__file__).resolve().parents[3]
INNKEEPER = ROOT / "examples" / "personas" / "innkeeper.yaml"
NPC = "brenna-innkeeper"
runner = CliRunner()


def game_app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def personae() -> None:
        """The root command, as `personae` has one."""

    register(root)
    return root


def cli(*args: str) -> Any:
    return runner.invoke(game_app(), ["game", *args])


def personae_game(*args: str) -> list[str]:
    return [sys.executable, "-m", "personae.cli", "game", *args]


def child_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PERSONAE_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}


# -- schema and help ------------------------------------------------------------------


def test_schema_prints_both_directions_as_json() -> None:
    result = cli("schema")
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema == json.loads(json.dumps(protocol_schema()))
    client_types = set(schema["client"]["discriminator"]["mapping"])
    assert {"hello", "say", "world", "event", "save", "load"} <= client_types
    assert "reply" in schema["server"]["discriminator"]["mapping"]


def test_help_names_stdio_and_serve() -> None:
    result = cli("--help")
    assert result.exit_code == 0
    assert "--stdio" in result.stdout and "serve" in result.stdout


def test_serve_needs_a_port() -> None:
    result = cli("serve", str(INNKEEPER))
    assert result.exit_code == 1
    assert "--tcp PORT" in result.stderr and "--http PORT" in result.stderr


def test_serve_reports_a_bad_persona_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: personae/v1\nid: x\nname: X\nspeech:\n  max_sentences: -3\n")
    result = cli("serve", str(bad), "--tcp", "0")
    assert result.exit_code == 1
    assert "bad.yaml" in result.stderr and "max_sentences" in result.stderr


# -- replay ---------------------------------------------------------------------------


async def record(path: Path, home: Path) -> None:
    server = GameServer([load_persona(INNKEEPER)], model=FakeChatModel(
        default="A room is two silver. Breakfast is included."), home=home, memory=False,
        recorder=Recorder(path))
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    session = server.session(send)
    for message in ({"type": "hello", "id": "h", "protocol": 1},
                    {"type": "say", "id": "s1", "npc": NPC, "text": "A room?"}):
        await session.receive(json.dumps(message))
        await session.drain()
    await session.close()
    await server.aclose()
    assert sent[-1]["type"] == "reply"


def test_replay_of_an_unchanged_recording_matches(tmp_path: Path) -> None:
    recording = tmp_path / "session.jsonl"
    asyncio.run(record(recording, tmp_path / "home"))
    result = cli("replay", str(recording))
    assert result.exit_code == 0, result.output
    assert "same" in result.stdout
    as_json = json.loads(cli("replay", str(recording), "--json").stdout)
    assert as_json["equal"] is True and as_json["differences"] == []


def test_replay_reports_what_differs_and_exits_1(tmp_path: Path) -> None:
    recording = tmp_path / "session.jsonl"
    asyncio.run(record(recording, tmp_path / "home"))
    lines = recording.read_text().splitlines()
    edited = []
    for line in lines:
        entry = json.loads(line)
        if entry.get("kind") == "out" and entry["message"]["type"] == "reply":
            entry["message"]["text"] = "A room is three silver."
        edited.append(json.dumps(entry))
    recording.write_text("\n".join(edited) + "\n")
    result = cli("replay", str(recording))
    assert result.exit_code == 1
    assert "1 difference" in result.stdout and "three silver" in result.stdout
    report = json.loads(cli("replay", str(recording), "--json").stdout)
    assert report["equal"] is False and report["differences"][0]["fields"] == ["text"]


def test_replay_of_a_missing_or_broken_file_exits_2(tmp_path: Path) -> None:
    missing = cli("replay", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2
    assert "nope.jsonl" in missing.stderr and "--record" in missing.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"kind": "header"\n')
    result = cli("replay", str(broken))
    assert result.exit_code == 2
    assert "broken.jsonl:1" in result.stderr and "not JSON" in result.stderr
    stranger = tmp_path / "other.jsonl"
    stranger.write_text('{"kind": "in", "session": 1, "data": "{}"}\n')
    result = cli("replay", str(stranger))
    assert result.exit_code == 2 and "not a personae game recording" in result.stderr


# -- the real command, as a game spawns it ----------------------------------------------


@pytest.mark.slow
def test_stdio_stdout_carries_protocol_lines_only(tmp_path: Path) -> None:
    persona = load_persona(INNKEEPER)
    example = persona.examples[0]
    lines = [
        json.dumps({"type": "hello", "id": "h", "protocol": 1}),
        "this is not json",
        "x" * (MAX_MESSAGE_BYTES + 5),
        json.dumps({"type": "say", "id": "s1", "npc": NPC, "text": example.user}),
        json.dumps({"type": "say", "id": "s2", "npc": "nobody", "text": "Hi"}),
    ]
    for line in lines[:1] + lines[3:]:
        client_adapter.validate_json(line)  # the test's own messages are valid
    proc = subprocess.run(
        personae_game("--stdio", str(INNKEEPER), "--no-memory", "-v"),
        input="\n".join(lines) + "\n", capture_output=True, text=True,
        env=child_env(tmp_path), timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    for message in out:
        server_adapter.validate_python(message)
    assert out[0]["type"] == "welcome"
    codes = [m["code"] for m in out if m["type"] == "error"]
    assert sorted(codes) == ["bad_json", "too_large", "unknown_npc"]
    reply = next(m for m in out if m["type"] == "reply")
    assert reply["reply_to"] == "s1" and reply["text"] == example.reply
    assert "INFO" in proc.stderr  # logs went to stderr, not into the protocol


@pytest.mark.slow
def test_stdio_with_a_missing_persona_fails_cleanly(tmp_path: Path) -> None:
    proc = subprocess.run(
        personae_game("--stdio", str(tmp_path / "ghost.yaml")), input="", capture_output=True,
        text=True, env=child_env(tmp_path), timeout=120, check=False)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "ghost.yaml" in proc.stderr and "Traceback" not in proc.stderr


def read_announced(proc: subprocess.Popen[str], count: int) -> dict[str, str]:
    """Read the `personae game: listening on URL` lines (bounded by time)."""
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    deadline = time.monotonic() + 240
    while len(urls) < count and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("personae game: listening on "):
            url = line.split("listening on ", 1)[1].strip()
            urls[url.split(":", 1)[0]] = url
    assert len(urls) == count, f"announced: {urls}"
    return urls


@pytest.mark.slow
def test_serve_tcp_and_http_then_replay_the_recording(tmp_path: Path) -> None:
    websockets = pytest.importorskip("websockets.sync.client")
    recording = tmp_path / "served.jsonl"
    persona = load_persona(INNKEEPER)
    example = persona.examples[1]
    proc = subprocess.Popen(
        personae_game("serve", str(INNKEEPER), "--tcp", "0", "--http", "0", "--no-memory",
                      "--record", str(recording)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(tmp_path))
    try:
        urls = read_announced(proc, 2)
        host, port = urls["tcp"].removeprefix("tcp://").rsplit(":", 1)
        assert host == "127.0.0.1"
        with PersonaeClient.connect_tcp(host, int(port), timeout=240) as client:
            client.hello()
            answer = client.say(NPC, example.user)
            assert answer[-1]["text"] == example.reply
        ws_url = urls["http"].replace("http://", "ws://") + "/ws"
        with websockets.connect(ws_url, open_timeout=30) as ws:
            ws.send(json.dumps({"type": "hello", "id": "h", "protocol": 1}))
            assert json.loads(ws.recv(timeout=30))["type"] == "welcome"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    result = cli("replay", str(recording))
    assert result.exit_code == 0, result.output
    assert "2 session(s)" in result.stdout and "same" in result.stdout
