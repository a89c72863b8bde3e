"""``fixar-hw train`` end to end in a tiny configuration."""

from __future__ import annotations

import csv
import json

import numpy as np

from fixar_hw.cli import main
from sw_model.ddpg import DDPGAgent, DDPGConfig, weights_from_image
from sw_model.image import WeightImage


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


def test_train_cli_reports_bad_configuration(tmp_path, capsys):
    argv = ["train", "--steps", "10", "--gamma", "1.5", "--out", str(tmp_path / "x"),
            "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "fixar-hw train: DDPGConfig gamma must be in [0, 1), not 1.5" in err
    assert not (tmp_path / "x").exists()
