"""Test doubles for personae and for code built on it.

`FakeChatModel` replays scripted replies (tool calls included) and records
every call; `FakeEmbeddings` gives deterministic vectors without loading a
model. Both are public so that plugin and integration authors test the same
way personae does.

Example:
    ```python
    from langchain_core.messages import AIMessage
    from personae.testing import FakeChatModel

    model = FakeChatModel(responses=[
        AIMessage("", tool_calls=[{"name": "roll_dice", "args": {"sides": 6}, "id": "c1"}]),
        AIMessage("You rolled well."),
    ])
    ```
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import Field, PrivateAttr

__all__ = ["FakeChatModel", "FakeEmbeddings"]

Scripted = AIMessage | str | BaseException | Callable[[list[BaseMessage]], AIMessage | str]


class FakeChatModel(BaseChatModel):
    """A chat model that replays scripted responses and records every call.

    Each call takes the next item of `responses`: an `AIMessage` (tool calls
    allowed), a string (a plain reply), an exception (raised, to test retries
    and fallbacks) or a function of the input messages. When the script runs
    out, `default` answers.

    Args:
        responses: The script, consumed in order.
        default: Reply once the script is used up.
        name_tag: Model name reported in `response_metadata["model_name"]`.
        chunk_size: Characters per streamed chunk.
    """

    __test__ = False

    responses: list[Any] = Field(default_factory=list)
    default: str = "..."
    name_tag: str = "fake"
    chunk_size: int = 4
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _tools: list[str] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "personae-fake"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The input messages of every call so far, oldest first."""
        return self._calls

    @property
    def bound_tools(self) -> list[str]:
        """Names of the tools last bound with `bind_tools`."""
        return self._tools

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Record the tool names and return the model itself (the script decides calls)."""
        names = []
        for tool in tools:
            name = tool.get("name") if isinstance(tool, dict) else getattr(tool, "name", None)
            names.append(str(name))
        self._tools = names
        return self

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        self._calls.append(list(messages))
        item: Scripted = self.responses.pop(0) if self.responses else self.default
        if isinstance(item, BaseException):
            raise item
        if callable(item) and not isinstance(item, AIMessage):
            item = item(list(messages))
        message = AIMessage(item) if isinstance(item, str) else item
        return message.model_copy(
            update={"response_metadata": {"model_name": self.name_tag, **message.response_metadata}}
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    def _chunks(self, message: AIMessage) -> Iterator[ChatGenerationChunk]:
        text = message.text
        pieces = [text[i : i + self.chunk_size] for i in range(0, len(text), self.chunk_size)]
        for piece in pieces or [""]:
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                tool_call_chunks=[
                    {"name": c["name"], "args": _json(c["args"]), "id": c["id"], "index": i}
                    for i, c in enumerate(message.tool_calls)
                ],
                response_metadata=message.response_metadata,
                additional_kwargs=message.additional_kwargs,
                chunk_position="last",
            )
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._next(messages)):
            if run_manager is not None and chunk.text:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._next(messages)):
            if run_manager is not None and chunk.text:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def _json(value: object) -> str:
    import json

    return json.dumps(value)


class FakeEmbeddings:
    """Deterministic bag-of-words embeddings of a fixed size; no model is loaded.

    Texts that share words get similar vectors, so similarity-based code
    behaves sensibly in tests.

    Args:
        dimension: Vector size.
    """

    __test__ = False

    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension
        self.model_id = f"fake-bow-{dimension}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Return one unit vector per text."""
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * self.dimension
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.sha256(word.encode("utf-8")).digest()
            vector[digest[0] % self.dimension] += 1.0 if digest[1] % 2 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]
