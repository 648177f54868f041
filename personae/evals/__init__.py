"""Scenario tests for characters: catch a persona drifting when the model or the prompt changes.

A scenario file (`personae.evals.scenario`) names a persona and short
conversations with expectations on every reply; `personae.evals.runner` runs
them against one or more models, each run in a fresh data directory;
`personae.evals.report` prints and writes the results (table, JSON, JUnit
XML); `personae.evals.dataset` turns conversations into chat-format JSONL for
fine-tuning. `personae eval` and `personae export-dataset` are the commands.

Nothing in personae imports this package but the command line. Importing it
stays light: the scenario models and loaders below need only pydantic and
PyYAML; the runner loads LangChain when imported.

Example:
    ```python
    import asyncio
    from personae.evals import load_suites
    from personae.evals.runner import model_target, run_suites

    suites = load_suites(["examples/scenarios/innkeeper.yaml"])
    report = asyncio.run(run_suites(suites, [model_target("offline")]))
    print(report.counts())
    ```
"""

from personae.evals.loading import load_suite, load_suites
from personae.evals.scenario import (
    Expectations,
    Scenario,
    ScenarioTurn,
    Setup,
    Suite,
    suite_json_schema,
)

__all__ = [
    "Expectations",
    "Scenario",
    "ScenarioTurn",
    "Setup",
    "Suite",
    "load_suite",
    "load_suites",
    "suite_json_schema",
]
