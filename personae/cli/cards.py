"""`personae import` and `personae export`: Character Cards in, Character Cards out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["export_command", "import_command", "register"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")]


def register(app: typer.Typer) -> None:
    """Add the `import` and `export` commands to the `personae` app."""
    app.command("import")(import_command)
    app.command("export")(export_command)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def import_command(
    file: Annotated[Path, typer.Argument(
        help="Character Card (.json, .png, .charx), lorebook_v3 .json or ElizaOS character.json.")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Persona file to write (.yaml or .json); for a lorebook, the "
        "lore file.")],
    persona_id: Annotated[str | None, typer.Option(
        "--id", help="Persona id; default: a slug of the character's name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a Character Card or character.json as a persona file, and report what went where.

    Images and assets (a PNG's picture, a CHARX's files) go to OUTPUT_assets/
    beside the output, so `personae export` can put them back.
    """
    from personae.errors import PersonaeError
    from personae.personas._atomic import write_atomic
    from personae.personas._persona_yaml import persona_file_data
    from personae.personas.cards import (
        LorebookImport,
        dump_lore_yaml,
        dump_persona_yaml,
        import_file,
    )

    suffix = output.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise _fail(f"{output}: the output must end in .yaml, .yml or .json "
                    f"(e.g. -o {output.with_suffix('.yaml')})")
    assets = output.parent / f"{output.stem}_assets"
    try:
        result = import_file(file, persona_id=persona_id, assets_dir=assets)
        header = [f"Imported from {file.name} by `personae import`."]
        if isinstance(result, LorebookImport):
            if suffix == ".json":
                raise _fail(f"{output}: a lorebook becomes a YAML lore file; use -o "
                            f"{output.with_suffix('.yaml')}")
            header += ["Use it from a persona with `lore_files: [" + output.name + "]`.",
                       "personae reads only `entries:` from a lore file: copy the `lorebook:`",
                       "settings below under the persona's own `lorebook:` to use them."]
            text = dump_lore_yaml(result.lore, result.lorebook, header=header)
            what = f"{len(result.lore)} lore entries"
        elif suffix == ".json":
            data = persona_file_data(result.persona, base_dir=output.parent)
            text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
            what = f"persona {result.persona.id!r}"
        else:
            text = dump_persona_yaml(result.persona, base_dir=output.parent, header=header)
            what = f"persona {result.persona.id!r}"
        write_atomic(output, text.encode("utf-8"))
    except PersonaeError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"{output}: cannot be written: {exc.strerror or exc}") from None
    if as_json:
        typer.echo(json.dumps({"output": str(output), **result.report.as_dict()},
                              ensure_ascii=False))
        return
    typer.echo("\n".join(result.report.lines()))
    typer.echo(f"wrote {output} ({what})")


def export_command(
    persona: Annotated[Path, typer.Argument(help="Persona file (YAML or JSON).")],
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help="v2 or v3 (JSON), png (image with both chunks), or charx (zip).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Card file to write.")],
    as_json: JsonOpt = False,
) -> None:
    """Export a persona as a Character Card: V2 or V3 JSON, PNG or CHARX."""
    from personae.errors import PersonaeError
    from personae.personas.cards import EXPORT_FORMATS, ExportFormat, export_card
    from personae.personas.loading import load_persona

    by_name: dict[str, ExportFormat] = {name: name for name in EXPORT_FORMATS}
    chosen = by_name.get(fmt.lower())
    if chosen is None:
        raise _fail(f"--format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    try:
        loaded = load_persona(persona)
        done = export_card(loaded, chosen, output, base_dir=persona.parent)
    except PersonaeError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps({"path": str(done.path), "format": done.format,
                               "notes": done.notes}, ensure_ascii=False))
        return
    typer.echo("\n".join(done.lines()))
