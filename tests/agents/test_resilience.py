"""Retries on transient errors only, with a deadline, nested inside the fallback chain."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelFallbackMiddleware
from langchain_core.exceptions import ModelInvalidRequestError, ModelRateLimitError
from langchain_core.messages import BaseMessage, HumanMessage

from personae.agents.resilience import RetryMiddleware, is_transient
from personae.settings import Settings
from personae.testing import FakeChatModel


class StatusError(Exception):
    """An SDK-style error that carries an HTTP status."""

    def __init__(self, status_code: int, message: str = "") -> None:
        super().__init__(message or f"HTTP {status_code}")
        self.status_code = status_code


def _retry(records: list[dict[str, object]], **kwargs: Any) -> RetryMiddleware:
    options: dict[str, Any] = {
        "attempts": 3,
        "deadline": 5.0,
        "wait_initial": 0.001,
        "wait_max": 0.005,
    }
    options.update(kwargs)
    return RetryMiddleware(on_attempt=records.append, **options)


def _agent(model: FakeChatModel, *middleware: Any) -> Any:
    return create_agent(model, [], middleware=list(middleware))


def _ask(text: str = "Do you have a room?") -> dict[str, list[BaseMessage]]:
    return {"messages": [HumanMessage(text)]}


# -- is_transient ------------------------------------------------------------

_REQUEST = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")


def _openai_status(cls: type[openai.APIStatusError], status: int) -> openai.APIStatusError:
    return cls("boom", response=httpx.Response(status, request=_REQUEST), body=None)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_openai_status(openai.InternalServerError, 503), True),
        (_openai_status(openai.InternalServerError, 500), True),
        (_openai_status(openai.RateLimitError, 429), True),
        (_openai_status(openai.ConflictError, 409), True),
        (_openai_status(openai.BadRequestError, 400), False),
        (_openai_status(openai.AuthenticationError, 401), False),
        (_openai_status(openai.NotFoundError, 404), False),
        (_openai_status(openai.UnprocessableEntityError, 422), False),
        (openai.APITimeoutError(request=_REQUEST), True),
        (openai.APIConnectionError(request=_REQUEST), True),
        (httpx.ReadTimeout("slow", request=_REQUEST), True),
        (httpx.ConnectError("refused", request=_REQUEST), True),
        (httpx.RemoteProtocolError("hung up", request=_REQUEST), True),
        (
            httpx.HTTPStatusError(
                "x", request=_REQUEST, response=httpx.Response(502, request=_REQUEST)
            ),
            True,
        ),
        (
            httpx.HTTPStatusError(
                "x", request=_REQUEST, response=httpx.Response(403, request=_REQUEST)
            ),
            False,
        ),
        (StatusError(408), True),
        (StatusError(504), True),
        (StatusError(418), False),
        (ModelRateLimitError("slow down"), True),
        (ModelInvalidRequestError("bad"), False),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (ValueError("a bug of ours"), False),
        (KeyError("x"), False),
    ],
)
def test_is_transient(exc: BaseException, expected: bool) -> None:
    assert is_transient(exc) is expected


def test_is_transient_follows_the_cause_of_a_wrapper() -> None:
    class Wrapped(Exception):
        pass

    try:
        try:
            raise StatusError(503)
        except StatusError as inner:
            raise Wrapped("provider failed") from inner
    except Wrapped as outer:
        assert is_transient(outer)


# -- retrying ----------------------------------------------------------------


async def test_two_503s_then_an_answer_takes_three_attempts() -> None:
    model = FakeChatModel(
        name="primary", responses=[StatusError(503), StatusError(503), "Yes, one."]
    )
    records: list[dict[str, object]] = []
    state = await _agent(model, _retry(records)).ainvoke(_ask())

    assert state["messages"][-1].text == "Yes, one."
    assert len(model.calls) == 3
    assert [(r["attempt"], r["outcome"], r["status_code"]) for r in records] == [
        (1, "retry", 503),
        (2, "retry", 503),
        (3, "ok", None),
    ]
    assert {r["model"] for r in records} == {"primary"}
    assert records[0]["error"] == "StatusError"


def test_sync_invoke_retries_the_same_way() -> None:
    model = FakeChatModel(responses=[StatusError(503), StatusError(429), "Yes, one."])
    records: list[dict[str, object]] = []
    state = _agent(model, _retry(records)).invoke(_ask())
    assert state["messages"][-1].text == "Yes, one."
    assert [r["outcome"] for r in records] == ["retry", "retry", "ok"]


async def test_a_400_is_not_retried_and_propagates() -> None:
    model = FakeChatModel(responses=[StatusError(400), "never reached"])
    records: list[dict[str, object]] = []
    with pytest.raises(StatusError):
        await _agent(model, _retry(records)).ainvoke(_ask())
    assert len(model.calls) == 1
    assert records == [
        {
            "model": "personae-fake",
            "attempt": 1,
            "outcome": "error",
            "error": "StatusError",
            "status_code": 400,
            "seconds": records[0]["seconds"],
        }
    ]


async def test_attempts_run_out_and_the_last_error_is_raised() -> None:
    model = FakeChatModel(responses=[StatusError(503), StatusError(502), StatusError(504), "late"])
    records: list[dict[str, object]] = []
    with pytest.raises(StatusError) as caught:
        await _agent(model, _retry(records)).ainvoke(_ask())
    assert caught.value.status_code == 504
    assert len(model.calls) == 3
    assert [r["outcome"] for r in records] == ["retry", "retry", "gave_up"]


async def test_deadline_stops_retrying_before_attempts_run_out() -> None:
    def slow_failure(messages: list[BaseMessage]) -> str:
        time.sleep(0.1)
        raise StatusError(503)

    model = FakeChatModel(responses=[slow_failure] * 50)
    records: list[dict[str, object]] = []
    started = time.monotonic()
    with pytest.raises(StatusError):
        await _agent(model, _retry(records, attempts=50, deadline=0.35)).ainvoke(_ask())
    elapsed = time.monotonic() - started

    assert 2 <= len(model.calls) <= 5
    assert elapsed < 0.35 + 0.3
    assert records[-1]["outcome"] == "gave_up"


async def test_records_never_hold_what_the_user_said() -> None:
    secret = "my neighbour's PIN is 4711"
    model = FakeChatModel(responses=[StatusError(503, f"failed on: {secret}"), "ok"])
    records: list[dict[str, object]] = []
    await _agent(model, _retry(records)).ainvoke(_ask(secret))
    assert secret not in repr(records)
    assert "4711" not in repr(records)


async def test_a_broken_recorder_does_not_break_the_call() -> None:
    def broken(record: dict[str, object]) -> None:
        raise RuntimeError("recorder bug")

    model = FakeChatModel(responses=[StatusError(503), "fine"])
    agent = _agent(model, RetryMiddleware(wait_initial=0.001, on_attempt=broken))
    state = await agent.ainvoke(_ask())
    assert state["messages"][-1].text == "fine"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryMiddleware(attempts=0)
    with pytest.raises(ValueError, match="deadline"):
        RetryMiddleware(deadline=0)
    with pytest.raises(ValueError, match="wait"):
        RetryMiddleware(wait_max=-1)


def test_from_settings() -> None:
    retry = RetryMiddleware.from_settings(
        Settings(retry_attempts=5, retry_deadline=9, retry_wait_initial=0.1, retry_wait_max=2)
    )
    assert (retry.attempts, retry.deadline, retry.wait_initial, retry.wait_max) == (5, 9, 0.1, 2)


# -- inside the fallback chain -------------------------------------------------


async def test_fallback_moves_on_after_a_400_without_retrying() -> None:
    first = FakeChatModel(name="first", responses=[StatusError(400)])
    second = FakeChatModel(name="second", responses=["From the second model."])
    records: list[dict[str, object]] = []
    agent = _agent(first, ModelFallbackMiddleware(second), _retry(records))
    state = await agent.ainvoke(_ask())

    assert state["messages"][-1].text == "From the second model."
    assert (len(first.calls), len(second.calls)) == (1, 1)
    assert [(r["model"], r["outcome"]) for r in records] == [("first", "error"), ("second", "ok")]


async def test_each_link_of_the_chain_gets_its_own_retries() -> None:
    first = FakeChatModel(name="first", responses=[StatusError(503)] * 3)
    second = FakeChatModel(name="second", responses=[StatusError(503), "Second, on retry."])
    records: list[dict[str, object]] = []
    agent = _agent(first, ModelFallbackMiddleware(second), _retry(records))
    state = await asyncio.wait_for(agent.ainvoke(_ask()), timeout=10)

    assert state["messages"][-1].text == "Second, on retry."
    assert (len(first.calls), len(second.calls)) == (3, 2)
    assert [(r["model"], r["outcome"]) for r in records] == [
        ("first", "retry"),
        ("first", "retry"),
        ("first", "gave_up"),
        ("second", "retry"),
        ("second", "ok"),
    ]
