"""API keys: hashed in the config, scopes per route, 401 and 403 in OpenAI's envelope,
the config file's errors, and `personae serve --new-key/--check`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import typer
from endpoint_server import make_app, running, secret
from typer.testing import CliRunner

from personae.cli.serve import register
from personae.errors import ConfigError
from personae.integrations.companion.auth import require
from personae.integrations.companion.config import hash_key, load_config, new_key

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "companion" / "service.yaml"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with running(make_app(tmp_path / "home")) as url:
        yield url


def bearer(tenant: str, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret(tenant, key)}"}


def test_no_key_or_a_wrong_key_is_401(server: str) -> None:
    bare = httpx.get(server + "/v1/models")
    assert bare.status_code == 401
    assert bare.headers["www-authenticate"] == "Bearer"
    assert bare.json()["error"]["code"] == "missing_api_key"
    with pytest.raises(openai.AuthenticationError) as caught:
        openai.OpenAI(api_key="pk-wrong", base_url=server + "/v1", max_retries=0).models.list()
    assert caught.value.code == "invalid_api_key"
    assert "pk-wrong" not in caught.value.message
    basic = httpx.get(server + "/v1/models", auth=("acme", secret("acme", "app")))
    assert basic.status_code == 401


def test_a_key_without_the_scope_is_403(server: str) -> None:
    memory = httpx.get(server + "/v1/users/ann/memories", headers=bearer("acme", "app"))
    assert memory.status_code == 403
    error = memory.json()["error"]
    assert error["type"] == "permission_error" and error["code"] == "insufficient_scope"
    assert "'memory'" in error["message"]
    admin = httpx.get(server + "/v1/admin/audit", headers=bearer("acme", "app"))
    assert admin.status_code == 403
    allowed = httpx.get(server + "/v1/admin/audit", headers=bearer("acme", "staff"))
    assert allowed.status_code == 200


def test_health_needs_no_key(server: str) -> None:
    assert httpx.get(server + "/healthz").json() == {"status": "ok"}


def test_require_returns_one_dependency_per_scope() -> None:
    assert require("care") is require("care")
    assert require("care") is not require("chat")


def test_keys_are_random_and_stored_only_as_hashes() -> None:
    one, two = new_key(), new_key()
    assert one != two and one.startswith("pk-") and len(one) > 40
    assert re.fullmatch(r"[0-9a-f]{64}", hash_key(one))
    assert hash_key(one) == hash_key(one) != hash_key(two)


def test_the_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.tenants
    assert all(p.is_file() for p in config.personas)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "service.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_plain_key_in_the_config_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = write(tmp_path, (
        "tenants:\n"
        "  acme:\n"
        "    keys:\n"
        "      - id: web\n"
        "        key: pk-very-secret-value\n"
    ))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "pk-very-secret-value" not in message
    assert "service.yaml:4: tenants.acme.keys.0: holds a plain API key" in message
    assert "--new-key" in message


def test_config_errors_name_the_line_the_field_and_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, (
        "personas: [missing.yaml]\n"
        "tenants:\n"
        "  acme:\n"
        "    keys:\n"
        "      - id: web\n"
        "        sha256: not-a-hash\n"
        "        scopes: [chat, root]\n"
        "rate_limits:\n"
        "  per_user: lots\n"
        "streamng: live\n"
    ))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "service.yaml:6: tenants.acme.keys.0.sha256: is not a SHA-256 hex digest" in message
    assert "service.yaml:7: tenants.acme.keys.0.scopes.1='root'" in message
    assert "service.yaml:9: rate_limits.per_user='lots'" in message and "30/minute" in message
    assert "service.yaml:10: streamng: is not a known field; did you mean 'streaming'?" in message


def test_the_same_secret_twice_is_refused(tmp_path: Path) -> None:
    digest = hash_key("pk-one")
    path = write(tmp_path, (
        "tenants:\n"
        f"  a: {{keys: [{{id: k, sha256: {digest}}}]}}\n"
        f"  b: {{keys: [{{id: k, sha256: {digest}}}]}}\n"
    ))
    with pytest.raises(ConfigError, match="same secret as key 'a/k'"):
        load_config(path)


def test_persona_paths_are_relative_to_the_config(tmp_path: Path) -> None:
    path = write(tmp_path, f"personas: [nope.yaml]\ntenants: {{t: {{keys: [{{id: k, sha256: "
                           f"{hash_key('x')}}}]}}}}\n")
    with pytest.raises(ConfigError, match="persona file not found") as caught:
        load_config(path)
    assert str(tmp_path / "nope.yaml") in str(caught.value)


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:  # a second command, so `serve` is a subcommand as in `personae`
        """Do nothing."""

    return app


def test_cli_new_key_prints_a_key_and_its_hash() -> None:
    result = CliRunner().invoke(cli(), ["serve", "--new-key"])
    assert result.exit_code == 0, result.output
    key = re.search(r"(pk-\S+)", result.output)
    assert key is not None
    assert f"sha256: {hash_key(key.group(1))}" in result.output


def test_cli_check_loads_the_config_and_reports_problems(tmp_path: Path) -> None:
    ok = CliRunner().invoke(cli(), ["serve", str(EXAMPLE), "--check"])
    assert ok.exit_code == 0, ok.output
    assert "ok" in ok.output and "rosie-companion" in ok.output
    bad = write(tmp_path, "tenants: {}\n")
    failed = CliRunner().invoke(cli(), ["serve", str(bad), "--check"])
    assert failed.exit_code == 1
    assert "tenants" in failed.output
