"""Model specs, provider presets, credentials and the fallback chain."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_openai import ChatOpenAI

from personae.agents.models import (
    PROVIDERS,
    ModelSpec,
    known_providers,
    make_chat_model,
    model_chain,
    parse_spec,
    provider_for,
)
from personae.agents.offline import OfflineChatModel
from personae.errors import MissingCredentialsError, ModelSpecError, UnknownProviderError
from personae.personas.model import Persona
from personae.settings import Settings
from personae.testing import FakeEmbeddings


@pytest.fixture(autouse=True)
def _no_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own .env in the working directory must not leak keys in.
    monkeypatch.chdir(tmp_path)


def _persona(spec: str | None = None, fallbacks: list[str] | None = None) -> Persona:
    model: dict[str, object] = {"fallbacks": fallbacks or []}
    if spec is not None:
        model["spec"] = spec
    return Persona.model_validate({"id": "mira", "name": "Mira", "model": model})


@pytest.mark.parametrize(
    ("spec", "provider", "model"),
    [
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("ollama:qwen2.5:7b", "ollama", "qwen2.5:7b"),
        ("  deepseek:deepseek-chat ", "deepseek", "deepseek-chat"),
        ("Qwen:qwen-plus", "qwen", "qwen-plus"),
        ("offline", "offline", ""),
        ("OFFLINE", "offline", ""),
    ],
)
def test_parse_good_specs(spec: str, provider: str, model: str) -> None:
    parsed = parse_spec(spec)
    assert parsed == ModelSpec(provider, model)


def test_spec_round_trips_to_text() -> None:
    assert str(parse_spec("ollama:llama3.1:8b")) == "ollama:llama3.1:8b"
    assert str(parse_spec("offline")) == "offline"


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", "is empty"),
        ("gpt-4o", "names no provider"),
        ("openai:", "names no model"),
        (":gpt-4o", "invalid provider name"),
        ("open ai:gpt", "invalid provider name"),
        ("openai:gpt 4o", "spaces in the model name"),
        ("offline:mira", "does not take"),
    ],
)
def test_parse_bad_specs(spec: str, reason: str) -> None:
    with pytest.raises(ModelSpecError, match=reason) as caught:
        parse_spec(spec)
    assert caught.value.spec == spec
    assert "provider:model" in str(caught.value)


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(UnknownProviderError) as caught:
        make_chat_model("anthropicx:claude", persona=_persona(), settings=Settings())
    message = str(caught.value)
    assert "'anthropicx'" in message
    for name in ("openai", "ollama", "qwen", "deepseek", "glm", "offline"):
        assert name in message
    assert isinstance(caught.value, LookupError)


def test_known_providers_include_presets_and_aliases() -> None:
    names = known_providers()
    assert names == sorted(names)
    expected = {
        "openai",
        "ollama",
        "offline",
        "qwen",
        "deepseek",
        "glm",
        "zhipu",
        "moonshot",
        "qianfan",
        "ernie",
        "baichuan",
        "minimax",
        "vllm",
        "llamacpp",
        "lmstudio",
    }
    assert expected <= set(names)
    assert provider_for("zhipu") is PROVIDERS["glm"]
    assert provider_for("ernie") is PROVIDERS["qianfan"]


@pytest.mark.parametrize(
    ("spec", "url", "env"),
    [
        (
            "qwen:qwen-plus",
            "https://dashscope.aliyuncs.com/compatible-mode/v1",
            "DASHSCOPE_API_KEY",
        ),
        ("deepseek:deepseek-chat", "https://api.deepseek.com", "DEEPSEEK_API_KEY"),
        ("glm:glm-4-flash", "https://open.bigmodel.cn/api/paas/v4", "ZHIPUAI_API_KEY"),
        ("zhipu:glm-4-flash", "https://open.bigmodel.cn/api/paas/v4", "ZHIPUAI_API_KEY"),
        ("moonshot:moonshot-v1-8k", "https://api.moonshot.cn/v1", "MOONSHOT_API_KEY"),
        ("qianfan:ernie-4.0-8k", "https://qianfan.baidubce.com/v2", "QIANFAN_API_KEY"),
        ("baichuan:Baichuan4", "https://api.baichuan-ai.com/v1", "BAICHUAN_API_KEY"),
        ("minimax:MiniMax-M2", "https://api.minimaxi.com/v1", "MINIMAX_API_KEY"),
    ],
)
def test_presets_build_openai_clients_with_their_url_and_key(
    spec: str, url: str, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env, "key-123")
    model = make_chat_model(spec, persona=_persona(), settings=Settings(request_timeout=12))
    assert isinstance(model, ChatOpenAI)
    assert model.openai_api_base == url
    assert model.openai_api_key is not None
    assert model.openai_api_key.get_secret_value() == "key-123"  # type: ignore[union-attr]
    assert model.model_name == spec.split(":", 1)[1]
    # Our retry layer owns retries; the SDK must not retry underneath it.
    assert model.max_retries == 0
    assert model.request_timeout == 12
    assert model.use_responses_api is False


@pytest.mark.parametrize(
    ("spec", "env"),
    [
        ("qwen:qwen-plus", "DASHSCOPE_API_KEY"),
        ("deepseek:deepseek-chat", "DEEPSEEK_API_KEY"),
        ("glm:glm-4", "ZHIPUAI_API_KEY"),
        ("openai:gpt-4o-mini", "OPENAI_API_KEY"),
    ],
)
def test_missing_key_names_the_variable(spec: str, env: str) -> None:
    with pytest.raises(MissingCredentialsError) as caught:
        make_chat_model(spec, persona=_persona(), settings=Settings())
    assert caught.value.env_var == env
    assert env in str(caught.value)


def test_preset_base_url_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PERSONAE_QWEN_BASE_URL", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    )
    monkeypatch.setenv("DASHSCOPE_API_KEY", "k")
    model = make_chat_model("qwen:qwen-plus", persona=_persona(), settings=Settings())
    assert model.openai_api_base == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"  # type: ignore[attr-defined]


def test_alias_takes_the_canonical_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONAE_GLM_BASE_URL", "https://api.z.ai/api/paas/v4")
    monkeypatch.setenv("ZHIPUAI_API_KEY", "k")
    model = make_chat_model("zhipu:glm-4", persona=_persona(), settings=Settings())
    assert model.openai_api_base == "https://api.z.ai/api/paas/v4"  # type: ignore[attr-defined]


def test_local_presets_need_no_key() -> None:
    for spec, url in [
        ("vllm:qwen", "http://127.0.0.1:8000/v1"),
        ("llamacpp:any", "http://127.0.0.1:8080/v1"),
        ("lmstudio:any", "http://127.0.0.1:1234/v1"),
    ]:
        model = make_chat_model(spec, persona=_persona(), settings=Settings())
        assert model.openai_api_base == url  # type: ignore[attr-defined]


def test_openai_key_from_settings_or_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    model = make_chat_model("openai:gpt-4o-mini", persona=_persona(), settings=Settings())
    assert model.openai_api_key.get_secret_value() == "from-env"  # type: ignore[attr-defined]
    assert model.openai_api_base is None  # type: ignore[attr-defined]

    monkeypatch.setenv("PERSONAE_OPENAI_API_KEY", "from-personae")
    monkeypatch.setenv("PERSONAE_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    model = make_chat_model("openai:gpt-4o-mini", persona=_persona(), settings=Settings())
    assert model.openai_api_key.get_secret_value() == "from-personae"  # type: ignore[attr-defined]
    assert model.openai_api_base == "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]


def test_openai_with_custom_base_url_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONAE_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    model = make_chat_model("openai:local", persona=_persona(), settings=Settings())
    assert model.openai_api_base == "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]


def test_dotenv_file_supplies_settings_and_provider_keys(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "PERSONAE_MODEL=deepseek:deepseek-chat\nDEEPSEEK_API_KEY=from-dotenv\n"
        "PERSONAE_DEEPSEEK_BASE_URL=http://127.0.0.1:9/v1\n",
        encoding="utf-8",
    )
    settings = Settings()
    assert settings.model == "deepseek:deepseek-chat"
    model = make_chat_model(settings.model, persona=_persona(), settings=settings)
    assert model.openai_api_key.get_secret_value() == "from-dotenv"  # type: ignore[attr-defined]
    assert model.openai_api_base == "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]


def test_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("DEEPSEEK_API_KEY=from-dotenv\n", encoding="utf-8")
    monkeypatch.setenv("DEEPSEEK_API_KEY", "from-env")
    assert Settings().env("DEEPSEEK_API_KEY") == "from-env"


def test_settings_defaults_follow_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERSONAE_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    settings = Settings()
    assert settings.home == tmp_path / "xdg" / "personae"
    assert (settings.retry_attempts, settings.retry_deadline, settings.request_timeout) == (
        3,
        30,
        60,
    )
    assert settings.ollama_base_url == "http://127.0.0.1:11434"


def test_secrets_stay_out_of_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONAE_OPENAI_API_KEY", "sk-very-secret")
    settings = Settings()
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in str(settings.model_dump())
    model = make_chat_model("openai:gpt-4o-mini", persona=_persona(), settings=settings)
    assert "sk-very-secret" not in repr(model)


def test_temperature_and_max_tokens_default_to_the_persona(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "k")
    persona = Persona.model_validate(
        {"id": "mira", "name": "Mira", "model": {"temperature": 1.1, "max_tokens": 77}}
    )
    model = make_chat_model("deepseek:deepseek-chat", persona=persona, settings=Settings())
    assert (model.temperature, model.max_tokens) == (1.1, 77)  # type: ignore[attr-defined]
    model = make_chat_model(
        "deepseek:deepseek-chat",
        persona=persona,
        settings=Settings(),
        temperature=0.0,
        max_tokens=5,
    )
    assert (model.temperature, model.max_tokens) == (0.0, 5)  # type: ignore[attr-defined]


def test_ollama_uses_its_base_url_without_network() -> None:
    from langchain_ollama import ChatOllama

    settings = Settings(ollama_base_url="http://127.0.0.1:9", request_timeout=7)
    model = make_chat_model("ollama:llama3.1:8b", persona=_persona(), settings=settings)
    assert isinstance(model, ChatOllama)
    assert model.model == "llama3.1:8b"
    assert model.base_url == "http://127.0.0.1:9"
    assert model.client_kwargs == {"timeout": 7}


def test_offline_builds_the_offline_model_with_the_given_embedder() -> None:
    embedder = FakeEmbeddings()
    model = make_chat_model("offline", persona=_persona(), settings=Settings(), embedder=embedder)
    assert isinstance(model, OfflineChatModel)
    assert model.embedder is embedder


# -- the chain ---------------------------------------------------------------


def test_chain_defaults_to_offline_alone() -> None:
    assert model_chain(_persona(), override=None, settings=Settings()) == ["offline"]


def test_chain_order_override_persona_env() -> None:
    persona = _persona("openai:gpt-4o-mini", ["deepseek:deepseek-chat", "ollama:llama3.1"])
    settings = Settings(model="qwen:qwen-plus")
    assert model_chain(persona, override="glm:glm-4", settings=settings) == [
        "glm:glm-4",
        "deepseek:deepseek-chat",
        "ollama:llama3.1",
        "offline",
    ]
    assert model_chain(persona, override=None, settings=settings)[0] == "openai:gpt-4o-mini"
    assert model_chain(_persona(), override=None, settings=settings) == [
        "qwen:qwen-plus",
        "offline",
    ]


def test_chain_reads_personae_model_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONAE_MODEL", "ollama:llama3.1")
    assert model_chain(_persona(), override=None, settings=Settings()) == [
        "ollama:llama3.1",
        "offline",
    ]


def test_chain_deduplicates_and_ends_with_exactly_one_offline() -> None:
    persona = _persona(
        "openai:gpt-4o-mini",
        ["deepseek:deepseek-chat", "openai:gpt-4o-mini", " deepseek:deepseek-chat", "offline"],
    )
    chain = model_chain(persona, override=None, settings=Settings())
    assert chain == ["openai:gpt-4o-mini", "deepseek:deepseek-chat", "offline"]


def test_nothing_follows_offline_it_never_fails() -> None:
    persona = _persona("openai:gpt-4o-mini", ["deepseek:deepseek-chat"])
    assert model_chain(persona, override="offline", settings=Settings()) == ["offline"]


def test_chain_rejects_a_bad_override() -> None:
    with pytest.raises(ModelSpecError):
        model_chain(_persona(), override="gpt-4o", settings=Settings())
