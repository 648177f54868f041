"""Request rate limits per API key and per user (GCRA, one number per key).

The generic cell rate algorithm keeps, per key, the "theoretical arrival
time" of the next request: a key may send `requests` at once, then one every
`seconds / requests`. It needs no timers and no per-request lists, so 100k
users cost 100k floats. A refused request gets the exact wait until it would
be allowed, which the HTTP layer sends as `retry-after`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from personae.integrations.companion.config import Rate

__all__ = ["Decision", "RateLimiter"]


@dataclass(frozen=True)
class Decision:
    """The outcome of one request against a limit.

    Attributes:
        allowed: Whether the request may go ahead.
        limit: Requests per window.
        remaining: Requests still allowed right now, after this one.
        retry_after: Seconds until a refused request would be allowed (0 when allowed).
        reset: Seconds until the full burst is available again.
    """

    allowed: bool
    limit: int
    remaining: int
    retry_after: float
    reset: float

    def headers(self) -> dict[str, str]:
        """Return `retry-after` (when refused) and the `x-ratelimit-*` headers OpenAI sends."""
        found = {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": f"{self.reset:.3f}s",
        }
        if not self.allowed:
            # Whole seconds for HTTP; milliseconds for clients that read them (the openai SDK).
            found["retry-after"] = str(max(1, math.ceil(self.retry_after)))
            found["retry-after-ms"] = str(max(1, math.ceil(self.retry_after * 1000)))
        return found


class RateLimiter:
    """Counts requests per key and says whether each may go ahead.

    Not thread-safe: call it from the event loop only (it never awaits, so a
    check and its update are atomic there).

    Args:
        clock: Seconds, monotonic; injectable for tests.
        max_keys: Past this many tracked keys, keys whose burst has refilled are dropped.

    Example:
        ```python
        limiter = RateLimiter()
        decision = limiter.hit("tenant/user", Rate(requests=30, seconds=60))
        if not decision.allowed:
            wait = decision.retry_after
        ```
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._due: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._due)

    def hit(self, key: str, rate: Rate) -> Decision:
        """Count one request of `key` against `rate`, unless it is refused.

        Args:
            key: Who is asking (an API key's id, a tenant's user).
            rate: The limit that applies to this key.

        Returns:
            Whether it may go ahead, and the numbers for the response headers.
        """
        now = self._clock()
        interval = rate.seconds / rate.requests
        due = max(self._due.get(key, now), now)
        # Allowed while the queue of "virtual" requests ahead fits in one window.
        allowed_at = due + interval - rate.seconds
        if now < allowed_at - 1e-9:
            return Decision(False, rate.requests, 0, allowed_at - now, due - now)
        due += interval
        self._due[key] = due
        if len(self._due) > self._max_keys:
            self._sweep(now)
        remaining = max(0, math.floor((rate.seconds - (due - now)) / interval + 1e-9))
        return Decision(True, rate.requests, remaining, 0.0, due - now)

    def reset(self, key: str) -> None:
        """Forget the requests counted for `key` (e.g. when a user is erased)."""
        self._due.pop(key, None)

    def _sweep(self, now: float) -> None:
        self._due = {k: v for k, v in self._due.items() if v > now}
