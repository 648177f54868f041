"""Which persona speaks where: inherited downward, runtime overrides at each level."""

from __future__ import annotations

from pathlib import Path

from personae.integrations.discord.config import DiscordConfig, PlaceSettings
from personae.integrations.discord.routing import PersonaChoice, resolve_persona

GUILD, CATEGORY, CHANNEL, THREAD = 1, 10, 100, 1000
OTHER_GUILD, OTHER_CHANNEL = 2, 200


def config(**places: dict[int, PlaceSettings]) -> DiscordConfig:
    personas = {name: Path(f"{name}.yaml") for name in ("guide", "innkeeper", "bard", "sage")}
    return DiscordConfig(personas=personas, default_persona="guide", **places)  # type: ignore[arg-type]


FULL = config(
    guilds={GUILD: PlaceSettings(name="Lumen", persona="bard")},
    categories={CATEGORY: PlaceSettings(name="Role-play", persona="innkeeper")},
    channels={CHANNEL: PlaceSettings(name="#tavern", persona="sage")},
    threads={THREAD: PlaceSettings(persona="guide")},
)


def test_nothing_configured_means_the_default_persona() -> None:
    choice = resolve_persona(config(), GUILD, CATEGORY, CHANNEL, THREAD)
    assert choice == PersonaChoice("guide", "default_persona")


def test_each_level_inherits_from_the_one_above() -> None:
    # A channel of the guild outside the category: the guild's persona.
    assert resolve_persona(FULL, GUILD, None, OTHER_CHANNEL, None).persona_id == "bard"
    # A channel of the category without its own: the category's.
    assert resolve_persona(FULL, GUILD, CATEGORY, OTHER_CHANNEL, None).persona_id == "innkeeper"
    # The channel's own, and its threads inherit it.
    assert resolve_persona(FULL, GUILD, CATEGORY, CHANNEL, None).persona_id == "sage"
    assert resolve_persona(FULL, GUILD, CATEGORY, CHANNEL, 999).persona_id == "sage"
    # A thread with its own persona.
    assert resolve_persona(FULL, GUILD, CATEGORY, CHANNEL, THREAD).persona_id == "guide"
    # Another guild: the default.
    assert resolve_persona(FULL, OTHER_GUILD, None, 300, None).persona_id == "guide"


def test_where_names_the_place() -> None:
    persona_id, where = resolve_persona(FULL, GUILD, CATEGORY, OTHER_CHANNEL, None)
    assert persona_id == "innkeeper"
    assert where == "category 10 (Role-play), in the config file"


def test_a_place_with_settings_but_no_persona_inherits() -> None:
    cfg = config(guilds={GUILD: PlaceSettings(persona="bard")},
                 channels={CHANNEL: PlaceSettings(name="#help")})
    assert resolve_persona(cfg, GUILD, None, CHANNEL, None).persona_id == "bard"


def test_a_runtime_override_beats_the_config_at_the_same_place() -> None:
    choice = resolve_persona(FULL, GUILD, CATEGORY, CHANNEL, None, overrides={CHANNEL: "bard"})
    assert choice == PersonaChoice("bard", "channel 100 (#tavern), set with /persona set")


def test_a_guild_override_is_inherited_but_narrower_config_still_wins() -> None:
    overrides = {GUILD: "sage"}
    assert resolve_persona(FULL, GUILD, None, OTHER_CHANNEL, None,
                           overrides=overrides).persona_id == "sage"
    assert resolve_persona(FULL, GUILD, CATEGORY, CHANNEL, None,
                           overrides=overrides).persona_id == "sage"  # channel's own: sage
    assert resolve_persona(FULL, GUILD, CATEGORY, OTHER_CHANNEL, None,
                           overrides=overrides).persona_id == "innkeeper"


def test_a_thread_override_applies_to_that_thread_only() -> None:
    overrides = {555: "bard"}
    assert resolve_persona(FULL, GUILD, CATEGORY, CHANNEL, 555,
                           overrides=overrides).persona_id == "bard"
    assert resolve_persona(FULL, GUILD, CATEGORY, CHANNEL, 556,
                           overrides=overrides).persona_id == "sage"


def test_an_override_to_a_persona_no_longer_configured_is_skipped() -> None:
    choice = resolve_persona(FULL, GUILD, CATEGORY, CHANNEL, None, overrides={CHANNEL: "gone"})
    assert choice.persona_id == "sage"


def test_direct_messages() -> None:
    assert resolve_persona(FULL, None, None, None, None, is_dm=True) == PersonaChoice(
        "guide", "default_persona")
    cfg = config(direct_messages=PlaceSettings(persona="sage"))  # type: ignore[arg-type]
    assert resolve_persona(cfg, None, None, None, None, is_dm=True) == PersonaChoice(
        "sage", "direct_messages")
