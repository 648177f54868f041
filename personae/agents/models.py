"""Model specs (`provider:model`) and the chat models they name.

A spec is `provider:model`, split at the first colon (so `ollama:qwen2.5:7b`
is provider `ollama`, model `qwen2.5:7b`), or `offline` on its own: personae's
model that answers only from the persona's authored lines.

| provider            | default base URL                                    | API key variable    |
| ------------------- | --------------------------------------------------- | ------------------- |
| `openai`            | OpenAI itself (see below)                           | `OPENAI_API_KEY`    |
| `ollama`            | `http://127.0.0.1:11434`                            | none                |
| `qwen`              | `https://dashscope.aliyuncs.com/compatible-mode/v1` | `DASHSCOPE_API_KEY` |
| `deepseek`          | `https://api.deepseek.com`                          | `DEEPSEEK_API_KEY`  |
| `glm` (`zhipu`)     | `https://open.bigmodel.cn/api/paas/v4`              | `ZHIPUAI_API_KEY`   |
| `moonshot`          | `https://api.moonshot.cn/v1`                        | `MOONSHOT_API_KEY`  |
| `qianfan` (`ernie`) | `https://qianfan.baidubce.com/v2`                   | `QIANFAN_API_KEY`   |
| `baichuan`          | `https://api.baichuan-ai.com/v1`                    | `BAICHUAN_API_KEY`  |
| `minimax`           | `https://api.minimaxi.com/v1`                       | `MINIMAX_API_KEY`   |
| `vllm`              | `http://127.0.0.1:8000/v1`                          | `VLLM_API_KEY`      |
| `llamacpp`          | `http://127.0.0.1:8080/v1`                          | `LLAMA_API_KEY`     |
| `lmstudio`          | `http://127.0.0.1:1234/v1`                          | `LMSTUDIO_API_KEY`  |
| `offline`           | none: runs in process                               | none                |

Keys of `vllm`, `llamacpp` and `lmstudio` are optional: those local servers
take any key unless started with one.

`openai` takes its base URL from `PERSONAE_OPENAI_BASE_URL`, else
`OPENAI_BASE_URL`, else OpenAI; its key from `PERSONAE_OPENAI_API_KEY`, else
`OPENAI_API_KEY` (optional when a base URL is set: local servers take any key).
`ollama` reads `PERSONAE_OLLAMA_BASE_URL`.

Every preset is an OpenAI-compatible Chat Completions endpoint, reached with
LangChain's `ChatOpenAI`; `PERSONAE_<NAME>_BASE_URL` (e.g.
`PERSONAE_DEEPSEEK_BASE_URL`) points it elsewhere, for instance at the
international endpoints (`https://dashscope-intl.aliyuncs.com/compatible-mode/v1`,
`https://api.moonshot.ai/v1`, `https://api.minimax.io/v1`, `https://api.z.ai/api/paas/v4`).
Any other OpenAI-compatible server works as `openai:MODEL` with
`PERSONAE_OPENAI_BASE_URL` set.

Network clients are built with `max_retries=0` and `PERSONAE_REQUEST_TIMEOUT`:
retries happen once, in `RetryMiddleware`, where they are bounded by a total
deadline; SDK retries inside them would multiply the wait.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

from personae.errors import MissingCredentialsError, ModelSpecError, UnknownProviderError
from personae.settings import Settings, get_settings

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

    from personae.memory.embeddings import Embedder
    from personae.personas.model import Persona

__all__ = [
    "OFFLINE",
    "PROVIDERS",
    "ModelSpec",
    "Provider",
    "known_providers",
    "make_chat_model",
    "model_chain",
    "parse_spec",
    "provider_for",
]

OFFLINE = "offline"

_PROVIDER_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
# Local servers accept any key, but the OpenAI SDK refuses to start without one.
_PLACEHOLDER_KEY = "not-needed"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: which provider, which model.

    Attributes:
        provider: Provider name, lowercase (`openai`, `ollama`, `offline`...).
        model: Model name as the provider knows it; empty for `offline`.

    """

    provider: str
    model: str

    def __str__(self) -> str:
        return OFFLINE if self.provider == OFFLINE else f"{self.provider}:{self.model}"


@dataclass(frozen=True)
class Provider:
    """How personae reaches one provider.

    Attributes:
        name: Canonical name, as written in specs.
        kind: `openai` (any OpenAI-compatible server), `ollama` or `offline`.
        base_url: Default endpoint; `None` for OpenAI itself, Ollama and offline.
        key_env: Environment variable holding the API key, if any.
        key_required: Whether a missing key is an error (local servers need none).
        aliases: Other names accepted in specs.
        description: One line for `personae` listings.

    """

    name: str
    kind: Literal["openai", "ollama", "offline"]
    base_url: str | None
    key_env: str | None
    key_required: bool
    description: str
    aliases: tuple[str, ...] = ()

    @property
    def base_url_env(self) -> str:
        """Variable that overrides `base_url`, e.g. `PERSONAE_DEEPSEEK_BASE_URL`."""
        return f"PERSONAE_{self.name.upper()}_BASE_URL"


_ALL: tuple[Provider, ...] = (
    Provider("openai", "openai", None, "OPENAI_API_KEY", True, "OpenAI or a compatible server"),
    Provider("ollama", "ollama", None, None, False, "Ollama, local models"),
    Provider(OFFLINE, "offline", None, None, False, "the persona's own lines, no network"),
    Provider(
        name="qwen",
        kind="openai",
        base_url="https://dashscope.aliyuncs.com/compatible-mode/v1",
        key_env="DASHSCOPE_API_KEY",
        key_required=True,
        description="Alibaba Qwen (DashScope, compatible mode)",
    ),
    Provider(
        name="deepseek",
        kind="openai",
        base_url="https://api.deepseek.com",
        key_env="DEEPSEEK_API_KEY",
        key_required=True,
        description="DeepSeek",
    ),
    Provider(
        name="glm",
        kind="openai",
        base_url="https://open.bigmodel.cn/api/paas/v4",
        key_env="ZHIPUAI_API_KEY",
        key_required=True,
        description="Zhipu GLM (BigModel)",
        aliases=("zhipu",),
    ),
    Provider(
        name="moonshot",
        kind="openai",
        base_url="https://api.moonshot.cn/v1",
        key_env="MOONSHOT_API_KEY",
        key_required=True,
        description="Moonshot Kimi",
    ),
    Provider(
        name="qianfan",
        kind="openai",
        base_url="https://qianfan.baidubce.com/v2",
        key_env="QIANFAN_API_KEY",
        key_required=True,
        description="Baidu Qianfan (ERNIE)",
        aliases=("ernie",),
    ),
    Provider(
        name="baichuan",
        kind="openai",
        base_url="https://api.baichuan-ai.com/v1",
        key_env="BAICHUAN_API_KEY",
        key_required=True,
        description="Baichuan",
    ),
    Provider(
        name="minimax",
        kind="openai",
        base_url="https://api.minimaxi.com/v1",
        key_env="MINIMAX_API_KEY",
        key_required=True,
        description="MiniMax",
    ),
    Provider(
        name="vllm",
        kind="openai",
        base_url="http://127.0.0.1:8000/v1",
        key_env="VLLM_API_KEY",
        key_required=False,
        description="vLLM server",
    ),
    Provider(
        name="llamacpp",
        kind="openai",
        base_url="http://127.0.0.1:8080/v1",
        key_env="LLAMA_API_KEY",
        key_required=False,
        description="llama.cpp server",
    ),
    Provider(
        name="lmstudio",
        kind="openai",
        base_url="http://127.0.0.1:1234/v1",
        key_env="LMSTUDIO_API_KEY",
        key_required=False,
        description="LM Studio",
    ),
)

PROVIDERS: dict[str, Provider] = {p.name: p for p in _ALL}
"""Every built-in provider by canonical name (aliases are not keys; see `provider_for`)."""

_BY_NAME: dict[str, Provider] = {name: p for p in _ALL for name in (p.name, *p.aliases)}


def known_providers() -> list[str]:
    """Return every provider name a spec may use, aliases included, sorted."""
    return sorted(_BY_NAME)


def provider_for(name: str) -> Provider:
    """Return the provider called `name` (or one of its aliases).

    Args:
        name: Provider name from a spec, e.g. `deepseek` or `zhipu`.

    Raises:
        UnknownProviderError: No provider has that name; the message lists them.

    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownProviderError(name, known_providers()) from None


def parse_spec(spec: str) -> ModelSpec:
    """Parse `provider:model` or `offline` into a `ModelSpec`.

    The provider is lowercased and checked for shape only; whether it exists
    is `provider_for`'s job.

    Args:
        spec: The spec, e.g. `openai:gpt-4o-mini`, `ollama:qwen2.5:7b`, `offline`.

    Raises:
        ModelSpecError: The spec is empty, has no provider or model, or has spaces.

    """
    text = spec.strip()
    if not text:
        raise ModelSpecError(spec, "is empty")
    if text.lower() == OFFLINE:
        return ModelSpec(OFFLINE, "")
    provider, colon, model = text.partition(":")
    provider = provider.strip().lower()
    model = model.strip()
    if not colon:
        raise ModelSpecError(spec, "names no provider")
    if not _PROVIDER_RE.match(provider):
        raise ModelSpecError(spec, f"has an invalid provider name {provider!r}")
    if provider == OFFLINE:
        raise ModelSpecError(spec, "gives 'offline' a model name, which it does not take")
    if not model:
        raise ModelSpecError(spec, "names no model after the colon")
    if any(ch.isspace() for ch in model):
        raise ModelSpecError(spec, "has spaces in the model name")
    return ModelSpec(provider, model)


def model_chain(
    persona: Persona, *, override: str | None = None, settings: Settings | None = None
) -> list[str]:
    """Return the ordered specs to try for a persona, always ending with `offline`.

    The first link is `override`, else the persona's `model.spec`, else
    `PERSONAE_MODEL`, else `offline`; then the persona's `model.fallbacks`.
    Duplicates are dropped and nothing follows `offline`: it never fails.

    Args:
        persona: The character.
        override: A spec chosen by the caller (e.g. `personae chat -m`).
        settings: Service settings; read from the environment when unset.

    Raises:
        ModelSpecError: A spec in the chain is malformed.

    """
    settings = settings or get_settings()
    first = override or persona.model.spec or settings.model or OFFLINE
    chain: list[str] = []
    for spec in (first, *persona.model.fallbacks, OFFLINE):
        normal = str(parse_spec(spec))
        if normal not in chain:
            chain.append(normal)
        if normal == OFFLINE:
            break
    return chain


def make_chat_model(
    spec: str,
    *,
    persona: Persona,
    settings: Settings | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    embedder: Embedder | None = None,
) -> BaseChatModel:
    """Build the chat model a spec names.

    Args:
        spec: `provider:model` or `offline`.
        persona: The character; the offline model speaks its lines.
        settings: Service settings; read from the environment when unset.
        temperature: Sampling temperature; default the persona's `model.temperature`.
        max_tokens: Reply length limit; default the persona's `model.max_tokens`.
        embedder: Embedder for the offline model; default the bundled MiniLM.

    Raises:
        ModelSpecError: The spec is malformed.
        UnknownProviderError: No provider has the spec's name.
        MissingCredentialsError: The provider needs an API key and none is set.

    Example:
        ```python
        model = make_chat_model("deepseek:deepseek-chat", persona=mira)
        ```

    """
    parsed = parse_spec(spec)
    provider = provider_for(parsed.provider)
    settings = settings or get_settings()
    if temperature is None:
        temperature = persona.model.temperature
    if max_tokens is None:
        max_tokens = persona.model.max_tokens

    if provider.kind == "offline":
        from personae.agents.offline import OfflineChatModel

        return OfflineChatModel(persona=persona, embedder=embedder)

    from langchain.chat_models import init_chat_model

    if provider.kind == "ollama":
        return init_chat_model(
            parsed.model,
            model_provider="ollama",
            base_url=settings.ollama_base_url,
            temperature=temperature,
            num_predict=max_tokens,
            client_kwargs={"timeout": settings.request_timeout},
        )

    base_url, api_key = _endpoint(parsed, provider, settings)
    options: dict[str, Any] = {
        "base_url": base_url,
        "api_key": api_key,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "timeout": settings.request_timeout,
        "max_retries": 0,
    }
    if base_url is not None:
        # Compatible servers speak Chat Completions only, never the Responses API.
        options["use_responses_api"] = False
    model: BaseChatModel = init_chat_model(parsed.model, model_provider="openai", **options)
    return model


def _endpoint(
    spec: ModelSpec, provider: Provider, settings: Settings
) -> tuple[str | None, SecretStr]:
    """Return the base URL and API key for an OpenAI-compatible provider."""
    base_url: str | None
    key: str | None
    if provider.name == "openai":
        base_url = settings.openai_base_url or settings.env("OPENAI_BASE_URL")
        secret = settings.openai_api_key
        key = secret.get_secret_value() if secret is not None else None
        key = key or settings.env("OPENAI_API_KEY")
        # A custom base URL is usually a local server that takes any key.
        required = base_url is None
    else:
        base_url = (
            settings.env(f"PERSONAE_{spec.provider.upper()}_BASE_URL")
            or settings.env(provider.base_url_env)
            or provider.base_url
        )
        key = settings.env(provider.key_env) if provider.key_env else None
        required = provider.key_required
    if not key:
        if required:
            assert provider.key_env is not None
            raise MissingCredentialsError(spec.provider, provider.key_env)
        key = _PLACEHOLDER_KEY
    return base_url, SecretStr(key)
