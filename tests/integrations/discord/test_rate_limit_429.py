"""429 end to end: discord.py's real HTTP client against a loopback server that rate-limits.

The bot is not given a recorder here: `discord.http.Route.BASE` points at an
aiohttp server on 127.0.0.1 that speaks enough of the Discord REST API. The
first attempt to post the reply gets `429 Too Many Requests` with
`retry_after`; discord.py waits and retries, and the server ends up with the
message exactly once. personae does not retry Discord calls itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import payloads
import pytest
from aiohttp import web
from http_recorder import make_agent, make_config

from personae.integrations.discord.bot import PersonaeBot
from personae.integrations.discord.state import DiscordState
from personae.testing import FakeChatModel

RETRY_AFTER = 0.3


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None
          ) -> web.Response:
    # discord.py parses a body as JSON only for exactly `application/json`, as Discord sends.
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={**(headers or {}), "Content-Type": "application/json"})


class RateLimitingDiscord:
    """Answers the few REST routes the bot uses; the first message post gets a 429."""

    def __init__(self) -> None:
        self.me = payloads.user(name="Personae", bot=True)
        self.app_id = payloads.snowflake()
        self.posts: list[tuple[float, int, dict[str, Any]]] = []
        self.created: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.guild_id = payloads.snowflake()
        self.channel = payloads.text_channel(self.guild_id, "general")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/v10/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        self.requests.append(f"{request.method} {path}")
        assert request.headers["Authorization"] == "Bot test-token"
        if path == "/users/@me":
            return _json(self.me)
        if path == "/oauth2/applications/@me":
            return _json(payloads.application(self.app_id, self.me))
        if path.endswith("/typing"):
            return web.Response(status=204)
        if request.method == "GET" and path.endswith("/messages"):
            return _json([])
        if request.method == "POST" and path.endswith("/messages"):
            body = json.loads(await request.text())
            status = 429 if not self.posts else 200
            self.posts.append((time.monotonic(), status, body))
            if status == 429:
                return _json(
                    {"message": "You are being rate limited.", "retry_after": RETRY_AFTER,
                     "global": False},
                    status=429,
                    # Discord's 429s come through its proxy; discord.py treats a 429
                    # without `Via` as a Cloudflare ban instead.
                    headers={"Via": "1.1 google", "X-RateLimit-Limit": "5",
                             "X-RateLimit-Remaining": "0",
                             "X-RateLimit-Reset-After": str(RETRY_AFTER),
                             "X-RateLimit-Bucket": "bucket-messages",
                             "X-RateLimit-Scope": "user"})
            sent = payloads.sent_message(self.channel["id"], self.me, body,
                                         guild_id=self.guild_id)
            self.created.append(sent)
            return _json(sent, headers={
                "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4",
                "X-RateLimit-Reset-After": "1", "X-RateLimit-Bucket": "bucket-messages"})
        return _json(payloads.error(0, f"no route {path}"), status=404)


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RateLimitingDiscord]:
    fake = RateLimitingDiscord()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://{host}:{port}/api/v10")
    yield fake
    await runner.cleanup()


async def test_a_429_is_waited_out_and_the_reply_sent_once(
    server: RateLimitingDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    agent = make_agent(tmp_path, "brenna", "Brenna", FakeChatModel(default="Welcome!"))
    config = make_config(tmp_path, ["brenna"], webhooks=False, context_messages=0)
    bot = PersonaeBot(config, agents={"brenna": agent},
                      state=DiscordState(tmp_path / "state.sqlite"))
    try:
        await bot.login("test-token")
        bot._connection.guild_ready_timeout = 0.01
        bot._connection.parse_ready(payloads.ready(server.me, server.app_id,
                                                   guild_ids=[server.guild_id]))
        ann = payloads.user(name="ann")
        bot._connection.parse_guild_create(payloads.guild(
            server.me, guild_id=server.guild_id, channels=[server.channel],
            members=[payloads.member(ann)]))
        asked = payloads.message(server.channel["id"], ann,
                                 f"<@{server.me['id']}> a room, please",
                                 guild_id=server.guild_id, mentions=[server.me])
        bot._connection.parse_message_create(asked)
        await bot.settle()
    finally:
        await bot.close()

    statuses = [status for _, status, _ in server.posts]
    assert statuses == [429, 200]
    assert [m["content"] for m in server.created] == ["Welcome!"]
    # The retry carried the same message, and came only after the wait Discord asked for.
    assert server.posts[0][2] == server.posts[1][2]
    assert server.posts[1][0] - server.posts[0][0] >= RETRY_AFTER * 0.9
    assert "rate limited" in caplog.text
    assert "test-token" not in caplog.text
