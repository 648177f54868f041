"""The outgoing side of one connection: a bounded queue and the task that writes it.

A `GameSession` hands every message to `Outbox.send`, which never waits for
the peer: it encodes the message and queues it. One writer task per
connection takes lines from the queue and writes them. A peer that stops
reading fills only its own queue; when that queue is full the connection is
given up (`Outbox.failed` is set), so a stuck game can never hold up an NPC
that other connections are talking to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

from personae.integrations.game.protocol import MAX_MESSAGE_BYTES, ErrorMessage

__all__ = ["DEFAULT_MAX_PENDING", "Outbox", "encode", "too_large_error"]

log = logging.getLogger("personae.game.transports")

DEFAULT_MAX_PENDING: Final = 4096
"""Messages queued for one connection before it is considered stuck and closed."""

_CLOSE: Final = object()


def encode(message: dict[str, Any]) -> str:
    """Return `message` as compact JSON on one line (JSON escapes every newline)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def too_large_error(size_hint: int | None = None) -> dict[str, Any]:
    """Return the `error` message answering an incoming message above `MAX_MESSAGE_BYTES`.

    Args:
        size_hint: How many bytes arrived, when known.
    """
    got = f" (got {size_hint} bytes)" if size_hint is not None else ""
    text = (
        f"message longer than {MAX_MESSAGE_BYTES} bytes{got} was skipped; send smaller "
        "messages, e.g. split a large `world` snapshot into `update`s"
    )
    return ErrorMessage(id=f"srv-{uuid.uuid4().hex[:12]}", code="too_large",
                        message=text).model_dump(mode="json", exclude_none=True)


class Outbox:
    """Queue of outgoing messages for one connection, written by one task.

    Args:
        write: Writes one encoded message to the peer; may wait for the peer.
        name: The connection, for logs.
        max_pending: Queued messages allowed before the connection is given up.
    """

    def __init__(
        self,
        write: Callable[[str], Awaitable[None]],
        *,
        name: str,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self._write = write
        self.name = name
        self._queue: asyncio.Queue[object] = asyncio.Queue(max_pending)
        self.failed = asyncio.Event()
        """Set when the peer cannot be written to any more (gone, or not reading)."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"personae-game-writer-{self.name}"
        )

    async def send(self, message: dict[str, Any]) -> None:
        """Queue `message` for the peer; never waits for the peer.

        Once the connection has failed, messages are dropped: nobody is there
        to read them.
        """
        if self.failed.is_set():
            return
        try:
            self._queue.put_nowait(encode(message))
        except asyncio.QueueFull:
            log.warning("%s: the peer is not reading its messages (%d queued); closing it",
                        self.name, self._queue.maxsize)
            self.failed.set()

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            if item is _CLOSE:
                return
            assert isinstance(item, str)
            try:
                await self._write(item)
            except (OSError, RuntimeError, asyncio.IncompleteReadError) as exc:
                # The peer went away; what is left has no reader.
                log.info("%s: cannot write any more: %s", self.name, exc)
                self.failed.set()
                return
            except Exception:
                log.exception("%s: writing a message failed", self.name)
                self.failed.set()
                return

    async def aclose(self, *, timeout: float = 5.0) -> None:
        """Write what is queued (for at most `timeout` seconds), then stop the writer."""
        task = self._task
        if task is None:
            return
        self._task = None
        if not self.failed.is_set() and not task.done():
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(_CLOSE)
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                log.info("%s: gave up writing %d queued messages", self.name,
                         self._queue.qsize())
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
