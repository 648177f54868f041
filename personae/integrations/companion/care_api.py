"""The care REST API: `router = APIRouter(prefix="/v1/care")`.

Check-ins (CRUD, pause, resume), reminders (CRUD, acknowledge), caregiver
contacts with consent (CRUD), alerts (list, acknowledge) and the inbox (list,
mark read). Every route needs a key with the `care` scope and sees only its
tenant's records. Errors come in OpenAI's envelope, `{"error": {"message",
"type", "param", "code"}}`.

The app includes the router and finds the service at `app.state.care` (else
the current service of `personae.integrations.companion.care`). `WEB_DIR` is
the static chat page the app serves at `/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field

from personae.integrations.companion.auth import ApiError, Principal, require
from personae.integrations.companion.care import CareService, current_service
from personae.integrations.companion.care_models import (
    Alert,
    AlertAck,
    CheckIn,
    CheckInIn,
    ContactCreated,
    ContactIn,
    ContactOut,
    Delivery,
    Reminder,
    ReminderIn,
)

__all__ = [
    "WEB_DIR",
    "AlertList",
    "CheckInList",
    "ContactList",
    "Deleted",
    "DeliveryList",
    "ErrorBody",
    "ReminderAck",
    "ReminderList",
    "care_principal",
    "router",
]

WEB_DIR = Path(__file__).resolve().parent / "web"
"""The static chat page (index.html, app.js, style.css), served by the app at `/`."""

care_principal = require("care")
"""The dependency every care route uses: a key with the `care` scope."""

router = APIRouter(prefix="/v1/care", tags=["care"])
"""The care routes; `app.include_router(router)`."""


class ErrorDetail(BaseModel):
    """What went wrong."""

    message: str
    """What went wrong and how to fix it."""
    type: str
    """Error type, e.g. `invalid_request_error`."""
    param: str | None = None
    """The request field at fault, if any."""
    code: str | None = None
    """Machine-readable code, e.g. `not_found`."""


class ErrorBody(BaseModel):
    """OpenAI's error envelope."""

    error: ErrorDetail
    """The error."""


class CheckInList(BaseModel):
    """Check-ins, oldest first."""

    object: Literal["list"] = "list"
    data: list[CheckIn]
    """The check-ins."""


class ReminderList(BaseModel):
    """Reminders, oldest first."""

    object: Literal["list"] = "list"
    data: list[Reminder]
    """The reminders."""


class ContactList(BaseModel):
    """Caregiver contacts, oldest first (without webhook secrets)."""

    object: Literal["list"] = "list"
    data: list[ContactOut]
    """The contacts."""


class AlertList(BaseModel):
    """Alerts, newest first."""

    object: Literal["list"] = "list"
    data: list[Alert]
    """The alerts."""


class DeliveryList(BaseModel):
    """Inbox entries, oldest first."""

    object: Literal["list"] = "list"
    data: list[Delivery]
    """The deliveries."""


class Deleted(BaseModel):
    """A record was deleted."""

    id: str
    """Its id."""
    deleted: Literal[True] = True


class ReminderAck(BaseModel):
    """The acknowledged deliveries of a reminder."""

    reminder_id: str
    """The reminder."""
    acknowledged: list[Delivery] = Field(min_length=1)
    """The deliveries that were waiting, now acknowledged."""


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_AUTH: dict[int | str, dict[str, Any]] = {
    400: _error("Invalid request: a field is missing or has a bad value (`param` names it)."),
    401: _error("No API key, or an unknown one."),
    403: _error("The key lacks the `care` scope."),
    429: _error("The key is over its rate limit; see `retry-after`."),
    503: _error("The care service is not running."),
}
_MISSING = {**_AUTH, 404: _error("No record of your tenant has this id.")}

Who = Annotated[Principal, Depends(care_principal)]


def _care(request: Request) -> CareService:
    service = getattr(request.app.state, "care", None) or current_service()
    if service is None:
        raise ApiError(503, "the care service is not running; start the companion service with "
                       "care enabled", type="server_error", code="care_unavailable")
    assert isinstance(service, CareService)
    return service


Care = Annotated[CareService, Depends(_care)]


def _not_found(what: str, record_id: str) -> ApiError:
    return ApiError(404, f"no {what} with id {record_id!r} in your tenant; list them with "
                    f"GET /v1/care/{what}s", code="not_found", param="id")


def _bad(exc: ValueError, param: str) -> ApiError:
    return ApiError(400, str(exc), code="invalid_value", param=param)


UserFilter = Annotated[str | None, Query(description="Only this user's records.")]


# -- check-ins ------------------------------------------------------------------


@router.post("/checkins", status_code=201, response_model=CheckIn, responses=_AUTH,
             summary="Create a check-in")
async def create_checkin(body: CheckInIn, who: Who, care: Care) -> CheckIn:
    """Schedule the persona to check in on a user (once, daily or weekly)."""
    try:
        return await care.create_checkin(who.tenant, body)
    except ValueError as exc:
        raise _bad(exc, "schedule.at") from exc


@router.get("/checkins", response_model=CheckInList, responses=_AUTH, summary="List check-ins")
async def list_checkins(who: Who, care: Care, user: UserFilter = None) -> CheckInList:
    """List your tenant's check-ins."""
    return CheckInList(data=await care.list_checkins(who.tenant, user))


@router.get("/checkins/{checkin_id}", response_model=CheckIn, responses=_MISSING,
            summary="Get a check-in")
async def get_checkin(checkin_id: str, who: Who, care: Care) -> CheckIn:
    """Return one check-in."""
    found = await care.get_checkin(who.tenant, checkin_id)
    if found is None:
        raise _not_found("checkin", checkin_id)
    return found


@router.put("/checkins/{checkin_id}", response_model=CheckIn, responses=_MISSING,
            summary="Replace a check-in")
async def update_checkin(checkin_id: str, body: CheckInIn, who: Who, care: Care) -> CheckIn:
    """Replace a check-in's settings; a paused one stays paused."""
    try:
        found = await care.update_checkin(who.tenant, checkin_id, body)
    except ValueError as exc:
        raise _bad(exc, "schedule.at") from exc
    if found is None:
        raise _not_found("checkin", checkin_id)
    return found


@router.delete("/checkins/{checkin_id}", response_model=Deleted, responses=_MISSING,
               summary="Delete a check-in")
async def delete_checkin(checkin_id: str, who: Who, care: Care) -> Deleted:
    """Delete a check-in; what it already delivered stays in the inbox."""
    if not await care.delete_checkin(who.tenant, checkin_id):
        raise _not_found("checkin", checkin_id)
    return Deleted(id=checkin_id)


@router.post("/checkins/{checkin_id}/pause", response_model=CheckIn, responses=_MISSING,
             summary="Pause a check-in")
async def pause_checkin(checkin_id: str, who: Who, care: Care) -> CheckIn:
    """Stop delivering a check-in until it is resumed."""
    found = await care.pause_checkin(who.tenant, checkin_id)
    if found is None:
        raise _not_found("checkin", checkin_id)
    return found


@router.post("/checkins/{checkin_id}/resume", response_model=CheckIn, responses=_MISSING,
             summary="Resume a check-in")
async def resume_checkin(checkin_id: str, who: Who, care: Care) -> CheckIn:
    """Deliver a paused check-in again, from its next occurrence on."""
    found = await care.resume_checkin(who.tenant, checkin_id)
    if found is None:
        raise _not_found("checkin", checkin_id)
    return found


# -- reminders ------------------------------------------------------------------


@router.post("/reminders", status_code=201, response_model=Reminder, responses=_AUTH,
             summary="Create a reminder")
async def create_reminder(body: ReminderIn, who: Who, care: Care) -> Reminder:
    """Schedule a reminder; its text is delivered exactly as written."""
    try:
        return await care.create_reminder(who.tenant, body)
    except ValueError as exc:
        raise _bad(exc, "schedule.at") from exc


@router.get("/reminders", response_model=ReminderList, responses=_AUTH, summary="List reminders")
async def list_reminders(who: Who, care: Care, user: UserFilter = None) -> ReminderList:
    """List your tenant's reminders."""
    return ReminderList(data=await care.list_reminders(who.tenant, user))


@router.get("/reminders/{reminder_id}", response_model=Reminder, responses=_MISSING,
            summary="Get a reminder")
async def get_reminder(reminder_id: str, who: Who, care: Care) -> Reminder:
    """Return one reminder."""
    found = await care.get_reminder(who.tenant, reminder_id)
    if found is None:
        raise _not_found("reminder", reminder_id)
    return found


@router.put("/reminders/{reminder_id}", response_model=Reminder, responses=_MISSING,
            summary="Replace a reminder")
async def update_reminder(reminder_id: str, body: ReminderIn, who: Who, care: Care) -> Reminder:
    """Replace a reminder's text, schedule and settings."""
    try:
        found = await care.update_reminder(who.tenant, reminder_id, body)
    except ValueError as exc:
        raise _bad(exc, "schedule.at") from exc
    if found is None:
        raise _not_found("reminder", reminder_id)
    return found


@router.delete("/reminders/{reminder_id}", response_model=Deleted, responses=_MISSING,
               summary="Delete a reminder")
async def delete_reminder(reminder_id: str, who: Who, care: Care) -> Deleted:
    """Delete a reminder."""
    if not await care.delete_reminder(who.tenant, reminder_id):
        raise _not_found("reminder", reminder_id)
    return Deleted(id=reminder_id)


@router.post(
    "/reminders/{reminder_id}/ack", response_model=ReminderAck,
    responses={**_MISSING, 409: _error("Nothing delivered is waiting for acknowledgement.")},
    summary="Acknowledge a reminder",
)
async def ack_reminder(reminder_id: str, who: Who, care: Care) -> ReminderAck:
    """Acknowledge the reminder's delivered occurrences (stops their escalation)."""
    done = await care.ack_reminder(who.tenant, reminder_id)
    if done is None:
        raise _not_found("reminder", reminder_id)
    if not done:
        raise ApiError(409, f"reminder {reminder_id!r} has no delivery waiting for "
                       "acknowledgement; acknowledge after it has been delivered",
                       code="nothing_to_acknowledge")
    return ReminderAck(reminder_id=reminder_id, acknowledged=done)


# -- contacts -------------------------------------------------------------------


@router.post("/contacts", status_code=201, response_model=ContactCreated, responses=_AUTH,
             summary="Add a caregiver contact")
async def create_contact(body: ContactIn, who: Who, care: Care) -> ContactCreated:
    """Add a contact with its consent scopes; the webhook secret is shown only here."""
    contact = await care.create_contact(who.tenant, body)
    return ContactCreated(**ContactOut.of(contact).model_dump(),
                          webhook_secret=contact.webhook_secret)


@router.get("/contacts", response_model=ContactList, responses=_AUTH, summary="List contacts")
async def list_contacts(who: Who, care: Care, user: UserFilter = None) -> ContactList:
    """List your tenant's caregiver contacts."""
    return ContactList(data=[ContactOut.of(c) for c in await care.list_contacts(who.tenant, user)])


@router.get("/contacts/{contact_id}", response_model=ContactOut, responses=_MISSING,
            summary="Get a contact")
async def get_contact(contact_id: str, who: Who, care: Care) -> ContactOut:
    """Return one contact (without its webhook secret)."""
    found = await care.get_contact(who.tenant, contact_id)
    if found is None:
        raise _not_found("contact", contact_id)
    return ContactOut.of(found)


@router.put("/contacts/{contact_id}", response_model=ContactCreated, responses=_MISSING,
            summary="Replace a contact")
async def update_contact(contact_id: str, body: ContactIn, who: Who, care: Care) -> ContactCreated:
    """Replace name, consent and webhook; `webhook_secret` is shown only when it changed."""
    before = await care.get_contact(who.tenant, contact_id)
    found = await care.update_contact(who.tenant, contact_id, body)
    if found is None or before is None:
        raise _not_found("contact", contact_id)
    changed = found.webhook_secret != before.webhook_secret
    return ContactCreated(**ContactOut.of(found).model_dump(),
                          webhook_secret=found.webhook_secret if changed else None)


@router.delete("/contacts/{contact_id}", response_model=Deleted, responses=_MISSING,
               summary="Delete a contact")
async def delete_contact(contact_id: str, who: Who, care: Care) -> Deleted:
    """Delete a contact; nothing more is sent to it."""
    if not await care.delete_contact(who.tenant, contact_id):
        raise _not_found("contact", contact_id)
    return Deleted(id=contact_id)


# -- alerts ---------------------------------------------------------------------


@router.get("/alerts", response_model=AlertList, responses=_AUTH, summary="List alerts")
async def list_alerts(
    who: Who, care: Care, user: UserFilter = None,
    unacknowledged: Annotated[bool, Query(description="Only alerts nobody acknowledged.")] = False,
) -> AlertList:
    """List your tenant's alerts, newest first."""
    alerts = await care.list_alerts(who.tenant, user, unacknowledged_only=unacknowledged)
    return AlertList(data=alerts)


@router.post("/alerts/{alert_id}/ack", response_model=Alert, responses=_MISSING,
             summary="Acknowledge an alert")
async def ack_alert(alert_id: str, who: Who, care: Care,
                    body: Annotated[AlertAck | None, Body()] = None) -> Alert:
    """Mark an alert as seen and handled (acknowledging twice keeps the first)."""
    found = await care.ack_alert(who.tenant, alert_id, body.by if body else None)
    if found is None:
        raise _not_found("alert", alert_id)
    return found


# -- inbox ----------------------------------------------------------------------


@router.get("/inbox", response_model=DeliveryList, responses=_AUTH, summary="List an inbox")
async def inbox(
    who: Who, care: Care,
    user: Annotated[str | None, Query(description="The user's inbox.")] = None,
    contact: Annotated[str | None, Query(description="A caregiver contact's inbox.")] = None,
    unread: Annotated[bool, Query(description="Only deliveries not yet read.")] = True,
) -> DeliveryList:
    """List the deliveries to a user or to a caregiver contact (give exactly one)."""
    if (user is None) == (contact is None):
        raise ApiError(400, "give exactly one of the query parameters `user` and `contact`",
                       code="invalid_value", param="user")
    if contact is not None and await care.get_contact(who.tenant, contact) is None:
        raise _not_found("contact", contact)
    items = await care.inbox(who.tenant, user=user, contact=contact, unread_only=unread)
    return DeliveryList(data=items)


@router.post("/inbox/{delivery_id}/read", response_model=Delivery, responses=_MISSING,
             summary="Mark a delivery read")
async def mark_read(delivery_id: str, who: Who, care: Care) -> Delivery:
    """Mark a delivery read; for a check-in this counts as the user's reply."""
    found = await care.mark_read(who.tenant, delivery_id)
    if found is None:
        raise ApiError(404, f"no inbox entry with id {delivery_id!r} in your tenant; list them "
                       "with GET /v1/care/inbox", code="not_found", param="id")
    return found
