"""Runs scenarios against models: fresh data per run, parallel within limits, retried when flaky.

Every run of a scenario gets its own `Agent` in its own temporary data
directory (`Agent(home=...)`), so runs never share memory or history, then
plays the turns in order and checks every reply (`personae.evals.checks`;
rubrics through `personae.evals.judge`). Memory writes are let finish after
each turn, as a person's pause to type would, so a fact told on turn 1 is
recallable on turn 2 in every run.

The model under test is the first link of the agent's chain, with only the
offline model behind it. A reply that came from that fallback means the
model failed: when it failed transiently (timeouts, 429, 5xx, as
`personae.agents.resilience.is_transient` judges, after the agent's own
retries) the whole run is retried in a fresh directory with tenacity; any
other failure, or transient ones past the last attempt, ends the run as an
`error`, which is never a pass. Runs go in parallel, at most `concurrency`
at a time (an `asyncio.Semaphore`).
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from personae.agents.agent import Agent
from personae.agents.resilience import is_transient, status_code_of
from personae.agents.turn import Reply, Scope, Turn
from personae.errors import ConfigError, PersonaeError, PersonaFileError
from personae.evals.checks import Observed, ToolCall, check_reply
from personae.evals.dataset import chat_messages
from personae.evals.judge import Judge, RubricRequest, judge_rubric
from personae.evals.results import EvalReport, RunRecord, TurnRecord
from personae.evals.scenario import Scenario, Setup, Suite
from personae.evals.scripted import ScriptedReplies, load_scripted
from personae.personas.loading import load_persona
from personae.personas.model import Persona
from personae.testing import FakeChatModel

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from personae.memory.embeddings import Embedder

__all__ = [
    "DEFAULT_USER",
    "ModelTarget",
    "RetryPolicy",
    "model_target",
    "planned_runs",
    "run_scenario",
    "run_suites",
]

DEFAULT_USER = "tester"
"""The scope's user when a scenario's setup names none."""

SCRIPTED_PREFIX = "scripted:"


@dataclass(frozen=True)
class RetryPolicy:
    """How often a run is retried when its model fails transiently.

    Attributes:
        attempts: Most attempts per run, the first included.
        wait_initial: Scale of the first wait, in seconds (full-jitter exponential).
        wait_max: Longest single wait, in seconds.

    """

    attempts: int = 3
    wait_initial: float = 1.0
    wait_max: float = 20.0


@dataclass
class ModelTarget:
    """A model scenarios run against, as `--model` names it.

    Attributes:
        label: Its name in reports: the spec as given.
        spec: A `provider:model` spec or `offline`.
        scripted: Canned replies, for `scripted:PATH`.
        make: Makes a ready chat model for each run, for models built in code
            (a client with custom settings, a test double).

    Example:
        ```python
        targets = [model_target("openai:gpt-4o-mini"),
                   ModelTarget("local", make=lambda: ChatOpenAI(base_url=URL, model="m"))]
        ```

    """

    label: str
    spec: str | None = None
    scripted: ScriptedReplies | None = None
    make: Callable[[], BaseChatModel] | None = None

    @property
    def offline(self) -> bool:
        """True for the offline model, whose replies are flagged `offline` by design."""
        return self.spec == "offline"

    def chat_model(self) -> str | BaseChatModel:
        """Return what `Agent(model=...)` gets for one run (a fresh scripted model each time)."""
        if self.scripted is not None:
            return FakeChatModel(name_tag="scripted")
        if self.make is not None:
            return self.make()
        if self.spec is None:
            raise ConfigError(f"model {self.label!r} has no spec, script or factory")
        return self.spec

    def before_turn(self, model: object, scenario: str, turn: int) -> None:
        """Load the canned reply of `turn` into a scripted model (no-op for real models)."""
        if self.scripted is None:
            return
        assert isinstance(model, FakeChatModel)
        canned = self.scripted.reply(scenario, turn)
        model.responses = canned.messages(f"{scenario}-{turn}") if canned is not None else []
        model.default = f"(no scripted reply for scenario {scenario!r} turn {turn})"


def model_target(spec: str) -> ModelTarget:
    """Parse a `--model` value: `scripted:PATH`, `offline` or `provider:model`.

    Raises:
        ConfigError: A scripted file does not load.
        ModelSpecError, UnknownProviderError: A malformed spec or unknown provider.

    """
    if spec.startswith(SCRIPTED_PREFIX):
        path = spec.removeprefix(SCRIPTED_PREFIX)
        if not path:
            raise ConfigError(
                "--model scripted: needs a file of canned replies, e.g. "
                "--model scripted:examples/scenarios/scripted/replies.yaml"
            )
        return ModelTarget(label=spec, scripted=load_scripted(path))
    from personae.agents.models import parse_spec, provider_for

    parsed = parse_spec(spec)
    provider_for(parsed.provider)
    return ModelTarget(label=str(parsed), spec=str(parsed))


def planned_runs(
    suites: Sequence[Suite],
    targets: Sequence[ModelTarget],
    *,
    repeat: int = 1,
    select: Callable[[Scenario], bool] | None = None,
) -> list[tuple[Suite, Scenario, ModelTarget, int]]:
    """Return every (suite, scenario, model, repetition) to run, in report order.

    A skipped scenario is listed once per model, whatever `repeat` says.
    """
    jobs: list[tuple[Suite, Scenario, ModelTarget, int]] = []
    for suite in suites:
        for scenario in suite.scenarios:
            if select is not None and not select(scenario):
                continue
            for target in targets:
                times = 1 if scenario.skip else repeat
                jobs.extend((suite, scenario, target, rep) for rep in range(1, times + 1))
    return jobs


async def run_suites(
    suites: Sequence[Suite],
    targets: Sequence[ModelTarget],
    *,
    repeat: int = 1,
    concurrency: int = 4,
    judge: Judge | None = None,
    persona: Path | None = None,
    embedder: Embedder | None = None,
    retry: RetryPolicy | None = None,
    select: Callable[[Scenario], bool] | None = None,
    on_run: Callable[[RunRecord], None] | None = None,
) -> EvalReport:
    """Run every scenario of `suites` against every model, `repeat` times each.

    Args:
        suites: Loaded scenario files.
        targets: Models to run against (`model_target`).
        repeat: Runs per scenario and model; more than 1 shows flakiness.
        concurrency: Most runs at once.
        judge: Decides rubrics; None reports them as not judged.
        persona: A persona file used instead of every suite's own (to test an
            edited prompt against the same scenarios).
        embedder: Embeddings for memory and the offline model; default the bundled MiniLM.
        retry: Retries of runs whose model fails transiently.
        select: Keeps only the scenarios it returns True for.
        on_run: Told of each finished run (for a progress bar).

    Returns:
        The report, runs in the order of `planned_runs`.

    Raises:
        ConfigError: A persona file does not load (the message names the suite),
            or `repeat`/`concurrency` is below 1.
        MissingCredentialsError: A model needs an API key that is not set.

    """
    if repeat < 1 or concurrency < 1:
        raise ConfigError(
            f"repeat={repeat!r} and concurrency={concurrency!r} must be at least 1"
        )
    personas = {id(suite): _persona(suite, persona) for suite in suites}
    for target in targets:
        if target.spec is not None and not target.offline and personas:
            from personae.agents.models import make_chat_model

            # Fail before any run on what every run would fail on (a missing API key).
            make_chat_model(target.spec, persona=next(iter(personas.values())))
    jobs = planned_runs(suites, targets, repeat=repeat, select=select)
    limit = asyncio.Semaphore(concurrency)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.monotonic()

    async def one(job: tuple[Suite, Scenario, ModelTarget, int]) -> RunRecord:
        suite, scenario, target, repetition = job
        async with limit:
            record = await run_scenario(
                suite, scenario, personas[id(suite)], target, repetition=repetition,
                judge=judge, embedder=embedder, retry=retry,
            )  # fmt: skip
        if on_run is not None:
            on_run(record)
        return record

    runs = await asyncio.gather(*(one(job) for job in jobs))
    return EvalReport(
        runs=list(runs),
        models=[t.label for t in targets],
        repeat=repeat,
        judge=judge.label if judge is not None else None,
        started=started,
        seconds=round(time.monotonic() - clock, 3),
    )


def _persona(suite: Suite, override: Path | None) -> Persona:
    path = override if override is not None else suite.persona_path()
    try:
        return load_persona(path)
    except PersonaFileError as exc:
        raise ConfigError(f"{suite.source}: persona {str(path)!r} does not load:\n{exc}") from exc


class _Transient(Exception):
    """The model failed transiently during a run; the run is retried."""


class _RunFailed(Exception):
    """The run cannot be completed; it is reported as an `error`."""


async def run_scenario(
    suite: Suite,
    scenario: Scenario,
    persona: Persona,
    target: ModelTarget,
    *,
    repetition: int = 1,
    judge: Judge | None = None,
    embedder: Embedder | None = None,
    retry: RetryPolicy | None = None,
) -> RunRecord:
    """Run one scenario once against one model, in a fresh data directory.

    Never raises for a failing model or a setup problem: the record's status
    is then `error` and its message says why.

    Args:
        suite: The scenario's suite (its setup applies first).
        scenario: The scenario.
        persona: The character under test.
        target: The model.
        repetition: Which repetition this is, for reports.
        judge: Decides rubrics; None reports them as not judged.
        embedder: Embeddings for memory and the offline model.
        retry: Retries when the model fails transiently.

    """
    record = RunRecord(
        suite=suite.name, scenario=scenario.id, persona=persona.id, model=target.label,
        repetition=repetition,
    )  # fmt: skip
    if scenario.skip is not None:
        record.status, record.message = "skipped", scenario.skip
        return record
    policy = retry or RetryPolicy()
    clock = time.monotonic()
    attempts = 0
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait_random_exponential(multiplier=policy.wait_initial, max=policy.wait_max),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        ):
            with attempt:
                attempts += 1
                record.turns, record.transcript = [], []
                await _attempt(record, suite, scenario, persona, target, judge, embedder)
    except _Transient as exc:
        record.status = "error"
        record.message = f"{exc}; gave up after {attempts} attempts"
    except _RunFailed as exc:
        record.status, record.message = "error", str(exc)
    except Exception as exc:  # a bug must end this run, not the whole eval
        record.status = "error"
        record.message = f"the run crashed: {type(exc).__name__}: {exc}"
    else:
        statuses = {check.status for turn in record.turns for check in turn.checks}
        record.status = "error" if "error" in statuses else (
            "failed" if "failed" in statuses else "passed"
        )
    record.attempts = attempts
    record.seconds = round(time.monotonic() - clock, 3)
    return record


async def _attempt(
    record: RunRecord,
    suite: Suite,
    scenario: Scenario,
    persona: Persona,
    target: ModelTarget,
    judge: Judge | None,
    embedder: Embedder | None,
) -> None:
    setup = suite.setup.merged(scenario.setup)
    scope = Scope(persona=persona.id, user=setup.user or DEFAULT_USER)
    with tempfile.TemporaryDirectory(prefix="personae-eval-", ignore_cleanup_errors=True) as home:
        watch = _FailureWatch()
        model = target.chat_model()
        extractor = None
        if isinstance(model, FakeChatModel):
            from personae.memory.facts import RuleFactExtractor

            # A model fact extractor would eat the script's replies between turns.
            extractor = RuleFactExtractor()
        try:
            agent = Agent(
                persona, model=model, fallbacks=[], home=Path(home), embedder=embedder,
                fact_extractor=extractor, middleware=[watch],
            )  # fmt: skip
        except PersonaeError as exc:
            raise _RunFailed(f"the agent cannot be built: {exc}") from exc
        watch.model = agent.chain[0][1]
        try:
            await _seed(agent, persona, scope, setup)
            await _play(record, agent, scenario, persona, scope, setup, target, model, judge, watch)
            record.transcript = chat_messages(await agent.history(scope))
        finally:
            await agent.aclose()


async def _seed(agent: Agent, persona: Persona, scope: Scope, setup: Setup) -> None:
    for seed in setup.memories:
        stored = await agent.remember(
            scope, seed.text, game_time=seed.game_time, importance=seed.importance,
            speaker=seed.speaker,
        )  # fmt: skip
        if not stored:
            raise _RunFailed(
                f"setup.memories: persona {persona.id!r} has no long-term memory; set "
                "`memory: {enabled: true}` in the persona, or remove the memories"
            )


async def _play(
    record: RunRecord,
    agent: Agent,
    scenario: Scenario,
    persona: Persona,
    scope: Scope,
    setup: Setup,
    target: ModelTarget,
    model: object,
    judge: Judge | None,
    watch: _FailureWatch,
) -> None:
    world = dict(setup.world)
    if setup.time is not None:
        world["time"] = setup.time
    seen_messages = len(await agent.history(scope))
    exchanges: list[tuple[str, str]] = []
    for number, step in enumerate(scenario.turns, 1):
        target.before_turn(model, scenario.id, number)
        watch.errors.clear()
        turn = Turn(
            text=step.user, scope=scope, speaker=setup.speaker, events=list(step.events),
            world={**world, **step.world}, affordances=step.affordances,
        )  # fmt: skip
        reply: Reply = await agent.respond(turn)
        _check_answered(reply, watch, target, number)
        # Let the turn's memory writes finish, as a person's pause before answering would.
        await agent.memory_mark()
        history = await agent.history(scope)
        new, seen_messages = history[seen_messages:], len(history)
        seen = Observed(
            user=step.user, text=reply.text, flags=tuple(reply.flags),
            actions=tuple(ToolCall(a.name, dict(a.arguments)) for a in reply.actions),
            tool_calls=tuple(_tool_calls(new)), trace=tuple(reply.trace),
            emotion=reply.emotion, recalled=tuple(_recalled(reply.trace)),
            profile=persona.safety.profile,
        )  # fmt: skip
        checks = check_reply(step.expect, seen)
        said = step.user or " ".join(f"[{e}]" for e in step.events)
        if step.expect.rubric is not None:
            request = RubricRequest(
                scenario=scenario.id, turn=number, rubric=step.expect.rubric,
                character=persona.display_name, history=tuple(exchanges), user=said,
                reply=reply.text,
            )  # fmt: skip
            checks.append(await judge_rubric(judge, request))
        exchanges.append((said, reply.text))
        record.turns.append(TurnRecord(
            index=number, user=step.user, events=list(step.events), reply=reply.text,
            model=reply.model, flags=list(reply.flags),
            actions=[{"name": a.name, "arguments": dict(a.arguments)} for a in reply.actions],
            tool_calls=[{"name": c.name, "arguments": c.arguments, "ok": c.ok}
                        for c in seen.tool_calls],
            emotion=reply.emotion, recalled=list(seen.recalled), checks=checks,
        ))  # fmt: skip


class _FailureWatch(AgentMiddleware[Any, Any, Any]):
    """Keeps the errors the model under test raised (after the agent's own retries)."""

    def __init__(self) -> None:
        super().__init__()
        self.model: object = None
        self.errors: list[BaseException] = []

    async def awrap_model_call(self, request: Any, handler: Any) -> Any:
        try:
            return await handler(request)
        except Exception as exc:
            if request.model is self.model:
                self.errors.append(exc)
            raise

    def wrap_model_call(self, request: Any, handler: Any) -> Any:
        try:
            return handler(request)
        except Exception as exc:
            if request.model is self.model:
                self.errors.append(exc)
            raise


def _check_answered(reply: Reply, watch: _FailureWatch, target: ModelTarget, turn: int) -> None:
    """Raise when the model under test did not answer (the offline fallback did)."""
    if target.offline or not ({"fallback", "error"} & set(reply.flags)):
        return
    timed_out = any(
        e.get("step") == "error" and e.get("error") == "TimeoutError" for e in reply.trace
    )
    error = watch.errors[-1] if watch.errors else None
    if error is not None:
        status = status_code_of(error)
        what = type(error).__name__ + (f", HTTP {status}" if status is not None else "")
    else:
        what = "the turn timed out" if timed_out else "the turn failed"
    if timed_out or (error is not None and is_transient(error)):
        raise _Transient(f"turn {turn}: model {target.label} failed transiently ({what})")
    raise _RunFailed(
        f"turn {turn}: model {target.label} failed ({what}) and the offline fallback answered"
    )


def _tool_calls(messages: Sequence[BaseMessage]) -> list[ToolCall]:
    """Return the tool calls among `messages`, each marked by whether its result was an error."""
    failed = {
        m.tool_call_id for m in messages if isinstance(m, ToolMessage) and m.status == "error"
    }
    return [
        ToolCall(call["name"], dict(call["args"]), ok=call.get("id") not in failed)
        for message in messages
        if isinstance(message, AIMessage)
        for call in message.tool_calls
    ]


_MEMORY_ITEM = re.compile(r"^memories\[\d+\]: rank \d+: ")


def _recalled(trace: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the recalled memories the last prompt of the turn listed (their previews)."""
    prompts = [e for e in trace if e.get("step") == "prompt"]
    if not prompts:
        return []
    for section in prompts[-1].get("sections", []):
        if section.get("name") == "memories":
            return [_MEMORY_ITEM.sub("", str(item)) for item in section.get("items_kept", [])]
    return []
