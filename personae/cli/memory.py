"""`personae memory ...`: look into, export, erase and fill a persona's long-term memory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from personae.memory.store import MemoryStore
    from personae.personas.model import Persona
    from personae.scope import Scope

__all__ = ["app"]

app = typer.Typer(
    help="Long-term memory: recall, list, export, forget, ingest, stats.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

PersonaArg = Annotated[Path, typer.Argument(help="Persona file (YAML or JSON).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
UserOpt = Annotated[str, typer.Option(help="Whose memories.")]
GuildOpt = Annotated[str | None, typer.Option(help="Discord guild, if scoped by it.")]
ChannelOpt = Annotated[str | None, typer.Option(help="Channel, if scoped by it.")]
TenantOpt = Annotated[str | None, typer.Option(help="Tenant, if scoped by it.")]
WorldOpt = Annotated[str | None, typer.Option(help="Game world, if scoped by it.")]
SlotOpt = Annotated[str | None, typer.Option("--save-slot", help="Game save slot.")]


def _persona(path: Path) -> Persona:
    from personae.errors import PersonaeError
    from personae.personas.loading import load_persona

    try:
        return load_persona(path)
    except PersonaeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _scope(persona: Persona, user: str, guild: str | None, channel: str | None,
           tenant: str | None, world: str | None, save_slot: str | None) -> Scope:
    from personae.scope import Scope

    return Scope(persona=persona.id, user=user, guild=guild, channel=channel, tenant=tenant,
                 world=world, save_slot=save_slot)


def _store() -> MemoryStore:
    from personae.errors import PersonaeError
    from personae.memory.store import MemoryStore
    from personae.settings import get_settings

    try:
        return MemoryStore.from_settings(get_settings())
    except PersonaeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _dump(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


@app.command()
def recall(
    persona: PersonaArg,
    query: Annotated[str, typer.Argument(help="What to remember.")],
    user: UserOpt = "local", guild: GuildOpt = None, channel: ChannelOpt = None,
    tenant: TenantOpt = None, world: WorldOpt = None, save_slot: SlotOpt = None,
    limit: Annotated[int, typer.Option(help="How many memories at most.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Show what the persona would recall for QUERY, with every score component."""
    from personae.memory.scoring import recall as run_recall

    loaded = _persona(persona)
    scope = _scope(loaded, user, guild, channel, tenant, world, save_slot)
    with _store() as store:
        found = run_recall(store, scope, query, limit=limit,
                           half_life_days=loaded.memory.half_life_days, touch=False)
    if as_json:
        _dump(found.as_dict())
    else:
        typer.echo(found.explain())


@app.command("list")
def list_(
    persona: PersonaArg,
    user: UserOpt = "local", guild: GuildOpt = None, channel: ChannelOpt = None,
    tenant: TenantOpt = None, world: WorldOpt = None, save_slot: SlotOpt = None,
    kind: Annotated[str | None, typer.Option(help="episode, fact, lore or reflection.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List stored memories of one scope, newest first."""
    loaded = _persona(persona)
    scope = _scope(loaded, user, guild, channel, tenant, world, save_slot)
    if kind not in (None, "episode", "fact", "lore", "reflection"):
        typer.echo(f"error: --kind {kind!r} is not one of episode, fact, lore, reflection",
                   err=True)
        raise typer.Exit(1)
    with _store() as store:
        records = store.list(scope, kind=kind, limit=limit)  # type: ignore[arg-type]
    if as_json:
        _dump([r.model_dump() for r in records])
        return
    for r in records:
        mark = " (superseded)" if r.superseded_by else ""
        typer.echo(f"{r.id}  {r.kind:<10} imp {r.importance:>2}  {r.text}{mark}")
    typer.echo(f"{len(records)} memories", err=True)


@app.command()
def export(
    persona: PersonaArg,
    user: UserOpt = "local", guild: GuildOpt = None, channel: ChannelOpt = None,
    tenant: TenantOpt = None, world: WorldOpt = None, save_slot: SlotOpt = None,
    as_json: JsonOpt = True,
) -> None:
    """Export every memory of one scope as JSON (for a user's data request)."""
    loaded = _persona(persona)
    scope = _scope(loaded, user, guild, channel, tenant, world, save_slot)
    with _store() as store:
        records = store.export(scope)
    _dump({"persona": loaded.id, "scope": scope.keys(), "memories": records})


@app.command()
def forget(
    persona: PersonaArg,
    user: UserOpt = "local", guild: GuildOpt = None, channel: ChannelOpt = None,
    tenant: TenantOpt = None, world: WorldOpt = None, save_slot: SlotOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Erase a scope entirely: memories, transcript and checkpoints, compacted off disk."""
    from personae.agents.agent import Agent

    loaded = _persona(persona)
    scope = _scope(loaded, user, guild, channel, tenant, world, save_slot)
    if not yes and not typer.confirm(f"Erase everything {loaded.id} keeps about {scope.key()}?"):
        raise typer.Exit(1)

    async def run() -> int:
        agent = Agent(loaded, model="offline", memory=True)
        try:
            return await agent.forget(scope)
        finally:
            await agent.aclose()

    erased = asyncio.run(run())
    if as_json:
        _dump({"scope": scope.key(), "memories_erased": erased})
    else:
        typer.echo(f"Erased {erased} memories and the conversation of {scope.key()}.")


@app.command()
def ingest(
    persona: PersonaArg,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (md, txt, json, yaml).")],
    as_json: JsonOpt = False,
) -> None:
    """Add lore files to the persona's shared memory; unchanged chunks are skipped."""
    from rich.progress import Progress

    from personae.memory.ingest import ingest as run_ingest

    loaded = _persona(persona)
    with _store() as store, Progress(transient=True, disable=as_json) as progress:
        task = progress.add_task("ingesting", total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = run_ingest(store, loaded.id, paths, progress=step)
    summary = report.as_dict()
    if as_json:
        _dump(summary)
    else:
        typer.echo(f"{summary['files']} files, {summary['chunks']} chunks: "
                   f"{summary['added']} added, {summary['skipped']} unchanged")
        for path, reason in summary.get("errors", {}).items():
            typer.echo(f"  skipped {path}: {reason}", err=True)


@app.command()
def stats(
    persona: Annotated[Path | None, typer.Argument(help="Persona file; all when omitted.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Count memories per persona and kind."""
    persona_id = _persona(persona).id if persona is not None else None
    with _store() as store:
        numbers = store.stats(persona_id)
    if as_json:
        _dump(numbers)
    else:
        for key, value in numbers.items():
            typer.echo(f"{key}: {value}")
