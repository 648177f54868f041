"""Service settings: environment variables `PERSONAE_*` and a `.env` file.

Precedence, highest first: keyword arguments to `Settings(...)`, environment
variables, the `.env` file in the working directory, the defaults below.
Secrets are `SecretStr`: they never show in `repr()`, logs or error messages.

| variable                   | default                                         |
| -------------------------- | ----------------------------------------------- |
| `PERSONAE_HOME`            | `$XDG_DATA_HOME/personae` or `~/.local/share/personae` |
| `PERSONAE_MODEL`           | unset (the persona's model, else `offline`)     |
| `PERSONAE_OPENAI_BASE_URL` | unset (`OPENAI_BASE_URL`, else OpenAI itself)   |
| `PERSONAE_OPENAI_API_KEY`  | unset (`OPENAI_API_KEY`)                        |
| `PERSONAE_OLLAMA_BASE_URL` | `http://127.0.0.1:11434`                        |
| `PERSONAE_REQUEST_TIMEOUT` | `60` seconds per model request                  |
| `PERSONAE_RETRY_ATTEMPTS`  | `3` attempts per model, first one included      |
| `PERSONAE_RETRY_DEADLINE`  | `30` seconds for all attempts of one model      |
| `PERSONAE_RETRY_WAIT_INITIAL` | `0.5` seconds, scale of the first wait       |
| `PERSONAE_RETRY_WAIT_MAX`  | `8` seconds, longest wait between attempts      |
| `PERSONAE_DEBUG`           | `false`                                         |

Provider presets read more variables (`DEEPSEEK_API_KEY`,
`PERSONAE_DEEPSEEK_BASE_URL`, ...) through `Settings.env`, which looks in the
environment first and in the `.env` file second.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_home", "get_settings"]

_ENV_FILE = ".env"


def default_home() -> Path:
    """Return the default data directory, following the XDG base directory spec."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "personae"


class Settings(BaseSettings):
    """Settings of a personae service, read from `PERSONAE_*` variables and `.env`.

    Example:
        ```python
        from personae.settings import Settings

        settings = Settings(model="ollama:llama3.1", retry_attempts=2)
        ```

    """

    model_config = SettingsConfigDict(
        env_prefix="PERSONAE_",
        env_file=_ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        use_attribute_docstrings=True,
        validate_default=True,
    )

    home: Path = Field(default_factory=default_home)
    """Data directory (memory, history); `$XDG_DATA_HOME/personae` or
    `~/.local/share/personae` by default."""
    model: str | None = None
    """Model spec used when neither the caller nor the persona names one."""
    openai_base_url: str | None = None
    """Base URL of the `openai` provider; unset: `OPENAI_BASE_URL`, else OpenAI."""
    openai_api_key: SecretStr | None = None
    """API key of the `openai` provider; unset: `OPENAI_API_KEY`."""
    canary_secret: SecretStr | None = None
    """Secret from which each persona's prompt canary is derived; a reply that contains the
    canary leaked the system prompt and is replaced. Unset: a secret derived from the
    persona id only, which still catches leaks but can be guessed."""
    ollama_base_url: str = "http://127.0.0.1:11434"
    """Where the Ollama server listens."""
    request_timeout: float = Field(default=60.0, gt=0)
    """Seconds one model request may take before it counts as failed."""
    retry_attempts: int = Field(default=3, ge=1, le=20)
    """Attempts per model on transient errors, the first one included."""
    retry_deadline: float = Field(default=30.0, gt=0)
    """Seconds all attempts of one model may take together."""
    retry_wait_initial: float = Field(default=0.5, ge=0)
    """Scale of the first wait between attempts, in seconds (waits are jittered)."""
    retry_wait_max: float = Field(default=8.0, ge=0)
    """Longest single wait between attempts, in seconds."""
    debug: bool = False
    """Show tracebacks and debug logs."""

    def env(self, name: str) -> str | None:
        """Return a variable from the environment, else from the `.env` file.

        Used for variables that are not fields, such as provider API keys
        (`DEEPSEEK_API_KEY`) and preset base URLs (`PERSONAE_QWEN_BASE_URL`).
        Empty values count as unset.

        Args:
            name: The variable's name, exactly as written.

        """
        value = os.environ.get(name)
        if value:
            return value
        return _dotenv_values().get(name) or None


def _dotenv_values() -> dict[str, str]:
    path = Path(_ENV_FILE)
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(path).items() if value is not None}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment and `.env`.

    Call `get_settings.cache_clear()` after changing the environment (tests do).
    """
    return Settings()
