"""Benchmark: routed Fmax and resources of the PE array and the training cores on the LFE5U-85F.

Where users measure a core: synthesized with pyosys and routed with nextpnr-ecp5 (speed grade
6; router2 for the array as ``bench_array_fpga.py`` runs it, the build flow's router1 for the
cores), once per placer seed; the figure is the median over the seeds, with the slowest
path of the median seed named by its end cells and the design lines along it.

Designs:

``array``
    The 4x4 one-core PE array of ``benchmarks/bench_array_fpga.py`` (16-bit formats) inside
    :class:`fixar_hw.flow.pnr.FoldedTop` (its memories inside, outputs folded onto pins).
``core16``, ``core32``
    The smallest training cores, ``examples/configs/pendulum-2x2-narrow16.json`` and
    ``pendulum-2x2-fixar32.json``: the whole ULX3S-85F board top (:func:`fixar_hw.flow.build.build`,
    the core behind its UART bridge), at the board's 25 MHz clock (nextpnr's timing-driven
    placement aims at it; the Fmax reported is what the routed design reaches).
``demo``
    The core of ``fixar-hw demo`` (:func:`fixar_hw.apps.demo.settings.demo_settings`): its
    resource floor (:func:`fixar_hw.flow.build.floor_check`) is checked first, and a core
    refused there is reported with the time the refusal took; a core that passes is built and
    routed like ``core16``.

Reproduce with::

    python benchmarks/bench_fmax.py                     # every design, 3 seeds
    python benchmarks/bench_fmax.py --design core16     # one design
    python benchmarks/bench_fmax.py --quick             # the demo's floor check only (seconds)

Each tool runs under ``--timeout`` seconds (synthesis also under the flow's memory limit).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DESIGNS = ("array", "core16", "core32", "demo")


def _path(path: tuple[str, ...]) -> str:
    if not path:
        return "-"
    lines = ", ".join(p.rsplit("/", 1)[-1] for p in path[2:5])
    return f"{path[0]} -> {path[1]}" + (f" ({lines})" if lines else "")


def measure_array(seeds: list[int], timeout: float | None) -> dict:
    """The 4x4 one-core array in a FoldedTop, one nextpnr run per seed."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_array_fpga import config

    from fixar_hw.flow.pnr import FoldedTop, place_and_route_seeds
    from fixar_hw.train.array import PEArray

    reports = place_and_route_seeds(FoldedTop(PEArray(config(4, 1))), seeds=seeds,
                                    freq_mhz=100.0, timeout=timeout)
    return {"fmax": [r.fmax_mhz for r in reports], "paths": [r.critical_path for r in reports],
            "used": {"lut": reports[0].lut, "ff": reports[0].ff, "dsp": reports[0].dsp,
                     "bram": reports[0].bram},
            "seconds": sum(r.pnr_seconds for r in reports) + reports[0].synth_seconds}


def measure_core(config, seeds: list[int], timeout: float | None) -> dict:
    """A core's board top (a CoreConfig, or the name of an example configuration), built and
    routed once per seed."""
    from fixar_hw.config import CoreConfig
    from fixar_hw.flow.build import build

    if isinstance(config, str):
        config = CoreConfig.load(ROOT / "examples" / "configs" / config)
    out: dict = {"fmax": [], "paths": [], "used": None, "seconds": 0.0}
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="fixar_hw_fmax_") as tmp:
            report = build(config, "ulx3s-85f", tmp, seed=seed, pack=False, timeout=timeout)
        out["fmax"].append(report.fmax_mhz)
        out["paths"].append(report.critical_path)
        out["used"] = {k: report.used[k] for k in ("lut", "ff", "dsp", "bram")}
        out["seconds"] += sum(report.seconds.values())
    return out


def measure_demo(seeds: list[int] | None, timeout: float | None) -> dict:
    """The demo's core: refused by its resource floor, or (with ``seeds``) built and routed
    once per seed."""
    from fixar_hw.apps.demo.settings import demo_settings
    from fixar_hw.errors import DoesNotFit
    from fixar_hw.flow.build import floor_check

    config = demo_settings(synth=True).core_config()
    start = time.perf_counter()
    try:
        floor_check(config, "ulx3s-85f")
    except DoesNotFit as exc:
        return {"refused": str(exc), "seconds": time.perf_counter() - start,
                "used": dict(exc.used)}
    if not seeds:
        return {"refused": None, "seconds": time.perf_counter() - start, "used": {}}
    return measure_core(config, seeds, timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--design", action="append", choices=DESIGNS,
                        help="design to measure (repeatable; default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="placer seeds (default 3)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds allowed to each tool run (default 3600)")
    parser.add_argument("--quick", action="store_true",
                        help="only the demo core's floor check (no synthesis; seconds)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat!r}")
    designs = ["demo"] if args.quick else (args.design or list(DESIGNS))
    seeds = list(range(1, args.repeat + 1))
    results: dict[str, dict] = {}
    from fixar_hw.errors import BuildError

    for name in designs:
        print(f"{name} ...", file=sys.stderr, flush=True)
        try:
            if name == "array":
                results[name] = measure_array(seeds, args.timeout)
            elif name in ("core16", "core32"):
                file = {"core16": "pendulum-2x2-narrow16.json",
                        "core32": "pendulum-2x2-fixar32.json"}[name]
                results[name] = measure_core(file, seeds, args.timeout)
            else:
                results[name] = measure_demo(None if args.quick else seeds, args.timeout)
        except (BuildError, RuntimeError) as exc:  # a tool failed or ran out of time
            print(f"{name} failed:\n{exc}", file=sys.stderr, flush=True)
            results[name] = {"failed": str(exc).splitlines()[0]}
    print(f"LFE5U-85F-6, {len(seeds)} placer seed(s); Fmax in MHz, routed (median, min, max)")
    print(f"{'design':8s} {'LUT':>7s} {'FF':>7s} {'DSP':>4s} {'BRAM':>4s} {'Fmax':>7s} "
          f"{'min':>6s} {'max':>6s} {'wall s':>7s}  critical path (median seed)")
    for name, r in results.items():
        if "failed" in r:
            print(f"{name:8s} not measured: {r['failed']}")
            continue
        if "fmax" not in r:
            what = (f"refused before synthesis in {r['seconds'] * 1e3:.0f} ms: "
                    f"{r['refused']}" if r["refused"] else "fits its floor")
            print(f"{name:8s} {what}")
            continue
        u = r["used"]
        order = sorted(range(len(r["fmax"])), key=lambda i: r["fmax"][i])
        mid = order[len(order) // 2]
        print(f"{name:8s} {u['lut']:7,d} {u['ff']:7,d} {u['dsp']:4d} {u['bram']:4d} "
              f"{statistics.median(r['fmax']):7.1f} {min(r['fmax']):6.1f} "
              f"{max(r['fmax']):6.1f} {r['seconds']:7.0f}  {_path(r['paths'][mid])}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {k: {kk: (list(map(list, vv)) if kk == "paths" else vv) for kk, vv in v.items()}
             for k, v in results.items()}, indent=2))
    cmd = ["python benchmarks/bench_fmax.py"]
    if args.quick:
        cmd.append("--quick")
    cmd += [f"--design {d}" for d in args.design or []]
    if args.repeat != 3:
        cmd.append(f"--repeat {args.repeat}")
    print(f"reproduce: {' '.join(cmd)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
