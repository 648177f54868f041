"""Game NPCs: protocol v1, the server that hosts NPCs, saves, limits, record and replay.

A game connects through a transport (stdio, TCP, WebSocket, HTTP) and speaks
the JSON protocol in `personae.integrations.game.protocol`. A `GameServer`
hosts one agent per persona; each connected game gets a `GameSession`.

Example:
    ```python
    from personae.integrations.game import GameServer

    server = GameServer.from_files(["examples/personas/innkeeper.yaml"])
    session = server.session(send)          # send: async (dict) -> None
    await session.receive('{"type": "hello", "id": "1", "protocol": 1}')
    ```
"""

from __future__ import annotations

from personae.integrations.game.limits import NpcLimits
from personae.integrations.game.protocol import MAX_MESSAGE_BYTES, PROTOCOL_VERSION
from personae.integrations.game.recording import Recorder, ReplayReport, areplay, replay
from personae.integrations.game.server import GameServer, GameSession

__all__ = [
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "GameServer",
    "GameSession",
    "NpcLimits",
    "Recorder",
    "ReplayReport",
    "areplay",
    "replay",
]
