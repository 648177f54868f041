"""Transports of the game protocol: how a game reaches a `GameServer`.

Every transport only frames messages and calls `GameServer.session(send)`,
`GameSession.receive`, `drain` and `close`; one `GameServer` (many NPCs) can
be served over several at once.

- `serve_stdio(server)`: JSON lines on stdin/stdout, for a game that spawns
  `personae game --stdio` (`stdio.py`).
- `serve_tcp(server, host, port)`: JSON lines over TCP, one session per
  connection (`tcp.py`).
- `http_app(server)` / `serve_http(server, host, port)`: WebSocket and HTTP
  with server-sent events through FastAPI and uvicorn (`web.py`; needs the
  `game` extra, imported only when used).

Messages longer than `MAX_MESSAGE_BYTES` are skipped and answered with a
`too_large` error; the connection goes on.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from personae.integrations.game.transports.stdio import claim_stdout, serve_stdio
from personae.integrations.game.transports.tcp import TcpListener, serve_tcp

if TYPE_CHECKING:
    from personae.integrations.game.transports.web import HttpListener, http_app, serve_http

__all__ = [
    "HttpListener",
    "TcpListener",
    "claim_stdout",
    "http_app",
    "serve_http",
    "serve_stdio",
    "serve_tcp",
]

_WEB = ("HttpListener", "http_app", "serve_http")


def __getattr__(name: str) -> Any:
    # FastAPI and uvicorn load only when a web transport is asked for.
    if name in _WEB:
        return getattr(importlib.import_module("personae.integrations.game.transports.web"),
                       name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
