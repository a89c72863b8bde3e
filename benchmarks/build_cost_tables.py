"""Build ``sw_model/search/cost_tables.json``: measured ECP5 cost of one MixedRowUnit lane.

For every measured point ``(scheme, w_bits, a_bits)`` this synthesizes (pyosys ``synth_ecp5``,
:func:`fixar_hw.flow.synth.resources`) a :class:`fixar_hw.arith.row_unit.MixedRowUnit` whose lanes
are
all of that kind, at two lane counts ``n_lo < n_hi`` (2 and 8; 2 and 5 with ``--quick``), and
stores

* the lane cost ``(cost(n_hi) - cost(n_lo)) / (n_hi - n_lo)`` (LUTs, DSPs): a lane's product,
  accumulator and closing registers, as ``benchmarks/bench_msq.py`` measures it;
* the engine base ``cost(n_lo) - n_lo * lane``: the shared scale multiplier, requantizer, drain
  counter and handshake of one unit.

``n_lo`` is 2, not 1: a one-lane unit has no lane multiplexer in front of the scaler and Yosys
maps its scale multiplier to one DSP fewer, which would leak into the lane cost (a fixed lane
would come out as 1.14 DSPs). From 2 lanes on, the costs are linear in the lane count to
within a few LUTs (``benchmarks/bench_cost_model.py`` checks 16 lanes).

Units: activations ``FixedFormat(a, max(a - 4, 0))``, fixed weights ``FixedFormat(w, w - 1)``,
SP2 weights ``SP2Format(w)``, scales ``FixedFormat(16, 12, signed=False)``, results
``FixedFormat(16, 12)``, ``max_cols=512``. Each synthesis runs in its own Python process:
pyosys 0.70 ends the interpreter on a Yosys error, and Yosys 0.70's ``abc9`` trips an internal
assertion on a few lane counts (e.g. 4 fixed lanes); a failed count is replaced by the next
candidate count.

Reproduce with::

    python benchmarks/build_cost_tables.py            # full grid, about 10 minutes on 2 cores
    python benchmarks/build_cost_tables.py --quick    # a handful of points, to --out only
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "sw_model" / "search" / "cost_tables.json"
A_GRID = (4, 6, 8, 12, 16)
FULL_GRID = {
    "fixed": ((2, 3, 4, 6, 8, 10, 12, 14, 16), A_GRID),
    "sp2": (tuple(range(2, 12)), A_GRID),
}
QUICK_GRID = {"fixed": ((4, 8), (8, 16)), "sp2": ((4, 8), (8, 16))}
#: Candidate lane counts, tried in order until synthesis succeeds.
LO_COUNTS = (2, 3, 1)
HI_COUNTS = {"full": (8, 7, 9, 6, 10), "quick": (5, 6, 3)}
UNIT = {
    "x_fmt": "FixedFormat(a_bits, max(a_bits - 4, 0))",
    "fixed weights": "FixedFormat(w_bits, w_bits - 1)",
    "sp2 weights": "SP2Format(w_bits)",
    "alpha_fmt": "FixedFormat(16, 12, signed=False)",
    "out_fmt": "FixedFormat(16, 12)",
    "max_cols": 512,
    "rounding": "half_even",
    "overflow": "saturate",
}


def make_unit(scheme: str, w_bits: int, a_bits: int, n: int):
    """A MixedRowUnit with ``n`` lanes of one kind (see the module docs for the formats)."""
    from fixar_hw.arith.row_unit import MixedRowUnit
    from sw_model.numerics.fixed import FixedFormat
    from sw_model.numerics.sp2 import SP2Format

    fix_w = w_bits if scheme == "fixed" else 2
    sp2_w = w_bits if scheme == "sp2" else 2
    return MixedRowUnit(FixedFormat(a_bits, max(a_bits - 4, 0)), SP2Format(sp2_w),
                        FixedFormat(fix_w, fix_w - 1), FixedFormat(16, 12, signed=False),
                        FixedFormat(16, 12), n_fixed=n if scheme == "fixed" else 0,
                        n_sp2=n if scheme == "sp2" else 0, max_cols=512)


def _synth_child(scheme: str, w_bits: int, a_bits: int, n: int) -> None:
    from fixar_hw.flow.synth import resources

    res = resources(make_unit(scheme, w_bits, a_bits, n), "ecp5")
    print(json.dumps({"lut": res.lut, "ff": res.ff, "dsp": res.dsp}))


def synth(scheme: str, w_bits: int, a_bits: int, n: int) -> dict | None:
    """ECP5 counts of one unit, synthesized in a child process; None if Yosys failed."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", scheme, str(w_bits), str(a_bits), str(n)],
        capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _first(scheme: str, w_bits: int, a_bits: int, counts: tuple[int, ...]
           ) -> tuple[int, dict]:
    for n in counts:
        res = synth(scheme, w_bits, a_bits, n)
        if res is not None:
            return n, res
    raise RuntimeError(f"synthesis failed for {scheme} w={w_bits} a={a_bits} at every lane "
                       f"count of {counts}")


def measure(scheme: str, w_bits: int, a_bits: int, hi_counts: tuple[int, ...]) -> dict:
    """One table entry: lane and base cost of ``(scheme, w_bits, a_bits)``."""
    n_lo, lo = _first(scheme, w_bits, a_bits, LO_COUNTS)
    n_hi, hi = _first(scheme, w_bits, a_bits, tuple(n for n in hi_counts if n > n_lo))
    span = n_hi - n_lo
    lane = {k: (hi[k] - lo[k]) / span for k in ("lut", "ff", "dsp")}
    return {
        "w_bits": w_bits, "a_bits": a_bits, "n_lo": n_lo, "n_hi": n_hi,
        "lane_luts": round(lane["lut"], 3), "lane_dsps": round(lane["dsp"], 3),
        "lane_ffs": round(lane["ff"], 3),
        "base_luts": round(lo["lut"] - n_lo * lane["lut"], 3),
        "base_dsps": round(lo["dsp"] - n_lo * lane["dsp"], 3),
        "base_ffs": round(lo["ff"] - n_lo * lane["ff"], 3),
    }


def versions() -> dict[str, str]:
    """Versions of the tools that produced the numbers."""
    out = {}
    for dist in ("amaranth", "pyosys"):
        out[dist] = importlib.metadata.version(dist)
    from pyosys import libyosys as ys

    out["yosys"] = str(ys.yosys_maybe_version())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a handful of points, written to --out (default: stdout only)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output JSON (default {DEFAULT_OUT.relative_to(ROOT)} for a full "
                             f"build, none for --quick)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel syntheses (default 2)")
    parser.add_argument("--repeat", type=int, default=1, help="unused; for a uniform interface")
    parser.add_argument("--child", nargs=4, metavar=("SCHEME", "W", "A", "N"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        scheme, w, a, n = args.child
        _synth_child(scheme, int(w), int(a), int(n))
        return 0
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs!r}")

    grid = QUICK_GRID if args.quick else FULL_GRID
    hi_counts = HI_COUNTS["quick" if args.quick else "full"]
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)
    points = [(s, w, a) for s, (ws, as_) in grid.items() for w in ws for a in as_]
    start = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        entries = list(pool.map(lambda p: measure(*p, hi_counts), points))
    elapsed = time.perf_counter() - start

    from fixar_hw.arith.row_unit import MixedRowUnit

    command = "python benchmarks/build_cost_tables.py" + (" --quick" if args.quick else "")
    table = {
        "format": 1,
        "family": "ecp5",
        "what": "MixedRowUnit lane and engine-base cost, pyosys synth_ecp5 (LUT = LUT4 + "
                "2 per CCU2C; DSP = MULT18X18D)",
        "command": command,
        "date": datetime.date.today().isoformat(),
        "versions": versions(),
        "build_seconds": round(elapsed, 1),
        "unit": UNIT,
        "row_unit_latency": MixedRowUnit.latency,
        "entries": {s: [e for p, e in zip(points, entries, strict=True) if p[0] == s]
                    for s in grid},
    }

    print(f"{'scheme':>6} {'w':>3} {'a':>3} {'lane LUT':>9} {'lane DSP':>9} {'base LUT':>9}"
          f" {'base DSP':>9} {'n':>6}")
    for scheme, rows in table["entries"].items():
        for e in rows:
            print(f"{scheme:>6} {e['w_bits']:>3} {e['a_bits']:>3} {e['lane_luts']:>9.1f}"
                  f" {e['lane_dsps']:>9.2f} {e['base_luts']:>9.1f} {e['base_dsps']:>9.2f}"
                  f" {e['n_lo']:>2}..{e['n_hi']:<3}")
    print(f"{len(points)} points, {elapsed:.1f} s of synthesis with {args.jobs} jobs")
    if out is not None:
        out.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    print(f"reproduce: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
