"""Which persona speaks where: the most specific place that names one wins.

A persona set on a guild holds in its categories, channels and threads
unless one of them names another: thread, then channel, then category, then
guild, then `default_persona`. In direct messages it is
`direct_messages.persona`, else `default_persona`. At each place a runtime
override set with `/persona set` (kept in `DiscordState`) comes before the
config file; an override naming a persona the config no longer defines is
skipped.

Example:
    ```python
    overrides = await state.persona_overrides()
    persona_id, where = resolve_persona(config, guild.id, category_id, channel_id, None,
                                        overrides=overrides)
    ```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from personae.integrations.discord.config import DiscordConfig, place_label

__all__ = ["PersonaChoice", "resolve_persona"]


class PersonaChoice(NamedTuple):
    """The persona that speaks in a place, and why.

    Attributes:
        persona_id: A key of `DiscordConfig.personas`.
        where: Where it was set, e.g. `channel 42 (#help), set with /persona set`.
    """

    persona_id: str
    where: str


def resolve_persona(
    config: DiscordConfig,
    guild_id: int | None,
    category_id: int | None,
    channel_id: int | None,
    thread_id: int | None,
    *,
    overrides: Mapping[int, str] | None = None,
    is_dm: bool = False,
) -> PersonaChoice:
    """Return the persona of a place, inherited downward from guild to thread.

    Args:
        config: The bot's config.
        guild_id: The guild, None in direct messages.
        category_id: The channel's category, if any.
        channel_id: The channel (for a thread: its parent).
        thread_id: The thread, if any.
        overrides: Place id -> persona id set at run time (`/persona set`).
        is_dm: A direct message.

    Returns:
        The persona id and where it was set.
    """
    overrides = overrides or {}
    if is_dm:
        if config.direct_messages.persona is not None:
            return PersonaChoice(config.direct_messages.persona, "direct_messages")
        return PersonaChoice(config.default_persona, "default_persona")
    narrowest_first = (
        ("thread", "threads", thread_id), ("channel", "channels", channel_id),
        ("category", "categories", category_id), ("guild", "guilds", guild_id),
    )
    for kind, key, place_id in narrowest_first:
        if place_id is None:
            continue
        place = getattr(config, key).get(place_id)
        override = overrides.get(place_id)
        if override is not None and override in config.personas:
            return PersonaChoice(override, f"{place_label(kind, place_id, place)}, "
                                 "set with /persona set")
        if place is not None and place.persona is not None:
            return PersonaChoice(place.persona, f"{place_label(kind, place_id, place)}, "
                                 "in the config file")
    return PersonaChoice(config.default_persona, "default_persona")
