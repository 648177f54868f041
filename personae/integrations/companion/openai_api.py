"""OpenAI-compatible routes: `POST /v1/chat/completions` (plain and streamed) and `/v1/models`.

Any OpenAI client (the `openai` SDK, Open WebUI, SillyTavern) connects
unchanged: `model` is a persona id, as listed by `GET /v1/models`.

How a chat request becomes a turn:

- The client sends the whole conversation every time; the character keeps
  its own history per user. Only the **last user message** is the turn;
  earlier messages are not read, and a regenerated answer is a new turn.
- A system (or developer) message is ignored by default: the persona's own
  prompt decides how the character speaks. With `system_messages: context`
  in the service config, its text reaches the character as context instead.
- Sampling options (`temperature`, `max_tokens`...), `tools` and unknown
  fields are accepted and ignored: the persona sets them. `n` must be 1.
- Whose conversation it is: see `personae.integrations.companion.auth.resolve_user`.

Replies carry a `personae` object next to OpenAI's fields: `flags` (e.g.
`offline` when the character answered from its authored lines only), the
answering `model`, `emotion` and host `actions`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from personae.agents.turn import Reply, Turn
from personae.integrations.companion.auth import ApiError, Principal, rate_limited, require
from personae.scope import Scope

if TYPE_CHECKING:
    from personae.integrations.companion.app import CompanionService

__all__ = [
    "ERROR_RESPONSES",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessage",
    "ErrorEnvelope",
    "Model",
    "ModelList",
    "router",
]

router = APIRouter(prefix="/v1", tags=["openai"])
log = logging.getLogger("personae.companion")

_SSE_HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ErrorDetail(BaseModel):
    """What went wrong, as OpenAI reports it."""

    message: str
    """What went wrong and how to fix it."""
    type: str
    """Error type, e.g. `invalid_request_error`, `permission_error`, `requests`."""
    param: str | None = None
    """The request field at fault, if one is."""
    code: str | None = None
    """Machine-readable code, e.g. `invalid_api_key`, `model_not_found`."""


class ErrorEnvelope(BaseModel):
    """OpenAI's error body: `{"error": {...}}`."""

    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorEnvelope, "description": description}


ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    400: _error("The request is malformed; `param` names the field."),
    401: _error("No API key, or not a valid one."),
    403: _error("The key lacks the scope this route needs."),
    404: _error("No such persona, user or item in your tenant."),
    429: _error("Rate limit reached; wait `retry-after` seconds."),
}
"""Error responses every authenticated route may give, for the OpenAPI document."""


class ContentPart(BaseModel):
    """One part of a message's content; only `text` parts are read."""

    model_config = ConfigDict(extra="allow")

    type: str
    """`text`, `image_url`, `input_audio`, ..."""
    text: str | None = None
    """The text of a `text` part."""


class ChatMessage(BaseModel):
    """One message of the conversation the client sends."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    """Who said it."""
    content: str | list[ContentPart] | None = None
    """The text, or a list of content parts."""
    name: str | None = None
    """Display name of who speaks; given to the character as the speaker."""

    def text(self) -> str:
        """Return the message's text, content parts joined by newlines."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if p.type == "text" and p.text)


class StreamOptions(BaseModel):
    """Options of a streamed response."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool | None = None
    """Send a last chunk with token usage before `[DONE]`."""


class ChatCompletionRequest(BaseModel):
    """A chat completion request, as OpenAI defines it; unknown fields are ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    """The persona id (see `GET /v1/models`)."""
    messages: list[ChatMessage] = Field(min_length=1)
    """The conversation; the last user message is the turn."""
    stream: bool | None = False
    """Stream the reply as server-sent events of `chat.completion.chunk`."""
    stream_options: StreamOptions | None = None
    """Options of the stream."""
    user: str | None = None
    """Your id of the end user: conversations and memories are kept per user."""
    safety_identifier: str | None = None
    """Same as `user`, OpenAI's newer name for it; `user` wins when both are given."""
    n: int | None = None
    """Number of choices; only 1 is supported."""


class Model(BaseModel):
    """A persona, listed as a model."""

    id: str
    """The persona id: pass it as `model`."""
    object: Literal["model"] = "model"
    created: int
    """Unix time the service loaded it."""
    owned_by: str = "personae"
    name: str
    """The character's display name."""


class ModelList(BaseModel):
    """The personas a key's tenant may talk to."""

    object: Literal["list"] = "list"
    data: list[Model]


class AssistantMessage(BaseModel):
    """The character's answer."""

    role: Literal["assistant"] = "assistant"
    content: str
    refusal: str | None = None


class Choice(BaseModel):
    """The one choice of a completion."""

    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class CompletionUsage(BaseModel):
    """Tokens spent on the turn (0 when the model does not report them)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class PersonaeInfo(BaseModel):
    """How the character answered, beyond OpenAI's fields."""

    flags: list[str] = Field(default_factory=list)
    """E.g. `offline` (answered from authored lines only), `fallback`, `error`, safety flags."""
    model: str = ""
    """Spec of the model that answered (`offline`, `safety`, `openai:...`)."""
    emotion: str | None = None
    """Emotion the character showed, if the persona has emotions."""
    actions: list[dict[str, Any]] = Field(default_factory=list)
    """Host actions the character asked for (name, arguments, id)."""


class ChatCompletion(BaseModel):
    """A chat completion, as OpenAI defines it, plus `personae`."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    """The persona id."""
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: str | None = None
    personae: PersonaeInfo


class ChunkDelta(BaseModel):
    """What a chunk adds to the answer."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    """The one choice of a chunk."""

    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed completion; the stream ends with `data: [DONE]`."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None
    personae: PersonaeInfo | None = None


def _service(request: Request) -> CompanionService:
    service: CompanionService = request.app.state.companion
    return service


@router.get("/models", responses=ERROR_RESPONSES, summary="List the personas as models")
async def list_models(
    request: Request, who: Annotated[Principal, Depends(require("chat"))]
) -> ModelList:
    """List the personas your tenant may talk to; each `id` is a `model` for chat completions."""
    service = _service(request)
    return ModelList(data=[service.model_card(pid) for pid in service.personas_of(who.tenant)])


@router.get("/models/{model}", responses=ERROR_RESPONSES, summary="Describe one persona")
async def get_model(
    request: Request, model: str, who: Annotated[Principal, Depends(require("chat"))]
) -> Model:
    """Describe one persona your tenant may talk to."""
    service = _service(request)
    if model not in service.personas_of(who.tenant):
        raise _no_model(model)
    return service.model_card(model)


def _no_model(model: str) -> ApiError:
    return ApiError(
        404,
        f"the model {model!r} does not exist or your key may not use it; "
        "GET /v1/models lists the personas you can talk to",
        param="model",
        code="model_not_found",
    )


_CHAT_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "The completion; with `stream: true`, server-sent events of "
        "`chat.completion.chunk` objects, each `data: {json}`, ending `data: [DONE]`.",
        "content": {"text/event-stream": {"schema": {
            "type": "object",
            "description": "One server-sent event (OpenAPI 3.1: the schema describes each event).",
            "required": ["data"],
            "properties": {"data": {
                "type": "string",
                "description": "A `chat.completion.chunk` as JSON; an error envelope if the "
                "turn failed; `[DONE]` ends the stream.",
                "anyOf": [
                    {"const": "[DONE]"},
                    {"contentMediaType": "application/json",
                     "contentSchema": {"$ref": "#/components/schemas/ChatCompletionChunk"}},
                    {"contentMediaType": "application/json",
                     "contentSchema": {"$ref": "#/components/schemas/ErrorEnvelope"}},
                ],
            }},
        }}},
    },
    **ERROR_RESPONSES,
}


_EXAMPLES: Final[dict[str, Any]] = {
    "plain": {"summary": "One message", "value": {
        "model": "rosie-companion", "user": "ann",
        "messages": [{"role": "user", "content": "Good morning, Rosie!"}]}},
    "streamed": {"summary": "Streamed", "value": {
        "model": "rosie-companion", "user": "ann", "stream": True,
        "messages": [{"role": "user", "content": "How are you today?"}]}},
}


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses=_CHAT_RESPONSES,
    summary="Talk to a persona",
)
async def chat_completions(
    request: Request,
    body: Annotated[ChatCompletionRequest, Body(openapi_examples=_EXAMPLES)],
    who: Annotated[Principal, Depends(require("chat"))],
) -> Any:
    """Answer the last user message as the persona named by `model`.

    The client may send the whole conversation: only the last user message
    is read, since the character keeps its own history per user.
    """
    service = _service(request)
    if body.model not in service.personas_of(who.tenant):
        raise _no_model(body.model)
    if body.n not in (None, 1):
        raise ApiError(400, f"n={body.n} is not supported; a persona gives one answer, send n=1",
                       param="n", code="unsupported_value")
    user = service.user_of(request, who, body.user or body.safety_identifier)
    decision = service.keyring.hit_user(who.tenant, user)
    if decision is not None and not decision.allowed:
        raise rate_limited(decision, "this user")
    turn = _turn(body, Scope(persona=body.model, tenant=who.tenant, user=user),
                 max_chars=service.config.max_message_chars,
                 context=service.config.system_messages == "context")
    await service.users.aseen(who.tenant, user, body.model)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _sse(service, who, turn, body.model, include_usage=include_usage),
            media_type="text/event-stream",
            headers=_SSE_HEADERS,
        )
    reply = await service.respond(who, turn)
    completion = ChatCompletion(
        id=_completion_id(),
        created=int(time.time()),
        model=body.model,
        choices=[Choice(message=AssistantMessage(content=reply.text))],
        usage=_usage(reply),
        personae=_info(reply),
    )
    return JSONResponse(completion.model_dump(mode="json"))


def _turn(body: ChatCompletionRequest, scope: Scope, *, max_chars: int, context: bool) -> Turn:
    last = next((m for m in reversed(body.messages) if m.role == "user"), None)
    if last is None:
        raise ApiError(400, "messages holds no user message; add one with role 'user' (the "
                       "last user message is what the character answers)", param="messages",
                       code="no_user_message")  # fmt: skip
    text = last.text()
    if not text.strip():
        raise ApiError(400, "the last user message has no text; send its content as text",
                       param="messages", code="empty_message")
    if len(text) > max_chars:
        raise ApiError(400, f"the last user message has {len(text)} characters, more than the "
                       f"{max_chars} allowed; send it shorter", param="messages",
                       code="message_too_long")  # fmt: skip
    world: dict[str, Any] = {}
    if context:
        notes = [m.text() for m in body.messages if m.role in ("system", "developer")]
        if any(n.strip() for n in notes):
            world["client_context"] = "\n".join(n for n in notes if n.strip())[:max_chars]
    return Turn(text=text, scope=scope, speaker=last.name, world=world)


async def _sse(
    service: CompanionService, who: Principal, turn: Turn, model: str, *, include_usage: bool
) -> AsyncIterator[str]:
    """Yield the reply as `chat.completion.chunk` events, then `data: [DONE]`."""
    cid, created = _completion_id(), int(time.time())

    def chunk(delta: ChunkDelta) -> str:
        event = ChatCompletionChunk(id=cid, created=created, model=model,
                                    choices=[ChunkChoice(delta=delta)])  # fmt: skip
        return _event(_chunk_json(event))

    yield chunk(ChunkDelta(role="assistant", content=""))
    try:
        async for item in service.stream(who, turn):
            if isinstance(item, Reply):
                last = ChatCompletionChunk(
                    id=cid, created=created, model=model,
                    choices=[ChunkChoice(delta=ChunkDelta(), finish_reason="stop")],
                    personae=_info(item),
                )  # fmt: skip
                yield _event(_chunk_json(last))
                if include_usage:
                    usage = ChatCompletionChunk(id=cid, created=created, model=model,
                                                choices=[], usage=_usage(item))  # fmt: skip
                    yield _event(_chunk_json(usage))
            elif item:
                yield chunk(ChunkDelta(content=item))
    except ApiError as exc:
        yield _event(exc.body())
    except Exception as exc:  # the headers are sent: the error goes in the stream
        log.error("streamed turn of %s failed: %s", model, type(exc).__name__, exc_info=exc)
        failed = ApiError(500, "the service failed to finish the answer; try again",
                          type="server_error", code="internal_error")
        yield _event(failed.body())
    yield "data: [DONE]\n\n"


def _chunk_json(chunk: ChatCompletionChunk) -> dict[str, Any]:
    """Dump a chunk as OpenAI sends it: `finish_reason: null` kept, unused extras left out."""
    data = chunk.model_dump(mode="json")
    for name in ("usage", "personae", "system_fingerprint"):
        if data[name] is None:
            del data[name]
    for choice in data["choices"]:
        choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
    return data


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def _completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def _usage(reply: Reply) -> CompletionUsage:
    given, got = reply.usage.input_tokens, reply.usage.output_tokens
    return CompletionUsage(prompt_tokens=given, completion_tokens=got, total_tokens=given + got)


def _info(reply: Reply) -> PersonaeInfo:
    return PersonaeInfo(flags=list(reply.flags), model=reply.model, emotion=reply.emotion,
                        actions=[a.model_dump(mode="json") for a in reply.actions])  # fmt: skip
