"""The bot's SQLite state survives a restart, and its SQL runs off the event loop."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from personae.errors import IntegrationError
from personae.integrations.discord.state import DiscordState, WebhookRef


async def test_everything_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    async with DiscordState(path) as state:
        await state.set_persona(100, "innkeeper", kind="channel", guild_id=1, set_by=7)
        await state.set_persona(1, "guide", kind="guild", guild_id=1)
        assert await state.add_quota(7, "2025-03-01") == 1
        assert await state.add_quota(7, "2025-03-01") == 2
        assert await state.mark_notice(7, "quota", "2025-03-01") is True
        await state.set_webhook(100, WebhookRef(555, "hook-token"))

    async with DiscordState(path) as reopened:
        assert await reopened.persona_overrides() == {100: "innkeeper", 1: "guide"}
        assert await reopened.quota_used(7, "2025-03-01") == 2
        assert await reopened.mark_notice(7, "quota", "2025-03-01") is False
        assert await reopened.webhook(100) == WebhookRef(555, "hook-token")


async def test_persona_overrides_replace_and_clear() -> None:
    async with DiscordState(":memory:") as state:
        await state.set_persona(100, "innkeeper", kind="channel")
        await state.set_persona(100, "guide", kind="channel")
        assert await state.persona_overrides() == {100: "guide"}
        assert await state.clear_persona(100) is True
        assert await state.clear_persona(100) is False
        assert await state.persona_overrides() == {}


async def test_quota_counts_per_user_and_day_and_forgets_old_days() -> None:
    async with DiscordState(":memory:") as state:
        await state.add_quota(7, "2025-03-01")
        await state.add_quota(8, "2025-03-01")
        assert await state.quota_used(7, "2025-03-01") == 1
        assert await state.quota_used(7, "2025-03-02") == 0
        assert await state.add_quota(7, "2025-03-02") == 1
        assert await state.quota_used(7, "2025-03-01") == 0  # yesterday's count is dropped


async def test_notices_are_once_per_user_kind_and_period() -> None:
    async with DiscordState(":memory:") as state:
        assert await state.mark_notice(7, "quota", "2025-03-01")
        assert not await state.mark_notice(7, "quota", "2025-03-01")
        assert await state.mark_notice(7, "quota", "2025-03-02")
        assert await state.mark_notice(7, "cooldown", "2025-03-01")
        assert await state.mark_notice(8, "quota", "2025-03-01")


async def test_webhooks_are_replaced_and_forgotten() -> None:
    async with DiscordState(":memory:") as state:
        assert await state.webhook(100) is None
        await state.set_webhook(100, WebhookRef(1, "a"))
        await state.set_webhook(100, WebhookRef(2, "b"))
        assert await state.webhook(100) == WebhookRef(2, "b")
        await state.forget_webhook(100)
        assert await state.webhook(100) is None


def test_webhook_token_is_not_in_repr() -> None:
    assert "s3cret" not in repr(WebhookRef(1, "s3cret"))


async def test_default_path_is_under_personae_home(tmp_path: Path) -> None:
    state = DiscordState()
    assert state.path == tmp_path / "home" / "discord" / "state.sqlite"
    async with state:
        await state.set_persona(1, "guide", kind="guild")
    assert state.path.is_file()


async def test_use_before_open_is_a_clear_error() -> None:
    with pytest.raises(IntegrationError, match="not open"):
        await DiscordState(":memory:").persona_overrides()


async def test_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(IntegrationError, match="cannot open the Discord state database"):
        await DiscordState(blocker / "state.sqlite").open()


async def test_sql_runs_off_the_event_loop_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    original = DiscordState._locked

    def spy(self: DiscordState, fn):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return original(self, fn)

    monkeypatch.setattr(DiscordState, "_locked", spy)
    async with DiscordState(":memory:") as state:
        await state.add_quota(7, "2025-03-01")
        await state.persona_overrides()
    assert threads and threading.get_ident() not in threads
