"""The Discord bot config: the example loads, errors name file:line:field and the fix,
and the token never shows anywhere."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from personae.errors import ConfigError, DiscordConfigError
from personae.integrations.discord.config import (
    TOKEN_ENV,
    DiscordConfig,
    LimitSettings,
    load_config,
)
from personae.personas.loading import load_persona

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "discord" / "bot.yaml"
SECRET = "MTIzNDU2Nzg5.secret-token-value.abcdef"


def write(tmp_path: Path, text: str, name: str = "bot.yaml") -> Path:
    personas = tmp_path / "personas"
    personas.mkdir(exist_ok=True)
    for pid in ("guide", "innkeeper"):
        (personas / f"{pid}.yaml").write_text(f"schema: personae/v1\nid: {pid}\nname: {pid}\n")
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


MINIMAL = """
    personas:
      guide: personas/guide.yaml
"""

TWO = """
    personas:
      guide: personas/guide.yaml
      innkeeper: personas/innkeeper.yaml
    default_persona: guide
"""


def test_example_config_loads_with_both_personas() -> None:
    config = load_config(EXAMPLE)
    assert set(config.personas) == {"guide", "innkeeper"}
    assert config.default_persona == "guide"
    for file in config.personas.values():
        assert file.is_absolute() and file.is_file()
        load_persona(file)
    assert config.categories[1100000000000000010].persona == "innkeeper"
    assert config.channels[1100000000000000100].policy.always_on is True
    assert config.limits.daily_quota == 100
    assert config.admin_roles == ["Moderator"]


def test_persona_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, MINIMAL)
    monkeypatch.chdir(ROOT)  # not the config's directory
    config = load_config(path)
    assert config.personas["guide"] == (tmp_path / "personas" / "guide.yaml").resolve()


def test_the_only_persona_is_the_default(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, MINIMAL)).default_persona == "guide"
    assert DiscordConfig(personas={"solo": Path("x.yaml")}).default_persona == "solo"


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.streaming is True and config.webhooks is True
    assert config.limits == LimitSettings()
    assert config.policy.mention is None  # unset: the built-in default applies later
    assert config.token is None


# --- the token -------------------------------------------------------------------------


def test_token_comes_from_the_environment_as_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, SECRET)
    config = load_config(write(tmp_path, MINIMAL))
    assert isinstance(config.token, SecretStr)
    assert config.require_token().get_secret_value() == SECRET


def test_token_argument_beats_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    config = load_config(write(tmp_path, MINIMAL), token="from-arg")
    assert config.require_token().get_secret_value() == "from-arg"


def test_token_is_read_from_a_dotenv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, MINIMAL)
    (tmp_path / ".env").write_text(f"{TOKEN_ENV}={SECRET}\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(path).require_token().get_secret_value() == SECRET


def test_token_never_shows_in_repr_str_dumps_or_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(TOKEN_ENV, SECRET)
    with caplog.at_level(logging.DEBUG):
        config = load_config(write(tmp_path, MINIMAL))
        logging.getLogger("personae").info("config: %s %r", config, config)
    shown = [repr(config), str(config), str(config.model_dump()), config.model_dump_json(),
             repr(config.token), str(config.token), f"{config}", caplog.text]
    for text in shown:
        assert SECRET not in text
    assert "token" not in config.model_dump()


def test_token_never_shows_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, SECRET)
    path = write(tmp_path, MINIMAL + "    streaming: maybe\n")
    with pytest.raises(DiscordConfigError) as caught:
        load_config(path)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.problems)


def test_missing_token_says_which_variable_to_set(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(DiscordConfigError, match=TOKEN_ENV) as caught:
        config.require_token()
    assert isinstance(caught.value, ConfigError)


def test_blank_token_counts_as_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "  ")
    with pytest.raises(DiscordConfigError, match=TOKEN_ENV):
        load_config(write(tmp_path, MINIMAL)).require_token()


def test_token_written_in_the_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + f"    token: {SECRET}\n")
    with pytest.raises(DiscordConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert SECRET not in message
    assert f"{path}:3: token:" in message
    assert TOKEN_ENV in message


# --- errors ----------------------------------------------------------------------------


def problems(path: Path) -> str:
    with pytest.raises(DiscordConfigError) as caught:
        load_config(path)
    assert isinstance(caught.value, ConfigError)
    return str(caught.value)


def test_unknown_field_suggests_the_right_one_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + """
    channels:
      "42":
        policy:
          talkativness: 0.2
    """)
    message = problems(path)
    assert f"{path}:7: channels.42.policy.talkativness" in message
    assert "did you mean 'talkativeness'?" in message


def test_out_of_range_value_names_the_bound(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "    policy:\n      talkativeness: 1.5\n")
    message = problems(path)
    assert f"{path}:4: policy.talkativeness=1.5: must be at most 1" in message


def test_path_is_not_a_config_field(tmp_path: Path) -> None:
    message = problems(write(tmp_path, MINIMAL + "    path: elsewhere.yaml\n"))
    assert "path: is not a known field" in message


def test_channel_name_instead_of_id_explains_copy_id(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "    channels:\n      help:\n        always_on: true\n")
    message = problems(path)
    assert "channels.help" in message and "is not a Discord id" in message
    assert "Copy ID" in message


def test_unknown_persona_id_suggests_a_defined_one(tmp_path: Path) -> None:
    path = write(tmp_path, TWO + '    threads:\n      "7":\n        persona: inkeeper\n')
    message = problems(path)
    assert f"{path}:7: threads.7.persona='inkeeper'" in message
    assert "did you mean 'innkeeper'?" in message


def test_several_personas_need_a_default(tmp_path: Path) -> None:
    text = TWO.replace("    default_persona: guide\n", "")
    message = problems(write(tmp_path, text))
    assert "default_persona" in message and "guide, innkeeper" in message


def test_missing_persona_file_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, TWO + "    direct_messages:\n      persona: guide\n")
    path.write_text(path.read_text().replace("personas/innkeeper.yaml", "persons/inn.yaml"))
    message = problems(path)
    assert f"{path}:3: personas.innkeeper='persons/inn.yaml': persona file not found" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "    streaming: maybe\n    limits:\n      daily_quota: 0\n")
    with pytest.raises(DiscordConfigError) as caught:
        load_config(path)
    fields = [p.field for p in caught.value.problems]
    assert fields == ["streaming", "limits.daily_quota"]
    assert "expected true or false" in str(caught.value)
    assert "must be at least 1" in str(caught.value)


def test_invalid_yaml_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "personas:\n  guide: [unclosed\n")
    assert "invalid YAML" in problems(path)
    assert problems(path).startswith(f"{path}:")


def test_missing_and_empty_files(tmp_path: Path) -> None:
    assert "file not found" in problems(tmp_path / "nope.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert "start with `personas:`" in problems(empty)


def test_missing_personas_section(tmp_path: Path) -> None:
    message = problems(write(tmp_path, "streaming: true\n"))
    assert "personas: is required but missing" in message
    assert "guide: ../personas/guide.yaml" in message


def test_config_built_in_code_checks_persona_references() -> None:
    with pytest.raises(ValidationError, match="not a persona id"):
        DiscordConfig(personas={"a": Path("a.yaml")}, default_persona="b")
