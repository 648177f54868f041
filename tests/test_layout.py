"""The test tree: pytest imports test modules by basename, so two with one name break collection."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_module_basenames_are_unique() -> None:
    names = Counter(p.name for p in TESTS.rglob("*.py") if p.name != "conftest.py")
    repeated = sorted(name for name, count in names.items() if count > 1)
    assert repeated == [], f"rename one of each: {repeated}"
