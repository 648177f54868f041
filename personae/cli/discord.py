"""`personae discord ...`: run personas as a Discord bot, and look after it.

    personae discord doctor [CONFIG]      token, intents, permissions; prints the invite URL
    personae discord sync [--guild ID]    register the slash commands with Discord
    personae discord run CONFIG           connect and answer
    personae discord why MESSAGE_LINK     why the bot answered a message, or did not

The token comes from `PERSONAE_DISCORD_TOKEN` (or a `.env` file) and is never
printed or logged. discord.py is imported inside the commands, so the rest
of the CLI starts without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from personae.integrations.discord.config import DiscordConfig

__all__ = ["app", "register"]

app = typer.Typer(
    help="Personas as a Discord bot: doctor, sync, run, why.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_TOKEN_ENV = "PERSONAE_DISCORD_TOKEN"
_CONFIG_ENV = "PERSONAE_DISCORD_CONFIG"

ConfigArg = Annotated[Path, typer.Argument(help="The bot's YAML config file.",
                                           show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log more to stderr.")]


def register(root: typer.Typer) -> None:
    """Add the `discord` command group to the `personae` app."""
    root.add_typer(app, name="discord")


def _fail(message: object) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _require_discord() -> None:
    try:
        import discord  # noqa: F401
    except ImportError:
        raise _fail('the Discord bot needs discord.py: pip install "personae[discord]"'
                    ) from None


def _config(path: Path) -> DiscordConfig:
    from personae.errors import PersonaeError
    from personae.integrations.discord.config import load_config

    try:
        return load_config(path)
    except PersonaeError as exc:
        raise _fail(exc) from None


def _token(config: DiscordConfig | None = None) -> str:
    from personae.settings import get_settings

    if config is not None and config.token is not None:
        return config.token.get_secret_value()
    token = get_settings().env(_TOKEN_ENV)
    if not token or not token.strip():
        raise _fail(f"no Discord bot token: set {_TOKEN_ENV} in the environment or a .env "
                    f"file, e.g. `export {_TOKEN_ENV}=...` (Developer Portal -> your app -> "
                    "Bot -> Reset Token)")
    return token.strip()


def _refused() -> typer.Exit:
    return _fail(f"Discord refused the token (401): copy it again from the Developer Portal "
                 f"(your app -> Bot -> Reset Token) into {_TOKEN_ENV}")


def _log_to_stderr(verbose: bool) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def doctor(
    config: Annotated[Path | None, typer.Argument(
        help="The bot's YAML config file, to check its personas and places too.",
        show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the token, intents and permissions per channel; print the invite URL.

    Exits 1 when something must be fixed; warnings (such as no Manage
    Webhooks in a channel) leave the bot working, with less.
    """
    _require_discord()
    from personae.integrations.discord.doctor import NEEDED_PERMISSIONS, diagnose

    loaded = _config(config) if config is not None else None
    found = asyncio.run(diagnose(_token(loaded), loaded))
    if as_json:
        typer.echo(json.dumps(found.as_dict(), ensure_ascii=False))
        raise typer.Exit(0 if found.ok else 1)
    marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
    for check in found.checks:
        typer.echo(f"{marks[check.status]}  {check.name}: {check.detail}")
    if found.invite is not None:
        typer.echo(f"\nInvite the bot (permissions {NEEDED_PERMISSIONS.value}):\n{found.invite}")
    raise typer.Exit(0 if found.ok else 1)


@app.command()
def sync(
    guild: Annotated[int | None, typer.Option(
        "--guild", help="Register in this server only (a server id); they show there at "
        "once. Default: everywhere the bot is.")] = None,
) -> None:
    """Register the slash commands (/persona, /forget, /memory, /ask) with Discord.

    Run it once after inviting the bot and after upgrading personae; the bot
    does not do it at every start.
    """
    _require_discord()
    import discord

    from personae.integrations.discord.commands import sync_commands

    try:
        names = asyncio.run(sync_commands(_token(), guild_id=guild))
    except discord.LoginFailure:
        raise _refused() from None
    except discord.HTTPException as exc:
        raise _fail(f"Discord refused the commands ({exc.status}): {exc.text}") from None
    where = f"in server {guild}" if guild is not None else "for every server the bot is in"
    typer.echo(f"Registered {len(names)} commands {where}: {', '.join(names)}")


@app.command()
def run(
    config: ConfigArg,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="Model spec 'provider:model' or 'offline' for every persona; "
        "default: each persona's, then PERSONAE_MODEL, then offline.")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Connect to Discord and answer as the config's personas until stopped (Ctrl+C).

    The token comes from PERSONAE_DISCORD_TOKEN.
    """
    _require_discord()
    import discord

    from personae.errors import PersonaeError
    from personae.integrations.discord.bot import PersonaeBot

    loaded = _config(config)
    try:
        token = loaded.require_token().get_secret_value()
        bot = PersonaeBot.from_config(loaded, model=model)
    except PersonaeError as exc:
        raise _fail(exc) from None
    _log_to_stderr(verbose)

    async def serve() -> None:
        async with bot:
            await bot.start(token)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())
    except discord.LoginFailure:
        raise _refused() from None
    except discord.PrivilegedIntentsRequired:
        raise _fail("Discord refused the Message Content intent: turn it on in the Developer "
                    "Portal (your app -> Bot -> Privileged Gateway Intents)") from None


@app.command()
def why(
    message_link: Annotated[str, typer.Argument(
        help="The message's link (in Discord: right-click it, Copy Message Link).",
        show_default=False)],
    config: Annotated[Path, typer.Option(
        "--config", "-c", envvar=_CONFIG_ENV, show_default=False,
        help=f"The bot's YAML config file (or {_CONFIG_ENV}).")],
    as_json: JsonOpt = False,
) -> None:
    """Explain why the bot answered a message, or did not: the rule, the reason, the persona.

    Fetches the message through the Discord API with the bot's token and
    runs the bot's own policy on it.
    """
    _require_discord()
    import discord

    from personae.errors import PersonaeError
    from personae.integrations.discord.why import parse_message_link

    loaded = _config(config)
    try:
        link = parse_message_link(message_link)
    except PersonaeError as exc:
        raise _fail(exc) from None
    try:
        explained = asyncio.run(_explain(loaded, _token(loaded), link))
    except discord.LoginFailure:
        raise _refused() from None
    except discord.NotFound:
        raise _fail("message not found: check the link, and that the bot is in that server "
                    "and can see the channel") from None
    except discord.Forbidden:
        raise _fail("the bot may not read that channel: it needs View Channel and Read "
                    "Message History there") from None
    if as_json:
        typer.echo(json.dumps(explained.as_dict(), ensure_ascii=False))
        return
    for line in explained.lines():
        typer.echo(line)


async def _explain(config: DiscordConfig, token: str, link: Any) -> Any:
    import discord

    from personae.integrations.discord.state import DiscordState
    from personae.integrations.discord.why import explain_message

    client = discord.Client(intents=discord.Intents.none())
    async with client, DiscordState() as state:
        await client.login(token)
        own = await state.webhook(link.channel_id)
        flags = client.application_flags
        return await explain_message(
            client, config, link, overrides=await state.persona_overrides(),
            own_webhooks={own.id} if own is not None else set(),
            content_intent=flags.gateway_message_content or flags.gateway_message_content_limited)
