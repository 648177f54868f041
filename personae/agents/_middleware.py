"""The middleware personae adds to LangChain's agent loop, and the per-turn context it reads.

- `StylePrompt` compiles the style prompt from the messages LangGraph loaded
  (lore scanned over them, timed lore state kept in the graph state) and sets
  it as the system message.
- `RecentHistory` shows the model only the last messages of a long history.
- `Affordances` offers the model only the host actions usable right now.
- `AnsweredBy` records which link of the model chain answered.

Used by `personae.agents.agent.Agent`; not public API.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, NotRequired, Protocol

from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ModelRequest,
    ModelResponse,
)
from langchain.agents.middleware.types import PrivateStateAttr
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.tools import BaseTool

from personae.agents.turn import Action, Scope, Turn
from personae.personas.lore import LoreState
from personae.personas.prompt import CompiledPrompt

__all__ = [
    "LORE_STATE",
    "Affordances",
    "AnsweredBy",
    "Compile",
    "LoreGraphState",
    "OnAction",
    "RecentHistory",
    "StylePrompt",
    "TurnContext",
    "lore_state_of",
    "record_step",
    "said_texts",
    "turn_trace",
    "usable_actions",
]


LORE_STATE = "personae_lore"
"""Graph state key of the timed lore state (`LoreState.as_dict()`)."""

turn_trace: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "personae_turn_trace", default=None
)


OnAction = Callable[[Action], Awaitable[None]]
"""Callback told of each valid host action (and emotion) while a turn runs."""


class Compile(Protocol):
    def __call__(
        self,
        turn: Turn,
        recent: Sequence[str],
        memories: Sequence[str] = (),
        *,
        message_count: int | None = None,
        lore_state: LoreState | None = None,
    ) -> CompiledPrompt: ...


@dataclass
class TurnContext:
    """Per-turn runtime context handed to the middleware by LangGraph."""

    turn: Turn
    scope: Scope
    compile: Compile
    memories: list[str] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    prompt: CompiledPrompt | None = None
    on_action: OnAction | None = None
    """Told of each valid host action as the model asks for it (read by the action tools)."""
    model_starting: Callable[[], None] | None = None
    """Called as each model call starts, its prompt compiled (frees the turn's admission slot)."""


class LoreGraphState(AgentState[Any]):
    """The agent's graph state plus the timed lore state, checkpointed with the history."""

    personae_lore: NotRequired[Annotated[dict[str, Any], PrivateStateAttr]]


class StylePrompt(AgentMiddleware[LoreGraphState, TurnContext, Any]):
    """Sets the compiled style prompt as the system message of every model call.

    Compiled here, from the messages LangGraph already loaded, so a turn reads
    its history once; set as the system message, so the prompt never lands in
    the checkpointed history. Every model call of a turn scans lore from the
    state the turn started with; the new timed state is stored once the turn
    ends, so a tool round trip does not count as a message.
    """

    state_schema = LoreGraphState

    def _with_prompt(self, request: ModelRequest[TurnContext]) -> ModelRequest[TurnContext]:
        context = request.runtime.context
        said = said_texts(request.state["messages"])
        prior = lore_state_of(request.state)
        prompt = context.compile(
            context.turn, said, context.memories, message_count=len(said), lore_state=prior
        )
        if context.prompt is None or context.prompt.text != prompt.text:
            context.trace.append({"step": "prompt", **prompt.as_dict(full=False)})
        context.prompt = prompt
        return request.override(system_message=SystemMessage(content=prompt.text))

    def wrap_model_call(self, request: ModelRequest[TurnContext], handler: Any) -> Any:
        return handler(self._starting(self._with_prompt(request)))

    async def awrap_model_call(self, request: ModelRequest[TurnContext], handler: Any) -> Any:
        return await handler(self._starting(self._with_prompt(request)))

    @staticmethod
    def _starting(request: ModelRequest[TurnContext]) -> ModelRequest[TurnContext]:
        started = request.runtime.context.model_starting
        if started is not None:
            started()
        return request

    def after_agent(self, state: LoreGraphState, runtime: Any) -> dict[str, Any] | None:
        prompt = runtime.context.prompt
        if prompt is None or prompt.lore_scan is None:
            return None
        return {LORE_STATE: prompt.lore_scan.state.as_dict()}

    async def aafter_agent(self, state: LoreGraphState, runtime: Any) -> dict[str, Any] | None:
        return self.after_agent(state, runtime)


def lore_state_of(values: Mapping[str, Any]) -> LoreState:
    """Return the timed lore state kept in the graph state (fresh when there is none)."""
    raw = values.get(LORE_STATE)
    return LoreState.from_dict(raw if isinstance(raw, Mapping) else None)


def said_texts(messages: Sequence[BaseMessage]) -> list[str]:
    """Return the texts of the conversation's messages, oldest first, for the lore scan.

    Tool calls and results are not messages of the conversation, so they
    neither count for sticky, cooldown and delay nor get scanned.
    """
    said: list[str] = []
    for m in messages:
        if not isinstance(m, HumanMessage | AIMessage):
            continue
        # Plain string content is its own text; `.text` would build a new
        # string object for each of the (growing) history's messages, every turn.
        text = m.content if isinstance(m.content, str) else m.text
        if text:
            said.append(text)
    return said


class AnsweredBy(AgentMiddleware[Any, TurnContext, Any]):
    """Notes which link of the model chain a call went to, and whether it answered."""

    def __init__(self, labels: dict[int, tuple[int, str]]) -> None:
        super().__init__()
        self.labels = labels

    async def awrap_model_call(self, request: ModelRequest[TurnContext], handler: Any) -> Any:
        link, spec = self.labels.get(id(request.model), (-1, "?"))
        try:
            response: ModelResponse[Any] = await handler(request)
        except Exception as exc:
            record_step({"step": "model", "link": link, "model": spec, "outcome": "failed",
                     "error": type(exc).__name__})
            raise
        record_step({"step": "model", "link": link, "model": spec, "outcome": "answered"})
        return response


class RecentHistory(AgentMiddleware[Any, TurnContext, Any]):
    """Sends the model only the recent conversation; the full history stays stored.

    The cut falls on a user message, so a tool call is never separated from
    its result.
    """

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.keep = keep

    async def awrap_model_call(self, request: ModelRequest[TurnContext], handler: Any) -> Any:
        messages = request.messages
        if len(messages) > self.keep:
            humans = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
            last = humans[-1] if humans else 0
            start = next((i for i in humans if i >= len(messages) - self.keep), last)
            request = request.override(messages=messages[start:])
        return await handler(request)


class Affordances(AgentMiddleware[Any, TurnContext, Any]):
    """Offers the model only the host actions usable now (`Turn.affordances`).

    The action tools refuse the others anyway; hiding them spares the model a
    refusal and the prompt the tokens.
    """

    def __init__(self, actions: set[str]) -> None:
        super().__init__()
        self.actions = actions

    async def awrap_model_call(self, request: ModelRequest[TurnContext], handler: Any) -> Any:
        usable = request.runtime.context.turn.affordances
        if usable is not None:
            tools = [t for t in request.tools if usable_actions(t, self.actions, usable)]
            request = request.override(tools=tools)
        return await handler(request)


def usable_actions(
    tool: BaseTool | dict[str, Any], actions: set[str], usable: Mapping[str, list[str]]
) -> bool:
    name = tool.get("name") if isinstance(tool, dict) else tool.name
    return name not in actions or name in usable


def record_step(event: dict[str, Any]) -> None:
    trace = turn_trace.get()
    if trace is not None:
        trace.append(event)


