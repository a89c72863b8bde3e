"""Benchmark: PE array resources and Fmax on an ECP5 LFE5U-85F (the ULX3S FPGA).

For each array configuration (:class:`sw_model.arch.aap.AAPConfig`, 16-bit formats by default):

1. pyosys ``synth_ecp5`` of the bare :class:`fixar_hw.train.array.PEArray`
   (:func:`fixar_hw.flow.synth.resources`): LUT4 (+2 per CCU2C), FF, MULT18X18D, DP16KD;
2. if those fit the device, the array inside :class:`fixar_hw.flow.pnr.FoldedTop` (its memories in
   block RAM, commands from a pseudo-random register, outputs XOR-folded; 15 I/O pins) through
   synthesis and ``nextpnr-ecp5`` place and route (:func:`fixar_hw.flow.pnr.place_and_route_seeds`)
   with ``--repeat`` placer seeds: the placed LUT/FF/DSP/BRAM/IO counts and the achieved Fmax
   (median, min and max over the seeds), with the wall time of every step.

The device: 83,640 LUT4 (TRELLIS_COMB), 156 MULT18X18D, 208 DP16KD, 365 user I/Os (CABGA381).

Reproduce with::

    python benchmarks/bench_array_fpga.py                  # all configurations, 3 seeds
    python benchmarks/bench_array_fpga.py --config s4c2    # one configuration
    python benchmarks/bench_array_fpga.py --quick          # a tiny array (CI smoke run)

Routing the 16-bit arrays takes a long time (see the README); ``--no-route`` stops after
placement and reports nextpnr's post-placement Fmax estimate, ``--timeout`` bounds each tool run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from fixar_hw.flow.pnr import FoldedTop, PnrReport, place_and_route_seeds
from fixar_hw.flow.synth import Resources, resources
from fixar_hw.train.array import PEArray
from sw_model.arch.aap import AAPConfig
from sw_model.numerics.fixed import FixedFormat

Q16 = FixedFormat(16, 12)
Q8 = FixedFormat(8, 6)

#: LFE5U-85F capacities: LUT4, FF, MULT18X18D, DP16KD.
DEVICE_85F = {"lut": 83640, "ff": 83640, "dsp": 156, "bram": 208}


def config(size: int, cores: int, fmt: FixedFormat = Q16) -> AAPConfig:
    """The benchmark's array: ``size x size`` PEs per core, ``fmt`` everywhere but ``g_fmt``."""
    if fmt == Q16:
        g_fmt, limits, index_bits = FixedFormat(18, 16), (512, 256), 8
    else:
        g_fmt, limits, index_bits = FixedFormat(10, 8), (64, 64), 6
    return AAPConfig(size=size, cores=cores, w_fmt=fmt, a_fmt=fmt, d_fmt=fmt, grad_fmt=fmt,
                     g_fmt=g_fmt, max_m=limits[0], max_n=limits[0], max_batch=limits[1],
                     tanh_index_bits=index_bits)


CONFIGS: dict[str, AAPConfig] = {
    "s4c1": config(4, 1),
    "s4c2": config(4, 2),
    "s8c1": config(8, 1),
    "s8c2": config(8, 2),
}
QUICK = {"s2c1-8b": config(2, 1, Q8)}


def _over(res: Resources) -> list[str]:
    """The device limits that ``res`` exceeds, as text."""
    return [f"{key.upper()} {getattr(res, key)} > {cap}" for key, cap in DEVICE_85F.items()
            if getattr(res, key) > cap]


def _describe(name: str, c: AAPConfig) -> str:
    return (f"{name}: size {c.size}, cores {c.cores}, {c.size**2 * c.cores} PEs, "
            f"w/a/d/grad {c.w_fmt.width}.{c.w_fmt.frac}, g {c.g_fmt.width}.{c.g_fmt.frac}, "
            f"max_m=max_n={c.max_m}, max_batch={c.max_batch}, "
            f"tanh_index_bits={c.tanh_index_bits}")


def run(name: str, c: AAPConfig, seeds: list[int], args: argparse.Namespace) -> dict:
    """Measure one configuration; returns a row for the tables."""
    print(_describe(name, c), file=sys.stderr, flush=True)
    start = time.perf_counter()
    bare = resources(PEArray(c), "ecp5")
    row: dict = {"name": name, "config": c, "bare": bare,
                 "bare_s": time.perf_counter() - start, "reports": [], "error": None}
    print(f"  pyosys bare array: {bare.lut} LUT, {bare.ff} FF, {bare.dsp} DSP, {bare.bram} "
          f"BRAM in {row['bare_s']:.0f} s", file=sys.stderr, flush=True)
    over = _over(bare)
    if over and not args.force:
        row["error"] = "does not fit: " + ", ".join(over) + " (pyosys)"
        print(f"  {row['error']}; place and route skipped", file=sys.stderr, flush=True)
        return row
    try:
        row["reports"] = place_and_route_seeds(
            FoldedTop(PEArray(c)), seeds=seeds, device=args.device, freq_mhz=args.freq,
            router=args.router, route=not args.no_route, timeout=args.timeout)
    except RuntimeError as exc:
        lines = str(exc).splitlines()
        errors = [line.strip() for line in lines if "ERROR" in line]
        row["error"] = lines[0].removesuffix("; log tail:") + (f": {errors[-1]}" if errors else "")
        print(f"  {row['error']}", file=sys.stderr, flush=True)
        return row
    for rep in row["reports"]:
        print(f"  seed {rep.seed}: Fmax {rep.fmax_mhz:.1f} MHz, nextpnr {rep.pnr_seconds:.0f} s "
              f"(synthesis {rep.synth_seconds:.0f} s)", file=sys.stderr, flush=True)
    return row


def _table(header: list[str], lines: list[list[str]], text_cols: int = 2) -> str:
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]

    def render(cells: list[str]) -> str:
        return "  ".join(t.ljust(w) if i < text_cols else t.rjust(w)
                         for i, (t, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([render(header), render(["-" * w for w in widths]),
                      *(render(r) for r in lines)])


def report(rows: list[dict], device: str) -> None:
    print(f"Resources on ECP5 {device} (LUT = LUT4 + 2 per CCU2C after pyosys; TRELLIS_COMB "
          "after nextpnr):")
    lines = []
    for row in rows:
        b = row["bare"]
        lines.append([row["name"], "pyosys, bare array", str(b.lut), str(b.ff), str(b.dsp),
                      str(b.bram), "-", f"{row['bare_s']:.0f}"])
        if row["reports"]:
            r: PnrReport = row["reports"][0]
            s = r.synth
            lines.append([row["name"], "pyosys, FoldedTop", str(s.lut), str(s.ff), str(s.dsp),
                          str(s.bram), "-", f"{r.synth_seconds:.0f}"])
            lines.append([row["name"], "nextpnr, FoldedTop", str(r.lut), str(r.ff), str(r.dsp),
                          str(r.bram), str(r.io), f"{r.pnr_seconds:.0f}"])
            pct = [f"{100 * used / r.available(bel):.1f}%" for used, bel in (
                (r.lut, "TRELLIS_COMB"), (r.ff, "TRELLIS_FF"), (r.dsp, "MULT18X18D"),
                (r.bram, "DP16KD"), (r.io, "TRELLIS_IO"))]
            lines.append([row["name"], "  of the device", *pct, ""])
    print(_table(["config", "count", "LUT", "FF", "DSP", "BRAM", "IO", "wall s"], lines))
    print()
    routed = all(r.routed for row in rows for r in row["reports"])
    kind = "achieved after routing" if routed else "post-placement estimate, not routed"
    print(f"Fmax (nextpnr, speed grade 6, {kind}; median over seeds) and fit:")
    lines = []
    for row in rows:
        reps = row["reports"]
        if reps:
            fmax = [r.fmax_mhz for r in reps]
            lines.append([row["name"], "fits", f"{statistics.median(fmax):.1f}",
                          f"{min(fmax):.1f}", f"{max(fmax):.1f}", str(len(reps)),
                          f"{statistics.median(r.pnr_seconds for r in reps):.0f}"])
        else:
            lines.append([row["name"], row["error"], "-", "-", "-", "0", "-"])
    print(_table(["config", "result", "Fmax MHz", "min", "max", "seeds", "pnr s/seed"], lines))
    for row in rows:
        if row["reports"]:
            path = row["reports"][0].critical_path
            if path:
                where = ", ".join(p.rsplit("/", 1)[-1] for p in path[2:]) or "-"
                print(f"{row['name']} critical path (seed {row['reports'][0].seed}): "
                      f"{path[0]} -> {path[1]}; source lines {where}")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one tiny array (CI smoke run)")
    parser.add_argument("--repeat", type=int, default=3, help="placer seeds per configuration")
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS),
                        help="configuration to run (repeatable; default: all)")
    parser.add_argument("--device", default="85k", help="nextpnr ECP5 device (default 85k)")
    parser.add_argument("--freq", type=float, default=100.0, help="target MHz for nextpnr")
    parser.add_argument("--router", default="router2", choices=["router2", "router1"],
                        help="nextpnr router (default router2)")
    parser.add_argument("--no-route", action="store_true",
                        help="stop after placement: Fmax is nextpnr's post-placement estimate")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed to each synthesis and nextpnr run")
    parser.add_argument("--force", action="store_true",
                        help="place and route even when pyosys counts exceed the device")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat!r}")
    chosen = QUICK if args.quick else {n: CONFIGS[n] for n in (args.config or CONFIGS)}
    seeds = list(range(1, args.repeat + 1))
    start = time.perf_counter()
    rows = [run(name, c, seeds, args) for name, c in chosen.items()]
    print("Configurations:")
    for name, c in chosen.items():
        print(f"  {_describe(name, c)}")
    print()
    report(rows, args.device)
    print(f"total wall time {time.perf_counter() - start:.0f} s")
    cmd = ["python benchmarks/bench_array_fpga.py"]
    if args.quick:
        cmd.append("--quick")
    cmd += [f"--config {n}" for n in args.config or []]
    cmd.append(f"--repeat {args.repeat}")
    if args.device != "85k":
        cmd.append(f"--device {args.device}")
    if args.router != "router2":
        cmd.append(f"--router {args.router}")
    if args.no_route:
        cmd.append("--no-route")
    if args.freq != 100.0:
        cmd.append(f"--freq {args.freq:g}")
    print(f"reproduce: {' '.join(cmd)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
