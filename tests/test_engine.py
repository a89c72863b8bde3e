"""The engine's golden model: programs executed on memory images equal the NumPy trainer.

``sw_model.arch.engine.execute(compile_step(...))`` must leave networks, targets, Adam's moments,
the step count and the QAT ranges exactly as :func:`sw_model.arch.ddpg_step.fixed_train_step`
does, over several consecutive steps and through the QAT switch, and ``compile_act`` must give
the actions of :meth:`sw_model.rl.ddpg.DDPGAgent.explore`. The hardware is compared with this
model in ``tests/test_engine_hw.py``.
"""

import itertools
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.arch.ddpg_config import DDPGConfig
from sw_model.numerics.fixed import FixedFormat
from sw_model.rl.ddpg import DDPGAgent


def random_batch(rng: np.random.Generator, cfg: DDPGConfig, obs: int, act: int) -> ds.Batch:
    """A batch of ``act_fmt`` codes: states and actions in [-1, 1], rewards in [-8, 0]."""
    f, b = cfg.act_fmt, cfg.batch_size
    return ds.Batch(f.from_float(rng.uniform(-1, 1, (b, obs))),
                    f.from_float(rng.uniform(-1, 1, (b, act))),
                    f.from_float(rng.uniform(-8, 0, b)),
                    f.from_float(rng.uniform(-1, 1, (b, obs))), rng.integers(0, 2, b))


@dataclass
class Trainer:
    """The NumPy side of a comparison: an agent stepped by ``fixed_train_step``."""

    cfg: DDPGConfig
    ec: en.EngineConfig
    agent: DDPGAgent

    @classmethod
    def make(cls, cfg: DDPGConfig, obs: int, act: int, **engine) -> "Trainer":
        return cls(cfg, en.EngineConfig(cfg, obs, act, **engine),
                   DDPGAgent(cfg, obs, act, [-2.0] * act, [2.0] * act))

    def step(self, batch: ds.Batch) -> None:
        a = self.agent
        a.weights, a.opt, a.targets, _ = ds.fixed_train_step(a.weights, a.targets, a.opt,
                                                             batch, self.cfg)

    def explore(self, obs_codes: np.ndarray) -> np.ndarray:
        f = self.cfg.act_fmt
        return f.from_float(self.agent.explore(f.to_float(obs_codes)))

    def programs(self) -> tuple[list, list]:
        """The step program for the agent's current phase, and the action program of the
        phase after that step (what the host compiles)."""
        opt = self.agent.opt
        fmts = ds.activation_formats(self.cfg, opt)
        tracking = self.cfg.precision == "qat" and opt.act16 is None
        return en.compile_step(self.ec, fmts, tracking=tracking), fmts


def assert_same(ec: en.EngineConfig, state: en.EngineState, agent: DDPGAgent) -> None:
    """The engine state holds exactly the agent's networks, targets and optimizer state."""
    w, t = en.read_weights(ec, state)
    opt = en.read_opt(ec, state)
    for net in ds.NETS:
        for key in agent.weights[net]:
            for name, got, want in (("weights", w, agent.weights), ("targets", t, agent.targets),
                                    ("m", opt.m, agent.opt.m), ("v", opt.v, agent.opt.v)):
                assert np.array_equal(got[net][key], want[net][key]), (name, net, key)
    assert opt.step == agent.opt.step
    assert dict(opt.ranges) == dict(agent.opt.ranges)


@st.composite
def setups(draw):
    precision = draw(st.sampled_from(["fixed", "fixed16", "qat"]))
    hidden = tuple(draw(st.lists(st.integers(1, 20), min_size=1, max_size=3)))
    cfg = DDPGConfig(hidden=hidden, precision=precision,
                     batch_size=draw(st.integers(1, 16)), buffer_size=64,
                     qat_delay=draw(st.integers(1, 3)), seed=draw(st.integers(0, 1000)),
                     adam_bias_steps=draw(st.integers(1, 6)),
                     rounding=draw(st.sampled_from(["floor", "half_up", "half_even"])),
                     tau=draw(st.sampled_from([0.005, 0.25, 1.0])))
    obs, act = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    size = draw(st.sampled_from([1, 2, 4, 8]))
    return Trainer.make(cfg, obs, act, size=size, cores=draw(st.integers(1, 3)),
                        max_batch=cfg.batch_size + draw(st.integers(0, 3)))


@given(setups(), st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_programs_equal_the_trainer(trainer, seed, steps):
    rng = np.random.default_rng(seed)
    ec, cfg, agent = trainer.ec, trainer.cfg, trainer.agent
    state = en.load_state(ec, agent.weights, agent.targets, agent.opt,
                          noise_state=agent.noise_state)
    act16 = None  # the host's record of the QAT switch
    for _ in range(steps):
        batch = random_batch(rng, cfg, ec.obs_dim, ec.act_dim)
        program, _ = trainer.programs()
        state = en.execute(ec, program, en.load_batch(ec, state, batch))
        trainer.step(batch)
        assert_same(ec, state, agent)
        # the host's QAT switch, from the engine's step count and range registers
        if act16 is None:
            act16 = en.switch_formats(ec, en.read_opt(ec, state))
        assert act16 == agent.opt.act16
        # a noisy action with the new networks and formats
        obs = cfg.act_fmt.from_float(rng.uniform(-1, 1, ec.obs_dim))
        fmts = ds.activation_formats(cfg, agent.opt)
        state = en.execute(ec, en.compile_act(ec, fmts), en.load_observation(ec, state, obs))
        assert np.array_equal(en.read_action(ec, state), trainer.explore(obs))


def test_bias_gradient_is_a_weight_gradient_against_ones():
    """The identity the programs rely on, on extreme codes."""
    from sw_model.arch import aap

    d_fmt, out = FixedFormat(8, 5), FixedFormat(6, 2)
    d = np.array([[d_fmt.min_int, d_fmt.max_int, 3], [d_fmt.min_int, -1, 0]])
    for rounding in ("floor", "half_up", "half_even"):
        want = aap.bias_gradient(d, d_fmt=d_fmt, out_fmt=out, rounding=rounding)
        ones = np.ones((2, 1), dtype=np.int64)
        got = aap.weight_gradient(d, ones, d_fmt=d_fmt, x_fmt=FixedFormat(8, 0), out_fmt=out,
                                  rounding=rounding)[:, 0]
        assert np.array_equal(got, want)


def test_plan_layout():
    cfg = DDPGConfig(hidden=(16, 16), precision="fixed", batch_size=8, buffer_size=64)
    ec = en.EngineConfig(cfg, 3, 1, size=4, cores=2)
    plan = ec.plan
    # actor: 16x3 (4 tiles) + bias (4) + 16x16 (16) + bias (4) + 1x16 (4) + bias (1)
    assert plan.net_range("actor") == (0, 33)
    # critic: 16x4 (4) + 4 + 16 + 4 + 4 + 1
    assert plan.net_range("critic") == (33, 33)
    assert plan.online_words == 66 and plan.w_words == 132
    r = plan.regions["c.x0"]
    assert (r.length, r.batch, r.stride) == (4, 8, 1)
    regions = sorted(plan.regions.values(), key=lambda r: r.base)
    for a, b in itertools.pairwise(regions):
        assert a.base + a.words == b.base  # packed, no overlap
    assert regions[-1].base + regions[-1].words == plan.a_words


def test_configuration_errors():
    cfg = DDPGConfig(hidden=(16, 16), precision="fixed", batch_size=8, buffer_size=64)
    with pytest.raises(ValueError, match=r"^the networks do not fit: the parameter memory "
                                         r"needs 132 words, EngineConfig gives 100$"):
        en.EngineConfig(cfg, 3, 1, size=4, w_words=100)
    with pytest.raises(ValueError, match=r"activation memory needs \d+ words, EngineConfig "
                                         r"gives 10$"):
        en.EngineConfig(cfg, 3, 1, size=4, a_words=10)
    with pytest.raises(ValueError, match=r"^EngineConfig ddpg must have a fixed-point "
                                         r"precision, not 'float32'$"):
        en.EngineConfig(DDPGConfig(), 3, 1)
    with pytest.raises(TypeError, match=r"^EngineConfig ddpg must be a DDPGConfig, not 3$"):
        en.EngineConfig(3, 3, 1)
    with pytest.raises(ValueError, match=r"^EngineConfig size must be a power of two, not 3$"):
        en.EngineConfig(cfg, 3, 1, size=3)
    with pytest.raises(ValueError, match=r"^EngineConfig obs_dim must be at least 1, not 0$"):
        en.EngineConfig(cfg, 0, 1)
    with pytest.raises(ValueError, match=r"^EngineConfig update_units must be a power of two"):
        en.EngineConfig(cfg, 3, 1, size=2, update_units=8)
    with pytest.raises(ValueError, match=r"^EngineConfig update_kind must be one of "
                                         r"\('pipelined', 'iterative'\), not 'serial'$"):
        en.EngineConfig(cfg, 3, 1, size=2, update_kind="serial")
    with pytest.raises(ValueError, match=r"^EngineConfig update_bits must be one of "
                                         r"\(1, 2, 4\), not 3$"):
        en.EngineConfig(cfg, 3, 1, size=2, update_bits=3)
    with pytest.raises(TypeError, match=r"update_bits"):
        en.EngineConfig(cfg, 3, 1, size=2, update_bits="2")
    with pytest.raises(ValueError, match=r"^EngineConfig update_ports must be one of "
                                         r"\('own', 'shared'\), not 'none'$"):
        en.EngineConfig(cfg, 3, 1, size=2, update_ports="none")
    with pytest.raises(ValueError, match=r"^EngineConfig max_batch must be at least "
                                         r"ddpg.batch_size \(8\), not 4$"):
        en.EngineConfig(cfg, 3, 1, max_batch=4)
    ec = en.EngineConfig(cfg, 3, 1, size=4, max_batch=16)
    with pytest.raises(ValueError, match=r"^batch must be from 1 to 16, not 17$"):
        en.compile_step(ec, ds.activation_formats(cfg), batch=17)
