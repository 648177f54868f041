"""The `personae` command line: a thin shell that parses, calls the library and prints.

Heavy imports (LangChain, torch) happen inside commands, so `personae --help`
and `personae validate` start fast.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from personae.agents.agent import Agent

__all__ = ["app", "main"]

app = typer.Typer(
    name="personae",
    help="Characters that talk: validate, inspect and chat with persona files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

PersonaArg = Annotated[Path, typer.Argument(help="Persona file (YAML or JSON).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model spec 'provider:model' or 'offline'; "
                 "default: the persona's, then PERSONAE_MODEL, then offline."),
]


def _debug() -> bool:
    return os.environ.get("PERSONAE_DEBUG", "") not in ("", "0", "false")


def _fail(exc: Exception) -> typer.Exit:
    """Print a user-facing error to stderr and return the exit to raise."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@app.command()
def schema() -> None:
    """Print the JSON Schema of persona files, for editors that validate YAML."""
    from personae.personas.model import Persona

    typer.echo(json.dumps(Persona.model_json_schema(by_alias=True), indent=2, ensure_ascii=False))


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Persona files to check.")],
    as_json: JsonOpt = False,
) -> None:
    """Check persona files and report every problem in every file; exit 1 if any."""
    from personae.personas.loading import validate_files

    results = validate_files(files)
    bad = sum(1 for problems in results.values() if problems)
    if as_json:
        typer.echo(json.dumps({
            "ok": bad == 0,
            "files": [
                {"path": str(path), "ok": not problems,
                 "problems": [p.as_dict() for p in problems]}
                for path, problems in results.items()
            ],
        }, ensure_ascii=False))
    else:
        for path, problems in results.items():
            if not problems:
                typer.echo(f"ok  {path}")
            for problem in problems:
                typer.echo(str(problem), err=True)
        typer.echo(f"{len(results) - bad} ok, {bad} with problems", err=bad > 0)
    raise typer.Exit(1 if bad else 0)


@app.command()
def prompt(
    persona: PersonaArg,
    message: Annotated[
        list[str] | None,
        typer.Option(
            "--message",
            help="What is said; repeat for several messages, oldest first. Lore keys are "
            "looked for in the last `lorebook.scan_depth` of them.",
        ),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Who speaks, for {{user}} in the persona.")
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of lore probability rolls and inclusion-group draws.")
    ] = 0,
    budget: Annotated[int | None, typer.Option(help="Token budget of the prompt.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the system prompt a message would get, and explain what went in and why.

    The explanation ends with the lore trace: every lore entry, active or
    not, and why (`lore` in `--json`).
    """
    from personae.errors import PersonaeError
    from personae.personas.loading import load_persona
    from personae.personas.lore import scan
    from personae.personas.prompt import compile_prompt

    try:
        loaded = load_persona(persona)
    except PersonaeError as exc:
        raise _fail(exc) from None
    said = list(message or [])
    found = scan(loaded.lore, said, lorebook=loaded.lorebook, seed=seed)
    compiled = compile_prompt(loaded, lore=found, budget=budget, user=user)
    if as_json:
        typer.echo(json.dumps(compiled.as_dict(), ensure_ascii=False))
        return
    typer.echo(compiled.text)
    typer.echo("\n---- explain ----")
    typer.echo(compiled.explain())


@app.command()
def chat(
    persona: PersonaArg,
    model: ModelOpt = None,
    user: Annotated[str, typer.Option(help="Who you are; history is kept per user.")] = "local",
    as_json: JsonOpt = False,
) -> None:
    """Talk to a persona. Interactive in a terminal; one reply per input line in a pipe.

    In the terminal: /reset forgets this conversation, /explain shows the last
    prompt, /quit leaves. Replies of the offline model are marked (offline).
    """
    from personae.agents.agent import Agent
    from personae.agents.turn import Scope, Turn
    from personae.errors import PersonaeError

    try:
        agent = Agent.from_file(persona, model=model)
    except PersonaeError as exc:
        raise _fail(exc) from None
    scope = Scope(persona=agent.persona.id, user=user)
    # Loading the embedding model takes seconds: do it while the user types.
    # The first turn waits for it, so heavy imports never race between threads.
    warming = threading.Thread(target=agent.warm, name="personae-warm", daemon=True)
    warming.start()
    runner = _pipe if not sys.stdin.isatty() else _repl
    try:
        asyncio.run(runner(agent, scope, as_json, Turn, warming))
    except KeyboardInterrupt:
        typer.echo("")


async def _pipe(
    agent: Agent, scope: Any, as_json: bool, turn_cls: Any, warming: threading.Thread
) -> None:
    """Read one message per line from stdin, print one reply per message."""
    await asyncio.to_thread(warming.join)
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            reply = await agent.respond(turn_cls(text=text, scope=scope))
            if as_json:
                out = {"text": reply.text, "model": reply.model, "flags": reply.flags,
                       "emotion": reply.emotion,
                       "actions": [a.model_dump() for a in reply.actions]}
                sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
            else:
                sys.stdout.write(reply.text.replace("\n", " ") + "\n")
            sys.stdout.flush()
    finally:
        await agent.aclose()


async def _repl(
    agent: Agent, scope: Any, as_json: bool, turn_cls: Any, warming: threading.Thread
) -> None:
    """Interactive chat with streamed replies."""
    from rich.console import Console

    from personae.agents.turn import Reply

    console = Console(highlight=False)
    name = agent.persona.display_name
    console.print(f"[dim]Talking to {name} ({agent.chain[0][0]}). /reset, /explain, /quit[/dim]")
    if agent.persona.greetings:
        console.print(f"[bold]{name}:[/bold] {agent.persona.greetings[0]}")
    last_text = ""
    try:
        while True:
            try:
                line = await asyncio.to_thread(console.input, "[bold cyan]you>[/bold cyan] ")
                text = line.strip()
            except EOFError:
                break
            if not text:
                continue
            await asyncio.to_thread(warming.join)
            if text in ("/quit", "/exit"):
                break
            if text == "/reset":
                await agent.reset(scope)
                console.print("[dim]Conversation forgotten.[/dim]")
                continue
            if text == "/explain":
                compiled = await agent.explain(turn_cls(text=last_text, scope=scope))
                console.print(compiled.explain(), markup=False)
                continue
            last_text = text
            console.print(f"[bold]{name}:[/bold] ", end="")
            async for item in agent.stream(turn_cls(text=text, scope=scope)):
                if isinstance(item, Reply):
                    marks = [f for f in item.flags if f in ("offline", "fallback", "error")]
                    for action in item.actions:
                        console.print(f"\n[magenta]  -> action {action.name} "
                                      f"{json.dumps(action.arguments)}[/magenta]", end="")
                    console.print(f" [dim]({', '.join(marks)})[/dim]" if marks else "")
                else:
                    console.print(item, end="", markup=False)
    finally:
        await agent.aclose()


def _mount_groups() -> None:
    from personae.cli import cards, discord, evals, game, safety, serve
    from personae.cli.memory import app as memory_app

    app.add_typer(memory_app, name="memory")
    cards.register(app)
    game.register(app)
    discord.register(app)
    evals.register(app)
    safety.register(app)
    serve.register(app)


_mount_groups()


def main() -> None:
    """Entry point of the `personae` console script."""
    from personae.errors import PersonaeError

    try:
        app()
    except PersonaeError as exc:
        if _debug():
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)

