"""`--model scripted:PATH`: canned replies per scenario and turn, played by `FakeChatModel`.

A scripted file makes a suite runnable in CI without any model. It gives, for
each scenario id, the reply of each turn: a list in turn order (`null` for a
turn the model is not asked, such as one the safety layer answers), or a
mapping from turn number (1-based) to reply. A reply is a text, or a mapping
with `text`, the tool and host-action `calls` the model makes first, and an
`emotion`. An optional `judge` section gives rubric verdicts for
`--judge scripted:PATH`, by scenario and turn number.

```yaml
replies:
  room-for-the-night:
    - text: I do. Two silver a night, breakfast included.
      calls: [{name: rent_room, arguments: {nights: 1}}]
      emotion: happy
    - Safe roads, traveller.
judge:
  room-for-the-night:
    1: {passed: true, reason: Warm, and names the price.}
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from personae.agents.tools import EMOTION_TOOL
from personae.errors import ConfigError
from personae.evals.loading import check_file

__all__ = ["CannedCall", "CannedReply", "RubricVerdict", "ScriptedReplies", "load_scripted"]

class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class CannedCall(_Section):
    """A tool or host action the scripted model calls."""

    name: str = Field(min_length=1)
    """Tool or action name, e.g. `rent_room`."""
    arguments: dict[str, Any] = Field(default_factory=dict)
    """Its arguments."""


class CannedReply(_Section):
    """What the scripted model answers on one turn."""

    text: str = ""
    """The reply text."""
    calls: list[CannedCall] = Field(default_factory=list)
    """Tools and host actions called before the text."""
    emotion: str | None = None
    """An emotion shown (a `show_emotion` call)."""

    def messages(self, call_prefix: str) -> list[Any]:
        """Return the model's messages for the turn: tool calls first, then the text."""
        from langchain_core.messages import AIMessage

        calls = [*self.calls]
        if self.emotion is not None:
            calls.append(CannedCall(name=EMOTION_TOOL, arguments={"emotion": self.emotion}))
        if not calls:
            return [AIMessage(self.text)]
        tool_calls = [
            {"name": c.name, "args": dict(c.arguments), "id": f"{call_prefix}-{i}",
             "type": "tool_call"}
            for i, c in enumerate(calls, 1)
        ]  # fmt: skip
        return [AIMessage("", tool_calls=tool_calls), AIMessage(self.text)]


class RubricVerdict(_Section):
    """A judge's decision on one rubric."""

    passed: bool
    """Whether the reply meets the criterion."""
    reason: str = ""
    """Why, in one or two sentences."""


def _reply(value: object) -> object:
    return {"text": value} if isinstance(value, str) else value


def _turns(value: object) -> object:
    """Turn a list in turn order into a mapping from turn number (1-based)."""
    if isinstance(value, list):
        return {i: item for i, item in enumerate(value, 1) if item is not None}
    return value


Reply = Annotated[CannedReply, BeforeValidator(_reply)]
TurnReplies = Annotated[dict[int, Reply], BeforeValidator(_turns)]


class ScriptedReplies(_Section):
    """A scripted model's replies, and optionally a scripted judge's verdicts."""

    replies: dict[str, TurnReplies] = Field(default_factory=dict)
    """Per scenario id: the reply of each turn (a list in turn order, or turn number: reply)."""
    judge: dict[str, dict[int, RubricVerdict]] = Field(default_factory=dict)
    """Per scenario id and turn number: the rubric verdict of `--judge scripted:PATH`."""

    def reply(self, scenario: str, turn: int) -> CannedReply | None:
        """Return the canned reply of a turn (1-based), or None when there is none."""
        return self.replies.get(scenario, {}).get(turn)

    def verdict(self, scenario: str, turn: int) -> RubricVerdict | None:
        """Return the scripted verdict of a turn's rubric, or None when there is none."""
        return self.judge.get(scenario, {}).get(turn)


def load_scripted(path: str | Path) -> ScriptedReplies:
    """Read a scripted-replies file (YAML or JSON).

    Raises:
        ConfigError: The file cannot be read or validated; every problem is
            named by file, line and field.

    """
    scripted, problems = check_file(
        path, ScriptedReplies, start="start with `replies:` and a scenario id under it"
    )
    if scripted is None:
        raise ConfigError("\n".join(str(p) for p in problems))
    return scripted
