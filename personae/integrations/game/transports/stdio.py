"""JSON lines over stdin/stdout: the game spawns the server and owns its pipes.

stdout carries protocol lines and nothing else; logs go to stderr. The pipes
are read and written by two daemon threads with blocking I/O, so the game's
terminal or pipes are never switched to non-blocking mode (which would
break the game's own writes to a shared terminal), and a game that stops
reading never blocks the event loop.

Example:
    ```python
    out = claim_stdout()
    server = GameServer.from_files(["examples/personas/innkeeper.yaml"])
    asyncio.run(serve_stdio(server, stdout=out))
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sys
import threading
import time
from typing import TYPE_CHECKING, BinaryIO

from personae.integrations.game.transports._jsonlines import CHUNK_BYTES, run_line_session
from personae.integrations.game.transports._outbox import DEFAULT_MAX_PENDING

if TYPE_CHECKING:
    from personae.integrations.game.server import GameServer

__all__ = ["claim_stdout", "serve_stdio"]

log = logging.getLogger("personae.game.transports")


def claim_stdout() -> BinaryIO:
    """Reserve the process's stdout for protocol lines; return a file that writes to it.

    File descriptor 1 (and `sys.stdout`) is pointed at stderr afterwards, so a
    library that prints (a progress bar, a warning) writes to the log instead
    of into the game's protocol stream.

    Returns:
        An unbuffered binary file on the original stdout.
    """
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(protocol_fd, "wb", buffering=0)


async def serve_stdio(
    server: GameServer,
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    drain_timeout: float | None = None,
    max_pending: int = DEFAULT_MAX_PENDING,
) -> None:
    """Serve one game over stdin/stdout until stdin ends, then close its session.

    At the end of stdin, replies still being produced are finished and
    written before this returns, so `printf '...' | personae game --stdio`
    gets every answer.

    Args:
        server: The NPCs.
        stdin: Where messages come from; default `sys.stdin.buffer`.
        stdout: Where messages go; default `sys.stdout.buffer` (see
            `claim_stdout` to keep stray prints out of it).
        drain_timeout: Seconds to wait for unfinished replies after stdin
            ends; `None` (default): until they are done.
        max_pending: Outgoing messages queued before the game counts as not
            reading and the session ends.
    """
    source = stdin if stdin is not None else sys.stdin.buffer
    sink = stdout if stdout is not None else sys.stdout.buffer
    loop = asyncio.get_running_loop()
    reader = _PipeReader(source, loop)
    writer = _PipeWriter(sink, loop)
    try:
        await run_line_session(server, reader.read, writer.write, name="stdio",
                               drain_timeout=drain_timeout, max_pending=max_pending)
    finally:
        writer.close()


class _PipeReader:
    """Reads chunks on a daemon thread; at most a few chunks wait in memory."""

    def __init__(self, stream: BinaryIO, loop: asyncio.AbstractEventLoop) -> None:
        self._stream = stream
        self._loop = loop
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue(4)
        threading.Thread(target=self._run, name="personae-stdio-reader", daemon=True).start()

    def _run(self) -> None:
        read = getattr(self._stream, "read1", self._stream.read)
        while True:
            try:
                data: bytes = read(CHUNK_BYTES)
            except (OSError, ValueError) as exc:
                log.info("stdio: reading stdin failed: %s", exc)
                data = b""
            try:
                asyncio.run_coroutine_threadsafe(self._chunks.put(data), self._loop).result()
            except (RuntimeError, asyncio.CancelledError):
                return  # the loop is gone: nobody wants the rest
            if not data:
                return

    async def read(self) -> bytes:
        return await self._chunks.get()


class _PipeWriter:
    """Writes lines on a daemon thread, so a game that does not read never blocks the loop."""

    def __init__(self, stream: BinaryIO, loop: asyncio.AbstractEventLoop) -> None:
        self._stream = stream
        self._loop = loop
        self._lines: queue.SimpleQueue[tuple[bytes, asyncio.Future[None]] | None] = (
            queue.SimpleQueue())
        threading.Thread(target=self._run, name="personae-stdio-writer", daemon=True).start()

    async def write(self, text: str) -> None:
        done: asyncio.Future[None] = self._loop.create_future()
        self._lines.put((text.encode("utf-8"), done))
        await done

    def close(self) -> None:
        self._lines.put(None)

    def _run(self) -> None:
        while True:
            item = self._lines.get()
            if item is None:
                return
            data, done = item
            error: BaseException | None = None
            try:
                _write_all(self._stream, data)
            except (OSError, ValueError) as exc:
                error = BrokenPipeError(f"stdout closed: {exc}")
            try:
                self._loop.call_soon_threadsafe(_settle, done, error)
            except RuntimeError:
                return  # the loop is closed
            if error is not None:
                return


def _write_all(stream: BinaryIO, data: bytes) -> None:
    # An unbuffered file may take part of the data per call.
    view = memoryview(data)
    while view:
        written = stream.write(view)
        if written is None:  # a non-blocking file that is full: give the reader a moment
            time.sleep(0.01)
            continue
        view = view[written:]
    stream.flush()


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
