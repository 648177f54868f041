"""Rubrics: a judge model decides whether a reply meets a criterion written in plain words.

`--judge SPEC` names any chat model spec; it answers through structured
output (`RubricVerdict`: `passed` and a short `reason`), so no reply text is
parsed. Transient errors of the judge (timeouts, 429, 5xx) are retried with
tenacity; a judge that still fails makes the check an `error`, never a pass.
`--judge scripted:PATH` reads verdicts from the `judge` section of a
scripted-replies file, for tests. Without `--judge`, rubrics are reported as
`not_judged`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from personae.agents.resilience import is_transient, status_code_of
from personae.errors import ConfigError
from personae.evals.checks import CheckResult
from personae.evals.scripted import RubricVerdict, ScriptedReplies, load_scripted

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["Judge", "ModelJudge", "RubricRequest", "ScriptedJudge", "judge_rubric", "make_judge"]

_INSTRUCTIONS = (
    "You review one reply of a fictional character in a conversation. Decide only whether "
    "the reply meets the criterion you are given, judging the reply itself and not the "
    "character's other qualities. Give `passed` and a reason of one or two sentences that "
    "names what in the reply decided it."
)


@dataclass(frozen=True)
class RubricRequest:
    """What a judge is asked about one reply.

    Attributes:
        scenario: Scenario id.
        turn: 1-based turn number.
        rubric: The criterion, as written in the scenario.
        character: The character's display name.
        history: Earlier exchanges of the scenario, `(user, reply)` pairs, oldest first.
        user: What the user said on this turn.
        reply: The reply to judge.

    """

    scenario: str
    turn: int
    rubric: str
    character: str
    history: Sequence[tuple[str, str]]
    user: str
    reply: str

    def prompt(self) -> str:
        """Return the judge's message: the conversation, the reply and the criterion."""
        lines = [f"Character: {self.character}", "", "Conversation so far:"]
        for said, answered in self.history:
            lines += [f"User: {said}", f"{self.character}: {answered}"]
        if not self.history:
            lines.append("(none)")
        lines += ["", f"User: {self.user}", "", "Reply to judge:", self.reply, "",
                  f"Criterion: {self.rubric}"]  # fmt: skip
        return "\n".join(lines)


class Judge(Protocol):
    """Decides rubrics; `label` names it in reports."""

    label: str

    async def verdict(self, request: RubricRequest) -> RubricVerdict | None:
        """Return the verdict, or None when this judge has none for the request."""
        ...


class ModelJudge:
    """A chat model asked for a `RubricVerdict` through structured output.

    Args:
        model: The judge model; it must support tool calling or JSON output.
        label: Its name in reports (its spec).
        attempts: Most attempts per verdict on transient errors.
        wait_initial: Scale of the first wait between attempts, in seconds.

    """

    def __init__(
        self, model: BaseChatModel, *, label: str, attempts: int = 3, wait_initial: float = 1.0
    ) -> None:
        self.model = model
        self.label = label
        self.attempts = attempts
        self.wait_initial = wait_initial
        self._structured = model.with_structured_output(RubricVerdict)

    async def verdict(self, request: RubricRequest) -> RubricVerdict | None:
        """Ask the model; transient errors are retried, others raised."""
        from langchain_core.messages import HumanMessage, SystemMessage

        messages = [SystemMessage(_INSTRUCTIONS), HumanMessage(request.prompt())]
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_random_exponential(multiplier=self.wait_initial, max=20.0),
            retry=retry_if_exception(is_transient),
            reraise=True,
        ):
            with attempt:
                answer = await self._structured.ainvoke(messages)
        if isinstance(answer, RubricVerdict):
            return answer
        return RubricVerdict.model_validate(answer)


class ScriptedJudge:
    """Verdicts read from the `judge` section of a scripted-replies file."""

    def __init__(self, scripted: ScriptedReplies, *, label: str) -> None:
        self.scripted = scripted
        self.label = label

    async def verdict(self, request: RubricRequest) -> RubricVerdict | None:
        """Return the scripted verdict for the request's scenario and turn, if any."""
        return self.scripted.verdict(request.scenario, request.turn)


def make_judge(spec: str) -> Judge:
    """Make the judge `--judge SPEC` names: `scripted:PATH` or a chat model spec.

    Raises:
        ConfigError: `offline` (it cannot judge), or a scripted file that does not load.
        ModelSpecError, UnknownProviderError, MissingCredentialsError: A bad model spec.

    """
    if spec.startswith("scripted:"):
        return ScriptedJudge(load_scripted(spec.removeprefix("scripted:")), label=spec)
    from personae.agents.models import OFFLINE, make_chat_model, parse_spec
    from personae.personas.model import Persona

    if str(parse_spec(spec)) == OFFLINE:
        raise ConfigError(
            "--judge offline: the offline model only repeats authored lines and cannot judge "
            "a rubric; use a real model, e.g. --judge openai:gpt-4o-mini"
        )
    # make_chat_model reads sampling settings from a persona; a judge should not improvise.
    judge = Persona(id="judge", name="Judge", model={"temperature": 0.0})
    return ModelJudge(make_chat_model(spec, persona=judge), label=spec)


async def judge_rubric(judge: Judge | None, request: RubricRequest) -> CheckResult:
    """Decide one rubric: `not_judged` without a judge, `error` when the judge fails.

    Error messages name the error's class and HTTP status only: the text of an
    error may quote the conversation.
    """
    if judge is None:
        return CheckResult("rubric", "not_judged",
                           f"not judged (no --judge given): {request.rubric!r}")
    try:
        verdict = await judge.verdict(request)
    except Exception as exc:
        status = status_code_of(exc)
        shown = type(exc).__name__ + (f", HTTP {status}" if status is not None else "")
        return CheckResult("rubric", "error", f"judge {judge.label} failed ({shown})")
    if verdict is None:
        return CheckResult("rubric", "not_judged",
                           f"judge {judge.label} has no verdict for this turn")
    message = f"{request.rubric!r}: {verdict.reason}".strip()
    return CheckResult("rubric", "passed" if verdict.passed else "failed", message)
