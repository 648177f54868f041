"""The companion service's configuration: personas, tenants with their API keys, limits.

A YAML file, read by `load_config` (or a `CompanionConfig` built in code).
API keys are never written in it: each key is given by the SHA-256 of its
secret (`personae serve --new-key` makes a key and prints the line to add),
so a leaked config file does not leak a key.

```yaml
personas:                      # persona files, relative to this file
  - ../personas/companion.yaml
tenants:
  sunrise:                     # tenant id: a deployment, a care home, a family
    keys:
      - id: web                # a name for logs; never the secret
        sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        scopes: [chat]
      - id: staff
        sha256: ...
        scopes: [chat, memory, care, admin]
      - id: open-webui         # a proxy that vouches for its users
        sha256: ...
        scopes: [chat]
        trusted_proxy: true
rate_limits:
  per_key: 600/minute
  per_user: 30/minute
```
"""

from __future__ import annotations

import difflib
import hashlib
import re
import secrets
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from personae.config_files import Loc as _Loc
from personae.config_files import parse_config_yaml, read_config_text, relative_to
from personae.errors import ConfigError, Problem

__all__ = [
    "KEY_PREFIX",
    "ApiKeyConfig",
    "CompanionConfig",
    "KeyScope",
    "Rate",
    "RateLimits",
    "TenantConfig",
    "hash_key",
    "load_config",
    "new_key",
]

KeyScope = Literal["chat", "memory", "care", "admin"]
"""What a key may do: `chat` (models and chat completions), `memory` (read, edit,
export and erase users' memories), `care` (check-ins, reminders, contacts,
alerts) and `admin` (the safety audit log and referral counts)."""

KEY_PREFIX: Final = "pk-"
"""Keys made by `new_key` start with this, so they are easy to spot in a leak scan."""

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$"
_UNITS: Final = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}


def new_key() -> str:
    """Return a fresh random API key (256 bits), to hand to a client once."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """Return the SHA-256 hex digest of an API key: what the config file stores."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _chat_only() -> list[KeyScope]:
    return ["chat"]


class Rate(BaseModel):
    """A request rate: at most `requests` per `seconds`, bursts up to `requests` allowed.

    In YAML either `{requests: 30, seconds: 60}` or a string `30/minute`
    (`second`, `minute`, `hour` or `day`, optionally with a count: `100/5minutes`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    requests: int = Field(ge=1)
    """Requests allowed per window."""
    seconds: float = Field(gt=0)
    """Length of the window in seconds."""

    @model_validator(mode="before")
    @classmethod
    def _parse_text(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*", data)
        if match is None:
            raise ValueError(
                f"{data!r} is not a rate; write it like '30/minute' (second, minute, hour, "
                "day) or as {requests: 30, seconds: 60}"
            )
        count, many, unit = match.groups()
        return {"requests": int(count), "seconds": _UNITS[unit] * int(many or 1)}

    def __str__(self) -> str:
        return f"{self.requests} per {self.seconds:g} s"


class RateLimits(BaseModel):
    """How many requests a key, and one user, may send."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    per_key: Rate | None = Field(default_factory=lambda: Rate(requests=600, seconds=60))
    """Requests per API key, on every route; null: unlimited. Default 600/minute."""
    per_user: Rate | None = Field(default_factory=lambda: Rate(requests=30, seconds=60))
    """Chat completions per user of a tenant; null: unlimited. Default 30/minute."""


class ApiKeyConfig(BaseModel):
    """One API key of a tenant: its name, the hash of its secret, and what it may do."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    id: str = Field(pattern=_ID)
    """A name for the key (logs, audit), unique within the tenant; never the secret."""
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """SHA-256 of the key's secret, lowercase hex (`personae serve --new-key` prints it)."""
    scopes: list[KeyScope] = Field(default_factory=_chat_only, min_length=1)
    """What the key may do: `chat`, `memory`, `care`, `admin`. Default `[chat]`."""
    trusted_proxy: bool = False
    """The key belongs to a proxy (a chat UI's server) that authenticates its own users:
    only such keys may name the user in the `user_header` header. Default false."""
    rate_limit: Rate | None = None
    """This key's own request rate, instead of `rate_limits.per_key`."""

    @field_validator("sha256", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class TenantConfig(BaseModel):
    """One tenant: its keys and the personas its users may talk to."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    keys: list[ApiKeyConfig] = Field(min_length=1)
    """The tenant's API keys."""
    personas: list[str] | None = None
    """Persona ids the tenant may use; null (the default): all of them."""


class CompanionConfig(BaseModel):
    """Everything `personae serve` needs, from `load_config` or built in code.

    Raises:
        pydantic.ValidationError: Built in code with wrong values (`load_config`
            raises `ConfigError` with file and line instead).

    Example:
        ```python
        from personae.integrations.companion.config import CompanionConfig, hash_key

        config = CompanionConfig(
            personas=[Path("examples/personas/companion.yaml")],
            tenants={"home": {"keys": [{"id": "me", "sha256": hash_key("pk-secret")}]}},
        )
        ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    path: Path | None = None
    """The YAML file this came from, if any."""
    personas: list[Path] = Field(default_factory=list)
    """Persona files (YAML or JSON), relative to the config file. Agents handed to
    `create_app` directly need none."""
    tenants: dict[str, TenantConfig] = Field(min_length=1)
    """Tenant id -> its keys and personas."""
    model: str | None = None
    """Model spec for every persona; default: each persona's, then `PERSONAE_MODEL`,
    then `offline`."""
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    """Requests per key and per user."""
    user_header: str = Field(default="X-Personae-User", pattern=r"^[A-Za-z0-9-]+$")
    """Header through which a `trusted_proxy` key names its user (Open WebUI, for
    example, can send `X-OpenWebUI-User-Id`)."""
    streaming: Literal["live", "screened"] = "live"
    """`live` streams text as the model writes it; `screened` sends the reply in one
    chunk after output screening, so a reply the safety layer replaces is never shown."""
    system_messages: Literal["ignore", "context"] = "ignore"
    """What to do with the client's system message: `ignore` it (the persona's own
    prompt rules), or pass its text to the character as context (world state)."""
    cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the API directly (a chat UI on another host)."""
    care: bool = True
    """Serve the check-in, reminder and alert routes (`/v1/care`) and the chat page."""
    care_interval: float = Field(default=15.0, gt=0)
    """Seconds between two runs of the check-in scheduler."""
    max_message_chars: int = Field(default=8000, ge=1)
    """Longest user message accepted, in characters."""

    @model_validator(mode="after")
    def _check(self) -> CompanionConfig:
        problems = _cross_check(self)
        if problems:
            raise ValueError("; ".join(f"{'.'.join(loc)}: {msg}" for loc, _, msg, _ in problems))
        return self

    @field_validator("tenants")
    @classmethod
    def _tenant_ids(cls, value: dict[str, TenantConfig]) -> dict[str, TenantConfig]:
        for tenant in value:
            if not re.match(_ID, tenant):
                raise ValueError(
                    f"tenant id {tenant!r} may hold only letters, digits and _.:@- "
                    "(at most 64); rename it"
                )
        return value


def _cross_check(config: CompanionConfig) -> list[tuple[_Loc, object, str, str]]:
    """Problems between fields: duplicate key names and secrets."""
    found: list[tuple[_Loc, object, str, str]] = []
    owners: dict[str, str] = {}
    for tenant, settings in config.tenants.items():
        names: set[str] = set()
        for i, key in enumerate(settings.keys):
            loc = ("tenants", tenant, "keys", str(i))
            if key.id in names:
                found.append(((*loc, "id"), key.id, "is used by two keys of this tenant",
                              "give each key its own id"))
            names.add(key.id)
            if key.sha256 in owners:
                found.append(((*loc, "sha256"), None,
                              f"is the same secret as key {owners[key.sha256]!r}",
                              "make a new key for each client with `personae serve --new-key`"))
            owners.setdefault(key.sha256, f"{tenant}/{key.id}")
    return found


def load_config(path: str | Path) -> CompanionConfig:
    """Load the companion service config from a YAML file.

    Persona paths are read relative to the file and made absolute; each must exist.

    Args:
        path: The YAML file.

    Returns:
        The validated config.

    Raises:
        ConfigError: The file cannot be read or parsed, or values are wrong;
            the message lists every problem with its line and fix.
    """
    path = Path(path)
    text = _read(path)
    data, found = parse_config_yaml(path, text, lambda p: _error([p]))
    problem, problems = found.add, found.found
    if not isinstance(data, dict):
        raise _error([Problem(path, 1, "", None, "the file holds no settings",
                              "start with `personas:` and `tenants:` (see the example config)")])
    for tenant, settings in (data.get("tenants") or {}).items():
        for i, key in enumerate((settings or {}).get("keys") or [] if isinstance(settings, dict)
                                else []):
            if isinstance(key, dict) and ("key" in key or "secret" in key):
                # Never echo the value: it is a secret.
                for name in ("key", "secret"):
                    key.pop(name, None)
                problem(("tenants", str(tenant), "keys", str(i)), None,
                        "holds a plain API key",
                        "store only its hash: `sha256: ...` (`personae serve --new-key` prints it)"
                        "; if this file was shared, replace the key")
    personas = data.get("personas")
    if isinstance(personas, list):
        data["personas"] = [relative_to(path, p) for p in personas]
    data["path"] = path
    try:
        config = CompanionConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            problem(*_explain(err))
        raise _error(problems) from None
    for i, file in enumerate(config.personas):
        if not file.is_file():
            problem(("personas", str(i)), str(personas[i] if isinstance(personas, list) else file),
                    f"persona file not found (looked at {file})",
                    "persona paths are relative to this config file; fix the path")
    if problems:
        raise _error(problems)
    return config


def _error(problems: list[Problem]) -> ConfigError:
    problems.sort(key=lambda p: p.line or 0)
    return ConfigError("\n".join(str(p) for p in problems))


def _read(path: Path) -> str:
    def fail(message: str, fix: str) -> ConfigError:
        return _error([Problem(path, None, "", None, message, fix)])

    return read_config_text(path, fail, what="the service's .yaml config")


def _model_at(loc: _Loc) -> type[BaseModel]:
    """Return the settings model holding the field at `loc`."""
    if loc[:1] == ("rate_limits",) and len(loc) == 2:
        return RateLimits
    if loc[:1] == ("tenants",) and len(loc) == 3:
        return TenantConfig
    if loc[:1] == ("tenants",) and len(loc) == 5:
        return ApiKeyConfig
    return CompanionConfig


def _explain(err: ErrorDetails) -> tuple[_Loc, object, str, str]:
    """Turn one pydantic error into (where, value, what is wrong, fix)."""
    loc = tuple(str(p) for p in err["loc"] if p != "[key]")
    kind, value = err["type"], err["input"]
    text = err["msg"].removeprefix("Value error, ")
    message, fix = text[:1].lower() + text[1:], "correct the value"
    if kind == "missing":
        value, message = None, "is required but missing"
        fix = f"add `{loc[-1]}: ...`" if loc else "add it"
    elif kind == "extra_forbidden":
        names = sorted(n for n in _model_at(loc).model_fields if n != "path")
        close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
        value, message = None, "is not a known field"
        fix = f"did you mean {close[0]!r}?" if close else f"remove it; known: {', '.join(names)}"
    elif kind == "string_pattern_mismatch" and loc and loc[-1] == "sha256":
        value, message = None, "is not a SHA-256 hex digest (64 characters 0-9a-f)"
        fix = "paste the hash `personae serve --new-key` printed, not the key itself"
    elif kind == "literal_error":
        fix = f"use {err.get('ctx', {}).get('expected', 'one of the allowed values')}"
    elif kind == "value_error":
        message, _, given = text.partition("; ")
        fix = given or "correct the value"
    if isinstance(value, dict | list):
        value = None
    return loc, value, message, fix
