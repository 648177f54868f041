"""The public API: what `personae` exports, and that importing it stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import personae

MODULES = [
    "personae.errors", "personae.settings", "personae.tokens", "personae.testing", "personae.heap",
    "personae.personas.model", "personae.personas.loading", "personae.personas.prompt",
    "personae.personas.lore", "personae.agents.turn", "personae.agents.tools",
    "personae.agents.models", "personae.agents.offline", "personae.agents.resilience",
    "personae.agents.agent", "personae.agents.memory_tools", "personae.memory.embeddings",
    "personae.memory.records", "personae.memory.store", "personae.memory.text",
    "personae.memory.keyword", "personae.memory.scoring", "personae.memory.facts",
    "personae.memory.writer", "personae.memory.ingest", "personae.scope", "personae.cli",
    "personae.cli.memory", "personae.personas.cards", "personae.personas.macros",
    "personae.cli.cards", "personae.agents.safety", "personae.integrations.game.protocol",
    "personae.integrations.game.server", "personae.integrations.game.session",
    "personae.integrations.game.state", "personae.integrations.game.recording",
    "personae.integrations.game.limits", "personae.integrations.game.sentences",
    "personae.integrations.game.perception", "personae.integrations.game.client",
    "personae.integrations.game.transports", "personae.cli.game",
    "personae.cli.discord",
    "personae.integrations.discord.config",
    "personae.integrations.discord.policy",
    "personae.integrations.discord.routing",
    "personae.integrations.discord.output",
    "personae.integrations.discord.limits",
    "personae.integrations.discord.state",
    "personae.integrations.discord.context",
    "personae.integrations.discord.bot",
    "personae.integrations.discord.runner",
    "personae.integrations.discord.delivery",
    "personae.integrations.discord.webhooks",
    "personae.integrations.discord.commands",
    "personae.integrations.discord.history",
    "personae.integrations.discord.facts",
    "personae.integrations.discord.why",
    "personae.integrations.discord.doctor",
    "personae.cli.evals",
    "personae.cli.safety",
    "personae.config_files",
    "personae.cli.serve",
    "personae.integrations.companion.app",
    "personae.integrations.companion.audit",
    "personae.integrations.companion.auth",
    "personae.integrations.companion.care",
    "personae.integrations.companion.care_api",
    "personae.integrations.companion.care_models",
    "personae.integrations.companion.care_schedule",
    "personae.integrations.companion.care_store",
    "personae.integrations.companion.care_voice",
    "personae.integrations.companion.care_webhook",
    "personae.integrations.companion.config",
    "personae.integrations.companion.erasure",
    "personae.integrations.companion.memory_api",
    "personae.integrations.companion.openai_api",
    "personae.integrations.companion.ratelimit",
    "personae.evals.scenario",
    "personae.evals.checks",
    "personae.evals.runner",
    "personae.evals.report",
    "personae.evals.dataset",
    "personae.evals.loading",
    "personae.evals.language",
    "personae.evals.scripted",
    "personae.evals.judge",
    "personae.evals.results",
]


def test_all_is_sorted_and_importable() -> None:
    assert personae.__all__ == sorted(personae.__all__)
    for name in personae.__all__:
        assert getattr(personae, name) is not None


def test_every_module_declares_all() -> None:
    for name in MODULES:
        module = importlib.import_module(name)
        exported = module.__all__
        assert exported, name
        for attr in exported:
            assert hasattr(module, attr), f"{name}.{attr}"


def test_import_personae_pulls_in_nothing_heavy() -> None:
    code = (
        "import sys, personae, personae.cli; "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'langchain', 'discord', "
        "'fastapi', 'chromadb') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
