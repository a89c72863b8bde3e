"""Benchmark: the MSQ payoff (resources) and its accuracy cost.

Prints
  1. Marginal ECP5 cost of one lane of :class:`fixar_hw.arith.row_unit.MixedRowUnit` (16-bit
     activations, ``max_cols=512``): fixed-point lanes (DSP) and SP2 lanes (LUT) at 4-, 8- and
     16-bit weights, measured by pyosys synthesis of units with 1 and 8 lanes of one kind
     (``(cost(8) - cost(1)) / 7``: the product, accumulator and closing registers of a lane,
     without the shared scaler).
  2. For an LFE5U-85F (83,640 LUT4, 156 MULT18X18D) with ``--lut-share`` of its LUTs given to
     lanes: the (n_fixed, n_sp2) mix that fills DSPs and LUTs together
     (:func:`sw_model.numerics.msq.fill_ratio`), its multiplies per cycle, and the ratio to a
     DSP-only
     design (n_fixed lanes).
  3. Relative quantization error of fixed-only, SP2-only and MSQ at equal bit width on
     synthetic weight matrices, at the best ratio and at the device-filling ratio.

Reproduce with::

    python benchmarks/bench_msq.py            # add --quick for a smoke run
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from fixar_hw.arith.row_unit import MixedRowUnit
from fixar_hw.flow.synth import resources
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.msq import LaneBudget, compare_schemes, fill_ratio
from sw_model.numerics.sp2 import SP2Format

ECP5_85F = {"luts": 83_640, "dsps": 156}
X_FMT = FixedFormat(16, 12)
ALPHA_FMT = FixedFormat(16, 12, signed=False)
OUT_FMT = FixedFormat(16, 12)
#: SP2 codes are limited to m <= 11 (shift K = 2**m1 - 1 <= 31): a 16-bit SP2 code would need
#: 255-bit shifters. The widest SP2 lane stands in for 16-bit weights.
SP2_M = {4: 4, 8: 8, 16: 11}


def _unit(bits: int, n_fixed: int, n_sp2: int) -> MixedRowUnit:
    return MixedRowUnit(X_FMT, SP2Format(SP2_M[bits]), FixedFormat(bits, bits - 1), ALPHA_FMT,
                        OUT_FMT, n_fixed=n_fixed, n_sp2=n_sp2, max_cols=512)


def lane_costs(bits: int, lanes: int = 8) -> dict[str, tuple[float, float]]:
    """Marginal (LUT, DSP) of one fixed lane and one SP2 lane at ``bits``-bit weights."""
    out = {}
    for kind in ("fixed", "sp2"):
        counts = []
        for n in (1, lanes):
            unit = _unit(bits, n, 0) if kind == "fixed" else _unit(bits, 0, n)
            counts.append(resources(unit, "ecp5"))
        lut = (counts[1].lut - counts[0].lut) / (lanes - 1)
        dsp = (counts[1].dsp - counts[0].dsp) / (lanes - 1)
        out[kind] = (lut, dsp)
    return out


def synthetic(kind: str, rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    scale = rng.uniform(0.05, 1.0, (rows, 1))
    if kind == "gaussian":
        return rng.normal(0, 1, (rows, cols)) * scale
    if kind == "uniform":
        return rng.uniform(-1, 1, (rows, cols)) * scale
    if kind == "heavy-tailed":
        return rng.standard_t(2, (rows, cols)) * scale
    half = rows // 2
    return np.concatenate([synthetic("heavy-tailed", half, cols, rng),
                           synthetic("uniform", rows - half, cols, rng)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4-bit only, small matrices")
    parser.add_argument("--repeat", type=int, default=1, help="unused; for a uniform interface")
    parser.add_argument("--lut-share", type=float, default=0.8,
                        help="share of the device LUTs given to lanes (default 0.8)")
    args = parser.parse_args(argv)
    widths = [4] if args.quick else [4, 8, 16]

    print("Marginal ECP5 cost of one MixedRowUnit lane (16-bit activations, max_cols 512):")
    print(f"{'weights':>8} {'fixed LUT':>10} {'fixed DSP':>10} {'SP2 LUT':>9} {'SP2 DSP':>8}"
          f" {'SP2 code':>9}")
    costs = {}
    for bits in widths:
        start = time.perf_counter()
        costs[bits] = c = lane_costs(bits, 3 if args.quick else 8)
        print(f"{bits:>6}-b {c['fixed'][0]:>10.1f} {c['fixed'][1]:>10.2f} {c['sp2'][0]:>9.1f}"
              f" {c['sp2'][1]:>8.2f} {f'm={SP2_M[bits]}':>9}")
        print(f"  ({time.perf_counter() - start:.1f} s of synthesis)", file=sys.stderr)
    print()

    luts = int(ECP5_85F["luts"] * args.lut_share)
    print(f"LFE5U-85F budget: {luts} LUT4 ({args.lut_share:.0%} of {ECP5_85F['luts']}), "
          f"{ECP5_85F['dsps']} MULT18X18D")
    print(f"{'weights':>8} {'n_fixed':>8} {'n_sp2':>6} {'SP2 ratio':>10} {'mult/cycle':>11}"
          f" {'DSP-only':>9} {'gain':>6}")
    ratios = {}
    for bits in widths:
        (f_lut, f_dsp), (s_lut, _) = costs[bits]["fixed"], costs[bits]["sp2"]
        budget = LaneBudget(luts=luts, dsps=ECP5_85F["dsps"],
                            lut_per_sp2_lane=max(1, round(s_lut)),
                            lut_per_fixed_lane=max(0, round(f_lut)),
                            dsp_per_fixed_lane=max(1, round(f_dsp)))
        n_fixed, n_sp2, ratio = fill_ratio(budget)
        ratios[bits] = ratio
        dsp_only = n_fixed
        print(f"{bits:>6}-b {n_fixed:>8} {n_sp2:>6} {ratio:>10.3f} {n_fixed + n_sp2:>11}"
              f" {dsp_only:>9} {(n_fixed + n_sp2) / dsp_only:>5.2f}x")
    print()

    rng = np.random.default_rng(0)
    rows, cols = (32, 64) if args.quick else (128, 256)
    print(f"Relative Frobenius error, {rows}x{cols} synthetic matrices (rows with random scales):")
    print(f"{'matrix':>22} {'m':>3} {'fixed':>8} {'SP2':>8} {'MSQ best':>9} {'(ratio)':>8}"
          f" {'MSQ device':>11} {'(ratio)':>8}")
    for kind in ("gaussian", "uniform", "heavy-tailed", "heavy-tailed+uniform"):
        w = synthetic(kind, rows, cols, rng)
        for bits in widths:
            m = SP2_M[bits]
            best = compare_schemes(w, m)
            dev = compare_schemes(w, m, sp2_ratio=ratios[bits])
            print(f"{kind:>22} {m:>3} {best.fixed:>8.4f} {best.sp2:>8.4f} {best.msq:>9.4f}"
                  f" {best.msq_ratio:>8.2f} {dev.msq:>11.4f} {dev.msq_ratio:>8.2f}")
    print()
    print("reproduce: python benchmarks/bench_msq.py" + (" --quick" if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
