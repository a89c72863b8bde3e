"""Tests of the mixed-precision search (:mod:`sw_model.search`): PPO pieces against closed
forms
and finite differences, the environment against hand computations, HAQ's budget enforcement,
reproducibility, a toy problem with a known optimum, and the parameter checks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sw_model.numerics.msq import quantize_matrix
from sw_model.search.baselines import enforce_budget, haq_ddpg_search, uniform_baseline
from sw_model.search.cost import Cost, LayerChoice, LayerShape
from sw_model.search.env import FEATURES, Budget, QuantEnv
from sw_model.search.evaluators import (
    ProxyEvaluator,
    ReturnEvaluator,
    critic_evaluator,
    proxy_quality,
    return_quality,
    spearman,
    validate_proxy,
)
from sw_model.search.networks import MLP
from sw_model.search.ppo import clipped_surrogate, gae, ppo_policy_loss, ppo_search
from sw_model.search.quantize import (
    actor_layers,
    actor_shapes,
    quantize_activations,
    quantize_layer,
    weight_stats,
)

reals = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


class ToyCost:
    """A cost model with simple closed forms (any object with ``network_cost`` will do).

    ``mem_bits = sum(weights * w_bits)``, ``luts = sum(w_bits * a_bits)`` over SP2 layers,
    ``dsps = sum(w_bits)`` over fixed layers, ``cycles = sum(fan_out) * batch``.
    """

    def network_cost(self, shapes, choices, *, batch=1):
        mem = sum(s.weights * c.w_bits for s, c in zip(shapes, choices, strict=True))
        luts = sum(c.w_bits * c.a_bits for c in choices if c.scheme == "sp2")
        dsps = sum(c.w_bits for c in choices if c.scheme == "fixed")
        return Cost(float(luts), float(dsps), mem, batch * sum(s.fan_out for s in shapes))


SHAPES = (LayerShape("l1", 3, 4), LayerShape("l2", 4, 2))
W_SMALL = {"fixed": (2, 4, 8), "sp2": (2, 4)}
A_SMALL = (4, 8)


def _mats(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((s.fan_out, s.fan_in)) for s in SHAPES]


def _env(budget=None, evaluate=None, **kw):
    return QuantEnv(SHAPES, _mats(), cost_model=ToyCost(),
                    budget=budget or Budget(mem_bits=40),
                    evaluate=evaluate or (lambda ch: -sum(2.0**-c.w_bits for c in ch)),
                    w_bits=W_SMALL, a_bits=A_SMALL, **kw)


def _actor(seed=0, sizes=(3, 8, 8, 1)):
    rng = np.random.default_rng(seed)
    return {f"l{k}.{p}": (rng.standard_normal((o, i)) / math.sqrt(i) if p == "w"
                          else 0.1 * rng.standard_normal(o))
            for k, (i, o) in enumerate(itertools.pairwise(sizes), 1) for p in "wb"}


# --- budget ---------------------------------------------------------------------------------

def test_budget_usage_and_fits():
    b = Budget(luts=100, mem_bits=50)
    c = Cost(80.0, 999.0, 60, 7)
    assert b.usage(c) == pytest.approx(1.2)
    assert not b.fits(c)
    assert b.fits(Cost(100.0, 0.0, 50, 0))
    assert Budget().usage(c) == 0.0 and Budget().fits(c)


@pytest.mark.parametrize(("kw", "exc", "msg"), [
    ({"luts": "1"}, TypeError, r"^Budget luts must be a real number, not '1'$"),
    ({"dsps": True}, TypeError, r"^Budget dsps must be a real number, not True$"),
    ({"luts": 0.0}, ValueError, r"^Budget luts must be finite and in \(0\.0, inf\), not 0\.0$"),
    ({"mem_bits": 1.5}, TypeError, r"^Budget mem_bits must be an integer, not 1\.5$"),
    ({"cycles": 0}, ValueError, r"^Budget cycles must be positive, not 0$"),
])
def test_budget_errors(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        Budget(**kw)


# --- PPO pieces -----------------------------------------------------------------------------

@given(st.lists(st.tuples(st.floats(0.01, 5), reals), min_size=1, max_size=8),
       st.floats(0.05, 0.5))
def test_clipped_surrogate_closed_form(pairs, eps):
    r, a = np.array(pairs).T
    want = [min(ri, 1 + eps) * ai if ai >= 0 else max(ri, 1 - eps) * ai
            for ri, ai in zip(r, a, strict=True)]
    np.testing.assert_allclose(clipped_surrogate(r, a, eps), want, rtol=1e-12, atol=1e-12)


@given(st.lists(st.tuples(reals, reals), min_size=1, max_size=7),
       st.floats(0, 1), st.floats(0, 1), reals)
def test_gae_brute_force(rv, gamma, lam, last):
    r, v = np.array(rv).T
    adv, ret = gae(r, v, gamma=gamma, lam=lam, last_value=last)
    vn = np.append(v, last)
    delta = r + gamma * vn[1:] - vn[:-1]
    want = [sum((gamma * lam) ** j * delta[t + j] for j in range(len(r) - t))
            for t in range(len(r))]
    np.testing.assert_allclose(adv, want, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ret, adv + v)


def test_gae_monte_carlo_and_batched():
    r = np.array([[0.0, 0.0, 3.0], [1.0, 0.0, -2.0]])
    v = np.array([[0.5, 1.0, 2.0], [0.0, 0.0, 0.0]])
    _, ret = gae(r, v, gamma=1.0, lam=1.0)
    np.testing.assert_allclose(ret, [[3, 3, 3], [-1, -2, -2]])  # lam = 1: Monte-Carlo returns
    adv0, _ = gae(r, v, gamma=0.9, lam=0.0)
    np.testing.assert_allclose(adv0, r + 0.9 * np.c_[v[:, 1:], [0, 0]] - v)  # one-step TD


def _fd(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        hi = f()
        x[i] = old - h
        lo = f()
        x[i] = old
        g[i] = (hi - lo) / (2 * h)
    return g


@pytest.mark.parametrize("seed", range(4))
def test_ppo_loss_gradient_finite_differences(seed):
    rng = np.random.default_rng(seed)
    n, a_n = 6, 5
    logits = rng.standard_normal((n, a_n))
    acts = rng.integers(a_n, size=n)
    # old log-probs near the new ones, so some ratios fall inside the clip range, some outside
    logp_old = (logits - np.log(np.exp(logits).sum(1, keepdims=True)))[np.arange(n), acts]
    logp_old += rng.choice([-0.5, 0.05, 0.5], size=n)
    adv = rng.standard_normal(n)
    _, d = ppo_policy_loss(logits, acts, logp_old, adv, 0.2, 0.03)
    fd = _fd(lambda: ppo_policy_loss(logits, acts, logp_old, adv, 0.2, 0.03)[0], logits)
    np.testing.assert_allclose(d, fd, atol=1e-7)


@pytest.mark.parametrize("seed", range(3))
def test_factored_masked_loss_gradient_finite_differences(seed):
    rng = np.random.default_rng(seed)
    n, heads = 6, (2, 4, 3)
    logits = rng.standard_normal((n, 9))
    mask = np.ones((n, 9), dtype=bool)
    mask[:, 2:6] = rng.random((n, 4)) < 0.6
    mask[np.arange(n), 2 + rng.integers(4, size=n)] = True
    acts = np.column_stack([rng.integers(2, size=n),
                            [rng.choice(np.flatnonzero(m[2:6])) for m in mask],
                            rng.integers(3, size=n)])
    logp_old = rng.normal(-2.5, 0.4, n)
    adv = rng.standard_normal(n)

    def loss():
        return ppo_policy_loss(logits, acts, logp_old, adv, 0.2, 0.05, heads=heads,
                               mask=mask)[0]

    _, d = ppo_policy_loss(logits, acts, logp_old, adv, 0.2, 0.05, heads=heads, mask=mask)
    np.testing.assert_allclose(d, _fd(loss, logits), atol=1e-7)
    assert not d[:, 2:6][~mask[:, 2:6]].any()
    # the log-probability is the sum of the heads' (masked) log-probabilities
    z = np.where(mask, logits, -np.inf)
    lp = sum((z[:, sl] - np.log(np.exp(z[:, sl]).sum(1, keepdims=True)))[np.arange(n), acts[:, h]]
             for h, sl in enumerate([slice(0, 2), slice(2, 6), slice(6, 9)]))
    surr = clipped_surrogate(np.exp(lp - logp_old), adv, 0.2)
    assert loss() == pytest.approx(-surr.mean() - 0.05 * _entropy(z, heads), abs=1e-12)


def _entropy(z, heads):
    total, start = 0.0, 0
    for h in heads:
        zh = z[:, start:start + h]
        p = np.exp(zh - np.log(np.exp(zh).sum(1, keepdims=True)))
        total += -np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0).sum(1).mean()
        start += h
    return total


def test_mlp_policy_gradient_finite_differences():
    rng = np.random.default_rng(3)
    net = MLP([4, 6, 5, 3], rng)
    x = rng.standard_normal((7, 4))
    acts = rng.integers(3, size=7)
    logp_old = np.log(np.full(7, 1 / 3)) + rng.uniform(-0.1, 0.1, 7)
    adv = rng.standard_normal(7)

    def loss():
        return ppo_policy_loss(net.forward(x), acts, logp_old, adv, 0.2, 0.01)[0]

    _, d = ppo_policy_loss(net.forward(x), acts, logp_old, adv, 0.2, 0.01)
    grads, d_in = net.backward(d)
    for p, g in zip(net.params, grads, strict=True):
        np.testing.assert_allclose(g, _fd(loss, p), atol=1e-7)
    np.testing.assert_allclose(d_in, _fd(loss, x), atol=1e-7)


# --- environment ----------------------------------------------------------------------------

def test_env_state_features_by_hand():
    env = _env()
    mats = _mats()
    assert env.n_features == len(FEATURES) == 11
    assert len(env.actions) == (3 + 2) * 2
    assert env.actions[0] == LayerChoice("fixed", 2, 4)
    s0 = env.reset()
    std = [w.std() for w in mats]
    mx = [np.abs(w).max() for w in mats]
    g0 = np.mean((mats[0] - mats[0].mean()) ** 4) / std[0] ** 4 - 3
    want0 = [0.0, 3 / 4, 4 / 4, math.log2(13) / math.log2(13), std[0] / max(std),
             mx[0] / max(mx), g0 / (1 + abs(g0)), 0, 0, 0, 0]
    np.testing.assert_allclose(s0, want0)
    a = env.action_index(LayerChoice("sp2", 4, 8))
    s1, r, done, ep = env.step(a)
    assert (r, done, ep) == (0.0, False, None)
    # layer 1 after sp2/4/8 on layer 0: 12 weights * 4 bits = 48 of 40 memory bits
    np.testing.assert_allclose(s1[:4], [0.5, 4 / 4, 2 / 4, math.log2(9) / math.log2(13)])
    np.testing.assert_allclose(s1[7:], [1.0, 4 / 8, 8 / 8, 48 / 40])
    assert weight_stats(mats[1]) == pytest.approx(tuple(env.stats[1]))


def test_env_reward_by_hand():
    env = _env(budget=Budget(mem_bits=40), penalty=3.0, bonus=0.5)
    env.reset()
    env.step(env.action_index(LayerChoice("fixed", 2, 4)))
    _, r, done, ep = env.step(env.action_index(LayerChoice("fixed", 4, 8)))
    # mem = 12 * 2 + 8 * 4 = 56 -> usage 1.4; quality -(1/4 + 1/16)
    q = -(0.25 + 0.0625)
    assert done and ep.cost == Cost(0.0, 6.0, 56, 6) and not ep.fits
    assert ep.usage == pytest.approx(1.4)
    assert r == ep.reward == pytest.approx(q - 3.0 * 0.4)
    ep2 = env.score([LayerChoice("fixed", 2, 4)] * 2)  # mem 40: fits exactly, no bonus left
    assert ep2.fits and ep2.reward == pytest.approx(-0.5)
    ep3 = env.score([LayerChoice("sp2", 2, 4), LayerChoice("fixed", 2, 8)])
    assert ep3.reward == pytest.approx(-0.5 + 0.5 * (1 - 40 / 40))
    env4 = _env(budget=Budget(mem_bits=80), bonus=0.5)
    assert env4.score([LayerChoice("fixed", 2, 4)] * 2).reward == pytest.approx(-0.5 + 0.25)


def test_env_step_protocol_and_memo():
    calls = []

    def ev(ch):
        calls.append(ch)
        return 0.0

    env = _env(evaluate=ev)
    for _ in range(2):
        env.reset()
        env.step(0)
        env.step(0)
    assert len(calls) == 1  # memoised
    with pytest.raises(ValueError, match=r"^the episode is over; call reset\(\)$"):
        env.step(0)
    env.reset()
    with pytest.raises(ValueError, match=r"^action must be below 10, not 10$"):
        env.step(10)
    with pytest.raises(TypeError, match=r"^action must be an integer, not 1\.0$"):
        env.step(1.0)


@pytest.mark.parametrize(("kw", "exc", "msg"), [
    ({"shapes": []}, TypeError, r"^shapes must be a non-empty sequence of LayerShape, not \[\]$"),
    ({"shapes": [(3, 4)]}, TypeError, r"^shapes must hold LayerShape objects, not \(3, 4\)$"),
    ({"weights": [np.zeros((4, 3))]}, ValueError,
     r"^weights must have 2 arrays \(one per layer\), not 1$"),
    ({"weights": [np.zeros((3, 4)), np.zeros((2, 4))]}, ValueError,
     r"^weights of layer 'l1' must have shape \(4, 3\), not \(3, 4\)$"),
    ({"cost_model": object()}, TypeError, r"^cost_model must have a network_cost method"),
    ({"budget": 5}, TypeError, r"^budget must be a Budget or a LossBound, not 5$"),
    ({"evaluate": 1}, TypeError, r"^evaluate must be callable, not 1$"),
    ({"penalty": -1.0}, ValueError, r"^penalty must be finite and in \[0\.0, inf\), not -1\.0$"),
    ({"batch": 0}, ValueError, r"^batch must be at least 1, not 0$"),
    ({"w_bits": {"int": (4,)}}, ValueError, r"^w_bits schemes must be among"),
    ({"a_bits": ()}, TypeError, r"^a_bits must be a non-empty sequence, not \(\)$"),
])
def test_env_errors(kw, exc, msg):
    args = {"shapes": SHAPES, "weights": _mats(), "cost_model": ToyCost(),
            "budget": Budget(mem_bits=40), "evaluate": lambda ch: 0.0, "w_bits": W_SMALL,
            "a_bits": A_SMALL, **kw}
    shapes, weights = args.pop("shapes"), args.pop("weights")
    with pytest.raises(exc, match=msg):
        QuantEnv(shapes, weights, **args)


# --- evaluators -----------------------------------------------------------------------------

def test_quantize_layer_and_activations():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 7))
    q = quantize_layer(w, LayerChoice("fixed", 4, 8))
    alpha = np.abs(w).max() / (7 / 8)
    np.testing.assert_allclose(q, alpha * np.clip(np.rint(w / alpha * 8), -8, 7) / 8)
    assert np.unique(np.round(q / alpha * 8)).size <= 16
    np.testing.assert_array_equal(quantize_layer(w, LayerChoice("sp2", 4, 8)),
                                  quantize_matrix(w, 4, sp2_ratio=1.0).weights())
    # amax 3 -> ceil(log2 3) = 2, frac = 3 - 2 = 1 with 4 bits: steps of 1/2, range [-4, 3.5]
    np.testing.assert_array_equal(quantize_activations([0.3, 1.25, -5.0, 9.0], 4, 3.0),
                                  [0.5, 1.0, -4.0, 3.5])
    with pytest.raises(TypeError, match=r"^choice must be a LayerChoice, not 'fixed'$"):
        quantize_layer(w, "fixed")


def test_proxy_quality_orders_widths():
    actor = _actor()
    states = np.random.default_rng(1).uniform(-1, 1, (32, 3))
    wide = proxy_quality(actor, [LayerChoice("fixed", 16, 16)] * 3, states)
    narrow = proxy_quality(actor, [LayerChoice("fixed", 2, 4)] * 3, states)
    assert -1e-6 < wide <= 0.0
    assert narrow < wide
    ev = ProxyEvaluator({"actor": actor}, states)
    assert ev([LayerChoice("fixed", 2, 4)] * 3) == narrow
    assert actor_shapes(actor) == (LayerShape("l1", 3, 8), LayerShape("l2", 8, 8),
                                   LayerShape("l3", 8, 1))
    with pytest.raises(ValueError, match=r"^choices must have 3 entries \(one per layer\), "
                                         r"not 1$"):
        ev([LayerChoice("fixed", 2, 4)])
    with pytest.raises(ValueError, match=r"^states must have shape \(n >= 1, 3\), not \(4,\)$"):
        ProxyEvaluator(actor, np.zeros(4))
    with pytest.raises(ValueError, match=r"^weights l2\.w has 7 inputs, but l1 has 8 outputs$"):
        actor_layers({**actor, "l2.w": np.zeros((8, 7))})


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties: ranks (0.5, 0.5, 2) and (0, 1, 2): pearson = 0.75 / sqrt(0.75 * 1)... by hand
    ra, rb = np.array([0.5, 0.5, 2.0]), np.array([0.0, 1.0, 2.0])
    ra, rb = ra - ra.mean(), rb - rb.mean()
    assert spearman([5, 5, 9], [1, 2, 3]) == pytest.approx(ra @ rb / np.sqrt((ra @ ra) * (rb @ rb)))
    assert math.isnan(spearman([1, 1], [1, 2]))
    with pytest.raises(ValueError, match=r"^x and y must be 1-D of one length >= 2"):
        spearman([1], [1])


def test_return_quality_and_validate_proxy():
    actor = _actor(2)
    states = np.random.default_rng(0).uniform(-1, 1, (16, 3))
    ch = [LayerChoice("fixed", 8, 8)] * 3
    r1 = return_quality(actor, ch, states, episodes=1, seed=3)
    assert r1 == return_quality(actor, ch, states, episodes=1, seed=3) < 0
    v = validate_proxy(actor, states, n_configs=4, episodes=1, seed=0,
                       w_bits={"fixed": (2, 8)}, a_bits=(4, 16))
    assert len(v.configs) == len(v.proxy) == len(v.returns) == 4
    assert math.isnan(v.rho) or -1.0 <= v.rho <= 1.0
    assert v == validate_proxy(actor, states, n_configs=4, episodes=1, seed=0,
                               w_bits={"fixed": (2, 8)}, a_bits=(4, 16))


# --- baselines and HAQ ----------------------------------------------------------------------

def test_env_from_actor_and_csv(tmp_path):
    actor = _actor(1)
    states = np.random.default_rng(0).uniform(-1, 1, (8, 3))
    env = QuantEnv.from_actor(actor, states, cost_model=ToyCost(), budget=Budget(mem_bits=400),
                              w_bits=W_SMALL, a_bits=A_SMALL)
    assert env.shapes == actor_shapes(actor)
    ch = [LayerChoice("sp2", 4, 8)] * 3
    assert env.score(ch).quality == proxy_quality(actor, ch, states)
    res = uniform_baseline(env, [LayerChoice("fixed", 8, 8), LayerChoice("fixed", 2, 4)])
    res.write_csv(tmp_path / "h.csv")
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0] == "episode,choices,luts,dsps,mem_bits,cycles,quality,usage,fits,reward"
    assert lines[1].startswith("0,fixed:8:8|fixed:8:8|fixed:8:8,0.0,24.0,768,17,")
    assert len(lines) == 3


def test_uniform_baseline():
    env = _env(budget=Budget(mem_bits=60))
    res = uniform_baseline(env)
    assert [ep.choices for ep in res.history] == [(c, c) for c in env.actions]
    # mem = 20 * w_bits fits for w_bits <= 3: the best fitting is w_bits = 2 (quality -0.5)
    assert res.best_choices[0].w_bits == 2 and res.best_quality == -0.5
    assert res.best_cost == env.cost(res.best_choices)


@given(st.lists(st.integers(0, 9), min_size=2, max_size=2), st.integers(0, 40),
       st.integers(0, 40))
def test_enforce_budget_fits_when_minimum_fits(idx, slack_mem, slack_luts):
    # every scheme assignment at minimum widths costs at most mem 40, luts 16, dsps 4
    env = _env(budget=Budget(mem_bits=40 + slack_mem, luts=16.0 + slack_luts,
                             dsps=4.0 + slack_luts))
    choices = [env.actions[i] for i in idx]
    out = enforce_budget(env, choices)
    assert env.budget.fits(env.cost(out))
    if env.budget.fits(env.cost(choices)):
        assert out == tuple(choices)
    for c_in, c_out in zip(choices, out, strict=True):  # widths only go down, scheme kept
        assert c_out.scheme == c_in.scheme
        assert c_out.w_bits <= c_in.w_bits and c_out.a_bits <= c_in.a_bits


def test_enforce_budget_order_and_scheme_fallback():
    env = _env(budget=Budget(mem_bits=12 * 4 + 8 * 4))
    out = enforce_budget(env, [LayerChoice("fixed", 8, 8)] * 2)
    # last layer first: l2 w 8->4 (mem 128), l2 a 8->4, l1 w 8->4 (mem 80): fits
    assert out == (LayerChoice("fixed", 4, 8), LayerChoice("fixed", 4, 4))
    # SP2 layers at minimum exceed 10 LUTs (2 * 4 = 8 each); fixed at minimum uses none
    env = _env(budget=Budget(luts=10.0))
    out = enforce_budget(env, [LayerChoice("sp2", 4, 8)] * 2)
    assert out == (LayerChoice("sp2", 2, 4), LayerChoice("fixed", 2, 4))
    assert env.budget.fits(env.cost(out))


def test_haq_search_stays_in_budget_and_is_reproducible():
    env = _env(budget=Budget(mem_bits=70))
    res = haq_ddpg_search(env, episodes=30, warmup=8, seed=5, hidden=16, updates=4)
    assert len(res.history) == 30 and all(ep.fits for ep in res.history)
    assert res.best_choices is not None and env.budget.fits(env.cost(res.final_choices))
    again = haq_ddpg_search(_env(budget=Budget(mem_bits=70)), episodes=30, warmup=8, seed=5,
                            hidden=16, updates=4)
    assert [e.choices for e in again.history] == [e.choices for e in res.history]
    with pytest.raises(ValueError, match=r"^actor_lr must be finite and in \(0\.0, inf\), not -1$"):
        haq_ddpg_search(env, actor_lr=-1)
    with pytest.raises(TypeError, match=r"^env must be a QuantEnv, not 3$"):
        enforce_budget(3, [])


# --- PPO search -----------------------------------------------------------------------------

def test_ppo_reproducible():
    runs = [ppo_search(_env(), iterations=3, episodes_per_iter=4, seed=s, hidden=8, policy=p)
            for p in ("factored", "flat") for s in (7, 7, 8)]
    assert [e.choices for e in runs[3].history] == [e.choices for e in runs[4].history]
    assert [e.choices for e in runs[0].history] == [e.choices for e in runs[1].history]
    assert runs[0].final_choices == runs[1].final_choices
    assert [e.choices for e in runs[0].history] != [e.choices for e in runs[2].history]


def _toy_problem():
    """3 layers; quality prefers wide weights, SP2 on layer 0, fixed elsewhere, and wide
    activations on layer 2 (narrow ones elsewhere); the memory budget allows 8-bit weights on
    one layer only."""
    shapes = (LayerShape("a", 4, 4), LayerShape("b", 4, 4), LayerShape("c", 4, 4))
    gain = [{"sp2": 1.0, "fixed": 2.0}, {"sp2": 2.0, "fixed": 1.0}, {"sp2": 2.0, "fixed": 1.0}]
    size = [1.0, 3.0, 1.5]

    def quality(ch):
        return -sum(size[k] * gain[k][c.scheme] * 2.0**-c.w_bits
                    + (2.0**-c.a_bits if k == 2 else 0.01 * (c.a_bits > 4))
                    for k, c in enumerate(ch))

    w_bits, a_bits = {"fixed": (2, 4, 8), "sp2": (2, 4, 8)}, (4, 8)
    mats = [np.random.default_rng(k).standard_normal((4, 4)) for k in range(3)]
    env = QuantEnv(shapes, mats, cost_model=ToyCost(), budget=Budget(mem_bits=16 * 16),
                   evaluate=quality, w_bits=w_bits, a_bits=a_bits, penalty=1.0, bonus=0.0)
    fits = [ch for ch in itertools.product(env.actions, repeat=3)
            if env.budget.fits(env.cost(ch))]
    best = max(fits, key=quality)
    assert sum(quality(ch) == quality(best) for ch in fits) == 1  # the optimum is unique
    return env, best


def test_ppo_finds_toy_optimum():
    env, best = _toy_problem()
    assert best == (LayerChoice("sp2", 4, 4), LayerChoice("fixed", 8, 4),
                    LayerChoice("fixed", 4, 8))
    # 30 iterations of 32 episodes sample 960 of the 1728 configurations (with repeats): a
    # random search would find the optimum with probability 1 - (1727/1728)**960 = 0.43; the
    # greedy policy at the end must be the optimum too (it is for seeds 0-11)
    res = ppo_search(env, seed=0)
    assert res.best_choices == best
    assert res.final_choices == best
    assert res.best_cost == env.cost(best) and res.seconds > 0


@pytest.mark.parametrize(("kw", "exc", "msg"), [
    ({"iterations": 0}, ValueError, r"^iterations must be at least 1, not 0$"),
    ({"episodes_per_iter": 2.0}, TypeError, r"^episodes_per_iter must be an integer, not 2\.0$"),
    ({"lr": 0.0}, ValueError, r"^lr must be finite and in \(0\.0, inf\), not 0\.0$"),
    ({"clip": 1.5}, ValueError, r"^clip must be finite and in \(0\.0, 1\.0\], not 1\.5$"),
    ({"gamma": -0.1}, ValueError, r"^gamma must be finite and in \[0\.0, 1\.0\], not -0\.1$"),
    ({"seed": "0"}, TypeError, r"^seed must be an integer, not '0'$"),
    ({"policy": "joint"}, ValueError,
     r"^policy must be one of \('factored', 'flat'\), not 'joint'$"),
])
def test_ppo_errors(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        ppo_search(_env(), **{"iterations": 1, **kw})
    with pytest.raises(TypeError, match=r"^env must be a QuantEnv, not None$"):
        ppo_search(None)


# --- proxies, returns and the critic ----------------------------------------------------------

def _critic(seed=0, sizes=(4, 8, 8, 1)):
    return _actor(seed, sizes)


def _naive(layers, x, choices, ranges, output):
    for k, ((w, b), c) in enumerate(zip(layers, choices, strict=True)):
        x = quantize_activations(x, c.a_bits, ranges[k]) @ quantize_layer(w, c).T + b
        x = np.maximum(x, 0) if k < len(layers) - 1 else (np.tanh(x) if output == "tanh" else x)
    return x


def test_proxy_metrics_by_hand():
    actor, critic = _actor(3, (3, 8, 8, 2)), _critic(4, (5, 8, 8, 1))
    states = np.random.default_rng(2).uniform(-1, 1, (40, 3))
    ch = [LayerChoice("fixed", 3, 4), LayerChoice("sp2", 3, 6), LayerChoice("fixed", 4, 8)]
    mse = ProxyEvaluator(actor, states)
    y = mse.reference
    yq = _naive(mse.layers, states, ch, mse.ranges, "tanh")
    np.testing.assert_array_equal(mse.outputs(states, ch), yq)
    assert mse(ch) == pytest.approx(-np.mean((y - yq) ** 2), rel=1e-12)
    rel = ProxyEvaluator(actor, states, metric="rel")
    assert rel(ch) == pytest.approx(-np.mean(((y - yq) / y.std(axis=0)) ** 2), rel=1e-12)
    qd = ProxyEvaluator({"actor": actor, "critic": critic}, states, metric="q_drop",
                        critic={"actor": actor, "critic": critic})

    def q(a):
        h = np.concatenate([states, a], axis=1)
        for k in range(1, 4):
            h = h @ critic[f"l{k}.w"].T + critic[f"l{k}.b"]
            h = np.maximum(h, 0) if k < 3 else h
        return h[:, 0]

    want = -np.maximum(0, q(y) - q(yq)).mean() / np.abs(q(y)).mean()
    assert qd(ch) == pytest.approx(want, rel=1e-12)
    assert qd([LayerChoice("fixed", 16, 16)] * 3) > qd(ch)
    with pytest.raises(ValueError, match=r"^metric 'q_drop' needs a critic$"):
        ProxyEvaluator(actor, states, metric="q_drop")
    with pytest.raises(ValueError, match=r"^critic must map 5 inputs to 1 output, not 4 to 1$"):
        ProxyEvaluator(actor, states, metric="q_drop", critic=_critic())
    with pytest.raises(ValueError, match=r"^metric must be one of \('mse', 'rel', 'q_drop'\), "
                                         r"not 'l1'$"):
        ProxyEvaluator(actor, states, metric="l1")
    with pytest.raises(ValueError, match=r"^output must be one of \('tanh', 'linear'\), "
                                         r"not 'relu'$"):
        ProxyEvaluator(actor, states, output="relu")
    assert proxy_quality(actor, ch, states, metric="rel") == rel(ch)


def test_critic_evaluator_by_hand():
    actor, critic = _actor(1), _critic(2)
    states = np.random.default_rng(0).uniform(-1, 1, (30, 3))
    ev = critic_evaluator({"actor": actor, "critic": critic}, states)
    a = ProxyEvaluator(actor, states).reference
    inputs = np.concatenate([states, a], axis=1)
    np.testing.assert_array_equal(ev.states, inputs)
    ch = [LayerChoice("fixed", 4, 6)] * 3
    q = ev.reference[:, 0]
    qq = _naive(ev.layers, inputs, ch, ev.ranges, "linear")[:, 0]
    assert ev(ch) == pytest.approx(-np.mean((q - qq) ** 2) / q.var(), rel=1e-12)
    with pytest.raises(TypeError, match=r"^weights must be a DDPG weights dict"):
        critic_evaluator(actor, states)


def test_return_evaluator_matches_sequential_episodes():
    from sw_model.rl.envs import make

    actor = _actor(2)
    states = np.random.default_rng(0).uniform(-1, 1, (16, 3))
    ch = [LayerChoice("fixed", 6, 8)] * 3
    ev = ReturnEvaluator(actor, states, episodes=3, seed=4)
    lockstep = ev(ch)
    assert lockstep == return_quality(actor, ch, states, episodes=3, seed=4)
    # a given Env runs its episodes one after another: the same initial states
    sequential = return_quality(actor, ch, states, env=make("pendulum", seed=4), episodes=3)
    assert lockstep == pytest.approx(sequential, rel=1e-9)
    with pytest.raises(TypeError, match=r"^env must be an environment name, not 3$"):
        ReturnEvaluator(actor, states, env=3)


def test_log_shaping_by_hand():
    env = _env(budget=Budget(mem_bits=40), penalty=3.0, bonus=0.5, shaping="log")
    ep = env.score([LayerChoice("fixed", 2, 4), LayerChoice("fixed", 4, 8)])  # usage 1.4
    assert ep.reward == pytest.approx(-math.log(0.3125) - 3.0 * 0.4)
    assert ep.quality == pytest.approx(-0.3125)  # the quality itself is kept
    assert env.shaped(0.0) == pytest.approx(-math.log(1e-12))
    with pytest.raises(ValueError, match=r"^shaping must be one of \('linear', 'log'\), "
                                         r"not 'exp'$"):
        _env(shaping="exp")


def test_ppo_uniform_init():
    env = _env(budget=Budget(mem_bits=60))
    res = ppo_search(env, iterations=2, episodes_per_iter=4, seed=1, hidden=8, init="uniform",
                     init_prob=0.7)
    n = len(env.actions)
    assert len(res.history) == n + 8
    assert [ep.choices for ep in res.history[:n]] == [(c, c) for c in env.actions]
    best_uniform = uniform_baseline(_env(budget=Budget(mem_bits=60)))
    assert res.best_quality >= best_uniform.best_quality
    again = ppo_search(_env(budget=Budget(mem_bits=60)), iterations=2, episodes_per_iter=4,
                       seed=1, hidden=8, init="uniform", init_prob=0.7)
    assert [e.choices for e in again.history] == [e.choices for e in res.history]
    with pytest.raises(ValueError, match=r"^init must be None or 'uniform', not 'best'$"):
        ppo_search(env, init="best")
    with pytest.raises(ValueError, match=r"^init_prob must be below 1, not 1\.0$"):
        ppo_search(env, init="uniform", init_prob=1.0)


def test_ppo_several_incumbents():
    """Three restarts share 5 iterations (2, 2, 1), each from one of the three best uniform
    configurations: the first episodes of each restart mostly repeat its incumbent."""
    env = _env(budget=Budget(mem_bits=60))
    calls = []
    res = ppo_search(env, iterations=5, episodes_per_iter=30, seed=2, hidden=8, init="uniform",
                     init_prob=0.9, incumbents=3, callback=lambda i, r: calls.append(i))
    n = len(env.actions)
    assert calls == [0, 1, 2, 3, 4] and len(res.history) == n + 150
    ranked = sorted(res.history[:n], key=lambda e: (not e.fits, -e.reward))
    for r, begin in enumerate((n, n + 60, n + 120)):
        first = res.history[begin:begin + 30]
        inc = ranked[r].choices[0]
        # every component of every layer has probability 0.9: the incumbent itself 0.9**6
        share = sum(ep.choices == (inc, inc) for ep in first) / len(first)
        assert share >= 0.2, (r, share)
    one = ppo_search(_env(budget=Budget(mem_bits=60)), iterations=2, episodes_per_iter=4,
                     seed=1, hidden=8, init="uniform")
    same = ppo_search(_env(budget=Budget(mem_bits=60)), iterations=2, episodes_per_iter=4,
                      seed=1, hidden=8, init="uniform", incumbents=1)
    assert [e.choices for e in one.history] == [e.choices for e in same.history]
    with pytest.raises(ValueError, match=r"^incumbents must be"):
        ppo_search(env, init="uniform", incumbents=0)


@pytest.mark.parametrize("policy", ["factored", "flat"])
def test_policy_bias_gives_init_prob(policy):
    from sw_model.search.ppo import _PolicyHeads, _split

    env = _env()
    heads = _PolicyHeads(env, policy)
    choice = LayerChoice("sp2", 4, 8)
    bias = heads.bias(choice, 0.6)
    if policy == "flat":
        p = np.exp(bias) / np.exp(bias).sum()
        assert p[env.action_index(choice)] == pytest.approx(0.6)
        return
    sl = _split(heads.heads)
    mask = heads.masks["sp2"]
    comps = (env.schemes.index("sp2"), heads.w_all.index(4), env.a_bits.index(8))
    for h, i in enumerate(comps):
        z = np.where(mask[sl[h]], bias[sl[h]], -np.inf)
        p = np.exp(z) / np.exp(z).sum()
        assert p[i] == pytest.approx(0.6)
