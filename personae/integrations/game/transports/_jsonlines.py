"""JSON lines over a byte stream (stdio, TCP): framing with a size limit, one session per stream.

Lines are read in chunks and split here rather than with
`StreamReader.readline`, whose limit handling leaves the rest of an
over-long line to be read as if it were the next message. A line above the
limit is skipped up to its newline and answered with one `too_large` error;
the stream goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from personae.integrations.game.protocol import MAX_MESSAGE_BYTES
from personae.integrations.game.transports._outbox import (
    DEFAULT_MAX_PENDING,
    Outbox,
    too_large_error,
)

if TYPE_CHECKING:
    from personae.integrations.game.server import GameServer

__all__ = ["CHUNK_BYTES", "LineSplitter", "TooLarge", "run_line_session"]

log = logging.getLogger("personae.game.transports")

CHUNK_BYTES: Final = 64 * 1024
"""How much is read from a stream at a time."""


class TooLarge:
    """Stands for a line that was longer than the limit and was skipped."""

    def __init__(self, size: int) -> None:
        self.size = size
        """Bytes of the line seen before it was given up (at least the limit)."""


class LineSplitter:
    """Split a byte stream into lines of at most `limit` bytes (newline excluded).

    Args:
        limit: Longest accepted line; longer ones come out as `TooLarge`.
    """

    def __init__(self, limit: int = MAX_MESSAGE_BYTES) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._skipped = 0  # > 0 while skipping the rest of an over-long line

    def feed(self, data: bytes) -> list[bytes | TooLarge]:
        """Take the next chunk; return the lines (and skipped lines) it completes."""
        out: list[bytes | TooLarge] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            piece = data[start:end]
            if self._skipped:
                self._skipped = 0
            elif len(self._buffer) + len(piece) > self.limit:
                out.append(TooLarge(len(self._buffer) + len(piece)))
            else:
                self._buffer += piece
                out.extend(self._line())
            self._buffer.clear()
            start = end + 1
        rest = data[start:]
        if self._skipped:
            self._skipped += len(rest)
        elif len(self._buffer) + len(rest) > self.limit:
            # Report now rather than at the newline, which may never come.
            out.append(TooLarge(len(self._buffer) + len(rest)))
            self._skipped = len(self._buffer) + len(rest)
            self._buffer.clear()
        else:
            self._buffer += rest
        return out

    def finish(self) -> list[bytes | TooLarge]:
        """Return the last line when the stream ended without a newline."""
        out = [] if self._skipped else self._line()
        self._buffer.clear()
        self._skipped = 0
        return out

    def _line(self) -> list[bytes | TooLarge]:
        line = bytes(self._buffer).rstrip(b"\r")
        return [line] if line.strip() else []


async def run_line_session(
    server: GameServer,
    read: Callable[[], Awaitable[bytes]],
    write: Callable[[str], Awaitable[None]],
    *,
    name: str,
    drain_timeout: float | None,
    max_pending: int = DEFAULT_MAX_PENDING,
) -> None:
    """Serve one game over a byte stream until it ends, then close its session.

    Args:
        server: The NPCs.
        read: Returns the next chunk of bytes; `b""` at the end of the stream.
        write: Writes one encoded message (a newline is added here).
        name: The peer, for logs.
        drain_timeout: After the end of input, how long to wait for replies
            still being produced (`None`: as long as they take).
        max_pending: Outgoing messages queued before the peer counts as stuck.
    """

    async def write_line(text: str) -> None:
        await write(text + "\n")

    outbox = Outbox(write_line, name=name, max_pending=max_pending)
    outbox.start()
    session = server.session(outbox.send)
    reading = asyncio.create_task(_read_all(session.receive, outbox, read, name),
                                  name=f"personae-game-reader-{name}")
    failed = asyncio.create_task(outbox.failed.wait())
    try:
        await asyncio.wait({reading, failed}, return_when=asyncio.FIRST_COMPLETED)
        if reading.done() and reading.exception() is None and not outbox.failed.is_set():
            await _drain(session.drain(), outbox, drain_timeout, name)
    finally:
        for task in (reading, failed):
            task.cancel()
        for task in (reading, failed):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await session.close()
        await outbox.aclose()
        log.info("%s: session closed", name)


async def _read_all(
    receive: Callable[[bytes], Awaitable[None]],
    outbox: Outbox,
    read: Callable[[], Awaitable[bytes]],
    name: str,
) -> None:
    splitter = LineSplitter(MAX_MESSAGE_BYTES)
    while True:
        try:
            data = await read()
        except (OSError, asyncio.IncompleteReadError) as exc:
            log.info("%s: connection lost: %s", name, exc)
            raise
        items = splitter.feed(data) if data else splitter.finish()
        for item in items:
            if isinstance(item, TooLarge):
                log.info("%s: skipped a message of %d+ bytes", name, item.size)
                await outbox.send(too_large_error(item.size))
                continue
            try:
                await receive(item)
            except Exception:
                # The session answers bad input itself; reaching here is a bug of
                # ours, and must not end the game's connection.
                log.exception("%s: handling a message failed", name)
        if not data:
            return


async def _drain(
    work: Awaitable[None], outbox: Outbox, timeout: float | None, name: str
) -> None:
    """Wait for in-flight replies, unless the peer fails or `timeout` passes first."""
    draining = asyncio.ensure_future(work)
    failed = asyncio.create_task(outbox.failed.wait())
    try:
        done, _ = await asyncio.wait({draining, failed}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if not done:
            log.info("%s: replies still running after %.0fs at end of input; cancelling",
                     name, timeout or 0)
    finally:
        for task in (draining, failed):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
