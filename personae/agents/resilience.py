"""Retries of model calls: transient errors only, with jitter and a deadline.

`RetryMiddleware` retries one model's call when the error is transient
(timeouts, dropped connections, HTTP 408/409/429 and 5xx) and lets every
other error through at once, so a bad request or a bad key moves straight on
to the next model of the chain. Place it after `ModelFallbackMiddleware` in
`create_agent(middleware=[...])`: the first middleware is the outermost, so
each model of the fallback chain gets its own retries:

```python
agent = create_agent(
    primary,
    tools,
    middleware=[
        style_prompt,
        ModelFallbackMiddleware(*fallbacks),
        RetryMiddleware(attempts=3, deadline=30, on_attempt=trace.append),
    ],
)
```
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from langchain.agents.middleware.types import AgentMiddleware, AgentState
from langgraph.errors import GraphBubbleUp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

if TYPE_CHECKING:
    from langchain.agents.middleware.types import ModelRequest, ModelResponse
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage

    from personae.settings import Settings

__all__ = ["AttemptRecorder", "RetryMiddleware", "is_transient", "model_name_of", "status_code_of"]

logger = logging.getLogger(__name__)

AttemptRecorder = Callable[[dict[str, object]], None]
"""Receives one record per model attempt (see `RetryMiddleware`)."""

_TRANSIENT_STATUS = frozenset({408, 409, 429})
_MAX_CAUSES = 5


def is_transient(exc: BaseException) -> bool:
    """Tell whether retrying the same request may succeed.

    Transient: timeouts, connection failures, HTTP 408, 409, 429 and 5xx, as
    raised by the `openai` SDK, httpx, LangChain's `ModelError`s or anything
    with an integer `status_code`. Not transient: other 4xx (bad request, bad
    key, unknown model), and errors of our own. An error raised `from` another
    is judged by the first one in the chain that can be judged.

    Args:
        exc: The error a model call raised.

    """
    current: BaseException | None = exc
    for _ in range(_MAX_CAUSES):
        if current is None:
            return False
        verdict = _verdict(current)
        if verdict is not None:
            return verdict
        current = current.__cause__
    return False


def _verdict(exc: BaseException) -> bool | None:
    if isinstance(exc, GraphBubbleUp):
        return False
    status = status_code_of(exc)
    if status is not None:
        return status in _TRANSIENT_STATUS or 500 <= status <= 599
    from langchain_core.exceptions import ModelError

    if isinstance(exc, ModelError):
        return bool(exc.is_retryable)
    try:
        import openai
    except ImportError:  # pragma: no cover - openai comes with langchain-openai
        pass
    else:
        if isinstance(exc, openai.APIConnectionError):  # APITimeoutError included
            return True
    import httpx

    if isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
        return True
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    return None


def status_code_of(exc: BaseException) -> int | None:
    """Return the HTTP status an error carries (`status_code` or `response.status_code`)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    return None


def model_name_of(model: BaseChatModel) -> str:
    """Return the name a model is known by (`model_name`, `model`, `name`, else its type)."""
    for attribute in ("model_name", "model", "name"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    return str(getattr(model, "_llm_type", type(model).__name__))


class _Attempts:
    """Records the attempts of one model call and reports each when its outcome is known."""

    def __init__(self, model: str, report: AttemptRecorder | None) -> None:
        self.model = model
        self.report = report
        self.number = 0
        self.pending: dict[str, object] | None = None
        self.started = 0.0

    def begin(self) -> None:
        self.number += 1
        self.started = time.monotonic()

    def succeeded(self) -> None:
        self._emit(self._record("ok", None))

    def failed(self, exc: BaseException) -> None:
        self.pending = self._record("error", exc)

    def retrying(self, state: RetryCallState) -> None:
        """Report the failed attempt as retried; tenacity calls this before it sleeps."""
        if self.pending is not None:
            self.pending["outcome"] = "retry"
            wait = state.upcoming_sleep
            logger.info(
                "model %s attempt %d failed (%s, status %s); retrying in %.2fs",
                self.model,
                self.number,
                self.pending["error"],
                self.pending["status_code"],
                wait,
            )
            self._emit(self.pending)
            self.pending = None

    def finished(self, exc: BaseException) -> None:
        """Report the attempt whose error propagates, as `gave_up` or `error`."""
        if self.pending is not None:
            if is_transient(exc):
                self.pending["outcome"] = "gave_up"
            self._emit(self.pending)
            self.pending = None

    def _record(self, outcome: str, exc: BaseException | None) -> dict[str, object]:
        # Class and status only: an error's message may quote the user's text.
        return {
            "model": self.model,
            "attempt": self.number,
            "outcome": outcome,
            "error": type(exc).__name__ if exc is not None else None,
            "status_code": status_code_of(exc) if exc is not None else None,
            "seconds": round(time.monotonic() - self.started, 3),
        }

    def _emit(self, record: dict[str, object]) -> None:
        if self.report is None:
            return
        try:
            self.report(record)
        except Exception:
            logger.exception("on_attempt callback failed; the model call goes on")


class RetryMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Retries a model call on transient errors, with jittered backoff and a deadline.

    Waits are "full jitter" exponential: a random time in `[0, wait_initial *
    2**n]`, capped at `wait_max`. Retrying stops after `attempts` attempts,
    or before a wait that would end past `deadline` seconds from the first
    attempt; then the last error is raised again, for `ModelFallbackMiddleware`
    to move to the next model. Errors that are not transient are raised at
    once.

    Each attempt is reported to `on_attempt` as a dict: `model` (name),
    `attempt` (1-based), `outcome` (`ok`; `retry`: failed, will be retried;
    `gave_up`: failed transiently with no attempts or time left; `error`:
    failed with an error that is not retried), `error` (class name or
    `None`), `status_code` (HTTP status or `None`) and `seconds`. Error
    messages are never recorded: they may quote what users said.

    Args:
        attempts: Most attempts per model call, the first included; at least 1.
        deadline: Seconds from the first attempt after which no retry starts.
        wait_initial: Scale of the first wait, in seconds.
        wait_max: Longest single wait, in seconds.
        retry_on: Decides which errors are retried; default `is_transient`.
        on_attempt: Receives one record per attempt.

    Raises:
        ValueError: `attempts < 1`, `deadline <= 0` or a negative wait.

    Example:
        ```python
        attempts: list[dict[str, object]] = []
        retry = RetryMiddleware(attempts=3, deadline=30, on_attempt=attempts.append)
        agent = create_agent(model, tools, middleware=[ModelFallbackMiddleware(backup), retry])
        ```

    """

    def __init__(
        self,
        *,
        attempts: int = 3,
        deadline: float = 30.0,
        wait_initial: float = 0.5,
        wait_max: float = 8.0,
        retry_on: Callable[[BaseException], bool] = is_transient,
        on_attempt: AttemptRecorder | None = None,
    ) -> None:
        super().__init__()
        if attempts < 1:
            raise ValueError(f"attempts={attempts!r} must be at least 1")
        if deadline <= 0:
            raise ValueError(f"deadline={deadline!r} must be positive (seconds)")
        if wait_initial < 0 or wait_max < 0:
            raise ValueError("wait_initial and wait_max must not be negative")
        self.attempts = attempts
        self.deadline = deadline
        self.wait_initial = wait_initial
        self.wait_max = wait_max
        self.retry_on = retry_on
        self.on_attempt = on_attempt
        self.tools = []

    @classmethod
    def from_settings(
        cls, settings: Settings, *, on_attempt: AttemptRecorder | None = None
    ) -> RetryMiddleware:
        """Build one from the `PERSONAE_RETRY_*` settings (attempts, deadline, waits).

        Args:
            settings: Service settings.
            on_attempt: Receives one record per attempt.

        """
        return cls(
            attempts=settings.retry_attempts,
            deadline=settings.retry_deadline,
            wait_initial=settings.retry_wait_initial,
            wait_max=settings.retry_wait_max,
            on_attempt=on_attempt,
        )

    def _policy(self, attempts: _Attempts) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self.attempts) | stop_before_delay(self.deadline),
            "wait": wait_random_exponential(multiplier=self.wait_initial, max=self.wait_max),
            "retry": retry_if_exception(self._should_retry),
            "before_sleep": attempts.retrying,
            "reraise": True,
        }

    def _should_retry(self, exc: BaseException) -> bool:
        return not isinstance(exc, GraphBubbleUp) and self.retry_on(exc)

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage:
        """Call the model, retrying transient errors (see the class docstring)."""
        attempts = _Attempts(model_name_of(request.model), self.on_attempt)
        try:
            for attempt in Retrying(**self._policy(attempts)):
                with attempt:
                    attempts.begin()
                    try:
                        response = handler(request)
                    except GraphBubbleUp:
                        raise
                    except Exception as exc:
                        attempts.failed(exc)
                        raise
                    attempts.succeeded()
                    return response
        except Exception as exc:
            attempts.finished(exc)
            raise
        raise AssertionError("tenacity ended without a result or an error")  # pragma: no cover

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage:
        """Call the model, retrying transient errors (see the class docstring)."""
        attempts = _Attempts(model_name_of(request.model), self.on_attempt)
        try:
            async for attempt in AsyncRetrying(**self._policy(attempts)):
                with attempt:
                    attempts.begin()
                    try:
                        response = await handler(request)
                    except GraphBubbleUp:
                        raise
                    except Exception as exc:
                        attempts.failed(exc)
                        raise
                    attempts.succeeded()
                    return response
        except Exception as exc:
            attempts.finished(exc)
            raise
        raise AssertionError("tenacity ended without a result or an error")  # pragma: no cover
