"""DDPG: configuration, float gradients, the fixed-point step, QAT, reproducibility, images."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sw_model.arch import aap
from sw_model.arch import ddpg_step as ds
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.optim import mul_shift
from sw_model.rl.ddpg import (
    DDPGAgent,
    DDPGConfig,
    ReplayBuffer,
    evaluate,
    train,
    weights_from_image,
    weights_to_image,
)
from sw_model.rl.envs import make
from sw_model.rl.image import Tensor, WeightImage, config_hash_of

from .strategies import codes

OBS, ACT = 3, 1

# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"hidden": ()}, ValueError, r"^DDPGConfig hidden must have at least one layer, not \(\)$"),
    ({"hidden": 64}, TypeError, r"^DDPGConfig hidden must be a tuple of integers, not 64$"),
    ({"hidden": (64, 0)}, ValueError, r"^DDPGConfig hidden size must be from 1 to 65536, not 0$"),
    ({"precision": "fixed8"}, ValueError,
     r"^DDPGConfig precision must be one of 'float64', 'float32', 'fixed', 'fixed16', 'qat', "
     r"not 'fixed8'$"),
    ({"batch_size": 0}, ValueError, r"^DDPGConfig batch_size must be from 1 to 1048576, not 0$"),
    ({"batch_size": 2.0}, TypeError, r"^DDPGConfig batch_size must be an integer, not 2\.0$"),
    ({"gamma": 1.0}, ValueError, r"^DDPGConfig gamma must be finite and in \[0, 1\), not 1\.0$"),
    ({"tau": 0}, ValueError, r"^DDPGConfig tau must be finite and in \(0, 1\], not 0$"),
    ({"actor_lr": "x"}, TypeError, r"^DDPGConfig actor_lr must be a real number, not 'x'$"),
    ({"qat_delay": 0}, ValueError, r"^DDPGConfig qat_delay must be at least 1, not 0$"),
    ({"buffer_size": 10}, ValueError,
     r"^DDPGConfig buffer_size must be at least batch_size \(64\), not 10$"),
    ({"weight_fmt": (32, 20)}, TypeError,
     r"^DDPGConfig weight_fmt must be a FixedFormat, not \(32, 20\)$"),
    ({"grad_fmt": FixedFormat(40, 20)}, ValueError,
     r"^DDPGConfig grad_fmt must be signed and at most 32 bits wide, not FixedFormat\(40, 20\)$"),
    ({"act16_fmt": FixedFormat(16, 18)}, ValueError,
     r"^DDPGConfig act16_fmt must be at least 2 bits and no wider nor finer than act_fmt"),
    ({"deriv_fmt": FixedFormat(32, 31)}, ValueError,
     r"^DDPGConfig deriv_fmt must hold 1 exactly \(frac <= width - 2\), not "
     r"FixedFormat\(32, 31\)$"),
    ({"rounding": "nearest"}, ValueError,
     r"^DDPGConfig rounding must be one of 'floor', 'half_up', 'half_even', not 'nearest'$"),
    ({"precision": "fixed", "actor_lr": 1e-9}, ValueError,
     r"^DDPGConfig actor_lr must be at least one step of weight_fmt FixedFormat\(32, 20\), "
     r"not 1e-09$"),
    ({"precision": "qat", "tau": 1e-6}, ValueError,
     r"^DDPGConfig tau must be representable in 16 fraction bits in fixed-point modes, "
     r"not 1e-06$"),
    ({"seed": -1}, ValueError, r"^DDPGConfig seed must be at least 0, not -1$"),
    ({"noise_theta": 0}, ValueError,
     r"^DDPGConfig noise_theta must be finite and in \(0, 1\], not 0$"),
    ({"noise_theta": 1.5}, ValueError,
     r"^DDPGConfig noise_theta must be finite and in \(0, 1\], not 1\.5$"),
    ({"precision": "qat", "noise_theta": 0.15}, ValueError,
     r"^DDPGConfig noise_theta must be 1 in fixed-point modes \(the core's noise generator "
     r"draws independent samples\), not 0\.15$"),
])
def test_config_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        DDPGConfig(**kwargs)


def test_config_json_round_trip():
    cfg = DDPGConfig(hidden=(7, 5, 3), precision="qat", qat_delay=17, gamma=0.98,
                     weight_fmt=FixedFormat(24, 16), act16_fmt=FixedFormat(12, 8), seed=4)
    text = cfg.to_json()
    back = DDPGConfig.from_json(text)
    assert back == cfg and isinstance(back.hidden, tuple)
    assert back.to_json() == text
    with pytest.raises(ValueError, match=r"^DDPGConfig has no field 'lr'$"):
        DDPGConfig.from_dict({"lr": 1.0})
    with pytest.raises(ValueError, match=r"^DDPGConfig JSON is invalid"):
        DDPGConfig.from_json("{")
    with pytest.raises(TypeError, match=r"^DDPGConfig weight_fmt must be a dict"):
        DDPGConfig.from_dict({"weight_fmt": [32, 20]})


def test_config_is_frozen():
    cfg = DDPGConfig()
    with pytest.raises(AttributeError):
        cfg.gamma = 0.5  # type: ignore[misc]
    assert cfg.replace(gamma=0.5).gamma == 0.5


# --- float gradients ----------------------------------------------------------------------------

def _float_setup(seed=0, hidden=(6, 5), batch=4):
    cfg = DDPGConfig(hidden=hidden, precision="float64", batch_size=batch, seed=seed)
    w = ds.init_weights(cfg, OBS, ACT)
    rng = np.random.default_rng(seed + 100)
    # larger output weights than the initialisation, so every path carries signal
    for net in ds.NETS:
        for k in w[net]:
            w[net][k] = rng.normal(0, 0.7, w[net][k].shape)
    s = rng.normal(0, 1, (batch, OBS))
    a = rng.uniform(-1, 1, (batch, ACT))
    y = rng.normal(0, 1, batch)
    return cfg, w, s, a, y


def _numeric_grad(f, arr, eps=1e-6):
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        hi = f()
        arr[idx] = old - eps
        lo = f()
        arr[idx] = old
        g[idx] = (hi - lo) / (2 * eps)
    return g


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_critic_gradients_match_finite_differences(seed):
    cfg, w, s, a, y = _float_setup(seed)
    critic = w["critic"]
    _, grads = ds.critic_loss_grads(critic, s, a, y, cfg)
    for k, arr in critic.items():
        num = _numeric_grad(lambda: ds.critic_loss_grads(critic, s, a, y, cfg)[0], arr)
        np.testing.assert_allclose(grads[k], num, rtol=1e-5, atol=1e-7, err_msg=k)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_actor_gradients_match_finite_differences(seed):
    cfg, w, s, _, _ = _float_setup(seed)
    actor, critic = w["actor"], w["critic"]
    _, grads = ds.actor_loss_grads(actor, critic, s, cfg)
    for k, arr in actor.items():
        num = _numeric_grad(lambda: ds.actor_loss_grads(actor, critic, s, cfg)[0], arr)
        np.testing.assert_allclose(grads[k], num, rtol=1e-5, atol=1e-7, err_msg=k)


def test_float_losses_are_what_they_say():
    cfg, w, s, a, y = _float_setup(3)
    loss, _ = ds.critic_loss_grads(w["critic"], s, a, y, cfg)
    q = ds.float_critic_forward(w["critic"], s, a, cfg)
    assert loss == pytest.approx(np.mean((q - y) ** 2))
    aloss, _ = ds.actor_loss_grads(w["actor"], w["critic"], s, cfg)
    mu = ds.float_actor_forward(w["actor"], s, cfg)
    assert np.all(np.abs(mu) <= 1)
    assert aloss == pytest.approx(-np.mean(ds.float_critic_forward(w["critic"], s, mu, cfg)))


# --- fixed-point layer operations ---------------------------------------------------------------

def _fixed_state(cfg, seed=0, batch=None, scale=1.0):
    """Codes of random weights (wider than the initialisation) and of a random batch."""
    rng = np.random.default_rng(seed)
    w = ds.init_weights(cfg, OBS, ACT)
    for net in ds.NETS:
        for k in w[net]:
            w[net][k] = rng.normal(0, 0.5 * scale, w[net][k].shape)
    wq = ds.quantize_weights(w, cfg.weight_fmt)
    b = batch or cfg.batch_size
    f = cfg.act_fmt
    theta = rng.uniform(-np.pi, np.pi, (2, b))
    obs = [np.stack([np.cos(t), np.sin(t), rng.uniform(-8, 8, b)], axis=1) for t in theta]
    batch_q = ds.Batch(f.from_float(obs[0]), f.from_float(rng.uniform(-1, 1, (b, ACT))),
                       f.from_float(rng.uniform(-16, 0, b)), f.from_float(obs[1]),
                       (rng.uniform(size=b) < 0.2).astype(np.int64))
    return wq, batch_q


@given(st.data())
def test_layer_ops_equal_full_format_aap_calls(data):
    # the step's layer operations are sw_model.arch.aap's on the declared 32-bit formats
    cfg = DDPGConfig(hidden=(5,), precision="fixed", batch_size=3)
    wf, af, df = cfg.weight_fmt, cfg.act_fmt, cfg.delta_fmt
    m, n, b = 4, 3, 3
    kind = data.draw(st.sampled_from(["relu", "tanh", "identity"]))
    w = np.array(data.draw(st.lists(codes(wf), min_size=m * n, max_size=m * n))).reshape(m, n)
    bias = np.array(data.draw(st.lists(codes(wf), min_size=m, max_size=m)))
    x = np.array(data.draw(st.lists(codes(af), min_size=b * n, max_size=b * n))).reshape(b, n)
    d = np.array(data.draw(st.lists(codes(df), min_size=b * m, max_size=b * m))).reshape(b, m)
    fmts = [af, af]
    table = ds.tanh_table(af) if kind == "tanh" else None
    zs, ys = ds._fixed_forward({"l1.w": w, "l1.b": bias}, x, fmts, [kind], cfg)
    z_ref, y_ref = aap.forward(w, bias, x, w_fmt=wf, x_fmt=af, out_fmt=af, kind=kind,
                               rounding=cfg.rounding, table=table)
    assert np.array_equal(zs[1], z_ref) and np.array_equal(ys[1], y_ref)
    grads, d_in = ds._fixed_backward({"l1.w": w, "l1.b": bias}, [x, y_ref], d, fmts, [kind],
                                     cfg, grads=True)
    assert np.array_equal(grads["l1.w"], aap.weight_gradient(
        d, x, d_fmt=df, x_fmt=af, out_fmt=cfg.grad_fmt, rounding=cfg.rounding))
    assert np.array_equal(grads["l1.b"], aap.bias_gradient(d, d_fmt=df, out_fmt=cfg.grad_fmt,
                                                           rounding=cfg.rounding))
    _, d_in = ds._fixed_backward({"l1.w": w, "l1.b": bias}, [x, y_ref], d, fmts, [kind], cfg,
                                 grads=False)
    assert np.array_equal(d_in, aap.backward(
        w, d, x, w_fmt=wf, d_fmt=df, y_fmt=af, g_fmt=cfg.deriv_fmt, out_fmt=df,
        kind="identity", rounding=cfg.rounding))


def _round_half_even(num: int, shift: int) -> int:
    q, r = divmod(num, 1 << shift)
    half = 1 << (shift - 1)
    return q + (r > half or (r == half and q % 2 == 1))


def test_critic_forward_equals_python_integer_arithmetic():
    cfg = DDPGConfig(hidden=(6, 5), precision="fixed", batch_size=4)
    wq, batch = _fixed_state(cfg, seed=5, scale=3.0)
    fmts = ds.activation_formats(cfg)
    q = ds.fixed_critic_forward(wq["critic"], batch.obs, batch.action, cfg, fmts)
    wf, af = cfg.weight_fmt, cfg.act_fmt
    shift = wf.frac + af.frac - af.frac
    for row in range(4):
        h = [int(v) for v in batch.obs[row]] + [int(v) for v in batch.action[row]]
        for k in (1, 2, 3):
            w, b = wq["critic"][f"l{k}.w"], wq["critic"][f"l{k}.b"]
            out = []
            for i in range(w.shape[0]):
                acc = sum(int(w[i, j]) * h[j] for j in range(len(h))) + (int(b[i]) << af.frac)
                z = min(max(_round_half_even(acc, shift), af.min_int), af.max_int)
                out.append(max(z, 0) if k < 3 else z)
            h = out
        assert int(q[row]) == h[0]


def _hp_config(**kw):
    """High-precision formats: the fixed step must track the float64 step closely."""
    return DDPGConfig(hidden=(8, 8), precision="fixed", batch_size=16,
                      weight_fmt=FixedFormat(32, 24), act_fmt=FixedFormat(32, 20),
                      delta_fmt=FixedFormat(32, 26), grad_fmt=FixedFormat(32, 22),
                      deriv_fmt=FixedFormat(32, 30), **kw)


@pytest.mark.parametrize("seed", [0, 1])
def test_fixed_gradients_track_float64(seed):
    cfg = _hp_config(seed=seed)
    wq, batch = _fixed_state(cfg, seed)
    tq = copy.deepcopy(wq)
    opt = ds.init_opt_state(wq, cfg)
    new_w, _, _, info = ds.fixed_train_step(wq, tq, opt, batch, cfg)
    wf, af, gf = cfg.weight_fmt, cfg.act_fmt, cfg.grad_fmt

    def deq(w):
        return {net: {k: wf.to_float(v) for k, v in p.items()} for net, p in w.items()}

    fw = deq(wq)
    s, a = af.to_float(batch.obs), af.to_float(batch.action)
    # the target as the fixed step computes it (its tanh is a table, see below)
    fmts = ds.activation_formats(cfg)
    a2 = ds.fixed_actor_forward(tq["actor"], batch.next_obs, cfg, fmts)
    q2 = ds.fixed_critic_forward(tq["critic"], batch.next_obs, a2, cfg, fmts)
    y = batch.reward + (1 - batch.done) * mul_shift(q2, cfg.gamma_q)
    _, c_grads = ds.critic_loss_grads(fw["critic"], s, a, af.to_float(y), cfg.replace(
        precision="float64"))
    # every quantity carries a rounding error of at most half a step of its format (2**-21 for
    # activations, 2**-27 for deltas, 2**-23 for gradients), amplified by sums over at most
    # 16 samples x 9 terms of weights below ~2: far below 1e-4 (gradients stay inside the
    # +-512 of grad_fmt here, so nothing saturates)
    for k, g in c_grads.items():
        np.testing.assert_allclose(gf.to_float(info["grads"]["critic"][k]), g, rtol=0,
                                   atol=1e-4 * (1 + np.abs(g).max()), err_msg=k)
    # actor: against float64 with the fixed step's updated critic; the table tanh is within
    # TanhTable.error_bound() (< 0.002) of tanh, so allow 1% of the largest gradient
    _, a_grads = ds.actor_loss_grads(fw["actor"], deq(new_w)["critic"], s, cfg.replace(
        precision="float64"))
    for k, g in a_grads.items():
        np.testing.assert_allclose(gf.to_float(info["grads"]["actor"][k]), g, rtol=0,
                                   atol=1e-2 * np.abs(g).max() + 1e-6, err_msg=k)


def test_fixed_step_target_and_soft_update_definition():
    cfg = DDPGConfig(hidden=(4, 4), precision="fixed", batch_size=8, tau=0.25)
    wq, batch = _fixed_state(cfg, 3)
    tq = ds.quantize_weights(ds.init_weights(cfg.replace(seed=9), OBS, ACT), cfg.weight_fmt)
    new_w, opt, new_t, _ = ds.fixed_train_step(wq, tq, ds.init_opt_state(wq, cfg), batch, cfg)
    assert opt.step == 1
    for net in ds.NETS:
        for k in tq[net]:
            exp = tq[net][k] + mul_shift(new_w[net][k] - tq[net][k], 16384)
            assert np.array_equal(new_t[net][k], exp)
            assert not np.array_equal(new_w[net][k], wq[net][k])


def _tree_equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_tree_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.dtype == np.asarray(b).dtype and np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("precision", ["fixed", "qat", "float32", "float64"])
def test_train_step_is_pure_and_deterministic(precision):
    cfg = DDPGConfig(hidden=(6, 6), precision=precision, batch_size=8, qat_delay=1)
    agent = DDPGAgent(cfg, OBS, ACT, [-2.0], [2.0])
    env = make("pendulum", seed=0)
    obs = env.reset()
    for _ in range(30):
        a = agent.random_action()
        nxt, r, term, _ = env.step(agent.scale_action(a))
        agent.remember(obs, a, r, nxt, term)
        obs = nxt
    batch = agent.sample()
    step = ds.fixed_train_step if cfg.is_fixed else ds.float_train_step
    args = (agent.weights, agent.targets, agent.opt, batch, cfg)
    saved = copy.deepcopy(args)
    out1 = step(*args)
    out2 = step(*copy.deepcopy(saved))
    for x, y in zip(args[:3], saved[:3], strict=True):
        assert _tree_equal(x if isinstance(x, dict) else x.m, y if isinstance(y, dict) else y.m)
    assert _tree_equal(vars(args[3]), vars(saved[3]))
    for x, y in zip(out1[:3], out2[:3], strict=True):
        if isinstance(x, dict):
            assert _tree_equal(x, y)
        else:
            assert _tree_equal(x.m, y.m) and _tree_equal(x.v, y.v) and x.step == y.step
            assert x.act16 == y.act16 and dict(x.ranges) == dict(y.ranges)
    assert out1[3]["critic_loss"] == out2[3]["critic_loss"]
    if cfg.is_fixed:
        for net in ds.NETS:
            for v in out1[0][net].values():
                assert v.dtype == np.int64 and cfg.weight_fmt.contains(v)


def test_fixed_step_rejects_float_precision_and_bad_codes():
    cfg = DDPGConfig(hidden=(4,), precision="float32", batch_size=4)
    w = ds.init_weights(cfg, OBS, ACT)
    with pytest.raises(ValueError, match=r"^fixed_train_step needs a fixed-point precision, "
                                         r"not 'float32'$"):
        ds.fixed_train_step(w, w, ds.init_opt_state(w, cfg), None, cfg)
    fcfg = cfg.replace(precision="fixed")
    wq, batch = _fixed_state(fcfg, batch=4)
    bad = ds.Batch(batch.obs + 2**40, batch.action, batch.reward, batch.next_obs, batch.done)
    with pytest.raises(ValueError, match=r"^batch\.obs holds"):
        ds.fixed_train_step(wq, wq, ds.init_opt_state(wq, fcfg), bad, fcfg)


# --- QAT ----------------------------------------------------------------------------------------

def test_qat_tracks_ranges_and_switches_at_the_delay():
    delay = 3
    cfg = DDPGConfig(hidden=(6, 5), precision="qat", batch_size=8, qat_delay=delay)
    wq, _ = _fixed_state(cfg, 0)
    tq = copy.deepcopy(wq)
    opt = ds.init_opt_state(wq, cfg)
    obs_lo, obs_hi = None, None
    for step in range(1, delay + 3):
        _, batch = _fixed_state(cfg, 100 + step)
        fmts = ds.activation_formats(cfg, opt)
        if step <= delay:
            assert set(fmts.values()) == {cfg.act_fmt}
            lo, hi = int(batch.obs.min()), int(batch.obs.max())
            obs_lo = lo if obs_lo is None else min(obs_lo, lo)
            obs_hi = hi if obs_hi is None else max(obs_hi, hi)
        wq, opt, tq, info = ds.fixed_train_step(wq, tq, opt, batch, cfg)
        assert info["qat_switched"] == (step == delay)
        if step < delay:
            assert opt.act16 is None
        if step == delay:
            frozen = dict(opt.act16)
            ranges = dict(opt.ranges)
    assert ranges["actor.x0"] == (obs_lo, obs_hi)
    assert set(ranges) == {f"actor.x{k}" for k in range(4)} | {f"critic.x{k}" for k in range(3)}
    # after the switch: frozen, 16-bit, from the ranges by the documented rule
    assert dict(opt.act16) == frozen and dict(opt.ranges) == ranges
    for key, (lo, hi) in ranges.items():
        assert frozen[key] == ds.range_format(lo, hi, cfg.act_fmt, 16)
        assert frozen[key].width == 16
    fmts = ds.activation_formats(cfg, opt)
    assert fmts["critic.x3"] == cfg.act_fmt  # Q stays 32-bit
    # pendulum observations lie in [-8, 8]: 12 fraction bits
    assert frozen["actor.x0"] == FixedFormat(16, 12)
    # every activation code of the networks after the switch is a 16-bit code
    _, batch = _fixed_state(cfg, 999)
    x0 = ds.shift_quantize(batch.obs, cfg.act_fmt, fmts["actor.x0"])
    a_fmts = [fmts[f"actor.x{k}"] for k in range(4)]
    _, ys = ds._fixed_forward(wq["actor"], x0, a_fmts, ds.layer_kinds(cfg, "actor"), cfg)
    for k, y in enumerate(ys):
        assert FixedFormat(16, a_fmts[k].frac).contains(y)
        assert np.abs(y).max() < 2**15


def test_fixed16_uses_act16_from_the_start():
    cfg = DDPGConfig(hidden=(6, 5), precision="fixed16", batch_size=8)
    fmts = ds.activation_formats(cfg)
    assert fmts.pop("critic.x3") == cfg.act_fmt
    assert set(fmts.values()) == {FixedFormat(16, 10)}


# --- buffer, agent, reproducibility, learning ---------------------------------------------------

def test_replay_buffer_ring_and_sampling():
    buf = ReplayBuffer(4, 2, 1)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(np.random.default_rng(0), 2)
    for i in range(6):
        buf.add([i, i], [i / 10], float(i), [i + 1, i + 1], i == 5)
    assert len(buf) == 4
    b = buf.sample(np.random.default_rng(0), 50)
    assert set(b.reward.tolist()) == {2.0, 3.0, 4.0, 5.0}
    assert np.array_equal(b.next_obs[:, 0], b.obs[:, 0] + 1)
    assert np.array_equal(b.done, (b.reward == 5.0).astype(np.int64))
    with pytest.raises(ValueError, match=r"^capacity must be at least 1, not 0$"):
        ReplayBuffer(0, 2, 1)
    with pytest.raises(TypeError, match=r"^obs_dim must be an integer, not 2\.0$"):
        ReplayBuffer(4, 2.0, 1)


def test_train_and_agent_argument_errors():
    cfg = DDPGConfig(hidden=(4,))
    with pytest.raises(ValueError, match=r"^steps must be at least 1, not 0$"):
        train(cfg, "pendulum", 0)
    with pytest.raises(TypeError, match=r"^config must be a DDPGConfig, not \{\}$"):
        train({}, "pendulum", 10)
    with pytest.raises(ValueError, match=r"^action bounds must be finite with low < high"):
        DDPGAgent(cfg, OBS, ACT, [2.0], [-2.0])
    with pytest.raises(ValueError, match=r"^action bounds must have shape \(1,\)"):
        DDPGAgent(cfg, OBS, ACT, [-2.0, -1.0], [2.0, 1.0])
    with pytest.raises(TypeError, match=r"^act_dim must be an integer, not '1'$"):
        DDPGAgent(cfg, OBS, "1", [-2.0], [2.0])
    agent = DDPGAgent(cfg, OBS, ACT, [-2.0], [2.0])
    with pytest.raises(ValueError, match=r"^episodes must be at least 1, not -1$"):
        evaluate(agent, "pendulum", -1)


def test_fixed_exploration_uses_the_integer_noise():
    cfg = DDPGConfig(hidden=(6, 5), precision="fixed", noise_sigma=0.2, seed=3)
    agent = DDPGAgent(cfg, OBS, ACT, [-2.0], [2.0])
    obs = np.array([0.3, -0.9, 1.5])
    clean = agent.policy(obs)[0]
    state = agent.noise_state
    noisy = agent.explore(obs)
    from sw_model.numerics.prng import gaussian_codes

    noise, after = gaussian_codes(state, 1, 0.2, agent.formats["actor.x3"])
    assert agent.noise_state == after
    exp = np.clip(clean + agent.formats["actor.x3"].to_float(noise), -1, 1)
    assert noisy == pytest.approx(exp, abs=0)
    assert agent.scale_action([1.0]).tolist() == [2.0]
    assert agent.scale_action([-0.5]).tolist() == [-1.0]


@given(theta=st.sampled_from([1.0, 0.5, 0.15, 1e-3]), sigma=st.floats(0.0, 1.0),
       seed=st.integers(0, 2**16), steps=st.integers(1, 12))
def test_float_exploration_is_an_ornstein_uhlenbeck_process(theta, sigma, seed, steps):
    """n_t = (1 - theta) n_(t-1) + sigma e_t, e_t from the agent's generator; theta 1 is
    independent noise, drawn as before."""
    cfg = DDPGConfig(hidden=(6, 5), precision="float64", noise_sigma=sigma, noise_theta=theta,
                     seed=seed)
    agent = DDPGAgent(cfg, OBS, ACT, [-2.0], [2.0])
    rng = np.random.default_rng([seed, 1])
    obs = np.random.default_rng(seed).uniform(-1, 1, (steps, OBS))
    n = 0.0
    for x in obs:
        e = sigma * rng.standard_normal()
        n = e if theta == 1.0 else (1.0 - theta) * n + e
        clean = float(agent.policy(x)[0, 0])
        got = agent.explore(x)
        assert got.tolist() == [min(max(clean + n, -1.0), 1.0)]
        assert agent.noise.tolist() == [n]


@pytest.mark.parametrize("precision", ["qat", "float32"])
def test_seeded_training_is_reproducible(precision):
    cfg = DDPGConfig(hidden=(8, 8), precision=precision, batch_size=16, warmup_steps=100,
                     qat_delay=40, seed=11)
    r1 = train(cfg, "pendulum", 210)
    r2 = train(cfg, "pendulum", 210)
    assert r1.episode_returns == r2.episode_returns and len(r1.episode_returns) == 1
    assert r1.train_steps == r2.train_steps == 111  # steps 99 .. 209
    assert _tree_equal(r1.agent.weights, r2.agent.weights)
    assert _tree_equal(r1.agent.targets, r2.agent.targets)
    assert r1.agent.noise_state == r2.agent.noise_state
    r3 = train(cfg.replace(seed=12), "pendulum", 210)
    assert not _tree_equal(r3.agent.weights, r1.agent.weights)
    if precision == "qat":
        assert r1.agent.opt.act16 is not None


def test_pendulum_learning_improves_the_return():
    # float32 64-64 DDPG: 6000 steps take a few seconds and reach about -150
    cfg = DDPGConfig(hidden=(64, 64), precision="float32", warmup_steps=500, gamma=0.98, seed=0)
    env = make("pendulum")
    untrained = np.mean(evaluate(DDPGAgent(cfg, OBS, ACT, env.action_low, env.action_high),
                                 "pendulum", 5))
    result = train(cfg, "pendulum", 6000)
    trained = np.mean(evaluate(result.agent, "pendulum", 5))
    assert untrained < -900
    assert trained > -400
    assert trained > untrained + 600


# --- weight images ------------------------------------------------------------------------------

def test_weight_image_round_trip_of_a_trained_qat_agent(tmp_path):
    cfg = DDPGConfig(hidden=(8, 6), precision="qat", batch_size=16, warmup_steps=100,
                     qat_delay=50, seed=2)
    agent = train(cfg, "pendulum", 220).agent
    assert agent.opt.act16 is not None
    path = tmp_path / "agent.fximg"
    agent.to_image({"note": "test"}).save(path)
    image = WeightImage.load(path, expect_config_hash=config_hash_of(cfg.to_dict()))
    assert image.metadata["note"] == "test"
    assert image["actor.l1.w"].codes.shape == (8, 3)
    contents = weights_from_image(image)
    assert contents.config == cfg
    assert _tree_equal(contents.weights, agent.weights)
    assert contents.formats == agent.formats
    assert contents.action_low.tolist() == [-2.0]
    loaded = DDPGAgent.from_image(image)
    obs = np.random.default_rng(0).uniform(-1, 1, (20, 3)) * [1, 1, 8]
    assert np.array_equal(loaded.policy(obs), agent.policy(obs))
    assert loaded.formats == agent.formats


def test_weight_image_of_a_float_agent_is_quantized():
    cfg = DDPGConfig(hidden=(5,), precision="float64", seed=1)
    agent = DDPGAgent(cfg, OBS, ACT, [-2.0], [2.0])
    contents = weights_from_image(agent.to_image())
    exp = ds.quantize_weights(agent.weights, cfg.weight_fmt)
    assert _tree_equal(contents.weights, exp) and contents.formats is None
    loaded = DDPGAgent.from_image(agent.to_image())
    obs = np.array([[0.1, 0.2, 0.3]])
    assert np.allclose(loaded.policy(obs), agent.policy(obs), atol=1e-5)


def test_weights_from_image_rejects_other_images():
    other = WeightImage((Tensor("w", FixedFormat(8, 4), [1, 2]),), config_hash_of({}), {})
    with pytest.raises(ValueError, match=r"^image is not a DDPG weight image \(kind None\)$"):
        weights_from_image(other)
    with pytest.raises(TypeError, match=r"^image must be a WeightImage, not 3$"):
        weights_from_image(3)
    cfg = DDPGConfig(hidden=(5,), precision="fixed")
    agent = DDPGAgent(cfg, OBS, ACT, [-2.0], [2.0])
    img = agent.to_image()
    bad = WeightImage(img.tensors[:-1], img.config_hash, img.metadata)
    with pytest.raises(ValueError, match=r"^image critic tensors"):
        weights_from_image(bad)
    meta = dict(img.metadata)
    meta["ddpg_config"] = cfg.replace(seed=5).to_json()
    with pytest.raises(ValueError, match="hash does not match"):
        weights_from_image(WeightImage(img.tensors, img.config_hash, meta))
    with pytest.raises(TypeError, match=r"^config must be a DDPGConfig, not None$"):
        weights_to_image(None, agent.weights, [-2.0], [2.0])


def test_sw_model_ddpg_does_not_import_amaranth():
    code = ("import sys, sw_model.rl.ddpg, sw_model.numerics.qat, sw_model.numerics.prng, "
            "sw_model.numerics.optim; "
            "sys.exit(1 if any(m.startswith('amaranth') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("precision", ["fixed", "qat"])
def test_fast_golden_steps_equal_the_oracle_arithmetic(precision, monkeypatch):
    """Whole training steps with the fast products equal those of the previous implementation.

    The layers' products are replaced by the oracle (16-bit limbs, Python integers for wide
    sums, then ``requantize``) and the optimizer by its NumPy formulation; every weight, moment
    and target code after three steps (across the QAT switch) must be equal.
    """
    from sw_model.numerics import fixed, optim

    from . import fixed_oracle

    def oracle_product(a, b, a_max, b_max, src_frac, out_fmt, rounding, overflow,
                       addend=None, addend_frac=None):
        wide = FixedFormat(64, 0)
        total = np.asarray(fixed_oracle.exact_matmul(a, b, wide, wide), dtype=object)
        if addend is not None:
            total = total + np.asarray(addend, dtype=object) * (1 << (src_frac - addend_frac))
        return fixed.requantize(total, src_frac, out_fmt, rounding, overflow)

    def numpy_adam(w, g, m, v, t, consts, w_fmt, g_fmt):
        shape = np.shape(w)
        flat = [np.asarray(x, dtype=np.int64).reshape(-1) for x in (w, g, m, v)]
        return optim._adam_numpy(*flat, t, consts, w_fmt, g_fmt, shape)

    config = DDPGConfig(hidden=(24, 16), precision=precision, batch_size=16, qat_delay=2,
                        buffer_size=200, seed=3)
    env = make("pendulum", seed=3)
    agents = [DDPGAgent(config, 3, 1, env.action_low, env.action_high) for _ in range(2)]
    rng = np.random.default_rng(3)
    for _ in range(100):
        obs, nxt, a = rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 1)
        for agent in agents:
            agent.remember(obs, a, float(rng.uniform(-10, 0)), nxt, False)
    batches = [agents[0].sample() for _ in range(3)]
    for b in batches:
        agents[0].train_step(b)
    monkeypatch.setattr(aap, "_matmul_checked", oracle_product)
    monkeypatch.setattr(ds, "adam_fixed", numpy_adam)
    for b in batches:
        agents[1].train_step(b)
    fast, slow = agents
    for net in ("actor", "critic"):
        for k in fast.weights[net]:
            for x, y in ((fast.weights, slow.weights), (fast.targets, slow.targets),
                         (fast.opt.m, slow.opt.m), (fast.opt.v, slow.opt.v)):
                assert np.array_equal(x[net][k], y[net][k]), (net, k)
    assert fast.opt.act16 == slow.opt.act16
