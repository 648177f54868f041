"""The /v1/care REST routes, in-process: CRUD, pause/resume, acks, inbox, tenants, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

fastapi = pytest.importorskip("fastapi",
                              reason='needs the server extra: pip install "personae[server]"')
httpx = pytest.importorskip("httpx")

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402

from personae.integrations.companion.auth import ApiError, Principal  # noqa: E402
from personae.integrations.companion.care import CareService  # noqa: E402
from personae.integrations.companion.care_api import care_principal, router  # noqa: E402
from personae.integrations.companion.care_store import CareStore  # noqa: E402


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 28, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def no_posts(delivery: Any, webhook: Any) -> int:
    return 1


def make_app(care: CareService) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    app.state.care = care

    async def principal(request: Request) -> Principal:
        tenant = request.headers.get("x-test-tenant", "acme")
        return Principal(tenant=tenant, key_id="k1", scopes=frozenset({"care"}))

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), status_code=exc.status)

    app.dependency_overrides[care_principal] = principal
    app.add_exception_handler(ApiError, api_error)
    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def care(clock: FakeClock) -> AsyncIterator[CareService]:
    service = CareService(CareStore(":memory:"), clock, no_posts,
                          lambda persona, user, purpose: f"{persona} says hello to {user}")
    yield service
    await service.aclose()


@pytest.fixture
async def http(care: CareService) -> AsyncIterator[Any]:
    transport = httpx.ASGITransport(app=make_app(care))
    async with httpx.AsyncClient(transport=transport, base_url="http://care.test") as client:
        yield client


CHECKIN = {"user": "ann", "persona": "mira", "timezone": "Europe/Berlin",
           "schedule": {"kind": "daily", "time": "09:00"}, "escalate_after_minutes": 60}


async def test_checkin_crud_and_pause_resume(http: Any, care: CareService,
                                             clock: FakeClock) -> None:
    created = await http.post("/v1/care/checkins", json=CHECKIN)
    assert created.status_code == 201, created.text
    body = created.json()
    cid = body["id"]
    assert body["tenant"] == "acme" and body["next_due"] == "2025-03-29T08:00:00Z"

    listed = (await http.get("/v1/care/checkins", params={"user": "ann"})).json()
    assert [c["id"] for c in listed["data"]] == [cid]
    assert (await http.get("/v1/care/checkins", params={"user": "bob"})).json()["data"] == []
    assert (await http.get(f"/v1/care/checkins/{cid}")).json()["persona"] == "mira"

    changed = await http.put(f"/v1/care/checkins/{cid}",
                             json={**CHECKIN, "schedule": {"kind": "daily", "time": "10:30"}})
    assert changed.json()["next_due"] == "2025-03-29T09:30:00Z"

    paused = (await http.post(f"/v1/care/checkins/{cid}/pause")).json()
    assert paused["paused"] is True and paused["next_due"] is None
    assert (await care.tick(datetime(2025, 3, 29, 9, 30, tzinfo=UTC))).checkins == 0
    clock.now = datetime(2025, 3, 29, 12, tzinfo=UTC)
    resumed = (await http.post(f"/v1/care/checkins/{cid}/resume")).json()
    assert resumed["paused"] is False and resumed["next_due"] == "2025-03-30T08:30:00Z"

    deleted = await http.delete(f"/v1/care/checkins/{cid}")
    assert deleted.json() == {"id": cid, "deleted": True}
    missing = await http.get(f"/v1/care/checkins/{cid}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert cid in missing.json()["error"]["message"]


async def test_bad_input_names_the_field(http: Any) -> None:
    bad_zone = await http.post("/v1/care/checkins", json={**CHECKIN, "timezone": "Moon/Base"})
    assert bad_zone.status_code == 422 and "IANA" in bad_zone.text
    past = await http.post("/v1/care/checkins", json={
        **CHECKIN, "schedule": {"kind": "once", "at": "2024-01-01T09:00:00"}})
    assert past.status_code == 400
    assert past.json()["error"]["param"] == "schedule.at"
    assert "not in the future" in past.json()["error"]["message"]


async def test_reminder_ack_and_verbatim_text(http: Any, care: CareService,
                                              clock: FakeClock) -> None:
    text = "Pills: 1× blue (morning)  — with breakfast"
    made = (await http.post("/v1/care/reminders", json={
        "user": "ann", "text": text, "timezone": "UTC", "ack_within_minutes": 15,
        "schedule": {"kind": "daily", "time": "08:00"}, "created_by": "Ana"})).json()
    rid = made["id"]
    early = await http.post(f"/v1/care/reminders/{rid}/ack")
    assert early.status_code == 409 and early.json()["error"]["code"] == "nothing_to_acknowledge"

    await care.tick(datetime(2025, 3, 29, 8, tzinfo=UTC))
    inbox = (await http.get("/v1/care/inbox", params={"user": "ann"})).json()["data"]
    assert [(d["kind"], d["text"]) for d in inbox] == [("reminder", text)]
    clock.now = datetime(2025, 3, 29, 8, 5, tzinfo=UTC)
    acked = (await http.post(f"/v1/care/reminders/{rid}/ack")).json()
    assert acked["reminder_id"] == rid
    assert acked["acknowledged"][0]["answered_at"] == "2025-03-29T08:05:00Z"
    assert (await care.tick(datetime(2025, 3, 29, 9, tzinfo=UTC))).escalations == 0

    updated = await http.put(f"/v1/care/reminders/{rid}", json={
        "user": "ann", "text": "New text", "schedule": {"kind": "daily", "time": "20:00"}})
    assert updated.json()["text"] == "New text"
    assert updated.json()["next_due"] == "2025-03-29T20:00:00Z"
    assert (await http.get("/v1/care/reminders")).json()["data"][0]["id"] == rid
    assert (await http.delete(f"/v1/care/reminders/{rid}")).status_code == 200
    assert (await http.post(f"/v1/care/reminders/{rid}/ack")).status_code == 404


async def test_contacts_secret_shown_once_and_consent(http: Any) -> None:
    created = await http.post("/v1/care/contacts", json={
        "user": "ann", "name": "Ana", "scopes": ["crisis", "alerts", "alerts"],
        "webhook_url": "https://example.org/hook"})
    assert created.status_code == 201
    body = created.json()
    secret = body["webhook_secret"]
    assert secret and len(secret) >= 32 and body["scopes"] == ["alerts", "crisis"]
    shown = (await http.get(f"/v1/care/contacts/{body['id']}")).json()
    assert "webhook_secret" not in shown
    assert "webhook_secret" not in (await http.get("/v1/care/contacts")).json()["data"][0]
    kept = (await http.put(f"/v1/care/contacts/{body['id']}", json={
        "user": "ann", "name": "Ana", "scopes": ["summaries"],
        "webhook_url": "https://example.org/hook"})).json()
    assert kept["webhook_secret"] is None and kept["scopes"] == ["summaries"]
    rotated = (await http.put(f"/v1/care/contacts/{body['id']}", json={
        "user": "ann", "name": "Ana", "scopes": [], "webhook_url": "https://example.org/hook",
        "webhook_secret": "a-brand-new-secret-value"})).json()
    assert rotated["webhook_secret"] == "a-brand-new-secret-value"
    bad = await http.post("/v1/care/contacts", json={"user": "ann", "name": "X",
                                                     "scopes": ["everything"]})
    assert bad.status_code == 422
    assert (await http.delete(f"/v1/care/contacts/{body['id']}")).json()["deleted"] is True


async def test_alerts_and_inbox_routes(http: Any, care: CareService) -> None:
    contact = (await http.post("/v1/care/contacts", json={
        "user": "ann", "name": "Ana", "scopes": ["alerts"]})).json()
    alert = await care.raise_alert("acme", "ann", "no_reply", "warning", "no reply at 09:00")
    listed = (await http.get("/v1/care/alerts", params={"unacknowledged": True})).json()
    assert [a["id"] for a in listed["data"]] == [alert.id]
    acked = (await http.post(f"/v1/care/alerts/{alert.id}/ack", json={"by": "Ana"})).json()
    assert acked["acknowledged_by"] == "Ana" and acked["acknowledged_at"]
    assert (await http.get("/v1/care/alerts", params={"unacknowledged": True})).json()[
        "data"] == []
    assert (await http.post(f"/v1/care/alerts/{alert.id}/ack")).status_code == 200

    inbox = (await http.get("/v1/care/inbox", params={"contact": contact["id"]})).json()["data"]
    assert [d["source_id"] for d in inbox] == [alert.id]
    read = (await http.post(f"/v1/care/inbox/{inbox[0]['id']}/read")).json()
    assert read["read_at"]
    assert (await http.get("/v1/care/inbox", params={"contact": contact["id"]})).json()[
        "data"] == []
    everything = await http.get("/v1/care/inbox", params={"contact": contact["id"],
                                                           "unread": False})
    assert len(everything.json()["data"]) == 1
    both = await http.get("/v1/care/inbox", params={"contact": contact["id"], "user": "ann"})
    assert both.status_code == 400
    assert (await http.get("/v1/care/inbox", params={"contact": "con_x"})).status_code == 404
    assert (await http.post("/v1/care/inbox/dlv_x/read")).status_code == 404


async def test_tenants_never_see_each_other(http: Any) -> None:
    cid = (await http.post("/v1/care/checkins", json=CHECKIN)).json()["id"]
    other = {"x-test-tenant": "globex"}
    assert (await http.get(f"/v1/care/checkins/{cid}", headers=other)).status_code == 404
    assert (await http.get("/v1/care/checkins", headers=other)).json()["data"] == []
    assert (await http.delete(f"/v1/care/checkins/{cid}", headers=other)).status_code == 404
    assert (await http.get(f"/v1/care/checkins/{cid}")).status_code == 200


async def test_no_service_answers_503() -> None:
    app = make_app(None)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://care.test") as client:
        response = await client.get("/v1/care/alerts")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "care_unavailable"


def test_openapi_documents_every_route(care: CareService) -> None:
    spec = make_app(care).openapi()
    operations = [(path, method, op) for path, item in spec["paths"].items()
                  if path.startswith("/v1/care") for method, op in item.items()]
    assert len(operations) == 22
    for path, method, op in operations:
        ok = [code for code in op["responses"] if code.startswith("2")]
        assert len(ok) == 1, (path, method)
        schema = op["responses"][ok[0]]["content"]["application/json"]["schema"]
        assert "$ref" in schema, (path, method)
        for code in ("401", "403"):
            error = op["responses"][code]["content"]["application/json"]["schema"]
            assert error["$ref"].endswith("/ErrorBody"), (path, method, code)
        if "{" in path:
            assert "404" in op["responses"], (path, method)
        assert op.get("summary") and op.get("description"), (path, method)
    checkin = spec["components"]["schemas"]["CheckIn"]
    assert "IANA" in checkin["properties"]["timezone"]["description"]
