"""A slow model holds up neither discord.py's gateway heartbeat nor other channels.

discord.py sends heartbeats from a keep-alive thread that schedules
`send_heartbeat` on the event loop and waits for it; a blocked loop is what
makes Discord drop a bot. Here the real `KeepAliveHandler` runs against a
stand-in websocket while one persona's model is stuck "thinking": the
heartbeats keep going through the loop, and another channel gets its
answer first.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from discord.gateway import KeepAliveHandler
from http_recorder import DiscordRecorder, make_agent, make_config, start_bot
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from personae.integrations.discord.bot import PersonaeBot
from personae.integrations.discord.state import DiscordState
from personae.testing import FakeChatModel


class SlowChatModel(FakeChatModel):
    """Awaits `gate` before answering, as a model does while its server generates."""

    gate: Any = None
    entered: Any = None

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self.entered.set()
        await self.gate.wait()
        return self._generate(messages, stop, None, **kwargs)

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: Any = None, **kwargs: Any
                       ) -> AsyncIterator[ChatGenerationChunk]:
        self.entered.set()
        await self.gate.wait()
        async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
            yield chunk


class StandInGateway:
    """What `KeepAliveHandler` needs of discord.py's gateway websocket."""

    HEARTBEAT = 1

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread_id = threading.get_ident()
        self._max_heartbeat_timeout = 60.0
        self.sequence = 0
        self.beats = 0
        self.keep_alive: KeepAliveHandler | None = None

    async def send_heartbeat(self, data: dict[str, Any]) -> None:
        # Runs on the event loop, like the real one; Discord acks at once.
        self.beats += 1
        assert self.keep_alive is not None
        self.keep_alive.tick()
        self.keep_alive.ack()

    async def close(self, code: int = 1000) -> None:
        pass


def _shown(http: DiscordRecorder) -> list[str]:
    """What the bot's messages show now (after any edits), oldest first."""
    return [m["content"] for m in http.messages.values() if m["author"]["id"] == http.bot["id"]]


async def _until(check: Any, timeout: float = 20.0) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_slow_model_does_not_block_heartbeats_or_other_channels(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    streaming: bool,
) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    slow = SlowChatModel(default="Let me think... yes.", gate=gate, entered=entered)

    def make(ids: dict[str, str]) -> PersonaeBot:
        agents = {
            # Long-term memory on: its Chroma and SQLite work must stay off the loop too.
            "brenna": make_agent(tmp_path, "brenna", "Brenna", slow, memory=True),
            "torvin": make_agent(tmp_path, "torvin", "Torvin", FakeChatModel(default="Hmph.")),
        }
        cfg = make_config(tmp_path, list(agents), default_persona="brenna", webhooks=False,
                          streaming=streaming, channels={int(ids["quiet"]): {"persona": "torvin"}})
        return PersonaeBot(cfg, agents=agents, state=DiscordState(tmp_path / "state.sqlite"))

    world = await start_bot(monkeypatch, make)
    gateway = StandInGateway(asyncio.get_running_loop())
    keep_alive = KeepAliveHandler(ws=gateway, interval=0.02, shard_id=0)  # type: ignore[arg-type]
    gateway.keep_alive = keep_alive
    caplog.set_level(logging.WARNING, logger="discord.gateway")
    keep_alive.start()
    try:
        world.say("ann", "a hard question", mention_bot=True)
        await asyncio.wait_for(entered.wait(), 20)  # Brenna's model is now "thinking"
        beats_before = gateway.beats

        world.say("bob", "quick one", channel="quiet", mention_bot=True)
        http: DiscordRecorder = world.http
        await http.wait_for(lambda h: _shown(h) == ["Hmph."], timeout=20)
        await _until(lambda: gateway.beats >= beats_before + 3)
        assert not gate.is_set(), "Brenna must still be thinking"

        gate.set()
        await world.settle()
        assert _shown(http) == ["Hmph.", "Let me think... yes."]
        assert "heartbeat blocked" not in caplog.text
    finally:
        keep_alive.stop()
        keep_alive.join(5)
        await world.bot.close()
