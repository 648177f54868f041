"""What the service keeps about a user: list, edit, delete, export, erase (scope `memory`).

Routes, all within the key's tenant (a user of another tenant is a 404,
exactly like a user that never existed):

- `GET /v1/users/{user}/memories`: the user's long-term memories, newest first.
- `PATCH /v1/users/{user}/memories/{id}`: change a memory's text or importance.
- `DELETE /v1/users/{user}/memories/{id}`: delete one memory (its text is gone from disk).
- `GET /v1/users/{user}/export`: everything kept about the user, as JSON:
  memories and conversations with every persona.
- `DELETE /v1/users/{user}`: erase the user entirely (memories, conversations,
  check-ins and reminders, the user's audit key); nothing of what they said
  stays in any file under the data directory.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ConfigDict, Field

from personae.errors import MemoryStoreError
from personae.integrations.companion.auth import ApiError, Principal, require
from personae.integrations.companion.erasure import ErasureReport
from personae.integrations.companion.openai_api import ERROR_RESPONSES
from personae.scope import Scope

if TYPE_CHECKING:
    from personae.integrations.companion.app import CompanionService
    from personae.memory.records import MemoryRecord
    from personae.memory.store import MemoryStore

__all__ = [
    "ConversationMessage",
    "Memory",
    "MemoryDeleted",
    "MemoryEdit",
    "MemoryList",
    "UserExport",
    "router",
]

router = APIRouter(prefix="/v1/users", tags=["memory"])

UserPath = Annotated[str, Path(min_length=1, max_length=256, description="The user's id.",
                                examples=["ann"])]
MemoryPath = Annotated[str, Path(min_length=1, max_length=100, description="The memory's id.")]


class Memory(BaseModel):
    """One long-term memory of a user."""

    id: str
    object: Literal["memory"] = "memory"
    persona: str
    """The persona that remembers it."""
    kind: Literal["episode", "fact", "lore", "reflection"]
    """`episode` (an exchange), `fact` (about the user), `reflection`."""
    text: str
    importance: int
    """1 (trivial) to 10 (life-changing)."""
    created_at: float
    """Unix time it was stored."""
    accessed_at: float
    """Unix time it was last recalled."""
    superseded_by: str | None = None
    """Id of a newer fact that replaced it; superseded facts are no longer recalled."""


class MemoryList(BaseModel):
    """A page of memories, newest first."""

    object: Literal["list"] = "list"
    data: list[Memory]


class MemoryEdit(BaseModel):
    """A change to one memory; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"text": "Ann's granddaughter is called Mia.", "importance": 8}]})

    text: str | None = Field(default=None, min_length=1, max_length=4000)
    """New text (embedded again; the old text is erased from disk)."""
    importance: int | None = Field(default=None, ge=1, le=10)
    """New importance, 1 to 10."""


class MemoryDeleted(BaseModel):
    """Confirms a deleted memory."""

    id: str
    object: Literal["memory.deleted"] = "memory.deleted"
    deleted: bool = True


class ConversationMessage(BaseModel):
    """One message of a stored conversation."""

    role: Literal["user", "assistant"]
    content: str


class PersonaExport(BaseModel):
    """What one persona keeps about the user."""

    persona: str
    memories: list[dict[str, Any]]
    """Every memory, oldest first, with all its fields."""
    conversation: list[ConversationMessage]
    """The stored conversation, oldest first."""


class UserExport(BaseModel):
    """Everything the service keeps about a user (for a data request)."""

    object: Literal["user.export"] = "user.export"
    tenant: str
    user: str
    exported_at: float
    personas: list[PersonaExport]


def _service(request: Request) -> CompanionService:
    service: CompanionService = request.app.state.companion
    return service


async def _known(service: CompanionService, who: Principal, user: str) -> None:
    if not await asyncio.to_thread(service.users.exists, who.tenant, user):
        raise ApiError(404, f"no user {user!r} in your tenant; users appear after their first "
                       "chat completion", param="user", code="user_not_found")  # fmt: skip


def _memory(record: MemoryRecord) -> Memory:
    return Memory(
        id=record.id, persona=record.persona, kind=record.kind, text=record.text,
        importance=record.importance, created_at=record.created_at,
        accessed_at=record.accessed_at, superseded_by=record.superseded_by,
    )  # fmt: skip


async def _stores(
    service: CompanionService, who: Principal, user: str
) -> list[tuple[Scope, MemoryStore]]:
    found = []
    for persona in service.personas_of(who.tenant):
        store = await service.memory_of(persona)
        if store is not None:
            found.append((Scope(persona=persona, tenant=who.tenant, user=user), store))
    return found


async def _find(
    service: CompanionService, who: Principal, user: str, memory_id: str
) -> tuple[Scope, MemoryStore]:
    """Return the scope and store holding the user's memory `memory_id` (never shared lore)."""
    for scope, store in await _stores(service, who, user):
        found = await asyncio.to_thread(store.get, scope, [memory_id])
        if found and found[0].scope == scope.keys():
            return scope, store
    raise ApiError(404, f"user {user!r} has no memory {memory_id!r}", param="memory_id",
                   code="memory_not_found")  # fmt: skip


@router.get("/{user}/memories", responses=ERROR_RESPONSES, summary="List a user's memories")
async def list_memories(
    request: Request,
    user: UserPath,
    who: Annotated[Principal, Depends(require("memory"))],
    persona: Annotated[str | None, Query(description="Only this persona's memories.")] = None,
    kind: Annotated[Literal["episode", "fact", "reflection"] | None,
                    Query(description="Only memories of this kind.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most memories returned.")] = 100,
) -> MemoryList:
    """List the user's long-term memories, newest first, over every persona (or one)."""
    service = _service(request)
    await _known(service, who, user)
    records: list[MemoryRecord] = []
    for scope, store in await _stores(service, who, user):
        if persona is None or scope.persona == persona:
            records += await asyncio.to_thread(store.list, scope, kind=kind, limit=limit)
    records.sort(key=lambda r: r.created_at, reverse=True)
    return MemoryList(data=[_memory(r) for r in records[:limit]])


@router.patch(
    "/{user}/memories/{memory_id}", responses=ERROR_RESPONSES, summary="Edit a memory"
)
async def edit_memory(
    request: Request,
    user: UserPath,
    memory_id: MemoryPath,
    edit: MemoryEdit,
    who: Annotated[Principal, Depends(require("memory"))],
) -> Memory:
    """Change a memory's text or importance; an old text is erased from disk, not kept."""
    service = _service(request)
    await _known(service, who, user)
    scope, store = await _find(service, who, user, memory_id)
    try:
        record = await asyncio.to_thread(store.update, scope, memory_id, text=edit.text,
                                         importance=edit.importance, purge=edit.text is not None)
    except MemoryStoreError as exc:
        raise ApiError(400, str(exc), param="text", code="invalid_memory") from None
    return _memory(record)


@router.delete(
    "/{user}/memories/{memory_id}", responses=ERROR_RESPONSES, summary="Delete a memory"
)
async def delete_memory(
    request: Request,
    user: UserPath,
    memory_id: MemoryPath,
    who: Annotated[Principal, Depends(require("memory"))],
) -> MemoryDeleted:
    """Delete one memory; its text is gone from every file under the data directory."""
    service = _service(request)
    await _known(service, who, user)
    scope, store = await _find(service, who, user, memory_id)
    await asyncio.to_thread(store.delete, scope, memory_id)
    return MemoryDeleted(id=memory_id)


@router.get("/{user}/export", responses=ERROR_RESPONSES, summary="Export a user's data")
async def export_user(
    request: Request, user: UserPath, who: Annotated[Principal, Depends(require("memory"))]
) -> UserExport:
    """Return everything kept about the user: memories and conversations with every persona."""
    service = _service(request)
    await _known(service, who, user)
    stores = dict(await _stores(service, who, user))
    personas = []
    for persona in service.personas_of(who.tenant):
        scope = Scope(persona=persona, tenant=who.tenant, user=user)
        store = stores.get(scope)
        memories = await asyncio.to_thread(store.export, scope) if store is not None else []
        history = await service.agents[persona].history(scope)
        conversation = [said for m in history if (said := _message(m)) is not None]
        if memories or conversation:
            personas.append(PersonaExport(persona=persona, memories=memories,
                                          conversation=conversation))
    return UserExport(tenant=who.tenant, user=user, exported_at=round(time.time(), 3),
                      personas=personas)  # fmt: skip


def _message(message: BaseMessage) -> ConversationMessage | None:
    if isinstance(message, HumanMessage) and message.text:
        return ConversationMessage(role="user", content=message.text)
    if isinstance(message, AIMessage) and message.text:
        return ConversationMessage(role="assistant", content=message.text)
    return None


@router.delete("/{user}", responses=ERROR_RESPONSES, summary="Erase a user entirely")
async def erase(
    request: Request, user: UserPath, who: Annotated[Principal, Depends(require("memory"))]
) -> ErasureReport:
    """Erase everything kept about the user: memories, conversations, check-ins, reminders.

    Nothing the user said stays in any file under the data directory.
    Audit events stay, but can no longer be tied to the user.
    """
    service = _service(request)
    await _known(service, who, user)
    return await service.erase_user(who.tenant, user)
