"""Shared fixtures: every test runs offline, in its own data directory, with a clean env."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "personas"

_SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_BASE_URL")


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Point PERSONAE_HOME at a temp dir; drop PERSONAE_* and provider keys; stay offline."""
    for name in list(os.environ):
        if name.startswith("PERSONAE_") or name.endswith(_SECRET_SUFFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PERSONAE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    from personae.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES
