"""`personae discord doctor`: is the bot set up right? Token, intents, permissions, invite.

`diagnose` logs in over HTTP only (no gateway connection) and checks:

- the token: Discord accepts it (`GET /users/@me`);
- the application: the Message Content intent is on (else the bot runs
  degraded: mentions, replies and DMs only), no interactions endpoint URL
  (which would divert slash commands away from the bot);
- every text channel of every server the bot is in: it can see the channel,
  send messages (also in threads) and read the history, and whether it may
  manage webhooks (else it speaks there as the bot, not as the persona);
- the config, when given: persona files load, configured places exist;

and gives the invite URL with exactly the permissions the bot needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import discord

from personae.integrations.discord.config import DiscordConfig

__all__ = ["NEEDED_PERMISSIONS", "Check", "Diagnosis", "diagnose", "invite_url"]

Status = Literal["ok", "warn", "fail"]

NEEDED_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    read_message_history=True,
    manage_webhooks=True,
)
"""What the bot asks for when invited; Manage Webhooks lets personas speak as themselves."""

_REQUIRED = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "send_messages_in_threads": "Send Messages in Threads",
    "read_message_history": "Read Message History",
}


def invite_url(application_id: int) -> str:
    """Return the URL that adds the bot to a server with the permissions it needs."""
    return discord.utils.oauth_url(application_id, permissions=NEEDED_PERMISSIONS,
                                   scopes=("bot", "applications.commands"))


@dataclass(frozen=True)
class Check:
    """One thing checked.

    Attributes:
        name: What was checked, e.g. `token` or `#general (Millbrook)`.
        status: `ok`, `warn` (works, but less well) or `fail` (must be fixed).
        detail: What was found, and the fix when it is not ok.
    """

    name: str
    status: Status
    detail: str


@dataclass
class Diagnosis:
    """Everything `diagnose` found.

    Attributes:
        checks: The checks, in order.
        application_id: The bot's application, once the token worked.
        invite: The invite URL, once the token worked.
    """

    checks: list[Check] = field(default_factory=list)
    application_id: int | None = None
    invite: str | None = None

    @property
    def ok(self) -> bool:
        """No check failed (warnings allowed)."""
        return all(check.status != "fail" for check in self.checks)

    def add(self, name: str, status: Status, detail: str) -> None:
        """Record a check."""
        self.checks.append(Check(name, status, detail))

    def as_dict(self) -> dict[str, object]:
        """Return the diagnosis as JSON-ready data."""
        return {
            "ok": self.ok,
            "application_id": str(self.application_id) if self.application_id else None,
            "invite": self.invite,
            "permissions": NEEDED_PERMISSIONS.value,
            "checks": [{"name": c.name, "status": c.status, "detail": c.detail}
                       for c in self.checks],
        }


def _channel_check(channel: discord.abc.GuildChannel, me: discord.Member) -> Check:
    perms = channel.permissions_for(me)
    name = f"#{channel.name} ({channel.guild.name})"
    if not perms.view_channel:
        return Check(name, "warn", "the bot cannot see this channel (fine if intended)")
    missing = [label for attr, label in _REQUIRED.items() if not getattr(perms, attr)]
    if missing:
        return Check(name, "fail", f"missing {', '.join(missing)}: give the bot's role these "
                     "permissions in the channel settings (Permissions), or re-invite it")
    if not perms.manage_webhooks:
        return Check(name, "warn", "no Manage Webhooks: personas speak here as the bot, "
                     "without their own names and avatars")
    return Check(name, "ok", "can read, answer and speak as personas")


async def _channels(client: discord.Client, found: Diagnosis, config: DiscordConfig | None
                    ) -> None:
    assert client.user is not None
    guilds = [guild async for guild in client.fetch_guilds(limit=200)]
    if not guilds:
        found.add("servers", "warn", "the bot is in no server yet: open the invite URL below")
        return
    seen: set[int] = set()
    for partial in guilds:
        guild = await client.fetch_guild(partial.id)
        seen.add(guild.id)
        try:
            me = await guild.fetch_member(client.user.id)
            channels = await guild.fetch_channels()
        except discord.HTTPException as exc:
            found.add(f"server {guild.name}", "fail", f"cannot read the server ({exc.status})")
            continue
        found.add(f"server {guild.name}", "ok", f"{len(channels)} channels")
        for channel in sorted(channels, key=lambda c: c.position):
            seen.add(channel.id)
            if isinstance(channel, discord.TextChannel | discord.ForumChannel):
                found.checks.append(_channel_check(channel, me))
            elif isinstance(channel, discord.CategoryChannel):
                continue
    if config is not None:
        for kind in ("guilds", "categories", "channels"):
            for place_id, place in getattr(config, kind).items():
                if place_id not in seen:
                    label = f"{kind[:-1] if kind != 'categories' else 'category'} {place_id}"
                    if place.name:
                        label += f" ({place.name})"
                    found.add(f"config {label}", "warn", "not found among the servers and "
                              "channels the bot is in: check the id, or invite the bot there")


def _personas(config: DiscordConfig, found: Diagnosis) -> None:
    from personae.errors import PersonaeError
    from personae.personas.loading import load_persona

    for persona_id, path in config.personas.items():
        try:
            persona = load_persona(path)
        except PersonaeError as exc:
            found.add(f"persona {persona_id}", "fail", str(exc))
            continue
        found.add(f"persona {persona_id}", "ok", f"{persona.display_name} ({path.name})")


async def diagnose(
    token: str,
    config: DiscordConfig | None = None,
    *,
    client: Callable[[], discord.Client] | None = None,
) -> Diagnosis:
    """Check the token, the application's intents, the permissions per channel, the config.

    Args:
        token: The bot token.
        config: The bot's config, to check its personas and places too.
        client: Makes the client to log in with (for tests); default a plain one.

    Returns:
        What was found; `invite` is set once the token works.
    """
    found = Diagnosis()
    if config is not None:
        _personas(config, found)
    made = client() if client is not None else discord.Client(intents=discord.Intents.none())
    async with made:
        try:
            await made.login(token)
        except discord.LoginFailure:
            found.add("token", "fail", "Discord refused the token (401): copy it again from "
                      "the Developer Portal (your app -> Bot -> Reset Token) into "
                      "PERSONAE_DISCORD_TOKEN")
            return found
        assert made.user is not None and made.application is not None
        found.add("token", "ok", f"logged in as {made.user} (id {made.user.id})")
        app = made.application
        found.application_id = app.id
        found.invite = invite_url(app.id)
        flags = app.flags
        if flags.gateway_message_content or flags.gateway_message_content_limited:
            found.add("intent: message content", "ok", "on: the bot can read what people say")
        else:
            found.add("intent: message content", "warn", "off: the bot answers mentions, "
                      "replies and DMs only, and wake words and always-on channels cannot "
                      "work; turn it on in the Developer Portal: your app -> Bot -> "
                      "Privileged Gateway Intents -> Message Content Intent")
        if app.interactions_endpoint_url:
            found.add("interactions endpoint", "fail", "an Interactions Endpoint URL is set, "
                      "so slash commands go there, not to the bot: clear it in the Developer "
                      "Portal (your app -> General Information)")
        await _channels(made, found, config)
    return found
