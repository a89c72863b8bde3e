"""Benchmark: whole DDPG training steps on the engine at RTL speed (Verilator), FIXAR's networks.

For FIXAR's networks (actor 17-400-300-6, critic 23-400-300-1) on a FIXAR-like build (16 x 16
PE grid, 2 cores = 512 PEs, the default 32-bit formats, 16 update units, built for batches up to
256, dual-precision PEs as FIXAR's: after the switch, forward and weight-gradient operations on
16-bit activations run two products a PE per cycle; ``--full-precision`` builds one multiplier
a PE, for comparison), runs the training-step program of
:func:`sw_model.arch.engine.compile_step` at batch 64, 128 and 256 on the exported Verilog and
prints, for QAT's 16-bit phase (the steady state) and its
32-bit tracking phase:

* the full-step cycles measured by Verilator and those of
  :meth:`fixar_hw.train.description.EngineDescription.cycles` (they must be equal), and the
  cycles each unit has an operation in progress (array, vector unit, update unit);
  ``overlap`` is their sum minus the step's cycles: the unit cycles that ran beside another
  unit's (the scheduler runs the update unit beside the others), less the scheduler's own
  cycles between operations;
* ``busy %``, the share of the step's cycles in which the PE array has an operation in progress
  (``array / cycles``);
* the MAC-slot utilisation ``util %``, ``useful MACs / MAC slots`` of the whole step, where a
  PE has one slot a cycle and a second in the cycles of a half-mode operation (``slots = PEs *
  (cycles + half)``, ``half`` the cycles half-mode operations are in progress), and
  ``array %``, the same over the array's cycles alone (``useful MACs / (PEs * (array +
  half))``);
* projected training samples per second (``batch * f / cycles``) at an ECP5 clock
  (``--fmax``, default :data:`FMAX_MHZ`, the routed clock of the smallest training core, the
  whole engine behind its buses, on an LFE5U-85F: ``bench_fmax.py --design core16``; the
  16 x 16 build does not fit an ECP5) and at FIXAR's 164 MHz;
* the same normalised per multiplier and per MHz, next to FIXAR's 53,826.8 samples/s at
  164 MHz with 512 PEs.

The memories are empty: every unit's schedule is independent of the data (``tests/
test_engine_hw.py`` checks the counters against the model with real data), so these are the
cycles of a real step.

``--quick`` runs a small build (4 x 4 grid, 2 cores, networks 17-40-30-6 / 23-40-30-1, batches
4 and 8, 4 update units) for CI. ``--model-only`` prints the cycle model's figures without
building (the model equals the RTL wherever both have run).

Reproduce with::

    python benchmarks/bench_engine.py
    python benchmarks/bench_engine.py --quick --repeat 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from fixar_hw.flow.export import verilator_available
from fixar_hw.sim.engine_verilator import build
from fixar_hw.train.description import EngineDescription
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.arch.ddpg_config import DDPGConfig

FIXAR_SAMPLES_PER_S = 53_826.8
FIXAR_MHZ = 164.0
FIXAR_PES = 512


def make_config(quick: bool, half: bool = True) -> tuple[en.EngineConfig, list[int]]:
    if quick:
        cfg = DDPGConfig(hidden=(40, 30), precision="qat", batch_size=8, buffer_size=64)
        return en.EngineConfig(cfg, 17, 6, size=4, cores=2, update_units=4, half=half), [4, 8]
    cfg = DDPGConfig(hidden=(400, 300), precision="qat", batch_size=256, buffer_size=1024)
    return (en.EngineConfig(cfg, 17, 6, size=16, cores=2, update_units=16, half=half),
            [64, 128, 256])


def half_cycles(description: EngineDescription, program) -> int:
    """Cycles half-mode array operations of ``program`` are in progress (their second MAC
    slots)."""
    return sum(end - issue for op, unit, issue, end in description.timeline(program)
               if unit == "array" and op.half)


class _ModelOnly:
    """Stands in for the Verilator model: the counters of the cycle model."""

    def __init__(self, ec: en.EngineConfig) -> None:
        self.description = EngineDescription(ec)

    def run(self, program) -> dict:
        return {**self.description.cycles(program), "edges": 0, "seconds": 0.0}


def phase_formats(ec: en.EngineConfig, phase: str) -> dict:
    """Activation formats of a phase: ``"32-bit"`` (tracking) or ``"16-bit"`` (frozen)."""
    d = ec.ddpg
    fmts = ds.activation_formats(d)
    if phase == "16-bit":
        fmts = {k: (d.act16_fmt if k != f"critic.x{ec.layers}" else v) for k, v in fmts.items()}
    return fmts


#: The smallest training core's routed clock on an LFE5U-85F-6, median of 3 placer seeds, at
#: ``30e2b45`` (docs/results.md, "Compact update units, resource floors and timing").
FMAX_MHZ = 67.2

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small build (CI)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per program (median)")
    parser.add_argument("--fmax", type=float, default=FMAX_MHZ,
                        help=f"ECP5 clock in MHz (default {FMAX_MHZ})")
    parser.add_argument("--model-only", action="store_true",
                        help="the cycle model's figures, without Verilator")
    parser.add_argument("--full-precision", action="store_true",
                        help="PEs with one multiplier (no half mode), for comparison")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat!r}")
    cmd = "python benchmarks/bench_engine.py" + (" --quick" if args.quick else "")
    if args.repeat != 3:
        cmd += f" --repeat {args.repeat}"
    if args.fmax != FMAX_MHZ:
        cmd += f" --fmax {args.fmax}"
    if args.model_only:
        cmd += " --model-only"
    if args.full_precision:
        cmd += " --full-precision"
    if not verilator_available() and not args.model_only:
        print("verilator-cli is not installed: nothing to measure")
        print(f"reproduce: {cmd}")
        return 0
    ec, batches = make_config(args.quick, half=not args.full_precision)
    pes = ec.cores * ec.size**2
    start = time.perf_counter()
    print(f"build: {ec.size}x{ec.size} grid, {ec.cores} cores ({pes} PEs), "
          f"{ec.update_units} update units, batches up to {ec.batch_capacity}; parameter "
          f"memory {ec.plan.w_words} words, activation memory {ec.plan.a_words} words")
    print(f"PE precision: {ec.aap.half_note}")
    description = EngineDescription(ec)
    if args.model_only:
        model = _ModelOnly(ec)
        print("cycle model only (no RTL run)")
    else:
        model = build(ec, cflags=("-O0",) if args.quick else ("-O1",))
        export = "cached" if model.verilog_cached else f"{model.export_seconds:.0f} s"
        print(f"Verilog export {export}, Verilator build {model.build_seconds:.0f} s "
              f"({time.perf_counter() - start:.0f} s in all; cached builds take ~0 s)")
    print(f"networks: actor {'-'.join(map(str, ec.sizes('actor')))}, critic "
          f"{'-'.join(map(str, ec.sizes('critic')))}")
    print()
    first = "model" if args.model_only else "RTL cycles"
    head = (f"{'phase':7} {'batch':>5} {first:>11} {'model':>11} {'array':>9} "
            f"{'vector':>8} {'update':>8} {'overlap':>8} {'busy %':>7} {'util %':>7} "
            f"{'array %':>7} "
            f"{'Mcyc/s':>7} {'samples/s @fmax':>15} {'@164MHz':>9} {'/PE/MHz':>8}")
    print(head)
    mismatches = 0
    rows = []
    for phase in ("16-bit", "32-bit"):
        fmts = phase_formats(ec, phase)
        for batch in batches:
            program = en.compile_step(ec, fmts, tracking=phase == "32-bit", batch=batch)
            want = description.cycles(program)
            runs = [model.run(program) for _ in range(args.repeat)]
            got = runs[0]
            same = all({k: r[k] for k in want} == want for r in runs)
            mismatches += not same
            cycles = got["cycles"]
            useful = en.program_cycles(ec, program)["useful_macs"]
            half = half_cycles(description, program)
            util = useful / (pes * (cycles + half))
            array_util = useful / (pes * (got["array"] + half))
            speed = statistics.median(r["edges"] / max(r["seconds"], 1e-9) for r in runs)
            if args.model_only:
                speed = float("nan")
            per_s = batch * args.fmax * 1e6 / cycles
            per_s_164 = batch * FIXAR_MHZ * 1e6 / cycles
            norm = batch * 1e6 / (cycles * pes)
            overlap = got["array"] + got["vector"] + got["update"] - cycles
            busy = got["array"] / cycles
            flag = "" if same else "  <-- differs from the model"
            print(f"{phase:7} {batch:>5} {cycles:>11,} {want['cycles']:>11,} "
                  f"{got['array']:>9,} {got['vector']:>8,} {got['update']:>8,} {overlap:>8,} "
                  f"{100 * busy:>7.2f} {100 * util:>7.2f} {100 * array_util:>7.2f} "
                  f"{speed / 1e6:>7.3f} "
                  f"{per_s:>15,.0f} {per_s_164:>9,.0f} {norm:>8.4f}{flag}")
            rows.append((phase, batch, norm))
    print()
    fixar_norm = FIXAR_SAMPLES_PER_S / (FIXAR_PES * FIXAR_MHZ)
    print(f"FIXAR: {FIXAR_SAMPLES_PER_S:,.1f} samples/s at {FIXAR_MHZ:.0f} MHz with "
          f"{FIXAR_PES} PEs = {fixar_norm:.4f} samples/s per PE per MHz")
    if args.quick:
        # samples/s per PE grow as the networks shrink: only FIXAR's networks compare
        print("  (not compared: the quick networks are far smaller than FIXAR's, so their "
              "samples/s per PE per MHz mean nothing against it; run without --quick)")
    else:
        for phase, batch, norm in rows:
            print(f"  this engine, {phase} phase, batch {batch}: {norm:.4f} "
                  f"({norm / fixar_norm:.2f} x FIXAR)")
    print()
    if not args.model_only:
        print("all RTL counters equal the cycle model" if not mismatches
              else f"{mismatches} programs differ from the cycle model")
    print(f"reproduce: {cmd}")
    return 0 if not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
