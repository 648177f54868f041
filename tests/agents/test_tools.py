"""The tool registry: built-ins, user functions named module:function, LangChain tools."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from langchain_core.tools import tool

from personae.agents.tools import BUILTIN_TOOLS, build_tools, host_action_tool, load_tool
from personae.errors import ToolLoadError
from personae.personas.model import HostAction, Persona


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "npc_tools.py").write_text(textwrap.dedent('''
        from langchain_core.tools import tool

        def price_of(item: str, quantity: int = 1) -> str:
            """Tell the price of an item on the menu.

            Args:
                item: The item.
                quantity: How many.
            """
            return f"{quantity} {item} cost {2 * quantity} silver"

        async def weather(town: str) -> str:
            """Tell the weather in a town."""
            return f"rain in {town}"

        def undocumented(x: int) -> int:
            return x

        @tool
        def ready_made(x: int) -> int:
            """A LangChain tool defined by the user."""
            return x + 1

        NOT_CALLABLE = 3
    '''), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "npc_tools"


def test_builtins() -> None:
    assert set(BUILTIN_TOOLS) >= {"current_time", "roll_dice"}
    out = load_tool("roll_dice").invoke({"sides": 6, "count": 3})
    assert out.startswith("rolled 3d6: [") and "total" in out
    assert "bad" not in load_tool("current_time").invoke({"timezone": "Asia/Shanghai"})
    assert "unknown time zone" in load_tool("current_time").invoke({"timezone": "Mars/Base"})


async def test_user_functions(user_module: str) -> None:
    price = load_tool(f"{user_module}:price_of")
    assert price.name == "price_of" and "price" in price.description
    assert price.invoke({"item": "ale", "quantity": 2}) == "2 ale cost 4 silver"
    weather = load_tool(f"{user_module}:weather")
    assert await weather.ainvoke({"town": "Millbrook"}) == "rain in Millbrook"
    assert load_tool(f"{user_module}:ready_made").invoke({"x": 1}) == 2


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("fly", "is not a built-in tool"),
        ("no_such_module_xyz:f", "cannot be imported"),
        ("npc_tools:NOT_CALLABLE", "names nothing callable"),
        ("npc_tools:missing", "names nothing callable"),
        ("npc_tools:undocumented", "has no docstring"),
    ],
)
def test_tool_load_errors(user_module: str, name: str, fragment: str) -> None:
    with pytest.raises(ToolLoadError, match=fragment):
        load_tool(name)


def test_build_tools_combines_named_actions_and_extra(user_module: str) -> None:
    @tool
    def whisper(text: str) -> str:
        """Whisper something."""
        return text

    persona = Persona.model_validate({
        "id": "x", "name": "X", "tools": ["roll_dice", f"{user_module}:price_of"],
        "actions": [{"name": "open_door", "description": "Open the door."}],
    })
    assert [t.name for t in build_tools(persona, extra=[whisper])] == [
        "roll_dice", "price_of", "open_door", "whisper"
    ]
    with pytest.raises(ToolLoadError, match="defined twice"):
        build_tools(persona, extra=[load_tool("roll_dice")])


def test_host_action_validates_arguments() -> None:
    action = host_action_tool(HostAction(
        name="give_item", description="Give an item.",
        parameters={"type": "object", "properties": {"item": {"enum": ["ale"]}},
                    "required": ["item"]},
    ))
    assert "Requested give_item" in action.invoke({"item": "ale"})
    refused = action.invoke({"item": "sword"})
    assert "not sent" in refused and "'sword' is not one of ['ale']" in refused
