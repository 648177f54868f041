"""What a scenario run leaves behind: `TurnRecord`, `RunRecord`, and the `EvalReport` of them all.

Plain dataclasses that turn into JSON (`as_dict`) and back (`from_dict`), so
a report written by `personae eval --report` can be read again, e.g. by
`personae export-dataset --from-report`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from personae.evals.checks import CheckResult

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "EvalReport",
    "RunRecord",
    "RunStatus",
    "ScenarioSummary",
    "TurnRecord",
]

REPORT_SCHEMA_VERSION = "personae-eval-report/v1"

RunStatus = Literal["passed", "failed", "skipped", "error"]
"""`error`: the run could not be completed (the model kept failing, a setup problem)."""


@dataclass
class TurnRecord:
    """One turn of a run: what was said, what came back, and every check on it."""

    index: int
    """1-based number of the turn in its scenario."""
    user: str
    events: list[str]
    reply: str
    model: str = ""
    flags: list[str] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    emotion: str | None = None
    recalled: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        """The checks that failed (or could not be made)."""
        return [c for c in self.checks if c.failed]

    def as_dict(self) -> dict[str, Any]:
        """Return the turn as JSON-ready data."""
        return {
            "index": self.index, "user": self.user, "events": self.events, "reply": self.reply,
            "model": self.model, "flags": self.flags, "actions": self.actions,
            "tool_calls": self.tool_calls, "emotion": self.emotion, "recalled": self.recalled,
            "checks": [c.as_dict() for c in self.checks],
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnRecord:
        """Read a turn back from `as_dict` data."""
        return cls(
            index=int(data["index"]), user=str(data.get("user", "")),
            events=list(data.get("events", [])), reply=str(data.get("reply", "")),
            model=str(data.get("model", "")), flags=list(data.get("flags", [])),
            actions=list(data.get("actions", [])), tool_calls=list(data.get("tool_calls", [])),
            emotion=data.get("emotion"), recalled=list(data.get("recalled", [])),
            checks=[CheckResult(c["name"], c["status"], c.get("message", ""))
                    for c in data.get("checks", [])],
        )  # fmt: skip


@dataclass
class RunRecord:
    """One run of one scenario against one model."""

    suite: str
    scenario: str
    persona: str
    model: str
    repetition: int = 1
    status: RunStatus = "passed"
    message: str = ""
    """Why it was skipped or could not be completed."""
    turns: list[TurnRecord] = field(default_factory=list)
    transcript: list[dict[str, str]] = field(default_factory=list)
    """The conversation as stored at the end: `{"role", "content", "model"}` items."""
    attempts: int = 1
    seconds: float = 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        """(suite, scenario, model): the runs of one table cell share it."""
        return (self.suite, self.scenario, self.model)

    @property
    def failures(self) -> list[tuple[TurnRecord, CheckResult]]:
        """Every failed check, with its turn."""
        return [(turn, check) for turn in self.turns for check in turn.failures]

    def as_dict(self) -> dict[str, Any]:
        """Return the run as JSON-ready data."""
        return {
            "suite": self.suite, "scenario": self.scenario, "persona": self.persona,
            "model": self.model, "repetition": self.repetition, "status": self.status,
            "message": self.message, "attempts": self.attempts, "seconds": self.seconds,
            "turns": [t.as_dict() for t in self.turns], "transcript": self.transcript,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Read a run back from `as_dict` data."""
        return cls(
            suite=str(data["suite"]), scenario=str(data["scenario"]),
            persona=str(data.get("persona", "")), model=str(data.get("model", "")),
            repetition=int(data.get("repetition", 1)), status=data.get("status", "error"),
            message=str(data.get("message", "")), attempts=int(data.get("attempts", 1)),
            seconds=float(data.get("seconds", 0.0)),
            turns=[TurnRecord.from_dict(t) for t in data.get("turns", [])],
            transcript=[dict(m) for m in data.get("transcript", [])],
        )  # fmt: skip


@dataclass(frozen=True)
class ScenarioSummary:
    """The runs of one scenario against one model: one cell of the table."""

    suite: str
    scenario: str
    model: str
    runs: int
    passed: int
    failed: int
    errors: int
    skipped: int

    @property
    def pass_rate(self) -> float | None:
        """Passed runs over the runs that ran (None when every run was skipped)."""
        ran = self.runs - self.skipped
        return self.passed / ran if ran else None

    @property
    def flaky(self) -> bool:
        """True when some runs passed and some did not (pass rate strictly between 0 and 1)."""
        rate = self.pass_rate
        return rate is not None and 0.0 < rate < 1.0

    def as_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-ready data."""
        return {
            "suite": self.suite, "scenario": self.scenario, "model": self.model,
            "runs": self.runs, "passed": self.passed, "failed": self.failed,
            "errors": self.errors, "skipped": self.skipped, "pass_rate": self.pass_rate,
            "flaky": self.flaky,
        }  # fmt: skip


@dataclass
class EvalReport:
    """Every run of one `personae eval`, in the order scenarios and models were given."""

    runs: list[RunRecord]
    models: list[str]
    repeat: int = 1
    judge: str | None = None
    started: str = ""
    seconds: float = 0.0

    def summaries(self) -> list[ScenarioSummary]:
        """Return one summary per (suite, scenario, model), in run order."""
        groups: dict[tuple[str, str, str], list[RunRecord]] = {}
        for run in self.runs:
            groups.setdefault(run.key, []).append(run)
        return [_summary(key, runs) for key, runs in groups.items()]

    @property
    def ok(self) -> bool:
        """True when no run failed or errored (skipped runs are fine)."""
        return all(run.status in ("passed", "skipped") for run in self.runs)

    def counts(self) -> dict[str, int]:
        """Return how many runs passed, failed, errored and were skipped."""
        counts = {"runs": len(self.runs), "passed": 0, "failed": 0, "error": 0, "skipped": 0}
        for run in self.runs:
            counts[run.status] += 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        """Return the whole report as JSON-ready data (`personae eval --report`)."""
        summaries = self.summaries()
        return {
            "schema": REPORT_SCHEMA_VERSION,
            "started": self.started,
            "seconds": self.seconds,
            "models": self.models,
            "judge": self.judge,
            "repeat": self.repeat,
            "ok": self.ok,
            "counts": self.counts(),
            "flaky": [f"{s.suite}/{s.scenario} [{s.model}]" for s in summaries if s.flaky],
            "scenarios": [s.as_dict() for s in summaries],
            "runs": [run.as_dict() for run in self.runs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalReport:
        """Read a report back from `as_dict` data.

        Raises:
            ValueError: The data is not a personae eval report.

        """
        if data.get("schema") != REPORT_SCHEMA_VERSION:
            raise ValueError(
                f"schema={data.get('schema')!r} is not {REPORT_SCHEMA_VERSION!r}; "
                "give a file written by `personae eval --report`"
            )
        return cls(
            runs=[RunRecord.from_dict(r) for r in data.get("runs", [])],
            models=list(data.get("models", [])),
            repeat=int(data.get("repeat", 1)),
            judge=data.get("judge"),
            started=str(data.get("started", "")),
            seconds=float(data.get("seconds", 0.0)),
        )


def _summary(key: tuple[str, str, str], runs: Sequence[RunRecord]) -> ScenarioSummary:
    count = {status: sum(1 for r in runs if r.status == status)
             for status in ("passed", "failed", "error", "skipped")}  # fmt: skip
    return ScenarioSummary(
        suite=key[0], scenario=key[1], model=key[2], runs=len(runs), passed=count["passed"],
        failed=count["failed"], errors=count["error"], skipped=count["skipped"],
    )  # fmt: skip
