"""Rate limits per API key and per user: 429 with `retry-after`, which the `openai` SDK
honours, succeeding once the window has passed."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from endpoint_server import make_app, running, secret
from pydantic import ValidationError

from personae.integrations.companion.config import Rate
from personae.integrations.companion.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_limit_then_one_per_interval() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    rate = Rate(requests=3, seconds=60)
    decisions = [limiter.hit("k", rate) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    refused = limiter.hit("k", rate)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(20.0)
    assert refused.headers()["retry-after"] == "20"
    assert refused.headers()["retry-after-ms"] == "20000"
    clock.now += 19.9
    assert not limiter.hit("k", rate).allowed
    clock.now += 0.1
    assert limiter.hit("k", rate).allowed
    assert not limiter.hit("k", rate).allowed  # one more per 20 s, not a new burst
    assert limiter.hit("other", rate).allowed  # keys are counted apart


def test_a_refused_request_is_not_counted() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    rate = Rate(requests=1, seconds=10)
    assert limiter.hit("k", rate).allowed
    for _ in range(5):
        assert not limiter.hit("k", rate).allowed
    clock.now += 10
    assert limiter.hit("k", rate).allowed


def test_keys_whose_burst_has_refilled_are_dropped() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock, max_keys=10)
    rate = Rate(requests=5, seconds=1)
    for n in range(10):
        limiter.hit(f"user-{n}", rate)
    clock.now += 5
    limiter.hit("late", rate)
    assert len(limiter) == 1
    limiter.reset("late")
    assert len(limiter) == 0


@pytest.mark.parametrize(("text", "requests", "seconds"), [
    ("30/minute", 30, 60.0), ("5/second", 5, 1.0), ("100 / 5 minutes", 100, 300.0),
    ("1000/day", 1000, 86400.0), ("2/hours", 2, 3600.0),
])
def test_rates_are_written_as_text(text: str, requests: int, seconds: float) -> None:
    rate = Rate.model_validate(text)
    assert (rate.requests, rate.seconds) == (requests, seconds)


def test_a_bad_rate_says_how_to_write_one() -> None:
    with pytest.raises(ValidationError, match="30/minute"):
        Rate.model_validate("thirty a minute")


def test_per_user_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    app = make_app(tmp_path / "home", ids=["rosie"],
                   rate_limits={"per_key": None, "per_user": "1/minute"})
    headers = {"Authorization": f"Bearer {secret('acme', 'app')}"}
    body = {"model": "rosie", "user": "ann", "messages": [{"role": "user", "content": "hi"}]}
    with running(app) as url:
        assert httpx.post(url + "/v1/chat/completions", json=body, headers=headers).is_success
        limited = httpx.post(url + "/v1/chat/completions", json=body, headers=headers)
        other_user = httpx.post(url + "/v1/chat/completions", headers=headers,
                                json={**body, "user": "bob"})
        with pytest.raises(openai.RateLimitError) as caught:
            openai.OpenAI(api_key=secret("acme", "app"), base_url=url + "/v1",
                          max_retries=0).chat.completions.create(**body)
    assert limited.status_code == 429
    assert 55 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    error = limited.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and "this user" in error["message"]
    assert other_user.is_success  # one user's limit is not another's
    assert caught.value.code == "rate_limit_exceeded"


def test_the_sdk_retries_after_the_window_and_succeeds(tmp_path: Path) -> None:
    app = make_app(tmp_path / "home", ids=["rosie"],
                   rate_limits={"per_key": None, "per_user": "1/second"})
    with running(app) as url:
        client = openai.OpenAI(api_key=secret("acme", "app"), base_url=url + "/v1",
                               max_retries=3)
        messages: list[dict[str, str]] = [{"role": "user", "content": "hi"}]
        first = client.chat.completions.with_raw_response.create(
            model="rosie", user="ann", messages=messages)  # type: ignore[arg-type]
        second = client.chat.completions.with_raw_response.create(
            model="rosie", user="ann", messages=messages)  # type: ignore[arg-type]
    assert first.retries_taken == 0
    assert second.retries_taken >= 1  # refused with 429 first, then let through
    assert second.parse().choices[0].message.content == "You said: hi"


def test_per_key_limit_covers_every_route(tmp_path: Path) -> None:
    app = make_app(tmp_path / "home", ids=["rosie"],
                   rate_limits={"per_key": "2/minute", "per_user": None})
    app_key = {"Authorization": f"Bearer {secret('acme', 'app')}"}
    with running(app) as url:
        assert httpx.get(url + "/v1/models", headers=app_key).is_success
        assert httpx.get(url + "/v1/models", headers=app_key).is_success
        limited = httpx.get(url + "/v1/models", headers=app_key)
        staff = httpx.get(url + "/v1/models",
                          headers={"Authorization": f"Bearer {secret('acme', 'staff')}"})
    assert limited.status_code == 429
    assert "API key 'app'" in limited.json()["error"]["message"]
    assert staff.is_success  # another key of the same tenant has its own budget
