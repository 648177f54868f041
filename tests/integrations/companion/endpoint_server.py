"""A real companion server for tests: uvicorn on 127.0.0.1, fake models, known API keys."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from langchain_core.messages import BaseMessage, HumanMessage

from personae.agents.agent import Agent
from personae.integrations.companion.app import create_app
from personae.integrations.companion.config import CompanionConfig, hash_key
from personae.memory.facts import RuleFactExtractor
from personae.memory.store import MemoryStore
from personae.personas.model import Persona
from personae.settings import Settings
from personae.testing import FakeChatModel, FakeEmbeddings

# tenant -> key id -> (secret, scopes, trusted proxy)
KEYS: dict[str, dict[str, tuple[str, list[str], bool]]] = {
    "acme": {
        "app": ("pk-acme-app", ["chat"], False),
        "staff": ("pk-acme-staff", ["chat", "memory", "care", "admin"], False),
        "proxy": ("pk-acme-proxy", ["chat"], True),
    },
    "globex": {
        "app": ("pk-globex-app", ["chat", "memory", "admin"], False),
    },
}


def secret(tenant: str, key: str) -> str:
    return KEYS[tenant][key][0]


def make_config(**overrides: Any) -> CompanionConfig:
    tenants = {
        tenant: {"keys": [{"id": kid, "sha256": hash_key(s), "scopes": scopes,
                           "trusted_proxy": proxy}
                          for kid, (s, scopes, proxy) in keys.items()]}
        for tenant, keys in KEYS.items()
    }
    data: dict[str, Any] = {"tenants": tenants, "care": False,
                            "rate_limits": {"per_key": None, "per_user": None}}
    data.update(overrides)
    return CompanionConfig.model_validate(data)


def echo(messages: list[BaseMessage]) -> str:
    """Answer with the last human message, so replies show what the model was sent."""
    last = next(m for m in reversed(messages) if isinstance(m, HumanMessage))
    return f"You said: {last.text}"


def make_agents(home: Path, *, ids: Sequence[str] = ("rosie", "otto"), model: Any = None,
                store: MemoryStore | None = None, **persona: Any) -> list[Agent]:
    """One agent per id, all sharing one memory store (an embedded store has one owner)."""
    agents = []
    for pid in ids:
        fake = model if model is not None else FakeChatModel(responses=[echo] * 500)
        agents.append(Agent(
            Persona.model_validate({"id": pid, "name": pid.title(), **persona}),
            model=fake, fallbacks=[], settings=Settings(home=home), embedder=FakeEmbeddings(),
            fact_extractor=RuleFactExtractor(), memory=store,
        ))
    return agents


def make_app(home: Path, *, ids: Sequence[str] = ("rosie", "otto"), model: Any = None,
             persona: dict[str, Any] | None = None, **config: Any) -> FastAPI:
    """The app with personas `ids` (default `rosie`, `otto`), on echoing fake models by default.

    The memory store is closed by `running` once the server has stopped.
    """
    store = MemoryStore(home / "memory", embedder=FakeEmbeddings())
    agents = make_agents(home, ids=ids, model=model, store=store, **(persona or {}))
    app = create_app(make_config(**config), agents=agents, settings=Settings(home=home),
                     embedder=FakeEmbeddings())
    app.state.test_store = store
    return app


@contextlib.contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port of 127.0.0.1; yield the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    thread = threading.Thread(target=run, name="companion-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        raise RuntimeError(f"the test server did not start: {errors}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        store = getattr(app.state, "test_store", None)
        if store is not None:
            store.close()
        assert not thread.is_alive(), "the test server did not stop"
        assert not errors, errors
