"""`personae serve`: run the companion service, an OpenAI-compatible HTTP API.

`personae serve service.yaml` serves the config's personas on
127.0.0.1:8080 (`--host`, `--port`); `personae serve --new-key` makes an API
key and prints the line its config needs (only the key's hash is stored).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "serve"]


def register(root: typer.Typer) -> None:
    """Add the `serve` command to the `personae` app."""
    root.command("serve")(serve)


def serve(
    config: Annotated[Path | None, typer.Argument(
        help="Service config (YAML): personas, tenants and their API keys.",
        show_default=False)] = None,
    host: Annotated[str, typer.Option(
        help="Address to listen on; 0.0.0.0 for every interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="Model spec for every persona; default: the config's `model`, "
        "then each persona's, then PERSONAE_MODEL, then offline.")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Load the config and the personas, report problems, and exit.")] = False,
    new_key: Annotated[bool, typer.Option(
        "--new-key", help="Print a new API key and the `sha256:` line for the config, and exit."
    )] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Run the companion service: OpenAI-compatible chat with the config's personas.

    Clients connect with base URL http://HOST:PORT/v1 and one of the config's
    API keys; `model` is a persona id (GET /v1/models lists them).
    """
    if new_key:
        from personae.integrations.companion.config import hash_key
        from personae.integrations.companion.config import new_key as make_key

        key = make_key()
        typer.echo(f"API key (give it to the client; it is not stored anywhere): {key}")
        typer.echo("Add under the tenant's `keys:` in the service config:")
        typer.echo(f"  - id: NAME\n    sha256: {hash_key(key)}\n    scopes: [chat]")
        return
    if config is None:
        typer.echo("error: give the service config: personae serve service.yaml "
                   "(see examples/companion/service.yaml)", err=True)
        raise typer.Exit(2)
    try:
        from personae.integrations.companion.app import create_app
        from personae.integrations.companion.config import load_config
    except ImportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    from personae.errors import PersonaeError

    try:
        loaded = load_config(config)
        app = create_app(loaded, model=model)
    except PersonaeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    personas = ", ".join(app.state.companion.agents)
    if check:
        typer.echo(f"ok  {config}: {len(loaded.tenants)} tenants, personas: {personas}")
        return
    import uvicorn

    shown = f"[{host}]" if ":" in host else host
    print(f"personae companion: {personas} at http://{shown}:{port}/v1 (docs: /docs)",
          file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
