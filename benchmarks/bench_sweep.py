"""Benchmark: a design-space sweep (``fixar-hw sweep``), cold and from its cache.

Runs :func:`fixar_hw.flow.sweep.run_sweep` on Pendulum's 3-16-16-1 agent at batch 8, precision
``fixed``, on the ULX3S-85F, for PE grids 2 and 4 with one core, in both format sets
(``fixar32`` and ``narrow16``) (``--quick``: the smallest
point, 3-5-1 at batch 4 on a 2x2 grid for the ULX3S-45F) on a local process pool, then runs
it again ``--repeat`` times, and prints:

* the sweep's table (LUT, FF, DSP, BRAM, fit, clock, cycles per training step, projected
  training samples and actions per second, the Pareto front of LUTs against samples/s);
* the wall time of the first run (synthesis with pyosys, a few minutes of one core per
  point, unless the build cache already has them) and of the cached runs (the best of them).

``--cold`` points ``XDG_CACHE_HOME`` at a scratch directory, so that the first run
synthesizes every point whatever the user's caches hold.

Reproduce with::

    python benchmarks/bench_sweep.py
    python benchmarks/bench_sweep.py --quick --repeat 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from fixar_hw.flow import sweep


def points(quick: bool) -> list[sweep.SweepPoint]:
    if quick:
        return sweep.grid([2], [1], ["fixed"], ["ulx3s-45f"], hidden=(5,), batch=4).points
    return sweep.grid([2, 4], [1], ["fixed"], ["ulx3s-85f"],
                      formats=["fixar32", "narrow16"]).points


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smallest point only")
    parser.add_argument("--repeat", type=int, default=3, help="cached runs (default 3)")
    parser.add_argument("--workers", type=int, help="processes (default: CPU count)")
    parser.add_argument("--cold", action="store_true", help="start from empty caches")
    args = parser.parse_args()
    if args.repeat < 1 or (args.workers is not None and args.workers < 1):
        parser.error("--repeat and --workers must be positive")

    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        if args.cold:
            os.environ["XDG_CACHE_HOME"] = tmp
        todo = points(args.quick)
        start = time.perf_counter()
        rows = sweep.run_sweep(todo, workers=args.workers)
        first = time.perf_counter() - start
        cached = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            again = sweep.run_sweep(todo, workers=args.workers)
            cached.append(time.perf_counter() - start)
            assert all(r.get("cached") for r in again if not r.get("error"))
    print(sweep.format_table(rows))
    counts = sweep.summary(rows)
    print(f"{counts['total']} points, {counts['errors']} failed; first run {first:.1f} s "
          f"({counts['cached']} rows from the sweep cache), cached run {min(cached):.3f} s "
          f"(best of {len(cached)})")
    for r in rows:
        if r.get("error"):
            print(f"{r['board']} S{r['size']} C{r['cores']}: {r['error']}", file=sys.stderr)
    extra = "".join((" --quick" * args.quick, " --cold" * args.cold))
    print(f"reproduce: python benchmarks/bench_sweep.py{extra} --repeat {args.repeat}")
    return 1 if counts["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
