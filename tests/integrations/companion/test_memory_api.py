"""A user's memories over HTTP: list, edit, delete, export; only within the key's tenant."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from endpoint_server import make_app, running, secret
from fastapi import FastAPI

from personae.memory.records import NewMemory
from personae.scope import Scope


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return make_app(tmp_path_factory.mktemp("memory-api") / "home")


@pytest.fixture(scope="module")
def server(app: FastAPI) -> Iterator[str]:
    with running(app) as url:
        yield url


@pytest.fixture
def people(server: str, request: pytest.FixtureRequest) -> tuple[str, str]:
    """Two users of this test only (`ann`, `bob` with the test's name), with memories."""
    ann, bob = f"ann-{request.node.name}", f"bob-{request.node.name}"
    say(server, ann, "My granddaughter is called Mia.")
    say(server, ann, "I like tulips.", persona="otto")
    say(server, bob, "My dog is called Rex.")
    _settle(server, ann, bob)
    return ann, bob


def say(url: str, user: str, text: str, *, persona: str = "rosie", tenant: str = "acme") -> None:
    openai.OpenAI(api_key=secret(tenant, "staff" if tenant == "acme" else "app"),
                  base_url=url + "/v1", max_retries=0).chat.completions.create(
        model=persona, user=user, messages=[{"role": "user", "content": text}])


def _settle(url: str, ann_id: str, bob_id: str) -> None:
    """Wait (bounded) until the memories written after the turns are stored."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ann = api(url, "GET", f"/v1/users/{ann_id}/memories").json()["data"]
        bob = api(url, "GET", f"/v1/users/{bob_id}/memories").json()["data"]
        kinds = {(m["persona"], m["kind"]) for m in ann}
        if {("rosie", "fact"), ("otto", "episode"), ("rosie", "episode")} <= kinds and bob:
            return
        time.sleep(0.05)
    raise AssertionError("the memories were not written")


def api(url: str, method: str, path: str, *, tenant: str = "acme", key: str = "staff",
        **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret(tenant, key)}"}
    return httpx.request(method, url + path, headers=headers, timeout=30, **kwargs)


def test_list_shows_the_users_memories_from_every_persona(
    server: str, people: tuple[str, str]
) -> None:
    ann, _ = people
    found = api(server, "GET", f"/v1/users/{ann}/memories").json()
    assert found["object"] == "list"
    texts = " ".join(m["text"] for m in found["data"])
    assert "Mia" in texts and "tulips" in texts
    assert "Rex" not in texts
    assert {m["persona"] for m in found["data"]} == {"rosie", "otto"}
    only_otto = api(server, "GET", f"/v1/users/{ann}/memories", params={"persona": "otto"})
    assert {m["persona"] for m in only_otto.json()["data"]} == {"otto"}
    facts = api(server, "GET", f"/v1/users/{ann}/memories", params={"kind": "fact"}).json()
    assert facts["data"] and all(m["kind"] == "fact" for m in facts["data"])


def test_edit_changes_text_and_importance(server: str, people: tuple[str, str]) -> None:
    ann, _ = people
    facts = api(server, "GET", f"/v1/users/{ann}/memories", params={"kind": "fact"}).json()
    memory = facts["data"][0]
    edited = api(server, "PATCH", f"/v1/users/{ann}/memories/{memory['id']}",
                 json={"text": "Her granddaughter is called Mila.", "importance": 9})
    assert edited.status_code == 200, edited.text
    assert edited.json()["text"] == "Her granddaughter is called Mila."
    assert edited.json()["importance"] == 9
    again = api(server, "GET", f"/v1/users/{ann}/memories").json()["data"]
    assert any(m["text"] == "Her granddaughter is called Mila." for m in again)
    bad = api(server, "PATCH", f"/v1/users/{ann}/memories/{memory['id']}",
              json={"importance": 11})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "importance"


def test_delete_removes_one_memory(server: str, people: tuple[str, str]) -> None:
    ann, _ = people
    before = api(server, "GET", f"/v1/users/{ann}/memories").json()["data"]
    gone = api(server, "DELETE", f"/v1/users/{ann}/memories/{before[0]['id']}")
    assert gone.json() == {"id": before[0]["id"], "object": "memory.deleted", "deleted": True}
    after = api(server, "GET", f"/v1/users/{ann}/memories").json()["data"]
    assert [m["id"] for m in after] == [m["id"] for m in before[1:]]
    twice = api(server, "DELETE", f"/v1/users/{ann}/memories/{before[0]['id']}")
    assert twice.status_code == 404 and twice.json()["error"]["code"] == "memory_not_found"


def test_another_users_memory_cannot_be_reached_through_a_user(
    server: str, people: tuple[str, str]
) -> None:
    ann, bob = people
    bobs = api(server, "GET", f"/v1/users/{bob}/memories").json()["data"]
    attempt = api(server, "DELETE", f"/v1/users/{ann}/memories/{bobs[0]['id']}")
    assert attempt.status_code == 404
    assert len(api(server, "GET", f"/v1/users/{bob}/memories").json()["data"]) == len(bobs)


def test_shared_lore_is_not_a_users_memory(
    app: FastAPI, server: str, people: tuple[str, str]
) -> None:
    ann, _ = people
    store = app.state.test_store
    lore = store.add_shared("rosie", [NewMemory(text="The village has a mill.", kind="lore")])
    attempt = api(server, "DELETE", f"/v1/users/{ann}/memories/{lore[0].id}")
    assert attempt.status_code == 404
    assert store.list(Scope(persona="rosie", tenant="acme", user=ann), shared=True)


def test_export_holds_memories_and_conversations(server: str, people: tuple[str, str]) -> None:
    ann, _ = people
    export = api(server, "GET", f"/v1/users/{ann}/export").json()
    assert export["object"] == "user.export"
    assert (export["tenant"], export["user"]) == ("acme", ann)
    rosie = next(p for p in export["personas"] if p["persona"] == "rosie")
    assert rosie["conversation"][0] == {"role": "user",
                                        "content": "My granddaughter is called Mia."}
    assert rosie["conversation"][1]["role"] == "assistant"
    assert any("Mia" in m["text"] for m in rosie["memories"])
    assert "Rex" not in str(export)


def test_unknown_users_and_other_tenants_users_are_404(
    server: str, people: tuple[str, str]
) -> None:
    ann, _ = people
    for path in ("/v1/users/nobody/memories", "/v1/users/nobody/export"):
        missing = api(server, "GET", path)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "user_not_found"
    # globex has a key with the memory scope, but this user is acme's.
    for method, path in (("GET", f"/v1/users/{ann}/memories"),
                         ("GET", f"/v1/users/{ann}/export"), ("DELETE", f"/v1/users/{ann}")):
        other = api(server, method, path, tenant="globex", key="app")
        assert other.status_code == 404, (method, path)
    assert api(server, "GET", f"/v1/users/{ann}/memories").json()["data"]  # untouched


def test_the_same_user_id_in_two_tenants_is_two_people(
    server: str, people: tuple[str, str]
) -> None:
    ann, _ = people
    say(server, ann, "I live by the sea.", tenant="globex")
    globex = api(server, "GET", f"/v1/users/{ann}/export", tenant="globex", key="app").json()
    assert "sea" in str(globex) and "Mia" not in str(globex)
    acme = api(server, "GET", f"/v1/users/{ann}/export").json()
    assert "sea" not in str(acme)
