"""The exported FixarCore in Verilog: lint, a plain-Verilog testbench, and the driver on
Verilator.

* the export lints without errors (``verilator --lint-only -Wall``);
* one noisy action run by ``fixar_hw/sim/verilog/fixar_core_tb.v`` (host script and memory image
  recorded from :class:`~fixar_hw.host.driver.FixarDriver`) equals the driver's action on the
  Amaranth simulator, the golden engine and :meth:`sw_model.rl.ddpg.DDPGAgent.explore`;
* :class:`~fixar_hw.sim.core_verilator.VerilatorTransport` trains like the NumPy agent bit for
  bit under wait states and stalls on the DMA port, and surfaces bus errors as
  :class:`~fixar_hw.errors.CoreError`.

Builds are cached on disk (``~/.cache/fixar-hw``); the first run of this file compiles the core
twice (a shared library and the testbench), a few minutes.
"""

from __future__ import annotations

import numpy as np
import pytest

from fixar_hw.config import CoreConfig
from fixar_hw.errors import CoreError
from fixar_hw.host.driver import FixarDriver, HardwareAgent
from fixar_hw.sim.core_verilator import VerilatorTransport
from fixar_hw.sim.transport import SimTransport
from fixar_hw.sim.verilog_tb import RecordingTransport, inference_script
from fixar_hw.soc.csr import OPS, register_map
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.arch.ddpg_config import DDPGConfig
from sw_model.arch.engine import EngineConfig
from sw_model.numerics.prng import seed_state
from sw_model.rl.ddpg import DDPGAgent

AGENT = DDPGConfig(hidden=(5,), precision="fixed", batch_size=4, buffer_size=16)
CONFIG = CoreConfig(EngineConfig(AGENT, 3, 1, size=2, cores=2), dma_addr_width=16)
#: One build for every test here; -O0 builds in two thirds of the time of -O1, and the runs
#: are short.
CFLAGS = ("-O0",)

needs_verilator = pytest.mark.skipif(not VerilatorTransport.available(),
                                     reason="verilator-cli or a C++ compiler is not installed")


def _golden_action(agent: DDPGAgent, obs: np.ndarray, seed: int) -> np.ndarray:
    e = CONFIG.engine
    state = en.load_state(e, agent.weights, agent.targets, agent.opt,
                          noise_state=seed_state(seed))
    state = en.load_observation(e, state, obs)
    fmts = ds.activation_formats(AGENT, agent.opt)
    return en.read_action(e, en.execute(e, en.compile_act(e, fmts), state))


# --- the recorded host script (no Verilator) -------------------------------------------------

def test_inference_script_is_the_drivers_traffic():
    agent = DDPGAgent(AGENT, 3, 1, [-2], [2])
    obs = AGENT.act_fmt.from_float(np.array([0.25, -0.5, 0.75]))
    job = inference_script(CONFIG, agent.weights, obs, seed=1234)
    off = {r.name: r.offset for r in register_map(CONFIG).registers}
    script = job.script
    # it checks the core's identity first, seeds the noise, and ends with a poll
    assert [r[:2] for r in script[:3]] == [(3, off["ID"]), (3, off["VERSION"]),
                                           (3, off["CONFIG_ID"])]
    pushes = [i for i, r in enumerate(script) if r[:2] == (1, off["PUSH"])]
    descs = [{r[1]: r[2] for r in script[i - 5:i]} for i in pushes]
    assert any(d[off["DESC0"]] == OPS["seed"] and d[off["DESC1"]] == 1234 for d in descs)
    assert any(d[off["DESC0"]] & 0xF == OPS["run"] for d in descs)
    assert script[-1] == (2, off["STATUS"], 64)
    assert {r[0] for r in script} <= {1, 2, 3, 4}
    # the action comes back through the activation memory's staging window
    assert job.out_region[1] == CONFIG.engine.plan.regions["p.out"].stride * 2  # 64-bit words


def test_recording_transport_refuses_unknown_reads():
    rec = RecordingTransport(CONFIG)
    with pytest.raises(ValueError, match=r"^the recording transport cannot read control word"):
        rec.csr_read(register_map(CONFIG).offset("STEP"))


def test_recording_transport_store_records():
    rec = RecordingTransport(CONFIG)
    rec.mem_write(10, [1, 2])
    rec.mem_write(10, [3])  # nothing queued yet: the preload changes
    rec.csr_write(register_map(CONFIG).offset("PUSH"), 1)
    rec.mem_write(11, [2])  # the same value: nothing to do
    rec.mem_write(11, [5])  # a queued descriptor may have read it: a store record
    rec.mem_write(12, [7])  # a new word: preloaded
    assert rec.memory == {10: 3, 11: 2, 12: 7}
    assert rec.script[-1] == (4, 11, 5)


# --- Verilator ---------------------------------------------------------------------------------

@pytest.mark.verilator
@needs_verilator
def test_export_lints_clean(record_property):
    from fixar_hw.flow.export import lint
    from fixar_hw.sim.core_verilator import TOP, core_verilog

    text = core_verilog(CONFIG)
    warnings = lint(text, TOP)  # raises on an error
    count = sum(line.startswith("%Warning") for line in warnings.splitlines())
    record_property("lint_warnings", count)
    print(f"verilator --lint-only -Wall: {count} warnings, no errors")
    assert f"module {TOP}(" in text.replace(" (", "(")


# a Verilator build of the testbench of its own: the quick profile runs the same testbench
# through the kit's make (test_verilog_tb: an action and a training step against the golden
# model)
@pytest.mark.nightly
@pytest.mark.verilator
@needs_verilator
def test_verilog_testbench_inference_equals_driver_and_golden():
    from fixar_hw.sim.verilog_tb import run_verilog_inference

    agent = DDPGAgent(AGENT, 3, 1, [-2], [2])
    obs_float = np.array([0.3, -0.7, 0.1])
    obs = AGENT.act_fmt.from_float(obs_float)
    seed = AGENT.seed
    fmts = ds.activation_formats(AGENT, agent.opt)

    tb = run_verilog_inference(CONFIG, agent.weights, obs, targets=agent.targets,
                               opt=agent.opt, seed=seed, wait_states=2, cflags=CFLAGS)

    sim = SimTransport(CONFIG)
    drv = FixarDriver(sim, CONFIG)
    drv.load_state(en.load_state(CONFIG.engine, agent.weights, agent.targets, agent.opt),
                   seed=seed)
    on_sim = drv.act(obs, fmts)

    golden = _golden_action(agent, obs, seed)
    explored = AGENT.act_fmt.from_float(agent.explore(obs_float))  # noise from AGENT.seed
    assert tb.tolist() == on_sim.tolist() == golden.tolist() == explored.tolist()


@pytest.mark.verilator
@needs_verilator
@pytest.mark.parametrize(("wait_states", "seed"), [(3, 0), (2, 5)],
                         ids=["fixed-wait", "random-wait-stall"])
def test_verilator_transport_trains_like_numpy(wait_states, seed):
    transport = VerilatorTransport(CONFIG, wait_states=wait_states, seed=seed, cflags=CFLAGS)
    try:
        hw = HardwareAgent(AGENT, 3, 1, [-2], [2], driver=FixarDriver(transport, CONFIG))
        sw = DDPGAgent(AGENT, 3, 1, [-2], [2])
        rng = np.random.default_rng(7)
        for _ in range(2):
            for _ in range(AGENT.batch_size):
                o, a = rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 1)
                r, o2 = rng.uniform(-1, 1), rng.uniform(-1, 1, 3)
                for agent in (hw, sw):
                    agent.remember(o, a, r, o2, False)
            hw.train_step()
            sw.train_step()
        obs = rng.uniform(-1, 1, 3)
        assert np.array_equal(hw.explore(obs), sw.explore(obs))
        hw.sync()
        for net in ("actor", "critic"):
            for key in sw.weights[net]:
                assert np.array_equal(hw.weights[net][key], sw.weights[net][key]), key
                assert np.array_equal(hw.targets[net][key], sw.targets[net][key]), key
                assert np.array_equal(hw.opt.m[net][key], sw.opt.m[net][key]), key
                assert np.array_equal(hw.opt.v[net][key], sw.opt.v[net][key]), key
        assert hw.opt.step == sw.opt.step == 2
        assert transport.cycles > 0
    finally:
        transport.close()


@pytest.mark.verilator
@needs_verilator
def test_verilator_transport_bus_error():
    w_words = CONFIG.engine.plan.w_words
    beats = {g["name"]: g["beats"] for g in register_map(CONFIG).memories}["W"]
    bad = (w_words * beats) // 2  # inside the W staging window (it starts at word 0)
    transport = VerilatorTransport(CONFIG, wait_states=1, error_addrs=[bad], cflags=CFLAGS)
    driver = FixarDriver(transport, CONFIG)
    agent = DDPGAgent(AGENT, 3, 1, [-2], [2])
    with pytest.raises(CoreError, match=r"^the core stopped on a fault: bus_error") as info:
        driver.load_state(en.load_state(CONFIG.engine, agent.weights, agent.targets,
                                        agent.opt))
    assert info.value.cause == "bus_error"
    assert info.value.addr == bad
    assert info.value.words <= bad // beats
    transport.close()


@pytest.mark.verilator
@needs_verilator
def test_verilator_transport_checks_parameters():
    with pytest.raises(TypeError, match=r"^config must be a CoreConfig, not 3$"):
        VerilatorTransport(3)
    with pytest.raises(ValueError, match=r"^wait_states must be from 0 to 1048576, not -1$"):
        VerilatorTransport(CONFIG, wait_states=-1)
    with pytest.raises(ValueError, match=r"^error_addrs entry must be from 0 to 65535, not "
                                         r"65536$"):
        VerilatorTransport(CONFIG, error_addrs=[1 << 16])
    transport = VerilatorTransport(CONFIG, cflags=CFLAGS)
    with pytest.raises(OSError, match=r"answered with a bus error$"):
        transport.csr_read(0x7F)  # unmapped
    transport.close()
    with pytest.raises(RuntimeError, match=r"^the VerilatorTransport is closed$"):
        transport.csr_read(0)
