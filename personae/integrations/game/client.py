"""A blocking client for the personae game protocol, in one file of standard-library Python.

Copy this file into a game (Ren'Py, pygame, a script): it needs Python 3.9+
and nothing else, no personae, no pydantic. It talks JSON lines to
`personae game serve PERSONA... --tcp PORT` or to a `personae game --stdio`
process it starts itself.

A thread reads the server's messages in the background, so every call
works from a plain game loop: requests (`say`, `world`, `save`, ...) block
until their answer or their timeout, and messages nobody waits for
(answers to `send`, or to an `event` another part of the game sent) wait
in `poll()` and `messages()`.

Example:
    ```python
    import sys
    from client import PersonaeClient

    argv = [sys.executable, "-m", "personae.cli", "game", "--stdio",
            "examples/personas/innkeeper.yaml"]
    with PersonaeClient.spawn_stdio(argv) as npcs:
        npcs.hello(world="millbrook")
        for message in npcs.say("brenna-innkeeper", "Have you got a room?"):
            if message["type"] == "sentence":
                print("Brenna:", message["text"])
    ```
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

__all__ = [
    "PROTOCOL_VERSION",
    "ConnectionClosed",
    "PersonaeClient",
    "PersonaeClientError",
    "ResponseTimeout",
    "ServerError",
]

PROTOCOL_VERSION = 1
"""The protocol major version this client speaks."""

Message = dict[str, Any]

_FINAL = {
    "hello": ("welcome", "error"),
    "say": ("reply", "no_response", "error"),
    "event": ("reply", "no_response", "error"),
    "world": ("ack", "error"),
    "action_result": ("ack", "error"),
    "cancel": ("ack", "error"),
    "save": ("saved", "error"),
    "load": ("loaded", "error"),
}
"""For each request type, the message types that end its answer."""


class PersonaeClientError(Exception):
    """Root of the errors this client raises."""


class ConnectionClosed(PersonaeClientError):
    """The server closed the connection (or its process ended).

    Attributes:
        messages: What had arrived for the request before it closed.
    """

    def __init__(self, text: str, messages: list[Message] | None = None) -> None:
        super().__init__(text)
        self.messages = messages or []


class ResponseTimeout(PersonaeClientError, TimeoutError):
    """A request got no final answer in time.

    Attributes:
        messages: What had arrived for the request so far.
    """

    def __init__(self, text: str, messages: list[Message] | None = None) -> None:
        super().__init__(text)
        self.messages = messages or []


class ServerError(PersonaeClientError):
    """The server answered a request with an `error` message.

    Attributes:
        message: The `error` message.
        code: Its `code`, e.g. `unknown_npc`.
    """

    def __init__(self, message: Message) -> None:
        self.message = message
        self.code = str(message.get("code", ""))
        super().__init__(f"{self.code}: {message.get('message', '')}")


class _Waiter:
    def __init__(self, final: Sequence[str], count: int) -> None:
        self.final = final
        self.count = count  # final messages expected (an event has one per witness)
        self.messages: list[Message] = []
        self.done = threading.Event()
        self.complete = False
        self.abandoned = False


class _Stream:
    """A line-based byte stream to the server."""

    def read_line(self) -> bytes:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close_write(self) -> None:
        raise NotImplementedError

    def close(self, timeout: float) -> None:
        raise NotImplementedError


class _SocketStream(_Stream):
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")

    def read_line(self) -> bytes:
        try:
            return bytes(self.file.readline())
        except (OSError, ValueError):
            return b""

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self, timeout: float) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.file.close()
        self.sock.close()


class _ProcessStream(_Stream):
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self.stdin: IO[bytes] = process.stdin
        self.stdout: IO[bytes] = process.stdout

    def read_line(self) -> bytes:
        try:
            return self.stdout.readline()
        except (OSError, ValueError):
            return b""

    def write(self, data: bytes) -> None:
        self.stdin.write(data)
        self.stdin.flush()

    def close_write(self) -> None:
        with contextlib.suppress(OSError):
            self.stdin.close()

    def close(self, timeout: float) -> None:
        self.close_write()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.stdout.close()


class PersonaeClient:
    """A connection to a personae game server.

    Make one with `connect_tcp` or `spawn_stdio`; use it as a context
    manager, or call `close()`.

    Args:
        stream: The connection (made by `connect_tcp` / `spawn_stdio`).
        timeout: Default seconds a request waits for its final answer.
        client: Name sent in `hello`.
    """

    def __init__(self, stream: _Stream, *, timeout: float = 30.0,
                 client: str = "personae-client.py") -> None:
        self._stream = stream
        self.timeout = timeout
        self.client = client
        self.welcome: Message | None = None
        """The server's `welcome`, once `hello()` was answered."""
        self.bad_lines = 0
        """Lines from the server that were not JSON objects (skipped)."""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._waiters: dict[str, _Waiter] = {}
        self._inbox: queue.Queue[Message | None] = queue.Queue()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, name="personae-client-reader",
                                        daemon=True)
        self._reader.start()

    # -- making one --------------------------------------------------------------

    @classmethod
    def connect_tcp(cls, host: str = "127.0.0.1", port: int = 7777, *,
                    timeout: float = 30.0, connect_timeout: float = 10.0) -> PersonaeClient:
        """Connect to `personae game serve ... --tcp PORT`.

        Args:
            host: The server's address.
            port: The server's port.
            timeout: Default seconds a request waits for its answer.
            connect_timeout: Seconds to wait for the connection itself.

        Raises:
            OSError: When the server cannot be reached.
        """
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        sock.settimeout(None)
        # Messages are small and latency matters more than packet count.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(_SocketStream(sock), timeout=timeout)

    @classmethod
    def spawn_stdio(cls, argv: Sequence[str], *, timeout: float = 30.0,
                    env: Mapping[str, str] | None = None, cwd: str | None = None,
                    stderr: Any = None) -> PersonaeClient:
        """Start a server process speaking on its stdin/stdout, e.g. `personae game --stdio`.

        Args:
            argv: The command, e.g. `["personae", "game", "--stdio", "npc.yaml"]`.
            timeout: Default seconds a request waits for its answer.
            env: Environment of the process; default this one's.
            cwd: Working directory of the process.
            stderr: Where its log goes (a file, `subprocess.DEVNULL`); default:
                this process's stderr.

        Raises:
            OSError: When the command cannot be started.
        """
        process = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
            env=dict(env) if env is not None else None, cwd=cwd, bufsize=0)
        return cls(_ProcessStream(process), timeout=timeout)

    # -- low level ---------------------------------------------------------------

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The server process started by `spawn_stdio` (its `returncode` after `close()`)."""
        return self._stream.process if isinstance(self._stream, _ProcessStream) else None

    @property
    def closed(self) -> bool:
        """True once the server closed the connection."""
        return self._closed.is_set()

    def new_id(self) -> str:
        """Return a fresh message id."""
        return f"m{next(self._ids)}"

    def send(self, message: Mapping[str, Any]) -> str:
        """Send one message without waiting; return its id (one is added if missing).

        What the server answers arrives through `poll()` and `messages()`.

        Raises:
            ConnectionClosed: When the connection is gone.
        """
        data = dict(message)
        data.setdefault("id", self.new_id())
        self._write(data)
        return str(data["id"])

    def request(self, message: Mapping[str, Any], *, final: Sequence[str] | None = None,
                count: int = 1, timeout: float | None = None) -> list[Message]:
        """Send `message` and return every message answering it, the final one last.

        Args:
            message: The message; an `id` is added if missing.
            final: Message types that end the answer; default by request type.
            count: How many final messages end it (an `event` gets one per
                witness); an `error` always ends it.
            timeout: Seconds to wait; default the client's `timeout`.

        Raises:
            ResponseTimeout: No final answer in time (`.messages` has the rest).
            ConnectionClosed: The connection ended first.
        """
        data = dict(message)
        data.setdefault("id", self.new_id())
        rid = str(data["id"])
        ends = final if final is not None else _FINAL.get(str(data.get("type")), ("error",))
        waiter = _Waiter(ends, max(1, count))
        with self._lock:
            if self._closed.is_set():
                raise ConnectionClosed("the connection to the personae server is closed")
            self._waiters[rid] = waiter
        try:
            self._write(data)
        except ConnectionClosed:
            with self._lock:
                self._waiters.pop(rid, None)
            raise
        wait = self.timeout if timeout is None else timeout
        if not waiter.done.wait(wait):
            with self._lock:
                if not waiter.done.is_set():
                    # Late answers to it are dropped instead of surfacing in poll().
                    waiter.abandoned = True
                    raise ResponseTimeout(
                        f"no answer to {data.get('type')} {rid!r} within {wait:g}s",
                        list(waiter.messages))
        if not waiter.complete:
            raise ConnectionClosed(
                f"the server closed the connection before answering {rid!r}",
                list(waiter.messages))
        return list(waiter.messages)

    def poll(self) -> list[Message]:
        """Return the messages that arrived and nobody waits for; never blocks."""
        out: list[Message] = []
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return out
            if item is None:
                self._inbox.put(None)  # keep the end marker for messages()
                return out
            out.append(item)

    def messages(self, timeout: float | None = None) -> Iterator[Message]:
        """Yield messages nobody waits for, as they arrive.

        Args:
            timeout: Stop after this many seconds without a message; `None`:
                only when the connection closes.
        """
        while True:
            try:
                item = self._inbox.get(timeout=timeout)
            except queue.Empty:
                return
            if item is None:
                self._inbox.put(None)
                return
            yield item

    # -- the protocol --------------------------------------------------------------

    def hello(self, *, world: str = "default", slot: str = "default", streaming: bool = False,
              sentences: bool = True, emotions: bool = True, actions: bool = True,
              timeout: float | None = None) -> Message:
        """Open the session; return the server's `welcome` (its `npcs` list the NPCs).

        Args:
            world: The game world memories belong to.
            slot: The save slot being played.
            streaming: Ask for `delta` messages while replies are produced.
            sentences: Ask for `sentence` messages.
            emotions: Ask for `emotion` messages.
            actions: The game carries out host actions.
            timeout: Seconds to wait.

        Raises:
            ServerError: The server refused (e.g. `protocol_version`).
        """
        welcome = self._final({
            "type": "hello", "protocol": PROTOCOL_VERSION, "client": self.client,
            "world": world, "slot": slot,
            "capabilities": {"streaming": streaming, "sentences": sentences,
                             "emotions": emotions, "actions": actions},
        }, timeout)
        self.welcome = welcome
        return welcome

    @property
    def npcs(self) -> list[str]:
        """The NPC ids from the server's `welcome` (empty before `hello()`)."""
        return list(self.welcome.get("npcs", [])) if self.welcome else []

    def say(self, npc: str, text: str, *, player: Any = None,
            timeout: float | None = None) -> list[Message]:
        """Say `text` to `npc` as the player; return every message of the answer.

        The answer is sentences, actions, emotions (as asked for in `hello`),
        then `reply`, `no_response` or `error` last.

        Args:
            npc: The NPC's id.
            text: What the player says.
            player: The player's id (a string) or `{"id": ..., "name": ...}`;
                default the server's default player.
            timeout: Seconds to wait.
        """
        message: Message = {"type": "say", "npc": npc, "text": text}
        if player is not None:
            message["player"] = {"id": player} if isinstance(player, str) else dict(player)
        return self.request(message, timeout=timeout)

    def world(self, npc: str | None = None, *, mode: str = "snapshot",
              timeout: float | None = None, **fields: Any) -> Message:
        """Tell NPCs what they perceive and may do; return the `ack`.

        Args:
            npc: The NPC it is for; `None`: every NPC of the session.
            mode: `snapshot` (replace) or `update` (change the fields given).
            timeout: Seconds to wait.
            **fields: `location`, `time`, `weather`, `actors`, `facts`,
                `affordances`, as in the protocol.

        Raises:
            ServerError: The server refused the message.
        """
        message: Message = {"type": "world", "mode": mode}
        if npc is not None:
            message["npc"] = npc
        message.update({k: v for k, v in fields.items() if v is not None})
        return self._final(message, timeout)

    def event(self, description: str, *, npc: str | None = None,
              actor: str | None = None, witnesses: Sequence[str] | None = None,
              react: str = "auto", timeout: float | None = None) -> list[Message]:
        """Something happened; return the answers, until every witness has answered.

        Each witness (the addressed NPC when none are listed) ends its part
        with `reply` or `no_response`; an `error` ends the whole answer.

        Args:
            description: What happened, in plain words.
            npc: The NPC addressed, if any.
            actor: Id of who did it.
            witnesses: NPC ids that perceived it.
            react: `auto` (only the addressed NPC answers), `always` or `never`.
            timeout: Seconds to wait.
        """
        message: Message = {"type": "event", "description": description, "react": react}
        if npc is not None:
            message["npc"] = npc
        if actor is not None:
            message["actor"] = actor
        if witnesses:
            message["witnesses"] = list(witnesses)
        perceivers = set(witnesses) if witnesses else {npc}
        return self.request(message, count=len(perceivers), timeout=timeout)

    def action_result(self, action_id: str, ok: bool, detail: str = "", *,
                      timeout: float | None = None) -> Message:
        """Report whether an `action` worked; return the `ack`.

        Raises:
            ServerError: The server refused the message.
        """
        return self._final({"type": "action_result", "action_id": action_id, "ok": ok,
                            "detail": detail}, timeout)

    def cancel(self, target: str, *, timeout: float | None = None) -> list[Message]:
        """Stop answering the request `target` (the `say`/`event` id returned by `send`)."""
        return self.request({"type": "cancel", "target": target}, timeout=timeout)

    def save(self, npc: str | None = None, *, timeout: float | None = None) -> str:
        """Return the NPCs' state as an opaque string for the game's save file.

        Raises:
            ServerError: The server could not save.
        """
        message: Message = {"type": "save"}
        if npc is not None:
            message["npc"] = npc
        return str(self._final(message, timeout)["blob"])

    def load(self, blob: str, *, slot: str | None = None,
             timeout: float | None = None) -> Message:
        """Restore a `save()` blob; return the `loaded` message.

        Raises:
            ServerError: The blob was refused (`bad_blob`).
        """
        message: Message = {"type": "load", "blob": blob}
        if slot is not None:
            message["slot"] = slot
        return self._final(message, timeout)

    # -- closing -----------------------------------------------------------------

    def close(self, timeout: float = 10.0) -> None:
        """Close the connection; a spawned server is given `timeout` seconds to exit.

        The server finishes replies still in progress before it closes, so
        their messages can still be read until then.
        """
        self._stream.close_write()
        self._reader.join(timeout)
        self._stream.close(timeout)
        self._reader.join(1.0)

    def __enter__(self) -> PersonaeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- inside ------------------------------------------------------------------

    def _final(self, message: Message, timeout: float | None) -> Message:
        last = self.request(message, timeout=timeout)[-1]
        if last.get("type") == "error":
            raise ServerError(last)
        return last

    def _write(self, message: Message) -> None:
        line = json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._write_lock:
            if self._closed.is_set():
                raise ConnectionClosed("the connection to the personae server is closed")
            try:
                self._stream.write(line.encode("utf-8"))
            except (OSError, ValueError) as exc:
                raise ConnectionClosed(f"cannot write to the personae server: {exc}") from exc

    def _read(self) -> None:
        try:
            while True:
                line = self._stream.read_line()
                if not line:
                    return
                try:
                    message = json.loads(line)
                except ValueError:
                    self.bad_lines += 1
                    continue
                if not isinstance(message, dict):
                    self.bad_lines += 1
                    continue
                self._dispatch(message)
        finally:
            with self._lock:
                self._closed.set()
                for waiter in self._waiters.values():
                    waiter.done.set()
                self._waiters.clear()
            self._inbox.put(None)

    def _dispatch(self, message: Message) -> None:
        with self._lock:
            rid = message.get("reply_to")
            waiter = self._waiters.get(rid) if isinstance(rid, str) else None
            if waiter is None:
                self._inbox.put(message)
                return
            kind = message.get("type")
            if not waiter.abandoned:
                waiter.messages.append(message)
            if kind in waiter.final:
                waiter.count -= 1
                if waiter.count <= 0 or kind == "error":
                    del self._waiters[str(rid)]
                    waiter.complete = True
                    waiter.done.set()
