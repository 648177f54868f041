"""The care service's read-modify-write steps on the store, as plain blocking functions.

`CareService` runs them in a worker thread (`asyncio.to_thread`); the
module-level hooks run them directly when no event loop is around.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from personae.integrations.companion.care_models import (
    Alert,
    CheckIn,
    ConsentScope,
    Contact,
    Daily,
    Delivery,
    Once,
    Reminder,
    Severity,
    Weekly,
)
from personae.integrations.companion.care_store import CareStore

__all__ = [
    "answer",
    "consented",
    "escalate",
    "queue_summary",
    "record_alert",
    "require_future",
    "scope_of_alert",
]

NewId = Callable[[str], str]

_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
# Dedupe is a read-then-write; the hooks may run it from any thread.
_alerts_lock = threading.Lock()


def require_future(next_due: datetime | None, schedule: Once | Daily | Weekly) -> None:
    """Raise `ValueError` when a one-off schedule has no occurrence left."""
    if next_due is None and isinstance(schedule, Once):
        raise ValueError(
            f"schedule.at={schedule.at.isoformat()!r} is not in the future; give a later "
            "date and time (wall-clock time in `timezone`)"
        )


def scope_of_alert(kind: str) -> ConsentScope:
    """Return the consent scope an alert of this kind is sent under."""
    return "crisis" if kind == "crisis" else "alerts"


def consented(contact: Contact, delivery: Delivery) -> bool:
    """Tell whether a contact (still) consents to what a delivery carries."""
    return delivery.scope is not None and delivery.scope in contact.scopes


def _queue(store: CareStore, tenant: str, user: str, scope: ConsentScope, make: Callable[
        [Contact], Delivery]) -> list[Delivery]:
    queued = []
    for contact in store.contacts_of(tenant, user):
        if scope not in contact.scopes:
            continue
        delivery = make(contact)
        delivery.scope = scope
        delivery.webhook = "pending" if contact.webhook_url is not None else "none"
        store.put(delivery)
        queued.append(delivery)
    return queued


def record_alert(store: CareStore, tenant: str, user: str, kind: str, severity: Severity,
                 detail: str, now: datetime, window: timedelta, *,
                 new_id: NewId) -> tuple[Alert, list[Delivery]]:
    """Record an alert, folding it into a recent one of the same kind; queue its deliveries."""
    with _alerts_lock:
        recent = store.latest_alert(tenant, user, kind, now - window)
        if recent is not None and _RANK[severity] <= _RANK[recent.severity]:
            recent.count += 1
            recent.last_seen_at = now
            store.put(recent)
            return recent, []
        alert = Alert(id=new_id("alr"), tenant=tenant, user=user, kind=kind, severity=severity,
                      detail=detail, created_at=now, last_seen_at=now)
        store.put(alert)
    text = f"{severity.upper()}: {kind.replace('_', ' ')} for {user}. {detail}"
    queued = _queue(store, tenant, user, scope_of_alert(kind), lambda contact: Delivery(
        id=new_id("dlv"), tenant=tenant, user=user, recipient_kind="contact",
        recipient=contact.id, kind="alert", source_id=alert.id, text=text, created_at=now,
        severity=severity,
    ))
    return alert, queued


def answer(store: CareStore, tenant: str, user: str, kind: str, now: datetime,
           source_id: str | None) -> list[Delivery]:
    """Mark the user's open check-ins (or one reminder's deliveries) answered at `now`.

    Any message is a sign of life, so it answers every open check-in. An
    acknowledgement of a reminder answers its occurrences not yet escalated;
    only when there are none does it answer the latest escalated one (taken
    late), so yesterday's missed dose never reads as taken.
    """
    open_ones = store.outstanding(tenant, user, kind, source_id, before=now)
    if kind == "reminder":
        fresh = [d for d in open_ones if d.escalated_at is None]
        open_ones = fresh or open_ones[-1:]
    answered = []
    for delivery in open_ones:
        delivery.answered_at = now
        store.put(delivery)
        answered.append(delivery)
    return answered


def _local(at: datetime | None, timezone: str | None) -> str:
    if at is None:
        return "scheduled"
    zone = ZoneInfo(timezone or "UTC")
    return at.astimezone(zone).strftime("%H:%M %Z")


def escalate(store: CareStore, now: datetime, window: timedelta, new_id: NewId) -> int:
    """Turn unanswered check-ins and unacknowledged reminders past their deadline into alerts."""
    count = 0
    for delivery in store.overdue(now):
        late = delivery.due_by - delivery.created_at if delivery.due_by else timedelta()
        minutes = int(late.total_seconds() // 60)
        if delivery.kind == "checkin":
            checkin = store.get(CheckIn, delivery.tenant, delivery.source_id)
            when = _local(delivery.scheduled_for, checkin.timezone if checkin else None)
            kind = "no_reply"
            detail = f"No reply to the {when} check-in within {minutes} minutes."
        else:
            reminder = store.get(Reminder, delivery.tenant, delivery.source_id)
            when = _local(delivery.scheduled_for, reminder.timezone if reminder else None)
            kind = "reminder_missed"
            # The caregiver's own reminder text, shortened; never anything the user wrote.
            quoted = delivery.text if len(delivery.text) <= 80 else delivery.text[:79] + "…"
            detail = f"Reminder {quoted!r} ({when}) not acknowledged within {minutes} minutes."
        record_alert(store, delivery.tenant, delivery.user, kind, "warning", detail, now, window,
                     new_id=new_id)
        delivery.escalated_at = now
        store.put(delivery)
        count += 1
    return count


def queue_summary(store: CareStore, tenant: str, user: str, since: datetime, now: datetime,
                  new_id: NewId) -> list[Delivery]:
    """Queue a digest (counts only) for the user's contacts who consented to summaries."""
    mine = [d for d in store.deliveries_since(tenant, user, since) if d.recipient_kind == "user"]
    checkins = [d for d in mine if d.kind == "checkin"]
    reminders = [d for d in mine if d.kind == "reminder"]
    alerts = [a for a in store.records(Alert, tenant, user) if a.last_seen_at >= since]
    kinds = Counter(a.kind for a in alerts)
    text = (
        f"Summary for {user} since {since.strftime('%Y-%m-%d %H:%M %Z')}: "
        f"{len(checkins)} check-in(s), {sum(d.answered_at is not None for d in checkins)} "
        f"answered; {len(reminders)} reminder(s), "
        f"{sum(d.answered_at is not None for d in reminders)} acknowledged; "
        f"{len(alerts)} alert(s)"
        + (" (" + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())) + ")" if kinds else "")
        + "."
    )
    return _queue(store, tenant, user, "summaries", lambda contact: Delivery(
        id=new_id("dlv"), tenant=tenant, user=user, recipient_kind="contact",
        recipient=contact.id, kind="summary", source_id="", text=text, created_at=now,
    ))
