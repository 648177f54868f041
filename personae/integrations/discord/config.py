"""The Discord bot's configuration: a YAML file, plus the token from the environment.

Which personas the bot can speak as, which one speaks where (per guild,
category, channel and thread, inherited downward), when it answers, its
limits and its output options all come from one YAML file. The bot token
never does: it comes from `PERSONAE_DISCORD_TOKEN` (or a `.env` file) as a
`SecretStr`, and never shows in `repr()`, logs or error messages.

```yaml
personas:
  guide: ../personas/guide.yaml        # relative to this file
default_persona: guide
policy:                                # defaults for every place
  wake_words: [wren]
channels:
  "1100000000000000002":               # a channel id (Developer Mode: Copy Channel ID)
    name: "#help"
    policy: {always_on: true}
```

Precedence of the token: the `token` argument of `load_config`, then
`PERSONAE_DISCORD_TOKEN` in the environment, then the same variable in `.env`.

Example:
    ```python
    from personae.integrations.discord.config import load_config

    config = load_config("examples/discord/bot.yaml")
    config.personas["guide"]  # absolute path of the persona file
    ```
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic import ValidationInfo as _Info
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from personae.config_files import Loc as _Loc
from personae.config_files import parse_config_yaml, read_config_text, relative_to
from personae.errors import DiscordConfigError, Problem

__all__ = [
    "TOKEN_ENV",
    "DiscordConfig",
    "LimitSettings",
    "PlaceSettings",
    "PolicySettings",
    "load_config",
    "place_label",
]

TOKEN_ENV: Final = "PERSONAE_DISCORD_TOKEN"
"""Environment variable holding the bot token."""

_PLACES: Final = ("guilds", "categories", "channels", "threads")
# Skipped when the caller validates in two steps (see `load_config`), so that
# cross-field problems can be reported with their line numbers.
_DEFER_CHECKS: Final = "defer_cross_checks"


class PolicySettings(BaseModel):
    """When the bot answers, for one place; every unset field is inherited from above.

    The built-in defaults (used where nothing sets a field) are given per field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    mention: bool | None = None
    """Answer when the bot, or its managed role, is mentioned. Default true."""
    reply_to_bot: bool | None = None
    """Answer replies to the bot's own messages. Default true."""
    dm: bool | None = None
    """Answer direct messages. Default true."""
    wake_words: list[str] | None = None
    """Words that call the bot without a mention, matched as whole words, any case.
    Default none."""
    always_on: bool | None = None
    """Answer every message (subject to `cooldown_seconds`). Default false."""
    talkativeness: float | None = Field(default=None, ge=0.0, le=1.0)
    """Chance (0 to 1) of chiming in on a message that did not call the bot. Default 0."""
    cooldown_seconds: float | None = Field(default=None, ge=0.0)
    """Seconds after an answer in a place before the bot speaks there unprompted again
    (always-on and talkative answers only). Default 0."""
    ignore_bots: bool | None = None
    """Ignore messages written by other bots. Default true."""
    ignore_webhooks: bool | None = None
    """Ignore messages sent through webhooks. Default true."""
    max_bot_turns: int | None = Field(default=None, ge=0)
    """When bots are not ignored: most bot messages in a row the bot answers, so two bots
    never talk forever. Default 3."""

    @model_validator(mode="after")
    def _clean_wake_words(self) -> PolicySettings:
        for word in self.wake_words or []:
            if not word.strip():
                raise ValueError("wake_words holds an empty word; remove it")
        return self


class PlaceSettings(BaseModel):
    """Settings of one guild, category, channel or thread (or of direct messages)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    name: str | None = None
    """A label for humans, e.g. `#help`; shown in explanations."""
    persona: str | None = None
    """Id of the persona that speaks here (a key of `personas`); unset: inherited."""
    policy: PolicySettings = Field(default_factory=PolicySettings)
    """When the bot answers here; unset fields are inherited."""


class LimitSettings(BaseModel):
    """How much one user, or one guild, may ask of the bot."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    user_cooldown_seconds: float = Field(default=3.0, ge=0.0)
    """Seconds between two answers to the same user; 0: no cooldown."""
    daily_quota: int | None = Field(default=200, ge=1)
    """Answers per user per UTC day; null: unlimited."""
    guild_concurrency: int = Field(default=4, ge=1)
    """Turns running at once per guild (direct messages share one pool); more wait."""


class DiscordConfig(BaseModel):
    """Everything the Discord bot needs to know, from `load_config` or built in code.

    Raises:
        pydantic.ValidationError: Built in code with wrong values (`load_config`
            raises `DiscordConfigError` instead).

    Example:
        ```python
        config = DiscordConfig(personas={"guide": Path("guide.yaml")})
        config.default_persona  # "guide": the only persona
        ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    path: Path | None = None
    """The YAML file this came from, if any."""
    personas: dict[str, Path] = Field(min_length=1)
    """Persona id -> persona file, relative to the config file."""
    default_persona: str = ""
    """Persona that speaks where no place names one; may be left out when there is one persona."""
    policy: PolicySettings = Field(default_factory=PolicySettings)
    """When the bot answers, everywhere unless a place says otherwise."""
    guilds: dict[int, PlaceSettings] = Field(default_factory=dict)
    """Guild id -> persona and policy of the guild."""
    categories: dict[int, PlaceSettings] = Field(default_factory=dict)
    """Category id -> persona and policy of the channels in it."""
    channels: dict[int, PlaceSettings] = Field(default_factory=dict)
    """Channel id -> persona and policy of the channel and its threads."""
    threads: dict[int, PlaceSettings] = Field(default_factory=dict)
    """Thread id -> persona and policy of the thread."""
    direct_messages: PlaceSettings = Field(default_factory=PlaceSettings)
    """Persona and policy in direct messages."""
    limits: LimitSettings = Field(default_factory=LimitSettings)
    """Per-user cooldown and daily quota, per-guild concurrency."""
    streaming: bool = True
    """Show the reply as it is written, by editing the message (at most once a second)."""
    context_tokens: int = Field(default=1500, ge=0)
    """Token budget of the conversation context (reply chain, thread, channel)."""
    context_messages: int = Field(default=20, ge=0, le=100)
    """Recent messages read from the thread and from the channel for the context."""
    webhooks: bool = True
    """Speak through a webhook with the persona's name and avatar where permitted."""
    admin_roles: list[str] = Field(default_factory=list)
    """Role names allowed to use admin commands besides members with Manage Server."""
    seed: int | None = None
    """Seed of the talkativeness dice, for reproducible runs; null: random."""
    token: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """The bot token, from `PERSONAE_DISCORD_TOKEN`; never written in the YAML file."""

    @model_validator(mode="before")
    @classmethod
    def _only_persona_is_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("default_persona"):
            personas = data.get("personas")
            if isinstance(personas, dict) and len(personas) == 1:
                data = {**data, "default_persona": next(iter(personas))}
        return data

    @model_validator(mode="after")
    def _check_references(self, info: _Info) -> DiscordConfig:
        if info.context and info.context.get(_DEFER_CHECKS):
            return self
        problems = _cross_check(self)
        if problems:
            raise ValueError("; ".join(f"{'.'.join(loc)}: {msg}" for loc, _, msg, _ in problems))
        return self

    def require_token(self) -> SecretStr:
        """Return the bot token.

        Raises:
            DiscordConfigError: No token was given; the message says how to set it.
        """
        if self.token is None or not self.token.get_secret_value().strip():
            raise DiscordConfigError([
                Problem(
                    self.path, None, "token", None, "no Discord bot token was given",
                    f"set {TOKEN_ENV} in the environment or in a .env file, e.g. "
                    f"`export {TOKEN_ENV}=...` (Developer Portal -> your app -> Bot -> "
                    "Reset Token); never put the token in the config file",
                )
            ])
        return self.token


def place_label(kind: str, place_id: int | None, place: PlaceSettings | None = None) -> str:
    """Name a place for explanations, e.g. `channel 42 (#help)`.

    Args:
        kind: `guild`, `category`, `channel` or `thread`.
        place_id: Its id.
        place: Its settings, whose `name` is added when set.
    """
    label = f"{kind} {place_id}"
    if place is not None and place.name:
        label += f" ({place.name})"
    return label


class _TokenSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PERSONAE_DISCORD_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    token: SecretStr | None = None


def load_config(path: str | Path, *, token: str | SecretStr | None = None) -> DiscordConfig:
    """Load the Discord bot config from a YAML file, and the token from the environment.

    Persona paths are read relative to the config file and made absolute; each
    must exist. A missing token is not an error here (`personae discord why`
    needs none): `DiscordConfig.require_token` raises when the bot starts.

    Args:
        path: The YAML config file.
        token: The bot token; default `PERSONAE_DISCORD_TOKEN`, then `.env`.

    Returns:
        The validated config.

    Raises:
        DiscordConfigError: The file cannot be read or parsed, or a value is
            wrong; `problems` lists every problem with its line and fix.
    """
    path = Path(path)
    text = _read(path)
    data, found = parse_config_yaml(path, text, lambda p: DiscordConfigError([p]))
    problem = found.add
    if not isinstance(data, dict):
        fix = "start with `personas:` and one `id: path/to/persona.yaml` line under it"
        raise DiscordConfigError([Problem(path, 1, "", None, "the file holds no settings", fix)])
    if "token" in data:
        # Never echo the value: it is (or looks like) a secret.
        data = {k: v for k, v in data.items() if k != "token"}
        problem(("token",), None, "the bot token must not be written in the config file",
                f"delete the line and set {TOKEN_ENV} in the environment or a .env file; "
                "if this file was shared, reset the token in the Developer Portal")
    if "path" in data:
        data = {k: v for k, v in data.items() if k != "path"}
        problem(("path",), None, "is not a known field",
                "remove it; persona files are listed under `personas`")
    personas = data.get("personas")
    if isinstance(personas, dict):
        data["personas"] = {k: relative_to(path, v) for k, v in personas.items()}
    data["path"] = path
    data["token"] = _token(token)
    try:
        config = DiscordConfig.model_validate(data, context={_DEFER_CHECKS: True})
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            problem(*_explain(err, data))
        raise DiscordConfigError(found.by_line()) from None
    for loc, value, message, fix in _cross_check(config):
        problem(loc, value, message, fix)
    for pid, file in config.personas.items():
        if not file.is_file():
            problem(("personas", pid), str(personas[pid] if isinstance(personas, dict) else file),
                    f"persona file not found (looked at {file})",
                    "persona paths are relative to this config file; fix the path")
    if found.found:
        raise DiscordConfigError(found.by_line())
    return config


def _read(path: Path) -> str:
    def fail(message: str, fix: str) -> DiscordConfigError:
        return DiscordConfigError([Problem(path, None, "", None, message, fix)])

    return read_config_text(path, fail, what="the bot's .yaml config file")


def _token(token: str | SecretStr | None) -> SecretStr | None:
    if token is None:
        token = _TokenSettings().token
    if isinstance(token, str):
        token = SecretStr(token)
    if token is None or not token.get_secret_value().strip():
        return None
    return token


_Found = tuple[_Loc, object, str, str]  # where, value, what is wrong, fix


def _cross_check(config: DiscordConfig) -> list[_Found]:
    """Problems between fields: persona ids that are not defined."""
    known = sorted(config.personas)
    listed = ", ".join(known)
    found: list[_Found] = []

    def check(loc: _Loc, pid: str | None) -> None:
        if pid is None or pid in config.personas:
            return
        close = difflib.get_close_matches(pid, known, n=1, cutoff=0.6)
        fix = f"did you mean {close[0]!r}?" if close else f"use one of: {listed}"
        found.append((loc, pid, "is not a persona id defined under `personas`",
                      f"{fix} (or add it under `personas`)"))

    if not config.default_persona:
        found.append((("default_persona",), None,
                      "is required when there is more than one persona",
                      f"add `default_persona: ID` with one of: {listed}"))
    else:
        check(("default_persona",), config.default_persona)
    for kind in _PLACES:
        for place_id, place in getattr(config, kind).items():
            check((kind, str(place_id), "persona"), place.persona)
    check(("direct_messages", "persona"), config.direct_messages.persona)
    return found


_FIELD_MODELS: Final[dict[str, type[BaseModel]]] = {
    "policy": PolicySettings,
    "limits": LimitSettings,
    "direct_messages": PlaceSettings,
}
_TYPE_TEXT: Final = {
    "bool_parsing": ("expected true or false", "write `true` or `false`"),
    "bool_type": ("expected true or false", "write `true` or `false`"),
    "int_parsing": ("expected a whole number", "write a number like 3"),
    "int_type": ("expected a whole number", "write a number like 3"),
    "int_from_float": ("expected a whole number", "write a number like 3"),
    "float_parsing": ("expected a number", "write a number like 0.5"),
    "float_type": ("expected a number", "write a number like 0.5"),
    "string_type": ("expected text", "write it as text"),
    "list_type": ("expected a list", "write `[a, b]` or one `- item` per line"),
    "dict_type": ("expected a mapping", "write `key: value` lines indented under it"),
    "model_type": ("expected a mapping", "write `key: value` lines indented under it"),
    "too_short": ("is empty", "add at least one entry"),
}


def _model_at(loc: _Loc) -> type[BaseModel] | None:
    """Return the settings model that holds the fields at `loc` (a path to a mapping)."""
    model: type[BaseModel] | None = DiscordConfig
    i = 0
    while model is not None and i < len(loc):
        name = loc[i]
        if model is DiscordConfig and name in _PLACES:
            model, i = (PlaceSettings, i + 2) if i + 1 < len(loc) else (None, i + 1)
            continue
        model = _FIELD_MODELS.get(name) if model is not PolicySettings else None
        i += 1
    return model


def _explain(err: ErrorDetails, data: dict[str, Any]) -> _Found:
    """Turn one pydantic error into (where, value, what is wrong, fix)."""
    kind = err["type"]
    loc = tuple(str(p) for p in err["loc"] if p != "[key]")
    value: object = err["input"]
    text = err["msg"].removeprefix("Value error, ")
    message, fix = _TYPE_TEXT.get(kind, (text[:1].lower() + text[1:], "correct the value"))
    if "[key]" in err["loc"]:
        message = "is not a Discord id"
        fix = ("use the numeric id, not the name: turn on Developer Mode, right-click the "
               "server, category, channel or thread and choose Copy ID")
    elif kind == "missing":
        value = None
        message = "is required but missing"
        fix = ("add `personas:` with lines like `guide: ../personas/guide.yaml`"
               if loc == ("personas",) else f"add `{loc[-1]}: ...`")
    elif kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        names = sorted(model.model_fields) if model is not None else []
        names = [n for n in names if n not in {"path", "token"}]
        close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
        value, message = None, "is not a known field"
        fix = f"did you mean {close[0]!r}?" if close else f"remove it; known: {', '.join(names)}"
    elif kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        limit = err.get("ctx", {})
        bound = next(iter(limit.values()), None)
        words = {"greater_than_equal": "at least", "less_than_equal": "at most",
                 "greater_than": "more than", "less_than": "less than"}[kind]
        message, fix = f"must be {words} {bound}", f"use a value {words} {bound}"
    elif kind == "value_error":
        message, _, given = text.partition("; ")
        fix = given or "correct the value"
    if isinstance(value, dict | list):
        value = None
    return loc, value, message, fix
