"""The tools a character may call, and the host actions it may ask for.

Three kinds of tool run in-process: built-ins (`current_time`, `roll_dice`),
your own Python functions named `module:function` in the persona's `tools`
list, and LangChain tools passed to the `Agent` in code. A persona only gets
the tools it names (plus those passed in code).

Host actions are different: they are carried out by the host (a game, a
bot), never here. Each becomes a tool whose only job is to validate the
arguments against the action's JSON Schema (and, in a game, against the
affordances of the moment: which actions and targets are usable now); a
valid call ends up in `Reply.actions`, an invalid one goes back to the model
as a tool error so it can correct itself. The host is never sent arguments
that break the schema, nor an action it did not offer.
"""

from __future__ import annotations

import datetime as dt
import importlib
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jsonschema import Draft202012Validator
from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool, ToolException, tool

from personae.agents.turn import Action
from personae.errors import ToolLoadError
from personae.personas.model import HostAction, Persona

__all__ = [
    "BUILTIN_TOOLS",
    "EMOTION_TOOL",
    "build_tools",
    "collect_actions",
    "host_action_tool",
    "load_tool",
]


@tool
def current_time(timezone: str = "UTC") -> str:
    """Tell the current date and time.

    Args:
        timezone: IANA time zone name such as "Europe/Berlin" or "Asia/Shanghai"; default UTC.
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ToolException(
            f"unknown time zone {timezone!r}; use an IANA name like 'Europe/Berlin'"
        ) from exc
    return dt.datetime.now(zone).strftime("%A %d %B %Y, %H:%M (%Z)")


_rng = random.SystemRandom()


@tool
def roll_dice(sides: int = 6, count: int = 1) -> str:
    """Roll dice and report each result and the total.

    Args:
        sides: Faces on each die, 2 to 1000 (6 for a common die, 20 for a d20).
        count: How many dice to roll, 1 to 100.
    """
    if not 2 <= sides <= 1000 or not 1 <= count <= 100:
        raise ToolException("sides must be 2-1000 and count 1-100")
    rolls = [_rng.randint(1, sides) for _ in range(count)]
    return f"rolled {count}d{sides}: {rolls}, total {sum(rolls)}"


for _builtin in (current_time, roll_dice):
    _builtin.handle_tool_error = True

EMOTION_TOOL = "show_emotion"
"""Name of the tool a persona with `emotions` gets to show one; its calls are not actions."""

BUILTIN_TOOLS: dict[str, BaseTool] = {"current_time": current_time, "roll_dice": roll_dice}
"""Tools every persona may name without writing code."""


def load_tool(name: str) -> BaseTool:
    """Return the tool a persona names: a built-in, or `module:function` imported.

    A `module:function` may be a plain function (its docstring and type hints
    become the tool's description and schema) or a ready LangChain tool.

    Raises:
        ToolLoadError: The name is unknown, the module does not import, or the
            object is not callable.
    """
    if name in BUILTIN_TOOLS:
        return BUILTIN_TOOLS[name]
    if ":" not in name:
        raise ToolLoadError(
            name,
            "is not a built-in tool",
            f"use one of {sorted(BUILTIN_TOOLS)} or 'package.module:function' for your own",
        )
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ToolLoadError(
            name,
            f"cannot be imported ({type(exc).__name__}: {exc})",
            f"check that module {module_name!r} is installed or on PYTHONPATH",
        ) from exc
    obj = getattr(module, attr, None)
    if isinstance(obj, BaseTool):
        return obj
    if not callable(obj):
        raise ToolLoadError(
            name,
            f"names nothing callable in {module_name!r}",
            f"define `def {attr}(...)` there with a docstring",
        )
    if not obj.__doc__:
        raise ToolLoadError(
            name,
            "has no docstring",
            "add one: the model reads it to know when and how to call the tool",
        )
    if _is_async(obj):
        made = StructuredTool.from_function(coroutine=obj)
    else:
        made = StructuredTool.from_function(obj)
    made.handle_tool_error = True
    return made


def _is_async(func: Callable[..., Any]) -> bool:
    import inspect

    return inspect.iscoroutinefunction(func)


def host_action_tool(action: HostAction, *, restricted: bool = True) -> BaseTool:
    """Make the tool the model calls to ask the host for `action`.

    The tool validates the arguments against the action's JSON Schema and
    answers the model; it does not carry the action out. When the turn lists
    its affordances (`Turn.affordances`, read from the run's context), a
    `restricted` action not among them is refused, and so is a `target`
    argument that is not one of the action's listed targets: the model hears
    why, the host never sees the call. A valid call is handed to the turn's
    `on_action` callback, when there is one, as soon as it is made.

    Args:
        action: The host action.
        restricted: Whether the turn's affordances apply (the emotion tool is
            always usable).
    """
    validator = Draft202012Validator(action.parameters)

    def check(arguments: dict[str, Any], runtime: ToolRuntime[Any, Any] | None) -> None:
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if errors:
            detail = "; ".join(
                f"{'/'.join(str(p) for p in e.absolute_path) or 'arguments'}: {e.message}"
                for e in errors
            )
            raise ToolException(
                f"action {action.name!r} not sent, arguments do not fit its schema: {detail}. "
                "Call it again with valid arguments, or do without it."
            )
        affordances = _affordances(runtime) if restricted else None
        if affordances is None:
            return
        if action.name not in affordances:
            usable = ", ".join(sorted(affordances)) or "none"
            raise ToolException(
                f"action {action.name!r} not sent: it is not possible here and now "
                f"(actions possible now: {usable}). Do without it."
            )
        target = arguments.get("target")
        targets = affordances[action.name]
        if target is not None and target not in targets:
            valid = ", ".join(repr(t) for t in targets) or "none"
            raise ToolException(
                f"action {action.name!r} not sent: target {target!r} is not available "
                f"(valid targets now: {valid}). Pick one of those, or do without it."
            )

    def request(runtime: ToolRuntime[Any, Any] | None = None, **arguments: Any) -> str:
        check(arguments, runtime)
        return f"Requested {action.name}; the world will carry it out."

    async def arequest(runtime: ToolRuntime[Any, Any] | None = None, **arguments: Any) -> str:
        check(arguments, runtime)
        notify = getattr(getattr(runtime, "context", None), "on_action", None)
        if notify is not None and runtime is not None:
            await notify(
                Action(name=action.name, arguments=arguments, id=runtime.tool_call_id or "")
            )
        return f"Requested {action.name}; the world will carry it out."

    return StructuredTool(
        name=action.name,
        description=action.description,
        args_schema=action.parameters,
        func=request,
        coroutine=arequest,
        handle_tool_error=True,
        metadata={"personae_host_action": True},
    )


def _affordances(runtime: ToolRuntime[Any, Any] | None) -> dict[str, list[str]] | None:
    """Return the affordances of the running turn (None: no restriction)."""
    turn = getattr(getattr(runtime, "context", None), "turn", None)
    found = getattr(turn, "affordances", None)
    return found if isinstance(found, dict) else None


def build_tools(
    persona: Persona,
    *,
    extra: Sequence[BaseTool] = (),
    named: Mapping[str, BaseTool] | None = None,
) -> list[BaseTool]:
    """Return every tool the persona may call: named tools, host actions, then `extra`.

    Args:
        persona: The character; its `tools` names what it may call.
        extra: Tools given in code, always included.
        named: Tools the caller provides by name (e.g. `remember` bound to a
            memory store); they win over built-ins of the same name.

    Raises:
        ToolLoadError: A named tool cannot be loaded, or two tools share a name.
    """
    named = named or {}
    tools = [named[name] if name in named else load_tool(name) for name in persona.tools]
    tools += [host_action_tool(action) for action in persona.actions]
    tools += list(extra)
    seen: set[str] = set()
    for item in tools:
        if item.name in seen:
            raise ToolLoadError(
                item.name,
                "is defined twice (a tool and a host action, or two tools)",
                "rename one of them",
            )
        seen.add(item.name)
    return tools


def collect_actions(messages: Sequence[BaseMessage], action_names: set[str]) -> list[Action]:
    """Return the host actions the model asked for in `messages` whose arguments were valid.

    An action counts when the model called it and its tool result is not an
    error (an error means the schema check refused it).
    """
    results = {
        m.tool_call_id: m.status for m in messages if isinstance(m, ToolMessage)
    }
    actions: list[Action] = []
    for message in messages:
        if not isinstance(message, AIMessage):
            continue
        for call in message.tool_calls:
            call_id = call.get("id") or ""
            if call["name"] in action_names and results.get(call_id) == "success":
                actions.append(Action(name=call["name"], arguments=dict(call["args"]), id=call_id))
    return actions
