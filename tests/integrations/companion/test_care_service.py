"""CareService driven by a controlled clock: check-ins, reminders, escalation, consent, alerts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personae.integrations.companion import care as care_module
from personae.integrations.companion.care import (
    FALLBACK_CHECKIN,
    CareService,
    erase_user_schedules,
    note_user_activity,
    raise_alert,
    set_current_service,
)
from personae.integrations.companion.care_models import (
    CheckInIn,
    ContactIn,
    Daily,
    Delivery,
    Once,
    ReminderIn,
    Weekly,
)
from personae.integrations.companion.care_store import CareStore
from personae.integrations.companion.care_webhook import Webhook

T = "acme"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeDeliver:
    def __init__(self) -> None:
        self.sent: list[tuple[Delivery, Webhook]] = []

    async def __call__(self, delivery: Delivery, webhook: Webhook) -> int:
        self.sent.append((delivery, webhook))
        return 1


class FakeGenerate:
    """Writes in a recognisable 'voice' and records what it was asked."""

    def __init__(self, text: str = "Mira here, dear: how did you sleep?") -> None:
        self.text = text
        self.calls: list[tuple[str, str, str]] = []

    async def __call__(self, persona_id: str, user: str, purpose: str, *, tenant: str) -> str:
        self.calls.append((persona_id, user, purpose))
        return self.text


@pytest.fixture(autouse=True)
def _no_current_service() -> Iterator[None]:
    set_current_service(None)
    yield
    set_current_service(None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(utc(2025, 3, 28, 12))


@pytest.fixture
def deliver() -> FakeDeliver:
    return FakeDeliver()


@pytest.fixture
def generate() -> FakeGenerate:
    return FakeGenerate()


@pytest.fixture
async def care(clock: FakeClock, deliver: FakeDeliver,
               generate: FakeGenerate) -> AsyncIterator[CareService]:
    service = CareService(CareStore(":memory:"), clock, deliver, generate)
    yield service
    set_current_service(None)
    await service.aclose()


def checkin(**over: object) -> CheckInIn:
    data: dict[str, object] = {"user": "ann", "persona": "mira", "timezone": "Europe/Berlin",
                               "schedule": {"kind": "daily", "time": "09:00"}}
    return CheckInIn.model_validate({**data, **over})


async def user_inbox(care: CareService, user: str = "ann", **kw: bool) -> list[Delivery]:
    return await care.inbox(T, user=user, unread_only=kw.get("unread_only", True))


# -- check-ins ------------------------------------------------------------------


async def test_daily_checkin_is_delivered_at_local_time_across_dst(
        care: CareService, generate: FakeGenerate) -> None:
    made = await care.create_checkin(T, checkin(topic="the morning walk"))
    assert made.next_due == utc(2025, 3, 29, 8)  # 09:00 CET

    assert (await care.tick(utc(2025, 3, 29, 7, 59))).checkins == 0
    assert (await care.tick(utc(2025, 3, 29, 8))).checkins == 1
    assert (await care.tick(utc(2025, 3, 29, 8, 1))).checkins == 0
    # After the spring-forward night, 09:00 CEST is 07:00 UTC, an hour earlier.
    assert (await care.tick(utc(2025, 3, 30, 6, 59))).checkins == 0
    assert (await care.tick(utc(2025, 3, 30, 7))).checkins == 1
    assert (await care.get_checkin(T, made.id)).next_due == utc(2025, 3, 31, 7)  # type: ignore[union-attr]

    inbox = await user_inbox(care)
    assert [d.text for d in inbox] == [generate.text] * 2
    assert [d.scheduled_for for d in inbox] == [utc(2025, 3, 29, 8), utc(2025, 3, 30, 7)]
    assert generate.calls == [("mira", "ann", "check-in about the morning walk")] * 2


async def test_weekly_checkin_only_on_its_days(care: CareService) -> None:
    await care.create_checkin(T, checkin(schedule={"kind": "weekly", "time": "10:00",
                                                   "days": ["mon"]}))
    for day in range(28, 31):  # Fri..Sun
        assert (await care.tick(utc(2025, 3, day, 9))).checkins == 0
    assert (await care.tick(utc(2025, 3, 31, 8))).checkins == 1  # Mon 10:00 CEST


async def test_quiet_hours_defer_checkins_to_their_end(care: CareService) -> None:
    quiet = {"start": "22:00", "end": "07:00"}
    late = await care.create_checkin(T, checkin(schedule={"kind": "daily", "time": "22:30"},
                                                quiet_hours=quiet))
    # Due at 22:30, inside quiet hours: it waits for 07:00 the next morning.
    assert late.next_due == utc(2025, 3, 29, 6)
    assert (await care.tick(utc(2025, 3, 28, 21, 30))).checkins == 0
    assert (await care.tick(utc(2025, 3, 29, 5, 59))).checkins == 0
    assert (await care.tick(utc(2025, 3, 29, 6))).checkins == 1
    # Next one: 22:30 on the 29th, deferred to 07:00 CEST on the 30th (05:00 UTC).
    assert (await care.get_checkin(T, late.id)).next_due == utc(2025, 3, 30, 5)  # type: ignore[union-attr]


async def test_a_tick_that_lands_in_quiet_hours_delivers_nothing(care: CareService) -> None:
    made = await care.create_checkin(T, checkin(schedule={"kind": "daily", "time": "21:00"},
                                                quiet_hours={"start": "22:00", "end": "07:00"}))
    # The service was down from before 21:00 until 23:00 local: still nothing at night.
    report = await care.tick(utc(2025, 3, 28, 22))
    assert (report.checkins, report.deferred) == (0, 1)
    assert (await care.get_checkin(T, made.id)).next_due == utc(2025, 3, 29, 6)  # type: ignore[union-attr]
    assert (await care.tick(utc(2025, 3, 29, 3))).checkins == 0
    assert (await care.tick(utc(2025, 3, 29, 6))).checkins == 1
    assert len(await user_inbox(care)) == 1


async def test_paused_checkins_are_skipped_and_resume_from_now(
        care: CareService, clock: FakeClock) -> None:
    made = await care.create_checkin(T, checkin())
    paused = await care.pause_checkin(T, made.id)
    assert paused is not None and paused.paused and paused.next_due is None
    assert (await care.tick(utc(2025, 3, 29, 8))).checkins == 0
    assert (await care.tick(utc(2025, 3, 30, 7))).checkins == 0
    clock.now = utc(2025, 3, 30, 12)
    resumed = await care.resume_checkin(T, made.id)
    assert resumed is not None and not resumed.paused
    assert resumed.next_due == utc(2025, 3, 31, 7)  # the missed ones are not made up
    assert (await care.tick(utc(2025, 3, 30, 12))).checkins == 0
    assert (await care.tick(utc(2025, 3, 31, 7))).checkins == 1


async def test_one_off_checkin_in_the_past_is_refused_and_delivered_once(
        care: CareService) -> None:
    with pytest.raises(ValueError, match=r"schedule\.at"):
        await care.create_checkin(T, checkin(schedule=Once(at=datetime(2025, 3, 1, 9))))
    made = await care.create_checkin(T, checkin(schedule={"kind": "once",
                                                          "at": "2025-03-28T18:00:00"}))
    assert (await care.tick(utc(2025, 3, 28, 17))).checkins == 1
    assert (await care.tick(utc(2025, 3, 29, 17))).checkins == 0
    assert (await care.get_checkin(T, made.id)).next_due is None  # type: ignore[union-attr]


async def test_voice_failure_falls_back_to_a_plain_line(clock: FakeClock) -> None:
    def broken(persona_id: str, user: str, purpose: str) -> str:
        raise RuntimeError("model down")

    service = CareService(CareStore(":memory:"), clock, FakeDeliver(), broken)
    await service.create_checkin(T, checkin())
    await service.tick(utc(2025, 3, 29, 8))
    assert [d.text for d in await user_inbox(service)] == [FALLBACK_CHECKIN]
    await service.aclose()


# -- reminders ------------------------------------------------------------------


async def test_reminder_text_is_delivered_verbatim_never_by_the_model(
        care: CareService, generate: FakeGenerate) -> None:
    generate.text = "Don't worry about the pills today!"
    text = "  Take the BLUE pill 💊 (5 mg)\n  with a full glass of water.  "
    made = await care.create_reminder(T, ReminderIn(user="ann", text=text,
                                                    schedule=Daily(time="08:00"),
                                                    timezone="Europe/Berlin"))
    assert made.text == text
    await care.tick(utc(2025, 3, 29, 7))
    await care.tick(utc(2025, 3, 30, 6))  # 08:00 CEST
    delivered = await user_inbox(care)
    assert [d.kind for d in delivered] == ["reminder", "reminder"]
    assert [d.text for d in delivered] == [text, text]
    assert generate.calls == []


async def test_unacknowledged_reminder_escalates_to_caregivers(
        care: CareService, clock: FakeClock, deliver: FakeDeliver) -> None:
    ana = await care.create_contact(T, ContactIn(user="ann", name="Ana", scopes=["alerts"],
                                                 webhook_url="http://127.0.0.1:9/hook"))
    made = await care.create_reminder(T, ReminderIn(user="ann", text="Blood pressure pill",
                                                    schedule=Daily(time="08:00"),
                                                    timezone="Europe/Berlin",
                                                    ack_within_minutes=30))
    assert (await care.tick(utc(2025, 3, 29, 7))).reminders == 1
    assert (await care.tick(utc(2025, 3, 29, 7, 29))).escalations == 0
    report = await care.tick(utc(2025, 3, 29, 7, 30))
    assert report.escalations == 1 and report.webhooks_sent == 1
    [alert] = await care.list_alerts(T, "ann")
    assert alert.kind == "reminder_missed" and "Blood pressure pill" in alert.detail
    assert "08:00" in alert.detail
    [(sent, hook)] = deliver.sent
    assert sent.recipient == ana.id and sent.source_id == alert.id
    assert hook.secret == ana.webhook_secret and len(hook.secret or "") >= 32
    assert (await care.tick(utc(2025, 3, 29, 9))).escalations == 0  # escalated once

    # Acknowledged in time: no escalation the next day.
    await care.tick(utc(2025, 3, 30, 6))
    clock.now = utc(2025, 3, 30, 6, 10)
    acked = await care.ack_reminder(T, made.id)
    assert acked is not None and len(acked) == 1 and acked[0].answered_at == clock.now
    assert (await care.tick(utc(2025, 3, 30, 8))).escalations == 0
    [yesterday, today] = await user_inbox(care)
    assert yesterday.answered_at is None and today.answered_at == utc(2025, 3, 30, 6, 10)
    # A late acknowledgement of the escalated one is recorded, then nothing is left.
    clock.now = utc(2025, 3, 30, 9)
    assert [d.id for d in await care.ack_reminder(T, made.id) or []] == [yesterday.id]
    assert await care.ack_reminder(T, made.id) == []
    assert await care.ack_reminder(T, "rem_unknown") is None


# -- no-reply escalation --------------------------------------------------------


async def test_unanswered_checkin_escalates_after_n_minutes(
        care: CareService, clock: FakeClock) -> None:
    await care.create_contact(T, ContactIn(user="ann", name="Ana", scopes=["alerts"]))
    await care.create_checkin(T, checkin(escalate_after_minutes=60))
    await care.tick(utc(2025, 3, 29, 8))
    assert (await care.tick(utc(2025, 3, 29, 8, 59))).escalations == 0
    assert (await care.tick(utc(2025, 3, 29, 9))).escalations == 1
    [alert] = await care.list_alerts(T, "ann")
    assert alert.kind == "no_reply" and alert.severity == "warning"
    assert "09:00 CET" in alert.detail and "60 minutes" in alert.detail

    # Answered by a chat message: nothing to escalate the next day.
    await care.tick(utc(2025, 3, 30, 7))
    clock.now = utc(2025, 3, 30, 7, 20)
    # Any message is a sign of life: it answers today's and, late, yesterday's check-in.
    assert await care.note_reply(T, "ann") == 2
    assert (await care.tick(utc(2025, 3, 30, 9))).escalations == 0

    # Answered by reading it in the inbox.
    await care.tick(utc(2025, 3, 31, 7))
    [latest] = [d for d in await user_inbox(care) if d.created_at == utc(2025, 3, 31, 7)]
    clock.now = utc(2025, 3, 31, 7, 5)
    read = await care.mark_read(T, latest.id)
    assert read is not None and read.read_at == clock.now and read.answered_at == clock.now
    assert (await care.tick(utc(2025, 3, 31, 9))).escalations == 0
    assert len(await care.list_alerts(T, "ann")) == 1


async def test_note_user_activity_hook_answers_open_checkins(
        care: CareService, clock: FakeClock) -> None:
    set_current_service(care)
    await care.create_checkin(T, checkin(escalate_after_minutes=30))
    await care.tick(utc(2025, 3, 29, 8))
    clock.now = utc(2025, 3, 29, 8, 10)
    note_user_activity(T, "ann")  # fire and forget, from inside the loop
    for _ in range(100):
        await asyncio.sleep(0)
        if not care_module._tasks:
            break
    assert (await care.tick(utc(2025, 3, 29, 9))).escalations == 0
    # From a thread without a loop, it is recorded at once.
    await care.tick(utc(2025, 3, 30, 7))
    clock.now = utc(2025, 3, 30, 7, 1)
    await asyncio.to_thread(note_user_activity, T, "ann")
    assert (await care.tick(utc(2025, 3, 30, 9))).escalations == 0


# -- contacts, consent, alerts --------------------------------------------------


async def test_contacts_only_receive_what_they_consented_to(
        care: CareService, clock: FakeClock, deliver: FakeDeliver) -> None:
    hook = "http://127.0.0.1:9/h"
    only_alerts = await care.create_contact(T, ContactIn(user="ann", name="A", scopes=["alerts"],
                                                         webhook_url=hook))
    only_crisis = await care.create_contact(T, ContactIn(user="ann", name="B", scopes=["crisis"],
                                                         webhook_url=hook))
    only_summaries = await care.create_contact(T, ContactIn(user="ann", name="C",
                                                            scopes=["summaries"]))
    everything = await care.create_contact(T, ContactIn(
        user="ann", name="D", scopes=["summaries", "crisis", "alerts"], webhook_url=hook))
    nothing = await care.create_contact(T, ContactIn(user="ann", name="E", webhook_url=hook))
    someone_else = await care.create_contact(T, ContactIn(user="bob", name="F",
                                                          scopes=["alerts", "crisis"]))

    await care.raise_alert(T, "ann", "crisis", "critical", "crisis language (self-harm)")
    await care.raise_alert(T, "ann", "scam", "warning", "asked to buy gift cards")
    clock.now = utc(2025, 3, 29, 12)
    summary = await care.send_summary(T, "ann", since=utc(2025, 3, 28))

    async def kinds(contact_id: str) -> list[str]:
        items = await care.inbox(T, contact=contact_id, unread_only=False)
        return [f"{d.kind}:{d.scope}" for d in items]

    assert await kinds(only_alerts.id) == ["alert:alerts"]
    assert await kinds(only_crisis.id) == ["alert:crisis"]
    assert await kinds(only_summaries.id) == ["summary:summaries"]
    assert await kinds(everything.id) == ["alert:crisis", "alert:alerts", "summary:summaries"]
    assert await kinds(nothing.id) == []
    assert await kinds(someone_else.id) == []
    # Webhooks only for contacts that have one; the summary counts, never quotes.
    assert sorted(d.recipient for d, _ in deliver.sent) == sorted(
        [only_alerts.id, only_crisis.id, everything.id, everything.id, everything.id])
    assert [d.recipient for d in summary] == [only_summaries.id, everything.id]
    assert "2 alert(s)" in summary[0].text and "crisis x1" in summary[0].text

    # Consent withdrawn: what was sent under it is no longer shown or posted.
    await care.update_contact(T, everything.id, ContactIn(user="ann", name="D",
                                                          scopes=["summaries"], webhook_url=hook))
    assert await kinds(everything.id) == ["summary:summaries"]
    await care.raise_alert(T, "ann", "no_reply", "warning", "late")
    assert await kinds(everything.id) == ["summary:summaries"]


async def test_alerts_are_deduplicated_per_user_and_kind_within_the_window(
        care: CareService, clock: FakeClock) -> None:
    contact = await care.create_contact(T, ContactIn(user="ann", name="A",
                                                     scopes=["alerts", "crisis"]))
    first = await care.raise_alert(T, "ann", "scam", "warning", "gift cards")
    clock.now += timedelta(minutes=10)
    again = await care.raise_alert(T, "ann", "scam", "info", "gift cards again")
    assert again.id == first.id and again.count == 2 and again.last_seen_at == clock.now
    other_kind = await care.raise_alert(T, "ann", "crisis", "critical", "crisis")
    other_user = await care.raise_alert(T, "bob", "scam", "warning", "gift cards")
    worse = await care.raise_alert(T, "ann", "scam", "critical", "bank details given")
    assert len({first.id, other_kind.id, other_user.id, worse.id}) == 4
    clock.now += timedelta(minutes=31)
    later = await care.raise_alert(T, "ann", "scam", "warning", "gift cards")
    assert later.id not in {first.id, worse.id}
    alerts = [a for a in await care.list_alerts(T, "ann") if a.kind == "scam"]
    assert sorted(a.count for a in alerts) == [1, 1, 2]
    inbox = await care.inbox(T, contact=contact.id)
    assert len([d for d in inbox if d.kind == "alert"]) == 4  # folded repeats send nothing

    clock.now += timedelta(minutes=1)
    acked = await care.ack_alert(T, first.id, by="Ana")
    assert acked is not None and acked.acknowledged_by == "Ana"
    assert acked.acknowledged_at == clock.now
    open_ones = await care.list_alerts(T, "ann", unacknowledged_only=True)
    assert first.id not in {a.id for a in open_ones} and len(open_ones) == 3
    assert await care.ack_alert(T, "alr_nope") is None
    assert await care.ack_alert("other-tenant", first.id) is None


async def test_alert_detail_is_shortened_and_flattened(care: CareService) -> None:
    alert = await care.raise_alert(T, "ann", "scam", "info", "a\n\nb  " + "x" * 400)
    assert alert.detail.startswith("a b x") and len(alert.detail) == 300


async def test_raise_alert_hook_works_in_and_out_of_the_loop(care: CareService) -> None:
    raise_alert(T, "ann", "scam", "warning", "no service yet")  # dropped, no error
    set_current_service(care)
    raise_alert(T, "ann", "crisis", "critical", "in the loop")
    for _ in range(100):
        await asyncio.sleep(0)
        if not care_module._tasks and await care.list_alerts(T, "ann"):
            break
    await asyncio.to_thread(raise_alert, T, "ann", "emergency", "critical", "from a thread")
    assert sorted(a.kind for a in await care.list_alerts(T, "ann")) == ["crisis", "emergency"]


# -- inbox and erasure ----------------------------------------------------------


async def test_inbox_lists_unread_until_marked_read(care: CareService, clock: FakeClock) -> None:
    await care.create_reminder(T, ReminderIn(user="ann", text="Call Ana", timezone="UTC",
                                             schedule=Weekly(time="10:00", days=["sat"])))
    await care.tick(utc(2025, 3, 29, 10))
    [item] = await user_inbox(care)
    assert item.recipient_kind == "user" and item.read_at is None
    assert await user_inbox(care, "bob") == []
    read = await care.mark_read(T, item.id)
    assert read is not None and read.answered_at is None  # reading a reminder is no ack
    assert await user_inbox(care) == []
    assert [d.id for d in await user_inbox(care, unread_only=False)] == [item.id]
    assert await care.mark_read("other-tenant", item.id) is None
    with pytest.raises(ValueError, match="exactly one"):
        await care.inbox(T)


async def test_erase_hook_removes_the_users_schedules_and_deliveries(
        tmp_path: Path, clock: FakeClock) -> None:
    path = CareStore.default_path()
    assert path.is_relative_to(tmp_path)  # PERSONAE_HOME points into the test's directory
    care = await CareService.open(clock=clock, deliver=FakeDeliver(), generate=FakeGenerate())
    marker = "zebra-crossing-reminder-7731"
    for user in ("ann", "bob"):
        await care.create_checkin(T, checkin(user=user, escalate_after_minutes=5))
        await care.create_reminder(T, ReminderIn(user=user, text=f"{marker} for {user}",
                                                 schedule=Daily(time="09:00")))
        await care.create_contact(T, ContactIn(user=user, name="C", scopes=["alerts"]))
    await care.tick(utc(2025, 3, 29, 9))
    await care.tick(utc(2025, 3, 29, 10))  # escalations: alerts + contact deliveries
    assert len(await care.list_alerts(T, "ann")) == 1
    assert f"{marker} for ann".encode() in path.read_bytes()

    set_current_service(care)
    counts = await erase_user_schedules(T, "ann")
    assert counts == {"checkins": 1, "reminders": 1, "contacts": 1, "alerts": 1,
                      "deliveries": 3}
    assert await care.list_checkins(T, "ann") == []
    assert await care.list_reminders(T, "ann") == []
    assert await care.list_contacts(T, "ann") == []
    assert await user_inbox(care, unread_only=False) == []
    assert len(await user_inbox(care, "bob", unread_only=False)) == 2
    assert len(await care.list_contacts(T, "bob")) == 1
    set_current_service(None)
    await care.aclose()
    # secure_delete: the erased text is overwritten, not left in free pages.
    raw = path.read_bytes()
    assert f"{marker} for ann".encode() not in raw and f"{marker} for bob".encode() in raw

    # Without a running service the hook opens the database itself.
    assert (await erase_user_schedules(T, "bob"))["reminders"] == 1
    assert (await erase_user_schedules(T, "bob"))["reminders"] == 0


async def test_erase_hook_without_a_database_does_nothing() -> None:
    assert await erase_user_schedules(T, "ann") == {}


async def test_background_loop_ticks_with_the_clock(clock: FakeClock) -> None:
    care = CareService(CareStore(":memory:"), clock, FakeDeliver(), FakeGenerate())
    await care.create_checkin(T, checkin())
    clock.now = utc(2025, 3, 29, 8)
    await care.start(interval=0.01)
    for _ in range(500):
        if await user_inbox(care):
            break
        await asyncio.sleep(0.01)
    delivered = await user_inbox(care)
    await care.aclose()
    assert len(delivered) == 1
