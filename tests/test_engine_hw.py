# amaranth: UnusedElaboratable=no
"""The crown test: whole DDPG training steps on the simulated engine equal the NumPy trainer.

For small networks (Pendulum's 3-16-16-1 and Hypothesis-drawn sizes, batches 1 to 16), the
:class:`fixar_hw.train.engine.TrainingEngine` runs consecutive training steps from the programs of
:func:`sw_model.arch.engine.compile_step`, with the host's QAT switch in between (range registers
read back, formats frozen, tanh table reloaded, programs recompiled), and a noisy action after
every step. After each step every memory image equals :func:`sw_model.arch.engine.execute`'s, the
networks, targets, moments, step count and ranges equal
:func:`sw_model.arch.ddpg_step.fixed_train_step`'s, the action equals
:meth:`sw_model.rl.ddpg.DDPGAgent.explore`'s, and the performance counters equal
:meth:`~fixar_hw.train.description.EngineDescription.cycles`, all with ``==``; the program words
the engine runs are :meth:`~fixar_hw.train.description.EngineDescription.encode`'s.
"""

import os

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from fixar_hw.sim.engine import EngineHost
from fixar_hw.sim.testing import stall_pattern
from fixar_hw.train.description import EngineDescription
from fixar_hw.train.engine import TrainingEngine
from fixar_hw.train.scheduler import ISSUE_CYCLES
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.arch.ddpg_config import DDPGConfig

from .strategies import stall_lists
from .test_engine import Trainer, assert_same, random_batch

PROFILE = os.environ.get("FIXAR_HYPOTHESIS_PROFILE", "ci")
MAX_EXAMPLES = {"ci": 2, "nightly": 30}.get(PROFILE, 2)  # each: training steps on a core
# the largest batch and layer the random training sessions draw: the nightly profile's 16 costs
# minutes of simulation per example
LARGEST = 16 if PROFILE == "nightly" else 6

_IMAGES = ("W", "G", "M", "V", "A")


def run_session(trainer: Trainer, steps: int, seed: int, host_stalls=()) -> list[dict]:
    """Train ``steps`` steps on the hardware and on the trainer, checking after each; returns
    the performance counters of every program."""
    ec, cfg, agent = trainer.ec, trainer.cfg, trainer.agent
    engine = TrainingEngine(ec)
    host = EngineHost(engine)
    rng = np.random.default_rng(seed)
    golden = en.load_state(ec, agent.weights, agent.targets, agent.opt,
                           noise_state=agent.noise_state)
    counters = []
    stall = stall_pattern(list(host_stalls))

    async def bench(ctx):
        nonlocal golden
        host.write_memories(ctx, golden)
        await host.seed(ctx, cfg.seed, stall=stall)
        await host.set_step(ctx, agent.opt.step, stall=stall)
        act16 = None
        n = ec.layers
        for _ in range(steps):
            batch = random_batch(rng, cfg, ec.obs_dim, ec.act_dim)
            program, fmts = trainer.programs()
            golden = en.execute(ec, program, en.load_batch(ec, golden, batch))
            trainer.step(batch)
            # the host: batch in, table for the phase, program, run
            host.write_memories(ctx, en.load_batch(ec, golden, batch), ("A",))
            await host.load_table(ctx, ec.aap.table_image(ec.aap.table_for(fmts[f"actor.x{n}"])))
            end = host.load_program(ctx, program)
            perf = await host.run(ctx, stall=stall)
            assert perf == engine.description.cycles(program)
            counters.append(perf)
            state = host.read_memories(ctx, golden)
            for name in _IMAGES:
                assert np.array_equal(getattr(state, name), getattr(golden, name)), name
            assert state.t == golden.t
            assert state.vector.ranges == golden.vector.ranges
            assert_same(ec, state, agent)
            if act16 is None:
                act16 = en.switch_formats(ec, en.read_opt(ec, state))
            assert act16 == agent.opt.act16
            # a noisy action with the new networks, in the formats after the step
            obs = cfg.act_fmt.from_float(rng.uniform(-1, 1, ec.obs_dim))
            fmts = ds.activation_formats(cfg, agent.opt)
            act_program = en.compile_act(ec, fmts)
            golden = en.execute(ec, act_program, en.load_observation(ec, golden, obs))
            host.write_memories(ctx, en.load_observation(ec, golden, obs), ("A",))
            await host.load_table(ctx, ec.aap.table_image(ec.aap.table_for(fmts[f"actor.x{n}"])))
            host.load_program(ctx, act_program, base=end)
            perf = await host.run(ctx, base=end)
            assert perf == engine.description.cycles(act_program)
            state = host.read_memories(ctx, golden)
            want = trainer.explore(obs)
            assert np.array_equal(en.read_action(ec, state), want)
            assert np.array_equal(en.read_action(ec, golden), want)

    sim = Simulator(engine)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return counters


@pytest.mark.parametrize("half", [False, True])
def test_pendulum_qat_steps_through_the_switch(half):
    """3-16-16-1 Pendulum networks on a 4x4 grid of two cores: 32-bit steps, the switch,
    then 16-bit steps: one of each at batch 4 (quick profile; batch 5 with dual-precision PEs,
    whose weight gradients then end on a pair's missing half), two of each at batch 8
    (nightly). With dual-precision PEs the 16-bit steps run their forward and
    weight-gradient operations in half mode."""
    batch, delay = (8, 2) if PROFILE == "nightly" else (4 + half, 1)
    steps = 2 * delay
    cfg = DDPGConfig(hidden=(16, 16), precision="qat", batch_size=batch, buffer_size=64,
                     qat_delay=delay, seed=5, adam_bias_steps=3)
    trainer = Trainer.make(cfg, 3, 1, size=4, cores=2, half=half)
    assert trainer.ec.aap.half_mode == half
    run_session(trainer, steps=steps, seed=1)
    assert trainer.agent.opt.act16 is not None
    program, _ = trainer.programs()
    ops = [op for op in program if isinstance(op, en.ArrayOp)]
    # after the switch, with dual-precision PEs: every forward and weight gradient runs in
    # half mode (a bias gradient's ones are narrow codes), every backward pass in full mode
    assert [op.half for op in ops] == [half and op.op != "backward" for op in ops]


@pytest.mark.parametrize("bits, units", [(1, 1), (4, 2)])
def test_iterative_update_units_train_like_the_trainer(bits, units):
    """Adam and the soft updates through iterative units: the same memories as the trainer,
    in exactly the cycles the description predicts."""
    cfg = DDPGConfig(hidden=(6,), precision="fixed", batch_size=3, buffer_size=16, seed=4,
                     adam_bias_steps=3)
    trainer = Trainer.make(cfg, 3, 1, size=2, cores=1, update_units=units,
                           update_kind="iterative", update_bits=bits, update_ports="shared")
    counters = run_session(trainer, steps=2, seed=3)
    # the update unit's share of the step, from the closed form: a group of elements every
    # element latency, 3 cycles of read and write-back, ISSUE_CYCLES to issue
    latency = {"adam": 9 + -(-31 // bits) + -(-cfg.weight_fmt.width // bits), "sgd": 5,
               "soft": 5}
    program, _ = trainer.programs()
    want = sum(op.count * (4 // units) * latency[op.op] + 3 + ISSUE_CYCLES
               for op in program if isinstance(op, en.UpdateOp))
    assert counters[-1]["update"] == want


@settings(max_examples=MAX_EXAMPLES)
@given(st.sampled_from(["fixed", "fixed16", "qat"]), st.integers(1, LARGEST),
       st.lists(st.integers(1, LARGEST), min_size=1, max_size=2), st.sampled_from([2, 4]),
       st.integers(1, 3), st.sampled_from([1, 2, 4]),
       st.sampled_from([("pipelined", 2), ("iterative", 1), ("iterative", 2), ("iterative", 4)]),
       st.sampled_from(["own", "shared"]), st.booleans(), st.integers(0, 2**16),
       stall_lists(40))
def test_training_steps_equal_the_trainer(precision, batch, hidden, size, cores, units, kind,
                                           ports, half, seed, host_stalls):
    cfg = DDPGConfig(hidden=tuple(hidden), precision=precision, batch_size=batch,
                     buffer_size=64, qat_delay=1, seed=seed % 97, adam_bias_steps=2)
    trainer = Trainer.make(cfg, 3, 1, size=size, cores=cores, update_units=units,
                           update_kind=kind[0], update_bits=kind[1],
                           max_batch=batch + seed % 3, update_ports=ports, half=half)
    run_session(trainer, steps=2, seed=seed, host_stalls=host_stalls)


def test_sgd_steps_equal_the_golden_engine():
    """SGD programs (the trainer uses Adam): the hardware equals
    :func:`sw_model.arch.engine.execute`,
    whose update is :func:`sw_model.numerics.optim.sgd_fixed` of every tensor."""
    cfg = DDPGConfig(hidden=(5,), precision="fixed16", batch_size=3, buffer_size=8, seed=2,
                     actor_lr=0.01, critic_lr=0.02)
    trainer = Trainer.make(cfg, 2, 2, size=2, cores=2, update_units=2,
                           update_kind="iterative")
    ec, agent = trainer.ec, trainer.agent
    engine = TrainingEngine(ec)
    host = EngineHost(engine)
    rng = np.random.default_rng(7)
    golden = en.load_state(ec, agent.weights, agent.targets, agent.opt)
    fmts = ds.activation_formats(cfg)
    program = en.compile_step(ec, fmts, optimizer="sgd")
    # one per layer of each network
    assert sum(isinstance(op, en.UpdateOp) and op.op == "sgd" for op in program) == 2 * ec.layers
    desc = EngineDescription(ec)  # built on its own: no engine behind it
    words = desc.encode(program)

    async def bench(ctx):
        nonlocal golden
        host.write_memories(ctx, golden)
        await host.load_table(ctx, ec.aap.table_image(ec.aap.table_for(fmts["actor.x2"])))
        for _ in range(2):
            before = golden
            golden = en.load_batch(ec, golden, random_batch(rng, cfg, 2, 2))
            host.write_memories(ctx, golden, ("A",))
            golden = en.execute(ec, program, golden)
            end = host.load_program(ctx, program)
            # the words the engine runs are the description's encoding
            assert [ctx.get(engine.program.data[i].as_value()) for i in range(end)] == words
            assert await host.run(ctx) == desc.cycles(program)
            state = host.read_memories(ctx, golden)
            for name in _IMAGES:
                assert np.array_equal(getattr(state, name), getattr(golden, name)), name
            assert not np.array_equal(golden.W, before.W)  # the step changed the weights
            assert np.array_equal(golden.M, before.M)      # SGD keeps no moments

    sim = Simulator(engine)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_engine_errors():
    cfg = DDPGConfig(hidden=(4,), precision="fixed", batch_size=2, buffer_size=8)
    ec = en.EngineConfig(cfg, 2, 1, size=2, cores=1)
    with pytest.raises(TypeError, match=r"^config must be an EngineConfig, not 3$"):
        TrainingEngine(3)
    with pytest.raises(ValueError, match=r"^program_depth must be an integer of at least 2, "
                                         r"not 1$"):
        TrainingEngine(ec, program_depth=1)
    engine = TrainingEngine(ec, program_depth=4)
    desc = engine.description
    with pytest.raises(TypeError, match=r"^not a descriptor: 5$"):
        desc.descriptor(5)
    with pytest.raises(ValueError, match=r"^update op must be one of"):
        desc.descriptor(en.UpdateOp("rmsprop", 0, 1))
    with pytest.raises(ValueError, match=r"^wait must name units of \('array', 'vector', "
                                         r"'update'\), not 'dma'$"):
        desc.descriptor(en.TickOp(), wait=("dma",))
    with pytest.raises(TypeError, match=r"^wait must be a collection of unit names, not "
                                        r"'array'$"):
        desc.descriptor(en.TickOp(), wait="array")
    assert desc.descriptor(en.TickOp(), wait=("update", "array"))["wait"] == 0b101
    with pytest.raises(ValueError, match=r"^the program needs \d+ descriptors, the program "
                                         r"memory holds 4$"):
        desc.encode(en.compile_step(ec, ds.activation_formats(cfg)))
    Fragment.get(engine, None)  # elaborated: none of its parts is left unused
