"""The safety audit log: append-only, hash-chained, without message text; referral counts."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx
import openai
from endpoint_server import make_app, running, secret

from personae.agents.turn import Reply
from personae.integrations.companion.audit import AuditLog, is_referral, safety_events
from personae.integrations.companion.auth import Principal
from personae.scope import Scope


def test_only_labels_of_safety_entries_reach_the_log() -> None:
    trace = [
        {"step": "prompt", "text": "the whole system prompt"},
        {"step": "safety_in", "profile": "companion", "action": "refer", "category": "crisis",
         "rule": "en:crisis_active[0]", "evidence": ["want to kill myself"], "referral": True,
         "flags": ["crisis"], "alert": {"kind": "crisis", "severity": "critical", "x": "y"},
         "reply": "Please call 988.", "message": "I want to kill myself"},
        {"step": "safety_out", "action": "replace", "category": "ai_disclosure",
         "text": "As an AI language model..."},
        {"step": "safety_in", "action": "pass", "topic": "medication", "referral": False},
        {"step": "safety_in", "action": "pass", "alert": {"kind": "fall", "severity": "warning"}},
    ]
    events = safety_events(trace)
    assert events == [
        {"step": "safety_in", "profile": "companion", "action": "refer", "category": "crisis",
         "rule": "en:crisis_active[0]", "flags": ["crisis"], "referral": True,
         "alert": {"kind": "crisis", "severity": "critical"}},
        {"step": "safety_out", "action": "replace", "category": "ai_disclosure",
         "referral": False},
        {"step": "safety_in", "action": "pass", "alert": {"kind": "fall", "severity": "warning"},
         "referral": False},
    ]
    assert "kill" not in json.dumps(events)


def test_referrals_are_recognised() -> None:
    assert is_referral({"referral": True})
    assert is_referral({"flags": ["crisis_referral"]})
    assert is_referral({"action": "ooc_help", "category": "distress"})
    assert not is_referral({"action": "deflect", "category": "ai_question"})


def test_the_log_is_a_hash_chain_that_shows_tampering(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for n in range(3):
        log.append_sync({"kind": "safety", "tenant": "t", "category": f"c{n}", "referral": n > 0})
    assert log.verify() is None
    assert [e["category"] for e in log.events("t")] == ["c2", "c1", "c0"]
    assert log.events("other") == []
    assert log.referrals("t")["total"] == 2
    reopened = AuditLog(tmp_path / "audit.jsonl")  # a restart continues the chain
    reopened.append_sync({"kind": "safety", "tenant": "t"})
    assert reopened.verify() is None
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace('"c1"', '"cX"')
    (tmp_path / "audit.jsonl").write_text("\n".join(lines) + "\n")
    assert reopened.verify() == 3


def test_a_crisis_turn_is_audited_and_counted_without_its_text(tmp_path: Path) -> None:
    home = tmp_path / "home"
    marker = f"zq{uuid.uuid4().hex}"
    app = make_app(home, ids=["rosie"], persona={"safety": {"profile": "game"},
                                                 "fallbacks": ["Hm, let me think."]})
    with running(app) as url:
        client = openai.OpenAI(api_key=secret("acme", "app"), base_url=url + "/v1",
                               max_retries=0)
        reply = client.chat.completions.create(model="rosie", user="ann", messages=[
            {"role": "user", "content": f"irl I'm not okay {marker}"}])
        client.chat.completions.create(model="rosie", user="bob", messages=[
            {"role": "user", "content": "How is the harvest?"}])
        staff = {"Authorization": f"Bearer {secret('acme', 'staff')}"}
        events = httpx.get(url + "/v1/admin/audit", headers=staff).json()["data"]
        counts = httpx.get(url + "/v1/admin/referrals", headers=staff).json()
        other_tenant = httpx.get(url + "/v1/admin/referrals",
                                 headers={"Authorization": f"Bearer {secret('globex', 'app')}"})
    assert reply.model_extra is not None
    assert "distress" in reply.model_extra["personae"]["flags"]
    assert len(events) == 1
    event = events[0]
    assert (event["kind"], event["persona"], event["category"]) == ("safety", "rosie", "distress")
    assert event["referral"] is True and event["user_ref"] and event["user_ref"] != "ann"
    assert counts["total"] == 1 and counts["by_persona"] == {"rosie": 1}
    assert other_tenant.json()["total"] == 0
    audit = (home / "companion" / "audit.jsonl").read_text()
    assert marker not in audit and "not okay" not in audit and "ann" not in audit


async def test_alerts_go_to_care_and_every_message_counts_as_activity(tmp_path: Path) -> None:
    raised: list[tuple[str, ...]] = []
    active: list[tuple[str, str]] = []
    care = SimpleNamespace(
        raise_alert=lambda *args: raised.append(args),
        note_user_activity=lambda tenant, user: active.append((tenant, user)),
    )
    app = make_app(tmp_path / "home", ids=["rosie"])
    service = app.state.companion
    service.care = care
    who = Principal("acme", "app", frozenset({"chat"}))
    scope = Scope(persona="rosie", tenant="acme", user="ann")
    await service.users.aseen("acme", "ann", "rosie")
    crisis = Reply(text="I'm here with you.", trace=[{
        "step": "safety_in", "action": "support", "category": "crisis", "rule": "en:crisis[3]",
        "referral": True, "alert": {"kind": "crisis", "severity": "critical"},
        "evidence": ["i can't go on"]}])
    await service._after(who, scope, crisis)
    await service._after(who, scope, Reply(text="Lovely weather."))
    await service.aclose()
    app.state.test_store.close()
    assert raised == [("acme", "ann", "crisis", "critical", "crisis via en:crisis[3] (rosie)")]
    assert active == [("acme", "ann"), ("acme", "ann")]
    assert service.audit.referrals("acme")["by_category"] == {"crisis": 1}
