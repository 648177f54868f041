"""`personae game ...`: serve NPCs to a game, print the protocol's schema, replay a recording.

`personae game --stdio PERSONA...` is for a game that starts the server
itself: protocol lines on stdin/stdout, logs on stderr. `personae game
serve PERSONA... --tcp PORT --http PORT` serves the same NPCs to any number
of games over TCP (JSON lines), WebSocket and HTTP + SSE at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from personae.integrations.game.server import GameServer

__all__ = ["app", "register"]


class _GameGroup(TyperGroup):
    """Reads `personae game --stdio PERSONA...` as the `stdio` command."""

    # `Any`: the context class is click's or typer's vendored copy, by typer version.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--stdio" in args and (not args or args[0] not in self.commands):
            at = args.index("--stdio")
            args = ["stdio", *args[:at], *args[at + 1:]]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_GameGroup,
    help="Game NPCs over the personae game protocol.\n\n"
         "personae game --stdio PERSONA...   for a game that spawns the server (stdin/stdout)\n\n"
         "personae game serve PERSONA... --tcp PORT --http PORT   for games that connect",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

PersonasArg = Annotated[list[Path], typer.Argument(
    help="Persona files (YAML or JSON), one NPC each.", show_default=False)]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", "-m", help="Model spec 'provider:model' or 'offline' for every NPC; default: "
    "each persona's, then PERSONAE_MODEL, then offline.")]
RecordOpt = Annotated[Path | None, typer.Option(
    "--record", help="Write every message and model output to this JSONL file, for "
    "`personae game replay`.")]
MemoryOpt = Annotated[bool | None, typer.Option(
    "--memory/--no-memory", help="Long-term memory on or off for every NPC; default: as each "
    "persona says.", show_default=False)]
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Log connections and sessions to stderr.")]


def register(root: typer.Typer) -> None:
    """Add the `game` command group to the `personae` app."""
    root.add_typer(app, name="game")


def _fail(message: object) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _log_to_stderr(verbose: bool) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _server(personas: list[Path], model: str | None, record: Path | None,
            memory: bool | None) -> GameServer:
    from personae.errors import PersonaeError
    from personae.integrations.game.server import GameServer

    options: dict[str, Any] = {"model": model, "memory": memory}
    try:
        if record is not None:
            from personae.integrations.game.recording import Recorder

            options["recorder"] = Recorder(record)
        return GameServer.from_files(personas, **options)
    except PersonaeError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail(f"{exc.filename or record}: {exc.strerror or exc}") from None


@app.command("stdio", hidden=True)
def stdio_command(
    personas: PersonasArg,
    model: ModelOpt = None,
    record: RecordOpt = None,
    memory: MemoryOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Serve NPCs on stdin/stdout (`personae game --stdio PERSONA...`).

    stdout carries protocol lines only; everything else goes to stderr. The
    server exits when stdin ends, after finishing the replies in progress.
    """
    from personae.integrations.game.transports.stdio import claim_stdout, serve_stdio

    _log_to_stderr(verbose)
    server = _server(personas, model, record, memory)
    # After loading, so a bad file is reported before the game's pipe is touched.
    protocol_out = claim_stdout()

    async def run() -> None:
        try:
            await server.start()
            await serve_stdio(server, stdout=protocol_out)
        finally:
            await server.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@app.command("serve")
def serve_command(
    personas: PersonasArg,
    tcp: Annotated[int | None, typer.Option(
        "--tcp", help="Serve JSON lines over TCP on this port (0: any free port).",
        min=0, max=65535)] = None,
    http: Annotated[int | None, typer.Option(
        "--http", help="Serve WebSocket (/v1/game/ws) and HTTP + SSE (/v1/game/sessions) on "
        "this port (0: any free port).", min=0, max=65535)] = None,
    host: Annotated[str, typer.Option(
        help="Address to listen on; 0.0.0.0 opens the NPCs to the network.")] = "127.0.0.1",
    model: ModelOpt = None,
    record: RecordOpt = None,
    memory: MemoryOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Serve NPCs to games that connect, over TCP and/or WebSocket and HTTP + SSE.

    Every connection is one game session; all share the same NPCs. Prints one
    `personae game: listening on URL` line per transport once it accepts
    connections, and runs until Ctrl-C or SIGTERM.
    """
    if tcp is None and http is None:
        raise _fail("give at least one of --tcp PORT and --http PORT, e.g. "
                    "`personae game serve npc.yaml --tcp 7777`")
    if http is not None:
        try:
            from personae.integrations.game.transports import web  # noqa: F401
        except ImportError as exc:
            raise _fail(exc) from None
    _log_to_stderr(verbose)
    server = _server(personas, model, record, memory)
    try:
        asyncio.run(_serve(server, host, tcp, http))
    except KeyboardInterrupt:
        typer.echo("", err=True)
    except OSError as exc:
        raise _fail(f"cannot listen on {host}: {exc.strerror or exc}; pick another port or "
                    "stop what uses it") from None


async def _serve(server: GameServer, host: str, tcp: int | None, http: int | None) -> None:
    from personae.integrations.game.transports.tcp import TcpListener

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    closers: list[Any] = []
    waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
    try:
        await server.start()
        if tcp is not None:
            listener = TcpListener(server, host=host, port=tcp)
            await listener.start()
            closers.append(listener)
            _announce(f"tcp://{_url_host(host)}:{listener.port}")
        if http is not None:
            from personae.integrations.game.transports.web import HttpListener

            web = HttpListener(server, host=host, port=http,
                               log_level="info" if logging.getLogger().level <= logging.INFO
                               else "warning")
            await web.start()
            closers.append(web)
            waits.append(asyncio.ensure_future(web.wait_closed()))
            _announce(f"http://{_url_host(host)}:{web.port}/v1/game")
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
        for closer in reversed(closers):
            await closer.aclose()
        await server.aclose()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _announce(url: str) -> None:
    # A fixed format on stdout, so scripts and tests can find the port.
    sys.stdout.write(f"personae game: listening on {url}\n")
    sys.stdout.flush()


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the game protocol: `client` and `server` messages."""
    from personae.integrations.game.protocol import protocol_schema

    typer.echo(json.dumps(protocol_schema(), indent=2, ensure_ascii=False))


@app.command("replay")
def replay_command(
    file: Annotated[Path, typer.Argument(help="A recording made with `--record FILE`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay a recording without a model and print where the NPCs now answer differently.

    Exit status: 0 when the replay matches the recording, 1 when it differs,
    2 when the file cannot be replayed.
    """
    from personae.errors import PersonaeError
    from personae.integrations.game.recording import replay

    if not file.is_file():
        typer.echo(f"error: {file}: no such file; record a session with "
                   "`personae game serve PERSONA... --tcp PORT --record FILE`", err=True)
        raise typer.Exit(2)
    try:
        report = replay(file)
    except PersonaeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({
            "path": str(report.path), "equal": report.equal, "sessions": report.sessions,
            "received": report.received, "expected": report.expected, "actual": report.actual,
            "differences": [
                {"session": d.session, "reply_to": d.reply_to, "npc": d.npc, "index": d.index,
                 "fields": d.fields(), "expected": d.expected, "actual": d.actual,
                 "text": str(d)}
                for d in report.differences
            ],
        }, ensure_ascii=False))
    else:
        typer.echo(report.summary())
    raise typer.Exit(0 if report.equal else 1)
