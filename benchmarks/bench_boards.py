"""Benchmark: the board targets through the open flow: resources, Fmax, build time.

For every board of :data:`fixar_hw.platforms.boards.BOARDS` this builds, with
:func:`fixar_hw.flow.build.build`
(pyosys, yowasp-nextpnr, the packer):

* the bring-up top (UART bridge and 1,024 words of RAM): synthesis, placement, routing and a
  bitstream on the Lattice boards, synthesis on the Xilinx ones;
* the smallest training core (Pendulum 3-5-1 / 4-5-1, batch 4, a 2x2 grid, one AAP core, one
  update unit) in each format set of ``--formats`` (``fixar32``, FIXAR's 32-bit formats, by
  default; ``narrow16``): synthesis once per FPGA family, and the fit check of those counts on
  every board of the family; with ``--route-core BOARD`` (or ``all``), placement, routing and
  a bitstream on that ECP5 board with ``--repeat`` placer seeds (median Fmax), clocked by the
  board's oscillator or, with ``--core-clock MHZ``, by the PLL. Routing the core takes 10 to
  30 minutes on 2 cores.

It prints a Markdown table (resources as synthesized, the placed LUT count where placed, Fmax,
wall time per build) and a table of which boards take the core, with the refusals' messages.

Reproduce with::

    python benchmarks/bench_boards.py                       # the core synthesized, not routed
    python benchmarks/bench_boards.py --route-core ulx3s-85f --formats narrow16 --repeat 1
    python benchmarks/bench_boards.py --route-core ulx3s-85f --core-clock 20 --repeat 1
    python benchmarks/bench_boards.py --quick --repeat 1    # the iCEBreaker bring-up only (CI)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fixar_hw.config import CoreConfig
from fixar_hw.errors import DoesNotFit
from fixar_hw.flow.build import BuildReport, build, fit_check
from fixar_hw.platforms.boards import BOARDS
from sw_model.arch.ddpg_config import FORMAT_SETS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "configs"


def small_core(formats: str = "fixar32") -> CoreConfig:
    """The README's configuration file of the smallest core in a format set."""
    return CoreConfig.load(EXAMPLES / f"pendulum-2x2-{formats}.json")


def row(what: str, report: BuildReport, fmaxes: list[float], wall: float) -> str:
    u = report.used
    placed = f"{report.placed['lut'][0]:,}" if "lut" in report.placed else "-"
    if fmaxes:
        spread = f" ({min(fmaxes):.1f}-{max(fmaxes):.1f})" if len(fmaxes) > 1 else ""
        fmax = f"{statistics.median(fmaxes):.1f}{spread}"
    else:
        fmax = "-"
    cap = report.capacity
    return (f"| {report.board} | {what} | {u['lut']:,} / {cap['lut']:,} | {placed} | "
            f"{u['ff']:,} | {u['dsp']} / {cap['dsp']} | {u['bram']} / {cap['bram']} | {fmax} | "
            f"{report.clock_mhz:g} | {wall:.0f} |")


def run(config: CoreConfig | None, board: str, route: bool, seeds: int,
        refusals: list[str], rows: list[str], *, what: str = "bring-up",
        clock_mhz: float | None = None) -> BuildReport | None:
    """Build ``seeds`` times (once without routing); append a table row, or a refusal."""
    fmaxes: list[float] = []
    start = time.perf_counter()
    report = None
    builds = seeds if route else 1
    for seed in range(1, builds + 1):
        with tempfile.TemporaryDirectory(prefix="fixar_bench_boards_") as tmp:
            try:
                report = build(config, board, tmp, place=route, seed=seed,
                               clock_mhz=clock_mhz if route else None)
            except DoesNotFit as exc:
                refusals.append(f"- `{board}`, {what}: {exc}")
                b = exc.board
                refused = BuildReport(board=b.name, family=b.family, device=b.device,
                                      config_id=None, config=None, used=exc.used,
                                      capacity=b.capacity, clock_mhz=b.clock_mhz)
                rows.append(row(f"{what} (refused)", refused, [],
                                time.perf_counter() - start))
                return None
        if report.fmax_mhz is not None:
            fmaxes.append(report.fmax_mhz)
        print(f"  {board} {what} seed {seed}: "
              + ", ".join(f"{k} {v:.0f} s" for k, v in report.seconds.items()), flush=True)
    if report is not None:
        rows.append(row(what, report, fmaxes, (time.perf_counter() - start) / builds))
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="iCEBreaker bring-up only (CI)")
    parser.add_argument("--repeat", type=int, default=3, help="placer seeds per routed build")
    parser.add_argument("--route-core", default="none",
                        help="the ECP5 board to route the small core on, 'all' or 'none' "
                             "(default none)")
    parser.add_argument("--formats", nargs="+", choices=list(FORMAT_SETS), default=["fixar32"],
                        help="format sets of the small core (default fixar32)")
    parser.add_argument("--core-clock", type=float, metavar="MHZ",
                        help="run the routed core from the PLL at this clock")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    rows: list[str] = []
    refusals: list[str] = []
    boards = ["icebreaker"] if args.quick else list(BOARDS)
    for name in boards:
        board = BOARDS[name]
        print(f"{name}: bring-up ...", flush=True)
        run(None, name, board.routable, args.repeat, refusals, rows)
    fit_rows: list[str] = []
    for formats in [] if args.quick else args.formats:
        config = small_core(formats)
        what = f"small core, {formats}"
        done: dict[str, BuildReport] = {}
        for name, board in BOARDS.items():
            route = board.family == "ecp5" and args.route_core in ("all", name)
            if board.family in done and not route:
                # same family, same netlist: the fit check of the counts already synthesized
                used = done[board.family].used
                try:
                    fit_check(used, board, config)
                    fit_rows.append(f"| {name} | {formats} | fits |")
                except DoesNotFit as exc:
                    fit_rows.append(f"| {name} | {formats} | refused: {exc} |")
                continue
            print(f"{name}: {what} ...", flush=True)
            report = run(config, name, route, args.repeat, refusals, rows, what=what,
                         clock_mhz=args.core_clock)
            if report is not None:
                done.setdefault(board.family, report)
                fit_rows.append(f"| {name} | {formats} | fits |")
            else:
                fit_rows.append(f"| {name} | {formats} | refused: "
                                f"{refusals[-1].split(': ', 1)[1]} |")
    print()
    print("| board | top | LUT (synth / device) | LUT placed | FF | DSP | BRAM | Fmax MHz "
          "(median, range) | clock MHz | s per build |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(r)
    if fit_rows:
        print()
        print("| board | formats | the small core (counts of its family's synthesis) |")
        print("|---|---|---|")
        for r in fit_rows:
            print(r)
    print()
    print("reproduce: python benchmarks/bench_boards.py"
          + (" --quick" if args.quick else "") + f" --repeat {args.repeat}"
          + ("" if args.quick else " --formats " + " ".join(args.formats))
          + ("" if args.quick or args.route_core == "none"
             else f" --route-core {args.route_core}")
          + ("" if args.core_clock is None else f" --core-clock {args.core_clock:g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
