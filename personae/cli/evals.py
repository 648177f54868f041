"""`personae eval` and `personae export-dataset`: scenario tests, and conversations for tuning.

Heavy imports happen inside the commands, so `personae --help` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from personae.evals.results import EvalReport
    from personae.evals.scenario import Scenario

__all__ = ["eval_command", "export_dataset_command", "register"]


def register(app: typer.Typer) -> None:
    """Add the `eval` and `export-dataset` commands to the `personae` app."""
    app.command("eval")(eval_command)
    app.command("export-dataset")(export_dataset_command)


def _debug() -> bool:
    return os.environ.get("PERSONAE_DEBUG", "") not in ("", "0", "false")


def _fail(exc: Exception | str) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


def eval_command(
    scenarios: Annotated[list[Path] | None, typer.Argument(
        help="Scenario files (YAML or JSON), e.g. examples/scenarios/*.yaml.")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="Model to run against; repeat for several. 'provider:model', "
        "'offline' or 'scripted:PATH' (canned replies). Default: PERSONAE_MODEL, then "
        "offline.")] = None,
    judge: Annotated[str | None, typer.Option(
        help="Model that judges rubrics ('provider:model' or 'scripted:PATH'); without it "
        "rubrics are reported as not judged.")] = None,
    repeat: Annotated[int, typer.Option(
        min=1, help="Runs per scenario and model; above 1 shows flaky scenarios.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Most runs at once.")] = 4,
    attempts: Annotated[int, typer.Option(
        min=1, help="Attempts per run when the model fails transiently (timeouts, 429, "
        "5xx).")] = 3,
    report: Annotated[Path | None, typer.Option(
        help="Write the full report (every turn and check) as JSON here.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here, for CI.")] = None,
    persona: Annotated[Path | None, typer.Option(
        help="Persona file to test instead of the one each scenario file names (e.g. an "
        "edited copy).")] = None,
    tag: Annotated[list[str] | None, typer.Option(
        help="Run only scenarios with this tag; repeat for several.")] = None,
    only: Annotated[list[str] | None, typer.Option(
        "--scenario", help="Run only the scenario with this id; repeat for several.")] = None,
    schema: Annotated[bool, typer.Option(
        "--schema", help="Print the JSON Schema of scenario files and exit.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the report as JSON instead of the table.")] = False,
) -> None:
    """Run scenario files against models and report pass rates; exit 1 on any failure.

    Every run starts from a fresh data directory. Prints a table of pass
    rates per scenario and model, then each failed expectation with the turn
    it failed on. A scenario that passes in some runs and fails in others
    (with --repeat) is reported as flaky.
    """
    from personae.errors import PersonaeError

    if schema:
        from personae.evals.scenario import suite_json_schema

        typer.echo(json.dumps(suite_json_schema(), indent=2, ensure_ascii=False))
        return
    if not scenarios:
        raise _fail("give one or more scenario files, e.g. `personae eval "
                    "examples/scenarios/*.yaml --model offline`")
    try:
        result = _run_eval(
            scenarios, model, judge, repeat=repeat, concurrency=concurrency,
            attempts=attempts, persona=persona, tags=tag or [], only=only or [],
            quiet=as_json,
        )  # fmt: skip
    except PersonaeError as exc:
        if _debug():
            raise
        raise _fail(exc) from None
    from personae.evals.report import print_report, write_json, write_junit

    if report is not None:
        write_json(result, report)
    if junit is not None:
        write_junit(result, junit)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    else:
        from rich.console import Console

        print_report(result, Console(highlight=False))
    raise typer.Exit(0 if result.ok else 1)


def _run_eval(
    paths: list[Path],
    models: list[str] | None,
    judge_spec: str | None,
    *,
    repeat: int,
    concurrency: int,
    attempts: int,
    persona: Path | None,
    tags: list[str],
    only: list[str],
    quiet: bool,
) -> EvalReport:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from personae.errors import ConfigError
    from personae.evals.judge import make_judge
    from personae.evals.loading import load_suites
    from personae.evals.runner import RetryPolicy, model_target, planned_runs, run_suites
    from personae.settings import get_settings

    suites = load_suites(paths)
    specs = models or [get_settings().model or "offline"]
    targets = [model_target(spec) for spec in specs]
    judge = make_judge(judge_spec) if judge_spec else None

    known = {s.id for suite in suites for s in suite.scenarios}
    unknown = [i for i in only if i not in known]
    if unknown:
        raise ConfigError(f"--scenario {', '.join(map(repr, unknown))}: no such scenario in "
                          f"the files given; known: {', '.join(sorted(known))}")

    def select(scenario: Scenario) -> bool:
        if only and scenario.id not in only:
            return False
        return not tags or any(t in scenario.tags for t in tags)

    total = len(planned_runs(suites, targets, repeat=repeat, select=select))
    progress = Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), console=Console(stderr=True), transient=True, disable=quiet,
    )  # fmt: skip
    with progress:
        task = progress.add_task("scenarios", total=total)
        return asyncio.run(run_suites(
            suites, targets, repeat=repeat, concurrency=concurrency, judge=judge,
            persona=persona, retry=RetryPolicy(attempts=attempts), select=select,
            on_run=lambda run: progress.update(
                task, advance=1, description=f"{run.scenario} [{run.model}]"),
        ))  # fmt: skip


def export_dataset_command(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="JSONL file to write; default: standard output.")] = None,
    home: Annotated[Path | None, typer.Option(
        help="Data directory whose conversations to export; default PERSONAE_HOME.")] = None,
    from_report: Annotated[Path | None, typer.Option(
        "--from-report", help="Export the passing runs of a `personae eval --report` file "
        "instead.")] = None,
    persona: Annotated[list[str] | None, typer.Option(
        help="Only this persona id; repeat for several.")] = None,
    user: Annotated[list[str] | None, typer.Option(
        help="Also look for this user's conversations (scopes with memories are found by "
        "themselves); repeat for several.")] = None,
    system: Annotated[str | None, typer.Option(
        help="System message to put first in every conversation.")] = None,
) -> None:
    """Write conversations as chat-format JSONL for fine-tuning, personal data redacted.

    One line per conversation: {"messages": [{"role": ..., "content": ...}]}.
    Replies the safety layer wrote are left out with the message they
    answered. E-mail addresses, phone, card, IBAN and national ID numbers,
    IP addresses and URLs are replaced by placeholders; names are not: read
    a sample before training.
    """
    from personae.errors import PersonaeError
    from personae.evals.dataset import (
        chat_records,
        conversations_from_home,
        conversations_from_report,
        write_jsonl,
    )
    from personae.settings import get_settings

    personas = persona or []
    notes: list[str] = []
    try:
        if from_report is not None:
            conversations = conversations_from_report(from_report, personas=personas)
        else:
            found = asyncio.run(conversations_from_home(
                home or get_settings().home, personas=personas, users=user or []))
            conversations, notes = found.conversations, found.notes
            if found.unmatched:
                notes.append(f"{found.unmatched} stored conversations belong to scopes not "
                             "found (no memories, or another persona or user); name their "
                             "users with --user to include them")
    except PersonaeError as exc:
        if _debug():
            raise
        raise _fail(exc) from None
    records = chat_records(conversations, system=system)
    if output is None:
        for record in records:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        count = len(records)
    else:
        count = write_jsonl(records, output)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    where = str(output) if output is not None else "standard output"
    typer.echo(f"{count} conversations written to {where}", err=True)
