"""Every error personae raises, under one root.

```
PersonaeError
    ConfigError                your input is wrong: fix it and retry
        PersonaFileError       a persona file does not load or validate
        ModelSpecError         a "provider:model" spec is malformed
        MissingCredentialsError
        ToolLoadError          a tool named in a persona cannot be loaded
        CardError              a Character Card / character.json cannot be imported or exported
        DiscordConfigError     a Discord bot config file does not load or validate
    PluginError
        UnknownProviderError   (also a LookupError)
    ProviderError              the model call failed after retries and fallbacks
    MemoryStoreError
    SafetyError
    IntegrationError
```

Input errors (`ConfigError`) carry what is needed to fix them: the file, the
field, the bad value and the fix. Messages never contain API keys or users'
chat text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CardError",
    "ConfigError",
    "DiscordConfigError",
    "IntegrationError",
    "MemoryStoreError",
    "MissingCredentialsError",
    "ModelSpecError",
    "PersonaFileError",
    "PersonaeError",
    "PluginError",
    "Problem",
    "ProviderError",
    "SafetyError",
    "ToolLoadError",
    "UnknownProviderError",
]


class PersonaeError(Exception):
    """Root of every error personae raises; catching it catches them all."""


class ConfigError(PersonaeError):
    """Something the user wrote (a file, a flag, a setting) is wrong and must be fixed."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a persona file, located and explained.

    Attributes:
        path: The file, or `None` for a persona built in code.
        line: 1-based line of the offending value, when known.
        field: Dotted location of the field, e.g. `speech.max_sentences`.
        value: The offending value, or `None` when the field is missing.
        message: What is wrong.
        fix: How to fix it.
    """

    path: Path | None
    line: int | None
    field: str
    value: object
    message: str
    fix: str

    def __str__(self) -> str:
        where = str(self.path) if self.path is not None else "<persona>"
        if self.line is not None:
            where += f":{self.line}"
        shown = f"{self.field}={self.value!r}" if self.value is not None else self.field
        if not self.field:
            shown = "(file)"
        return f"{where}: {shown}: {self.message}; {self.fix}"

    def as_dict(self) -> dict[str, object]:
        """Return the problem as a JSON-ready dict (for `--json` output)."""
        value = self.value
        if not isinstance(value, str | int | float | bool | type(None) | list | dict):
            value = repr(value)
        return {
            "path": str(self.path) if self.path is not None else None,
            "line": self.line,
            "field": self.field,
            "value": value,
            "message": self.message,
            "fix": self.fix,
        }


class PersonaFileError(ConfigError):
    """A persona file could not be read, parsed or validated.

    Holds every problem found, not only the first, so a user fixes them all
    in one pass.

    Args:
        problems: What is wrong, each with file, line, field, value and fix.
    """

    def __init__(self, problems: list[Problem]) -> None:
        assert problems, "PersonaFileError needs at least one problem"
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ModelSpecError(ConfigError, ValueError):
    """A model spec is not of the form `provider:model` (or `offline`)."""

    def __init__(self, spec: str, reason: str) -> None:
        self.spec = spec
        super().__init__(
            f"model spec {spec!r} {reason}; write 'provider:model', e.g. 'openai:gpt-4o-mini', "
            "'ollama:llama3.1', 'qwen:qwen-plus', or 'offline'"
        )


class MissingCredentialsError(ConfigError):
    """A provider needs an API key and none was given or found in the environment."""

    def __init__(self, provider: str, env_var: str) -> None:
        self.provider = provider
        self.env_var = env_var
        super().__init__(
            f"provider {provider!r} needs an API key: set {env_var} in the environment "
            f"(or in a .env file), e.g. `export {env_var}=...`"
        )


class ToolLoadError(ConfigError):
    """A tool named in a persona's `tools` list cannot be found or imported."""

    def __init__(self, name: str, reason: str, fix: str) -> None:
        self.name = name
        super().__init__(f"tool {name!r} {reason}; {fix}")


class CardError(ConfigError):
    """A Character Card, lorebook or character.json cannot be imported or exported.

    Args:
        path: The file concerned.
        problem: What is wrong, e.g. "the `chara` chunk is not valid base64".
        fix: What to do about it.
    """

    def __init__(self, path: Path | str, problem: str, fix: str) -> None:
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}; {fix}")


class DiscordConfigError(ConfigError):
    """A Discord bot config file (or the token it needs) could not be read or validated.

    Inherits from `ConfigError`. Holds every problem found, each with the file,
    line, field, value and fix. The bot token is never part of a message.

    Args:
        problems: What is wrong.
    """

    def __init__(self, problems: list[Problem]) -> None:
        assert problems, "DiscordConfigError needs at least one problem"
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class PluginError(PersonaeError):
    """A plugin (provider, tool, integration) could not be found or loaded."""


class UnknownProviderError(PluginError, LookupError):
    """A model spec names a provider personae does not know."""

    def __init__(self, provider: str, known: list[str]) -> None:
        self.provider = provider
        self.known = known
        super().__init__(
            f"unknown model provider {provider!r}; known providers: {', '.join(sorted(known))}. "
            "For any other OpenAI-compatible server use 'openai:MODEL' with "
            "PERSONAE_OPENAI_BASE_URL set"
        )


class ProviderError(PersonaeError):
    """Every model in the chain failed, after retries; `attempts` says how."""

    def __init__(self, message: str, attempts: list[dict[str, object]] | None = None) -> None:
        self.attempts = attempts or []
        super().__init__(message)


class MemoryStoreError(PersonaeError):
    """The memory store cannot be opened, read or written."""


class SafetyError(PersonaeError):
    """The safety layer is misconfigured."""


class IntegrationError(PersonaeError):
    """An integration (game, Discord, HTTP) failed in a way its host must hear about."""
