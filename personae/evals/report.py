"""Reports of an eval: a table of pass rates, the failures in detail, JSON and JUnit XML.

The table has one row per scenario and one column per model; a cell gives
passed runs over runs, and says `flaky` when some runs of the same scenario
and model passed and some did not. Below it, every failed expectation is
listed with the turn, what was said and what came back.

The JUnit XML follows the common schema CI systems read (Jenkins, GitLab,
GitHub test reporters): `testsuites` > one `testsuite` per scenario file and
model > one `testcase` per run, with `failure` (an expectation failed),
`error` (the run could not be completed) or `skipped`, each with a
`message`.
"""

from __future__ import annotations

import json
import re
import socket
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from personae.evals.results import EvalReport, RunRecord, ScenarioSummary

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["print_report", "to_junit_xml", "write_json", "write_junit"]

_SHOWN = 160
_NOT_IN_CLASSNAME = re.compile(r"[^\w:-]+")


def print_report(report: EvalReport, console: Console) -> None:
    """Print the pass-rate table, then every failure and error, then a one-line verdict."""
    from rich.markup import escape
    from rich.table import Table

    summaries = report.summaries()
    table = Table(title="Scenario pass rates", title_justify="left")
    table.add_column("scenario", overflow="fold")
    for model in report.models:
        table.add_column(escape(model), overflow="fold")
    cells: dict[tuple[str, str], dict[str, ScenarioSummary]] = {}
    for summary in summaries:
        cells.setdefault((summary.suite, summary.scenario), {})[summary.model] = summary
    for (suite, scenario), by_model in cells.items():
        row = [escape(f"{suite}/{scenario}")]
        row += [_cell(by_model[m]) if m in by_model else "" for m in report.models]
        table.add_row(*row)
    console.print(table)
    for run in report.runs:
        if run.status in ("failed", "error"):
            _print_run(run, report.repeat, console)
    counts = report.counts()
    flaky = [s for s in summaries if s.flaky]
    parts = [f"{counts['passed']} of {counts['runs']} runs passed"]
    if counts["failed"]:
        parts.append(f"{counts['failed']} failed")
    if counts["error"]:
        parts.append(f"{counts['error']} errors")
    if counts["skipped"]:
        parts.append(f"{counts['skipped']} skipped")
    if flaky:
        parts.append(f"{len(flaky)} flaky")
    not_judged = sum(
        1 for run in report.runs for turn in run.turns for check in turn.checks
        if check.status == "not_judged"
    )  # fmt: skip
    if not_judged:
        parts.append(f"{not_judged} rubrics not judged (give --judge SPEC)")
    style = "green" if report.ok else "red"
    for run in report.runs:
        if run.status == "skipped":
            console.print(f"[yellow]skipped[/yellow] {escape(run.suite)}/{escape(run.scenario)} "
                          f"\\[{escape(run.model)}]: {escape(run.message)}", highlight=False,
                          soft_wrap=True)
    console.print(f"[{style}]{'; '.join(parts)}[/{style}]", soft_wrap=True)


def _cell(summary: ScenarioSummary) -> str:
    if summary.skipped == summary.runs:
        return "[yellow]skipped[/yellow]"
    ran = summary.runs - summary.skipped
    rate = summary.pass_rate or 0.0
    text = f"{summary.passed}/{ran} {rate:.0%}"
    if summary.flaky:
        return f"[yellow]{text} flaky[/yellow]"
    if summary.errors and not summary.passed:
        return f"[red]{text} error[/red]"
    return f"[green]{text}[/green]" if rate == 1.0 else f"[red]{text}[/red]"


def _print_run(run: RunRecord, repeat: int, console: Console) -> None:
    from rich.markup import escape

    label = "FAIL" if run.status == "failed" else "ERROR"
    which = f" run {run.repetition}" if repeat > 1 else ""
    console.print(f"\n[bold red]{label}[/bold red] {escape(run.suite)}/{escape(run.scenario)} "
                  f"\\[{escape(run.model)}]{which}", highlight=False, soft_wrap=True)
    if run.message:
        console.print(f"  {escape(run.message)}", highlight=False, soft_wrap=True)
    for turn in run.turns:
        failures = turn.failures
        if not failures:
            continue
        said = turn.user or " ".join(f"[{e}]" for e in turn.events)
        console.print(f"  turn {turn.index}  user: {escape(_clip(said))}", highlight=False,
                      soft_wrap=True)
        console.print(f"          reply: {escape(_clip(turn.reply))}", highlight=False,
                      soft_wrap=True)
        for check in failures:
            console.print(f"    [red]✗ {check.name}[/red]: {escape(check.message)}",
                          highlight=False, soft_wrap=True)


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SHOWN else flat[: _SHOWN - 1] + "…"


def write_json(report: EvalReport, path: Path) -> None:
    """Write the report as one JSON document (`EvalReport.as_dict`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n",
                    encoding="utf-8")


def to_junit_xml(report: EvalReport) -> str:
    """Return the report as JUnit XML (see the module docstring for the layout)."""
    counts = report.counts()
    root = ET.Element("testsuites", {
        "name": "personae eval",
        "tests": str(counts["runs"]),
        "failures": str(counts["failed"]),
        "errors": str(counts["error"]),
        "skipped": str(counts["skipped"]),
        "time": f"{report.seconds:.3f}",
    })
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for run in report.runs:
        groups.setdefault((run.suite, run.model), []).append(run)
    host = socket.gethostname()
    for index, ((suite, model), runs) in enumerate(groups.items()):
        element = ET.SubElement(root, "testsuite", {
            "name": f"{suite} [{model}]",
            "tests": str(len(runs)),
            "failures": str(sum(r.status == "failed" for r in runs)),
            "errors": str(sum(r.status == "error" for r in runs)),
            "skipped": str(sum(r.status == "skipped" for r in runs)),
            "time": f"{sum(r.seconds for r in runs):.3f}",
            # The schema's timestamp has no zone; `started` is UTC.
            "timestamp": report.started[:19],
            "hostname": host,
            "id": str(index),
            "package": suite,
        })
        for run in runs:
            _testcase(element, run, report.repeat)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def _testcase(parent: ET.Element, run: RunRecord, repeat: int) -> None:
    name = run.scenario + (f" (run {run.repetition})" if repeat > 1 else "")
    case = ET.SubElement(parent, "testcase", {
        "name": name,
        # CI tools split class names at dots into packages; a model label may have dots.
        "classname": f"{run.suite}.{_NOT_IN_CLASSNAME.sub('_', run.model)}",
        "time": f"{run.seconds:.3f}",
    })
    if run.status == "skipped":
        ET.SubElement(case, "skipped", {"message": run.message})
    elif run.status == "error":
        problem = run.message or "; ".join(
            f"turn {t.index}: {c.name}: {c.message}" for t, c in run.failures
        )
        error = ET.SubElement(case, "error", {"message": _clip(problem), "type": "RunError"})
        error.text = problem
    elif run.status == "failed":
        failures = run.failures
        first_turn, first = failures[0]
        message = f"turn {first_turn.index}: {first.name}: {first.message}"
        if len(failures) > 1:
            message += f" (and {len(failures) - 1} more)"
        failure = ET.SubElement(case, "failure", {"message": _clip(message),
                                                  "type": "ExpectationFailed"})
        lines = []
        for turn in run.turns:
            if turn.failures:
                lines.append(f"turn {turn.index}: user: {turn.user}")
                lines.append(f"  reply: {turn.reply}")
                lines += [f"  {c.name}: {c.message}" for c in turn.failures]
        failure.text = "\n".join(lines)
    transcript = "\n".join(f"{m['role']}: {m['content']}" for m in run.transcript)
    if transcript:
        ET.SubElement(case, "system-out").text = transcript


def write_junit(report: EvalReport, path: Path) -> None:
    """Write the report as JUnit XML to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_junit_xml(report), encoding="utf-8")
