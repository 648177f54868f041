"""What an NPC perceives of the game world, and how it is put to the model.

`WorldView` folds `world` messages (snapshots and updates) into the scene an
NPC is in. A turn gets it as `Turn.world` (location, time, weather, who is
present with their ids and how the NPC regards them, facts, and the actions
possible now with their targets) and as `Turn.affordances`, which the
action tools enforce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from personae.integrations.game.protocol import Actor, Affordance, World
from personae.personas.model import HostAction

__all__ = ["RELATIONSHIP_TOOL", "WorldView", "regard", "relationship_action"]

RELATIONSHIP_TOOL = "change_relationship"
"""Name of the tool an NPC calls to change how it regards an actor."""


def relationship_action() -> HostAction:
    """Return the `change_relationship` action every game NPC may call."""
    return HostAction(
        name=RELATIONSHIP_TOOL,
        description=(
            "Change how you regard someone present, after something they did or said. "
            "Call it only when your feelings really change. Args: actor: the id of "
            "someone present, as listed under `present`; change: from -0.5 (they hurt "
            "or insulted you) to 0.5 (they were generous or kind); reason: why, in a "
            "few words."
        ),
        parameters={
            "type": "object",
            "properties": {
                "actor": {"type": "string", "minLength": 1},
                "change": {"type": "number", "minimum": -0.5, "maximum": 0.5},
                "reason": {"type": "string", "maxLength": 200},
            },
            "required": ["actor", "change"],
            "additionalProperties": False,
        },
    )


def regard(value: float) -> str:
    """Return how a relationship value reads to the model, e.g. `friendly (0.40)`."""
    if value <= -0.6:
        word = "hostile"
    elif value <= -0.2:
        word = "unfriendly"
    elif value < 0.2:
        word = "neutral"
    elif value < 0.6:
        word = "friendly"
    else:
        word = "close"
    return f"{word} ({value:.2f})"


@dataclass
class WorldView:
    """The scene one NPC is in, as the game last described it."""

    location: str | None = None
    time: str | None = None
    weather: str | None = None
    actors: list[Actor] | None = None
    facts: list[str] | None = None
    affordances: list[Affordance] | None = None

    def apply(self, world: World) -> None:
        """Fold a `world` message in: a snapshot replaces the scene, an update changes fields."""
        given = world.model_fields_set
        for name in ("location", "time", "weather", "actors", "facts", "affordances"):
            if world.mode == "snapshot" or name in given:
                setattr(self, name, getattr(world, name))

    def copy(self) -> WorldView:
        """Return a copy that later `apply` calls do not change."""
        return replace(
            self,
            actors=None if self.actors is None else list(self.actors),
            facts=None if self.facts is None else list(self.facts),
            affordances=None if self.affordances is None else list(self.affordances),
        )

    def actor_ids(self) -> set[str] | None:
        """Return the ids of who is present, or None when the game never said."""
        return None if self.actors is None else {a.id for a in self.actors}

    def turn_world(self, relationships: Mapping[str, float], *, actions: bool) -> dict[str, Any]:
        """Return the world state for `Turn.world`.

        Args:
            relationships: How the NPC regards actors (the game's values win).
            actions: Whether the client carries out actions (else none are listed).
        """
        world: dict[str, Any] = {}
        for name in ("location", "time", "weather"):
            value = getattr(self, name)
            if value:
                world[name] = value
        if self.actors:
            present = []
            for actor in self.actors:
                line = f"{actor.name} (id {actor.id})"
                if actor.description:
                    line += f": {actor.description}"
                value = actor.relationship
                if value is None:
                    value = relationships.get(actor.id)
                if value is not None:
                    line += f"; you regard them as {regard(value)}"
                present.append(line)
            world["present"] = present
        if self.facts:
            world["facts"] = list(self.facts)
        usable = self.affordance_map(actions=actions)
        if usable is not None:
            world["actions possible now"] = [
                f"{name} (targets: {', '.join(targets)})" if targets else name
                for name, targets in usable.items()
            ] or ["none"]
        return world

    def affordance_map(self, *, actions: bool) -> dict[str, list[str]] | None:
        """Return `Turn.affordances`: None when the game never listed any, {} without actions."""
        if not actions:
            return {}
        if self.affordances is None:
            return None
        usable: dict[str, list[str]] = {}
        for item in self.affordances:
            usable.setdefault(item.action, []).extend(item.targets)
        return usable
