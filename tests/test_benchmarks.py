"""Smoke run of the benchmarks: they run end to end and print their JSON line (no timing checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_turn_overhead_smoke(tmp_path: Path) -> None:
    env = {**os.environ, "PERSONAE_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "turn_overhead.py"), "--turns", "3", "--json"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["turns"] == 3
    assert result["personae_p50_ms"] > 0 and result["bare_p50_ms"] > 0
    assert result["bare_exit_p50_ms"] > 0 and result["ratio_exit_p50"] > 0
    assert result["chat_first_reply_s"] > 0


@pytest.mark.slow
def test_memory_speed_quick_smoke(tmp_path: Path) -> None:
    env = {**os.environ, "PERSONAE_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "memory_speed.py"), "--quick", "--json"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["many_users"]["personae_p95_ms"] > 0
