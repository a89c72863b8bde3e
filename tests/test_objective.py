"""Tests of the loss-bounded objective (:mod:`sw_model.search.objective`): the cost metric
against a brute-force sum, the reward by hand, the held-out winner against a brute-force
selection, the rotating loss evaluator against episodes run one by one, and the searches
under a loss bound."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sw_model.rl.envs import make
from sw_model.search.baselines import descent_search, haq_ddpg_search, random_search
from sw_model.search.cost import Cost, LayerChoice, LayerShape
from sw_model.search.env import Budget, QuantEnv
from sw_model.search.evaluators import (
    START_BOXES,
    JointLossEvaluator,
    LossEvaluator,
    ProxyEvaluator,
    covering_starts,
    lattice_generator,
)
from sw_model.search.objective import (
    COST_FIELDS,
    CostMetric,
    LossBound,
    heldout_winner,
    parse_loss,
)
from sw_model.search.ppo import ppo_search

costs = st.builds(Cost, st.floats(0, 1e5), st.floats(0, 500), st.integers(0, 10**7),
                  st.integers(0, 10**6))


@given(st.dictionaries(st.sampled_from(COST_FIELDS),
                       st.sampled_from([1.0, 0.5, 2.0, 30.0, 1e-3, 7.25]), min_size=1),
       costs, st.booleans())
def test_cost_metric_parse_and_value(weights, cost, spaces):
    terms = [n if w == 1.0 else f"{w!r}*{n}" for n, w in weights.items()]
    text = (" + " if spaces else "+").join(terms)
    m = CostMetric.parse(text)
    assert m.weights == weights
    assert m(cost) == pytest.approx(sum(w * float(getattr(cost, n))
                                        for n, w in weights.items()))
    assert CostMetric.parse(str(m)) == m


def test_cost_metric_repeated_term_adds_up():
    assert CostMetric.parse("luts+2*luts+dsps").weights == {"luts": 3.0, "dsps": 1.0}


@pytest.mark.parametrize("text", ["", "lut", "luts+", "2*", "luts*2", "-1*luts", "luts+flops"])
def test_cost_metric_bad_text(text):
    with pytest.raises(ValueError, match=r"^cost metric must be terms \[weight\*\]resource "
                                         rf"joined by '\+' .*, not {re.escape(repr(text))}$"):
        CostMetric.parse(text)


def test_cost_metric_errors():
    with pytest.raises(TypeError, match=r"^cost metric must be a str, not 3$"):
        CostMetric.parse(3)
    with pytest.raises(ValueError, match=r"^weights must name at least one resource$"):
        CostMetric({})
    with pytest.raises(ValueError, match=r"^weight of dsps must be finite and in \(0.0, inf\), "
                                         r"not 0$"):
        CostMetric({"luts": 1.0, "dsps": 0})
    with pytest.raises(ValueError, match=r"^weights must name resources among .*, not 'ff'$"):
        CostMetric({"ff": 1.0})
    with pytest.raises(TypeError, match=r"^cost must be a Cost, not 5$"):
        CostMetric({"luts": 1.0})(5)


@pytest.mark.parametrize("text, value", [("2%", 0.02), (" 0.5 % ", 0.005), ("0.02", 0.02),
                                         (0.1, 0.1), (1e-6, 1e-6)])
def test_parse_loss(text, value):
    assert parse_loss(text) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("text", ["0%", "100%", "150%", "abc", "2%%", "-1%", "1", "nan"])
def test_parse_loss_bad_text(text):
    with pytest.raises(ValueError, match=r"^max_loss must be a fraction in \(0, 1\) or a "
                                         rf"percentage like '2%', not {re.escape(repr(text))}$"):
        parse_loss(text)


def test_parse_loss_bad_types():
    with pytest.raises(TypeError, match=r"^max_loss must be a real number, not True$"):
        parse_loss(True)
    with pytest.raises(ValueError, match=r"^max_loss must be finite and in \(0.0, 1.0\), "
                                         r"not 1.5$"):
        parse_loss(1.5)


def test_loss_bound_reward_by_hand():
    b = LossBound("2%", CostMetric.parse("luts+10*dsps"), 200.0, penalty=3.0)
    cost = Cost(100.0, 5.0, 0, 0)  # metric 150, usage 0.75
    assert b.usage(cost) == 0.75
    assert b.meets(-0.02) and b.meets(0.01) and not b.meets(-0.0201)
    assert b.reward(cost, -0.01) == pytest.approx(-math.log(0.75))
    # excess loss 0.03 over a bound of 0.02: 1.5 bounds
    assert b.reward(cost, -0.05) == pytest.approx(-math.log(0.75) - 3.0 * math.log(2.5))
    for kw, exc, msg in (({"metric": "luts"}, TypeError, r"^metric must be a CostMetric"),
                         ({"scale": 0.0}, ValueError, r"^scale must be finite and in \(0.0"),
                         ({"penalty": -1}, ValueError, r"^penalty must be finite and in \[0")):
        args = {"max_loss": 0.02, "metric": CostMetric({"luts": 1}), "scale": 1.0, **kw}
        with pytest.raises(exc, match=msg):
            LossBound(**args)


# --- the held-out winner ----------------------------------------------------------------

@dataclass(frozen=True)
class Ep:
    choices: tuple
    cost: Cost
    quality: float


GRID = [LayerChoice("fixed", w, a) for w in (2, 4, 8) for a in (4, 8)]


@st.composite
def histories(draw):
    """A history of episodes over 2-layer configurations (a configuration may repeat with
    the quality of its first evaluation), and a held-out loss per configuration."""
    configs = list(itertools.product(GRID, repeat=2))
    n = draw(st.integers(1, 30))
    idx = draw(st.lists(st.integers(0, len(configs) - 1), min_size=n, max_size=n))
    losses = st.sampled_from([-0.01, 0.0, 0.01, 0.02, 0.03, 0.5])
    train = {i: draw(losses) for i in set(idx)}
    held = {configs[i]: draw(losses) for i in set(idx)}
    cost = {i: Cost(float(draw(st.integers(0, 6))), 0.0, 0, 0) for i in set(idx)}
    hist = [Ep(configs[i], cost[i], -train[i]) for i in idx]
    return hist, held


@given(histories(), st.integers(1, 4), st.one_of(st.none(), st.integers(1, 5)))
def test_heldout_winner_brute_force(data, top, every):
    hist, held = data
    bound = LossBound(0.02, CostMetric({"luts": 1.0}), 1.0)
    calls = []

    def heldout(choices):
        calls.append(choices)
        return held[choices]

    sel = heldout_winner(hist, bound, heldout, top=top, every=every)
    assert len(calls) == len(set(calls)) == len(sel.checked)  # each re-checked once
    # brute force: the first evaluation of each configuration, in order
    distinct = []
    for ep in hist:
        if ep.choices not in [e.choices for e in distinct]:
            distinct.append(ep)

    def candidates(eps):
        ok = [e for e in eps if -e.quality <= 0.02]
        if ok:
            return sorted(ok, key=lambda e: (e.cost.luts, e.quality * -1, eps.index(e)))[:top]
        return sorted(eps, key=lambda e: (e.quality * -1, e.cost.luts, eps.index(e)))[:top]

    ends = list(range(every, len(distinct), every)) if every else []
    ends.append(len(distinct))
    expected = set()
    curve = []
    for d in ends:
        expected |= {e.choices for e in candidates(distinct[:d])}
        meets = [c for c in expected if held[c] <= 0.02]
        cheapest = min((distinct[[e.choices for e in distinct].index(c)].cost.luts
                        for c in meets), default=None)
        curve.append((d, cheapest))
    assert {c.choices for c in sel.checked} == expected
    assert sel.curve == curve
    assert all(a is None or (b is not None and b <= a)
               for (_, a), (_, b) in itertools.pairwise(sel.curve))
    if curve[-1][1] is None:
        assert sel.winner is None
    else:
        assert sel.winner.meets and sel.winner.metric == curve[-1][1]
        assert sel.winner.heldout_loss == held[sel.winner.choices]
    least = min(held[c] for c in expected)
    assert sel.least_loss.heldout_loss == least


def test_heldout_winner_nothing_meets_reports_least_loss():
    bound = LossBound(0.02, CostMetric({"luts": 1.0}), 1.0)
    a, b, c = ((LayerChoice("fixed", w, 4),) for w in (2, 4, 8))
    hist = [Ep(a, Cost(1.0, 0, 0, 0), -0.9), Ep(b, Cost(2.0, 0, 0, 0), -0.3),
            Ep(c, Cost(3.0, 0, 0, 0), -0.1)]
    held = {a: 0.8, b: 0.25, c: 0.12}
    sel = heldout_winner(hist, bound, held.__getitem__, top=2)
    assert sel.winner is None
    assert [x.choices for x in sel.checked] == [b, c]  # the two of least search loss
    assert (sel.least_loss.choices, sel.least_loss.metric) == (c, 3.0)
    assert heldout_winner([], bound, held.__getitem__).least_loss is None


def test_heldout_winner_errors():
    bound = LossBound(0.02, CostMetric({"luts": 1.0}), 1.0)
    with pytest.raises(TypeError, match=r"^bound must be a LossBound"):
        heldout_winner([], 0.02, len)
    with pytest.raises(TypeError, match=r"^heldout must be callable, not 3$"):
        heldout_winner([], bound, 3)
    with pytest.raises(ValueError, match=r"^top must be"):
        heldout_winner([], bound, len, top=0)
    with pytest.raises(ValueError, match=r"^every must be"):
        heldout_winner([], bound, len, every=0)


# --- the loss evaluator -------------------------------------------------------------------

def _actor(seed=0, sizes=(3, 8, 8, 1)):
    rng = np.random.default_rng(seed)
    return {f"l{k}.{p}": (rng.standard_normal((o, i)) / math.sqrt(i) if p == "w"
                          else 0.1 * rng.standard_normal(o))
            for k, (i, o) in enumerate(itertools.pairwise(sizes), 1) for p in "wb"}


def _one_episode(policy, env, seed, start=None):
    """The return of the episode of ``make(env, seed=seed)``'s first reset (or from ``start``),
    step by step."""
    e = make(env, seed=seed)
    obs, done, total = e.reset(state=start), False, 0.0
    lo, hi = e.action_low, e.action_high
    while not done:
        a = policy(np.atleast_2d(obs))[0]
        obs, r, term, trunc = e.step(lo + (a + 1.0) * 0.5 * (hi - lo))
        total += r
        done = term or trunc
    return total


def _float_policy(layers):
    """The float actor of ``layers`` (ReLU hidden layers, tanh output)."""

    def net(x):
        for k, (wk, b) in enumerate(layers):
            x = x @ wk.T + b
            x = np.tanh(x) if k == len(layers) - 1 else np.maximum(x, 0.0)
        return x

    return net


def test_loss_evaluator_rotates_and_matches_episodes_one_by_one():
    w = _actor()
    states = np.random.default_rng(1).standard_normal((16, 3))
    ev = LossEvaluator(w, states, env="pendulum", seeds=[7, 3, 11], episodes=2)
    assert [ev.turn(i) for i in range(4)] == [(7, 3), (11, 7), (3, 11), (7, 3)]
    q = (LayerChoice("fixed", 4, 6), LayerChoice("sp2", 3, 8), LayerChoice("fixed", 8, 8))
    proxy = ProxyEvaluator(w, states)
    full = (LayerChoice("fixed", 16, 16),) * 3
    float_net = _float_policy(proxy.layers)

    for turn in ((7, 3), (11, 7)):
        f = sum(_one_episode(float_net, "pendulum", s) for s in turn)
        qr = sum(_one_episode(lambda x: proxy.outputs(x, q), "pendulum", s) for s in turn)
        assert ev(q) == pytest.approx(-(f - qr) / abs(f), rel=1e-9, abs=1e-12)
    assert ev.calls == 2
    assert ev.loss(full, [3]) == pytest.approx(
        (_one_episode(float_net, "pendulum", 3)
         - _one_episode(lambda x: proxy.outputs(x, full), "pendulum", 3))
        / abs(_one_episode(float_net, "pendulum", 3)), abs=1e-12)


def test_loss_evaluator_confidence_bound_by_hand():
    w = _actor(2)
    states = np.random.default_rng(3).standard_normal((16, 3))
    ev = LossEvaluator(w, states, env="pendulum", seeds=[4, 9, 1], episodes=3)
    q = (LayerChoice("fixed", 3, 4), LayerChoice("fixed", 2, 4), LayerChoice("sp2", 2, 4))
    proxy = ProxyEvaluator(w, states)
    f = np.array([_one_episode(_float_policy(proxy.layers), "pendulum", s) for s in (4, 9, 1)])
    qr = np.array([_one_episode(lambda x: proxy.outputs(x, q), "pendulum", s)
                   for s in (4, 9, 1)])
    f_ev = ev.float_returns([4, 9, 1])
    assert np.allclose(f_ev, f, rtol=1e-12)
    d = f_ev - qr
    mean_d, var_d = d.mean(), ((d - d.mean())**2).sum() / 2
    expected = (3 * mean_d + 1.5 * math.sqrt(3) * math.sqrt(var_d)) / abs(f_ev.sum())
    assert ev.loss_bound(q, [4, 9, 1], 1.5) == pytest.approx(expected, rel=1e-9)
    assert ev.loss_bound(q, [4, 9, 1], 0) == pytest.approx(ev.loss(q, [4, 9, 1]), rel=1e-12)
    assert ev.loss_bound(q, [9], 3.0) == pytest.approx(ev.loss(q, [9]), rel=1e-12)
    with pytest.raises(ValueError, match=r"^z must be finite and in \[0.0, inf\), not -1$"):
        ev.loss_bound(q, [9], -1)


def _visited_inputs(actor_layers_, env, seed, stride):
    """``[s, actor(s)]`` at every ``stride``-th state of the float actor's episode, step by
    step."""
    net = _float_policy(actor_layers_)
    e = make(env, seed=seed)
    obs, done, k, out = e.reset(), False, 0, []
    lo, hi = e.action_low, e.action_high
    while not done:
        a = net(np.atleast_2d(obs))[0]
        if k % stride == 0:
            out.append(np.concatenate([obs, a]))
        obs, _, term, trunc = e.step(lo + (a + 1.0) * 0.5 * (hi - lo))
        done, k = term or trunc, k + 1
    return np.array(out)


def test_joint_loss_evaluator_by_hand():
    agent = {"actor": _actor(4), "critic": _actor(5, sizes=(4, 8, 6, 1))}
    states = np.random.default_rng(6).standard_normal((16, 3))
    ev = JointLossEvaluator(agent, states, max_loss=0.02, max_critic_error=0.05,
                            env="pendulum", seeds=[3, 8, 5], episodes=2, stride=7)
    assert [s.name for s in ev.shapes] == ["l1", "l2", "l3", "critic.l1", "critic.l2",
                                           "critic.l3"]
    assert [(s.fan_in, s.fan_out) for s in ev.shapes[3:]] == [(4, 8), (8, 6), (6, 1)]
    assert ev.split == 3
    actor_q = (LayerChoice("fixed", 4, 6), LayerChoice("sp2", 3, 8), LayerChoice("fixed", 8, 8))
    actor_ev = LossEvaluator(agent["actor"], states, env="pendulum", seeds=[3, 8, 5], episodes=2)
    a_layers = ProxyEvaluator(agent["actor"], states).layers
    # the critic, calibrated on the states with the float actor's actions, as the class says
    calib = np.concatenate([states, _float_policy(a_layers)(states)], axis=1)
    critic = ProxyEvaluator(agent["critic"], calib, output="linear")
    for critic_q in ((LayerChoice("fixed", 16, 16),) * 3,
                     (LayerChoice("fixed", 3, 4), LayerChoice("fixed", 4, 4),
                      LayerChoice("sp2", 2, 6))):
        seeds = ev.turn(ev.calls)
        x = np.concatenate([_visited_inputs(a_layers, "pendulum", s, 7) for s in seeds])
        q = _linear(critic.layers, x)
        err = math.sqrt(np.mean((q - critic.outputs(x, critic_q)[:, 0]) ** 2)) / np.abs(q).mean()
        a_loss = actor_ev.loss(actor_q, seeds)
        want = max(a_loss, err * 0.02 / 0.05)
        got = ev(actor_q + critic_q)
        assert got == pytest.approx(-want, rel=1e-9, abs=1e-12)
        assert ev.parts(actor_q + critic_q, seeds) == pytest.approx((a_loss, err), rel=1e-9)
    assert ev.calls == 2
    z = 1.0
    assert ev.loss_bound(actor_q + critic_q, [3, 8, 5], z) == pytest.approx(max(
        actor_ev.loss_bound(actor_q, [3, 8, 5], z),
        ev.critic_error(critic_q, [3, 8, 5]) * 0.4), rel=1e-12)


def _linear(layers, x):
    """A critic's float output: ReLU hidden layers, a linear output."""
    for k, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if k < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return x[:, 0]


def test_joint_loss_evaluator_errors():
    actor = _actor()
    states = np.zeros((4, 3))
    with pytest.raises(TypeError, match=r"^weights must be a DDPG weights dict with 'actor' "
                                        r"and 'critic'$"):
        JointLossEvaluator(actor, states, max_loss=0.02, max_critic_error=0.02)
    bad = {"actor": actor, "critic": _actor(1, sizes=(3, 8, 1))}
    with pytest.raises(ValueError, match=r"^the critic is 3-8-1, but the actor and 'pendulum' "
                                         r"need a critic of 4 inputs and 1 output$"):
        JointLossEvaluator(bad, states, max_loss=0.02, max_critic_error=0.02)
    good = {"actor": actor, "critic": _actor(1, sizes=(4, 8, 1))}
    with pytest.raises(ValueError, match=r"^max_critic_error must be finite and in \(0.0, "
                                         r"1.0\), not 0$"):
        JointLossEvaluator(good, states, max_loss=0.02, max_critic_error=0)
    with pytest.raises(ValueError, match=r"^stride must be"):
        JointLossEvaluator(good, states, max_loss=0.02, max_critic_error=0.02, stride=0)


def test_loss_evaluator_errors():
    w = _actor()
    states = np.zeros((4, 3))
    for kw, exc, msg in (
            ({"seeds": []}, TypeError, r"^seeds must be a non-empty sequence of int"),
            ({"seeds": [1, 1]}, ValueError, r"^seeds must be distinct, not \[1, 1\]$"),
            ({"seeds": [1, 2], "episodes": 3}, ValueError,
             r"^episodes must be at most len\(seeds\) = 2, not 3$"),
            ({"env": 5}, TypeError, r"^env must be an environment name, not 5$"),
            ({"env": "mountain_car_continuous"}, ValueError,
             r"^the actor maps 3 inputs to 1 outputs, but 'mountain_car_continuous' has 2 "
             r"observations and 1 actions$")):
        args = {"seeds": [1, 2, 3], "episodes": 2, **kw}
        with pytest.raises(exc, match=msg):
            LossEvaluator(w, states, **args)


# --- held-out starts spread over the initial states ---------------------------------------

def _unit(points):
    lo, hi = (np.array(v) for v in START_BOXES["pendulum"])
    return (points - lo) / (hi - lo)


def test_start_boxes_hold_the_environments_draws():
    for env, (lo, hi) in START_BOXES.items():
        e = make(env, seed=12)
        draws = []
        for _ in range(2000):
            e.reset()
            draws.append(e.state)
        draws = np.array(draws)
        assert (draws >= np.array(lo)).all() and (draws <= np.array(hi)).all()
        # the box is tight: the draws reach within 1% of its width of every face
        width = np.array(hi) - np.array(lo)
        assert (draws.min(axis=0) - lo <= 0.01 * width).all()
        assert (hi - draws.max(axis=0) <= 0.01 * width).all()


@given(n=st.integers(8, 240), seed=st.integers(0, 2**31))
def test_covering_starts_are_stratified_and_leave_no_cell_empty(n, seed):
    pts = covering_starts("pendulum", n, seed)
    assert pts.shape == (n, 2) and pts.dtype == np.float64
    u = _unit(pts)
    assert ((u >= 0) & (u < 1)).all()
    for dim in range(2):  # each of the n slices of each dimension holds one point
        assert sorted(np.floor(u[:, dim] * n).astype(int)) == list(range(n))
    k = math.isqrt(3 * n // 10)  # the largest k with k**2 <= 0.3 n
    cells = {tuple(c) for c in np.floor(u * k).astype(int)}
    assert len(cells) == k * k
    assert np.array_equal(covering_starts("pendulum", n, seed), pts)


def test_covering_starts_are_each_uniform():
    # the random shift makes every point uniform over the box: point 3 of 7, over seeds
    theta = np.array([covering_starts("pendulum", 7, s)[3, 0] for s in range(4000)])
    counts = np.histogram(theta, bins=10, range=(-math.pi, math.pi))[0]
    assert (abs(counts - 400) < 80).all()  # 4 standard deviations


def test_covering_starts_of_mountain_car_keep_the_fixed_velocity():
    pts = covering_starts("mountain_car_continuous", 20, 5)
    assert (pts[:, 1] == 0).all()
    u = (pts[:, 0] + 0.6) / 0.2
    assert sorted(np.floor(u * 20).astype(int)) == list(range(20))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 12, 13, 21, 30, 40])
def test_lattice_generator_maximises_the_closest_pair_brute_force(n):
    def closest(g):
        p = np.array([(i / n, i * g % n / n) for i in range(n)])
        best = math.inf
        for a, b in itertools.combinations(p, 2):
            d = np.abs(a - b)
            d = np.minimum(d, 1 - d)
            best = min(best, float(d @ d))
        return best

    coprime = [g for g in range(1, max(n, 2)) if math.gcd(g, n) == 1]
    g = lattice_generator(n)
    assert g in coprime
    if n > 2:
        assert closest(g) == pytest.approx(max(closest(h) for h in coprime))
        assert all(closest(h) < closest(g) - 1e-12 for h in coprime if h < g)


def test_covering_starts_errors():
    with pytest.raises(ValueError, match=r"^env must be one of \('pendulum', "
                                         r"'mountain_car_continuous'\), not 'cartpole'$"):
        covering_starts("cartpole", 4, 0)
    with pytest.raises(TypeError, match=r"^env must be an environment name, not 3$"):
        covering_starts(3, 4, 0)
    with pytest.raises(ValueError, match=r"^n must be"):
        covering_starts("pendulum", 0, 0)
    with pytest.raises(ValueError, match=r"^seed must be"):
        covering_starts("pendulum", 4, -1)


def test_loss_evaluator_from_starts_matches_episodes_one_by_one():
    w = _actor(3)
    states = np.random.default_rng(4).standard_normal((16, 3))
    starts = covering_starts("pendulum", 4, 9)
    ev = LossEvaluator(w, states, env="pendulum", starts=starts, episodes=2)
    assert ev.seeds == (0, 1, 2, 3)
    assert [ev.turn(i) for i in range(3)] == [(0, 1), (2, 3), (0, 1)]
    q = (LayerChoice("fixed", 4, 6), LayerChoice("fixed", 3, 4), LayerChoice("fixed", 8, 8))
    proxy = ProxyEvaluator(w, states)
    f = np.array([_one_episode(_float_policy(proxy.layers), "pendulum", 0, st)
                  for st in starts])
    qr = np.array([_one_episode(lambda x: proxy.outputs(x, q), "pendulum", 0, st)
                   for st in starts])
    assert np.allclose(ev.float_returns([0, 1, 2, 3]), f, rtol=1e-12)
    assert np.allclose(ev.returns(q, [3, 1]), qr[[3, 1]], rtol=1e-12)
    assert ev(q) == pytest.approx(-(f[:2].sum() - qr[:2].sum()) / abs(f[:2].sum()), rel=1e-9)
    starts[0] = 99.0  # the evaluator keeps its own copy
    assert ev.starts[0, 0] != 99.0 and not ev.starts.flags.writeable
    sub = LossEvaluator(w, states, starts=covering_starts("pendulum", 4, 9), seeds=[2],
                        episodes=1)
    assert sub.loss(q, [2]) == pytest.approx((f[2] - qr[2]) / abs(f[2]), rel=1e-9)
    with pytest.raises(ValueError, match=r"^seeds entry must index starts \(below 4\), not 7$"):
        sub.loss(q, [7])


def test_loss_evaluator_starts_errors():
    w = _actor()
    states = np.zeros((4, 3))
    for kw, msg in (({"starts": np.zeros((3, 3))},
                     r"^starts must have shape \(n >= 1, 2\), not \(3, 3\)$"),
                    ({"starts": np.zeros((0, 2))},
                     r"^starts must have shape \(n >= 1, 2\), not \(0, 2\)$"),
                    ({"starts": [[0.0, math.nan]]}, r"^starts must be finite$"),
                    ({"starts": np.zeros((3, 2)), "seeds": [0, 3]},
                     r"^seeds must index starts \(below 3\), not 3$")):
        with pytest.raises(ValueError, match=msg):
            LossEvaluator(w, states, episodes=1, **kw)


# --- searches under a loss bound ----------------------------------------------------------

SHAPES = (LayerShape("l1", 3, 4), LayerShape("l2", 4, 2))
W_SMALL = {"fixed": (2, 4, 8), "sp2": (2, 4)}
A_SMALL = (4, 8)


class ToyCost:
    """``luts = sum(w_bits * a_bits)``; the other resources 0."""

    def network_cost(self, shapes, choices, *, batch=1):
        return Cost(float(sum(c.w_bits * c.a_bits for c in choices)), 0.0, 0, 0)


def _toy_env():
    """Loss ``sum(2**-w_bits) / 2``: only 8-bit weights in both layers meet 2% (4 and 8 bits
    lose 3.3%), so the cheapest configuration that meets it is fixed 8/4 twice (64 LUTs)."""
    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((s.fan_out, s.fan_in)) for s in SHAPES]
    bound = LossBound(0.02, CostMetric({"luts": 1.0}), 128.0)
    return QuantEnv(SHAPES, mats, cost_model=ToyCost(), budget=bound,
                    evaluate=lambda ch: -sum(2.0**-c.w_bits for c in ch) / 2,
                    w_bits=W_SMALL, a_bits=A_SMALL)


def test_env_under_a_loss_bound_scores_by_hand():
    env = _toy_env()
    ep = env.score((LayerChoice("fixed", 8, 4), LayerChoice("fixed", 8, 8)))
    assert ep.cost.luts == 96.0 and ep.usage == 0.75
    assert ep.quality == -2**-8 and ep.fits and ep.merit == -96.0
    assert ep.reward == pytest.approx(-math.log(0.75))
    bad = env.score((LayerChoice("fixed", 2, 4), LayerChoice("fixed", 8, 8)))
    loss = (0.25 + 2**-8) / 2
    assert not bad.fits
    assert bad.reward == pytest.approx(-math.log(72 / 128) - 4.0 * math.log1p((loss - 0.02)
                                                                               / 0.02))


@pytest.mark.parametrize("search", [
    lambda env: ppo_search(env, iterations=6, episodes_per_iter=16, seed=3, init="uniform"),
    lambda env: haq_ddpg_search(env, episodes=80, warmup=20, seed=3),
    lambda env: random_search(env, episodes=200, seed=3),
    lambda env: descent_search(env, episodes=60),
    lambda env: ppo_search(env, iterations=6, episodes_per_iter=16, seed=3, init="uniform",
                           moves="local"),
])
def test_searches_keep_the_cheapest_that_meets_the_bound(search):
    env = _toy_env()
    res = search(env)
    meeting = [ep for ep in res.history if ep.fits]
    assert meeting, "the toy problem's feasible set is large enough to be found"
    cheapest = min(ep.cost.luts for ep in meeting)
    assert res.best_cost.luts == cheapest
    assert -res.best_quality <= 0.02
    # brute force over the grid: nothing that meets the bound is cheaper than 64 LUTs
    assert cheapest >= min(env.cost(c).luts for c in itertools.product(env.actions, repeat=2)
                           if sum(2.0**-x.w_bits for x in c) / 2 <= 0.02) == 64.0


def test_random_search_reproducible_and_uniform():
    a = random_search(_toy_env(), episodes=50, seed=1)
    b = random_search(_toy_env(), episodes=50, seed=1)
    assert [e.choices for e in a.history] == [e.choices for e in b.history]
    rng = np.random.default_rng(1)
    env = _toy_env()
    expected = [tuple(env.actions[j] for j in rng.integers(len(env.actions), size=2))
                for _ in range(50)]
    assert [e.choices for e in a.history] == expected


def test_descent_needs_a_loss_bound():
    env = _toy_env()
    with pytest.raises(ValueError, match=r"^episodes must be at least 1, not 0$"):
        descent_search(env, episodes=0)
    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((s.fan_out, s.fan_in)) for s in SHAPES]
    budgeted = QuantEnv(SHAPES, mats, cost_model=ToyCost(), budget=Budget(luts=100.0),
                        evaluate=lambda ch: 0.0, w_bits=W_SMALL, a_bits=A_SMALL)
    with pytest.raises(TypeError, match=r"^descent_search needs an env under a LossBound, not "
                                        r"Budget\("):
        descent_search(budgeted, episodes=10)


def _step_down(grid, bits):
    lower = [b for b in grid if b < bits]
    return lower[-1] if lower else None


@given(pen=st.lists(st.floats(0.0, 0.02), min_size=len(W_SMALL["fixed"]) * len(A_SMALL) * 2,
                    max_size=len(W_SMALL["fixed"]) * len(A_SMALL) * 2),
       budget=st.integers(1, 80))
def test_descent_walks_down_to_a_local_optimum(pen, budget):
    """A separable loss, each layer's part larger for narrower choices: the descent scores the
    uniform configurations first, every move lowers the cost and meets the bound, and where
    it stops (budget left) no one-step-cheaper configuration meets it (brute force)."""
    ws, as_ = W_SMALL["fixed"], A_SMALL
    table = {}
    for k in range(2):
        for i, w in enumerate(ws):
            for j, a in enumerate(as_):
                # a cumulative sum from the widest choice down: narrower loses more
                table[k, w, a] = sum(pen[(k * len(ws) + i2) * len(as_) + j2]
                                     for i2 in range(i, len(ws)) for j2 in range(j, len(as_))
                                     if (i2, j2) != (len(ws) - 1, len(as_) - 1))

    def loss(ch):
        return sum(table[k, c.w_bits, c.a_bits] for k, c in enumerate(ch))

    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((x.fan_out, x.fan_in)) for x in SHAPES]
    env = QuantEnv(SHAPES, mats, cost_model=ToyCost(),
                   budget=LossBound(0.02, CostMetric({"luts": 1.0}), 128.0),
                   evaluate=lambda ch: -loss(ch), w_bits={"fixed": ws}, a_bits=as_)
    res = descent_search(env, episodes=budget)
    hist = [ep.choices for ep in res.history]
    assert len(hist) <= budget
    n_uniform = min(budget, len(env.actions))
    assert hist[:n_uniform] == [(c, c) for c in env.actions][:n_uniform]
    assert res.best_cost is None or res.best_cost.luts == min(
        env.cost(c).luts for c in hist if loss(c) <= 0.02)
    final = res.final_choices
    if final is None:  # nothing uniform met the bound, or the budget ran out before
        assert not any(loss((c, c)) <= 0.02 for c in env.actions[:n_uniform]) \
            or len(hist) >= budget
        return
    assert loss(final) <= 0.02
    if len(hist) < budget:
        cheaper = []
        for k in range(2):
            w, a = _step_down(ws, final[k].w_bits), _step_down(as_, final[k].a_bits)
            for pair in ((w, final[k].a_bits), (final[k].w_bits, a), (w, a)):
                if None not in pair:
                    cheaper.append(tuple(LayerChoice("fixed", *pair) if i == k else final[i]
                                         for i in range(2)))
        assert all(loss(ch) > 0.02 for ch in cheaper
                   if env.cost(ch).luts < env.cost(final).luts)


def _grid_step(grid, bits, step):
    i = grid.index(bits) + step
    return grid[i] if 0 <= i < len(grid) else None


@given(pen=st.lists(st.floats(0.0, 0.02), min_size=22, max_size=22),
       seed=st.integers(0, 2**16), per_iter=st.integers(1, 6), step_prob=st.floats(0.05, 0.4))
def test_local_ppo_moves_one_step_from_a_moving_incumbent(pen, seed, per_iter, step_prob):
    """``moves="local"``: after the uniform configurations, every sampled configuration keeps
    the incumbent's schemes and moves each width at most one grid step; the incumbent of an
    iteration is the best (meeting the bound first, then by reward) of the best uniform
    configuration and everything sampled before (recomputed here from the history)."""
    ws, as_ = W_SMALL, A_SMALL
    keys = [(s, w, a) for s in ws for w in ws[s] for a in as_]
    loss_of = {(k, *key): pen[(k * len(keys) + i) % len(pen)] * (17 - key[1]) / 8
               for k in range(2) for i, key in enumerate(keys)}

    def loss(ch):
        return sum(loss_of[k, c.scheme, c.w_bits, c.a_bits] for k, c in enumerate(ch))

    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((x.fan_out, x.fan_in)) for x in SHAPES]
    env = QuantEnv(SHAPES, mats, cost_model=ToyCost(),
                   budget=LossBound(0.02, CostMetric({"luts": 1.0}), 128.0),
                   evaluate=lambda ch: -loss(ch), w_bits=ws, a_bits=as_)
    iterations = 4
    res = ppo_search(env, iterations=iterations, episodes_per_iter=per_iter, seed=seed,
                     hidden=8, init="uniform", moves="local", step_prob=step_prob)
    n = len(env.actions)
    hist = res.history
    assert len(hist) == n + iterations * per_iter
    assert [ep.choices for ep in hist[:n]] == [(c, c) for c in env.actions]

    def rank(ep):
        return (-loss(ep.choices) >= -0.02, ep.reward)

    inc = max(hist[:n], key=lambda ep: (ep.fits, ep.reward))  # ties: the first
    assert rank(inc) == max(rank(ep) for ep in hist[:n])
    for it in range(iterations):
        batch = hist[n + it * per_iter:n + (it + 1) * per_iter]
        for ep in batch:
            for c, i in zip(ep.choices, inc.choices, strict=True):
                assert c.scheme == i.scheme
                assert c.w_bits in {_grid_step(ws[i.scheme], i.w_bits, d) for d in (-1, 0, 1)}
                assert c.a_bits in {_grid_step(as_, i.a_bits, d) for d in (-1, 0, 1)}
        for ep in batch:
            if rank(ep) > rank(inc):
                inc = ep
    # the greedy configuration is a move from the last incumbent too
    for c, i in zip(res.final_choices, inc.choices, strict=True):
        assert c.scheme == i.scheme
        assert abs(ws[i.scheme].index(c.w_bits) - ws[i.scheme].index(i.w_bits)) <= 1
        assert abs(as_.index(c.a_bits) - as_.index(i.a_bits)) <= 1


def test_local_ppo_initial_moves_and_errors():
    """The initial policy of ``moves="local"`` steps each width down with ``step_prob`` and up
    with half of it (masked where the grid ends), and the search is reproducible."""
    from sw_model.search.ppo import _LocalHeads

    env = _toy_env()
    heads = _LocalHeads(env)
    z = heads.bias(0.2)
    rng = np.random.default_rng(5)
    mid = LayerChoice("fixed", 4, 4)  # a_bits 4 is the lowest: no step down
    draws = [heads.act(z, mid, rng) for _ in range(4000)]
    w_moves = np.array([d[1][0] for d in draws])
    a_moves = np.array([d[1][1] for d in draws])
    assert abs(np.mean(w_moves == 0) - 0.2) < 0.03 and abs(np.mean(w_moves == 2) - 0.1) < 0.03
    assert not np.any(a_moves == 0)  # masked: 4 is the lowest activation width
    # the other two renormalised: keep 0.7 / 0.8, up 0.1 / 0.8
    assert abs(np.mean(a_moves == 2) - 0.125) < 0.03
    for a, comps, _, _ in draws[:50]:  # mid's widths are at index 1 (w) and 0 (a)
        c = env.actions[a]
        assert c.w_bits == (2, 4, 8)[1 + (comps[0] - 1)]
        assert c.a_bits == (4, 8)[0 + (comps[1] - 1)]
    assert heads.act(z, mid, None)[0] == env.action_index(mid)  # arg-max: keep
    runs = [ppo_search(_toy_env(), iterations=3, episodes_per_iter=5, seed=s, init="uniform",
                       moves="local", hidden=8) for s in (4, 4, 5)]
    assert [e.choices for e in runs[0].history] == [e.choices for e in runs[1].history]
    assert [e.choices for e in runs[0].history] != [e.choices for e in runs[2].history]
    with pytest.raises(ValueError, match=r"^moves must be one of \('grid', 'local'\), not "
                                         r"'near'$"):
        ppo_search(env, init="uniform", moves="near")
    with pytest.raises(ValueError, match=r"^moves 'local' needs init 'uniform', not None$"):
        ppo_search(env, moves="local")
    with pytest.raises(ValueError, match=r"^step_prob must be below 0\.5, not 0\.5$"):
        ppo_search(env, init="uniform", moves="local", step_prob=0.5)


def test_local_ppo_rewards_the_improvement_on_the_incumbent():
    """Local moves' reward: a configuration that meets the bound earns how much its reward
    beats the incumbent's; one that does not, or is no better, earns 0 (by hand on the toy
    loss, whose rewards are ``-ln(LUTs / 128)`` when the bound is met)."""
    from sw_model.search.ppo import _gain

    env = _toy_env()
    inc = env.score((LayerChoice("fixed", 8, 8), LayerChoice("fixed", 8, 8)))  # 128 LUTs
    better = env.score((LayerChoice("fixed", 8, 4), LayerChoice("fixed", 8, 8)))  # 96, meets
    failing = env.score((LayerChoice("fixed", 2, 4), LayerChoice("fixed", 8, 4)))  # 40, fails
    assert _gain(better, inc) == pytest.approx(math.log(128 / 96))
    assert _gain(inc, better) == 0.0 and _gain(inc, inc) == 0.0
    assert _gain(failing, inc) == 0.0
    # an incumbent that fails: anything better counts, failing or not
    worse = env.score((LayerChoice("fixed", 2, 4), LayerChoice("fixed", 2, 4)))
    assert failing.reward > worse.reward
    assert _gain(failing, worse) == pytest.approx(failing.reward - worse.reward)
    assert _gain(worse, failing) == 0.0
