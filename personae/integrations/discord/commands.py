"""The bot's slash commands: `/persona set|show`, `/forget me`, `/memory`, `/ask`.

Each command defers at once (Discord drops an interaction not answered
within three seconds, and a turn or a memory lookup can take longer), then
answers with follow-up messages. Private answers are ephemeral.

`/persona set` changes who speaks in this channel (or thread) or in the whole
server; it needs the Manage Server permission or one of the config's
`admin_roles`, checked here in code: default permissions can be changed by
any server admin in the Integrations settings, so they are not a guard.

Commands are registered with Discord by `personae discord sync`, not at
every start (Discord limits how often commands may be updated).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands

from personae.integrations.discord.delivery import InteractionOutlet
from personae.integrations.discord.facts import where
from personae.integrations.discord.output import neutralise, split_message
from personae.integrations.discord.state import PlaceKind

if TYPE_CHECKING:
    from personae.integrations.discord.bot import PersonaeBot

__all__ = ["CommandTree", "add_commands", "command_names", "sync_commands"]

log = logging.getLogger(__name__)

_NOT_READY = "The bot is not running here; try again in a moment."


class CommandTree(app_commands.CommandTree[Any]):
    """discord.py's command tree, telling the bot which tasks run its commands."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Let every command run; the bot tracks it as work in progress."""
        bot = _bot(interaction)
        if bot is not None:
            bot.track()
        return True


def _bot(interaction: discord.Interaction) -> PersonaeBot | None:
    client = interaction.client
    return client if hasattr(client, "runner") else None  # type: ignore[return-value]


async def _say(interaction: discord.Interaction, text: str, *, ephemeral: bool = True) -> None:
    outlet = InteractionOutlet(interaction, ephemeral=ephemeral)
    for part in split_message(neutralise(text)):
        await outlet.post(part)


def _is_admin(interaction: discord.Interaction, admin_roles: list[str]) -> bool:
    if interaction.permissions.manage_guild or interaction.permissions.administrator:
        return True
    roles = getattr(interaction.user, "roles", [])
    return any(role.name in admin_roles for role in roles)


def _persona_group() -> app_commands.Group:
    group = app_commands.Group(name="persona", description="Who speaks here.")

    @group.command(name="set", description="Choose the persona that speaks here or in the "
                   "whole server (Manage Server).")
    @app_commands.describe(persona="The persona's id.",
                           where_="This channel (or thread), or the whole server.")
    @app_commands.rename(where_="where")
    async def set_persona(interaction: discord.Interaction, persona: str,
                          where_: Literal["here", "server"] = "here") -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = _bot(interaction)
        if bot is None:
            return await _say(interaction, _NOT_READY)
        if interaction.guild_id is None:
            return await _say(interaction, "`/persona set` works in a server's channels; in "
                              "direct messages the config's `direct_messages` decides.")
        if not _is_admin(interaction, bot.config.admin_roles):
            roles = ", ".join(bot.config.admin_roles)
            extra = f" or one of the roles {roles}" if roles else ""
            return await _say(interaction, "Only members with the Manage Server permission"
                              f"{extra} can change the persona.")
        if persona not in bot.config.personas:
            known = ", ".join(sorted(bot.config.personas))
            return await _say(interaction, f"There is no persona {persona!r}; choose one of: "
                              f"{known}.")
        place = where(interaction.channel)
        kind: PlaceKind
        if where_ == "server":
            place_id, kind = interaction.guild_id, "guild"
        elif place.thread_id is not None:
            place_id, kind = place.thread_id, "thread"
        else:
            place_id, kind = place.channel_id or interaction.channel_id or 0, "channel"
        await bot.set_persona(place_id, persona, kind=kind, guild_id=interaction.guild_id,
                              set_by=interaction.user.id)
        name = bot.agents[persona].persona.display_name
        scope = "this server" if kind == "guild" else f"this {kind}"
        await _say(interaction, f"From now on {name} ({persona}) speaks in {scope}.")

    @set_persona.autocomplete("persona")
    async def persona_ids(interaction: discord.Interaction, current: str
                          ) -> list[app_commands.Choice[str]]:
        bot = _bot(interaction)
        ids = sorted(bot.config.personas) if bot is not None else []
        return [app_commands.Choice(name=pid, value=pid) for pid in ids
                if current.lower() in pid.lower()][:25]

    @group.command(name="show", description="Show who speaks here, and when the bot answers.")
    async def show(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = _bot(interaction)
        if bot is None:
            return await _say(interaction, _NOT_READY)
        await _say(interaction, bot.describe_place(where(interaction.channel)))

    return group


def _forget_group() -> app_commands.Group:
    group = app_commands.Group(name="forget", description="Erase what the bot keeps about you.")

    @group.command(name="me", description="Erase your memories and conversation here.")
    async def me(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = _bot(interaction)
        if bot is None:
            return await _say(interaction, _NOT_READY)
        place = where(interaction.channel)
        erased = await bot.forget_user(interaction.user.id, place)
        await _say(interaction, f"Done: I erased {erased} "
                   f"{'memory' if erased == 1 else 'memories'} of you and our conversation "
                   f"{'in these messages' if place.is_dm else 'in this channel'}.")

    return group


async def _memory(interaction: discord.Interaction) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    bot = _bot(interaction)
    if bot is None:
        return await _say(interaction, _NOT_READY)
    place = where(interaction.channel)
    texts = await bot.memories_of(interaction.user.id, place)
    if texts is None:
        return await _say(interaction, "I keep no long-term memory here.")
    if not texts:
        return await _say(interaction, "I remember nothing about you here yet.")
    lines = "\n".join(f"- {text}" for text in texts)
    await _say(interaction, f"What I remember about you here:\n{lines}\n\n"
               "`/forget me` erases it.")


@app_commands.describe(question="What you want to ask.")
async def _ask(interaction: discord.Interaction, question: str) -> None:
    await interaction.response.defer(thinking=True)
    bot = _bot(interaction)
    if bot is None:
        return await _say(interaction, _NOT_READY)
    place = where(interaction.channel)
    persona_id = bot.persona_for(place).persona_id
    await bot.runner.ask(interaction, question, persona_id)


def add_commands(tree: app_commands.CommandTree[Any]) -> None:
    """Add the bot's slash commands to `tree` (global commands)."""
    tree.add_command(_persona_group())
    tree.add_command(_forget_group())
    tree.add_command(app_commands.Command(
        name="memory", description="Show what the bot remembers about you (only you see it).",
        callback=_memory))
    tree.add_command(app_commands.Command(
        name="ask", description="Ask the persona of this channel.", callback=_ask))

    @tree.error
    async def on_error(interaction: discord.Interaction,
                       error: app_commands.AppCommandError) -> None:
        log.error("slash command %s failed: %s", getattr(interaction.command, "name", "?"),
                  type(error).__name__, exc_info=error)
        with contextlib.suppress(discord.HTTPException):
            await _say(interaction, "Something went wrong on my side; please try again.")


def command_names(tree: app_commands.CommandTree[Any]) -> list[str]:
    """Return every command as typed, e.g. `/persona set`, sorted."""
    names: list[str] = []
    for command in tree.get_commands():
        if isinstance(command, app_commands.Group):
            names += [f"/{command.name} {sub.name}" for sub in command.commands]
        else:
            names.append(f"/{command.name}")
    return sorted(names)


async def sync_commands(token: str, *, guild_id: int | None = None,
                        client: Callable[[], discord.Client] | None = None) -> list[str]:
    """Register the slash commands with Discord (what `personae discord sync` does).

    Args:
        token: The bot token.
        guild_id: Register them in this server only, where they show at once
            (handy while testing); default: everywhere the bot is.
        client: Makes the client to log in with (for tests); default a plain one.

    Returns:
        The commands registered, e.g. `/persona set`.

    Raises:
        discord.LoginFailure: The token was refused.
    """
    made = client() if client is not None else discord.Client(intents=discord.Intents.none())
    tree = CommandTree(made)
    add_commands(tree)
    async with made:
        await made.login(token)
        if guild_id is not None:
            target = discord.Object(guild_id)
            tree.copy_global_to(guild=target)
            await tree.sync(guild=target)
        else:
            await tree.sync()
    return command_names(tree)
