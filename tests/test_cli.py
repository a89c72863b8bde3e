"""The fixar-hw command line."""

import subprocess
import sys

import numpy as np
import pytest

import fixar_hw.demo
from fixar_hw.cli import main


def test_demo_small_run_is_bit_exact(capsys):
    assert main(["demo", "--vectors", "4", "--terms", "9", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "all results bit-exact" in out
    # the no-stall run of the first configuration: 36 terms, one per cycle, plus latency 3
    assert "int8" in out and " 39 " in out


def test_demo_reports_mismatches(monkeypatch, capsys):
    """A wrong expectation is reported: the comparison is real."""
    real_dot = fixar_hw.demo.dot
    monkeypatch.setattr(fixar_hw.demo, "dot", lambda *a, **k: np.asarray(real_dot(*a, **k)) + 1)
    assert main(["demo", "--vectors", "2", "--terms", "3", "--config", "int8"]) == 1
    assert "MISMATCHES FOUND" in capsys.readouterr().out


def test_demo_writes_vcd(tmp_path):
    vcd = tmp_path / "mac.vcd"
    assert main(["demo", "--vectors", "1", "--terms", "2", "--config", "int8",
                 "--vcd", str(vcd)]) == 0
    assert vcd.read_text().startswith("$date") or "$var" in vcd.read_text()


@pytest.mark.parametrize("argv, message", [
    (["demo", "--vectors", "0"], "expected a positive integer, not '0'"),
    (["demo", "--stall", "1.5"], "expected a number in [0, 1), not '1.5'"),
    (["demo", "--config", "nope"], "unknown --config 'nope'"),
])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_prove_list_and_unknown(capsys):
    assert main(["prove", "--list", "mac.cover"]) == 0
    assert "mac.cover.s4xu4_n3" in capsys.readouterr().out
    assert main(["prove", "nope"]) == 2
    assert "no proof matches 'nope'" in capsys.readouterr().err


@pytest.mark.formal
def test_prove_runs_and_prints_table():
    proc = subprocess.run([sys.executable, "-m", "fixar_hw.cli", "prove", "mac.cover",
                           "mac.mutant"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "property" in proc.stdout and "seconds" in proc.stdout
    assert "FAIL (expected FAIL)" in proc.stdout
