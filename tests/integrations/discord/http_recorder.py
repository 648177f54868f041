"""discord.py with its HTTP layer replaced by a recorder that answers like Discord.

`DiscordRecorder.install(client, monkeypatch)` swaps `client.http.request` (the
REST client) and `AsyncWebhookAdapter.request` (webhooks and interaction
responses, which discord.py sends through a separate adapter) for functions
that record `(method, route, path, json)` and return Discord-shaped JSON from
`payloads`. Everything above that line is discord.py's own code: models,
permission checks, `Messageable.send`, webhooks, app command dispatch.

It keeps just enough server state to be consistent: messages it has seen or
created (so fetches find them), webhooks per channel (so a deleted one
answers 404), and registered application commands.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import payloads
import pytest
from discord.http import Route
from discord.webhook.async_ import AsyncWebhookAdapter

Handler = Callable[["Call"], Any]


@dataclass
class Call:
    """One recorded HTTP request."""

    method: str
    route: str
    """The route template, e.g. `/channels/{channel_id}/messages`."""
    path: str
    """The path with ids filled in, e.g. `/channels/123/messages`."""
    json: dict[str, Any] | list[Any] | None
    params: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    via: str = "http"
    """`http` (the bot's REST client) or `webhook` (webhook/interaction adapter)."""
    response: Any = None
    """What the recorder answered."""

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.route

    @property
    def content(self) -> str | None:
        body = self.json if isinstance(self.json, dict) else {}
        value = body.get("content")
        if value is None and isinstance(body.get("data"), dict):
            value = body["data"].get("content")
        return value


class DiscordError(Exception):
    """Raise from a handler to answer with an HTTP error status and JSON body."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _exception(status: int, body: dict[str, Any]) -> discord.HTTPException:
    response = SimpleNamespace(status=status, reason={403: "Forbidden", 404: "Not Found"}.get(
        status, "Error"))
    if status == 404:
        return discord.NotFound(response, body)  # type: ignore[arg-type]
    if status == 403:
        return discord.Forbidden(response, body)  # type: ignore[arg-type]
    return discord.HTTPException(response, body)  # type: ignore[arg-type]


class DiscordRecorder:
    """Records every request a discord.py client makes and answers like Discord.

    Args:
        bot: The bot user payload (`payloads.user(..., bot=True)`).
        application_id: The bot's application id.
        app_flags: Application flags (privileged intents enabled in the portal).
    """

    def __init__(self, bot: dict[str, Any], application_id: str,
                 *, app_flags: int = payloads.GATEWAY_MESSAGE_CONTENT) -> None:
        self.bot = bot
        self.application_id = application_id
        self.app_flags = app_flags
        self.calls: list[Call] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.deleted_webhooks: set[str] = set()
        self.channels: dict[str, dict[str, Any]] = {}
        self.guilds: dict[str, dict[str, Any]] = {}
        self.guild_of: dict[str, str] = {}
        self.commands: list[dict[str, Any]] = []
        self.handlers: dict[tuple[str, str], Handler] = {}
        self.on_record: Callable[[Call], None] | None = None
        """Called with each call as it is recorded (e.g. to note the time)."""
        self._changed = asyncio.Event()

    # -- setup --------------------------------------------------------------------

    def install(self, client: discord.Client, monkeypatch: pytest.MonkeyPatch) -> None:
        """Replace the client's REST requests and the webhook adapter's requests."""
        monkeypatch.setattr(client.http, "request", self._http_request)
        recorder = self

        async def adapter_request(adapter: AsyncWebhookAdapter, route: Route, session: Any,
                                  **kwargs: Any) -> Any:
            return await recorder._webhook_request(route, **kwargs)

        monkeypatch.setattr(AsyncWebhookAdapter, "request", adapter_request)

    def install_everywhere(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Replace the requests of every discord.py client (for clients made by the CLI)."""
        recorder = self

        async def http_request(http: Any, route: Route, **kwargs: Any) -> Any:
            return await recorder._http_request(route, **kwargs)

        async def adapter_request(adapter: AsyncWebhookAdapter, route: Route, session: Any,
                                  **kwargs: Any) -> Any:
            return await recorder._webhook_request(route, **kwargs)

        monkeypatch.setattr(discord.http.HTTPClient, "request", http_request)
        monkeypatch.setattr(AsyncWebhookAdapter, "request", adapter_request)

    def know_guild(self, guild: dict[str, Any]) -> None:
        """Remember a guild's channels and threads, for channel fetches and webhooks."""
        self.guilds[guild["id"]] = guild
        for channel in [*guild.get("channels", []), *guild.get("threads", [])]:
            self.channels[channel["id"]] = channel
            self.guild_of[channel["id"]] = guild["id"]

    def know_message(self, message: dict[str, Any]) -> None:
        """Store a message so that fetches (reply chains, history, `why`) find it."""
        self.messages[message["id"]] = message

    def on(self, method: str, route: str, handler: Handler) -> None:
        """Answer `method route` (a route template) with `handler(call)` instead."""
        self.handlers[(method, route)] = handler

    # -- queries --------------------------------------------------------------------

    def to(self, method: str, route: str) -> list[Call]:
        """Recorded calls of one route template, oldest first."""
        return [call for call in self.calls if call.key == (method, route)]

    def sent(self) -> list[Call]:
        """Messages posted as the bot or through a webhook (not interaction answers)."""
        return [call for call in self.calls if call.key in {
            ("POST", "/channels/{channel_id}/messages"),
            ("POST", "/webhooks/{webhook_id}/{webhook_token}"),
        } and not call.path.startswith(f"/webhooks/{self.application_id}/")]

    def routes(self) -> list[tuple[str, str]]:
        """Method and route template of every call, in order."""
        return [call.key for call in self.calls]

    async def wait_for(self, predicate: Callable[[DiscordRecorder], bool],
                       timeout: float = 10.0) -> None:
        """Wait until `predicate(self)` holds, re-checking after each request; bounded."""
        async def until() -> None:
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    # -- recording ------------------------------------------------------------------

    def _record(self, route: Route, body: Any, params: dict[str, Any] | None,
                files: Any, via: str) -> Call:
        path = route.url[len(Route.BASE):] if route.url.startswith(Route.BASE) else route.url
        names = [getattr(f, "filename", "?") for f in files or []]
        call = Call(route.method, route.path, path, body, dict(params or {}), names, via)
        self.calls.append(call)
        if self.on_record is not None:
            self.on_record(call)
        self._changed.set()
        return call

    async def _http_request(self, route: Route, *, files: Any = None, form: Any = None,
                            **kwargs: Any) -> Any:
        body = kwargs.get("json")
        if body is None and form:
            for part in form:
                if part.get("name") == "payload_json":
                    body = json.loads(part["value"])
        call = self._record(route, body, kwargs.get("params"), files, "http")
        return self._answer(call, route)

    async def _webhook_request(self, route: Route, *, payload: Any = None,
                               multipart: Any = None, files: Any = None,
                               params: Any = None, **_: Any) -> Any:
        body = payload
        if body is None and multipart:
            for part in multipart:
                if part.get("name") == "payload_json":
                    body = json.loads(part["value"])
        call = self._record(route, body, params, files, "webhook")
        return self._answer(call, route)

    def _answer(self, call: Call, route: Route) -> Any:
        handler = self.handlers.get(call.key)
        try:
            call.response = handler(call) if handler is not None else self._default(call, route)
            return call.response
        except DiscordError as exc:
            raise _exception(exc.status, payloads.error(exc.code, exc.message)) from None

    # -- Discord's answers --------------------------------------------------------------

    def _default(self, call: Call, route: Route) -> Any:
        body = call.json if isinstance(call.json, dict) else {}
        p = route
        key = call.key
        channel_id = str(p.channel_id) if p.channel_id is not None else None
        guild_id = self.guild_of.get(channel_id or "")
        if key == ("GET", "/users/@me"):
            return self.bot
        if key == ("GET", "/oauth2/applications/@me"):
            return payloads.application(self.application_id, self.bot, flags=self.app_flags)
        if key == ("POST", "/channels/{channel_id}/typing"):
            return None
        if key == ("POST", "/channels/{channel_id}/messages"):
            assert channel_id is not None
            sent = payloads.sent_message(channel_id, self.bot, body, guild_id=guild_id)
            self.know_message(sent)
            return sent
        if key == ("PATCH", "/channels/{channel_id}/messages/{message_id}"):
            message_id = call.path.rsplit("/", 1)[1]
            old = self.messages.get(message_id)
            if old is None:
                raise DiscordError(404, 10008, "Unknown Message")
            old = {**old, **{k: v for k, v in body.items() if k == "content"}}
            self.know_message(old)
            return old
        if key == ("GET", "/channels/{channel_id}/messages/{message_id}"):
            message_id = call.path.rsplit("/", 1)[1]
            found = self.messages.get(message_id)
            if found is None:
                raise DiscordError(404, 10008, "Unknown Message")
            return found
        if key == ("GET", "/channels/{channel_id}/messages"):
            return self._history(channel_id or "", call.params)
        if key == ("GET", "/channels/{channel_id}"):
            found = self.channels.get(channel_id or "")
            if found is None:
                raise DiscordError(404, 10003, "Unknown Channel")
            return found
        if key == ("GET", "/users/@me/guilds"):
            return [{"id": g["id"], "name": g["name"], "icon": None, "owner": False,
                     "permissions": "0", "features": []} for g in self.guilds.values()]
        if key == ("GET", "/guilds/{guild_id}"):
            return self._guild(str(p.guild_id))
        if key == ("GET", "/guilds/{guild_id}/channels"):
            return self._guild(str(p.guild_id))["channels"]
        if key == ("GET", "/guilds/{guild_id}/members/{member_id}"):
            user_id = call.path.rsplit("/", 1)[1]
            for found in self._guild(str(p.guild_id))["members"]:
                if found["user"]["id"] == user_id:
                    return found
            raise DiscordError(404, 10007, "Unknown Member")
        if key == ("GET", "/channels/{channel_id}/webhooks"):
            return [w for w in self.webhooks.values() if w["channel_id"] == channel_id]
        if key == ("POST", "/channels/{channel_id}/webhooks"):
            assert channel_id is not None and guild_id is not None
            made = payloads.webhook(channel_id, guild_id, self.bot, self.application_id,
                                    name=body.get("name", "personae"))
            if body.get("avatar"):
                made["avatar"] = "a" * 32
            self.webhooks[made["id"]] = made
            return made
        if key in {("PATCH", "/webhooks/{webhook_id}"),
                   ("PATCH", "/webhooks/{webhook_id}/{webhook_token}")}:
            hook = self.webhooks.get(str(p.webhook_id))
            if hook is None:
                raise DiscordError(404, 10015, "Unknown Webhook")
            if "avatar" in body:
                hook["avatar"] = ("b" * 32) if body["avatar"] else None
            hook["name"] = body.get("name", hook["name"])
            return hook
        if key == ("DELETE", "/webhooks/{webhook_id}"):
            self.delete_webhook(str(p.webhook_id))
            return None
        if call.route.startswith("/webhooks/{webhook_id}/{webhook_token}"):
            return self._webhook_call(call, str(p.webhook_id))
        if key == ("POST", "/interactions/{webhook_id}/{webhook_token}/callback"):
            return payloads.interaction_callback(str(p.webhook_id), body)
        if key == ("PUT", "/applications/{application_id}/commands"):
            self.commands = [payloads.command_registered(self.application_id, c)
                             for c in call.json or []]
            return self.commands
        if key == ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"):
            return [payloads.command_registered(self.application_id, c) for c in call.json or []]
        raise AssertionError(f"the recorder has no answer for {call.method} {call.route}")

    def _guild(self, guild_id: str) -> dict[str, Any]:
        if guild_id not in self.guilds:
            raise DiscordError(404, 10004, "Unknown Guild")
        return self.guilds[guild_id]

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook as a server admin would: later uses of it answer 404."""
        self.webhooks.pop(webhook_id, None)
        self.deleted_webhooks.add(webhook_id)

    def _webhook_call(self, call: Call, webhook_id: str) -> Any:
        body = call.json if isinstance(call.json, dict) else {}
        if webhook_id == self.application_id:
            # Interaction follow-ups and edits of the original response.
            channel_id = next(iter(self.channels), "0")
            if call.method == "DELETE":
                return None
            return payloads.sent_message(channel_id, self.bot, body, webhook_id=webhook_id)
        hook = self.webhooks.get(webhook_id)
        if hook is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        if call.method == "POST":
            author = payloads.user(webhook_id, body.get("username") or hook["name"], bot=True)
            sent = payloads.sent_message(hook["channel_id"], author, body,
                                         guild_id=hook["guild_id"], webhook_id=webhook_id)
            self.know_message(sent)
            return sent
        if call.method == "PATCH":
            message_id = call.path.rsplit("/", 1)[1]
            old = self.messages.get(message_id)
            if old is None:
                raise DiscordError(404, 10008, "Unknown Message")
            old = {**old, **{k: v for k, v in body.items() if k == "content"}}
            self.know_message(old)
            return old
        if call.method == "GET":
            return hook
        return None

    def _history(self, channel_id: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Messages of a channel, newest first, `before`/`limit` as Discord applies them."""
        found = [m for m in self.messages.values() if m["channel_id"] == channel_id]
        found.sort(key=lambda m: int(m["id"]), reverse=True)
        before = params.get("before")
        if before is not None:
            found = [m for m in found if int(m["id"]) < int(before)]
        return found[: int(params.get("limit", 50))]



# -- a bot in a fake Discord -------------------------------------------------------------


@dataclass
class FakeDiscord:
    """A real `PersonaeBot`, logged in and READY in one guild, over the recorder.

    The guild has a category `Tavern` with a text channel `#general`, another
    channel `#quiet`, and a thread `quest` under `#general`; `ann` and `bob`
    are members, `otherbot` is another bot; a role `Moderators` has no permissions.
    """

    bot: Any
    http: DiscordRecorder
    me: dict[str, Any]
    app_id: str
    guild: dict[str, Any]
    channels: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]

    def channel_id(self, name: str) -> str:
        return self.channels[name]["id"]

    def say(self, author: str, content: str, *, channel: str = "general",
            mention_bot: bool = False, reply_to: dict[str, Any] | None = None,
            mention_roles: list[str] | None = None,
            webhook_id: str | None = None) -> dict[str, Any]:
        """Feed a MESSAGE_CREATE through discord.py's parser; return its payload."""
        user = self.users[author]
        mentions = []
        if mention_bot:
            content = f"<@{self.me['id']}> {content}"
            mentions.append(self.me)
        is_dm = channel == "dm"
        channel_id = self.dm_channel(author)["id"] if is_dm else self.channel_id(channel)
        data = payloads.message(channel_id, user, content, guild_id=None if is_dm else
                                self.guild["id"], mentions=mentions, reply_to=reply_to,
                                mention_roles=mention_roles, webhook_id=webhook_id)
        self.http.know_message(data)
        self.bot._connection.parse_message_create(data)
        return data

    def dm_channel(self, author: str) -> dict[str, Any]:
        key = f"dm:{author}"
        if key not in self.channels:
            self.channels[key] = payloads.dm_channel(self.users[author])
            self.http.channels[self.channels[key]["id"]] = self.channels[key]
        return self.channels[key]

    def slash(self, invoker: str, name: str, options: list[dict[str, Any]] | None = None, *,
              channel: str = "general", permissions: int = payloads.EVERYONE_PERMISSIONS,
              roles: list[str] | None = None) -> dict[str, Any]:
        """Feed an INTERACTION_CREATE (slash command) through discord.py's parser."""
        in_dm = channel == "dm"
        data = payloads.slash_command(
            self.app_id, self.users[invoker], name, options=options,
            guild=None if in_dm else self.guild,
            channel=self.dm_channel(invoker) if in_dm else self.channels[channel],
            member_permissions=permissions, member_roles=roles)
        self.bot._connection.parse_interaction_create(data)
        return data

    async def settle(self) -> None:
        await asyncio.wait_for(self.bot.settle(), 20)


async def start_bot(monkeypatch: pytest.MonkeyPatch, make_bot: Callable[[dict[str, str]], Any],
                    *, app_flags: int = payloads.GATEWAY_MESSAGE_CONTENT,
                    bot_permissions: int = payloads.BOT_PERMISSIONS,
                    again: FakeDiscord | None = None) -> FakeDiscord:
    """Log `make_bot(channel_ids)` in over the recorder, then feed READY and GUILD_CREATE.

    `make_bot` gets the ids of the guild's places by name (`general`, `quiet`,
    `quest`, `Tavern`, and `guild`), for configs that route by id, and returns
    the client. `again` restarts a bot in the same Discord (same guild, users,
    messages and webhooks), as after a process restart.
    """
    if again is None:
        again = fake_discord(app_flags=app_flags, bot_permissions=bot_permissions)
    ids = {name: channel["id"] for name, channel in again.channels.items()}
    ids["guild"] = again.guild["id"]
    bot = make_bot(ids)
    again.http.install(bot, monkeypatch)
    # Without a gateway, READY waits this long for more guilds before it is dispatched.
    bot._connection.guild_ready_timeout = 0.01
    await bot.login("test-token")
    bot._connection.parse_ready(payloads.ready(again.me, again.app_id,
                                               guild_ids=[again.guild["id"]], flags=app_flags))
    bot._connection.parse_guild_create(again.guild)
    again.bot = bot
    return again


def fake_discord(*, app_flags: int = payloads.GATEWAY_MESSAGE_CONTENT,
                 bot_permissions: int = payloads.BOT_PERMISSIONS) -> FakeDiscord:
    """The Discord of `FakeDiscord`, without a bot yet (`bot` is None)."""
    me = payloads.user(name="Personae", bot=True)
    app_id = payloads.snowflake()
    users = {"ann": payloads.user(name="ann"), "bob": payloads.user(name="bob"),
             "otherbot": payloads.user(name="otherbot", bot=True)}
    guild_id = payloads.snowflake()
    tavern = payloads.category(guild_id, "Tavern")
    general = payloads.text_channel(guild_id, "general", parent_id=tavern["id"])
    quiet = payloads.text_channel(guild_id, "quiet", position=1)
    quest = payloads.thread(guild_id, general["id"], users["ann"]["id"], "quest")
    moderators = payloads.role(payloads.snowflake(), "Moderators", 0)
    guild = payloads.guild(me, guild_id=guild_id, channels=[tavern, general, quiet],
                           threads=[quest], members=[payloads.member(u) for u in users.values()],
                           roles=[moderators], bot_permissions=bot_permissions)
    http = DiscordRecorder(me, app_id, app_flags=app_flags)
    http.know_guild(guild)
    channels = {"Tavern": tavern, "general": general, "quiet": quiet, "quest": quest}
    return FakeDiscord(None, http, me, app_id, guild, channels, users)


# -- personas, agents and config for the bot tests ------------------------------------------


def make_agent(tmp_path: Path, persona_id: str, name: str, model: Any, *,
               avatar: Path | None = None, memory: bool = False) -> Any:
    """An `Agent` for a small test persona, answering from `model` (a FakeChatModel)."""
    from personae.agents.agent import Agent
    from personae.personas.model import Persona
    from personae.settings import Settings
    from personae.testing import FakeEmbeddings

    persona = Persona(id=persona_id, name=name, description=f"{name}, a test character.",
                      avatar=avatar, memory={"enabled": memory})
    settings = Settings(home=tmp_path / "home", retry_attempts=1, retry_deadline=5.0,
                        retry_wait_max=0.01)
    return Agent(persona, model=model, embedder=FakeEmbeddings(), settings=settings,
                 home=tmp_path / "agents" / persona_id)


def make_config(tmp_path: Path, persona_ids: list[str], **fields: Any) -> Any:
    """A `DiscordConfig` over those persona ids; limits off unless `limits` is given."""
    from personae.integrations.discord.config import DiscordConfig

    fields.setdefault("limits", {"user_cooldown_seconds": 0, "daily_quota": None})
    fields.setdefault("streaming", False)
    return DiscordConfig.model_validate({
        "personas": {pid: tmp_path / f"{pid}.yaml" for pid in persona_ids}, **fields})
