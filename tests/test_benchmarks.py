"""Benchmarks stay runnable: each runs in its quick mode and prints its reproduce line.

The quick modes of the benchmarks that synthesize, place and route or build a Verilator model
take minutes each (the bit-width search's and the array's most of a minute on a cold
machine); they run in the nightly profile, and in the quick profile every benchmark at least
parses its command line (``--help``), so that none rots unnoticed. What they measure is tested
on its own: the sweep in ``test_sweep``, placement in ``test_pnr``, the engine and the core in
``test_engine_hw`` and ``test_core``, the search in ``test_autoq`` and ``test_search_cli``, the
array in ``test_aap`` and ``test_array_verilator``, the cost model's synthesis in ``test_cost``,
the SP2 grid in ``test_sp2_hw``.
"""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCH.glob("bench_*.py"))
#: Quick modes of minutes (synthesis, place and route, Verilator builds), or of most of a minute
#: on a cold machine (the search's training and rollouts, the array's Verilator build), or that
#: synthesize (the cost model's and the SP2 grid's, about 16 s each).
SLOW = {"bench_sweep.py", "bench_array_fpga.py", "bench_engine.py", "bench_core.py",
        "bench_update.py", "bench_autoq.py", "bench_array.py", "bench_cost_model.py",
        "bench_sp2_array.py"}


@pytest.mark.parametrize("script", [
    pytest.param(s, marks=[pytest.mark.nightly] if s in SLOW else []) for s in SCRIPTS])
def test_benchmark_quick(script):
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick", "--repeat", "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reproduce: python benchmarks/" in proc.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_parses_its_command_line(script):
    proc = subprocess.run([sys.executable, str(BENCH / script), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--quick" in proc.stdout
