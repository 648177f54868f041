"""Erasing a user: memories, conversations, care schedules and the user's audit key go,
and not one byte of what they said stays in any file under the data directory."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
from endpoint_server import make_app, running, secret

from personae.integrations.companion.erasure import UserIndex


def api(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret('acme', 'staff')}"}
    return httpx.request(method, url + path, headers=headers, timeout=60, **kwargs)


def chat(url: str, user: str, text: str, *, persona: str = "rosie", stream: bool = False) -> str:
    client = openai.OpenAI(api_key=secret("acme", "app"), base_url=url + "/v1", max_retries=0)
    messages: Any = [{"role": "user", "content": text}]
    if stream:
        chunks = client.chat.completions.create(model=persona, user=user, messages=messages,
                                                stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reply = client.chat.completions.create(model=persona, user=user, messages=messages)
    return reply.choices[0].message.content or ""


def files_containing(root: Path, needle: str) -> list[Path]:
    data = needle.encode("utf-8")
    return [p for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]


def wait_for_memories(url: str, user: str, needle: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        memories = api(url, "GET", f"/v1/users/{user}/memories").json()["data"]
        if sum(needle in m["text"] for m in memories) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("the memories were not written")


def test_erasing_a_user_leaves_no_trace_of_what_they_said(tmp_path: Path) -> None:
    home = tmp_path / "home"
    secret_words = f"zq{uuid.uuid4().hex}"
    bobs_words = f"zq{uuid.uuid4().hex}"
    app = make_app(home, care=True)
    with running(app) as url:
        assert chat(url, "ann", f"My favourite colour is {secret_words}.").endswith(".")
        chat(url, "ann", f"Remember the code {secret_words} for me", stream=True)
        chat(url, "ann", f"I painted the fence {secret_words} today", persona="otto")
        chat(url, "bob", f"My favourite colour is {bobs_words}.")
        reminder = api(url, "POST", "/v1/care/reminders", json={
            "user": "ann", "text": f"Take the {secret_words} pills",
            "schedule": {"kind": "daily", "time": "09:00"}})
        assert reminder.status_code == 201, reminder.text
        wait_for_memories(url, "ann", secret_words, 3)
        wait_for_memories(url, "bob", bobs_words, 1)
        assert files_containing(home, secret_words)  # it was written down

        erased = api(url, "DELETE", "/v1/users/ann")
        assert erased.status_code == 200, erased.text
        report = erased.json()
        assert report["object"] == "user.erased" and report["user"] == "ann"
        assert report["memories"] >= 3
        assert sorted(report["personas"]) == ["otto", "rosie"]
        assert sum(report["other"]["care"].values()) >= 1

        assert files_containing(home, secret_words) == []  # while the server still runs
        assert api(url, "GET", "/v1/users/ann/memories").status_code == 404
        reminders = api(url, "GET", "/v1/care/reminders", params={"user": "ann"}).json()
        assert reminders["data"] == []
        assert files_containing(home, bobs_words)  # Bob keeps everything
        assert api(url, "GET", "/v1/users/bob/export").json()["personas"]

        # Ann may come back: she starts afresh, nothing of the old conversation is sent.
        fresh = app.state.companion.agents["rosie"]
        before = len(fresh.chain[0][1].calls)
        chat(url, "ann", "Hello again")
        sent = "\n".join(m.text for m in fresh.chain[0][1].calls[before])
        assert secret_words not in sent
    assert files_containing(home, secret_words) == []  # and once every file is closed


def test_the_audit_log_keeps_the_erasure_without_naming_the_user(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with running(make_app(home)) as url:
        chat(url, "ann-lee", "hello")
        assert api(url, "DELETE", "/v1/users/ann-lee").status_code == 200
        events = api(url, "GET", "/v1/admin/audit", params={"kind": "erasure"}).json()["data"]
        assert len(events) == 1 and events[0]["tenant"] == "acme"
        assert api(url, "DELETE", "/v1/users/ann-lee").status_code == 404
    assert files_containing(home / "companion", "ann-lee") == []


def test_erasure_hooks_are_called_with_tenant_and_user(tmp_path: Path) -> None:
    calls: list[tuple[str, str]] = []

    async def hook(tenant: str, user: str) -> dict[str, int]:
        calls.append((tenant, user))
        return {"things": 2}

    app = make_app(tmp_path / "home")
    app.state.companion.erasure_hooks["ours"] = hook
    with running(app) as url:
        chat(url, "cleo", "hello")
        report = api(url, "DELETE", "/v1/users/cleo").json()
    assert calls == [("acme", "cleo")]
    assert report["other"] == {"ours": {"things": 2}}


def test_user_index_forgets_a_user_and_their_audit_key(tmp_path: Path) -> None:
    index = UserIndex(tmp_path / "users.sqlite")
    index.seen("acme", "ann", "rosie")
    index.seen("acme", "ann", "otto")
    index.seen("globex", "ann", "rosie")
    ref = index.ref("acme", "ann")
    assert ref is not None and ref == index.ref("acme", "ann")
    assert ref != index.ref("globex", "ann")
    assert index.personas("acme", "ann") == ["otto", "rosie"]
    assert index.delete("acme", "ann")
    assert not index.exists("acme", "ann") and index.exists("globex", "ann")
    assert index.ref("acme", "ann") is None
    index.seen("acme", "ann", "rosie")
    assert index.ref("acme", "ann") != ref  # a new key: old events stay unlinkable
    index.close()
    assert b"ann" in (tmp_path / "users.sqlite").read_bytes()  # globex's ann and the new one
