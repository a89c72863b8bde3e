# amaranth: UnusedElaboratable=no
"""FixarCore through its buses: the driver's training steps and actions equal the NumPy trainer.

The core runs in Amaranth's simulator (:class:`fixar_hw.sim.transport.SimTransport`) with random
stalls and wait states on the DMA port and random gaps between the host's control requests.
Everything is compared with ``==``: networks, targets, Adam's moments, step count and QAT ranges
read back through the DMA and the registers against
:func:`sw_model.arch.ddpg_step.fixed_train_step`,
actions against :meth:`sw_model.rl.ddpg.DDPGAgent.explore`, the engine counters against
:meth:`fixar_hw.train.description.EngineDescription.cycles`. Faults (injected bus errors, malformed
descriptors and weight images) stop the queue, are reported, and change nothing else.
"""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixar_hw.config import CoreConfig
from fixar_hw.errors import CoreError
from fixar_hw.host.driver import FixarDriver, HardwareAgent
from fixar_hw.sim.transport import SimTransport
from fixar_hw.soc.csr import CAUSES, COUNTERS, MAGIC, OPS, register_map, staging_windows
from fixar_hw.soc.system import driver_memory_words
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.arch.ddpg_config import DDPGConfig
from sw_model.numerics.fixed import FixedFormat
from sw_model.rl.ddpg import DDPGAgent

from .test_engine import random_batch

PROFILE = os.environ.get("FIXAR_HYPOTHESIS_PROFILE", "ci")
MAX_EXAMPLES = {"ci": 2, "nightly": 30}.get(PROFILE, 2)  # each: training steps on a core


def small(precision="fixed", hidden=(5,), batch=4, size=2, cores=2, kind="pipelined",
          **kw) -> CoreConfig:
    """A small core. ``kind="iterative"`` halves the simulator's time per cycle (it evaluates
    the pipelined update unit's 40-odd stages every cycle) for tests that run no update pass;
    a training step takes several times the cycles with one iterative unit."""
    cfg = DDPGConfig(hidden=hidden, precision=precision, batch_size=batch, buffer_size=32,
                     qat_delay=1, warmup_steps=0)
    return CoreConfig(en.EngineConfig(cfg, 3, 1, size=size, cores=cores, update_kind=kind),
                      dma_addr_width=16, **kw)


def fill(agents, rng, n, obs=3, act=1):
    """Identical transitions into every agent's replay buffer."""
    for _ in range(n):
        o, a = rng.uniform(-1, 1, obs), rng.uniform(-1, 1, act)
        r, o2, done = rng.uniform(-8, 0), rng.uniform(-1, 1, obs), bool(rng.integers(0, 2))
        for agent in agents:
            agent.remember(o, a, r, o2, done)


def assert_agents_equal(hw: HardwareAgent, sw: DDPGAgent) -> None:
    hw.sync()
    for net in ds.NETS:
        for key in sw.weights[net]:
            for what, got, want in (("weights", hw.weights, sw.weights),
                                    ("targets", hw.targets, sw.targets),
                                    ("m", hw.opt.m, sw.opt.m), ("v", hw.opt.v, sw.opt.v)):
                assert np.array_equal(got[net][key], want[net][key]), (what, net, key)
    assert hw.opt.step == sw.opt.step
    assert dict(hw.opt.ranges) == dict(sw.opt.ranges)
    assert hw.opt.act16 == sw.opt.act16


# --- configuration and register map --------------------------------------------------------------

def test_config_json_round_trip_and_errors():
    c = small(csr_bus="axi-lite", queue_depth=5)
    assert CoreConfig.from_json(c.to_json()) == c
    assert c.config_id != small().config_id
    with pytest.raises(ValueError, match="csr_bus"):
        small(csr_bus="apb")
    with pytest.raises(ValueError, match="program_depth"):
        small(program_depth=100)
    with pytest.raises(TypeError, match="queue_depth"):
        small(queue_depth="4")
    with pytest.raises(TypeError, match="engine"):
        CoreConfig("engine")
    with pytest.raises(ValueError, match="JSON is invalid"):
        CoreConfig.from_json("{")
    data = c.to_dict()
    data["engine"]["colour"] = 1
    with pytest.raises(ValueError, match="colour"):
        CoreConfig.from_dict(data)


def test_summary_says_whether_half_mode_is_used():
    """CoreConfig.summary names the grid and, for a half-mode request, whether the formats
    allow it (16-bit narrow activations fit half a 32-bit operand; with 16-bit activations
    and deltas they do not)."""
    ddpg = DDPGConfig(hidden=(5,), precision="qat", batch_size=4, buffer_size=16)
    dual = CoreConfig(en.EngineConfig(ddpg, 3, 1, size=2, cores=1, half=True))
    assert CoreConfig.from_json(dual.to_json()) == dual
    lines = dual.summary().splitlines()
    assert lines[0].startswith("PE array: 1 core(s) of 2x2 PEs (4 PEs); weights 32-bit")
    assert lines[1] == ("PE precision: dual precision: forward and weight-gradient operations "
                        "on 16-bit activations run two products a PE per cycle")
    q = FixedFormat(16, 10)
    narrow = DDPGConfig(hidden=(5,), precision="qat", batch_size=4, buffer_size=16,
                        weight_fmt=q, act_fmt=q, delta_fmt=q, grad_fmt=q, act16_fmt=q)
    full = CoreConfig(en.EngineConfig(narrow, 3, 1, size=2, cores=1, half=True))
    assert full.summary().splitlines()[1] == (
        "PE precision: half mode asked for, but the 16-bit narrow activations are wider "
        "than half the PE's operand (8 bits): full mode")
    assert "full precision" in small().summary()


def test_register_map_documents_agree(tmp_path):
    """The JSON, the C header (compiled and run) and the Markdown give the same offsets."""
    rm = register_map(small())
    doc = json.loads(rm.to_json())
    offsets = {r["name"]: r["byte_offset"] for r in doc["registers"]}
    words = {r["name"]: r["offset"] for r in doc["registers"]}
    assert len(set(offsets.values())) == len(offsets)
    assert not {f"{n}_WORD" for n in offsets} & set(offsets)  # no clash with the word names
    assert doc["magic"] == MAGIC and doc["ops"] == OPS and doc["causes"] == CAUSES
    assert [m["name"] for m in doc["memories"]] == list("WGMVAPT")
    md = rm.to_markdown()
    for name in offsets:
        assert f"`{name}`" in md
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    (tmp_path / "regs.h").write_text(rm.to_c_header())
    body = "\n".join(f'    printf("{n} %u\\n", (unsigned)FIXAR_REG_{n});\n'
                     f'    printf("{n}_WORD %u\\n", (unsigned)FIXAR_REG_{n}_WORD);'
                     for n in offsets)
    (tmp_path / "main.c").write_text(
        f'#include <stdio.h>\n#include "regs.h"\nint main(void) {{\n{body}\n'
        '    printf("MAGIC %u\\n", (unsigned)FIXAR_MAGIC);\n'
        '    printf("STATUS_CAUSE_SHIFT %d\\n", FIXAR_STATUS_CAUSE_SHIFT);\n'
        '    printf("MEM_V_BEATS %d\\n", FIXAR_MEM_V_BEATS);\n    return 0;\n}\n')
    subprocess.run([cc, "-Wall", "-Werror", "-o", str(tmp_path / "main"),
                    str(tmp_path / "main.c")], check=True)
    out = subprocess.run([str(tmp_path / "main")], check=True, capture_output=True,
                         text=True).stdout
    got = dict(line.split() for line in out.splitlines())
    for name, off in offsets.items():
        assert int(got[name]) == off
        assert int(got[f"{name}_WORD"]) == words[name] == off // 4
    assert int(got["MAGIC"]) == MAGIC
    assert int(got["STATUS_CAUSE_SHIFT"]) == rm["STATUS"].fields[3].lsb == 4
    assert int(got["MEM_V_BEATS"]) == doc["memories"][3]["beats"]


def test_identity_registers_and_bus_errors():
    c = small()
    tr = SimTransport(c)
    drv = FixarDriver(tr, c)
    rm = drv.regmap
    e = c.engine
    assert drv.read("ID") == MAGIC
    assert drv.read("CONFIG_ID") == c.config_id
    g = drv.read("GEOMETRY")
    assert (g & 0xFF, g >> 8 & 0xFF, g >> 24) == (e.size, e.cores, c.queue_depth)
    assert drv.read("DIMS") == e.obs_dim | e.act_dim << 16
    unmapped = max(r.offset for r in rm.registers) + 1
    mapped = {r.offset for r in rm.registers}
    hole = next(o for o in range(unmapped) if o not in mapped)
    for bad in (lambda: tr.csr_read(hole), lambda: tr.csr_write(rm.offset("ID"), 1),
                lambda: tr.csr_read(rm.offset("PUSH"))):
        with pytest.raises(OSError, match="bus error"):
            bad()
    assert drv.read("ID") == MAGIC
    status = drv.status()
    assert (status["busy"], status["error"], status["level"]) == (0, 0, 0)
    with pytest.raises(ValueError, match="CONFIG_ID"):
        FixarDriver(tr, small(queue_depth=3))


# --- training through the buses ------------------------------------------------------------------

@st.composite
def setups(draw):
    # every simulated cycle counts in the quick profile: smaller networks and batches there
    width, most = (8, 6) if PROFILE == "nightly" else (5, 4)
    precision = draw(st.sampled_from(["fixed", "fixed16", "qat"]))
    hidden = tuple(draw(st.lists(st.integers(1, width), min_size=1, max_size=2)))
    batch = draw(st.integers(1, most))
    # (4x4 grids: nightly; the quick profile has them through the engine in test_engine_hw)
    size = draw(st.sampled_from([2, 4] if PROFILE == "nightly" else [2]))
    cores = draw(st.integers(1, 2))
    return small(precision, hidden, batch, size, cores,
                 max_outstanding=draw(st.integers(1, 4)), queue_depth=draw(st.integers(2, 6)))


@settings(max_examples=MAX_EXAMPLES)
@given(setups(), st.integers(0, 2**32 - 1), st.sampled_from(["none", "light", "heavy"]))
def test_driver_training_equals_the_numpy_trainer(config, seed, busy):
    """Steps through the QAT switch, an action after each; the core's DMA port sees random
    stalls and wait states, its control port random gaps."""
    r = np.random.default_rng(seed)
    p = {"none": 0.0, "light": 0.2, "heavy": 0.6}[busy]
    tr = SimTransport(config, stall=lambda: r.random() < p,
                      wait=lambda: int(r.integers(0, 4)) if r.random() < p else 0,
                      host_gap=lambda: int(r.integers(0, 3)) if r.random() < p else 0)
    drv = FixarDriver(tr, config)
    cfg, e = config.engine.ddpg, config.engine
    hw = HardwareAgent(cfg, e.obs_dim, e.act_dim, [-2.0], [2.0], driver=drv)
    sw = DDPGAgent(cfg, e.obs_dim, e.act_dim, [-2.0], [2.0])
    data = np.random.default_rng(seed + 1)
    fill((hw, sw), data, cfg.batch_size + 2)
    for _ in range(2):
        info = hw.train_step()
        sw.train_step()
        obs = data.uniform(-1, 1, e.obs_dim)
        assert np.array_equal(hw.explore(obs), sw.explore(obs))
        fill((hw, sw), data, 1)
    assert_agents_equal(hw, sw)
    # the last step's engine counters are the exact cycle model's
    fmts = ds.activation_formats(cfg, replace_step(sw.opt, -1))
    tracking = cfg.precision == "qat" and sw.opt.act16 is None
    want = drv.description.cycles(en.compile_step(e, fmts, tracking=tracking))
    assert {k: info["counters"][k] for k in want} == want


def replace_step(opt, delta):
    from dataclasses import replace

    return replace(opt, step=opt.step + delta)


def test_counters_irq_and_the_queue():
    c = small()
    tr = SimTransport(c)
    drv = FixarDriver(tr, c)
    e = c.engine
    agent = DDPGAgent(e.ddpg, 3, 1, [-2.0], [2.0])
    drv.load_state(en.load_state(e, agent.weights, agent.targets, agent.opt), seed=7)
    drv.clear()
    drv.write("IRQ_ENABLE", 1)
    assert not tr.irq()
    fmts = ds.activation_formats(e.ddpg)
    before = tr.cycles
    counters = drv.train_step(fmts, batch=random_batch(np.random.default_rng(0), e.ddpg, 3, 1))
    assert drv.read("IRQ_PENDING") & 1
    assert tr.irq()
    drv.write("IRQ_PENDING", 1)
    assert drv.read("IRQ_PENDING") == 0
    assert not tr.irq()
    assert counters["busy_cycles"] >= counters["cycles"]
    assert counters["cycles"] == drv.description.cycles(en.compile_step(e, fmts))["cycles"]
    assert 0 < counters["busy_cycles"] <= tr.cycles - before
    assert set(counters) == set(COUNTERS)
    assert drv.read("STEP") == 1


def test_staging_windows_overlap_and_the_driver_never_clobbers_a_queued_transfer():
    c = small(kind="iterative")
    mems = {g["name"]: g["depth"] * g["beats"] for g in register_map(c).memories}
    windows = staging_windows(c, ext_base=5)
    # two groups, each packed from ext_base in register-map order
    for group in (("W", "M", "V"), ("G", "A", "P", "T")):
        end = 5
        for name in group:
            assert windows[name] == (end, mems[name])
            end += mems[name]
    assert driver_memory_words(c) == max(sum(mems[n] for n in "WMV"),
                                         sum(mems[n] for n in "GAPT"))
    assert windows["A"][0] < windows["W"][0] + mems["W"]  # the groups overlap
    with pytest.raises(ValueError, match="ext_base"):
        staging_windows(c, ext_base=-1)
    # a W transfer and an A transfer queued together: A's staging overlaps W's, so the driver
    # runs W's transfer before it stages A's; both arrive whole
    tr = SimTransport(c)
    drv = FixarDriver(tr, c)
    plan = c.engine.plan
    rng = np.random.default_rng(5)
    w = rng.integers(-2**15, 2**15, drv.read_memory("W", 0, plan.w_words).shape)
    a = rng.integers(-2**15, 2**15, drv.read_memory("A", 0, plan.a_words).shape)
    drv.write_memory("W", 0, w, run=False)
    drv.write_memory("A", 0, a, run=False)
    drv.run_queue()
    assert np.array_equal(drv.read_memory("A", 0, plan.a_words), a)
    assert np.array_equal(drv.read_memory("W", 0, plan.w_words), w)


# --- faults ------------------------------------------------------------------------------------

def test_bus_error_stops_the_transfer_and_the_queue():
    c = small()
    # the W staging window starts at bus word 0: fail on the third word's second beat
    beats = register_map(c).memories[0]["beats"]
    bad = 2 * beats + 1
    tr = SimTransport(c, error=lambda addr, we: addr == bad and not we)
    drv = FixarDriver(tr, c)
    e = c.engine
    plan = e.plan
    old = drv.read_memory("W", 0, plan.w_words)
    rng = np.random.default_rng(3)
    new = rng.integers(-2**15, 2**15, old.shape)
    with pytest.raises(CoreError) as info:
        drv.write_memory("W", 0, new)
    assert (info.value.cause, info.value.addr, info.value.words) == ("bus_error", bad, 2)
    # queued behind the failing transfer: a run and a step load, both dropped
    assert drv.status()["error"] and drv.status()["level"] == 0
    drv.clear()
    now = drv.read_memory("W", 0, plan.w_words)
    assert np.array_equal(now[:2], new[:2])
    assert np.array_equal(now[2:], old[2:])
    # a fault in the middle of a queue drops what follows it
    drv.transport.mem_write(0, [0] * (plan.w_words * beats))
    drv.push("dma_in", mem="W", arg=0, count=4, ext=0)
    drv.push("set_step", arg=77)
    drv.push("run", arg=0)
    with pytest.raises(CoreError, match="bus_error"):
        drv.run_queue()
    assert drv.read("STEP") == 0
    assert drv.counters()["ops"] == 0
    # pushes are dropped while the error stands; clear, and the core works again
    drv.push("set_step", arg=5)
    assert drv.status()["level"] == 0
    drv.clear()
    drv.push("set_step", arg=5)
    drv.run_queue()
    assert drv.read("STEP") == 5


def test_malformed_descriptors_are_rejected():
    c = small()
    tr = SimTransport(c)
    drv = FixarDriver(tr, c)
    depth = {g["name"]: g["depth"] for g in drv.regmap.memories}
    drv.write("DESC1", 12345)
    writes = []
    real_write = tr.csr_write
    tr.csr_write = lambda off, v: (writes.append(off), real_write(off, v))
    for bad, match in ((dict(op="jump"), "op must be"),
                       (dict(op="dma_in", mem="Q"), "mem must be"),
                       (dict(op="dma_out", mem="P", count=1), "cannot be read"),
                       (dict(op="dma_in", mem="A", arg=depth["A"] - 1, count=2), "count"),
                       (dict(op="dma_in", mem="W", ext=1 << 16), "ext"),
                       (dict(op="run", arg=c.program_depth), "arg"),
                       (dict(op="seed", arg=-1), "arg")):
        with pytest.raises(ValueError, match=match):
            drv.push(**bad)
    with pytest.raises(ValueError, match="lanes"):
        drv.write_memory("W", 0, np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="range"):
        drv.write_memory("A", 0, np.full((1, c.engine.size), 2**40))
    assert writes == []
    tr.csr_write = real_write
    assert drv.read("DESC1") == 12345
    # the hardware's own checks: an unknown op, a program address beyond the memory, a DMA
    # range beyond its memory; each faults with its cause and changes nothing
    image = drv.read_memory("A", 0, depth["A"])
    for words, cause in (({"DESC0": 0}, "bad_op"), ({"DESC0": 9}, "bad_op"),
                         ({"DESC0": OPS["run"], "DESC1": c.program_depth}, "bad_op"),
                         ({"DESC0": OPS["dma_in"] | 4 << 8, "DESC1": depth["A"] - 1,
                           "DESC2": 2}, "bad_dma"),
                         ({"DESC0": OPS["dma_out"] | 5 << 8, "DESC2": 1}, "bad_dma")):
        for name in ("DESC0", "DESC1", "DESC2", "DESC3", "DESC4"):
            drv.write(name, words.get(name, 0))
        drv.write("PUSH", 1)
        with pytest.raises(CoreError) as info:
            drv.run_queue()
        assert info.value.cause == cause
        drv.clear()
    assert np.array_equal(drv.read_memory("A", 0, depth["A"]), image)


def test_weight_images_are_checked_before_loading(tmp_path):
    c = small()
    tr = SimTransport(c)
    drv = FixarDriver(tr, c)
    e = c.engine
    good = DDPGAgent(e.ddpg, 3, 1, [-2.0], [2.0])
    for bad_cfg, obs in ((e.ddpg.replace(hidden=(6,)), 3), (e.ddpg, 4),
                         (e.ddpg.replace(precision="float64"), 3)):
        agent = DDPGAgent(bad_cfg, obs, 1, [-2.0], [2.0])
        path = tmp_path / "bad.fximg"
        agent.to_image().save(path)
        before = dict(tr.memory)
        with pytest.raises(ValueError, match="weight image"):
            drv.load_weight_image(path)
        assert tr.memory == before
    good.to_image().save(tmp_path / "good.fximg")
    drv.load_weight_image(tmp_path / "good.fximg")
    weights, targets, opt = drv.read_state()
    for net in ds.NETS:
        for key in good.weights[net]:
            assert np.array_equal(weights[net][key], good.weights[net][key])
            assert np.array_equal(targets[net][key], good.weights[net][key])
    assert opt.step == 0
