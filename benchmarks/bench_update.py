"""Benchmark: the pipelined and the iterative update units, alone and in a training step.

For the weight and gradient formats of each example core (``examples/configs/``), pyosys
``synth_ecp5`` of :class:`fixar_hw.train.update.UpdateUnit` and of
:class:`fixar_hw.train.update.IterativeUpdateUnit` at 1, 2 and 4 result bits a cycle
(:func:`fixar_hw.flow.synth.resources`: LUT4 + 2 per CCU2C, FF, MULT18X18D), with the element
latency of each; then the cycles of one training step of that core with each kind (the
engine's cycle model, :meth:`fixar_hw.train.description.EngineDescription.cycles`, which the
RTL equals: ``tests/test_engine_hw.py``).

Reproduce with::

    python benchmarks/bench_update.py            # both format sets
    python benchmarks/bench_update.py --quick    # 16-bit formats, 2 bits a cycle only
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from fixar_hw.config import CoreConfig
from fixar_hw.flow.synth import resources
from fixar_hw.train.description import EngineDescription
from fixar_hw.train.update import IterativeUpdateUnit, UpdateUnit
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en

CONFIGS = Path(__file__).resolve().parent.parent / "examples" / "configs"


def step_cycles(engine: en.EngineConfig) -> dict[str, int]:
    """The cycle model's counters of one Adam training step of ``engine``."""
    program = en.compile_step(engine, ds.activation_formats(engine.ddpg))
    return EngineDescription(engine).cycles(program)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="16-bit formats and 2 bits a cycle only")
    parser.add_argument("--repeat", type=int, default=1,
                        help="unused (synthesis and the cycle model are deterministic)")
    args = parser.parse_args(argv)
    sets = ["narrow16"] if args.quick else ["narrow16", "fixar32"]
    bits = [2] if args.quick else [1, 2, 4]
    start = time.perf_counter()
    print("Update units alone, pyosys synth_ecp5 (LUT = LUT4 + 2 per CCU2C):")
    print(f"{'formats':9s} {'unit':14s} {'LUT':>6s} {'FF':>6s} {'DSP':>4s} {'Adam latency':>13s}")
    steps = []
    for name in sets:
        config = CoreConfig.load(CONFIGS / f"pendulum-2x2-{name}.json")
        e = config.engine
        d = e.ddpg
        kinds = [("pipelined", 2), *(("iterative", b) for b in bits)]
        for kind, b in kinds:
            if kind == "pipelined":
                unit = UpdateUnit(d.weight_fmt, d.grad_fmt, lr_width=e.lr_width)
                label = "pipelined"
            else:
                unit = IterativeUpdateUnit(d.weight_fmt, d.grad_fmt, lr_width=e.lr_width,
                                           bits=b)
                label = f"iterative, {b}b"
            latency = unit.latency
            r = resources(unit, "ecp5")
            print(f"{name:9s} {label:14s} {r.lut:6,d} {r.ff:6,d} {r.dsp:4d} {latency:13d}",
                  flush=True)
            engine = dataclasses.replace(e, update_kind=kind, update_bits=b)
            steps.append((name, label, step_cycles(engine)))
    print()
    print("One Adam training step of the example core (2x2 grid, one unit), cycle model:")
    print(f"{'formats':9s} {'unit':14s} {'step':>7s} {'array':>7s} {'vector':>7s} "
          f"{'update':>7s}")
    for name, label, c in steps:
        print(f"{name:9s} {label:14s} {c['cycles']:7,d} {c['array']:7,d} {c['vector']:7,d} "
              f"{c['update']:7,d}")
    print(f"total wall time {time.perf_counter() - start:.0f} s")
    print(f"reproduce: python benchmarks/bench_update.py{' --quick' if args.quick else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
