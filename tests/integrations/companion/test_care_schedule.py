"""Wall-clock schedules in IANA zones: DST jumps, repeated hours, weekdays, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from personae.integrations.companion.care_models import (
    CheckInIn,
    Daily,
    Once,
    QuietHours,
    ReminderIn,
    Weekly,
)
from personae.integrations.companion.care_schedule import (
    defer_for_quiet,
    in_quiet_hours,
    next_occurrence,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def occurrences(schedule: Daily | Weekly, zone: ZoneInfo, after: datetime,
                n: int) -> list[datetime]:
    found = []
    for _ in range(n):
        nxt = next_occurrence(schedule, zone, after)
        assert nxt is not None
        found.append(nxt)
        after = nxt
    return found


def test_daily_time_keeps_wall_clock_across_spring_forward() -> None:
    # Berlin leaves CET (+1) for CEST (+2) on 2025-03-30 at 02:00.
    got = occurrences(Daily(time="09:00"), BERLIN, utc(2025, 3, 28, 12), 3)
    assert got == [utc(2025, 3, 29, 8), utc(2025, 3, 30, 7), utc(2025, 3, 31, 7)]
    assert {g.astimezone(BERLIN).hour for g in got} == {9}


def test_daily_time_keeps_wall_clock_across_fall_back() -> None:
    # New York leaves EDT (-4) for EST (-5) on 2025-11-02.
    got = occurrences(Daily(time="08:15"), NEW_YORK, utc(2025, 11, 1, 0), 3)
    assert got == [utc(2025, 11, 1, 12, 15), utc(2025, 11, 2, 13, 15), utc(2025, 11, 3, 13, 15)]


def test_skipped_time_happens_after_the_jump_and_repeated_time_once() -> None:
    spring = occurrences(Daily(time="02:30"), BERLIN, utc(2025, 3, 29, 12), 2)
    # 02:30 does not exist on 30 March: it happens at 03:30 CEST (01:30 UTC).
    assert spring == [utc(2025, 3, 30, 1, 30), utc(2025, 3, 31, 0, 30)]
    assert spring[0].astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"
    autumn = occurrences(Daily(time="02:30"), BERLIN, utc(2025, 10, 25, 12), 2)
    # 02:30 happens twice on 26 October: only the first (CEST, 00:30 UTC) counts.
    assert autumn == [utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)]


def test_weekly_days_and_one_off() -> None:
    schedule = Weekly(time="10:00", days=["thu", "mon", "mon"])
    assert schedule.days == ["mon", "thu"]
    got = occurrences(schedule, BERLIN, utc(2025, 3, 26, 0), 3)  # a Wednesday
    assert [g.astimezone(BERLIN).strftime("%a %d %H:%M") for g in got] == [
        "Thu 27 10:00", "Mon 31 10:00", "Thu 03 10:00"]
    once = Once(at=datetime(2025, 3, 30, 9, 0))  # wall-clock, in the zone given
    assert next_occurrence(once, BERLIN, utc(2025, 3, 1)) == utc(2025, 3, 30, 7)
    assert next_occurrence(once, BERLIN, utc(2025, 3, 30, 7)) is None
    aware = Once(at=datetime(2025, 3, 30, 9, 0, tzinfo=UTC))
    assert next_occurrence(aware, BERLIN, utc(2025, 3, 1)) == utc(2025, 3, 30, 9)


def test_quiet_hours_span_midnight_and_defer_to_their_end() -> None:
    quiet = QuietHours(start="22:00", end="07:00")
    local = datetime(2025, 3, 29, 23, 30, tzinfo=BERLIN)
    assert in_quiet_hours(quiet, BERLIN, local)
    assert not in_quiet_hours(quiet, BERLIN, datetime(2025, 3, 30, 7, 0, tzinfo=BERLIN))
    assert in_quiet_hours(quiet, BERLIN, datetime(2025, 3, 29, 22, 0, tzinfo=BERLIN))
    # The night of the change: 07:00 CEST is 05:00 UTC.
    assert defer_for_quiet(quiet, BERLIN, local) == utc(2025, 3, 30, 5)
    noon = utc(2025, 3, 29, 11)
    assert defer_for_quiet(quiet, BERLIN, noon) == noon
    day = QuietHours(start="13:00", end="15:00")
    assert defer_for_quiet(day, BERLIN, noon.replace(hour=13)) == utc(2025, 3, 29, 14)


@pytest.mark.parametrize(("data", "field"), [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"schedule": {"kind": "daily", "time": "9am"}}, "HH:MM"),
    ({"schedule": {"kind": "daily", "time": "24:00"}}, "HH:MM"),
    ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "quiet_hours"),
    ({"schedule": {"kind": "weekly", "time": "09:00", "days": []}}, "days"),
    ({"schedule": {"kind": "hourly"}}, "kind"),
])
def test_bad_checkins_are_refused_with_the_field_named(data: dict[str, object], field: str) -> None:
    base: dict[str, object] = {"user": "ann", "persona": "mira",
                               "schedule": {"kind": "daily", "time": "09:00"}}
    with pytest.raises(ValidationError, match=field):
        CheckInIn.model_validate({**base, **data})


def test_blank_reminder_text_is_refused_but_spacing_is_kept() -> None:
    with pytest.raises(ValidationError, match="blank"):
        ReminderIn(user="ann", text="   ", schedule=Daily(time="09:00"))
    text = "  Tablets:\n  1 blue, 1 white  "
    assert ReminderIn(user="ann", text=text, schedule=Daily(time="09:00")).text == text
