"""Who is calling and what they may do: bearer API keys per tenant, with scopes.

Every route depends on `require(scope)`: it reads `Authorization: Bearer
KEY`, finds the key by the SHA-256 of its secret (the config stores only
hashes), checks the key's scopes and its request rate, and returns the
`Principal`. Errors are `ApiError`s, which the app renders in OpenAI's error
envelope, so OpenAI clients show them as they would OpenAI's own.

Whose conversation a request is (the user) comes from the request body
(`user`, or `safety_identifier`), or from a header (`X-Personae-User` by
default) for keys marked `trusted_proxy` only: a proxy that signs its users in
may speak for them; anyone else could impersonate a user that way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from personae.integrations.companion.config import CompanionConfig, KeyScope, Rate
from personae.integrations.companion.ratelimit import Decision, RateLimiter

__all__ = [
    "ApiError",
    "KeyRing",
    "Principal",
    "rate_limited",
    "require",
    "resolve_user",
]

MAX_USER_CHARS: Final = 256


class ApiError(Exception):
    """An error answered to the client in OpenAI's envelope: `{"error": {...}}`.

    Raise it from any route; the app turns it into the response.

    Args:
        status: HTTP status code.
        message: What went wrong and how to fix it (never a key or chat text).
        type: OpenAI's error type, e.g. `invalid_request_error`.
        code: A machine-readable code, e.g. `invalid_api_key`.
        param: The request field at fault, if one is.
        headers: Extra response headers (`retry-after`, `WWW-Authenticate`).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """Return the JSON body: `{"error": {"message", "type", "param", "code"}}`."""
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}  # fmt: skip


@dataclass(frozen=True)
class Principal:
    """The caller of a request: which tenant's key, and what it may do.

    Attributes:
        tenant: The tenant the key belongs to; every read and write stays within it.
        key_id: The key's name from the config (never its secret).
        scopes: What the key may do (`chat`, `memory`, `care`, `admin`).
        trusted_proxy: Whether the key may name its user in a header.
    """

    tenant: str
    key_id: str
    scopes: frozenset[str]
    trusted_proxy: bool = False

    @property
    def name(self) -> str:
        """`tenant/key_id`, for logs and rate limits."""
        return f"{self.tenant}/{self.key_id}"


class KeyRing:
    """The service's API keys, looked up by the hash of their secret, and their rate limits.

    Args:
        config: The tenants and their keys.
        limiter: Counts requests; a fresh one by default.
    """

    def __init__(self, config: CompanionConfig, *, limiter: RateLimiter | None = None) -> None:
        self.config = config
        self.limiter = limiter or RateLimiter()
        self._by_hash: dict[str, Principal] = {}
        self._rates: dict[Principal, Rate | None] = {}
        default = config.rate_limits.per_key
        for tenant, settings in config.tenants.items():
            for key in settings.keys:
                principal = Principal(tenant, key.id, frozenset(key.scopes), key.trusted_proxy)
                self._by_hash[key.sha256] = principal
                self._rates[principal] = key.rate_limit or default

    def authenticate(self, secret: str) -> Principal | None:
        """Return the principal of a key's secret, or None when no key has it."""
        return self._by_hash.get(hashlib.sha256(secret.encode("utf-8")).hexdigest())

    def hit_key(self, principal: Principal) -> Decision | None:
        """Count a request of the principal's key; None when the key has no limit."""
        rate = self._rates.get(principal)
        return None if rate is None else self.limiter.hit("key:" + principal.name, rate)

    def hit_user(self, tenant: str, user: str) -> Decision | None:
        """Count a chat request of a tenant's user; None when users have no limit."""
        rate = self.config.rate_limits.per_user
        return None if rate is None else self.limiter.hit(f"user:{tenant}\x00{user}", rate)

    def personas(self, tenant: str, known: Iterable[str]) -> list[str]:
        """Return the persona ids of `known` the tenant may use, in order."""
        allowed = self.config.tenants[tenant].personas
        return [p for p in known if allowed is None or p in allowed]


def rate_limited(decision: Decision, what: str) -> ApiError:
    """Return the 429 error for a refused request, with `retry-after` headers.

    Args:
        decision: The refusal.
        what: Whose limit, e.g. "this API key" or "this user".
    """
    return ApiError(
        429,
        f"rate limit reached for {what}: at most {decision.limit} requests per window; "
        f"retry after {decision.retry_after:.2f} s",
        type="requests",
        code="rate_limit_exceeded",
        headers=decision.headers(),
    )


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key of your tenant: `Authorization: Bearer pk-...`.",
)
_dependencies: dict[str, Callable[..., Awaitable[Principal]]] = {}


def require(scope: KeyScope) -> Callable[..., Awaitable[Principal]]:
    """Return the FastAPI dependency that admits keys with `scope` and yields their `Principal`.

    The same object is returned for the same scope, so tests can replace it
    with `app.dependency_overrides[require("care")]`.

    Answers 401 without a valid key, 403 when the key lacks the scope, and
    429 with `retry-after` when the key is over its rate limit.

    Args:
        scope: `chat`, `memory`, `care` or `admin`.

    Example:
        ```python
        @router.get("/v1/care/alerts")
        async def alerts(who: Annotated[Principal, Depends(require("care"))]) -> ...:
            ...
        ```
    """
    if scope not in _dependencies:
        _dependencies[scope] = _make_dependency(scope)
    return _dependencies[scope]


def _make_dependency(scope: str) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        ring: KeyRing = request.app.state.keyring
        if credentials is None or not credentials.credentials:
            raise ApiError(
                401,
                "no API key: send `Authorization: Bearer KEY` with a key of your tenant "
                "(the openai SDK: `OpenAI(api_key=KEY, base_url=.../v1)`)",
                code="missing_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = ring.authenticate(credentials.credentials)
        if principal is None:
            raise ApiError(
                401,
                "the API key is not valid: check it, or ask the service's operator for a new "
                "one (`personae serve --new-key`)",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope not in principal.scopes:
            raise ApiError(
                403,
                f"API key {principal.key_id!r} lacks the {scope!r} scope this route needs; "
                f"add {scope!r} to its `scopes` in the service config, or use another key",
                type="permission_error",
                code="insufficient_scope",
            )
        decision = ring.hit_key(principal)
        if decision is not None and not decision.allowed:
            raise rate_limited(decision, f"API key {principal.key_id!r}")
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


def resolve_user(
    request: Request, principal: Principal, *, named: str | None, header: str
) -> str:
    """Return whose conversation a request is.

    In order: the `header` (e.g. `X-Personae-User`) when the key is a trusted
    proxy, then `named` (the body's `user` or `safety_identifier`), then the
    key's own id (a key used by one person is that person).

    Raises:
        ApiError: 403 when an untrusted key sends the header, 400 for an
            empty, overlong or unprintable user id.
    """
    forwarded = request.headers.get(header)
    if forwarded is not None and not principal.trusted_proxy:
        raise ApiError(
            403,
            f"the {header} header names a user, which only keys marked `trusted_proxy: true` "
            f"may do; send the user in the body's `user` field instead, or mark key "
            f"{principal.key_id!r} as a trusted proxy in the service config",
            type="permission_error",
            code="untrusted_user_header",
        )
    user = forwarded if forwarded is not None else named
    param = header if forwarded is not None else "user"
    if user is None:
        return principal.key_id
    if not user.strip() or len(user) > MAX_USER_CHARS or not user.isprintable():
        raise ApiError(
            400,
            f"user id must be 1 to {MAX_USER_CHARS} printable characters; send a stable id "
            "such as a UUID or an account number",
            param=param,
            code="invalid_user",
        )
    return user
