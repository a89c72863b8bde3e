"""Benchmark: automated mixed-precision search (PPO vs HAQ-style DDPG vs uniform widths).

Part 1, Pendulum: a float64 DDPG agent is trained (seeded); its actor is searched. The cost
model is the layer-pipelined mapping (one engine per layer, 16 lanes in all, shared out by
MACs; :mod:`sw_model.search.cost`), and uniform fixed-point 16-bit (w16/a16 in every layer) is the
reference. The search quality is the real return of 5 seeded episodes
(:class:`sw_model.search.evaluators.ReturnEvaluator`, log-scale reward, penalty 10 per fraction
over budget). For budgets at a fraction of the reference's cost,
:func:`sw_model.search.ppo.ppo_search` (started from the best uniform configuration: the 125
uniform configurations are scored first), :func:`sw_model.search.baselines.haq_ddpg_search` (as
many evaluated configurations) and :func:`sw_model.search.baselines.uniform_baseline` (every
uniform configuration) search; each best fitting configuration is also run on 10 held-out
episodes (another seed). Printed per budget and method: cost (LUTs, DSPs, weight bits), return
on the search episodes and held out, held-out return loss against the float actor and against
uniform 16-bit, cost reductions against uniform 16-bit and the search's wall time (median of
``--repeat`` runs with the same seed). Then, per method, the cheapest evaluated configuration
(by LUTs, then DSPs, then weight bits) whose search return is within 2% of uniform 16-bit's,
with its held-out loss.

Also in part 1: the proxies' Spearman rank correlation with the real return over 30 random
configurations (:func:`sw_model.search.evaluators.validate_proxy`: ``mse``, ``rel`` and
``q_drop`` with the trained critic); the same budgets on the shared mapping (one 16-lane engine
per kind), PPO against uniform only; and the critic: its cost and relative Q error
(:func:`sw_model.search.evaluators.critic_evaluator`) with each method's actor configuration
applied layer by layer, and a PPO search of the critic's own layers (quality: the relative Q
error) against the best uniform critic configuration at the same budgets.

Part 2, FIXAR size (actor 17-400-300-6, 64 lanes in all): no trained weights of that size
exist in the repository, so the weights are synthetic (Student-t with 4 degrees of freedom,
scaled to a standard deviation of ``1/sqrt(fan_in)``; biases ``N(0, 0.1**2)``) and the states
standard normal; the quality is the ``rel`` proxy (squared action error normalised per
output), log-scale reward. PPO vs HAQ vs uniform: cost and proxy error at the same budget, and
time.

Part 3, the users' question (``fixar-hw search --max-loss``): the cheapest configuration by
LUTs whose return stays within 2% of the float actor's, on a Pendulum actor of FIXAR's hidden
sizes (3-400-300-1, float64 DDPG, seeded), 64 lanes pipelined (``--mapping engine``: by memory
bits on the training engine's 16x16x2 array instead). For each of 3 search seeds,
:func:`fixar_hw.apps.search.run_loss_search` runs PPO (moving one width step at a time from
an incumbent that starts at the best uniform configuration; ``--moves grid`` for choices on
the whole grid), HAQ-style DDPG, random search and the greedy descent with the same number of
sampled configurations, and every uniform configuration; each scores configurations on episodes
rotating through a seeded pool, re-checks its cheapest on held-out episodes every 16 distinct
evaluations and reports its held-out winner. The held-out episodes start from initial states
spread evenly over Pendulum's (``--heldout lattice``, the default) or from seeded random draws
(``--heldout seeds``). Printed per seed and method: the winner's cost, its loss on the search's
episodes, held out, and on a third set of episodes, seeded random draws used for nothing else
("test"), with the starts of the test episodes the winner loses most on when its test loss
breaks the bound; then the median over seeds of PPO's reduction against each baseline, and
how many evaluations PPO and the descent need to reach HAQ's final held-out cost, and every
layer's floor (:func:`fixar_hw.apps.search.layer_floor`) with the count of configurations
that undercut it. ``--env mountain_car_continuous`` runs it on MountainCarContinuous (the
agent trained with correlated exploration noise). The time-to-quality curves
(held-out winner's LUTs against distinct configurations evaluated) go to
``runs/bench_autoq/time_to_quality.png``. ``--critic`` searches the actor's and the critic's
layers together (:class:`sw_model.search.evaluators.JointLossEvaluator`: the critic's relative
value error on the visited states must also stay within ``--max-critic-error``); the test
column is then the larger of the actor's test loss and the critic's scaled test error, with
both parts, held out and test, after each line.

Reproduce with::

    python benchmarks/bench_autoq.py                  # full (parts 1-2 about 15 minutes)
    python benchmarks/bench_autoq.py --part loss      # part 3 only
    python benchmarks/bench_autoq.py --part loss --heldout seeds   # random held-out starts
    python benchmarks/bench_autoq.py --part loss --fresh-episodes 2000  # and 2,000 more episodes
    python benchmarks/bench_autoq.py --part loss --mapping engine  # on the engine's array
    python benchmarks/bench_autoq.py --part loss --critic  # actor and critic together
    python benchmarks/bench_autoq.py --quick --repeat 1
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fixar_hw.apps.search import (
    COLORS,
    LOSS_METHODS,
    REFERENCE,
    calibration_states,
    choice_text,
    float_return,
    run_loss_search,
    train_agent,
)
from sw_model.rl.envs import make
from sw_model.search.baselines import haq_ddpg_search, uniform_baseline
from sw_model.search.cost import Cost, CostModel, LayerChoice
from sw_model.search.env import Budget, QuantEnv, SearchResult
from sw_model.search.evaluators import (
    JointLossEvaluator,
    LossEvaluator,
    ProxyEvaluator,
    ReturnEvaluator,
    critic_evaluator,
    return_quality,
    validate_proxy,
)
from sw_model.search.ppo import MOVES, ppo_search
from sw_model.search.quantize import actor_layers, actor_shapes

PENALTY = 10.0
#: The reduced grid of ``--quick`` (15 kinds instead of 125).
QUICK_GRID = {"w_bits": {"fixed": (4, 8, 16), "sp2": (2, 4)}, "a_bits": (4, 8, 16)}


def timed(fn: Callable[[QuantEnv], SearchResult], make_env: Callable[[], QuantEnv],
          repeat: int) -> tuple[SearchResult, float]:
    """The result of the last run and the median wall time of ``repeat`` runs, each on a fresh
    environment (``QuantEnv`` memoises its scores, which would speed up later runs)."""
    times, res = [], None
    for _ in range(repeat):
        env = make_env()
        t = time.perf_counter()
        res = fn(env)
        times.append(time.perf_counter() - t)
    assert res is not None
    return res, statistics.median(times)


def pct(new: float, ref: float) -> float:
    """Reduction of ``new`` against ``ref`` in percent (positive: cheaper)."""
    return 100.0 * (ref - new) / ref if ref else 0.0


def loss(ret: float, ref: float) -> float:
    """Return loss against ``ref`` in percent of ``|ref|`` (positive: worse)."""
    return 100.0 * (ref - ret) / abs(ref)


def short(choices) -> str:
    return " ".join(choice_text(c) for c in choices)


def budgets(ref: Cost, fracs) -> list[tuple[str, Budget]]:
    out = []
    for f in fracs:
        out.append((f"LUT+DSP {f:.0%}", Budget(luts=f * ref.luts, dsps=f * ref.dsps)))
    for f in fracs:
        out.append((f"LUT+mem {f:.0%} (DSP<=ref)",
                    Budget(luts=f * ref.luts, dsps=ref.dsps, mem_bits=int(f * ref.mem_bits))))
    return out


def run_methods(make_env: Callable[[], QuantEnv], iterations: int, per_iter: int, repeat: int,
                seed: int, methods=("ppo", "haq", "uniform")
                ) -> dict[str, tuple[SearchResult, float]]:
    probe = make_env()
    n = len(probe.actions) + iterations * per_iter  # as many evaluations as PPO
    fns = {
        "ppo": lambda env: ppo_search(env, iterations=iterations, episodes_per_iter=per_iter,
                                      seed=seed, init="uniform"),
        "haq": lambda env: haq_ddpg_search(env, episodes=n, warmup=min(20, n // 4), seed=seed),
        "uniform": uniform_baseline,
    }
    return {m: timed(fns[m], make_env, repeat) for m in methods}


def pendulum(args: argparse.Namespace) -> None:
    quick = args.quick
    hidden = (16, 16) if quick else (64, 64)
    steps = args.steps or (1500 if quick else 10000)
    n_states, episodes, held_episodes = (64, 2, 2) if quick else (256, 5, 10)
    iterations, per_iter = (3, 8) if quick else (15, 32)
    fracs = (0.7,) if quick else (0.5, 0.7)
    n_valid = 4 if quick else 30
    seed, held_seed = 0, 2
    model = CostModel.load(lanes=16, mapping="pipelined")
    shared = CostModel.load(lanes=16, mapping="shared")
    t0 = time.perf_counter()
    agent = train_agent(steps, seed, hidden=hidden)
    weights = agent["actor"]
    t_train = time.perf_counter() - t0
    states = calibration_states(weights, n_states, seed)
    f_ret = float_return(weights, episodes=episodes, seed=seed)
    f_held = float_return(weights, episodes=held_episodes, seed=held_seed)
    evaluate = ReturnEvaluator(weights, states, episodes=episodes, seed=seed)
    held: dict[tuple, float] = {}

    def held_ret(choices) -> float:
        key = tuple(choices)
        if key not in held:
            held[key] = return_quality(weights, key, states, episodes=held_episodes,
                                       seed=held_seed)
        return held[key]

    grid = QUICK_GRID if quick else {}

    def env_for(budget: Budget, cost_model: CostModel = model) -> QuantEnv:
        return QuantEnv.from_actor(weights, states, cost_model=cost_model, budget=budget,
                                   evaluate=evaluate, shaping="log", penalty=PENALTY, bonus=0.0,
                                   **grid)

    probe = env_for(Budget(luts=1.0))
    ref_choices = (REFERENCE,) * probe.n_layers
    ref_cost = probe.cost(ref_choices)
    ref_ret = probe.score(ref_choices).quality
    ref_held = held_ret(ref_choices)
    arch = "-".join(str(s.fan_in) for s in probe.shapes) + f"-{probe.shapes[-1].fan_out}"
    print(f"Part 1: Pendulum, float64 DDPG actor {arch}, {steps} training steps (seed {seed}, "
          f"{t_train:.1f} s); pipelined mapping, {model.lanes} lanes in all, per layer "
          f"{model.allocate(probe.shapes)}")
    print(f"quality: mean return of {episodes} seeded episodes (seed {seed}), log-scale reward, "
          f"penalty {PENALTY:g}; held out: {held_episodes} episodes (seed {held_seed}); "
          f"searches: PPO {len(probe.actions)} uniform + {iterations} x {per_iter} episodes, "
          f"HAQ {len(probe.actions) + iterations * per_iter} episodes, uniform "
          f"{len(probe.actions)} configurations; times: median of {args.repeat}")
    print(f"float actor return {f_ret:.1f} (held out {f_held:.1f}); uniform fixed 16/16: "
          f"{ref_cost.luts:.0f} LUTs, {ref_cost.dsps:.0f} DSPs, {ref_cost.mem_bits} weight bits, "
          f"{ref_cost.cycles} cycles, return {ref_ret:.1f} (held out {ref_held:.1f}, "
          f"{loss(ref_held, f_held):+.1f}% vs float)")

    print()
    print(f"Proxy validation: Spearman rho of each proxy with the return ({episodes} seeded "
          f"episodes) over {n_valid} random configurations")
    for metric in ("mse", "rel", "q_drop"):
        v = validate_proxy(weights, states, n_configs=n_valid, episodes=episodes, seed=seed,
                           metric=metric, critic=agent, **grid)
        print(f"  {metric:7} rho = {v.rho:+.3f}")

    print()
    head = (f"{'budget':24} {'method':7} {'LUTs':>6} {'DSPs':>4} {'mem bits':>8} "
            f"{'return':>8} {'held':>8} {'loss/fl':>8} {'loss/16':>8} {'LUT red':>7} "
            f"{'DSP red':>7} {'mem red':>7} {'time s':>6}  choices")
    print(head)
    print("-" * len(head))
    cheap_rows = []
    best_actor: dict[tuple[str, str], tuple] = {}
    for label, budget in budgets(ref_cost, fracs):
        results = run_methods(lambda b=budget: env_for(b), iterations, per_iter, args.repeat,
                              seed)
        for method, (res, secs) in results.items():
            name = "uniform*" if method == "uniform" else method
            if res.best_choices is None:
                print(f"{label:24} {name:7} nothing fitting among {len(res.history)} "
                      f"evaluated ({secs:.2f} s)")
            else:
                best_actor[label, name] = res.best_choices
                c, r, h = res.best_cost, res.best_quality, held_ret(res.best_choices)
                print(f"{label:24} {name:7} {c.luts:6.0f} {c.dsps:4.0f} {c.mem_bits:8d} "
                      f"{r:8.1f} {h:8.1f} {loss(h, f_held):+7.1f}% "
                      f"{loss(h, ref_held):+7.1f}% {pct(c.luts, ref_cost.luts):6.1f}% "
                      f"{pct(c.dsps, ref_cost.dsps):6.1f}% "
                      f"{pct(c.mem_bits, ref_cost.mem_bits):6.1f}% {secs:6.2f}  "
                      f"{short(res.best_choices)}")
            unique = {ep.choices: ep for ep in res.history}.values()
            order = sorted(unique, key=lambda e: (e.cost.luts, e.cost.dsps, e.cost.mem_bits))
            found = next((ep for ep in order if loss(ep.quality, ref_ret) <= 2.0), None)
            cheap_rows.append((label, name, found, len(order)))
    print("(uniform*: the best uniform configuration that fits the same budget; return: the "
          "search's episodes; held: held-out episodes; losses use the held-out returns)")
    print()
    print("Cheapest evaluated configuration (by LUTs, then DSPs, then weight bits) whose search "
          "return is within 2% of uniform 16-bit's")
    head2 = (f"{'search (budget)':24} {'method':7} {'LUTs':>6} {'DSPs':>4} {'mem bits':>8} "
             f"{'return':>8} {'held':>8} {'held/16':>8} {'LUT red':>7} {'DSP red':>7} "
             f"{'mem red':>7} {'unique':>6}  choices")
    print(head2)
    print("-" * len(head2))
    for label, name, ep, total in cheap_rows:
        if ep is None:
            print(f"{label:24} {name:7} none of {total} evaluated configurations")
            continue
        c, h = ep.cost, held_ret(ep.choices)
        print(f"{label:24} {name:7} {c.luts:6.0f} {c.dsps:4.0f} {c.mem_bits:8d} "
              f"{ep.quality:8.1f} {h:8.1f} {loss(h, ref_held):+7.1f}% "
              f"{pct(c.luts, ref_cost.luts):6.1f}% {pct(c.dsps, ref_cost.dsps):6.1f}% "
              f"{pct(c.mem_bits, ref_cost.mem_bits):6.1f}% {total:>6}  {short(ep.choices)}")
    print("(the budget only steers the search; these need not fit it. held/16: held-out loss "
          "against uniform 16-bit's held-out return)")

    # the shared mapping, for comparison
    s_ref = shared.network_cost(probe.shapes, ref_choices)
    print()
    print(f"Shared mapping (one {shared.lanes}-lane engine per kind): uniform fixed 16/16 "
          f"{s_ref.luts:.0f} LUTs, {s_ref.dsps:.0f} DSPs; best fitting return, one run each")
    for label, budget in budgets(s_ref, fracs):
        results = run_methods(lambda b=budget: env_for(b, shared), iterations, per_iter, 1, seed,
                              methods=("ppo", "uniform"))
        parts = []
        for method, (res, _) in results.items():
            if res.best_choices is None:
                parts.append(f"{method} -")
            else:
                parts.append(f"{method} {res.best_quality:8.1f} ({res.best_cost.luts:.0f} LUTs, "
                             f"{res.best_cost.dsps:.0f} DSPs, {short(res.best_choices)})")
        print(f"  {label:24} " + "; ".join(parts))

    critic_part(agent, states, best_actor, model, iterations, per_iter, fracs, grid)


def critic_part(agent, states, best_actor, model: CostModel, iterations: int, per_iter: int,
                fracs, grid) -> None:
    """The critic: its cost and Q error under the actor's configurations, and its own search."""
    critic = agent["critic"]
    ev = critic_evaluator(agent, states)
    shapes = actor_shapes(critic)
    mats = [w for w, _ in actor_layers(critic)]
    ref_choices = (REFERENCE,) * len(shapes)
    ref = model.network_cost(shapes, ref_choices)

    def rms(choices) -> float:
        return float(np.sqrt(-ev(choices)))

    arch = "-".join(str(s.fan_in) for s in shapes) + f"-{shapes[-1].fan_out}"
    print()
    print(f"Critic {arch} (pipelined, lanes {model.allocate(shapes)}): relative Q error = RMS of "
          f"(Q_quant - Q_float) / std(Q_float) on the calibration states with the float actor's "
          f"actions; uniform fixed 16/16: {ref.luts:.0f} LUTs, {ref.dsps:.0f} DSPs, "
          f"{ref.mem_bits} weight bits, Q error {rms(ref_choices):.2%}")
    print("  the actor's best configurations applied to the critic layer by layer:")
    for (label, name), choices in best_actor.items():
        if len(choices) != len(shapes):
            continue
        c = model.network_cost(shapes, choices)
        print(f"  {label:24} {name:8} {c.luts:6.0f} LUTs {c.dsps:3.0f} DSPs {c.mem_bits:7d} bits  "
              f"Q error {rms(choices):7.2%}  {short(choices)}")
    print("  searching the critic's own layers (quality: -(relative Q error)**2, log-scale):")
    for label, budget in budgets(ref, fracs):
        def make_env(b: Budget = budget) -> QuantEnv:
            return QuantEnv(shapes, mats, cost_model=model, budget=b, evaluate=ev,
                            shaping="log", penalty=PENALTY, bonus=0.0, **grid)

        results = run_methods(make_env, iterations, per_iter, 1, 0, methods=("ppo", "uniform"))
        for method, (res, secs) in results.items():
            if res.best_choices is None:
                print(f"  {label:24} {method:8} nothing fitting")
                continue
            c = res.best_cost
            print(f"  {label:24} {method:8} {c.luts:6.0f} LUTs {c.dsps:3.0f} DSPs "
                  f"{c.mem_bits:7d} bits  Q error {rms(res.best_choices):7.2%}  {secs:5.1f} s  "
                  f"{short(res.best_choices)}")


def synthetic_actor(sizes, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = 4.0
    out = {}
    for k, (i, o) in enumerate(itertools.pairwise(sizes), 1):
        t = rng.standard_t(df, (o, i)) * np.sqrt((df - 2.0) / df)
        out[f"l{k}.w"] = t / np.sqrt(i)
        out[f"l{k}.b"] = 0.1 * rng.standard_normal(o)
    return out


def fixar_size(args: argparse.Namespace) -> None:
    quick = args.quick
    sizes = (17, 400, 300, 6)
    lanes = 64
    model = CostModel.load(lanes=lanes, mapping="pipelined")
    n_states = 64 if quick else 256
    iterations, per_iter = (2, 8) if quick else (20, 32)
    fracs = (0.7,) if quick else (0.5, 0.7)
    weights = synthetic_actor(sizes, 0)
    states = np.random.default_rng(1).standard_normal((n_states, sizes[0]))
    evaluate = ProxyEvaluator(weights, states, metric="rel")

    grid = QUICK_GRID if quick else {}

    def env_for(budget: Budget) -> QuantEnv:
        return QuantEnv.from_actor(weights, states, cost_model=model, budget=budget,
                                   evaluate=evaluate, shaping="log", penalty=PENALTY, bonus=0.0,
                                   **grid)

    probe = env_for(Budget(luts=1.0))
    ref_choices = (REFERENCE,) * probe.n_layers
    ref_cost = probe.cost(ref_choices)
    print()
    print(f"Part 2: FIXAR-size actor {'-'.join(map(str, sizes))}, synthetic weights (Student-t, "
          f"4 dof, std 1/sqrt(fan_in)), {n_states} standard-normal states; pipelined, {lanes} "
          f"lanes {model.allocate(probe.shapes)}; quality: the 'rel' proxy (log-scale reward); "
          f"PPO {len(probe.actions)} uniform + {iterations} x {per_iter} episodes vs HAQ "
          f"{len(probe.actions) + iterations * per_iter} episodes; times: median of "
          f"{args.repeat}")
    print(f"uniform fixed 16/16: {ref_cost.luts:.0f} LUTs, {ref_cost.dsps:.0f} DSPs, "
          f"{ref_cost.mem_bits} weight bits, rel error {-probe.evaluate(ref_choices):.2g}")
    head = (f"{'budget':24} {'method':7} {'LUTs':>6} {'DSPs':>4} {'mem bits':>8} "
            f"{'rel err':>9} {'LUT red':>7} {'DSP red':>7} {'mem red':>7} {'fitting':>9} "
            f"{'time s':>6}  choices")
    print(head)
    print("-" * len(head))
    for label, budget in budgets(ref_cost, fracs):
        results = run_methods(lambda b=budget: env_for(b), iterations, per_iter, args.repeat, 0)
        for method, (res, secs) in results.items():
            name = "uniform*" if method == "uniform" else method
            n_fit = sum(ep.fits for ep in res.history)
            fit = f"{n_fit}/{len(res.history)}"
            if res.best_choices is None:
                print(f"{label:24} {name:7} nothing fitting {fit:>55} {secs:6.2f}")
                continue
            c = res.best_cost
            print(f"{label:24} {name:7} {c.luts:6.0f} {c.dsps:4.0f} {c.mem_bits:8d} "
                  f"{-res.best_quality:9.2g} {pct(c.luts, ref_cost.luts):6.1f}% "
                  f"{pct(c.dsps, ref_cost.dsps):6.1f}% "
                  f"{pct(c.mem_bits, ref_cost.mem_bits):6.1f}% {fit:>9} {secs:6.2f}  "
                  f"{short(res.best_choices)}")
    print("(fitting: evaluated configurations within the budget; HAQ enforces the budget on "
          "each one, PPO only learns it from the reward)")


def _reach(curve, target: float) -> int | None:
    """Distinct evaluations after which ``curve`` first reaches ``target`` or below."""
    return next((x for x, y in curve if y is not None and y <= target), None)


def plot_curves(path: Path, runs: dict[int, dict[str, list]], title: str,
                ylabel: str = "held-out winner's LUTs") -> None:
    """Every method's time-to-quality curve for every search seed, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = ["-", "--", ":"]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for k, (seed, curves) in enumerate(runs.items()):
        for method, pts in curves.items():
            xs = [x for x, y in pts if y is not None]
            ys = [y for _, y in pts if y is not None]
            if xs:
                ax.step(xs, ys, where="post", color=COLORS.get(method, "tab:gray"),
                        linestyle=styles[k % len(styles)], label=f"{method}, seed {seed}")
    finals = [y for curves in runs.values() for pts in curves.values()
              for _, y in pts[-1:] if y is not None]
    if finals:  # an early, expensive winner of a slow method would flatten the rest
        ax.set_ylim(0.9 * min(finals), 1.5 * max(finals))
    ax.set_xlabel("configurations evaluated (distinct)")
    ax.set_ylabel(ylabel)
    ax.set_title(textwrap.fill(title, 100), fontsize=9)  # long titles wrap
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _start_text(start: np.ndarray) -> str:
    return f"({start[0]:+.2f}, {start[1]:+.2f})"


def worst_starts(tester: LossEvaluator, choices: tuple[LayerChoice, ...],
                 seeds: tuple[int, ...], k: int = 3) -> str:
    """The ``k`` test episodes ``choices`` loses most return on: start state and return
    lost against the float actor."""
    lost = tester.float_returns(seeds) - tester.returns(choices, seeds)
    order = np.argsort(-lost)[:k]
    starts = [make_start(s, tester.env) for s in np.array(seeds)[order]]
    return (f"worst test starts (state: return lost; float total "
            f"{tester.float_returns(seeds).sum():.0f}): " + ", ".join(
                f"{_start_text(st)}: {v:.0f}" for st, v in zip(starts, lost[order], strict=True)))


def make_start(seed: int, env_name: str = "pendulum") -> np.ndarray:
    """The initial state of the seeded episode ``seed`` of ``env_name``."""
    env = make(env_name, seed=int(seed))
    env.reset()
    return env.state


def heldout_worst(run, actor, calib, seed: int) -> list[str]:
    """Per method, the held-out episode its winner's actor loses most on (for the summary)."""
    b = run.best
    held = (LossEvaluator(actor, calib, starts=np.array(b["heldout_episodes"]),
                          episodes=len(b["heldout_episodes"]), env=b["env"])
            if b["heldout"] == "lattice" else
            LossEvaluator(actor, calib, seeds=b["heldout_episodes"],
                          episodes=len(b["heldout_episodes"]), env=b["env"]))
    lines = []
    for method, entry in b["methods"].items():
        if entry["winner"] is None:
            continue
        choices = tuple(LayerChoice(*(int(v) if v.isdigit() else v for v in x.split(":")))
                        for x in entry["winner"]["choices"])[:len(held.layers)]
        f = held.float_returns(held.seeds)
        lost = f - held.returns(choices, held.seeds)
        i = int(np.argmax(lost))
        start = (np.array(b["heldout_episodes"][i]) if b["heldout"] == "lattice"
                 else make_start(b["heldout_episodes"][i], b["env"]))
        lines.append(f"seed {seed} {method:8} {_start_text(start)}: {lost[i]:.0f} of "
                     f"{abs(f.sum()):.0f}, the float actor's |total return|")
    return lines


#: Part 3's environments, as printed.
ENV_NAMES = {"pendulum": "Pendulum", "mountain_car_continuous": "MountainCarContinuous"}
#: Part 3's default training steps per environment.
LOSS_STEPS = {"pendulum": 15000, "mountain_car_continuous": 30000}


def loss_part(args: argparse.Namespace) -> None:
    """Part 3: the cheapest configuration within a held-out return loss (``--max-loss``)."""
    quick = args.quick
    env = args.env
    name = ENV_NAMES[env]
    hidden = (16, 16) if quick else tuple(args.loss_hidden)
    steps = args.loss_steps or (1500 if quick else LOSS_STEPS[env])
    seeds = (0,) if quick else (0, 1, 2)
    iterations, per_iter = (2, 8) if quick else (20, 32)
    lanes, n_states, episodes, pool, recheck, step = 64, 256, 5, 50, 5, 16
    engine = args.mapping == "engine"
    cost = "mem_bits" if engine else "luts"
    unit = "memory bits" if engine else "LUTs"
    model_text = ("the training engine's 16x16x2 array (packed memories)" if engine
                  else f"{args.mapping} mapping, {lanes} lanes in all")
    n_held = args.heldout_episodes
    if quick:
        n_states, pool, n_held = 64, 10, 4
    max_loss = args.max_loss
    out = Path(args.out)
    t0 = time.perf_counter()
    agent = train_agent(steps, 0, hidden=hidden, env=env)
    actor = agent["actor"]
    t_train = time.perf_counter() - t0
    n_actor = len(actor_shapes(actor))
    arch = "-".join(str(s.fan_in) for s in actor_shapes(actor)) + "-1"
    crit = args.critic
    c_arch = "-".join(str(w.shape[1]) for w, _ in actor_layers(agent["critic"])) + "-1"
    if crit:
        arch = f"{arch} and critic {c_arch} searched together (critic value error within " \
               f"{args.max_critic_error})"
    test_seeds = tuple(900000 + k for k in range(n_held))
    fresh_seeds = tuple(800000 + k for k in range(args.fresh_episodes))
    print()
    held_text = (f"starting from a lattice spread over {name}'s initial states (shift seed "
                 "100000s+50000)" if args.heldout == "lattice" else "(seeds 100000s+50000..)")
    n_uniform = 75 if engine else 125
    print(f"Part 3: the cheapest configuration by {unit} within {max_loss} held-out return "
          f"loss; {name} actor {arch}, float64 DDPG, {steps} steps (seed 0, "
          f"{t_train:.0f} s); {model_text}")
    print(f"each search seed s: calibration rollouts seed s+1, {episodes} episodes per "
          f"evaluation rotating through a pool of {pool} (seeds 100000s+10..), the {recheck} "
          f"cheapest re-checked on {n_held} held-out episodes {held_text} every "
          f"{step} distinct evaluations (loss + {args.confidence:g} standard errors); winner = "
          f"cheapest that meets the bound held out; "
          f"'test': the winner's loss on {n_held} further episodes (seeds 900000.., random "
          f"starts) used for nothing else. Samples per method: PPO {n_uniform} uniform + "
          f"{iterations} x {per_iter} ({args.moves} moves, {args.incumbents} incumbent(s)), HAQ, "
          f"random and descent ({n_uniform} uniform, then greedy steps) as many, uniform "
          f"{n_uniform}")
    head = (f"{'seed':>4} {'method':8} {'evals':>5} {'checks':>6} {'LUTs':>6} {'DSPs':>4} "
            f"{'mem bits':>8} {'loss':>7} {'held':>7} {'test':>7} {'time s':>6}  choices")
    print(head)
    print("-" * len(head))
    runs: dict[int, dict[str, list]] = {}
    finals: dict[str, list[float | None]] = {m: [] for m in LOSS_METHODS}
    reach: list[tuple[int | None, int, int | None, int | None]] = []
    floors: list[float] = []
    held_worst: list[str] = []
    for seed in seeds:
        run = run_loss_search(agent if crit else actor, max_loss, out / f"seed{seed}", cost=cost,
                              methods=LOSS_METHODS, seed=seed,
                              iterations=iterations, episodes_per_iter=per_iter, lanes=lanes,
                              states=n_states, episodes=episodes, pool=pool,
                              heldout_episodes=n_held, recheck=recheck, curve_step=step,
                              incumbents=args.incumbents, moves=args.moves,
                              confidence=args.confidence,
                              mapping=args.mapping, heldout=args.heldout, critic=crit,
                              max_critic_error=args.max_critic_error, floor=True,
                              env=env, progress=False)
        runs[seed] = run.curves
        calib = calibration_states(actor, n_states, seed, env=env)
        tester = LossEvaluator(actor, calib, seeds=test_seeds, episodes=len(test_seeds),
                               env=env)
        joint = (JointLossEvaluator(agent, calib, max_loss=run.bound.max_loss,
                                    max_critic_error=run.best["max_critic_error"],
                                    seeds=test_seeds, episodes=len(test_seeds), env=env)
                 if crit else None)
        fresh = (LossEvaluator(actor, calib, seeds=fresh_seeds, episodes=len(fresh_seeds),
                               env=env) if fresh_seeds else None)
        fresh_joint = (JointLossEvaluator(agent, calib, max_loss=run.bound.max_loss,
                                          max_critic_error=run.best["max_critic_error"],
                                          seeds=fresh_seeds, episodes=len(fresh_seeds), env=env)
                       if fresh_seeds and crit else None)
        for method, entry in run.best["methods"].items():
            c = entry["winner"] or entry["least_loss"]
            finals[method].append(None if entry["winner"] is None else c["metric"])
            choices = tuple(LayerChoice(*(int(v) if v.isdigit() else v
                                          for v in x.split(":"))) for x in c["choices"])
            test = actor_test = tester.loss(choices[:n_actor], test_seeds)
            critic_note = ""
            if joint is not None:
                # the joint loss: the larger of the actor's and the critic's scaled error
                c_err = joint.critic_error(choices[n_actor:], test_seeds)
                critic_note = (f"  [held-out actor loss {c['heldout_actor_loss']:.2%}, critic "
                               f"error {c['heldout_critic_error']:.2%}; test actor loss "
                               f"{actor_test:.2%}, critic error {c_err:.2%}]")
                test = max(test, c_err * run.bound.max_loss / run.best["max_critic_error"])
            mark = "" if entry["winner"] else "  (none meets the bound: least loss)"
            print(f"{seed:>4} {method:8} {entry['evaluated']:>5} {entry['heldout_checked']:>6} "
                  f"{c['cost']['luts']:6.0f} {c['cost']['dsps']:4.0f} "
                  f"{c['cost']['mem_bits']:8d} {c['loss']:7.2%} {c['heldout_loss']:7.2%} "
                  f"{test:7.2%} {entry['seconds']:6.1f}  {' '.join(c['choices'])}{mark}"
                  f"{critic_note}")
            if actor_test > run.bound.max_loss:
                print("     " + worst_starts(tester, choices[:n_actor], test_seeds))
            if fresh is not None:
                loss = fresh.loss(choices[:n_actor], fresh_seeds)
                se = fresh.loss_bound(choices[:n_actor], fresh_seeds, 1.0) - loss
                fresh_critic = ""
                if fresh_joint is not None:
                    c_fresh = fresh_joint.critic_error(choices[n_actor:], fresh_seeds)
                    fresh_critic = f"; critic error {c_fresh:.2%}"
                print(f"     fresh: {loss:.2%} on {len(fresh_seeds)} further random episodes "
                      f"(standard error {se:.2%}){fresh_critic}")
        f = run.floor
        floors.append(f.metric)
        print(f"{seed:>4} {'floor':8} {f.checked:>5} {'':>6} {f.cost.luts:6.0f} "
              f"{f.cost.dsps:4.0f} {f.cost.mem_bits:8d} {'':>7} {f.heldout_loss:7.2%} "
              f"{'':>7} {'':>6}  {' '.join(choice_text(c) for c in f.choices)}  "
              f"[{f.undercut} of {f.passing} passing re-checks below it]")
        held_worst.extend(heldout_worst(run, actor, calib, seed))
        haq_final = finals["haq"][-1]
        haq_evals = run.best["methods"]["haq"]["evaluated"]
        reach.append((None if haq_final is None else _reach(run.curves["ppo"], haq_final),
                      haq_evals,
                      None if haq_final is None else _reach(run.curves["haq"], haq_final),
                      None if haq_final is None else _reach(run.curves["descent"], haq_final)))
    ref_cost = run.best["reference"]["cost"]
    print(f"reference uniform fixed 16/16: {ref_cost['luts']:.0f} LUTs, "
          f"{ref_cost['dsps']:.0f} DSPs, {ref_cost['mem_bits']} memory bits")
    if held_worst:
        print("held-out episode each winner loses most return on (start state: return lost, "
              "of the float actor's |total return| over the held-out episodes):")
        for line in held_worst:
            print("  " + line)

    def med_red(a: str, b: str) -> str:
        vals = [pct(x, y) for x, y in zip(finals[a], finals[b], strict=True)
                if x is not None and y is not None]
        if not vals:
            return "n/a"
        return (f"median {statistics.median(vals):+.1f}% (per seed "
                f"{', '.join(f'{v:+.1f}%' for v in vals)})")

    print()
    print(f"PPO's held-out winner, fewer {unit} than: best uniform {med_red('ppo', 'uniform')}; "
          f"HAQ {med_red('ppo', 'haq')}; random {med_red('ppo', 'random')}; descent "
          f"{med_red('ppo', 'descent')}")
    print(f"the descent's held-out winner, fewer {unit} than the best uniform: "
          f"{med_red('descent', 'uniform')}")
    room = [pct(f, u) for f, u in zip(floors, finals["uniform"], strict=True) if u is not None]
    if room:
        print(f"the layer floor (every layer at its cheapest choice that meets the bound with the "
              f"others at fx16/16) has fewer {unit} than the best uniform winner by "
              f"{statistics.median(room):+.1f}% (median; per seed "
              f"{', '.join(f'{v:+.1f}%' for v in room)}); it bounds what a search can find "
              f"only if no configuration meeting the bound puts a layer below its floor (the "
              f"'below it' counts above)")
    for seed, (ppo_at, haq_total, haq_at, descent_at) in zip(seeds, reach, strict=True):
        for method, at in (("PPO", ppo_at), ("the descent", descent_at)):
            if at is None:
                print(f"  seed {seed}: {method} does not reach HAQ's final held-out {unit} "
                      f"(HAQ: {haq_at} of its {haq_total} distinct evaluations)")
            else:
                print(f"  seed {seed}: {method} reaches HAQ's final held-out {unit} after {at} "
                      f"distinct evaluations ({at / haq_total:.2f}x HAQ's {haq_total}; HAQ "
                      f"first reached it after {haq_at})")
    png = out / "time_to_quality.png"
    plot_curves(png, runs, f"{name} actor {arch}, {model_text}: cheapest {unit} "
                           f"within {max_loss} loss, held out", f"held-out winner's {unit}")
    print(f"wrote {png} (and per seed {out}/seed*/best.json, search.csv)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny actor and short searches")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each search for the median time (default 3)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of the Pendulum agent (default 10000)")
    parser.add_argument("--part", choices=("all", "budget", "loss"), default="all",
                        help="budgeted searches (parts 1 and 2), the loss-bounded search "
                             "(part 3), or all")
    parser.add_argument("--loss-hidden", type=int, nargs="+", default=[400, 300],
                        help="hidden sizes of part 3's actor (default 400 300, FIXAR's)")
    parser.add_argument("--loss-steps", type=int, default=None,
                        help="training steps of part 3's actor (default 15000 on Pendulum, "
                             "30000 on MountainCarContinuous)")
    parser.add_argument("--max-loss", default="2%", help="part 3's loss bound (default 2%%)")
    parser.add_argument("--env", choices=tuple(ENV_NAMES), default="pendulum",
                        help="part 3's environment (default pendulum)")
    parser.add_argument("--critic", action="store_true",
                        help="part 3 searches the actor and the critic together")
    parser.add_argument("--max-critic-error", default="2%",
                        help="with --critic, the critic's value-error bound (default 2%%)")
    parser.add_argument("--heldout-episodes", type=int, default=60,
                        help="part 3's held-out episodes, and as many test episodes "
                             "(default 60)")
    parser.add_argument("--confidence", type=float, default=2.0,
                        help="part 3: the held-out check uses the loss plus this many standard "
                             "errors (default 2)")
    parser.add_argument("--moves", choices=MOVES, default="local",
                        help="part 3: PPO's actions, moves from the incumbent or choices on "
                             "the grid (default local)")
    parser.add_argument("--incumbents", type=int, default=1,
                        help="part 3: PPO's restarts from the best uniform configurations "
                             "(default 1)")
    parser.add_argument("--fresh-episodes", type=int, default=0, metavar="N",
                        help="part 3: also each winner's loss on N more random episodes "
                             "(seeds 800000..; default 0: none)")
    parser.add_argument("--heldout", choices=("lattice", "seeds"), default="lattice",
                        help="part 3's held-out episodes: starts spread over Pendulum's "
                             "initial states, or seeded random draws (default lattice)")
    parser.add_argument("--mapping", choices=("pipelined", "shared", "engine"),
                        default="pipelined",
                        help="part 3's cost model; engine: memory bits on the training "
                             "engine's array (default pipelined)")
    parser.add_argument("--out", default="runs/bench_autoq",
                        help="part 3's output directory (default runs/bench_autoq)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    start = time.perf_counter()
    if args.part in ("all", "budget"):
        pendulum(args)
        fixar_size(args)
    if args.part in ("all", "loss"):
        loss_part(args)
    print()
    print(f"total {time.perf_counter() - start:.1f} s")
    print("reproduce: python benchmarks/bench_autoq.py")
    print("reproduce: python benchmarks/bench_autoq.py --quick --repeat 1")
    print("reproduce part 3 only: python benchmarks/bench_autoq.py --part loss")
    print("this run: python benchmarks/bench_autoq.py " + " ".join(sys.argv[1:] if argv is None
                                                                     else argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
