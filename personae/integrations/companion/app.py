"""The companion service as a FastAPI app: `create_app(config)`.

Routes (see `/docs` of a running service for the full OpenAPI document):

| route | scope | what |
| --- | --- | --- |
| `GET /v1/models`, `GET /v1/models/{model}` | chat | the personas, as models |
| `POST /v1/chat/completions` | chat | talk to a persona (plain or streamed) |
| `/v1/users/{user}/...`, `DELETE /v1/users/{user}` | memory | memories, export, erasure |
| `/v1/care/...` | care | check-ins, reminders, contacts, alerts |
| `GET /v1/admin/audit`, `GET /v1/admin/referrals` | admin | safety audit log, referral counts |
| `GET /healthz` | none | liveness |

Every error is answered in OpenAI's envelope `{"error": {"message", "type",
"param", "code"}}`, validation errors included (400, with `param`).

Data under `PERSONAE_HOME`: memories in `memory/` (one store shared by all
personas), conversations in `conversations.sqlite`, and the service's own
files in `companion/` (the user index, the audit log, care data).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from personae.agents.turn import Reply, Turn
from personae.heap import settle_heap
from personae.integrations.companion.audit import AuditLog, safety_events
from personae.integrations.companion.auth import ApiError, KeyRing, Principal, require, resolve_user
from personae.integrations.companion.config import CompanionConfig
from personae.integrations.companion.erasure import (
    ErasureHook,
    ErasureReport,
    UserIndex,
    erase_user,
)
from personae.integrations.companion.memory_api import router as memory_router
from personae.integrations.companion.openai_api import (
    ERROR_RESPONSES,
    ChatCompletionChunk,
    Model,
)
from personae.integrations.companion.openai_api import router as openai_router
from personae.scope import Scope

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from personae.agents.agent import Agent
    from personae.memory.embeddings import Embedder
    from personae.memory.store import MemoryStore
    from personae.settings import Settings

__all__ = ["AuditEvent", "AuditList", "CompanionService", "ReferralCounts", "create_app"]

log = logging.getLogger("personae.companion")

_CARE = "personae.integrations.companion.care"
_CARE_API = "personae.integrations.companion.care_api"
_CARE_VOICE = "personae.integrations.companion.care_voice"


class CompanionService:
    """The running service: agents, keys, the user index, the audit log and care.

    Routes reach it as `request.app.state.companion`. `create_app` builds it.

    Args:
        config: The service config.
        agents: One agent per persona.
        home: The data directory.
        erasure_hooks: Name -> hook erasing what another part keeps about a user.
        opener: Opens the memory store shared by the agents the service built; the
            service closes it.
    """

    def __init__(
        self,
        config: CompanionConfig,
        agents: Mapping[str, Agent],
        *,
        home: Path,
        erasure_hooks: Mapping[str, ErasureHook] | None = None,
        opener: _StoreOpener | None = None,
    ) -> None:
        self.config = config
        self.agents = dict(agents)
        self.home = home
        self.keyring = KeyRing(config)
        self.users = UserIndex(home / "companion" / "users.sqlite")
        self.audit = AuditLog(home / "companion" / "audit.jsonl")
        self.erasure_hooks: dict[str, ErasureHook] = dict(erasure_hooks or {})
        self.care: ModuleType | None = None
        self.started = int(time.time())
        self._opener = opener
        self._gates: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    # -- what a tenant sees -------------------------------------------------------------

    def personas_of(self, tenant: str) -> list[str]:
        """Return the persona ids `tenant` may talk to."""
        return self.keyring.personas(tenant, self.agents)

    def model_card(self, persona: str) -> Model:
        """Return a persona as an OpenAI model."""
        agent = self.agents[persona]
        return Model(id=persona, created=self.started, name=agent.persona.display_name)

    def agent_for(self, persona: str) -> Agent:
        """Return the agent of a persona (for the care scheduler's messages).

        Raises:
            KeyError: No such persona.
        """
        return self.agents[persona]

    def user_of(self, request: Request, who: Principal, named: str | None) -> str:
        """Return the user a request speaks for (see `auth.resolve_user`)."""
        return resolve_user(request, who, named=named, header=self.config.user_header)

    async def memory_of(self, persona: str) -> MemoryStore | None:
        """Return the memory store of a persona, opening it if needed; None without memory."""
        agent = self.agents[persona]
        if agent.memory is None:
            # Reading any history opens the agent's databases, its memory store included.
            await agent.history(Scope(persona=persona, user="\x00"))
        return agent.memory

    # -- turns --------------------------------------------------------------------------

    def _gate(self, tenant: str, user: str) -> asyncio.Lock:
        # One user's turns and their erasure never overlap.
        return self._gates.setdefault((tenant, user), asyncio.Lock())

    async def respond(self, who: Principal, turn: Turn) -> Reply:
        """Answer one turn of the scope's user, then audit it."""
        scope = _scope(turn)
        agent = self.agents[scope.persona]
        async with self._gate(who.tenant, scope.user):
            reply = await agent.respond(turn)
        await self._after(who, scope, reply)
        return reply

    async def stream(self, who: Principal, turn: Turn) -> AsyncIterator[str | Reply]:
        """Yield text deltas, then the `Reply` (one delta after screening in `screened` mode)."""
        scope = _scope(turn)
        agent = self.agents[scope.persona]
        screened = self.config.streaming == "screened"
        async with self._gate(who.tenant, scope.user):
            async for item in agent.stream(turn):
                if isinstance(item, Reply):
                    await self._after(who, scope, item)
                    if screened:
                        yield item.text
                    yield item
                elif not screened:
                    yield item

    async def _after(self, who: Principal, scope: Scope, reply: Reply) -> None:
        """Log the turn's safety events (no text), raise care alerts, note the user's activity."""
        if self.care is not None and hasattr(self.care, "note_user_activity"):
            # Any message counts as the answer to an outstanding check-in.
            self.care.note_user_activity(who.tenant, scope.user)
        events = safety_events(reply.trace)
        if not events:
            return
        ref = await asyncio.to_thread(self.users.ref, who.tenant, scope.user)
        for event in events:
            await self.audit.append({"kind": "safety", "tenant": who.tenant,
                                     "persona": scope.persona, "key": who.key_id,
                                     "user_ref": ref, **event})  # fmt: skip
            alert = event.get("alert")
            if alert and self.care is not None and hasattr(self.care, "raise_alert"):
                detail = f"{event.get('category')} via {event.get('rule')} ({scope.persona})"
                self.care.raise_alert(who.tenant, scope.user, alert.get("kind", "safety"),
                                      alert.get("severity", "warning"), detail)  # fmt: skip

    # -- erasure ------------------------------------------------------------------------

    async def erase_user(self, tenant: str, user: str) -> ErasureReport:
        """Erase everything kept about a tenant's user (see `erasure.erase_user`)."""
        async with self._gate(tenant, user):
            report = await erase_user(
                tenant, user,
                agents=[self.agents[p] for p in self.agents],
                users=self.users, hooks=self.erasure_hooks, audit=self.audit, home=self.home,
            )  # fmt: skip
        self.keyring.limiter.reset(f"user:{tenant}\x00{user}")
        return report

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Warm the models and open the databases, so the first request does not wait."""
        for persona, agent in self.agents.items():
            await asyncio.to_thread(agent.warm)
            await agent.open()
            await self.memory_of(persona)

    async def aclose(self) -> None:
        """Close the agents, the memory store the service opened, and the user index."""
        for agent in self.agents.values():
            try:
                await agent.aclose()
            except Exception:
                log.exception("closing the agent of %s failed", agent.persona.id)
        if self._opener is not None:
            await asyncio.to_thread(self._opener.close)
        await asyncio.to_thread(self.users.close)


def _scope(turn: Turn) -> Scope:
    assert turn.scope is not None, "the endpoint always sets the turn's scope"
    return turn.scope


class _StoreOpener:
    """Opens one memory store for all agents, on first use, from whichever thread asks first."""

    def __init__(self, settings: Settings, embedder: Embedder | None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store: MemoryStore | None = None
        self._lock = threading.Lock()

    def __call__(self) -> MemoryStore:
        with self._lock:
            if self.store is None:
                from personae.memory.store import MemoryStore

                self.store = MemoryStore.from_settings(self.settings, embedder=self.embedder)
            return self.store

    def close(self) -> None:
        with self._lock:
            if self.store is not None:
                self.store.close()
                self.store = None


class AuditEvent(BaseModel):
    """One line of the audit log: never message text."""

    model_config = ConfigDict(extra="allow")

    at: float
    """Unix time."""
    kind: str
    """`safety` or `erasure`."""
    tenant: str
    persona: str | None = None
    user_ref: str | None = None
    """Pseudonymous user reference; tied to no one once the user is erased."""
    category: str | None = None
    action: str | None = None
    rule: str | None = None
    referral: bool | None = None
    """Whether the person was pointed to help."""


class AuditList(BaseModel):
    """Audit events, newest first."""

    object: Literal["list"] = "list"
    data: list[AuditEvent]


class ReferralCounts(BaseModel):
    """How often people were pointed to crisis help."""

    total: int
    by_day: dict[str, int]
    """UTC date (YYYY-MM-DD) -> referrals."""
    by_persona: dict[str, int]
    by_category: dict[str, int]


class Health(BaseModel):
    """The service is up."""

    status: Literal["ok"] = "ok"


def _build_agents(
    config: CompanionConfig,
    *,
    model: str | BaseChatModel | None,
    settings: Settings,
    embedder: Embedder | None,
    opener: _StoreOpener,
) -> dict[str, Agent]:
    from personae.agents.agent import Agent
    from personae.errors import ConfigError
    from personae.personas.loading import load_persona

    agents: dict[str, Agent] = {}
    for path in config.personas:
        persona = load_persona(path)
        if persona.id in agents:
            raise ConfigError(f"{config.path or 'config'}: personas: {path} has the id "
                              f"{persona.id!r} of another persona file; give each its own `id`")
        agents[persona.id] = Agent(
            persona, model=model if model is not None else config.model, settings=settings,
            embedder=embedder, memory=None if persona.memory.enabled else False,
            open_memory=opener if persona.memory.enabled else None,
        )  # fmt: skip
    return agents


def create_app(
    config: CompanionConfig,
    *,
    agents: Sequence[Agent] | None = None,
    model: str | BaseChatModel | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    erasure_hooks: Mapping[str, ErasureHook] | None = None,
) -> FastAPI:
    """Build the companion service's FastAPI app.

    The app owns its agents: it warms them when it starts and closes them
    when it stops (in the server's event loop, where their databases live).

    Args:
        config: Personas, tenants and keys, limits.
        agents: Ready agents (tests inject them with fake models); default: one
            per persona file of the config, sharing one memory store.
        model: Model spec or chat model for every persona built from the config;
            default `config.model`, then each persona's, then `PERSONAE_MODEL`.
        settings: Service settings; default from `PERSONAE_*` env vars.
        embedder: Embedder for memories and the offline model; default the bundled MiniLM.
        erasure_hooks: Name -> `await hook(tenant, user)` erasing what another
            part of the deployment keeps about a user; care's is added when care is on.

    Returns:
        The app; serve it with uvicorn.

    Raises:
        PersonaFileError: A persona file does not load.
        ConfigError: Two persona files have the same id, or no persona is given.

    Example:
        ```python
        import uvicorn
        from personae.integrations.companion.app import create_app
        from personae.integrations.companion.config import load_config

        uvicorn.run(create_app(load_config("service.yaml")), host="127.0.0.1", port=8080)
        ```
    """
    from personae.errors import ConfigError
    from personae.settings import get_settings

    settings = settings or get_settings()
    opener = _StoreOpener(settings, embedder)
    if agents is not None:
        built = {agent.persona.id: agent for agent in agents}
    else:
        built = _build_agents(config, model=model, settings=settings, embedder=embedder,
                              opener=opener)  # fmt: skip
    if not built:
        raise ConfigError(f"{config.path or 'config'}: personas: no persona to serve; list "
                          "persona files under `personas:`")  # fmt: skip
    for tenant, tenant_config in config.tenants.items():
        for pid in tenant_config.personas or []:
            if pid not in built:
                raise ConfigError(
                    f"{config.path or 'config'}: tenants.{tenant}.personas: {pid!r} is not the "
                    f"id of a served persona; use one of {', '.join(sorted(built))}"
                )
    service = CompanionService(config, built, home=settings.home, erasure_hooks=erasure_hooks,
                               opener=opener)  # fmt: skip
    care = _care_modules(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        care_service = await _start_care(service, care, config)
        app.state.care = care_service
        settle_heap()
        try:
            yield
        finally:
            if care_service is not None:
                await care_service.aclose()
                care[0].set_current_service(None)
            await service.aclose()

    from personae import __version__

    app = FastAPI(
        title="personae companion",
        version=__version__,
        summary="Talk to personae characters through an OpenAI-compatible API.",
        lifespan=lifespan,
    )
    app.state.companion = service
    app.state.keyring = service.keyring
    _errors(app)
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins,
                           allow_methods=["*"], allow_headers=["*"],
                           expose_headers=["retry-after", "retry-after-ms"])  # fmt: skip
    app.include_router(openai_router)
    app.include_router(memory_router)
    _admin_routes(app)
    if care[1] is not None:
        app.include_router(care[1].router)

    @app.get("/healthz", tags=["service"], summary="Liveness")
    async def healthz() -> Health:
        """Answer `{"status": "ok"}` while the service runs; needs no key."""
        return Health()

    web = _web_dir(care)
    if web is not None:
        from fastapi.staticfiles import StaticFiles

        # Mounted last, so every /v1 route wins over a file of the same name.
        app.mount("/", StaticFiles(directory=web, html=True), name="web")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _care_modules(config: CompanionConfig) -> tuple[Any, Any]:
    """Return the care module and its API module, or Nones when care is off or absent."""
    if not config.care:
        return None, None
    try:
        care = importlib.import_module(_CARE)
    except ImportError:
        return None, None
    try:
        api = importlib.import_module(_CARE_API)
    except ImportError:
        api = None
    return care, api


async def _start_care(
    service: CompanionService, care: tuple[Any, Any], config: CompanionConfig
) -> Any:
    module = care[0]
    if module is None:
        return None
    voice: Any = None
    with contextlib.suppress(ImportError):
        voice = importlib.import_module(_CARE_VOICE).AgentVoice(service.agent_for)
    care_service = await module.CareService.open(service.home, generate=voice)
    module.set_current_service(care_service)
    await care_service.start(interval=config.care_interval)
    service.care = module
    if hasattr(module, "erase_user_schedules"):
        service.erasure_hooks.setdefault("care", module.erase_user_schedules)
    return care_service


def _web_dir(care: tuple[Any, Any]) -> Path | None:
    for module in care:
        web = getattr(module, "WEB_DIR", None)
        if web is not None and Path(web).is_dir():
            return Path(web)
    return None


AdminKey = Annotated[Principal, Depends(require("admin"))]


def _admin_routes(app: FastAPI) -> None:
    @app.get("/v1/admin/audit", tags=["admin"], responses=ERROR_RESPONSES,
             summary="Read the safety audit log")  # fmt: skip
    async def audit(
        request: Request,
        who: AdminKey,
        since: Annotated[float | None, Query(ge=0, description="Unix time; only later events.")]
        = None,
        kind: Annotated[Literal["safety", "erasure"] | None, Query(
            description="Only events of this kind.")] = None,
        limit: Annotated[int, Query(ge=1, le=10000, description="Most events returned.")] = 100,
    ) -> AuditList:
        """Return your tenant's audit events, newest first: safety decisions and erasures."""
        service: CompanionService = request.app.state.companion
        found = await asyncio.to_thread(service.audit.events, who.tenant, since=since, kind=kind,
                                        limit=limit)  # fmt: skip
        return AuditList(data=[AuditEvent.model_validate(e) for e in found])

    @app.get("/v1/admin/referrals", tags=["admin"], responses=ERROR_RESPONSES,
             summary="Count crisis referrals")  # fmt: skip
    async def referrals(
        request: Request,
        who: AdminKey,
        since: Annotated[float | None, Query(ge=0, description="Unix time; only later events.")]
        = None,
    ) -> ReferralCounts:
        """Count how often your tenant's users were pointed to crisis help."""
        service: CompanionService = request.app.state.companion
        counts = await asyncio.to_thread(service.audit.referrals, who.tenant, since=since)
        return ReferralCounts.model_validate(counts)


def _errors(app: FastAPI) -> None:
    """Answer every error in OpenAI's envelope."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        message = str(exc.detail) if exc.detail else "error"
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see /docs for the API"
        error = ApiError(exc.status_code, message, code=codes.get(exc.status_code),
                         headers=dict(exc.headers or {}))  # fmt: skip
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        param = None
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            where = ".".join(loc) or "body"
            param = param or where
            what = "the body is not valid JSON" if err.get("type") == "json_invalid" else (
                str(err.get("msg", "is invalid")))
            problems.append(f"{where}: {what}")
        message = "invalid request: " + "; ".join(problems[:5]) + "; see /docs for the schema"
        error = ApiError(400, message, param=param, code="invalid_request")
        return JSONResponse(error.body(), status_code=400)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("request %s %s failed: %s", request.method, request.url.path,
                  type(exc).__name__, exc_info=exc)  # fmt: skip
        error = ApiError(500, "the service failed to answer; try again, and tell its operator "
                         "if it keeps failing", type="server_error", code="internal_error")
        return JSONResponse(error.body(), status_code=500)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """Return the OpenAPI document, with validation errors documented as the 400 they are."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                         routes=app.routes, description=__doc__)  # fmt: skip
    for methods in schema.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = {
                    "description": "The request is malformed; `param` names the field.",
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
                }
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    # Streamed chunks are described inside the text/event-stream schema, by reference.
    chunk = ChatCompletionChunk.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in chunk.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault("ChatCompletionChunk", chunk)
    app.openapi_schema = schema
    return schema
