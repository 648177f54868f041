"""Webhook delivery: each delivery POSTed as JSON, signed with the contact's secret.

The request carries three headers:

- `X-Personae-Delivery`: the delivery id (the same on every retry, so a
  receiver can drop duplicates);
- `X-Personae-Timestamp`: Unix seconds when this attempt was signed;
- `X-Personae-Signature`: `sha256=` and the hex HMAC-SHA256, keyed with the
  contact's webhook secret, of `<timestamp>.<body>` (the body's exact bytes).

A receiver recomputes the HMAC (see `verify_signature`) and refuses old
timestamps. Timeouts, dropped connections, 429 and 5xx answers are retried with
jittered exponential waits within a deadline; other 4xx answers are not,
since sending the same request again cannot help.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from personae.errors import IntegrationError
from personae.integrations.companion.care_models import Delivery

__all__ = ["Webhook", "WebhookSender", "payload_of", "sign", "verify_signature"]

_TOLERANCE = 300


@dataclass(frozen=True)
class Webhook:
    """Where a contact's deliveries go.

    Attributes:
        url: The endpoint that receives the POST.
        secret: The contact's HMAC key.
    """

    url: str
    secret: str


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the `X-Personae-Signature` value of a body signed at `timestamp`."""
    message = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, *,
                     now: float | None = None, tolerance: int = _TOLERANCE) -> bool:
    """Tell whether a received webhook is authentic and recent (for receivers).

    Args:
        secret: The contact's webhook secret.
        timestamp: The `X-Personae-Timestamp` header.
        body: The raw request body.
        signature: The `X-Personae-Signature` header.
        now: Current Unix time; the system clock by default.
        tolerance: Oldest accepted timestamp, in seconds.
    """
    try:
        signed_at = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - signed_at) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, signed_at, body), signature)


class _RetryableStatus(Exception):
    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"HTTP {status}")


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, _RetryableStatus | httpx.TimeoutException | httpx.TransportError)


def _where(url: str) -> str:
    # Webhook URLs often carry a token in the path or query: name only the origin.
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii', 'replace')}"


def payload_of(delivery: Delivery) -> bytes:
    """Return the JSON body POSTed for a delivery (webhook bookkeeping left out)."""
    data = delivery.model_dump(mode="json", exclude={"webhook", "attempts"})
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WebhookSender:
    """POSTs deliveries to webhooks, signed and retried; the `deliver` of `CareService`.

    Args:
        client: The HTTP client to use; one is made (and closed by `aclose`) when omitted.
        timeout: Seconds per attempt.
        attempts: Attempts per delivery, the first included.
        deadline: Seconds after which no new attempt starts.
        wait_initial: Scale of the first wait between attempts, in seconds.
        wait_max: Longest wait between attempts, in seconds.
        clock: Unix time for the signature timestamp.

    Raises:
        IntegrationError: From `__call__`, when the webhook refused the delivery
            or still failed after the retries; the delivery stays in the inbox.

    Example:
        ```python
        sender = WebhookSender(attempts=5)
        await sender(delivery, Webhook("https://example.org/hook", secret))
        await sender.aclose()
        ```
    """

    def __init__(self, *, client: httpx.AsyncClient | None = None, timeout: float = 10.0,
                 attempts: int = 4, deadline: float = 60.0, wait_initial: float = 0.5,
                 wait_max: float = 8.0, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._own_client = client is None
        self.timeout = timeout
        self.attempts = attempts
        self.deadline = deadline
        self.wait_initial = wait_initial
        self.wait_max = wait_max
        self._clock = clock

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    async def _post(self, body: bytes, delivery: Delivery, webhook: Webhook) -> None:
        timestamp = int(self._clock())
        response = await self._http().post(
            webhook.url,
            content=body,
            timeout=self.timeout,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "personae-care",
                "X-Personae-Delivery": delivery.id,
                "X-Personae-Timestamp": str(timestamp),
                "X-Personae-Signature": sign(webhook.secret, timestamp, body),
            },
        )
        if response.status_code == 429 or response.status_code >= 500:
            raise _RetryableStatus(response.status_code)
        if response.status_code >= 300:
            raise IntegrationError(
                f"webhook {_where(webhook.url)} refused delivery {delivery.id} with HTTP "
                f"{response.status_code}; check the URL and that the receiver accepts "
                "personae's signed JSON"
            )

    async def __call__(self, delivery: Delivery, webhook: Webhook) -> int:
        """POST one delivery, retrying transient failures; return the attempts it took.

        Args:
            delivery: What to send.
            webhook: Where, and the secret to sign with.

        Raises:
            IntegrationError: Refused (4xx) or still failing after the retries;
                its `attempts` attribute says how many POSTs were made.
        """
        tries = 0
        body = payload_of(delivery)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts) | stop_before_delay(self.deadline),
            wait=wait_random_exponential(multiplier=self.wait_initial, max=self.wait_max),
            retry=retry_if_exception(_transient),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    tries += 1
                    await self._post(body, delivery, webhook)
        except IntegrationError as exc:
            exc.attempts = tries  # type: ignore[attr-defined]
            raise
        except (_RetryableStatus, httpx.HTTPError) as exc:
            error = IntegrationError(
                f"webhook {_where(webhook.url)} did not take delivery {delivery.id} after "
                f"{tries} attempt(s) ({type(exc).__name__}: {exc}); it stays in the inbox"
            )
            error.attempts = tries  # type: ignore[attr-defined]
            raise error from exc
        return tries

    async def aclose(self) -> None:
        """Close the HTTP client if this sender made it."""
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None
