"""The `remember` and `recall` tools: the model reads and writes long-term memory itself.

A persona gets them by naming them in `tools`. Both act only within the scope
of the turn that calls them (taken from the run's context, never from the
model's arguments), so a model cannot read or write another user's memories.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from langchain.tools import ToolRuntime
from langchain_core.tools import BaseTool, StructuredTool, ToolException

from personae.memory.records import NewMemory
from personae.memory.scoring import recall as recall_memories
from personae.scope import Scope

if TYPE_CHECKING:
    from personae.memory.store import MemoryStore

__all__ = ["MEMORY_TOOLS", "memory_tools"]

MEMORY_TOOLS = ("remember", "recall")
"""Tool names a persona may list to let the model use memory directly."""


def _scope_of(runtime: ToolRuntime[Any, Any]) -> Scope:
    context = runtime.context
    scope = getattr(context, "scope", None)
    if not isinstance(scope, Scope):
        raise ToolException("memory is not available in this conversation")
    return scope


def memory_tools(
    store: Callable[[], MemoryStore], *, names: tuple[str, ...] = MEMORY_TOOLS
) -> list[BaseTool]:
    """Return the memory tools named in `names`; `store()` gives the store when a tool runs."""

    async def remember(text: str, importance: int = 5, *, runtime: ToolRuntime[Any, Any]) -> str:
        if not text.strip():
            raise ToolException("nothing to remember: give the fact in plain words")
        scope = _scope_of(runtime)
        memory = NewMemory(text=text.strip(), kind="fact", importance=max(1, min(10, importance)))
        await asyncio.to_thread(store().add, scope, [memory])
        return "Remembered."

    async def recall(query: str, *, runtime: ToolRuntime[Any, Any]) -> str:
        scope = _scope_of(runtime)
        found = await asyncio.to_thread(recall_memories, store(), scope, query, limit=5)
        if not found.items:
            return "No memories about that."
        return "\n".join(f"- {item.record.text}" for item in found.items)

    made = {
        "remember": StructuredTool.from_function(
            coroutine=remember,
            name="remember",
            description=(
                "Remember a fact about the person you talk to, for later conversations. "
                "Args: text: the fact in plain words, e.g. 'Ann's granddaughter is Mia'; "
                "importance: 1 (trivial) to 10 (life-changing)."
            ),
            handle_tool_error=True,
        ),
        "recall": StructuredTool.from_function(
            coroutine=recall,
            name="recall",
            description=(
                "Search your long-term memory of the person you talk to. "
                "Args: query: what you want to remember, in plain words."
            ),
            handle_tool_error=True,
        ),
    }
    return [made[name] for name in names if name in made]
