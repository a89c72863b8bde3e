"""Benchmark: automated mixed-precision search (PPO vs HAQ-style DDPG vs uniform widths).

Part 1, Pendulum: a float64 DDPG actor is trained (seeded), and its uniform fixed-point
16-bit configuration (w16/a16 in every layer) is the reference. For budgets at a fraction of
the reference's cost, :func:`sw_model.autoq.ppo_search` and
:func:`sw_model.autoq.haq_ddpg_search` (the same number of evaluated configurations) and
:func:`sw_model.autoq.uniform_baseline` (every uniform configuration) search with the proxy
reward; each best fitting configuration is then run on Pendulum (the same seeded episodes for
all). Printed per budget and method: cost (LUTs, DSPs, weight bits), proxy error, real return,
return loss against the float actor and against uniform 16-bit, cost reduction against uniform
16-bit and the search's wall time (median of ``--repeat`` runs with the same seed). Then, per
method, the cheapest evaluated configuration (by LUTs, then DSPs, then weight bits) whose
return is within 2% of uniform 16-bit's, with its cost reduction.

Part 2, FIXAR size (actor 17-400-300-6): no trained weights of that size exist in the
repository, so the weights are synthetic (Student-t with 4 degrees of freedom, scaled to a
standard deviation of ``1/sqrt(fan_in)``; biases ``N(0, 0.1**2)``) and the states standard
normal; proxy reward only. PPO vs HAQ: cost and proxy error at the same budget, and time.

The cost model (:mod:`sw_model.cost`) has one engine of 16 lanes per distinct kind, so LUTs
and DSPs do not depend on the layer sizes, only on the kinds used; weight bits do.

Reproduce with::

    python benchmarks/bench_autoq.py                  # full (a few minutes)
    python benchmarks/bench_autoq.py --quick --repeat 1
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fixar_hw.search import REFERENCE, calibration_states, choice_text, float_return, train_actor
from sw_model.autoq import (
    Budget,
    QuantEnv,
    SearchResult,
    haq_ddpg_search,
    ppo_search,
    return_quality,
    uniform_baseline,
)
from sw_model.cost import Cost, CostModel


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
                seed: int) -> dict[str, tuple[SearchResult, float]]:
    n = iterations * per_iter
    return {
        "ppo": timed(lambda env: ppo_search(env, iterations=iterations,
                                            episodes_per_iter=per_iter, seed=seed),
                     make_env, repeat),
        "haq": timed(lambda env: haq_ddpg_search(env, episodes=n, warmup=min(20, n // 4),
                                                 seed=seed), make_env, repeat),
        "uniform": timed(uniform_baseline, make_env, repeat),
    }


def pendulum(args: argparse.Namespace, model: CostModel) -> None:
    quick = args.quick
    hidden = (16, 16) if quick else (64, 64)
    steps = args.steps or (1500 if quick else 10000)
    n_states, episodes = (64, 2) if quick else (256, 5)
    iterations, per_iter = (4, 8) if quick else (30, 32)
    fracs = (0.7,) if quick else (0.5, 0.7)
    seed = 0
    t0 = time.perf_counter()
    weights = train_actor(steps, seed, hidden=hidden)
    t_train = time.perf_counter() - t0
    states = calibration_states(weights, n_states, seed)
    f_ret = float_return(weights, episodes=episodes, seed=seed)
    returns: dict[tuple, float] = {}

    def ret(choices) -> float:
        key = tuple(choices)
        if key not in returns:
            returns[key] = return_quality(weights, key, states, episodes=episodes, seed=seed)
        return returns[key]

    probe = QuantEnv.from_actor(weights, states, cost_model=model, budget=Budget(luts=1.0),
                                bonus=0.0)
    ref_choices = (REFERENCE,) * probe.n_layers
    ref_cost = probe.cost(ref_choices)
    ref_q = probe.evaluate(ref_choices)
    ref_ret = ret(ref_choices)
    arch = "-".join(str(s.fan_in) for s in probe.shapes) + f"-{probe.shapes[-1].fan_out}"
    print(f"Part 1: Pendulum, float64 DDPG actor {arch}, {steps} training steps (seed {seed}, "
          f"{t_train:.1f} s); {model.lanes} lanes per engine")
    print(f"proxy: {n_states} calibration states; returns: mean of {episodes} seeded episodes; "
          f"searches: PPO {iterations} x {per_iter} episodes, HAQ {iterations * per_iter} "
          f"episodes, uniform {len(probe.actions)} configurations; times: median of "
          f"{args.repeat}")
    print(f"float actor return {f_ret:.1f}; uniform fixed 16/16: {ref_cost.luts:.0f} LUTs, "
          f"{ref_cost.dsps:.0f} DSPs, {ref_cost.mem_bits} weight bits, {ref_cost.cycles} "
          f"cycles, proxy MSE {-ref_q:.2g}, return {ref_ret:.1f} "
          f"({loss(ref_ret, f_ret):+.1f}% vs float)")
    print()
    head = (f"{'budget':24} {'method':7} {'LUTs':>6} {'DSPs':>4} {'mem bits':>8} "
            f"{'proxy MSE':>9} {'return':>8} {'loss/fl':>8} {'loss/16':>8} {'LUT red':>7} "
            f"{'DSP red':>7} {'mem red':>7} {'time s':>6}  choices")
    print(head)
    print("-" * len(head))
    cheap_rows = []
    for label, budget in budgets(ref_cost, fracs):
        def make_env(budget: Budget = budget) -> QuantEnv:
            return QuantEnv.from_actor(weights, states, cost_model=model, budget=budget,
                                       bonus=0.0)

        results = run_methods(make_env, iterations, per_iter, args.repeat, seed)
        for method, (res, secs) in results.items():
            name = "uniform*" if method == "uniform" else method
            if res.best_choices is None:
                print(f"{label:24} {name:7} nothing fitting among {len(res.history)} "
                      f"evaluated ({secs:.2f} s)")
            else:
                c, r = res.best_cost, ret(res.best_choices)
                print(f"{label:24} {name:7} {c.luts:6.0f} {c.dsps:4.0f} {c.mem_bits:8d} "
                      f"{-res.best_quality:9.2g} {r:8.1f} {loss(r, f_ret):+7.1f}% "
                      f"{loss(r, ref_ret):+7.1f}% {pct(c.luts, ref_cost.luts):6.1f}% "
                      f"{pct(c.dsps, ref_cost.dsps):6.1f}% "
                      f"{pct(c.mem_bits, ref_cost.mem_bits):6.1f}% {secs:6.2f}  "
                      f"{short(res.best_choices)}")
            # the cheapest evaluated configuration within 2% of uniform 16-bit's return
            unique = {ep.choices: ep for ep in res.history}.values()
            order = sorted(unique, key=lambda e: (e.cost.luts, e.cost.dsps, e.cost.mem_bits))
            tried = 0
            found = None
            for ep in order:
                tried += 1
                if loss(ret(ep.choices), ref_ret) <= 2.0:
                    found = ep
                    break
            cheap_rows.append((label, name, found, tried, len(order)))
    print("(uniform*: the best uniform configuration that fits the same budget)")
    print()
    print("Cheapest evaluated configuration (by LUTs, then DSPs, then weight bits) whose return "
          "is within 2% of uniform 16-bit's")
    head2 = (f"{'search (budget)':24} {'method':7} {'LUTs':>6} {'DSPs':>4} {'mem bits':>8} "
             f"{'return':>8} {'loss/16':>8} {'LUT red':>7} {'DSP red':>7} {'mem red':>7} "
             f"{'checked':>9}  choices")
    print(head2)
    print("-" * len(head2))
    for label, name, ep, tried, total in cheap_rows:
        if ep is None:
            print(f"{label:24} {name:7} none of {total} evaluated configurations")
            continue
        c, r = ep.cost, ret(ep.choices)
        print(f"{label:24} {name:7} {c.luts:6.0f} {c.dsps:4.0f} {c.mem_bits:8d} {r:8.1f} "
              f"{loss(r, ref_ret):+7.1f}% {pct(c.luts, ref_cost.luts):6.1f}% "
              f"{pct(c.dsps, ref_cost.dsps):6.1f}% {pct(c.mem_bits, ref_cost.mem_bits):6.1f}% "
              f"{f'{tried}/{total}':>9}  {short(ep.choices)}")
    print("(checked: configurations whose return was measured, cheapest first, of the unique "
          "ones the method evaluated; the budget only steers the search, these need not fit it)")


def synthetic_actor(sizes, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = 4.0
    out = {}
    for k, (i, o) in enumerate(itertools.pairwise(sizes), 1):
        t = rng.standard_t(df, (o, i)) * np.sqrt((df - 2.0) / df)
        out[f"l{k}.w"] = t / np.sqrt(i)
        out[f"l{k}.b"] = 0.1 * rng.standard_normal(o)
    return out


def fixar_size(args: argparse.Namespace, model: CostModel) -> None:
    quick = args.quick
    sizes = (17, 400, 300, 6)
    n_states = 64 if quick else 256
    iterations, per_iter = (3, 8) if quick else (20, 32)
    fracs = (0.7,) if quick else (0.5, 0.7)
    weights = synthetic_actor(sizes, 0)
    states = np.random.default_rng(1).standard_normal((n_states, sizes[0]))
    probe = QuantEnv.from_actor(weights, states, cost_model=model, budget=Budget(luts=1.0))
    ref_choices = (REFERENCE,) * probe.n_layers
    ref_cost = probe.cost(ref_choices)
    print()
    print(f"Part 2: FIXAR-size actor {'-'.join(map(str, sizes))}, synthetic weights (Student-t, "
          f"4 dof, std 1/sqrt(fan_in)), {n_states} standard-normal states, proxy reward only; "
          f"PPO {iterations} x {per_iter} episodes vs HAQ {iterations * per_iter} episodes; "
          f"times: median of {args.repeat}")
    print(f"uniform fixed 16/16: {ref_cost.luts:.0f} LUTs, {ref_cost.dsps:.0f} DSPs, "
          f"{ref_cost.mem_bits} weight bits, proxy MSE {-probe.evaluate(ref_choices):.2g}")
    head = (f"{'budget':24} {'method':7} {'LUTs':>6} {'DSPs':>4} {'mem bits':>8} "
            f"{'proxy MSE':>9} {'LUT red':>7} {'mem red':>7} {'fitting':>9} {'time s':>6}  "
            f"choices")
    print(head)
    print("-" * len(head))
    for label, budget in budgets(ref_cost, fracs):
        def make_env(budget: Budget = budget) -> QuantEnv:
            return QuantEnv.from_actor(weights, states, cost_model=model, budget=budget,
                                       bonus=0.0)

        results = run_methods(make_env, iterations, per_iter, args.repeat, 0)
        for method, (res, secs) in results.items():
            name = "uniform*" if method == "uniform" else method
            n_fit = sum(ep.fits for ep in res.history)
            fit = f"{n_fit}/{len(res.history)}"
            if res.best_choices is None:
                print(f"{label:24} {name:7} nothing fitting {fit:>47} {secs:6.2f}")
                continue
            c = res.best_cost
            print(f"{label:24} {name:7} {c.luts:6.0f} {c.dsps:4.0f} {c.mem_bits:8d} "
                  f"{-res.best_quality:9.2g} {pct(c.luts, ref_cost.luts):6.1f}% "
                  f"{pct(c.mem_bits, ref_cost.mem_bits):6.1f}% {fit:>9} {secs:6.2f}  "
                  f"{short(res.best_choices)}")
    print("(fitting: evaluated configurations within the budget; HAQ enforces the budget on "
          "each one, PPO only learns it from the reward)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny actor and short searches")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each search for the median time (default 3)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of the Pendulum actor (default 10000)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    start = time.perf_counter()
    model = CostModel.load(lanes=16)
    pendulum(args, model)
    fixar_size(args, model)
    print()
    print(f"total {time.perf_counter() - start:.1f} s")
    print("reproduce: python benchmarks/bench_autoq.py")
    print("reproduce: python benchmarks/bench_autoq.py --quick --repeat 1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
