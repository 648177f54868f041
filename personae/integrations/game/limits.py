"""How often and how much an NPC may answer: cooldowns and token/time budgets.

A game with many NPCs cannot let each one call a model whenever a player
clicks. `NpcLimits` sets, per NPC, a cooldown between answers and budgets of
model tokens and model seconds per rolling window; `NpcBudget` applies them
with an injected clock, so tests and replays control time. A request that
would break a limit is answered with `no_response` (reason `cooldown` or
`budget`) and `retry_after`, the seconds until it would pass.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from personae.errors import ConfigError

__all__ = ["Gate", "NpcBudget", "NpcLimits"]


@dataclass(frozen=True)
class NpcLimits:
    """Limits applied to each NPC of a server (shared by every session and player).

    Args:
        cooldown: Seconds between the requests an NPC answers (counted from
            when the last answered one arrived); 0: none.
        tokens: Model tokens (input plus output) an NPC may spend per `window`;
            None: unlimited.
        seconds: Seconds an NPC may spend answering per `window`; None: unlimited.
        window: Length of the rolling window of the budgets, in seconds.

    Raises:
        ConfigError: A value is negative, or `window` is not positive.

    Example:
        ```python
        limits = NpcLimits(cooldown=2.0, tokens=20_000, window=60.0)
        server = GameServer(personas, limits=limits)
        ```
    """

    cooldown: float = 0.0
    tokens: int | None = None
    seconds: float | None = None
    window: float = 60.0

    def __post_init__(self) -> None:
        for name in ("cooldown", "tokens", "seconds"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(
                    f"NpcLimits.{name}={value!r} is negative; use 0 or more "
                    "(or None for no limit)"
                )
        if self.window <= 0:
            raise ConfigError(
                f"NpcLimits.window={self.window!r} must be positive; use e.g. 60.0 seconds"
            )


@dataclass(frozen=True)
class Gate:
    """Why an NPC may not answer now, and when it may."""

    reason: Literal["cooldown", "budget"]
    retry_after: float
    """Seconds until the request would pass."""


class NpcBudget:
    """Applies `NpcLimits` to one NPC.

    Args:
        limits: The limits.
        clock: Returns the time in seconds (monotonic); injected for tests.
    """

    def __init__(self, limits: NpcLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self._last_start: float | None = None
        self._spent: deque[tuple[float, int, float]] = deque()

    def admit(self) -> Gate | None:
        """Return why a request may not be answered now, or None and count it as answered."""
        now = self.clock()
        limits = self.limits
        if limits.cooldown > 0 and self._last_start is not None:
            left = self._last_start + limits.cooldown - now
            if left > 0:
                return Gate("cooldown", round(left, 3))
        self._expire(now)
        over = self._over_budget(now)
        if over is not None:
            return Gate("budget", round(over, 3))
        self._last_start = now
        return None

    def charge(self, tokens: int, seconds: float) -> None:
        """Count what an answer cost."""
        self._spent.append((self.clock(), max(0, tokens), max(0.0, seconds)))

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - self.limits.window:
            self._spent.popleft()

    def _over_budget(self, now: float) -> float | None:
        """Return seconds until spending is back within budget, or None when it is."""
        tokens = sum(t for _, t, _ in self._spent)
        seconds = sum(s for _, _, s in self._spent)
        wait = None
        for when, spent_tokens, spent_seconds in self._spent:
            token_over = self.limits.tokens is not None and tokens >= self.limits.tokens
            time_over = self.limits.seconds is not None and seconds >= self.limits.seconds
            if not (token_over or time_over):
                break
            wait = when + self.limits.window - now
            tokens -= spent_tokens
            seconds -= spent_seconds
        return wait
