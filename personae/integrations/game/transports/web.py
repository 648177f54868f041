"""The game protocol over WebSocket and over HTTP with server-sent events (FastAPI).

Routes of `http_app(server)`:

- `GET /v1/game/ws` (WebSocket): one session per connection, one message
  per frame, both ways.
- `POST /v1/game/sessions`: open a session; answers `{"session": ID, ...}`.
- `POST /v1/game/sessions/{ID}/messages`: one message (the JSON object) per
  request; answers `202 {"accepted": true}`. Everything the NPCs say comes
  back on the event stream, errors about the message included.
- `GET /v1/game/sessions/{ID}/events`: the session's messages as server-sent
  events, `data:` one JSON message, `id:` its sequence number. Reconnect with
  `Last-Event-ID` (or `?after=N`) to get what was missed, as far as it is
  still kept (`max_events`).
- `DELETE /v1/game/sessions/{ID}`: close the session.

A session nobody reads or writes for `session_ttl` seconds is closed.

Needs the `game` extra: `pip install "personae[game]"`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

from personae.integrations.game.protocol import MAX_MESSAGE_BYTES
from personae.integrations.game.transports._outbox import (
    DEFAULT_MAX_PENDING,
    Outbox,
    encode,
    too_large_error,
)

try:
    import uvicorn
    from fastapi import FastAPI, Request, WebSocket
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from starlette.websockets import WebSocketDisconnect, WebSocketState
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the game protocol over HTTP and WebSocket needs FastAPI and uvicorn: "
        'pip install "personae[game]"'
    ) from exc

if TYPE_CHECKING:
    from personae.integrations.game.server import GameServer, GameSession

__all__ = ["HttpListener", "HttpSessions", "http_app", "serve_http"]

log = logging.getLogger("personae.game.transports")

PREFIX: Final = "/v1/game"
KEEPALIVE_SECONDS: Final = 15.0
"""An SSE comment is sent this often so proxies keep an idle stream open."""


class _HttpSession:
    """One HTTP game session: its `GameSession` and the events kept for its readers."""

    def __init__(self, sid: str, max_events: int) -> None:
        self.id = sid
        self.session: GameSession | None = None
        self.events: deque[tuple[int, str]] = deque(maxlen=max_events)
        self.seq = 0
        self.closed = False
        self.readers = 0
        self.seen = time.monotonic()
        self.lock = asyncio.Lock()  # keeps messages in the order they were posted
        self._wake = asyncio.Event()

    async def push(self, message: dict[str, Any]) -> None:
        self.seq += 1
        self.events.append((self.seq, encode(message)))
        self._wake.set()
        self._wake = asyncio.Event()

    def wake_all(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def after(self, seq: int) -> list[tuple[int, str]]:
        return [event for event in self.events if event[0] > seq]


class HttpSessions:
    """The open HTTP sessions of one app (what `DELETE` and expiry act on).

    Args:
        server: The NPCs.
        session_ttl: Seconds without a request or an open event stream after
            which a session is closed.
        max_events: Events kept per session for readers that reconnect.
        max_sessions: Open sessions allowed at once.
    """

    def __init__(self, server: GameServer, *, session_ttl: float, max_events: int,
                 max_sessions: int) -> None:
        self.server = server
        self.session_ttl = session_ttl
        self.max_events = max_events
        self.max_sessions = max_sessions
        self._open: dict[str, _HttpSession] = {}

    def __len__(self) -> int:
        return len(self._open)

    async def open(self) -> _HttpSession | None:
        """Open a session, or return `None` when too many are open."""
        await self._expire()
        if len(self._open) >= self.max_sessions:
            return None
        entry = _HttpSession(secrets.token_urlsafe(16), self.max_events)
        entry.session = self.server.session(entry.push)
        self._open[entry.id] = entry
        return entry

    def get(self, sid: str) -> _HttpSession | None:
        """Return the open session `sid` (and mark it used), or `None`."""
        entry = self._open.get(sid)
        if entry is not None:
            entry.seen = time.monotonic()
        return entry

    async def close(self, sid: str) -> bool:
        """Close one session; `False` if there was none."""
        entry = self._open.pop(sid, None)
        if entry is None:
            return False
        entry.closed = True
        entry.wake_all()
        if entry.session is not None:
            await entry.session.close()
        return True

    async def aclose(self) -> None:
        """Close every session (their event streams end)."""
        for sid in list(self._open):
            await self.close(sid)

    async def _expire(self) -> None:
        now = time.monotonic()
        for sid, entry in list(self._open.items()):
            if entry.readers == 0 and now - entry.seen > self.session_ttl:
                log.info("http session %s: idle for %.0fs, closed", sid, now - entry.seen)
                await self.close(sid)


def http_app(
    server: GameServer,
    *,
    session_ttl: float = 300.0,
    max_events: int = 1000,
    max_sessions: int = 1000,
    max_pending: int = DEFAULT_MAX_PENDING,
) -> FastAPI:
    """Build the FastAPI app serving `server` over WebSocket and HTTP + SSE.

    The app does not own `server`: close it yourself after the app stops.

    Args:
        server: The NPCs, shared by every connection.
        session_ttl: Seconds an HTTP session may sit unused before it is closed.
        max_events: Events kept per HTTP session for readers that reconnect.
        max_sessions: HTTP sessions open at once; more get `503`.
        max_pending: Messages queued for a WebSocket that does not read
            before it is closed.

    Returns:
        The app; `app.state.game_sessions` is its `HttpSessions`.

    Example:
        ```python
        import uvicorn

        app = http_app(GameServer.from_files(["examples/personas/innkeeper.yaml"]))
        uvicorn.run(app, host="127.0.0.1", port=8765)
        ```
    """
    sessions = HttpSessions(server, session_ttl=session_ttl, max_events=max_events,
                            max_sessions=max_sessions)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await sessions.aclose()

    app = FastAPI(title="personae game protocol", lifespan=lifespan)
    app.state.game_sessions = sessions
    websocket_count = 0

    @app.websocket(f"{PREFIX}/ws")
    async def game_ws(websocket: WebSocket) -> None:
        nonlocal websocket_count
        await websocket.accept()
        websocket_count += 1
        name = f"ws#{websocket_count}"

        async def write(text: str) -> None:
            try:
                await websocket.send_text(text)
            except Exception as exc:  # starlette and uvicorn each raise their own kind
                raise ConnectionResetError(f"websocket closed: {exc}") from exc

        outbox = Outbox(write, name=name, max_pending=max_pending)
        outbox.start()
        session = server.session(outbox.send)
        reading = asyncio.create_task(_read_frames(websocket, session, outbox, name))
        failed = asyncio.create_task(outbox.failed.wait())
        try:
            await asyncio.wait({reading, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reading, failed):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await session.close()
            await outbox.aclose(timeout=2.0)
            if websocket.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    # 1008: policy violation, for a peer that stopped reading.
                    await websocket.close(1008 if outbox.failed.is_set() else 1000)
            log.info("%s: session closed", name)

    @app.post(f"{PREFIX}/sessions", status_code=201)
    async def open_session() -> Response:
        entry = await sessions.open()
        if entry is None:
            return JSONResponse(
                {"error": f"{sessions.max_sessions} game sessions are open already; close "
                          "one (DELETE /v1/game/sessions/ID) or wait for idle ones to expire"},
                status_code=503)
        base = f"{PREFIX}/sessions/{entry.id}"
        return JSONResponse({"session": entry.id, "messages": f"{base}/messages",
                             "events": f"{base}/events"}, status_code=201)

    @app.post(f"{PREFIX}/sessions/{{sid}}/messages", status_code=202)
    async def post_message(sid: str, request: Request) -> Response:
        entry = sessions.get(sid)
        if entry is None or entry.session is None:
            return _no_session(sid)
        body = await _read_body(request)
        if body is None:
            return JSONResponse(too_large_error(), status_code=413)
        async with entry.lock:
            try:
                await entry.session.receive(body)
            except Exception:
                # The session reports bad input itself; this is a bug of ours.
                log.exception("http session %s: handling a message failed", sid)
                return JSONResponse({"error": "internal error; see the server log"},
                                    status_code=500)
        return JSONResponse({"accepted": True}, status_code=202)

    @app.get(f"{PREFIX}/sessions/{{sid}}/events")
    async def events(sid: str, request: Request, after: int | None = None) -> Response:
        entry = sessions.get(sid)
        if entry is None:
            return _no_session(sid)
        start = after if after is not None else _last_event_id(request)
        return StreamingResponse(
            _event_stream(entry, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.delete(f"{PREFIX}/sessions/{{sid}}", status_code=204)
    async def close_session(sid: str) -> Response:
        if not await sessions.close(sid):
            return _no_session(sid)
        return Response(status_code=204)

    return app


def _no_session(sid: str) -> JSONResponse:
    return JSONResponse(
        {"error": f"no game session {sid!r}; it was closed or expired. Open a new one with "
                  f"POST {PREFIX}/sessions"},
        status_code=404)


def _last_event_id(request: Request) -> int:
    raw = request.headers.get("last-event-id", "")
    return int(raw) if raw.isdigit() else 0


async def _read_body(request: Request) -> bytes | None:
    """Read the request body, or return `None` as soon as it passes `MAX_MESSAGE_BYTES`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_MESSAGE_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_MESSAGE_BYTES:
            return None
    return bytes(body)


async def _event_stream(entry: _HttpSession, after: int) -> AsyncIterator[str]:
    entry.readers += 1
    try:
        # Opens the stream at once, so a client knows it is subscribed.
        yield ": personae game events\n\n"
        sent = after
        while True:
            pending = entry.after(sent)
            for seq, data in pending:
                yield f"id: {seq}\ndata: {data}\n\n"
                sent = seq
            if entry.closed:
                return
            if not pending:
                await entry.wait(KEEPALIVE_SECONDS)
                if not entry.after(sent) and not entry.closed:
                    yield ": keepalive\n\n"
    finally:
        entry.readers -= 1
        entry.seen = time.monotonic()


async def _read_frames(
    websocket: WebSocket, session: GameSession, outbox: Outbox, name: str
) -> None:
    while True:
        try:
            frame = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if frame["type"] == "websocket.disconnect":
            return
        data: str | bytes | None = frame.get("text")
        if data is None:
            data = frame.get("bytes")
        if data is None:
            continue
        size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
        if size > MAX_MESSAGE_BYTES:
            log.info("%s: skipped a message of %d bytes", name, size)
            await outbox.send(too_large_error(size))
            continue
        try:
            await session.receive(data)
        except Exception:
            log.exception("%s: handling a message failed", name)


class HttpListener:
    """Runs `http_app(server)` with uvicorn inside the current event loop.

    Args:
        server: The NPCs.
        host: Address to listen on; `127.0.0.1` keeps it on this machine.
        port: Port; `0` picks a free one (see `port`).
        log_level: uvicorn's log level.
        **app_options: Passed to `http_app`.

    Example:
        ```python
        async with HttpListener(server, port=0) as listener:
            print(f"ws://127.0.0.1:{listener.port}/v1/game/ws")
            await listener.wait_closed()
        ```
    """

    def __init__(self, server: GameServer, *, host: str = "127.0.0.1", port: int = 0,
                 log_level: str = "warning", **app_options: Any) -> None:
        self.app = http_app(server, **app_options)
        self.host = host
        self._port = port
        self._config = uvicorn.Config(self.app, host=host, port=port, log_level=log_level,
                                      lifespan="on", timeout_graceful_shutdown=3,
                                      access_log=False)
        self._server = uvicorn.Server(self._config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port listened on (the real one when `0` was asked for)."""
        return self._port

    async def start(self) -> None:
        """Bind the port and start uvicorn.

        Raises:
            OSError: When the port cannot be bound (in use, or not allowed).
        """
        # Binding here, not in uvicorn, turns a busy port into an OSError for the
        # caller instead of uvicorn's sys.exit inside a task.
        sock = socket.create_server((self.host, self._port))
        self._port = int(sock.getsockname()[1])
        self._task = asyncio.get_running_loop().create_task(
            self._server.serve(sockets=[sock]), name="personae-game-http")
        deadline = time.monotonic() + 60.0
        while not self._server.started and not self._task.done():
            if time.monotonic() > deadline:
                self._server.should_exit = True
                raise OSError(f"the HTTP server on {self.host}:{self._port} did not start "
                              "within 60s")
            await asyncio.sleep(0.01)
        if self._task.done():
            sock.close()
            self._task.result()
            raise OSError(f"the HTTP server on {self.host}:{self._port} stopped at startup; "
                          "see the log above")
        log.info("game protocol on http://%s:%d%s", self.host, self._port, PREFIX)

    async def wait_closed(self) -> None:
        """Wait until the server stops (e.g. on Ctrl-C)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def aclose(self) -> None:
        """End every session and stop the server."""
        sessions: HttpSessions = self.app.state.game_sessions
        await sessions.aclose()
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, SystemExit):
                await self._task
            self._task = None

    async def __aenter__(self) -> HttpListener:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def serve_http(server: GameServer, host: str = "127.0.0.1", port: int = 0,
                     **app_options: Any) -> HttpListener:
    """Start serving `server` over WebSocket and HTTP + SSE; return the running listener.

    Args:
        server: The NPCs.
        host: Address to listen on (default this machine only).
        port: Port, `0` for any free one (read it from `HttpListener.port`).
        **app_options: Passed to `http_app`.
    """
    listener = HttpListener(server, host=host, port=port, **app_options)
    await listener.start()
    return listener
