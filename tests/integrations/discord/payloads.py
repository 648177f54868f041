"""Discord-shaped JSON for the tests: gateway events and REST answers, built by code.

Every payload the Discord tests feed to discord.py, or return from the
recorded HTTP layer, is built here, so their shape is kept in one place and
follows the Discord API documentation (API v10). Ids are snowflakes as
strings, as Discord sends them.
"""

from __future__ import annotations

import itertools
from typing import Any

Payload = dict[str, Any]

DISCORD_EPOCH_MS = 1420070400000
_counter = itertools.count(1)

# Permission bits (https://discord.com/developers/docs/topics/permissions).
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
READ_MESSAGE_HISTORY = 1 << 16
MANAGE_GUILD = 1 << 5
MANAGE_WEBHOOKS = 1 << 29
SEND_MESSAGES_IN_THREADS = 1 << 38
ADMINISTRATOR = 1 << 3

BOT_PERMISSIONS = (VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | EMBED_LINKS
                   | MANAGE_WEBHOOKS | SEND_MESSAGES_IN_THREADS)
"""What the bot's role is granted in the test guilds, unless a test says otherwise."""

EVERYONE_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY

# Application flags (https://discord.com/developers/docs/resources/application).
GATEWAY_MESSAGE_CONTENT = 1 << 18
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15


def snowflake() -> str:
    """Return a new, increasing snowflake id (timestamps in 2023 onwards)."""
    # Timestamp part from a fixed moment, plus a counter in the low bits.
    millis = 1_700_000_000_000 - DISCORD_EPOCH_MS + next(_counter)
    return str((millis << 22) + next(_counter) % 4096)


def timestamp() -> str:
    """Return an ISO 8601 timestamp as Discord writes it."""
    return "2024-05-01T12:00:00.000000+00:00"


# -- users, roles, members -------------------------------------------------------------


def user(user_id: str | None = None, name: str = "ann", *, bot: bool = False,
         global_name: str | None = None) -> Payload:
    """A user object."""
    return {
        "id": user_id or snowflake(),
        "username": name,
        "discriminator": "0",
        "global_name": global_name,
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def role(role_id: str, name: str, permissions: int, *, position: int = 1,
         managed: bool = False, bot_id: str | None = None) -> Payload:
    """A role object; `bot_id` makes it the managed role of that bot."""
    found: Payload = {
        "id": role_id,
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(permissions),
        "managed": managed,
        "mentionable": True,
        "flags": 0,
    }
    if bot_id is not None:
        found["tags"] = {"bot_id": bot_id}
    return found


def member(of: Payload, *, roles: list[str] | None = None, nick: str | None = None) -> Payload:
    """A guild member object wrapping the user `of`."""
    return {
        "user": of,
        "nick": nick,
        "avatar": None,
        "roles": roles or [],
        "joined_at": timestamp(),
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
    }


# -- channels -------------------------------------------------------------------------


def overwrite(target_id: str, *, allow: int = 0, deny: int = 0, kind: int = 0) -> Payload:
    """A permission overwrite; kind 0 is a role, 1 a member."""
    return {"id": target_id, "type": kind, "allow": str(allow), "deny": str(deny)}


def text_channel(guild_id: str, name: str = "general", *, channel_id: str | None = None,
                 parent_id: str | None = None, position: int = 0,
                 overwrites: list[Payload] | None = None) -> Payload:
    """A guild text channel (type 0)."""
    return {
        "id": channel_id or snowflake(),
        "type": 0,
        "guild_id": guild_id,
        "name": name,
        "position": position,
        "parent_id": parent_id,
        "topic": None,
        "nsfw": False,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "permission_overwrites": overwrites or [],
    }


def category(guild_id: str, name: str = "Tavern", *, channel_id: str | None = None,
             position: int = 0) -> Payload:
    """A guild category (type 4)."""
    return {
        "id": channel_id or snowflake(),
        "type": 4,
        "guild_id": guild_id,
        "name": name,
        "position": position,
        "parent_id": None,
        "nsfw": False,
        "permission_overwrites": [],
    }


def thread(guild_id: str, parent_id: str, owner_id: str, name: str = "quest",
           *, thread_id: str | None = None) -> Payload:
    """A public thread (type 11) as in GUILD_CREATE's `threads` or THREAD_CREATE."""
    return {
        "id": thread_id or snowflake(),
        "type": 11,
        "guild_id": guild_id,
        "parent_id": parent_id,
        "owner_id": owner_id,
        "name": name,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "message_count": 0,
        "member_count": 1,
        "total_message_sent": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": timestamp(),
            "locked": False,
        },
    }


def dm_channel(recipient: Payload, *, channel_id: str | None = None) -> Payload:
    """A DM channel (type 1)."""
    return {
        "id": channel_id or snowflake(),
        "type": 1,
        "last_message_id": None,
        "recipients": [recipient],
    }


# -- guilds and the gateway ------------------------------------------------------------


def guild(bot: Payload, *, guild_id: str | None = None, name: str = "Millbrook",
          owner_id: str | None = None, channels: list[Payload] | None = None,
          threads: list[Payload] | None = None, members: list[Payload] | None = None,
          roles: list[Payload] | None = None, bot_permissions: int = BOT_PERMISSIONS,
          everyone_permissions: int = EVERYONE_PERMISSIONS) -> Payload:
    """A GUILD_CREATE payload: the guild with its channels, threads, roles and members.

    The bot is a member with a managed role holding `bot_permissions`; the
    `@everyone` role (id = guild id) holds `everyone_permissions`.
    """
    gid = guild_id or snowflake()
    bot_role = role(snowflake(), bot["username"], bot_permissions, position=2, managed=True,
                    bot_id=bot["id"])
    all_roles = [role(gid, "@everyone", everyone_permissions, position=0), bot_role,
                 *(roles or [])]
    all_members = [member(bot, roles=[bot_role["id"]]), *(members or [])]
    return {
        "id": gid,
        "name": name,
        "icon": None,
        "owner_id": owner_id or snowflake(),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": all_roles,
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "joined_at": timestamp(),
        "large": False,
        "unavailable": False,
        "member_count": len(all_members),
        "members": all_members,
        "channels": channels or [],
        "threads": threads or [],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def ready(bot: Payload, application_id: str, *, guild_ids: list[str] | None = None,
          flags: int = GATEWAY_MESSAGE_CONTENT) -> Payload:
    """A READY event for `bot`, its guilds still unavailable (GUILD_CREATE follows)."""
    return {
        "v": 10,
        "user": {**bot, "verified": True, "mfa_enabled": False, "flags": 0},
        "guilds": [{"id": gid, "unavailable": True} for gid in guild_ids or []],
        "session_id": "session-" + snowflake(),
        "resume_gateway_url": "wss://gateway.discord.gg",
        "shard": [0, 1],
        "application": {"id": application_id, "flags": flags},
    }


def application(application_id: str, bot: Payload, *, owner: Payload | None = None,
                flags: int = GATEWAY_MESSAGE_CONTENT) -> Payload:
    """An application object, as GET /oauth2/applications/@me answers."""
    return {
        "id": application_id,
        "name": bot["username"],
        "icon": None,
        "description": "",
        "rpc_origins": [],
        "bot_public": True,
        "bot_require_code_grant": False,
        "bot": bot,
        "owner": owner or user(name="owner"),
        "summary": "",
        "verify_key": "0" * 64,
        "team": None,
        "flags": flags,
        "interactions_endpoint_url": None,
        "approximate_guild_count": 1,
    }


# -- messages ------------------------------------------------------------------------


def message(channel_id: str, author: Payload, content: str, *, guild_id: str | None = None,
            message_id: str | None = None, mentions: list[Payload] | None = None,
            mention_roles: list[str] | None = None, reply_to: Payload | None = None,
            webhook_id: str | None = None, author_member: Payload | None = None,
            mention_everyone: bool = False) -> Payload:
    """A MESSAGE_CREATE payload (also the shape of REST message objects).

    `reply_to` makes it a reply (type 19) carrying the replied-to message as
    `referenced_message`, as the gateway does.
    """
    payload: Payload = {
        "id": message_id or snowflake(),
        "channel_id": channel_id,
        "author": author,
        "content": content,
        "timestamp": timestamp(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": mention_everyone,
        "mentions": mentions or [],
        "mention_roles": mention_roles or [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 19 if reply_to is not None else 0,
        "flags": 0,
        "components": [],
    }
    if guild_id is not None:
        payload["guild_id"] = guild_id
        if webhook_id is None:
            payload["member"] = {k: v for k, v in (author_member or member(author)).items()
                                 if k != "user"}
    if webhook_id is not None:
        payload["webhook_id"] = webhook_id
    if reply_to is not None:
        payload["message_reference"] = {
            "type": 0,
            "message_id": reply_to["id"],
            "channel_id": reply_to["channel_id"],
            "guild_id": guild_id,
        }
        # Discord resolves one level only: the referenced message comes without its own.
        payload["referenced_message"] = {k: v for k, v in reply_to.items()
                                         if k != "referenced_message"}
    return payload


def sent_message(channel_id: str, author: Payload, body: Payload | None, *,
                 guild_id: str | None = None, webhook_id: str | None = None,
                 message_id: str | None = None) -> Payload:
    """The message Discord answers a create/edit with, built from the request body."""
    body = body or {}
    sent = message(channel_id, author, str(body.get("content") or ""), guild_id=guild_id,
                   message_id=message_id, webhook_id=webhook_id)
    reference = body.get("message_reference")
    if reference:
        sent["type"] = 19
        sent["message_reference"] = {"type": 0, "message_id": str(reference["message_id"]),
                                     "channel_id": channel_id, "guild_id": guild_id}
    sent.pop("member", None)
    return sent


# -- webhooks -------------------------------------------------------------------------


def webhook(channel_id: str, guild_id: str, owner: Payload, application_id: str, *,
            name: str = "personae", webhook_id: str | None = None) -> Payload:
    """An incoming webhook (type 1) created by the bot's application."""
    return {
        "id": webhook_id or snowflake(),
        "type": 1,
        "guild_id": guild_id,
        "channel_id": channel_id,
        "user": owner,
        "name": name,
        "avatar": None,
        "token": "webhook-token-" + snowflake(),
        "application_id": application_id,
    }


# -- interactions (slash commands) -----------------------------------------------------


def command_option(name: str, value: Any, kind: int = 3) -> Payload:
    """A resolved option of a slash command; kind 3 is a string."""
    return {"name": name, "type": kind, "value": value}


def subcommand(name: str, options: list[Payload] | None = None) -> Payload:
    """A subcommand (option type 1) with its options."""
    return {"name": name, "type": 1, "options": options or []}


def slash_command(application_id: str, invoker: Payload, name: str, *,
                  options: list[Payload] | None = None, guild: Payload | None = None,
                  channel: Payload | None = None, member_roles: list[str] | None = None,
                  member_permissions: int = EVERYONE_PERMISSIONS,
                  command_id: str | None = None,
                  app_permissions: int = BOT_PERMISSIONS) -> Payload:
    """An INTERACTION_CREATE of type 2 (application command).

    In a guild the invoker comes as `member` with its computed `permissions`;
    in a DM as `user`.
    """
    payload: Payload = {
        "id": snowflake(),
        "application_id": application_id,
        "type": 2,
        "token": "interaction-token-" + snowflake(),
        "version": 1,
        "locale": "en-US",
        "attachment_size_limit": 10 * 1024 * 1024,
        "app_permissions": str(app_permissions),
        "entitlements": [],
        "authorizing_integration_owners": {"0": "1"},
        "context": 0 if guild is not None else 1,
        "data": {
            "id": command_id or snowflake(),
            "name": name,
            "type": 1,
            "options": options or [],
        },
    }
    if channel is not None:
        payload["channel_id"] = channel["id"]
        payload["channel"] = channel
    if guild is not None:
        payload["guild_id"] = guild["id"]
        payload["guild_locale"] = "en-US"
        payload["member"] = {**member(invoker, roles=member_roles),
                             "permissions": str(member_permissions)}
    else:
        payload["user"] = invoker
    return payload


def interaction_callback(interaction_id: str, body: Payload | None) -> Payload:
    """What POST /interactions/{id}/{token}/callback?with_response=1 answers."""
    data = (body or {}).get("data") or {}
    kind = int((body or {}).get("type", 5))
    return {
        "interaction": {
            "id": interaction_id,
            "type": 2,
            "response_message_loading": kind == 5,
            "response_message_ephemeral": bool(int(data.get("flags", 0)) & 64),
        },
    }


def command_registered(application_id: str, command: Payload) -> Payload:
    """An application command as Discord answers a bulk overwrite, with ids filled in."""
    return {
        "id": snowflake(),
        "application_id": application_id,
        "version": snowflake(),
        "default_member_permissions": None,
        "type": 1,
        "nsfw": False,
        "options": [],
        **command,
    }


def error(code: int, message: str) -> Payload:
    """A JSON error body, e.g. `error(10015, "Unknown Webhook")`."""
    return {"code": code, "message": message}
