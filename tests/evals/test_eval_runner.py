"""The runner: fresh data per run, retries on transient model errors, limits, flakiness, rubrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage

from personae.evals import runner
from personae.evals.judge import ModelJudge, make_judge
from personae.evals.loading import load_suite
from personae.evals.results import EvalReport, RunRecord
from personae.evals.runner import ModelTarget, RetryPolicy, model_target, run_suites
from personae.evals.scenario import Suite
from personae.testing import FakeChatModel, FakeEmbeddings

PERSONA = """\
schema: personae/v1
id: mira
name: Mira
fallbacks: ["Hm, I couldn't say.", "No idea, friend."]
examples: [{user: "Do you have a room?", reply: "Two silver a night."}]
memory: {enabled: true}
"""
NO_WAIT = RetryPolicy(attempts=3, wait_initial=0.0, wait_max=0.0)


@pytest.fixture(autouse=True)
def _one_model_attempt(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The agent's own retries would wait between attempts; the run's retries are tested here."""
    monkeypatch.setenv("PERSONAE_RETRY_ATTEMPTS", "1")
    from personae.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _suite(tmp_path: Path, scenarios: str, persona: str = PERSONA) -> Suite:
    (tmp_path / "mira.yaml").write_text(persona, encoding="utf-8")
    path = tmp_path / "suite.yaml"
    path.write_text(f"persona: mira.yaml\nscenarios:\n{scenarios}", encoding="utf-8")
    return load_suite(path)


def _scripted(tmp_path: Path, text: str) -> ModelTarget:
    path = tmp_path / "replies.yaml"
    path.write_text(text, encoding="utf-8")
    return model_target(f"scripted:{path}")


async def _run(suite: Suite, target: ModelTarget, **options: Any) -> EvalReport:
    options.setdefault("retry", NO_WAIT)
    return await run_suites([suite], [target], embedder=FakeEmbeddings(), **options)


ROOM = """\
  - id: room
    turns:
      - user: Do you have a room?
        expect: {contains: silver}
"""


def _factory(*scripts: list[Any]) -> tuple[Callable[[], FakeChatModel], list[FakeChatModel]]:
    """Make one FakeChatModel per run, each playing the next script (the last one repeats)."""
    made: list[FakeChatModel] = []

    def make() -> FakeChatModel:
        script = scripts[min(len(made), len(scripts) - 1)]
        model = FakeChatModel(responses=list(script), name_tag="fake")
        made.append(model)
        return model

    return make, made


async def test_runs_never_share_memory_or_history(tmp_path: Path) -> None:
    suite = _suite(tmp_path, """\
  - id: tell
    turns:
      - user: My name is Ann and I love dark ale from the north.
      - user: What do I love to drink?
        expect: {recalls: dark ale}
  - id: fresh
    turns:
      - user: What do I love to drink?
        expect: {recalls: dark ale}
""")
    target = _scripted(tmp_path, "replies:\n  tell: [Hello Ann., Dark ale.]\n  fresh: [No idea.]\n")
    report = await _run(suite, target, repeat=2, concurrency=4)
    by = {(r.scenario, r.repetition): r for r in report.runs}
    for rep in (1, 2):
        # What turn 1 told is recalled on turn 2 of the same run ...
        assert by[("tell", rep)].status == "passed"
        assert any("dark ale" in m for m in by[("tell", rep)].turns[1].recalled)
        assert len(by[("tell", rep)].transcript) == 4
        # ... and never in another run, even one running at the same time.
        fresh = by[("fresh", rep)]
        assert fresh.status == "failed"
        assert fresh.turns[0].checks[0].message.startswith("nothing was recalled")
        assert fresh.transcript == [
            {"role": "user", "content": "What do I love to drink?"},
            {"role": "assistant", "content": "No idea.", "model": "scripted"},
        ]


async def test_a_transient_model_failure_retries_the_whole_run(tmp_path: Path) -> None:
    timeout = httpx.ConnectTimeout("connect timed out")
    make, made = _factory([timeout], ["Two silver a night."])
    report = await _run(_suite(tmp_path, ROOM), ModelTarget("flaky-net", make=make))
    [run] = report.runs
    assert (run.status, run.attempts) == ("passed", 2)
    assert run.turns[0].reply == "Two silver a night." and run.turns[0].model == "fake"
    assert len(made) == 2  # a fresh model (and agent, and data directory) per attempt


async def test_transient_failures_give_up_after_the_last_attempt(tmp_path: Path) -> None:
    make, made = _factory([httpx.ConnectTimeout("down")])
    report = await _run(_suite(tmp_path, ROOM), ModelTarget("down", make=make),
                        retry=RetryPolicy(attempts=2, wait_initial=0, wait_max=0))
    [run] = report.runs
    assert (run.status, run.attempts, len(made)) == ("error", 2, 2)
    assert run.message == ("turn 1: model down failed transiently (ConnectTimeout); "
                           "gave up after 2 attempts")
    assert not report.ok


async def test_other_model_errors_end_the_run_at_once_as_an_error(tmp_path: Path) -> None:
    make, made = _factory([ValueError("400 bad request")])
    report = await _run(_suite(tmp_path, ROOM), ModelTarget("bad", make=make))
    [run] = report.runs
    assert (run.status, run.attempts, len(made)) == ("error", 1, 1)
    assert run.message == ("turn 1: model bad failed (ValueError) and the offline "
                           "fallback answered")


async def test_a_crash_ends_only_its_own_run(tmp_path: Path) -> None:
    def make() -> FakeChatModel:
        raise RuntimeError("broken factory")

    suite = _suite(tmp_path, ROOM)
    scripted = _scripted(tmp_path, "replies:\n  room: [Two silver a night.]\n")
    report = await run_suites([suite], [ModelTarget("boom", make=make), scripted],
                              embedder=FakeEmbeddings(), retry=NO_WAIT)
    assert [r.status for r in report.runs] == ["error", "passed"]
    assert report.runs[0].message == "the run crashed: RuntimeError: broken factory"


async def test_runs_stay_within_the_concurrency_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running, peak = 0, 0

    async def attempt(record: RunRecord, *args: Any) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(5):
            await asyncio.sleep(0)
        running -= 1

    monkeypatch.setattr(runner, "_attempt", attempt)
    suite = _suite(tmp_path, ROOM)
    finished: list[RunRecord] = []
    report = await _run(suite, _scripted(tmp_path, "replies: {}\n"), repeat=9, concurrency=2,
                        on_run=finished.append)
    assert len(report.runs) == len(finished) == 9
    assert peak == 2
    assert [r.repetition for r in report.runs] == list(range(1, 10))


async def test_repeats_show_flaky_scenarios(tmp_path: Path) -> None:
    make, _ = _factory(["Two silver a night."], ["Ask elsewhere."], ["Two silver a night."],
                       ["Ask elsewhere."])
    report = await _run(_suite(tmp_path, ROOM), ModelTarget("coin", make=make), repeat=4,
                        concurrency=1)
    [summary] = report.summaries()
    assert (summary.passed, summary.failed, summary.pass_rate, summary.flaky) == (2, 2, 0.5, True)
    assert report.as_dict()["flaky"] == ["suite/room [coin]"]
    steady = await _run(_suite(tmp_path, ROOM), ModelTarget("steady", make=_factory(
        ["Two silver a night."])[0]), repeat=3)
    assert not steady.summaries()[0].flaky and steady.summaries()[0].pass_rate == 1.0


async def test_skipped_scenarios_run_once_per_model_and_do_not_fail(tmp_path: Path) -> None:
    suite = _suite(tmp_path, ROOM + "    skip: the rule is not written yet\n")
    report = await _run(suite, _scripted(tmp_path, "replies: {}\n"), repeat=3)
    [run] = report.runs
    assert (run.status, run.message) == ("skipped", "the rule is not written yet")
    assert report.ok


async def test_setup_memories_need_a_persona_with_memory(tmp_path: Path) -> None:
    persona = PERSONA.replace("memory: {enabled: true}", "memory: {enabled: false}")
    suite = _suite(tmp_path, """\
  - id: regular
    setup: {memories: [Ann drinks dark ale.]}
    turns: [{user: The usual please}]
""", persona)
    report = await _run(suite, _scripted(tmp_path, "replies: {regular: [Aye.]}\n"))
    assert report.runs[0].status == "error"
    assert "persona 'mira' has no long-term memory" in report.runs[0].message


async def test_world_events_and_time_reach_the_turn(tmp_path: Path) -> None:
    suite = _suite(tmp_path, """\
  - id: storm
    setup: {world: {weather: storm}, time: dusk}
    turns:
      - events: [Thunder shakes the windows.]
        world: {location: the porch}
""")
    make, made = _factory(["Quite a storm."])
    report = await _run(suite, ModelTarget("fake", make=make))
    assert report.runs[0].status == "passed", report.runs[0].message
    system, human = made[0].calls[0][0], made[0].calls[0][-1]
    assert "storm" in system.text and "dusk" in system.text and "the porch" in system.text
    assert human.text == "[Thunder shakes the windows.]"


def _verdict_call(passed: bool, reason: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "RubricVerdict", "id": "v1", "type": "tool_call",
                                      "args": {"passed": passed, "reason": reason}}])


RUBRIC = """\
  - id: room
    turns:
      - user: Do you have a room?
        expect: {rubric: Warm and names a price.}
"""


async def test_rubrics_are_judged_by_structured_output_with_retries(tmp_path: Path) -> None:
    judge_model = FakeChatModel(responses=[
        httpx.ReadTimeout("slow"), _verdict_call(False, "Names a price but is curt.")])
    judge = ModelJudge(judge_model, label="fake-judge", attempts=2, wait_initial=0.0)
    suite = _suite(tmp_path, RUBRIC)
    target = _scripted(tmp_path, "replies: {room: [Two silver.]}\n")
    report = await _run(suite, target, judge=judge)
    check = report.runs[0].turns[0].checks[0]
    assert (check.name, check.status) == ("rubric", "failed")
    assert check.message == "'Warm and names a price.': Names a price but is curt."
    assert "Criterion: Warm and names a price." in judge_model.calls[-1][-1].text
    assert "Two silver." in judge_model.calls[-1][-1].text
    assert report.judge == "fake-judge"


async def test_without_a_judge_rubrics_are_not_judged_and_do_not_fail(tmp_path: Path) -> None:
    suite = _suite(tmp_path, RUBRIC)
    report = await _run(suite, _scripted(tmp_path, "replies: {room: [Two silver.]}\n"))
    check = report.runs[0].turns[0].checks[0]
    assert check.status == "not_judged" and "no --judge given" in check.message
    assert report.runs[0].status == "passed"


async def test_a_failing_judge_is_an_error_never_a_pass(tmp_path: Path) -> None:
    judge = ModelJudge(FakeChatModel(responses=[ValueError("no tools")]), label="j",
                       attempts=3, wait_initial=0.0)
    report = await _run(_suite(tmp_path, RUBRIC),
                        _scripted(tmp_path, "replies: {room: [Two silver.]}\n"), judge=judge)
    assert report.runs[0].status == "error"
    assert report.runs[0].turns[0].checks[0].message == "judge j failed (ValueError)"


def test_the_offline_model_cannot_judge() -> None:
    from personae.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot judge a rubric"):
        make_judge("offline")


def test_unknown_providers_are_refused_before_anything_runs() -> None:
    from personae.errors import UnknownProviderError

    with pytest.raises(UnknownProviderError, match="nosuch"):
        model_target("nosuch:model")


async def test_a_missing_api_key_is_reported_before_anything_runs(tmp_path: Path) -> None:
    from personae.errors import MissingCredentialsError

    with pytest.raises(MissingCredentialsError, match="OPENAI_API_KEY"):
        await _run(_suite(tmp_path, ROOM), model_target("openai:gpt-4o-mini"))
