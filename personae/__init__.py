"""personae: characters that talk.

A character is written once as a persona file and runs as an `Agent`: an LLM
with tools, a style prompt and long-term memory, in a game, in Discord or
behind an HTTP endpoint.

Example:
    ```python
    from personae import Agent

    agent = Agent.from_file("examples/personas/innkeeper.yaml")
    print(agent.respond_sync("Have you got a room for the night?").text)
    ```

Names are imported lazily, so `import personae` stays fast and never pulls in
LangChain, torch or an integration's dependencies until they are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from personae.agents.agent import Agent
    from personae.agents.turn import Action, Reply, Scope, Turn, Usage
    from personae.errors import (
        ConfigError,
        PersonaeError,
        PersonaFileError,
        ProviderError,
    )
    from personae.personas.loading import load_persona
    from personae.personas.model import Persona

__all__ = [
    "Action",
    "Agent",
    "ConfigError",
    "Persona",
    "PersonaFileError",
    "PersonaeError",
    "ProviderError",
    "Reply",
    "Scope",
    "Turn",
    "Usage",
    "__version__",
    "load_persona",
]

__version__ = "0.1.0"

_WHERE = {
    "Agent": "personae.agents.agent",
    "Action": "personae.agents.turn",
    "Reply": "personae.agents.turn",
    "Scope": "personae.agents.turn",
    "Turn": "personae.agents.turn",
    "Usage": "personae.agents.turn",
    "ConfigError": "personae.errors",
    "PersonaeError": "personae.errors",
    "PersonaFileError": "personae.errors",
    "ProviderError": "personae.errors",
    "load_persona": "personae.personas.loading",
    "Persona": "personae.personas.model",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'personae' has no attribute {name!r}")
