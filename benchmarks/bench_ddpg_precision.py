"""Benchmark: DDPG on Pendulum in float32, fixed point, FIXAR QAT and 16 bits from the start.

For every precision and seed, trains a DDPG agent (:func:`sw_model.rl.ddpg.train`) and evaluates the
final deterministic policy on 10 episodes (:func:`sw_model.rl.ddpg.evaluate`, the same initial
states for every agent). Prints, per precision, the mean final return over seeds with its
min/max and standard deviation, the mean return of the last 10 training episodes, and the
training time. Runs are spread over processes (``--jobs``, default the CPU count).

Precisions (see :class:`sw_model.rl.ddpg.DDPGConfig`):

``float32``   NumPy float32 (the reference)
``fixed``     every operation in integer fixed point, 32-bit weights, gradients, activations
``qat``       FIXAR QAT: 32-bit activations for ``qat_delay`` training steps, then 16 bits
``fixed16``   16-bit activations (``FixedFormat(16, 10)``) from the first step

Reproduce with::

    python benchmarks/bench_ddpg_precision.py           # 3 seeds x 4 precisions, 25-40 min
    python benchmarks/bench_ddpg_precision.py --quick    # a smoke run, under a minute
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from sw_model.rl.ddpg import DDPGConfig, evaluate, train

PRECISIONS = ("float32", "fixed", "qat", "fixed16")


def run_one(job: tuple[str, int, dict, int, int]) -> dict:
    """Train one agent and evaluate it; returns the figures of the run."""
    precision, seed, overrides, steps, eval_episodes = job
    config = DDPGConfig(precision=precision, seed=seed, **overrides)
    start = time.perf_counter()
    result = train(config, "pendulum", steps)
    seconds = time.perf_counter() - start
    final = float(np.mean(evaluate(result.agent, "pendulum", eval_episodes)))
    last = float(np.mean(result.episode_returns[-10:]))
    formats = ""
    if precision == "qat":
        fmts = result.agent.formats
        formats = " ".join(f"{k}={f.width}.{f.frac}" for k, f in sorted(fmts.items()))
    return {"precision": precision, "seed": seed, "final": final, "last10": last,
            "seconds": seconds, "train_steps": result.train_steps, "formats": formats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny networks and few steps")
    parser.add_argument("--repeat", type=int, default=1,
                        help="repetitions of the whole measurement (results are identical: "
                             "runs are seeded)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per precision (default 3)")
    parser.add_argument("--steps", type=int, default=None,
                        help="environment steps per run (default 15000)")
    parser.add_argument("--hidden", type=int, nargs="+", default=None,
                        help="hidden sizes (default 64 64)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: CPU count)")
    args = parser.parse_args(argv)
    if args.quick:
        seeds, steps = args.seeds or 1, args.steps or 800
        overrides = {"hidden": tuple(args.hidden or (16, 16)), "batch_size": 32,
                     "warmup_steps": 500, "qat_delay": 150, "gamma": 0.98}
        eval_episodes = 2
    else:
        seeds, steps = args.seeds or 3, args.steps or 15000
        overrides = {"hidden": tuple(args.hidden or (64, 64)), "batch_size": 64,
                     "warmup_steps": 1000, "qat_delay": 5000, "gamma": 0.98}
        eval_episodes = 10
    jobs = [(p, s, overrides, steps, eval_episodes) for p in PRECISIONS for s in range(seeds)]
    # the slow fixed-point runs first, so that the pool ends together
    jobs.sort(key=lambda j: j[0].startswith("float"))
    print(f"Pendulum DDPG, hidden {'-'.join(map(str, overrides['hidden']))}, batch "
          f"{overrides['batch_size']}, {steps} environment steps ({overrides['warmup_steps']} "
          f"warm-up), gamma {overrides['gamma']}, qat_delay {overrides['qat_delay']}, "
          f"{seeds} seed(s), final return = mean of {eval_episodes} noise-free episodes")
    for rep in range(max(1, args.repeat)):
        start = time.perf_counter()
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(run_one, jobs))
        wall = time.perf_counter() - start
        print()
        print(f"{'precision':>10} {'final mean':>11} {'min':>8} {'max':>8} {'std':>7} "
              f"{'last-10 train':>14} {'s/run':>7}")
        for p in PRECISIONS:
            rs = [r for r in results if r["precision"] == p]
            final = np.array([r["final"] for r in rs])
            last = np.array([r["last10"] for r in rs])
            secs = np.mean([r["seconds"] for r in rs])
            print(f"{p:>10} {final.mean():>11.1f} {final.min():>8.1f} {final.max():>8.1f} "
                  f"{final.std():>7.1f} {last.mean():>14.1f} {secs:>7.1f}")
        print()
        for r in sorted(results, key=lambda r: (PRECISIONS.index(r["precision"]), r["seed"])):
            print(f"  {r['precision']:>8} seed {r['seed']}: final {r['final']:8.1f}, last-10 "
                  f"{r['last10']:8.1f}, {r['train_steps']} training steps, "
                  f"{r['seconds']:.0f} s")
            if r["formats"]:
                print(f"           QAT formats: {r['formats']}")
        print(f"\nrepeat {rep + 1}: {wall:.0f} s wall clock on {args.jobs} processes")
    extra = " --quick" if args.quick else ""
    print(f"reproduce: python benchmarks/bench_ddpg_precision.py{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
