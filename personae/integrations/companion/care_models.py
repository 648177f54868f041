"""The records of the care features: schedules, check-ins, reminders, contacts, alerts, deliveries.

These pydantic models are what the REST API takes and returns, and what the
SQLite store keeps (as JSON). Times the service computes are UTC; the times a
caregiver writes (`"09:00"`, a one-off date without an offset) are wall-clock
times in the record's IANA `timezone`.

A request model (`CheckInIn`, `ReminderIn`, `ContactIn`) holds what a caller
may set; the stored record adds what the service owns (`id`, `tenant`,
`next_due`, ...).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "Alert",
    "AlertAck",
    "CheckIn",
    "CheckInIn",
    "ConsentScope",
    "Contact",
    "ContactCreated",
    "ContactIn",
    "ContactOut",
    "Daily",
    "Delivery",
    "DeliveryKind",
    "Once",
    "QuietHours",
    "Reminder",
    "ReminderIn",
    "Schedule",
    "Severity",
    "WebhookStatus",
    "Weekday",
    "Weekly",
    "check_zone",
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
"""A day of the week, as in `Weekly.days`."""
ConsentScope = Literal["alerts", "crisis", "summaries"]
"""What a caregiver contact agreed to receive: `alerts` (no reply to a check-in,
missed reminders, other warnings), `crisis` (the safety layer's crisis alerts),
`summaries` (digests of check-ins, reminders and alerts)."""
Severity = Literal["info", "warning", "critical"]
"""How urgent an alert is, lowest first."""
DeliveryKind = Literal["checkin", "reminder", "alert", "summary"]
"""What a delivery carries."""
WebhookStatus = Literal["none", "pending", "sent", "failed"]
"""`none`: inbox only; `pending`: to be posted; `sent`; `failed` after retries."""

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_MAX_MINUTES = 7 * 24 * 60


def check_zone(name: str) -> str:
    """Return `name` if it is an IANA time zone zoneinfo knows, else raise `ValueError`.

    Args:
        name: A zone name such as `Europe/Berlin`.

    Raises:
        ValueError: The zone is unknown; the message says how to fix it.
    """
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"timezone={name!r} is not an IANA time zone; write one such as "
            "'Europe/Berlin', 'America/New_York' or 'UTC'"
        ) from exc
    return name


def _check_hhmm(value: str, field: str) -> str:
    if not _HHMM.match(value):
        raise ValueError(
            f"{field}={value!r} is not a time of day; write 24-hour 'HH:MM', e.g. '09:30'"
        )
    return value


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Once(_Record):
    """A single occurrence."""

    kind: Literal["once"] = "once"
    at: datetime
    """When: an ISO date-time; without an offset, wall-clock time in the record's `timezone`."""


class Daily(_Record):
    """Every day at the same wall-clock time."""

    kind: Literal["daily"] = "daily"
    time: str
    """Time of day, 24-hour `HH:MM`, in the record's `timezone`."""

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        return _check_hhmm(value, "schedule.time")


class Weekly(_Record):
    """On some days of the week at the same wall-clock time."""

    kind: Literal["weekly"] = "weekly"
    time: str
    """Time of day, 24-hour `HH:MM`, in the record's `timezone`."""
    days: list[Weekday] = Field(min_length=1)
    """Days of the week, e.g. `["mon", "thu"]`."""

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        return _check_hhmm(value, "schedule.time")

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[Weekday]) -> list[Weekday]:
        return sorted(set(value), key=["mon", "tue", "wed", "thu", "fri", "sat", "sun"].index)


Schedule = Annotated[Once | Daily | Weekly, Field(discriminator="kind")]
"""When something happens: `once`, `daily` or `weekly`."""


class QuietHours(_Record):
    """A nightly window in which no check-in is delivered; one falling inside waits for its end."""

    start: str
    """Start, `HH:MM` wall-clock time in the check-in's `timezone`, e.g. `"22:00"`."""
    end: str
    """End, `HH:MM`; earlier than `start` means the window spans midnight, e.g. `"07:00"`."""

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        return _check_hhmm(value, "quiet_hours")

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError(
                f"quiet_hours.start and quiet_hours.end are both {self.start!r}; give a window "
                "such as start '22:00', end '07:00', or leave quiet_hours out"
            )
        return self


class CheckInIn(_Record):
    """A check-in as a caregiver or operator sets it up: the persona reaches out to the user."""

    user: str = Field(min_length=1, max_length=200)
    """Who is checked on (the user id used with the chat endpoint)."""
    persona: str = Field(min_length=1, max_length=200)
    """Persona id whose voice the check-in is written in."""
    schedule: Schedule
    """When to check in."""
    timezone: str = "UTC"
    """IANA time zone of the user, e.g. `Europe/Berlin`; schedule and quiet hours are in it."""
    quiet_hours: QuietHours | None = None
    """No check-in is delivered inside this window; one due inside waits for its end."""
    topic: str | None = Field(default=None, max_length=200)
    """What to ask about, e.g. `the morning walk`; given to the persona, never shown verbatim."""
    escalate_after_minutes: int | None = Field(default=None, ge=1, le=_MAX_MINUTES)
    """Alert the caregivers when the user has not replied this many minutes after a
    check-in; `None` (the default) never escalates."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)


class CheckIn(CheckInIn):
    """A stored check-in."""

    id: str
    """Id given by the service."""
    tenant: str
    """Tenant it belongs to."""
    paused: bool = False
    """Paused check-ins are not delivered; occurrences missed while paused are skipped."""
    next_due: datetime | None = None
    """UTC time of the next delivery (quiet hours already applied); `None` when done or paused."""
    created_at: datetime
    """UTC time of creation."""


class ReminderIn(_Record):
    """A reminder a caregiver enters: its text and time are delivered exactly as written."""

    user: str = Field(min_length=1, max_length=200)
    """Who is reminded."""
    text: str = Field(min_length=1, max_length=1000)
    """What to say, delivered verbatim: no model ever rewrites it."""
    schedule: Schedule
    """When to remind."""
    timezone: str = "UTC"
    """IANA time zone of the user; the schedule is in it."""
    ack_within_minutes: int | None = Field(default=None, ge=1, le=_MAX_MINUTES)
    """Alert the caregivers when a delivered reminder is not acknowledged within this many
    minutes; `None` (the default) never escalates."""
    created_by: str | None = Field(default=None, max_length=200)
    """Who entered it (a caregiver's name), shown with the reminder."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        # Checked, never changed: the text is delivered byte for byte.
        if not value.strip():
            raise ValueError("text is blank; write what the reminder should say")
        return value


class Reminder(ReminderIn):
    """A stored reminder."""

    id: str
    """Id given by the service."""
    tenant: str
    """Tenant it belongs to."""
    next_due: datetime | None = None
    """UTC time of the next delivery; `None` once a one-off reminder is delivered."""
    created_at: datetime
    """UTC time of creation."""


class ContactIn(_Record):
    """A caregiver contact of a user, with what they consented to receive."""

    user: str = Field(min_length=1, max_length=200)
    """Whose caregiver this is."""
    name: str = Field(min_length=1, max_length=200)
    """Display name, e.g. `Ana (daughter)`."""
    scopes: list[ConsentScope] = Field(default_factory=list)
    """What they consented to receive; nothing is sent outside these scopes."""
    webhook_url: AnyHttpUrl | None = None
    """Where deliveries are POSTed as signed JSON; without it they wait in the inbox."""
    webhook_secret: str | None = Field(default=None, min_length=16, max_length=200)
    """HMAC-SHA256 key for the signature; one is generated (and returned once) when left out."""

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[ConsentScope]) -> list[ConsentScope]:
        return sorted(set(value))


class Contact(ContactIn):
    """A stored contact (with its webhook secret; never returned by the API)."""

    id: str
    """Id given by the service."""
    tenant: str
    """Tenant it belongs to."""
    created_at: datetime
    """UTC time of creation."""


class ContactOut(_Record):
    """A contact as the API shows it: the webhook secret is never shown again."""

    id: str
    """Id given by the service."""
    tenant: str
    """Tenant it belongs to."""
    user: str
    """Whose caregiver this is."""
    name: str
    """Display name."""
    scopes: list[ConsentScope]
    """What they consented to receive."""
    webhook_url: AnyHttpUrl | None
    """Where deliveries are POSTed, if anywhere."""
    created_at: datetime
    """UTC time of creation."""

    @classmethod
    def of(cls, contact: Contact) -> ContactOut:
        """Return the public view of a stored contact."""
        return cls.model_validate(contact.model_dump(exclude={"webhook_secret"}))


class ContactCreated(ContactOut):
    """A newly created or updated contact, with its webhook secret shown this once."""

    webhook_secret: str | None
    """HMAC-SHA256 key of the `X-Personae-Signature` header; store it now."""


class Alert(_Record):
    """Something caregivers should know, deduplicated per (tenant, user, kind) within a window."""

    id: str
    """Id given by the service."""
    tenant: str
    """Tenant it belongs to."""
    user: str
    """Who it is about."""
    kind: str
    """What happened: `crisis`, `no_reply`, `reminder_missed`, ..."""
    severity: Severity
    """How urgent it is."""
    detail: str
    """Short description; never the user's own words."""
    created_at: datetime
    """UTC time of the first occurrence."""
    last_seen_at: datetime
    """UTC time of the latest occurrence folded into this alert."""
    count: int = 1
    """Occurrences folded into this alert by deduplication."""
    acknowledged_at: datetime | None = None
    """UTC time a caregiver acknowledged it."""
    acknowledged_by: str | None = None
    """Who acknowledged it."""


class AlertAck(_Record):
    """Body of an alert acknowledgement."""

    by: str | None = Field(default=None, max_length=200)
    """Who acknowledges (a name or contact id)."""


class Delivery(_Record):
    """One message to a user or a caregiver contact: the inbox entry and the webhook payload."""

    id: str
    """Id given by the service (also the `X-Personae-Delivery` header)."""
    tenant: str
    """Tenant it belongs to."""
    user: str
    """The cared-for user it concerns."""
    recipient_kind: Literal["user", "contact"]
    """Whether it goes to the user or to a caregiver contact."""
    recipient: str
    """The user id, or the contact id."""
    kind: DeliveryKind
    """What it carries."""
    source_id: str
    """Id of the check-in, reminder or alert it comes from (empty for summaries)."""
    text: str
    """The message; for reminders exactly what the caregiver wrote."""
    created_at: datetime
    """UTC time it was delivered to the inbox."""
    scheduled_for: datetime | None = None
    """UTC time it was scheduled for (check-ins and reminders)."""
    severity: Severity | None = None
    """For alerts: how urgent."""
    scope: ConsentScope | None = None
    """For deliveries to contacts: the consent scope it is sent under."""
    read_at: datetime | None = None
    """UTC time it was marked read."""
    due_by: datetime | None = None
    """Reply (check-in) or acknowledgement (reminder) deadline before escalation."""
    answered_at: datetime | None = None
    """UTC time the user replied (check-in) or acknowledged (reminder)."""
    escalated_at: datetime | None = None
    """UTC time the missing reply or acknowledgement was escalated."""
    webhook: WebhookStatus = "none"
    """Webhook delivery state."""
    attempts: int = 0
    """Webhook POST attempts made."""
