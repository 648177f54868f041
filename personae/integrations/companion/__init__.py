"""The companion service: personas behind an OpenAI-compatible HTTP API (FastAPI).

`personae serve service.yaml` runs it; `create_app(config)` builds the app
for uvicorn or tests. Needs the `server` extra: `pip install "personae[server]"`.

Modules: `config` (tenants, API keys, limits), `auth` (keys and scopes),
`openai_api` (chat completions and models), `memory_api` (a user's memories,
export and erasure), `erasure`, `audit` (the safety audit log), `ratelimit`,
and `app` (puts them together).
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        'the companion service needs FastAPI and uvicorn: pip install "personae[server]"'
    ) from exc

__all__: list[str] = []
