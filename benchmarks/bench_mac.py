"""Benchmark: FixedMAC resources and golden-model dot-product throughput.

Prints
  1. FixedMAC cell counts after pyosys synthesis (ECP5 ``synth_ecp5``, iCE40 ``synth_ice40 -dsp``)
     for 8-, 16- and 32-bit operands, ``max_terms=1024``, half-even rounding, saturation;
  2. ``sw_model.numerics.fixed.dot`` (a batch of long vectors) and
     ``sw_model.numerics.fixed.matmul`` (a layer:
     batch x 400 -> 300) throughput in multiply-accumulates per second at 16x16 and 32x32 bits,
     the median of ``--repeat`` runs, and the int64-overflow-free range used.

Reproduce with::

    python benchmarks/bench_mac.py            # add --quick for a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from fixar_hw.arith.mac import FixedMAC
from fixar_hw.flow.synth import format_table, resources
from sw_model.numerics.fixed import FixedFormat, dot, matmul

FORMATS = {
    8: (FixedFormat(8, 7), FixedFormat(8, 7), FixedFormat(8, 7)),
    16: (FixedFormat(16, 12), FixedFormat(16, 12), FixedFormat(16, 12)),
    32: (FixedFormat(32, 24), FixedFormat(32, 24), FixedFormat(32, 24)),
}


def bench_resources(families: list[str]) -> None:
    rows = []
    for bits, (a, b, out) in FORMATS.items():
        for family in families:
            mac = FixedMAC(a, b, out, max_terms=1024, rounding="half_even", overflow="saturate")
            start = time.perf_counter()
            res = resources(mac, family)
            rows.append((f"mac{bits} (acc {mac.acc_shape.width} b)", res))
            print(f"  synthesized mac{bits} for {family} in {time.perf_counter() - start:.1f} s",
                  file=sys.stderr, flush=True)
    print("FixedMAC resources (max_terms=1024, half_even, saturate):")
    print(format_table(rows))
    print()


def _median_rate(fn, macs: int, repeat: int) -> tuple[float, float]:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    med = statistics.median(times)
    return macs / med, med


def bench_golden(repeat: int, quick: bool) -> None:
    rng = np.random.default_rng(0)
    batch, n_in, n_out = (64, 400, 300) if not quick else (16, 100, 50)
    vec_batch, vec_terms = (64, 4096) if not quick else (8, 512)
    print(f"golden model throughput (median of {repeat} runs, one process, this machine):")
    print(f"{'op':34} {'bits':>6} {'MACs':>12} {'seconds':>9} {'MAC/s':>12}")
    for bits in (16, 32):
        fmt = FormatsFor(bits)
        a = rng.integers(fmt.min_int, fmt.max_int, (vec_batch, vec_terms), endpoint=True)
        b = rng.integers(fmt.min_int, fmt.max_int, (vec_batch, vec_terms), endpoint=True)
        macs = vec_batch * vec_terms
        rate, sec = _median_rate(lambda a=a, b=b, f=fmt: dot(a, b, f, f, f), macs, repeat)
        print(f"{f'dot {vec_batch} x {vec_terms} terms':34} {f'{bits}x{bits}':>6} {macs:>12,} "
              f"{sec:>9.4f} {rate:>12.3e}")
        x = rng.integers(fmt.min_int, fmt.max_int, (batch, n_in), endpoint=True)
        w = rng.integers(fmt.min_int, fmt.max_int, (n_in, n_out), endpoint=True)
        macs = batch * n_in * n_out
        rate, sec = _median_rate(lambda x=x, w=w, f=fmt: matmul(x, w, f, f, f), macs, repeat)
        print(f"{f'matmul {batch}x{n_in} @ {n_in}x{n_out}':34} {f'{bits}x{bits}':>6} "
              f"{macs:>12,} {sec:>9.4f} {rate:>12.3e}")
    print()


def FormatsFor(bits: int) -> FixedFormat:
    return FORMATS[bits][0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="small sizes, ECP5 only")
    parser.add_argument("--skip-synth", action="store_true", help="only the golden model")
    args = parser.parse_args(argv)
    if not args.skip_synth:
        bench_resources(["ecp5"] if args.quick else ["ecp5", "ice40"])
    bench_golden(args.repeat, args.quick)
    cmd = "python benchmarks/bench_mac.py" + (" --quick" if args.quick else "")
    print(f"reproduce: {cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
