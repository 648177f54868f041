"""`AgentVoice`: check-ins written by the persona's own `Agent`.

The production `generate(persona_id, user, purpose, tenant=...)` of
`CareService`. With a model, the agent gets an instruction turn in a
conversation of its own (the user's tenant and id, channel `care-voice`), so
the instruction never enters the user's chat history, and two tenants' users
with the same id never share it. With the `offline` model, or when the reply came from it, the
check-in is one of the persona's authored greetings, taken in turn.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from personae.personas.macros import MACRO_RE, expand
from personae.scope import Scope

if TYPE_CHECKING:
    from personae.agents.agent import Agent

__all__ = ["VOICE_CHANNEL", "AgentVoice"]

VOICE_CHANNEL = "care-voice"
"""Channel of the scopes (the user's own tenant and id) in which check-ins are written."""

_INSTRUCTION = (
    "[Instruction from the care service, not from {user}: it is time for a {purpose}. "
    "Write one short, warm message to {user} in your own voice, in one or two sentences, "
    "ending with a simple question. Say only the message.]"
)


def _names_user(line: str) -> bool:
    return any((m.group(1) or m.group(2)).lower() == "user" for m in MACRO_RE.finditer(line))


class AgentVoice:
    """Writes check-ins in a persona's voice with its `Agent`.

    Args:
        agent_for: Returns the `Agent` of a persona id (plain or async function).
        fallback: Said when the persona has no greetings and the model gave nothing.

    Example:
        ```python
        voice = AgentVoice(agents.__getitem__)
        text = await voice("mira", "ann", "check-in about the morning walk")
        ```
    """

    def __init__(self, agent_for: Callable[[str], Agent | Awaitable[Agent]], *,
                 fallback: str = "Hello! How are you today?") -> None:
        self._agent_for = agent_for
        self.fallback = fallback
        self._turns: dict[tuple[str, str], int] = {}

    def _greeting(self, agent: Agent, user: str) -> str:
        lines = [line for line in agent.persona.greetings if line.strip()]
        # A user id is not a name to greet someone by: prefer lines without `{{user}}`.
        plain = [line for line in lines if not _names_user(line)]
        lines = plain or lines
        if not lines:
            return self.fallback
        key = (agent.persona.id, user)
        turn = self._turns.get(key, 0)
        self._turns[key] = turn + 1
        return expand(lines[turn % len(lines)], char=agent.persona.name)

    async def __call__(
        self, persona_id: str, user: str, purpose: str, *, tenant: str | None = None
    ) -> str:
        """Return a check-in message from `persona_id` to `user`.

        Args:
            persona_id: The persona whose voice to use.
            user: Who is checked on.
            purpose: What the message is for, e.g. `check-in about lunch`.
            tenant: The user's tenant; the writing conversation is kept in it.
        """
        found = self._agent_for(persona_id)
        agent: Agent = await found if inspect.isawaitable(found) else found
        if agent.chain[0][0] == "offline":
            return self._greeting(agent, user)
        from personae.agents.turn import Turn

        scope = Scope(persona=persona_id, tenant=tenant, user=user, channel=VOICE_CHANNEL)
        reply = await agent.respond(
            Turn(text=_INSTRUCTION.format(user=user, purpose=purpose), scope=scope)
        )
        if reply.offline or "error" in reply.flags or not reply.text.strip():
            return self._greeting(agent, user)
        return reply.text.strip()
