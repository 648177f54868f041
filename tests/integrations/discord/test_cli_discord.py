"""`personae discord doctor|sync|run|why` on a fresh Typer app, over the recorded HTTP layer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import payloads
import pytest
import typer
from http_recorder import DiscordError, FakeDiscord, fake_discord
from typer.testing import CliRunner

from personae.cli.discord import register

TOKEN = "MTIz.secret-token-value"
PERMISSIONS = (payloads.VIEW_CHANNEL | payloads.SEND_MESSAGES | payloads.READ_MESSAGE_HISTORY
               | payloads.MANAGE_WEBHOOKS | payloads.SEND_MESSAGES_IN_THREADS)


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """The personae CLI, for the test."""

    register(app)
    return app


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(_app(), list(args))


@pytest.fixture
def discord_world(monkeypatch: pytest.MonkeyPatch) -> FakeDiscord:
    world = fake_discord()
    world.http.install_everywhere(monkeypatch)
    monkeypatch.setenv("PERSONAE_DISCORD_TOKEN", TOKEN)
    return world


def _config(tmp_path: Path, body: str = "") -> Path:
    persona = tmp_path / "brenna.yaml"
    persona.write_text("schema: personae/v1\nid: brenna\nname: Brenna\n", encoding="utf-8")
    config = tmp_path / "bot.yaml"
    config.write_text(f"personas:\n  brenna: brenna.yaml\n{body}", encoding="utf-8")
    return config


def test_the_discord_group_is_registered() -> None:
    result = _invoke("discord", "--help")
    assert result.exit_code == 0
    for command in ("doctor", "sync", "run", "why"):
        assert command in result.output


def test_doctor_checks_token_intents_permissions_and_prints_the_invite(
    discord_world: FakeDiscord, tmp_path: Path,
) -> None:
    result = _invoke("discord", "doctor", str(_config(tmp_path)))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "ok    token: logged in as Personae" in out
    assert "ok    intent: message content" in out
    assert "ok    #general (Millbrook)" in out and "ok    #quiet (Millbrook)" in out
    assert "ok    persona brenna: Brenna" in out
    assert f"permissions {PERMISSIONS}" in out
    assert (f"client_id={discord_world.app_id}" in out and f"permissions={PERMISSIONS}" in out
            and "scope=bot+applications.commands" in out)
    assert discord_world.http.routes()[0] == ("GET", "/users/@me")
    assert TOKEN not in out


def test_doctor_warns_about_missing_intent_and_webhook_permission(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = fake_discord(app_flags=0,
                         bot_permissions=payloads.BOT_PERMISSIONS & ~payloads.MANAGE_WEBHOOKS)
    world.http.install_everywhere(monkeypatch)
    monkeypatch.setenv("PERSONAE_DISCORD_TOKEN", TOKEN)
    result = _invoke("discord", "doctor", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    checks = {c["name"]: c for c in found["checks"]}
    assert checks["intent: message content"]["status"] == "warn"
    assert "Message Content Intent" in checks["intent: message content"]["detail"]
    assert checks["#general (Millbrook)"]["status"] == "warn"
    assert "Manage Webhooks" in checks["#general (Millbrook)"]["detail"]
    assert found["permissions"] == PERMISSIONS and found["ok"] is True


def test_doctor_fails_on_missing_send_permission(monkeypatch: pytest.MonkeyPatch) -> None:
    world = fake_discord()
    general = world.channels["general"]
    bot_role = next(r for r in world.guild["roles"] if r.get("tags", {}).get("bot_id"))
    general["permission_overwrites"].append(
        payloads.overwrite(bot_role["id"], deny=payloads.SEND_MESSAGES))
    world.http.install_everywhere(monkeypatch)
    monkeypatch.setenv("PERSONAE_DISCORD_TOKEN", TOKEN)
    result = _invoke("discord", "doctor")
    assert result.exit_code == 1
    assert "FAIL  #general (Millbrook): missing Send Messages" in result.output
    assert "ok    #quiet (Millbrook)" in result.output


def test_doctor_reports_a_refused_token_without_printing_it(
    discord_world: FakeDiscord,
) -> None:
    def refuse(call: Any) -> Any:
        raise DiscordError(401, 0, "401: Unauthorized")

    discord_world.http.on("GET", "/users/@me", refuse)
    result = _invoke("discord", "doctor")
    assert result.exit_code == 1
    assert "refused the token" in result.output and TOKEN not in result.output


def test_commands_need_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERSONAE_DISCORD_TOKEN", raising=False)
    result = _invoke("discord", "sync")
    assert result.exit_code == 1
    assert "PERSONAE_DISCORD_TOKEN" in result.output


def test_sync_registers_the_slash_commands(discord_world: FakeDiscord) -> None:
    result = _invoke("discord", "sync")
    assert result.exit_code == 0, result.output
    assert "/persona set" in result.output and "/forget me" in result.output
    [put] = discord_world.http.to("PUT", "/applications/{application_id}/commands")
    assert sorted(c["name"] for c in put.json) == ["ask", "forget", "memory", "persona"]


def test_sync_to_one_guild(discord_world: FakeDiscord) -> None:
    guild = discord_world.guild["id"]
    result = _invoke("discord", "sync", "--guild", guild)
    assert result.exit_code == 0, result.output
    [put] = discord_world.http.to("PUT",
                                  "/applications/{application_id}/guilds/{guild_id}/commands")
    assert put.path.endswith(f"/guilds/{guild}/commands") and len(put.json) == 4


def _link(world: FakeDiscord, message: dict[str, Any]) -> str:
    return (f"https://discord.com/channels/{world.guild['id']}/{message['channel_id']}/"
            f"{message['id']}")


def test_why_explains_an_answer_and_a_silence(discord_world: FakeDiscord,
                                              tmp_path: Path) -> None:
    world = discord_world
    config = _config(tmp_path)
    general = world.channel_id("general")
    mentioned = payloads.message(general, world.users["ann"], f"<@{world.me['id']}> hi",
                                 guild_id=world.guild["id"], mentions=[world.me])
    ignored = payloads.message(general, world.users["bob"], "nice weather",
                               guild_id=world.guild["id"])
    world.http.know_message(mentioned)
    world.http.know_message(ignored)

    result = _invoke("discord", "why", _link(world, mentioned), "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "decision: the bot answers (mention): the bot was mentioned" in result.output
    assert "persona: brenna (set by default_persona)" in result.output
    fetched = world.http.to("GET", "/channels/{channel_id}/messages/{message_id}")
    assert fetched[0].path == f"/channels/{general}/messages/{mentioned['id']}"

    result = _invoke("discord", "why", _link(world, ignored), "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert (found["answer"], found["rule"]) == (False, "quiet")
    assert "not mentioned" in found["reason"]


def test_why_follows_the_config_and_reads_it_from_the_environment(
    discord_world: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = discord_world
    quiet = world.channel_id("quiet")
    config = _config(tmp_path, f'channels:\n  "{quiet}":\n    name: "#quiet"\n'
                               "    policy: {always_on: true}\n")
    monkeypatch.setenv("PERSONAE_DISCORD_CONFIG", str(config))
    said = payloads.message(quiet, world.users["bob"], "anyone here?",
                            guild_id=world.guild["id"])
    world.http.know_message(said)
    result = _invoke("discord", "why", _link(world, said))
    assert result.exit_code == 0, result.output
    assert "the bot answers (always_on)" in result.output
    assert f"always_on = True  (channel {quiet} (#quiet))" in result.output


def test_why_rejects_a_bad_link_and_a_missing_message(discord_world: FakeDiscord,
                                                      tmp_path: Path) -> None:
    config = str(_config(tmp_path))
    result = _invoke("discord", "why", "https://example.com/x", "--config", config)
    assert result.exit_code == 1 and "Copy Message Link" in result.output
    gone = f"https://discord.com/channels/{discord_world.guild['id']}/" \
           f"{discord_world.channel_id('general')}/{payloads.snowflake()}"
    result = _invoke("discord", "why", gone, "--config", config)
    assert result.exit_code == 1 and "message not found" in result.output


def test_run_reports_a_bad_config_and_a_refused_token(
    discord_world: FakeDiscord, tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("personas:\n  brenna: missing.yaml\n", encoding="utf-8")
    result = _invoke("discord", "run", str(bad))
    assert result.exit_code == 1 and "persona file not found" in result.output

    def refuse(call: Any) -> Any:
        raise DiscordError(401, 0, "401: Unauthorized")

    discord_world.http.on("GET", "/users/@me", refuse)
    result = _invoke("discord", "run", str(_config(tmp_path)), "--model", "offline")
    assert result.exit_code == 1, result.output
    assert "refused the token" in result.output and TOKEN not in result.output
