"""``fixar-hw train`` end to end in a tiny configuration."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from fixar_hw.apps.cli import main
from sw_model.rl.ddpg import DDPGAgent, DDPGConfig, weights_from_image
from sw_model.rl.image import WeightImage


def test_train_cli_writes_log_plot_and_image(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--env", "pendulum", "--precision", "qat", "--steps", "450", "--seed", "3",
            "--hidden", "8", "6", "--batch-size", "16", "--warmup", "300", "--qat-delay", "30",
            "--eval-episodes", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "2 episodes, 151 training steps" in text
    assert "final policy, 1 episodes without noise" in text

    with open(out / "returns.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["episode", "env_step", "return"]
    assert [r[:2] for r in rows[1:]] == [["1", "200"], ["2", "400"]]
    assert all(-3300 < float(r[2]) <= 0 for r in rows[1:])

    png = (out / "rewards.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000

    config = DDPGConfig.from_json((out / "config.json").read_text())
    assert config.hidden == (8, 6) and config.precision == "qat" and config.seed == 3
    image = WeightImage.load(out / "weights.fximg")
    contents = weights_from_image(image)
    assert contents.config == config
    assert image.metadata["env"] == "pendulum" and image.metadata["steps"] == "450"
    # the QAT switch happened: the image records 16-bit activation formats
    assert contents.formats["actor.x1"].width == 16
    agent = DDPGAgent.from_image(image)
    assert np.all(np.abs(agent.policy(np.zeros((2, 3)))) <= 1)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_steps"] == 151 and summary["episodes"] == 2
    assert len(summary["eval_returns"]) == 1


@pytest.mark.parametrize(("extra", "message"), [
    (["--gamma", "1.5"], "DDPGConfig gamma must be finite and in [0, 1), not 1.5"),
    (["--noise-theta", "0.15"], "DDPGConfig noise_theta must be 1 in fixed-point modes"),
    (["--precision", "float64", "--noise-theta", "0"],
     "DDPGConfig noise_theta must be finite and in (0, 1], not 0.0"),
])
def test_train_cli_reports_bad_configuration(tmp_path, capsys, extra, message):
    argv = ["train", "--steps", "10", *extra, "--out", str(tmp_path / "x"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"fixar-hw train: {message}" in err
    assert not (tmp_path / "x").exists()


NIGHTLY = os.environ.get("FIXAR_HYPOTHESIS_PROFILE", "ci") == "nightly"


@pytest.mark.parametrize("backend", [
    "sim",
    pytest.param("verilator", marks=[pytest.mark.verilator, pytest.mark.skipif(
        not NIGHTLY, reason="a Verilator build of its own (minutes): nightly profile")]),
])
def test_train_cli_on_a_core_equals_numpy(tmp_path, capsys, backend):
    """``--backend sim`` / ``verilator``: the training steps and noisy actions run on a
    FixarCore (in the simulator with iterative update units, half the simulation time of the
    pipelined ones); returns, evaluation and the final weight image equal the NumPy run's."""
    warmup, steps = ("195", 6) if backend == "sim" else ("150", 51)
    common = ["train", "--env", "pendulum", "--precision", "qat", "--steps", "200", "--seed",
              "5", "--hidden", "6", "--batch-size", "4", "--warmup", warmup, "--qat-delay",
              "3", "--eval-episodes", "1", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "np")]) == 0
    kind = ["--core-update-kind", "iterative"] if backend == "sim" else []
    assert main([*common, "--backend", backend, "--core-size", "2", "--core-cores", "2",
                 *kind, "--out", str(tmp_path / "hw")]) == 0
    text = capsys.readouterr().out
    assert text.count(f"1 episodes, {steps} training steps") == 2
    a, b = (tmp_path / "np", tmp_path / "hw")
    assert (a / "returns.csv").read_text() == (b / "returns.csv").read_text()
    ja, jb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert ja["eval_returns"] == jb["eval_returns"]
    wa, wb = (weights_from_image(WeightImage.load(d / "weights.fximg")) for d in (a, b))
    assert wa.formats == wb.formats and wa.formats["actor.x1"].width == 16
    for net in wa.weights:
        for key in wa.weights[net]:
            assert np.array_equal(wa.weights[net][key], wb.weights[net][key])


@pytest.mark.parametrize(("argv", "message"), [
    (["--core-size", "3"], "EngineConfig size must be a power of two, not 3"),
    (["--core-size", "2", "--core-update-units", "8"],
     "EngineConfig update_units must be a power of two up to size**2 = 4, not 8"),
])
def test_train_cli_refuses_a_core_before_the_run(tmp_path, capsys, argv, message):
    """A grid the engine refuses stops the command before anything is written."""
    out = tmp_path / "x"
    code = main(["train", "--precision", "fixed", "--steps", "10", "--backend", "sim",
                 "--no-progress", "--vcd", str(tmp_path / "w" / "run.vcd"), *argv,
                 "--out", str(out)])
    assert code == 2
    assert f"fixar-hw train: {message}" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "w").exists()


def test_train_cli_sim_backend_needs_fixed_point(tmp_path, capsys):
    argv = ["train", "--precision", "float64", "--backend", "sim", "--steps", "10",
            "--out", str(tmp_path / "x"), "--no-progress"]
    assert main(argv) == 2
    assert "--backend sim needs a fixed-point precision" in capsys.readouterr().err
