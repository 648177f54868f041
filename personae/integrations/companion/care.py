"""`CareService`: check-ins, reminders, caregiver alerts and their delivery.

Everything time-driven happens in `CareService.tick(now)`: due check-ins are
written in the persona's voice and delivered to the user's inbox, due
reminders are delivered exactly as the caregiver wrote them, unanswered
check-ins and unacknowledged reminders are escalated to caregivers as alerts,
and pending webhook deliveries are POSTed. Tests call `tick` with chosen
times; in a service, `start()` calls it every few seconds.

```python
care = await CareService.open(generate=AgentVoice(agent_for))
set_current_service(care)
await care.start(interval=15.0)
...
await care.aclose()
```

Other parts of the companion reach the running service through module-level
hooks that never fail for lack of one: `raise_alert` (the safety layer),
`note_user_activity` (the chat endpoint: a message answers open check-ins)
and `erase_user_schedules` (erasure). This module does not import FastAPI.

Who gets what is decided by consent: an alert of kind `crisis` goes to the
user's contacts that consented to `crisis`, any other alert to those that
consented to `alerts`, summaries to those that consented to `summaries`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar
from zoneinfo import ZoneInfo

from personae.integrations.companion import _care_ops as ops
from personae.integrations.companion.care_models import (
    Alert,
    CheckIn,
    CheckInIn,
    Contact,
    ContactIn,
    Delivery,
    Reminder,
    ReminderIn,
    Severity,
)
from personae.integrations.companion.care_schedule import (
    defer_for_quiet,
    in_quiet_hours,
    next_occurrence,
    quiet_end,
)
from personae.integrations.companion.care_store import CareStore
from personae.integrations.companion.care_webhook import Webhook, WebhookSender

__all__ = [
    "ALERT_WINDOW",
    "FALLBACK_CHECKIN",
    "CareService",
    "Clock",
    "Deliver",
    "Generate",
    "TickReport",
    "current_service",
    "erase_user_schedules",
    "note_user_activity",
    "raise_alert",
    "set_current_service",
    "system_clock",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_P = ParamSpec("_P")

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware."""

ALERT_WINDOW = timedelta(minutes=30)
"""Default window in which alerts of the same (tenant, user, kind) are folded into one."""
FALLBACK_CHECKIN = "Hello, I'm checking in on you. How are you today?"
"""Check-in text used when the persona's voice cannot be generated."""
_DETAIL_MAX = 300


class Generate(Protocol):
    """Writes a check-in in the persona's voice: `generate(persona_id, user, purpose, tenant=)`.

    `purpose` describes the message, e.g. `check-in` or `check-in about the
    morning walk`. May be a plain or an async function.
    """

    def __call__(
        self, persona_id: str, user: str, purpose: str, *, tenant: str
    ) -> Awaitable[str] | str:
        """Return the message text (or an awaitable of it)."""
        ...


class Deliver(Protocol):
    """POSTs a delivery to a contact's webhook (`WebhookSender` is the real one).

    Returns the attempts made (or anything else, counted as one); raises when
    the delivery failed for good.
    """

    def __call__(self, delivery: Delivery, webhook: Webhook) -> Awaitable[object]:
        """Send `delivery` to `webhook`."""
        ...


def system_clock() -> datetime:
    """Return the current UTC time."""
    return datetime.now(UTC)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _clean_detail(detail: str) -> str:
    text = re.sub(r"\s+", " ", detail).strip()
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


@dataclass
class TickReport:
    """What one `tick` did (counts)."""

    checkins: int = 0
    """Check-ins delivered."""
    deferred: int = 0
    """Check-ins held back by quiet hours."""
    reminders: int = 0
    """Reminders delivered."""
    escalations: int = 0
    """Missing replies and acknowledgements turned into alerts."""
    webhooks_sent: int = 0
    """Webhook deliveries that succeeded."""
    webhooks_failed: int = 0
    """Webhook deliveries that failed for good."""


class CareService:
    """Schedules and delivers check-ins and reminders; escalates and routes alerts.

    Args:
        store: Where records live.
        clock: The current time for requests (creation, acknowledgements);
            `tick` takes its own `now`.
        deliver: Posts contact deliveries to webhooks; a `WebhookSender` when omitted.
        generate: Writes check-ins in the persona's voice; without it every
            check-in says `FALLBACK_CHECKIN`.
        alert_window: Alerts of one (tenant, user, kind) within this window are
            folded into the first, unless the severity rises.

    Example:
        ```python
        care = CareService(CareStore(":memory:"), clock, deliver, generate)
        await care.create_checkin("acme", CheckInIn(user="ann", persona="mira",
            schedule=Daily(time="09:00"), timezone="Europe/Berlin"))
        await care.tick(datetime(2025, 3, 30, 7, 0, tzinfo=UTC))
        ```
    """

    def __init__(self, store: CareStore, clock: Clock = system_clock,
                 deliver: Deliver | None = None, generate: Generate | None = None, *,
                 alert_window: timedelta = ALERT_WINDOW) -> None:
        self.store = store
        self.clock = clock
        self._sender = WebhookSender() if deliver is None else None
        self._deliver: Deliver = deliver if deliver is not None else self._sender  # type: ignore[assignment]
        self._generate = generate
        self.alert_window = alert_window
        self._mutex = asyncio.Lock()
        self._flushing = asyncio.Lock()
        self._loop_task: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        """The event loop the service runs in, once started."""

    @classmethod
    async def open(cls, home: Path | None = None, *, clock: Clock = system_clock,
                   deliver: Deliver | None = None, generate: Generate | None = None) -> CareService:
        """Open the store at `<home>/companion/care.sqlite` (`PERSONAE_HOME` by default).

        Raises:
            IntegrationError: The database cannot be opened.
        """
        store = await asyncio.to_thread(CareStore, CareStore.default_path(home))
        return cls(store, clock, deliver, generate)

    async def _db(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- lifecycle -------------------------------------------------------------

    async def start(self, interval: float = 15.0) -> None:
        """Run `tick(clock())` every `interval` seconds in the background until `aclose`."""
        self.loop = asyncio.get_running_loop()
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._run(interval), name="personae-care")

    async def _run(self, interval: float) -> None:
        while True:
            try:
                await self.tick(self.clock())
            except Exception:
                # One bad record must not stop every later check-in.
                log.exception("care tick failed; retrying in %.0f s", interval)
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        """Stop the background loop, close the webhook client and the store."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self._sender is not None:
            await self._sender.aclose()
        await self._db(self.store.close)

    # -- check-ins -------------------------------------------------------------

    def _checkin_due(self, checkin: CheckIn, after: datetime) -> datetime | None:
        zone = ZoneInfo(checkin.timezone)
        occurrence = next_occurrence(checkin.schedule, zone, after)
        if occurrence is None:
            return None
        return defer_for_quiet(checkin.quiet_hours, zone, occurrence)

    async def create_checkin(self, tenant: str, body: CheckInIn) -> CheckIn:
        """Create a check-in for `body.user`.

        Raises:
            ValueError: A one-off check-in whose time has passed.
        """
        now = self.clock()
        checkin = CheckIn(**body.model_dump(), id=_new_id("chk"), tenant=tenant, created_at=now)
        checkin.next_due = self._checkin_due(checkin, now)
        ops.require_future(checkin.next_due, body.schedule)
        await self._db(self.store.put, checkin)
        return checkin

    async def get_checkin(self, tenant: str, checkin_id: str) -> CheckIn | None:
        """Return a check-in, or `None` if the tenant has none with this id."""
        return await self._db(self.store.get, CheckIn, tenant, checkin_id)

    async def list_checkins(self, tenant: str, user: str | None = None) -> list[CheckIn]:
        """Return the tenant's check-ins (of one user when given)."""
        return await self._db(self.store.records, CheckIn, tenant, user)

    async def update_checkin(self, tenant: str, checkin_id: str, body: CheckInIn) -> CheckIn | None:
        """Replace a check-in's settings (its paused state is kept); `None` if unknown.

        Raises:
            ValueError: A one-off check-in whose time has passed.
        """
        async with self._mutex:
            old = await self.get_checkin(tenant, checkin_id)
            if old is None:
                return None
            now = self.clock()
            checkin = CheckIn.model_validate({**old.model_dump(), **body.model_dump()})
            checkin.next_due = None if checkin.paused else self._checkin_due(checkin, now)
            if not checkin.paused:
                ops.require_future(checkin.next_due, body.schedule)
            await self._db(self.store.put, checkin)
            return checkin

    async def delete_checkin(self, tenant: str, checkin_id: str) -> bool:
        """Delete a check-in; tell whether it existed. Its past deliveries stay in the inbox."""
        async with self._mutex:
            return await self._db(self.store.delete, CheckIn, tenant, checkin_id)

    async def pause_checkin(self, tenant: str, checkin_id: str) -> CheckIn | None:
        """Pause a check-in: nothing is delivered until `resume_checkin`; `None` if unknown."""
        async with self._mutex:
            checkin = await self.get_checkin(tenant, checkin_id)
            if checkin is None:
                return None
            checkin.paused, checkin.next_due = True, None
            await self._db(self.store.put, checkin)
            return checkin

    async def resume_checkin(self, tenant: str, checkin_id: str) -> CheckIn | None:
        """Resume a paused check-in from now on; occurrences missed while paused are skipped.

        A one-off check-in whose time passed during the pause is finished
        (`next_due` is `None`). Returns `None` if unknown.
        """
        async with self._mutex:
            checkin = await self.get_checkin(tenant, checkin_id)
            if checkin is None:
                return None
            checkin.paused = False
            checkin.next_due = self._checkin_due(checkin, self.clock())
            await self._db(self.store.put, checkin)
            return checkin

    async def _voice(self, checkin: CheckIn) -> str:
        purpose = f"check-in about {checkin.topic}" if checkin.topic else "check-in"
        if self._generate is None:
            return FALLBACK_CHECKIN
        try:
            made = self._generate(checkin.persona, checkin.user, purpose, tenant=checkin.tenant)
            text = await made if inspect.isawaitable(made) else made
        except Exception:
            log.warning("check-in %s: the persona's voice failed; sending the plain line",
                        checkin.id, exc_info=True)
            return FALLBACK_CHECKIN
        text = str(text).strip()
        return text or FALLBACK_CHECKIN

    async def _deliver_checkin(self, due: CheckIn, now: datetime, report: TickReport) -> None:
        zone = ZoneInfo(due.timezone)
        if due.quiet_hours is not None and in_quiet_hours(due.quiet_hours, zone, now):
            # A late tick (or a restart) landed inside quiet hours: wait for their end.
            async with self._mutex:
                current = await self.get_checkin(due.tenant, due.id)
                if current is not None and current.next_due == due.next_due and not current.paused:
                    current.next_due = quiet_end(due.quiet_hours, zone, now)
                    await self._db(self.store.put, current)
                    report.deferred += 1
            return
        text = await self._voice(due)
        async with self._mutex:
            current = await self.get_checkin(due.tenant, due.id)
            if current is None or current.paused or current.next_due != due.next_due:
                return  # changed while its text was being written
            minutes = current.escalate_after_minutes
            delivery = Delivery(
                id=_new_id("dlv"), tenant=current.tenant, user=current.user,
                recipient_kind="user", recipient=current.user, kind="checkin",
                source_id=current.id, text=text, created_at=now, scheduled_for=current.next_due,
                due_by=now + timedelta(minutes=minutes) if minutes else None,
            )
            current.next_due = self._checkin_due(current, now)
            await self._db(self.store.put, delivery)
            await self._db(self.store.put, current)
            report.checkins += 1

    # -- reminders -------------------------------------------------------------

    async def create_reminder(self, tenant: str, body: ReminderIn) -> Reminder:
        """Create a reminder; its text is stored and delivered exactly as given.

        Raises:
            ValueError: A one-off reminder whose time has passed.
        """
        now = self.clock()
        reminder = Reminder(**body.model_dump(), id=_new_id("rem"), tenant=tenant, created_at=now)
        reminder.next_due = next_occurrence(body.schedule, ZoneInfo(body.timezone), now)
        ops.require_future(reminder.next_due, body.schedule)
        await self._db(self.store.put, reminder)
        return reminder

    async def get_reminder(self, tenant: str, reminder_id: str) -> Reminder | None:
        """Return a reminder, or `None` if the tenant has none with this id."""
        return await self._db(self.store.get, Reminder, tenant, reminder_id)

    async def list_reminders(self, tenant: str, user: str | None = None) -> list[Reminder]:
        """Return the tenant's reminders (of one user when given)."""
        return await self._db(self.store.records, Reminder, tenant, user)

    async def update_reminder(self, tenant: str, reminder_id: str,
                              body: ReminderIn) -> Reminder | None:
        """Replace a reminder's text, time and settings; `None` if unknown.

        Raises:
            ValueError: A one-off reminder whose time has passed.
        """
        async with self._mutex:
            old = await self.get_reminder(tenant, reminder_id)
            if old is None:
                return None
            reminder = Reminder.model_validate({**old.model_dump(), **body.model_dump()})
            zone = ZoneInfo(body.timezone)
            reminder.next_due = next_occurrence(body.schedule, zone, self.clock())
            ops.require_future(reminder.next_due, body.schedule)
            await self._db(self.store.put, reminder)
            return reminder

    async def delete_reminder(self, tenant: str, reminder_id: str) -> bool:
        """Delete a reminder; tell whether it existed."""
        async with self._mutex:
            return await self._db(self.store.delete, Reminder, tenant, reminder_id)

    async def ack_reminder(self, tenant: str, reminder_id: str) -> list[Delivery] | None:
        """Acknowledge every delivered, unacknowledged occurrence of a reminder.

        Returns the deliveries acknowledged (empty when none was waiting), or
        `None` if the reminder is unknown.
        """
        async with self._mutex:
            reminder = await self.get_reminder(tenant, reminder_id)
            if reminder is None:
                return None
            return await self._db(ops.answer, self.store, tenant, reminder.user, "reminder",
                                  self.clock(), reminder_id)

    async def _deliver_reminder(self, due: Reminder, now: datetime, report: TickReport) -> None:
        async with self._mutex:
            current = await self.get_reminder(due.tenant, due.id)
            if current is None or current.next_due != due.next_due:
                return
            minutes = current.ack_within_minutes
            # The caregiver's words, untouched: no model sees or rewrites a reminder.
            delivery = Delivery(
                id=_new_id("dlv"), tenant=current.tenant, user=current.user,
                recipient_kind="user", recipient=current.user, kind="reminder",
                source_id=current.id, text=current.text, created_at=now,
                scheduled_for=current.next_due,
                due_by=now + timedelta(minutes=minutes) if minutes else None,
            )
            current.next_due = next_occurrence(current.schedule, ZoneInfo(current.timezone), now)
            await self._db(self.store.put, delivery)
            await self._db(self.store.put, current)
            report.reminders += 1

    # -- contacts --------------------------------------------------------------

    async def create_contact(self, tenant: str, body: ContactIn) -> Contact:
        """Add a caregiver contact; a webhook without a secret gets a generated one."""
        contact = Contact(**body.model_dump(), id=_new_id("con"), tenant=tenant,
                          created_at=self.clock())
        if contact.webhook_url is not None and contact.webhook_secret is None:
            contact.webhook_secret = secrets.token_urlsafe(32)
        await self._db(self.store.put, contact)
        return contact

    async def get_contact(self, tenant: str, contact_id: str) -> Contact | None:
        """Return a contact, or `None` if the tenant has none with this id."""
        return await self._db(self.store.get, Contact, tenant, contact_id)

    async def list_contacts(self, tenant: str, user: str | None = None) -> list[Contact]:
        """Return the tenant's contacts (of one user when given)."""
        return await self._db(self.store.records, Contact, tenant, user)

    async def update_contact(self, tenant: str, contact_id: str, body: ContactIn) -> Contact | None:
        """Replace a contact's name, consent and webhook; `None` if unknown.

        Leaving `webhook_secret` out keeps the current secret. Withdrawn consent
        takes effect at once: nothing under it is sent or shown any more.
        """
        async with self._mutex:
            old = await self.get_contact(tenant, contact_id)
            if old is None:
                return None
            data = body.model_dump()
            if data["webhook_secret"] is None:
                data["webhook_secret"] = old.webhook_secret
            contact = Contact.model_validate({**old.model_dump(), **data})
            if contact.webhook_url is not None and contact.webhook_secret is None:
                contact.webhook_secret = secrets.token_urlsafe(32)
            await self._db(self.store.put, contact)
            return contact

    async def delete_contact(self, tenant: str, contact_id: str) -> bool:
        """Delete a contact; tell whether it existed."""
        async with self._mutex:
            return await self._db(self.store.delete, Contact, tenant, contact_id)

    # -- alerts ----------------------------------------------------------------

    async def raise_alert(self, tenant: str, user: str, kind: str, severity: Severity,
                          detail: str) -> Alert:
        """Record an alert about a user and send it to the contacts who consented.

        An alert of the same (tenant, user, kind) within `alert_window` is
        folded into the earlier one (its `count` grows, nobody is notified
        again) unless the severity rises.

        Args:
            tenant: The user's tenant.
            user: Who the alert is about.
            kind: What happened; `crisis` goes to `crisis` consent, others to `alerts`.
            severity: How urgent.
            detail: A short description, never the user's own words (cut at 300 characters).
        """
        alert, _ = await self._db(self.record_alert, tenant, user, kind, severity, detail,
                                  self.clock())
        await self.flush()
        return alert

    def record_alert(self, tenant: str, user: str, kind: str, severity: Severity, detail: str,
                     now: datetime) -> tuple[Alert, list[Delivery]]:
        """Record an alert and queue its deliveries without sending them (blocking).

        For callers without an event loop; `tick` sends what is queued.
        Returns the alert (new or folded into) and the deliveries queued.
        """
        return ops.record_alert(self.store, tenant, user, kind, severity,
                                _clean_detail(detail), now, self.alert_window,
                                new_id=_new_id)

    async def list_alerts(self, tenant: str, user: str | None = None, *,
                          unacknowledged_only: bool = False) -> list[Alert]:
        """Return the tenant's alerts, newest first."""
        alerts = await self._db(self.store.records, Alert, tenant, user)
        if unacknowledged_only:
            alerts = [a for a in alerts if a.acknowledged_at is None]
        return sorted(alerts, key=lambda a: a.created_at, reverse=True)

    async def ack_alert(self, tenant: str, alert_id: str, by: str | None = None) -> Alert | None:
        """Acknowledge an alert (again is harmless); `None` if unknown."""
        async with self._mutex:
            alert = await self._db(self.store.get, Alert, tenant, alert_id)
            if alert is None:
                return None
            if alert.acknowledged_at is None:
                alert.acknowledged_at, alert.acknowledged_by = self.clock(), by
                await self._db(self.store.put, alert)
            return alert

    async def send_summary(self, tenant: str, user: str, *, since: datetime) -> list[Delivery]:
        """Send a digest of a user's check-ins, reminders and alerts since `since`.

        Only counts and alert kinds: no message text. Goes to the contacts that
        consented to `summaries`; returns the deliveries made.
        """
        queued = await self._db(ops.queue_summary, self.store, tenant, user, since,
                                self.clock(), _new_id)
        await self.flush()
        return queued

    # -- inbox and replies -----------------------------------------------------

    async def inbox(self, tenant: str, *, user: str | None = None, contact: str | None = None,
                    unread_only: bool = True) -> list[Delivery]:
        """Return deliveries to a user (`user=`) or to a caregiver contact (`contact=`).

        A contact sees only deliveries under the consent it has now.
        """
        if (user is None) == (contact is None):
            raise ValueError("give exactly one of user= and contact=")
        if user is not None:
            return await self._db(self.store.inbox, tenant, "user", user, unread_only=unread_only)
        assert contact is not None
        found = await self.get_contact(tenant, contact)
        if found is None:
            return []
        items = await self._db(self.store.inbox, tenant, "contact", contact,
                               unread_only=unread_only)
        return [d for d in items if ops.consented(found, d)]

    async def mark_read(self, tenant: str, delivery_id: str) -> Delivery | None:
        """Mark a delivery read; reading a check-in counts as replying to it. `None` if unknown."""
        async with self._mutex:
            delivery = await self._db(self.store.get, Delivery, tenant, delivery_id)
            if delivery is None:
                return None
            now = self.clock()
            delivery.read_at = delivery.read_at or now
            if delivery.kind == "checkin" and delivery.answered_at is None:
                delivery.answered_at = now
            await self._db(self.store.put, delivery)
            return delivery

    async def note_reply(self, tenant: str, user: str) -> int:
        """Count a message from the user as the reply to their open check-ins; return how many."""
        async with self._mutex:
            answered = await self._db(ops.answer, self.store, tenant, user, "checkin",
                                      self.clock(), None)
            return len(answered)

    async def erase_user(self, tenant: str, user: str) -> dict[str, int]:
        """Delete a user's check-ins, reminders, contacts, alerts and deliveries; rows per table."""
        async with self._mutex:
            return await self._db(self.store.erase_user, tenant, user)

    # -- the clock's work ------------------------------------------------------

    async def tick(self, now: datetime) -> TickReport:
        """Do everything due at `now`: deliver, escalate, post webhooks.

        Args:
            now: The current time, timezone-aware.
        """
        report = TickReport()
        for checkin in await self._db(self.store.due_checkins, now):
            await self._deliver_checkin(checkin, now, report)
        for reminder in await self._db(self.store.due_reminders, now):
            await self._deliver_reminder(reminder, now, report)
        async with self._mutex:
            escalated = await self._db(ops.escalate, self.store, now, self.alert_window, _new_id)
        report.escalations = escalated
        sent, failed = await self.flush()
        report.webhooks_sent, report.webhooks_failed = sent, failed
        return report

    async def flush(self) -> tuple[int, int]:
        """POST every pending webhook delivery; return (sent, failed)."""
        sent = failed = 0
        async with self._flushing:
            for delivery in await self._db(self.store.pending_webhooks):
                contact = await self.get_contact(delivery.tenant, delivery.recipient)
                if (contact is None or contact.webhook_url is None
                        or contact.webhook_secret is None or not ops.consented(contact, delivery)):
                    delivery.webhook = "none"
                    await self._db(self.store.put, delivery)
                    continue
                webhook = Webhook(str(contact.webhook_url), contact.webhook_secret)
                try:
                    attempts = await self._deliver(delivery, webhook)
                except Exception as exc:
                    log.warning("care delivery %s failed: %s", delivery.id, exc)
                    delivery.webhook = "failed"
                    delivery.attempts += int(getattr(exc, "attempts", 1))
                    failed += 1
                else:
                    delivery.webhook = "sent"
                    delivery.attempts += attempts if isinstance(attempts, int) else 1
                    sent += 1
                await self._db(self.store.put, delivery)
        return sent, failed


# -- hooks for the rest of the companion ----------------------------------------

_current: CareService | None = None
_tasks: set[asyncio.Future[Any]] = set()


def set_current_service(service: CareService | None) -> None:
    """Make `service` the one the module-level hooks use (`None` to clear)."""
    global _current
    _current = service


def current_service() -> CareService | None:
    """Return the service the module-level hooks use, if any."""
    return _current


def _submit(service: CareService, work: Callable[[], Coroutine[Any, Any, object]],
            without_loop: Callable[[], object]) -> None:
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    home = service.loop
    if running is not None and (home is None or home is running):
        task = running.create_task(work())
        _tasks.add(task)
        task.add_done_callback(_finished)
    elif home is not None and home.is_running():
        future = asyncio.run_coroutine_threadsafe(work(), home)
        _tasks.add(future)  # type: ignore[arg-type]
        future.add_done_callback(_finished)  # type: ignore[arg-type]
    else:
        without_loop()


def _finished(future: asyncio.Future[Any]) -> None:
    _tasks.discard(future)
    if not future.cancelled() and future.exception() is not None:
        log.error("care hook failed", exc_info=future.exception())


def raise_alert(tenant: str, user: str, kind: str, severity: Severity, detail: str) -> None:
    """Raise an alert about a user with the current service; never blocks, never raises.

    In a running event loop the alert is recorded and sent in a task; without
    one it is recorded at once and sent by the service's next tick. Without a
    current service it is logged and dropped.

    Args:
        tenant: The user's tenant.
        user: Who the alert is about.
        kind: `crisis` (sent under `crisis` consent) or any other kind (under `alerts`).
        severity: `info`, `warning` or `critical`.
        detail: A short description without the user's message text.
    """
    service = _current
    if service is None:
        log.info("alert %r of severity %r dropped: no care service is running", kind, severity)
        return
    _submit(
        service,
        lambda: service.raise_alert(tenant, user, kind, severity, detail),
        lambda: service.record_alert(tenant, user, kind, severity, detail, service.clock()),
    )


def note_user_activity(tenant: str, user: str) -> None:
    """Tell the current service the user wrote a message (answers open check-ins); never raises."""
    service = _current
    if service is None:
        return
    _submit(
        service,
        lambda: service.note_reply(tenant, user),
        lambda: ops.answer(service.store, tenant, user, "checkin", service.clock(), None),
    )


async def erase_user_schedules(tenant: str, user: str) -> dict[str, int]:
    """Delete everything the care features keep about a user; rows deleted per table.

    Uses the current service; without one, the database under `PERSONAE_HOME`
    if it exists (else nothing to delete: `{}`).
    """
    service = _current
    if service is not None:
        return await service.erase_user(tenant, user)
    path = CareStore.default_path()
    if not await asyncio.to_thread(path.exists):
        return {}
    store = await asyncio.to_thread(CareStore, path)
    try:
        return await asyncio.to_thread(store.erase_user, tenant, user)
    finally:
        await asyncio.to_thread(store.close)

