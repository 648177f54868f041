"""Smoke run of benchmarks/endpoint_load.py: both servers answer every request and the
JSON line carries the numbers (no timing checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_endpoint_load_quick_smoke(tmp_path: Path) -> None:
    env = {**os.environ, "PERSONAE_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1",
           "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "endpoint_load.py"), "--quick", "--json"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["users"] == 20 and result["requests"] == 2
    for side in ("bare", "personae"):
        assert result[side]["requests"] == 40, side
        assert result[side]["failures"] == 0, side
        assert 0 < result[side]["p50_ms"] <= result[side]["p99_ms"], side
    assert result["throughput_ratio"] > 0
    assert result["overhead_p99_ms"] == pytest.approx(
        result["personae"]["p99_ms"] - result["bare"]["p99_ms"], abs=0.02)
    assert "p99" in proc.stdout and "throughput ratio" in proc.stdout
    assert list(tmp_path.glob("personae-bench-*")) == []  # the servers cleaned up
