"""When a check-in or reminder is next due: wall-clock schedules in an IANA time zone.

A schedule says `09:00` in the user's zone, so the UTC instant moves when the
clocks change. Occurrences are built per local date with `zoneinfo`:

- a time the clocks jump over (02:30 on a spring-forward night in Berlin)
  happens at the same distance after the jump (03:30 summer time);
- a time that happens twice (02:30 on a fall-back night) happens once, the
  first time.

Quiet hours are a wall-clock window, possibly spanning midnight; anything due
inside waits for the window's end.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from personae.integrations.companion.care_models import Daily, Once, QuietHours, Weekly

__all__ = ["defer_for_quiet", "in_quiet_hours", "next_occurrence", "parse_hhmm", "quiet_end"]

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hhmm(value: str) -> time:
    """Return the `time` of a validated `HH:MM` string."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _at(day: date, wall: time, zone: ZoneInfo) -> datetime:
    # fold=0 gives the first of a repeated time and shifts a skipped one past the jump.
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)


def next_occurrence(
    schedule: Once | Daily | Weekly, zone: ZoneInfo, after: datetime
) -> datetime | None:
    """Return the first occurrence strictly after `after`, in UTC, or `None` if there is none.

    Args:
        schedule: The schedule.
        zone: The time zone its wall-clock times are in.
        after: An aware instant.
    """
    if isinstance(schedule, Once):
        at = schedule.at if schedule.at.tzinfo is not None else schedule.at.replace(tzinfo=zone)
        at = at.astimezone(UTC)
        return at if at > after else None
    wall = parse_hhmm(schedule.time)
    days = set(schedule.days) if isinstance(schedule, Weekly) else set(_WEEKDAYS)
    # Start a day early: near midnight the local date of `after` can lag the occurrence's.
    start = after.astimezone(zone).date() - timedelta(days=1)
    for offset in range(16):
        day = start + timedelta(days=offset)
        if _WEEKDAYS[day.weekday()] not in days:
            continue
        candidate = _at(day, wall, zone)
        if candidate > after:
            return candidate
    raise AssertionError("a weekly schedule has an occurrence within 16 days")


def in_quiet_hours(quiet: QuietHours | None, zone: ZoneInfo, at: datetime) -> bool:
    """Tell whether the instant `at` falls inside the quiet window (start included, end not)."""
    if quiet is None:
        return False
    wall = at.astimezone(zone).time().replace(second=0, microsecond=0)
    start, end = parse_hhmm(quiet.start), parse_hhmm(quiet.end)
    if start < end:
        return start <= wall < end
    return wall >= start or wall < end


def quiet_end(quiet: QuietHours, zone: ZoneInfo, at: datetime) -> datetime:
    """Return the first end of the quiet window after `at`, in UTC."""
    end = parse_hhmm(quiet.end)
    day = at.astimezone(zone).date()
    for offset in range(3):
        candidate = _at(day + timedelta(days=offset), end, zone)
        if candidate > at:
            return candidate
    raise AssertionError("a quiet window ends within three days")


def defer_for_quiet(quiet: QuietHours | None, zone: ZoneInfo, at: datetime) -> datetime:
    """Return `at`, or the end of the quiet window when `at` falls inside it."""
    if quiet is not None and in_quiet_hours(quiet, zone, at):
        return quiet_end(quiet, zone, at)
    return at
