"""Helpers shared by the game tests: the test NPCs, a collecting session, a fake clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from personae.integrations.game.server import GameServer, GameSession
from personae.personas.loading import load_persona
from personae.personas.model import Persona
from personae.settings import Settings
from personae.testing import FakeEmbeddings

NPCS = Path(__file__).resolve().parent / "npcs"
SCENE = json.loads((NPCS / "tavern_scene.json").read_text("utf-8"))


def personas() -> list[Persona]:
    return [load_persona(NPCS / "brenna.yaml"), load_persona(NPCS / "torvin.yaml")]


def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", retry_attempts=1, retry_deadline=5.0,
                    retry_wait_max=0.01)


def make_server(tmp_path: Path, model: Any = None, **kwargs: Any) -> GameServer:
    kwargs.setdefault("memory", False)
    kwargs.setdefault("embedder", FakeEmbeddings())
    kwargs.setdefault("settings", settings(tmp_path))
    return GameServer(kwargs.pop("personas", None) or personas(), model=model,
                      home=tmp_path / "home", **kwargs)


def call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Game:
    """A game connected to a server: sends messages, collects what comes back."""

    def __init__(self, server: GameServer) -> None:
        self.server = server
        self.out: list[dict[str, Any]] = []
        self.session: GameSession = server.session(self._collect)

    async def _collect(self, message: dict[str, Any]) -> None:
        self.out.append(message)

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        data = message if isinstance(message, str | bytes) else json.dumps(message)
        await self.session.receive(data)

    async def hello(self, **fields: Any) -> dict[str, Any]:
        await self.send({"type": "hello", "id": "hello", "protocol": 1, **fields})
        return self.out[-1]

    async def say(self, npc: str, text: str, id: str, player: str = "p1") -> list[dict[str, Any]]:
        await self.send({"type": "say", "id": id, "npc": npc, "text": text,
                         "player": {"id": player, "name": player.title()}})
        await self.session.drain()
        return self.to(id)

    def to(self, request: str, npc: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.out
                if m.get("reply_to") == request and (npc is None or m.get("npc") == npc)]

    def types(self, request: str, npc: str | None = None) -> list[str]:
        return [m["type"] for m in self.to(request, npc)]
