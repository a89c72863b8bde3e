"""Benchmark: a PE array with multipliers against one with SP2 shift-add PEs (ECP5 synthesis).

Prints LUT / FF / DSP / BRAM of :class:`fixar_hw.train.array.PEArray` (fixed-point weights, DSP
multipliers) and :class:`fixar_hw.train.array.SP2PEArray` (SP2 weight codes, shift-add PEs in LUTs)
for the same grid, activation and delta formats, from pyosys ``synth_ecp5``. The fixed array's
weights have as many bits as the SP2 array's level integers, so both hold the same weights;
the fixed array also runs weight gradients, which the SP2 array cannot.

Reproduce with::

    python benchmarks/bench_sp2_array.py            # add --quick for a smoke run
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time

from fixar_hw.flow.synth import resources
from fixar_hw.train.array import PEArray, SP2PEArray
from sw_model.arch.aap import AAPConfig
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.sp2 import SP2Format


def _config(size: int, width: int, sp2: SP2Format) -> AAPConfig:
    fmt = FixedFormat(width, width - 4)
    return AAPConfig(size=size, cores=1, w_fmt=sp2.level_fmt, a_fmt=fmt, d_fmt=fmt,
                     grad_fmt=fmt, g_fmt=FixedFormat(18, 16), max_m=512, max_n=512,
                     max_batch=256, addr_width=12, tanh_index_bits=min(8, width - 2))


def _measure(args: tuple[str, int, int, int]) -> tuple[int, int, int, int]:
    kind, size, width, m = args
    sp2 = SP2Format(m)
    config = _config(size, width, sp2)
    design = PEArray(config) if kind == "fixed" else SP2PEArray(config, sp2)
    r = resources(design, "ecp5")
    return r.lut, r.ff, r.dsp, r.bram


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small grid")
    parser.add_argument("--repeat", type=int, default=1,
                        help="synthesis is deterministic; accepted for uniformity")
    args = parser.parse_args(argv)
    cases = [(1, 8, 4)] if args.quick else [(4, 16, 4), (4, 16, 6), (8, 16, 4)]
    print("PE array vs SP2 PE array, one core, pyosys synth_ecp5")
    print(f"{'grid':>5} {'act':>4} {'SP2 code':>9} {'array':>6} {'LUT':>7} {'FF':>7} "
          f"{'DSP':>4} {'BRAM':>5} {'s':>6}")
    for size, width, m in cases:
        for kind in ("fixed", "sp2"):
            t0 = time.perf_counter()
            # each synthesis in its own process: a Yosys error ends the process (pyosys)
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                lut, ff, dsp, bram = pool.apply(_measure, ((kind, size, width, m),))
            dt = time.perf_counter() - t0
            print(f"{size}x{size:<3} {width:>4} {m:>9} {kind:>6} {lut:>7} {ff:>7} {dsp:>4} "
                  f"{bram:>5} {dt:>6.1f}")
    print("reproduce: python benchmarks/bench_sp2_array.py" + (" --quick" if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
