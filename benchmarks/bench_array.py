"""Benchmark: the PE array at RTL speed (Verilator) on FIXAR's layer shapes.

For FIXAR's networks (actor 17-400-300-6, critic 23-400-300-1; each layer a weight matrix
``M x N``: 400x17, 300x400, 6x300 and 400x23, 300x400, 1x300) on a FIXAR-like build
(``AAPConfig(size=16, cores=2)``, the default 32-bit formats, ``max_m = max_n = 512``,
``max_batch = 256``), prints for every layer, op (forward, backward, wgrad) and parallelism
("batch", "layer") at batch 64, and for the forward pass of one state (batch 1):

* the cycles measured on the exported Verilog (Verilator) and those of
  :class:`sw_model.arch.aap.CycleModel` (they must be equal);
* the MAC utilisation ``batch*M*N / (cores * size**2 * cycles)``;
* the simulator speed (simulated cycles per wall-clock second, median of ``--repeat`` runs);

then the utilisation of each network and op summed over its layers, each layer in its better
mode, and the Verilog export and Verilator build times. Every result is compared with the golden
model (:func:`fixar_hw.sim.array.expected`) on seeded random operands; the script prints
"all results bit-exact" only if all are, and exits non-zero on any mismatch or cycle difference.

``--quick`` runs a small build (4 x 4 grid, 2 cores, 16-bit formats) on the networks scaled down
by 10 (17-40-30-6, 23-40-30-1) at batch 8, for CI.

Reproduce with::

    python benchmarks/bench_array.py                 # add --cores 2 4 for a 4-core build too
    python benchmarks/bench_array.py --quick --repeat 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

from fixar_hw.flow.export import verilator_available
from fixar_hw.sim.array import ArrayJob, expected
from fixar_hw.sim.array_verilator import ArrayVerilator, build
from sw_model.arch.aap import OPS, PARALLELISM, AAPConfig
from sw_model.numerics.fixed import FixedFormat

FULL_NETWORKS = {
    "actor": [(400, 17, "relu"), (300, 400, "relu"), (6, 300, "tanh")],
    "critic": [(400, 23, "relu"), (300, 400, "relu"), (1, 300, "identity")],
}
QUICK_NETWORKS = {
    "actor": [(40, 17, "relu"), (30, 40, "relu"), (6, 30, "tanh")],
    "critic": [(40, 23, "relu"), (30, 40, "relu"), (1, 30, "identity")],
}
Q16 = FixedFormat(16, 12)


def full_config(cores: int) -> AAPConfig:
    return AAPConfig(size=16, cores=cores, max_m=512, max_n=512, max_batch=256, addr_width=16)


def quick_config(cores: int) -> AAPConfig:
    return AAPConfig(size=4, cores=cores, w_fmt=Q16, a_fmt=Q16, d_fmt=Q16,
                     g_fmt=FixedFormat(16, 14), grad_fmt=Q16, max_m=64, max_n=64, max_batch=16,
                     addr_width=12, tanh_index_bits=8)


def _codes(rng: np.random.Generator, fmt: FixedFormat, scale: float, *shape: int) -> np.ndarray:
    """Codes of normal values with standard deviation ``scale`` (saturated to the format)."""
    q = np.round(rng.normal(0.0, scale, shape) * 2.0**fmt.frac)
    return np.clip(q, fmt.min_int, fmt.max_int).astype(np.int64)


@dataclass(frozen=True)
class Case:
    net: str
    layer: int
    job: ArrayJob


def make_cases(config: AAPConfig, networks: dict, batch: int, seed: int) -> list[Case]:
    """Every layer x op x parallelism at ``batch``, then the forward pass of one state."""
    rng = np.random.default_rng(seed)
    c = config
    cases = []
    for net, layers in networks.items():
        for index, (m, n, kind) in enumerate(layers):
            # backward differentiates the activation feeding the layer
            kind_in = "identity" if index == 0 else layers[index - 1][2]
            w = _codes(rng, c.w_fmt, 1 / np.sqrt(n), m, n)
            bias = _codes(rng, c.w_fmt, 0.1, m)
            for op in OPS:
                for par in PARALLELISM:
                    x = _codes(rng, c.a_fmt, 1.0, batch, n)
                    d = _codes(rng, c.d_fmt, 0.05, batch, m)
                    if op == "forward":
                        job = ArrayJob(op, m, n, batch, kind, par, w=w, b=bias, x=x)
                    elif op == "backward":
                        job = ArrayJob(op, m, n, batch, kind_in, par, w=w, d=d, y_prev=x)
                    else:
                        job = ArrayJob(op, m, n, batch, "identity", par, d=d, x=x)
                    cases.append(Case(net, index, job))
            for par in PARALLELISM:
                x = _codes(rng, c.a_fmt, 1.0, 1, n)
                cases.append(Case(net, index, ArrayJob("forward", m, n, 1, kind, par, w=w,
                                                       b=bias, x=x)))
    return cases


def run_cases(model: ArrayVerilator, cases: list[Case], repeat: int
              ) -> tuple[list[int], list[float], int]:
    """Cycles and median cycles/s per case, and the number of results that differ from golden."""
    jobs = [case.job for case in cases]
    seconds: list[list[float]] = [[] for _ in cases]
    cycles: list[int] | None = None
    mismatches = 0
    for _ in range(repeat):
        runs = model.run(jobs)
        got = [run.cycles for run in runs]
        if cycles is not None and got != cycles:
            raise RuntimeError("cycle counts differ between repeated runs")
        cycles = got
        for i, (case, run) in enumerate(zip(cases, runs, strict=True)):
            seconds[i].append(run.edges / max(run.seconds, 1e-12))
            want = expected(model.config, case.job)
            if run.result.shape != want.shape or not (run.result == want).all():
                mismatches += 1
    assert cycles is not None
    return cycles, [statistics.median(s) for s in seconds], mismatches


def utilisation(config: AAPConfig, job: ArrayJob, cycles: int) -> float:
    return job.batch * job.m * job.n / (config.cores * config.size**2 * cycles)


def report(config: AAPConfig, networks: dict, cases: list[Case], cycles: list[int],
           speeds: list[float], batch: int) -> tuple[int, list[str]]:
    """Print the tables; return the number of cycle mismatches and the summary lines."""
    bad_cycles = 0
    print(f"{'net':7} {'layer':>8} {'op':9} {'batch':>5} {'mode':6} {'RTL cycles':>11} "
          f"{'model':>9} {'util %':>7} {'Mcyc/s':>7}")
    for case, cyc, speed in zip(cases, cycles, speeds, strict=True):
        j = case.job
        want = j.cycles(config)
        bad_cycles += cyc != want
        flag = "" if cyc == want else "  <-- differs"
        print(f"{case.net:7} {f'{j.m}x{j.n}':>8} {j.op:9} {j.batch:>5} {j.parallelism:6} "
              f"{cyc:>11,} {want:>9,} {100 * utilisation(config, j, cyc):>7.2f} "
              f"{speed / 1e6:>7.3f}{flag}")
    print()
    by_key = {(c.net, c.layer, c.job.op, c.job.batch, c.job.parallelism): cyc
              for c, cyc in zip(cases, cycles, strict=True)}
    capacity = config.cores * config.size**2
    print("per network and op, each layer in its better mode (utilisation = useful MACs / "
          "(cores * size^2 * cycles)):")
    print(f"{'net':7} {'op':9} {'batch':>5} {'cycles':>9} {'util %':>7}  modes per layer")
    summary = []
    for net, layers in networks.items():
        for op, b in [(op, batch) for op in OPS] + [("forward", 1)]:
            total_cycles, total_macs, modes = 0, 0, []
            for index, (m, n, _) in enumerate(layers):
                pick = min(PARALLELISM, key=lambda p, i=index:
                           (by_key[(net, i, op, b, p)], p != "batch"))
                modes.append(pick)
                total_cycles += by_key[(net, index, op, b, pick)]
                total_macs += b * m * n
            util = 100 * total_macs / (capacity * total_cycles)
            print(f"{net:7} {op:9} {b:>5} {total_cycles:>9,} {util:>7.2f}  {'/'.join(modes)}")
            summary.append(f"{net} {op} batch {b}: {util:.2f}%")
    print()
    # the large layers' target
    large = max(m * n for layers in networks.values() for m, n, _ in layers)
    print(f"largest layers ({large} weights), better mode, batch {batch}:")
    for net, layers in networks.items():
        for index, (m, n, _) in enumerate(layers):
            if m * n != large:
                continue
            for op in OPS:
                best = min(by_key[(net, index, op, batch, p)] for p in PARALLELISM)
                util = 100 * batch * m * n / (capacity * best)
                mark = "meets" if util >= 95 else "misses"
                print(f"  {net:6} {m}x{n} {op:9} {util:6.2f}%  ({mark} the 95% target)")
    print()
    return bad_cycles, summary


def bench(cores: int, quick: bool, repeat: int) -> tuple[int, int]:
    """Run one build; return (results differing from golden, cycle counts differing)."""
    config = quick_config(cores) if quick else full_config(cores)
    networks = QUICK_NETWORKS if quick else FULL_NETWORKS
    batch = 8 if quick else 64
    start = time.perf_counter()
    model = build(config, cflags=("-O0",) if quick else ("-O2",))
    wall = time.perf_counter() - start
    export = "cached" if model.verilog_cached else f"{model.export_seconds:.1f} s"
    print(f"build: size {config.size}, cores {config.cores}, formats w {config.w_fmt} / "
          f"a {config.a_fmt} / d {config.d_fmt}; Verilog export {export}, Verilator build "
          f"{model.build_seconds:.1f} s (cached builds take ~0 s); {wall:.1f} s in all")
    cases = make_cases(config, networks, batch, seed=cores)
    cycles, speeds, mismatches = run_cases(model, cases, repeat)
    total = sum(cycles)
    print(f"{len(cases)} jobs, {total:,} cycles; simulator speed median "
          f"{statistics.median(speeds) / 1e6:.3f} Mcycles/s (median of {repeat} runs per job)")
    print()
    bad_cycles, _ = report(config, networks, cases, cycles, speeds, batch)
    if mismatches:
        print(f"{mismatches} results differ from the golden model")
    if bad_cycles:
        print(f"{bad_cycles} cycle counts differ from the CycleModel")
    return mismatches, bad_cycles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per job (median)")
    parser.add_argument("--quick", action="store_true", help="small build and shapes (CI)")
    parser.add_argument("--cores", type=int, nargs="+", default=[2], help="builds to run")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat!r}")
    if not verilator_available():
        print("verilator-cli is not installed: nothing to measure")
        print(f"reproduce: python benchmarks/bench_array.py{' --quick' if args.quick else ''}")
        return 0
    mismatches = bad_cycles = 0
    for cores in args.cores:
        m, c = bench(cores, args.quick, args.repeat)
        mismatches, bad_cycles = mismatches + m, bad_cycles + c
    if not mismatches:
        print("all results bit-exact")
    if not bad_cycles:
        print("all RTL cycle counts equal the CycleModel")
    cmd = "python benchmarks/bench_array.py"
    if args.quick:
        cmd += " --quick"
    if args.cores != [2]:
        cmd += " --cores " + " ".join(map(str, args.cores))
    if args.repeat != 3:
        cmd += f" --repeat {args.repeat}"
    print(f"reproduce: {cmd}")
    return 0 if not mismatches and not bad_cycles else 1


if __name__ == "__main__":
    sys.exit(main())
