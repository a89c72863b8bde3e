"""Benchmarks stay runnable: each runs in its quick mode and prints its reproduce line."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("bench_*.py")))
def test_benchmark_quick(script):
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick", "--repeat", "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reproduce: python benchmarks/" in proc.stdout
