"""The `openai` SDK against a running companion server: models, plain and streamed
completions, errors in OpenAI's envelope, and which conversation a request lands in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from endpoint_server import make_app, running, secret
from langchain_core.messages import BaseMessage

from personae.testing import FakeChatModel


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with running(make_app(tmp_path / "home")) as url:
        yield url


def client(url: str, tenant: str = "acme", key: str = "app", **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key=secret(tenant, key), base_url=url + "/v1", max_retries=0,
                         **kwargs)


def test_models_lists_the_personas(server: str) -> None:
    models = client(server).models.list()
    assert [m.id for m in models.data] == ["rosie", "otto"]
    assert models.data[0].model_extra == {"name": "Rosie"}
    assert client(server).models.retrieve("otto").id == "otto"
    with pytest.raises(openai.NotFoundError):
        client(server).models.retrieve("nobody")


def test_a_tenant_sees_only_its_personas(tmp_path: Path) -> None:
    home = tmp_path / "home"
    tenants = {"acme": {"personas": ["otto"], "keys": [
        {"id": "app", "sha256": __import__("hashlib").sha256(b"pk-acme-app").hexdigest()}]}}
    with running(make_app(home, tenants=tenants)) as url:
        assert [m.id for m in client(url).models.list().data] == ["otto"]
        with pytest.raises(openai.NotFoundError) as caught:
            client(url).chat.completions.create(
                model="rosie", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found"


def test_plain_completion_answers_the_last_user_message(server: str) -> None:
    reply = client(server).chat.completions.create(
        model="rosie",
        user="ann",
        messages=[
            {"role": "system", "content": "You are a pirate."},
            {"role": "user", "content": "an old question"},
            {"role": "assistant", "content": "an old answer"},
            {"role": "user", "content": "How is the garden?"},
        ],
    )
    assert reply.object == "chat.completion"
    assert reply.model == "rosie"
    assert reply.id.startswith("chatcmpl-")
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "You said: How is the garden?"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model_extra is not None
    assert reply.model_extra["personae"]["model"] == "fake"


def test_the_client_history_and_system_message_are_not_sent_to_the_model(tmp_path: Path) -> None:
    home = tmp_path / "home"
    model = FakeChatModel(default="Hello.")
    app = make_app(home, ids=["rosie"], model=model)
    with running(app) as url:
        client(url).chat.completions.create(model="rosie", user="ann", messages=[
            {"role": "system", "content": "SYSTEM-FROM-CLIENT"},
            {"role": "user", "content": "EARLIER-FROM-CLIENT"},
            {"role": "user", "content": "Good morning"},
        ])
    sent = _texts(model.calls[0])
    assert "Good morning" in sent
    assert "SYSTEM-FROM-CLIENT" not in sent
    assert "EARLIER-FROM-CLIENT" not in sent


def test_system_message_as_context_when_the_config_says_so(tmp_path: Path) -> None:
    home = tmp_path / "home"
    model = FakeChatModel(default="Hello.")
    app = make_app(home, ids=["rosie"], model=model,
                   system_messages="context")
    with running(app) as url:
        client(url).chat.completions.create(model="rosie", user="ann", messages=[
            {"role": "system", "content": "The user is in the kitchen."},
            {"role": "user", "content": "Good morning"},
        ])
    assert "The user is in the kitchen." in model.calls[0][0].text


def _texts(messages: list[BaseMessage]) -> str:
    return "\n".join(m.text for m in messages)


def test_streaming_sends_chunks_that_add_up_to_the_reply(server: str) -> None:
    stream = client(server).chat.completions.create(
        model="otto", user="ann", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Tell me about the weather today"}],
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.model == "otto" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) > 2  # really streamed, not one piece
    assert "".join(texts) == "You said: Tell me about the weather today"
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finishing) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert len({c.id for c in chunks}) == 1


def test_the_raw_stream_is_server_sent_events_ending_with_done(server: str) -> None:
    with httpx.stream(
        "POST", server + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret('acme', 'app')}"},
        json={"model": "rosie", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    last = json.loads(lines[-2][len("data: "):])
    assert last["choices"][0]["finish_reason"] == "stop"
    assert "offline" not in last["personae"]["flags"]


def test_content_parts_are_read_as_text(server: str) -> None:
    reply = client(server).chat.completions.create(model="rosie", user="ann", messages=[
        {"role": "user", "content": [{"type": "text", "text": "Look at"},
                                     {"type": "image_url", "image_url": {"url": "http://x/y.png"}},
                                     {"type": "text", "text": "this"}]},
    ])
    assert reply.choices[0].message.content == "You said: Look at\nthis"


def test_errors_come_in_openai_envelopes(server: str) -> None:
    with pytest.raises(openai.NotFoundError) as no_model:
        client(server).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert no_model.value.code == "model_not_found"
    assert no_model.value.param == "model"
    with pytest.raises(openai.BadRequestError) as no_user_message:
        client(server).chat.completions.create(
            model="rosie", messages=[{"role": "assistant", "content": "hi"}])
    assert no_user_message.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as two:
        client(server).chat.completions.create(
            model="rosie", n=2, messages=[{"role": "user", "content": "hi"}])
    assert two.value.param == "n"

    headers = {"Authorization": f"Bearer {secret('acme', 'app')}"}
    missing = httpx.post(server + "/v1/chat/completions", headers=headers, json={"model": "rosie"})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "messages"
    assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
    broken = httpx.post(server + "/v1/chat/completions", content=b"{not json",
                        headers={**headers, "Content-Type": "application/json"})
    assert broken.status_code == 400
    assert "not valid JSON" in broken.json()["error"]["message"]
    unknown = httpx.get(server + "/v1/nothing-here", headers=headers)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


def test_users_and_tenants_keep_separate_conversations(tmp_path: Path) -> None:
    home = tmp_path / "home"
    model = FakeChatModel(default="Mm.")
    app = make_app(home, ids=["rosie"], model=model)

    def say(tenant: str, key: str, user: str, text: str) -> None:
        client(url, tenant, key).chat.completions.create(
            model="rosie", user=user, messages=[{"role": "user", "content": text}])

    with running(app) as url:
        say("acme", "app", "ann", "ANN-SECRET-ONE")
        say("acme", "app", "bob", "hello from bob")
        say("globex", "app", "ann", "hello from the other ann")
        say("acme", "app", "ann", "second message of ann")
    bob, other_ann, ann = (_texts(call) for call in model.calls[1:4])
    assert "ANN-SECRET-ONE" not in bob
    assert "ANN-SECRET-ONE" not in other_ann  # same user id, another tenant
    assert "ANN-SECRET-ONE" in ann  # the same user's history carries on


def test_safety_identifier_names_the_user_and_a_key_alone_is_its_own_user(tmp_path: Path) -> None:
    home = tmp_path / "home"
    model = FakeChatModel(default="Mm.")
    app = make_app(home, ids=["rosie"], model=model)
    with running(app) as url:
        app_client = client(url)
        app_client.chat.completions.create(model="rosie", safety_identifier="carol",
                                           messages=[{"role": "user", "content": "CAROL-1"}])
        app_client.chat.completions.create(model="rosie",
                                           messages=[{"role": "user", "content": "KEYUSER-1"}])
        app_client.chat.completions.create(model="rosie", user="carol",
                                           messages=[{"role": "user", "content": "CAROL-2"}])
        users = app.state.companion.users
        assert users.exists("acme", "carol") and users.exists("acme", "app")
    assert "CAROL-1" in _texts(model.calls[2])
    assert "KEYUSER-1" not in _texts(model.calls[2])


def test_only_trusted_proxies_may_name_the_user_in_a_header(server: str) -> None:
    proxy = client(server, key="proxy", default_headers={"X-Personae-User": "dora"})
    proxy.chat.completions.create(model="rosie", user="ignored",
                                  messages=[{"role": "user", "content": "hi"}])
    assert httpx.get(server + "/v1/users/dora/memories",
                     headers={"Authorization": f"Bearer {secret('acme', 'staff')}"}
                     ).status_code == 200
    sneaky = client(server, default_headers={"X-Personae-User": "dora"})
    with pytest.raises(openai.PermissionDeniedError) as caught:
        sneaky.chat.completions.create(model="rosie", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "untrusted_user_header"


def test_screened_streaming_sends_the_checked_reply_in_one_chunk(tmp_path: Path) -> None:
    with running(make_app(tmp_path / "home", ids=["rosie"], streaming="screened")) as url:
        chunks = list(client(url).chat.completions.create(
            model="rosie", user="ann", stream=True,
            messages=[{"role": "user", "content": "Tell me about the weather today"}]))
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts == ["You said: Tell me about the weather today"]
