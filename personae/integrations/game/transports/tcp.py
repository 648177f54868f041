"""JSON lines over TCP: every connection is one game session on the shared `GameServer`.

Example:
    ```python
    server = GameServer.from_files(["examples/personas/innkeeper.yaml"])
    listener = await serve_tcp(server, port=7777)
    await listener.serve_forever()
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import TYPE_CHECKING

from personae.integrations.game.transports._jsonlines import CHUNK_BYTES, run_line_session
from personae.integrations.game.transports._outbox import DEFAULT_MAX_PENDING

if TYPE_CHECKING:
    from personae.integrations.game.server import GameServer

__all__ = ["TcpListener", "serve_tcp"]

log = logging.getLogger("personae.game.transports")


class TcpListener:
    """Accepts game connections on a TCP port; one `GameSession` per connection.

    A connection that sends garbage, sends too much or stops reading only
    ever loses its own session.

    Args:
        server: The NPCs every connection talks to.
        host: Address to listen on; `127.0.0.1` keeps it on this machine.
        port: Port to listen on; `0` picks a free one (see `port`).
        drain_timeout: When a game closes its side, seconds to keep writing
            replies that are still being produced.
        max_pending: Outgoing messages queued for a connection before it
            counts as stuck and is closed.

    Example:
        ```python
        async with TcpListener(server, port=0) as listener:
            print("listening on", listener.port)
            await listener.serve_forever()
        ```
    """

    def __init__(
        self,
        server: GameServer,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        drain_timeout: float = 30.0,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.server = server
        self.host = host
        self._port = port
        self.drain_timeout = drain_timeout
        self.max_pending = max_pending
        self._listener: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._count = 0

    @property
    def port(self) -> int:
        """The port listened on (the real one when `0` was asked for)."""
        return self._port

    async def start(self) -> None:
        """Bind and start accepting connections."""
        self._listener = await asyncio.start_server(self._accept, self.host, self._port,
                                                    limit=CHUNK_BYTES)
        sockets = self._listener.sockets
        if sockets:
            self._port = int(sockets[0].getsockname()[1])
        log.info("game protocol on tcp://%s:%d", self.host, self._port)

    async def serve_forever(self) -> None:
        """Accept connections until cancelled."""
        if self._listener is None:
            await self.start()
        assert self._listener is not None
        await self._listener.serve_forever()

    async def aclose(self) -> None:
        """Stop listening and close every connection."""
        if self._listener is not None:
            self._listener.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None

    async def __aenter__(self) -> TcpListener:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._count += 1
        peer = writer.get_extra_info("peername")
        name = f"tcp#{self._count}"
        log.info("%s: connected from %s", name, peer)

        async def read() -> bytes:
            return await reader.read(CHUNK_BYTES)

        async def write(text: str) -> None:
            if writer.is_closing():
                raise ConnectionResetError("connection closed")
            writer.write(text.encode("utf-8"))
            await writer.drain()

        try:
            await run_line_session(self.server, read, write, name=name,
                                   drain_timeout=self.drain_timeout,
                                   max_pending=self.max_pending)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 5.0)


async def serve_tcp(
    server: GameServer,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    drain_timeout: float = 30.0,
    max_pending: int = DEFAULT_MAX_PENDING,
) -> TcpListener:
    """Start serving `server` as JSON lines over TCP; return the running listener.

    Args:
        server: The NPCs.
        host: Address to listen on (default this machine only).
        port: Port, `0` for any free one (read it from `TcpListener.port`).
        drain_timeout: See `TcpListener`.
        max_pending: See `TcpListener`.

    Returns:
        The started listener; `await listener.serve_forever()` to keep serving,
        `await listener.aclose()` to stop.
    """
    listener = TcpListener(server, host=host, port=port, drain_timeout=drain_timeout,
                           max_pending=max_pending)
    await listener.start()
    return listener
