"""`GameSession`: one connected game, its messages parsed, checked and answered.

The rules it follows are those of `personae.integrations.game.server`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.tools import ToolException
from pydantic import BaseModel, ValidationError

from personae.agents.tools import EMOTION_TOOL
from personae.agents.turn import Action, Reply, Scope, Turn
from personae.errors import IntegrationError
from personae.integrations.game.limits import Gate
from personae.integrations.game.perception import RELATIONSHIP_TOOL, WorldView
from personae.integrations.game.protocol import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    Ack,
    ActionMessage,
    ActionResult,
    Cancel,
    Capabilities,
    Delta,
    EmotionMessage,
    ErrorMessage,
    Event,
    Hello,
    Load,
    Loaded,
    NoResponse,
    Relationship,
    ReplyMessage,
    Save,
    Saved,
    Say,
    Sentence,
    Welcome,
    World,
    client_adapter,
    explain,
)
from personae.integrations.game.recording import current_turn
from personae.integrations.game.sentences import SentenceSplitter, plain_text
from personae.integrations.game.state import NpcState, decode_blob, restore_npc, save_npcs

if TYPE_CHECKING:
    from personae.integrations.game.server import GameServer, Npc

__all__ = ["GameSession", "Send"]

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
"""Receives each outgoing message as a JSON-ready dict."""

_Task = asyncio.Task[None]
_Work = Callable[[], Awaitable[None]]

_MAX_PENDING_ACTIONS = 1024


@dataclass(frozen=True)
class _SentAction:
    npc: str
    scope: Scope
    name: str
    target: str | None


@dataclass
class _Job:
    """One NPC's part of a request, fixed when the request arrives."""

    request: str
    npc: Npc
    scope: Scope
    player_name: str | None
    view: WorldView
    text: str = ""
    events: list[str] = field(default_factory=list)
    ended: bool = False
    """Its terminal message (`reply`, `no_response` or `error`) has been sent."""


class GameSession:
    """One game connected to a `GameServer`: parses, checks and dispatches its messages.

    Made by `GameServer.session(send)`; transports call `receive` for each
    incoming message, `drain` to wait for answers in progress, and `close`
    when the game disconnects.
    """

    def __init__(self, server: GameServer, send: Send, *, number: int) -> None:
        self.server = server
        self.number = number
        self._send_raw = send
        self._send_lock = asyncio.Lock()
        self.hello: Hello | None = None
        self.slot = "default"
        self.capabilities = Capabilities()
        self._views: dict[str, WorldView] = {}
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._order: dict[tuple[str, str], asyncio.Lock] = {}
        self._actions: dict[str, _SentAction] = {}
        self._last_player = "player"
        self._closed = False
        self._barrier: _Task | None = None
        self._jobs: dict[_Task, _Job] = {}

    @property
    def world(self) -> str:
        """The world given in `hello` (memories and state are kept per world)."""
        return self.hello.world if self.hello is not None else "default"

    # -- input --------------------------------------------------------------------

    async def receive(self, data: str | bytes) -> None:
        """Handle one incoming message; problems are answered with `error`, never raised."""
        if self._closed:
            return
        if self.server.recorder is not None:
            self.server.recorder.incoming(self.number, data)
        size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "replace"))
        if size > MAX_MESSAGE_BYTES:
            await self._error(
                None, "too_large",
                f"message of {size} bytes is over the limit of {MAX_MESSAGE_BYTES} bytes; "
                "send shorter text, or describe the world in several `world` updates",
            )
            return
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            raw = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            await self._error(None, "bad_json", f"message is not valid JSON ({exc}); "
                              "send one JSON object per message, UTF-8 encoded")
            return
        request = raw.get("id") if isinstance(raw, dict) else None
        reply_to = request if isinstance(request, str) and request else None
        try:
            message = client_adapter.validate_python(raw)
        except ValidationError as exc:
            await self._error(reply_to, "bad_message", explain(raw, exc))
            return
        try:
            await self._dispatch(message)
        except Exception as exc:  # a bug of ours must not end the session
            log.exception("could not handle a %s message", getattr(message, "type", "?"))
            await self._error(reply_to, "internal",
                              f"the server failed on this message ({type(exc).__name__}); "
                              "it is logged, and the session goes on")

    async def _dispatch(self, message: BaseModel) -> None:
        if isinstance(message, Hello):
            await self._hello(message)
            return
        if self.hello is None:
            kind = getattr(message, "type", "?")
            await self._error(
                getattr(message, "id", None), "no_hello",
                f"got `{kind}` before `hello`; send hello first, e.g. "
                f'{{"type": "hello", "id": "1", "protocol": {PROTOCOL_VERSION}}}',
            )
            return
        if isinstance(message, World):
            await self._world(message)
        elif isinstance(message, Say):
            await self._say(message)
        elif isinstance(message, Event):
            await self._event(message)
        elif isinstance(message, ActionResult):
            await self._action_result(message)
        elif isinstance(message, Cancel):
            await self._cancel(message)
        elif isinstance(message, Save):
            await self._save(message)
        elif isinstance(message, Load):
            await self._load(message)

    async def _hello(self, hello: Hello) -> None:
        if hello.protocol != PROTOCOL_VERSION:
            await self._error(
                hello.id, "protocol_version",
                f"hello.protocol={hello.protocol!r}: this server speaks protocol "
                f"{PROTOCOL_VERSION}; use a client for protocol {PROTOCOL_VERSION} "
                "(or a personae version that speaks yours)",
            )
            return
        from personae import __version__

        self.hello, self.slot, self.capabilities = hello, hello.slot, hello.capabilities
        await self._send(Welcome(
            id=f"welcome-{hello.id}", reply_to=hello.id, server=f"personae {__version__}",
            npcs=list(self.server.npcs), capabilities=hello.capabilities,
        ))

    def _npc(self, npc: str) -> Npc | None:
        return self.server.npcs.get(npc)

    async def _unknown_npc(self, request: str, field_name: str, npc: str) -> None:
        known = ", ".join(sorted(self.server.npcs))
        await self._error(request, "unknown_npc",
                          f"{field_name}={npc!r} is not an NPC of this server; use one of: "
                          f"{known} (the ids in `welcome.npcs`)")

    def _view(self, npc: str) -> WorldView:
        view = self._views.get(npc)
        if view is None:
            view = self._views[npc] = WorldView()
        return view

    def _scope(self, npc: str, player: str) -> Scope:
        return Scope(persona=npc, user=player, world=self.world, save_slot=self.slot)

    async def _world(self, world: World) -> None:
        if world.npc is not None and self._npc(world.npc) is None:
            await self._unknown_npc(world.id, "world.npc", world.npc)
            return
        targets = [world.npc] if world.npc is not None else list(self.server.npcs)
        for npc in targets:
            self._view(npc).apply(world)
            given = {a.id: a.relationship for a in world.actors or [] if a.relationship is not None}
            if given:
                # The game's values are the truth; the NPC's own changes start from them.
                state = await self.server.states.get(npc, self.world, self.slot)
                state.relationships.update(given)
                await self.server.states.keep(npc, self.world, self.slot, state)
        await self._send(Ack(id=f"ack-{world.id}", reply_to=world.id))

    async def _say(self, say: Say) -> None:
        npc = self._npc(say.npc)
        if npc is None:
            await self._unknown_npc(say.id, "say.npc", say.npc)
            return
        self._last_player = say.player.id
        gate = self._admit(npc, say.id)
        if gate is not None:
            await self._send(NoResponse(id=f"{say.id}:{npc.id}:none", reply_to=say.id,
                                        npc=npc.id, reason=gate.reason,
                                        retry_after=gate.retry_after))
            return
        job = _Job(say.id, npc, self._scope(npc.id, say.player.id), say.player.name,
                   self._view(npc.id).copy(), text=say.text)
        self._spawn(job, lambda: self._answer(job))

    async def _event(self, event: Event) -> None:
        witnesses = list(dict.fromkeys(event.witnesses or ([event.npc] if event.npc else [])))
        if not witnesses:
            await self._error(event.id, "bad_message",
                              "event has neither `npc` nor `witnesses`, so no NPC perceives it; "
                              "name the NPCs that see or hear it in `witnesses`")
            return
        for name, where in ([(event.npc, "event.npc")] if event.npc else []) + [
            (w, "event.witnesses") for w in witnesses
        ]:
            if self._npc(name) is None:
                await self._unknown_npc(event.id, where, name)
                return
        player = event.actor if event.actor and event.actor not in self.server.npcs else None
        player = player or self._last_player
        for name in witnesses:
            npc = self.server.npcs[name]
            reacts = event.react == "always" or (event.react == "auto" and name == event.npc)
            view = self._view(name).copy()
            job = _Job(event.id, npc, self._scope(name, player), None, view,
                       events=[event.description])
            silent: Literal["witness_only", "not_addressed"] | Gate | None = None
            if not reacts:
                silent = "witness_only" if event.react == "never" else "not_addressed"
            else:
                silent = self._admit(npc, event.id)
            self._spawn(job, partial(self._perceive, job, silent))

    async def _action_result(self, result: ActionResult) -> None:
        sent = self._actions.get(result.action_id)
        if sent is None:
            await self._error(result.id, "unknown_action",
                              f"action_result.action_id={result.action_id!r} names no action sent "
                              "in this session; give the `action_id` of an `action` message "
                              "(each result once)")
            return
        del self._actions[result.action_id]
        outcome = "worked" if result.ok else "failed"
        target = f" on {sent.target}" if sent.target else ""
        note = f"[Your action {sent.name}{target} {outcome}"
        note += f": {result.detail}]" if result.detail else ".]"
        npc = self.server.npcs[sent.npc]

        async def tell() -> None:
            await npc.agent.note(sent.scope, note)
            await self._send(Ack(id=f"ack-{result.id}", reply_to=result.id))

        self._spawn_ordered(result.id, sent.npc, sent.scope.user, tell)

    async def _cancel(self, cancel: Cancel) -> None:
        tasks = list(self._tasks.get(cancel.target, []))
        jobs = [self._jobs.get(task) for task in tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        # Said here, not in the task: a task cancelled before it started never runs.
        for job in jobs:
            if job is not None and not job.ended:
                job.ended = True
                await self._send(self._silence(job, "cancelled"))
        await self._send(Ack(id=f"ack-{cancel.id}", reply_to=cancel.id))

    async def _save(self, save: Save) -> None:
        if save.npc is not None and self._npc(save.npc) is None:
            await self._unknown_npc(save.id, "save.npc", save.npc)
            return
        names = [save.npc] if save.npc is not None else list(self.server.npcs)
        world, slot = self.world, self.slot
        earlier = self._in_flight()

        async def run() -> None:
            await _settled(earlier)
            agents = {name: self.server.npcs[name].agent for name in names}
            blob = await save_npcs(agents, self.server.states, world, slot)
            await self._send(Saved(id=f"saved-{save.id}", reply_to=save.id, blob=blob))

        self._spawn_task(save.id, run, barrier=True)

    async def _load(self, load: Load) -> None:
        try:
            payload = await asyncio.to_thread(decode_blob, load.blob)
        except IntegrationError as exc:
            await self._error(load.id, "bad_blob", str(exc))
            return
        if payload["world"] != self.world:
            await self._error(load.id, "bad_blob",
                              f"load.blob was saved in world {payload['world']!r}, this session "
                              f"plays world {self.world!r}; send `hello` with that world first, "
                              "or load a save of this world")
            return
        saved: dict[str, Any] = payload["npcs"]
        strangers = sorted(set(saved) - set(self.server.npcs))
        if strangers:
            await self._error(load.id, "bad_blob",
                              f"load.blob holds NPCs this server does not host: "
                              f"{', '.join(strangers)}; start the server with their personas")
            return
        world, source = self.world, str(payload["slot"])
        target = load.slot or source
        self.slot = target
        earlier = self._in_flight()

        async def run() -> None:
            await _settled(earlier)
            forgotten = 0
            for name, data in saved.items():
                forgotten += await restore_npc(self.server.npcs[name].agent, self.server.states,
                                               data, world, source, target)
            await self._send(Loaded(id=f"loaded-{load.id}", reply_to=load.id,
                                    npcs=list(saved), forgotten=forgotten))

        self._spawn_task(load.id, run, barrier=True)

    # -- answering ----------------------------------------------------------------

    def _admit(self, npc: Npc, request: str) -> Gate | None:
        gate = npc.budget.admit()
        if self.server.recorder is not None:
            gate = self.server.recorder.admit(self.number, npc.id, request, gate)
        return gate

    def _in_flight(self) -> list[_Task]:
        return [t for tasks in self._tasks.values() for t in tasks if not t.done()]

    def _spawn_task(self, request: str, make: _Work, *, barrier: bool = False) -> _Task:
        """Run `make()` as a task; after a barrier (a save or load) only once that is done.

        The coroutine is made inside the task, so a task cancelled before it
        starts leaves no coroutine unawaited.
        """
        before = self._barrier

        async def run() -> None:
            if before is not None and not before.done():
                await asyncio.wait([before])
            await make()

        task = asyncio.get_running_loop().create_task(run(), name=f"game:{request}")
        self._tasks.setdefault(request, []).append(task)
        task.add_done_callback(lambda done: self._forget_task(request, done))
        if barrier:
            self._barrier = task
        return task

    def _forget_task(self, request: str, task: _Task) -> None:
        self._jobs.pop(task, None)
        tasks = self._tasks.get(request)
        if tasks is not None and task in tasks:
            tasks.remove(task)
            if not tasks:
                del self._tasks[request]

    def _spawn_ordered(self, request: str, npc: str, player: str, make: _Work) -> _Task:
        lock = self._order.setdefault((npc, player), asyncio.Lock())

        async def ordered() -> None:
            async with lock:
                await make()

        return self._spawn_task(request, ordered)

    def _spawn(self, job: _Job, make: _Work) -> None:
        """Run one NPC's part of a request in order, ending it with a defined message."""

        async def guarded() -> None:
            token = current_turn.set((self.number, job.npc.id, job.request))
            try:
                await make()
            except Exception as exc:
                log.exception("NPC %s failed to answer %s", job.npc.id, job.request)
                if not job.ended:
                    job.ended = True
                    await self._error(
                        job.request, "internal",
                        f"NPC {job.npc.id!r} could not answer ({type(exc).__name__}); "
                        "it is logged, and the session goes on",
                    )
            finally:
                current_turn.reset(token)

        task = self._spawn_ordered(job.request, job.npc.id, job.scope.user, guarded)
        self._jobs[task] = job

    def _silence(
        self, job: _Job, reason: Literal["cooldown", "budget", "not_addressed", "cancelled",
                                         "witness_only"], retry_after: float | None = None,
    ) -> NoResponse:
        return NoResponse(id=f"{job.request}:{job.npc.id}:none", reply_to=job.request,
                          npc=job.npc.id, reason=reason, retry_after=retry_after)

    async def _meet(self, job: _Job) -> NpcState:
        state = await self.server.states.get(job.npc.id, self.world, job.scope.save_slot or "")
        if state.meet(job.scope.user):
            await self.server.states.keep(job.npc.id, self.world, job.scope.save_slot or "", state)
        return state

    async def _perceive(
        self, job: _Job, silent: Literal["witness_only", "not_addressed"] | Gate | None
    ) -> None:
        await self._meet(job)
        (event,) = job.events
        await job.npc.agent.remember(job.scope, f"Witnessed: {event}", game_time=job.view.time,
                                     importance=4)
        if silent is None:
            await self._answer(job)
            return
        await job.npc.agent.note(job.scope, f"[{event}]")
        job.ended = True
        if isinstance(silent, Gate):
            await self._send(self._silence(job, silent.reason, silent.retry_after))
        else:
            await self._send(self._silence(job, silent))

    async def _answer(self, job: _Job) -> None:
        """Run one turn and send what it produces, `reply` last."""
        npc, caps = job.npc, self.capabilities
        state = await self._meet(job)
        turn = Turn(
            text=job.text,
            scope=job.scope,
            speaker=job.player_name,
            events=job.events,
            world=job.view.turn_world(state.relationships, actions=caps.actions),
            affordances=job.view.affordance_map(actions=caps.actions),
        )
        sent: list[str] = []
        shown: list[str] = []
        present = job.view.actor_ids()

        async def on_action(action: Action) -> None:
            if action.name == EMOTION_TOOL:
                emotion = str(action.arguments.get("emotion", ""))
                shown.append(emotion)
                if caps.emotions:
                    await self._send(EmotionMessage(
                        id=f"{job.request}:{npc.id}:e{len(shown)}", reply_to=job.request,
                        npc=npc.id, emotion=emotion,
                    ))
                return
            if action.name == RELATIONSHIP_TOOL:
                await self._relate(job, state, action, present)
                return
            number = len(sent) + 1
            action_id = f"{job.request}:{npc.id}:{number}"
            target = action.arguments.get("target")
            target = target if isinstance(target, str) else None
            self._actions[action_id] = _SentAction(npc.id, job.scope, action.name, target)
            if len(self._actions) > _MAX_PENDING_ACTIONS:
                # Results that never came: forget the oldest.
                del self._actions[next(iter(self._actions))]
            sent.append(action_id)
            await self._send(ActionMessage(
                id=f"{action_id}:action", reply_to=job.request, npc=npc.id,
                action_id=action_id, name=action.name, arguments=dict(action.arguments),
                target=target,
            ))

        splitter = SentenceSplitter()
        index = 0
        reply: Reply | None = None
        started = self.server.clock()

        async def say(sentences: list[str]) -> None:
            nonlocal index
            for text in sentences:
                await self._send(Sentence(id=f"{job.request}:{npc.id}:s{index}",
                                          reply_to=job.request, npc=npc.id, index=index,
                                          text=text))
                index += 1

        deltas = 0
        async for item in npc.agent.stream(turn, on_action=on_action):
            if isinstance(item, Reply):
                reply = item
                continue
            if caps.streaming and item:
                deltas += 1
                await self._send(Delta(id=f"{job.request}:{npc.id}:d{deltas}",
                                       reply_to=job.request, npc=npc.id, text=item))
            if caps.sentences:
                await say(splitter.feed(item))
        if caps.sentences:
            await say(splitter.flush())
        assert reply is not None
        npc.budget.charge(reply.usage.input_tokens + reply.usage.output_tokens,
                          self.server.clock() - started)
        if reply.emotion and caps.emotions and (not shown or shown[-1] != reply.emotion):
            shown.append(reply.emotion)
            await self._send(EmotionMessage(id=f"{job.request}:{npc.id}:e{len(shown)}",
                                            reply_to=job.request, npc=npc.id,
                                            emotion=reply.emotion))
        job.ended = True
        await self._send(ReplyMessage(
            id=f"{job.request}:{npc.id}:reply", reply_to=job.request, npc=npc.id,
            text=plain_text(reply.text), emotion=reply.emotion if caps.emotions else None,
            actions=sent, flags=list(reply.flags),
        ))

    async def _relate(
        self, job: _Job, state: NpcState, action: Action, present: set[str] | None
    ) -> None:
        actor = str(action.arguments.get("actor", ""))
        if present is not None and actor not in present and actor != job.scope.user:
            listed = ", ".join(sorted(present)) or "nobody"
            raise ToolException(
                f"{actor!r} is not present (present: {listed}); use the id of someone present"
            )
        change = float(action.arguments.get("change", 0.0))
        value, moved = state.change(actor, change)
        await self.server.states.keep(job.npc.id, self.world, job.scope.save_slot or "", state)
        await self._send(Relationship(
            id=f"{job.request}:{job.npc.id}:r{action.id}", reply_to=job.request,
            npc=job.npc.id, actor=actor, value=value, change=moved,
            reason=str(action.arguments.get("reason", "")),
        ))

    # -- output -------------------------------------------------------------------

    async def _send(self, message: BaseModel) -> None:
        data = message.model_dump(mode="json", exclude_none=True)
        if self.server.recorder is not None:
            self.server.recorder.outgoing(self.number, data)
        async with self._send_lock:
            if self._closed:
                return
            try:
                await self._send_raw(data)
            except Exception as exc:  # the game went away; its NPCs stay up for others
                log.warning("could not send to the game (%s); closing the session",
                            type(exc).__name__)
                self._closed = True

    async def _error(self, reply_to: str | None, code: Any, message: str) -> None:
        suffix = f"err-{reply_to}" if reply_to else "err"
        await self._send(ErrorMessage(id=suffix, reply_to=reply_to, code=code, message=message))

    # -- lifetime -----------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every answer in progress has been sent."""
        while True:
            pending = self._in_flight()
            if not pending:
                return
            await asyncio.wait(pending)

    async def close(self) -> None:
        """Stop answering: cancel work in progress and send nothing more."""
        self._closed = True
        pending = self._in_flight()
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        self.server._sessions.discard(self)


async def _settled(tasks: list[_Task]) -> None:
    if tasks:
        await asyncio.wait(tasks)
