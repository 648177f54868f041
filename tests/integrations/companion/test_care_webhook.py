"""Webhook delivery against a real HTTP server on 127.0.0.1: signature, retries, refusals."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from personae.errors import IntegrationError
from personae.integrations.companion.care import CareService
from personae.integrations.companion.care_models import ContactIn, Delivery
from personae.integrations.companion.care_store import CareStore
from personae.integrations.companion.care_webhook import Webhook, WebhookSender, verify_signature

uvicorn = pytest.importorskip("uvicorn")
starlette_requests = pytest.importorskip("starlette.requests")
starlette_responses = pytest.importorskip("starlette.responses")

SECRET = "s3cret-key-for-the-test-0123456789"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook endpoint that answers from a script: (status, seconds to wait first)."""

    script: list[tuple[int, float]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/tok-SECRET-PATH"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = starlette_requests.Request(scope, receive)
        body = await request.body()
        self.received.append(Received({k.lower(): v for k, v in request.headers.items()}, body))
        status, wait = self.script.pop(0) if self.script else (200, 0.0)
        if wait:
            await asyncio.sleep(wait)
        response = starlette_responses.JSONResponse({"ok": status < 300}, status_code=status)
        await response(scope, receive, send)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = Receiver()
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "the loopback webhook server did not start"
    app.port = server.servers[0].sockets[0].getsockname()[1]
    yield app
    server.should_exit = True
    await asyncio.wait_for(serving, 10)


def delivery() -> Delivery:
    now = datetime(2025, 3, 29, 8, tzinfo=UTC)
    return Delivery(id="dlv_1", tenant="acme", user="ann", recipient_kind="contact",
                    recipient="con_1", kind="alert", source_id="alr_1", scope="alerts",
                    text="WARNING: no reply for ann. Grüße 👋", created_at=now,
                    severity="warning")


def fast_sender(**kw: Any) -> WebhookSender:
    return WebhookSender(wait_initial=0.0, wait_max=0.0, **kw)


def check_signature(got: Received) -> None:
    timestamp = got.headers["x-personae-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + got.body,
                        hashlib.sha256).hexdigest()
    assert got.headers["x-personae-signature"] == f"sha256={expected}"
    assert verify_signature(SECRET, timestamp, got.body, got.headers["x-personae-signature"])
    assert not verify_signature("another-secret-entirely!", timestamp, got.body,
                                got.headers["x-personae-signature"])
    assert not verify_signature(SECRET, timestamp, got.body + b" ",
                                got.headers["x-personae-signature"])


async def test_signed_json_post_retried_on_5xx(receiver: Receiver) -> None:
    receiver.script = [(503, 0.0), (500, 0.0), (200, 0.0)]
    sender = fast_sender()
    attempts = await sender(delivery(), Webhook(receiver.url, SECRET))
    await sender.aclose()
    assert attempts == 3 and len(receiver.received) == 3
    for got in receiver.received:
        assert got.headers["content-type"] == "application/json"
        assert got.headers["x-personae-delivery"] == "dlv_1"
        check_signature(got)
    body = json.loads(receiver.received[-1].body)
    assert body["text"] == "WARNING: no reply for ann. Grüße 👋"
    assert (body["kind"], body["user"], body["scope"]) == ("alert", "ann", "alerts")
    assert "webhook" not in body and "attempts" not in body


async def test_timeouts_are_retried(receiver: Receiver) -> None:
    receiver.script = [(200, 1.0), (200, 0.0)]
    sender = fast_sender(timeout=0.2)
    assert await sender(delivery(), Webhook(receiver.url, SECRET)) == 2
    await sender.aclose()


async def test_4xx_is_not_retried_and_the_url_token_is_not_shown(receiver: Receiver) -> None:
    receiver.script = [(410, 0.0)]
    sender = fast_sender()
    with pytest.raises(IntegrationError, match="HTTP 410") as caught:
        await sender(delivery(), Webhook(receiver.url, SECRET))
    await sender.aclose()
    assert len(receiver.received) == 1 and caught.value.attempts == 1  # type: ignore[attr-defined]
    assert "SECRET-PATH" not in str(caught.value)


async def test_gives_up_after_the_attempts(receiver: Receiver) -> None:
    receiver.script = [(502, 0.0)] * 10
    sender = fast_sender(attempts=3)
    with pytest.raises(IntegrationError, match="after 3 attempt"):
        await sender(delivery(), Webhook(receiver.url, SECRET))
    await sender.aclose()
    assert len(receiver.received) == 3


async def test_care_service_posts_alerts_to_consenting_contacts(receiver: Receiver) -> None:
    receiver.script = [(500, 0.0)]
    clock = lambda: datetime(2025, 3, 29, 8, tzinfo=UTC)  # noqa: E731
    care = CareService(CareStore(":memory:"), clock, fast_sender(), None)
    contact = await care.create_contact("acme", ContactIn(
        user="ann", name="Ana", scopes=["crisis"], webhook_url=receiver.url,
        webhook_secret=SECRET))
    await care.create_contact("acme", ContactIn(user="ann", name="Bo", scopes=["alerts"],
                                                webhook_url=receiver.url))
    alert = await care.raise_alert("acme", "ann", "crisis", "critical", "crisis language")
    [first, retried] = receiver.received
    check_signature(retried)
    assert first.headers["x-personae-delivery"] == retried.headers["x-personae-delivery"]
    body = json.loads(retried.body)
    assert body["source_id"] == alert.id and body["recipient"] == contact.id
    [sent] = await care.inbox("acme", contact=contact.id)
    assert (sent.webhook, sent.attempts) == ("sent", 2)

    receiver.script = [(404, 0.0)]
    await care.raise_alert("acme", "ann", "scam", "warning", "gift cards")
    failed = [d for d in await care.inbox("acme", contact=(await care.list_contacts(
        "acme", "ann"))[1].id)]
    assert [(d.webhook, d.attempts) for d in failed] == [("failed", 1)]
    await care.aclose()
