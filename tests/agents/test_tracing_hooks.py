"""LangSmith's middleware bookkeeping stays on the event loop unless tracing is on."""

from __future__ import annotations

import contextvars
import threading
from pathlib import Path
from typing import Any, cast

import langsmith
import pytest
from langchain_core.messages import AIMessage
from langsmith._internal import _aiter
from langsmith._runtime_overrides import get_runtime_overrides
from langsmith.run_helpers import tracing_context

from personae.agents import _tracing
from personae.agents._tracing import _inline_unless_tracing, run_untraced_hooks_inline
from personae.agents.agent import Agent
from personae.personas.model import Persona
from personae.settings import Settings
from personae.testing import FakeChatModel


def _thread_name() -> str:
    return threading.current_thread().name


async def _default(ctx: contextvars.Context, func: object, *args: object) -> str:
    return "default"


async def test_untraced_hooks_run_on_the_calling_thread() -> None:
    here = threading.current_thread().name
    ran_on = await _inline_unless_tracing(_default, contextvars.copy_context(), _thread_name)
    assert ran_on == here


async def test_traced_hooks_keep_langsmiths_own_path() -> None:
    with tracing_context(enabled=True):
        ctx = contextvars.copy_context()
    assert await _inline_unless_tracing(_default, ctx, _thread_name) == "default"


def test_an_applications_own_override_is_left_alone() -> None:
    async def theirs(default: object, ctx: object, func: object, *a: object) -> None:
        return None

    previous = get_runtime_overrides().aio_to_thread
    try:
        langsmith.set_runtime_overrides(aio_to_thread=theirs)
        _tracing._installed = False
        run_untraced_hooks_inline()
        assert get_runtime_overrides().aio_to_thread is theirs
        langsmith.set_runtime_overrides()
        _tracing._installed = False
        run_untraced_hooks_inline()
        assert get_runtime_overrides().aio_to_thread is _inline_unless_tracing
    finally:
        langsmith.set_runtime_overrides(aio_to_thread=previous)
        _tracing._installed = previous is _inline_unless_tracing


async def test_an_agent_turn_makes_no_thread_hop_for_middleware(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops: list[str] = []
    threaded = _aiter._default_aio_to_thread

    async def counted(ctx: contextvars.Context, func: Any, /, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", repr(func)))
        return await threaded(ctx, func, *args, **kwargs)

    monkeypatch.setattr(_aiter, "_default_aio_to_thread", counted)
    persona = Persona.model_validate({"id": "brenna", "name": "Brenna"})
    agent = Agent(
        persona,
        model=FakeChatModel(responses=[AIMessage("Stew and ale.")]),
        settings=Settings(home=tmp_path),
        memory=False,
    )
    try:
        reply = await agent.respond("What do you serve?")
        assert reply.text == "Stew and ale."
        assert hops == []
        with tracing_context(enabled=True, client=cast(Any, _NoUpload())):
            await agent.respond("And to drink?")
        assert hops, "with tracing on, LangSmith's threaded path should be used"
    finally:
        await agent.aclose()


class _NoUpload:
    """Stands in for a LangSmith client: tracing is on but nothing leaves the process."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None
