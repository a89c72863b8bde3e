"""Benchmark: sw_model.search.cost's predictions against full synthesis of whole configurations.

For each configuration (a network with a scheme and widths per layer) and mapping, the
hardware that :class:`sw_model.search.cost.CostModel` prices is built for real: on the shared
mapping
one :class:`fixar_hw.arith.row_unit.MixedRowUnit` with ``lanes`` lanes per distinct kind
``(scheme, w_bits, a_bits)``; on the pipelined mapping one per layer, with the lanes of
:meth:`~sw_model.search.cost.CostModel.allocate` (``lanes`` in all). Each engine is synthesized with
pyosys ``synth_ecp5`` (:func:`fixar_hw.flow.synth.resources`, in a child process as
``build_cost_tables.py`` does) and the counts summed. Prints measured and predicted LUTs and
DSPs and the relative errors ``(predicted - measured) / measured``, with the model's cycles
and weight bits.

The model comes from the packaged table (``sw_model/search/cost_tables.json``), measured at 2 and 8
lanes; these configurations use 16 lanes (7 with ``--quick``) and widths between the measured
ones (fixed 5, 7 and 9 bits), so they test the extrapolation in lanes and the interpolation in
widths as well as the sharing rule; the pipelined ones have engines of 1 and 15 lanes (1 and
7 with ``--quick``).

Reproduce with::

    python benchmarks/bench_cost_model.py            # add --quick for a smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_cost_tables import synth

from sw_model.search.cost import CostModel, LayerChoice, LayerShape

ACTOR = [LayerShape("fc1", 17, 400), LayerShape("fc2", 400, 300), LayerShape("fc3", 300, 6)]
CRITIC = [LayerShape("fc1", 23, 400), LayerShape("fc2", 400, 300), LayerShape("fc3", 300, 1)]

F, S = "fixed", "sp2"
CONFIGS = {
    "actor, all fixed 16/16": (ACTOR, [LayerChoice(F, 16, 16)] * 3),
    "actor, fixed 8/16 + SP2 4/8": (
        ACTOR, [LayerChoice(F, 8, 16), LayerChoice(S, 4, 8), LayerChoice(F, 8, 16)]),
    "critic, fixed 7/12 + SP2 6/12 + SP2 3/8": (
        CRITIC, [LayerChoice(F, 7, 12), LayerChoice(S, 6, 12), LayerChoice(S, 3, 8)]),
    "critic, SP2 11/16 + fixed 5/6 + fixed 9/16": (
        CRITIC, [LayerChoice(S, 11, 16), LayerChoice(F, 5, 6), LayerChoice(F, 9, 16)]),
}
QUICK = ("actor, fixed 8/16 + SP2 4/8",)
#: Configurations measured on the pipelined mapping (one engine per layer).
PIPELINED = ("actor, fixed 8/16 + SP2 4/8", "critic, fixed 7/12 + SP2 6/12 + SP2 3/8")
QUICK_PIPELINED = ("actor, fixed 8/16 + SP2 4/8",)


def engines(model: CostModel, shapes: list[LayerShape], choices: list[LayerChoice]
            ) -> list[tuple[tuple[str, int, int], int]]:
    """``(kind, lanes)`` of every engine that ``model`` prices for the configuration."""
    if model.mapping == "shared":
        return [(kind, model.lanes) for kind in dict.fromkeys(c.kind for c in choices)]
    return [(c.kind, n) for c, n in zip(choices, model.allocate(shapes), strict=True)]


def measure(units: list[tuple[tuple[str, int, int], int]]) -> tuple[int, int] | None:
    """Synthesized ``(luts, dsps)`` of the engines, summed; None if Yosys failed on one of
    them (see ``build_cost_tables.py``: an ``abc9`` assertion on some lane counts, e.g. 4 to
    6 lanes of fixed 8/16)."""
    luts = dsps = 0
    for kind, lanes in units:
        res = synth(*kind, lanes)
        if res is None:
            print(f"  synthesis of {lanes} lanes of {kind} failed (a Yosys error)",
                  file=sys.stderr)
            return None
        luts += res["lut"]
        dsps += res["dsp"]
    return luts, dsps


def _rel(pred: float, meas: float) -> str:
    return f"{(pred - meas) / meas:+.1%}" if meas else ("0" if pred == 0 else "inf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one configuration, 7 lanes")
    parser.add_argument("--repeat", type=int, default=1, help="unused; for a uniform interface")
    parser.add_argument("--lanes", type=int, default=None,
                        help="lanes per engine, or in all when pipelined (default 16, 7 with "
                             "--quick)")
    parser.add_argument("--batch", type=int, default=64, help="batch for the cycle column")
    args = parser.parse_args(argv)
    lanes = args.lanes or (7 if args.quick else 16)
    runs = [(CostModel.load(lanes=lanes), name) for name in (QUICK if args.quick else CONFIGS)]
    runs += [(CostModel.load(lanes=lanes, mapping="pipelined"), name)
             for name in (QUICK_PIPELINED if args.quick else PIPELINED)]

    print(f"CostModel vs pyosys synth_ecp5, {lanes} lanes per engine (shared) or in all "
          f"(pipelined), batch {args.batch}:")
    print(f"{'configuration':<44} {'mapping':>9} {'engines (lanes)':>16} {'LUT meas':>9} "
          f"{'LUT model':>10} {'err':>7} {'DSP meas':>9} {'DSP model':>10} {'err':>7} "
          f"{'cycles':>9} {'weight bits':>12}")
    worst = [0.0, 0.0]
    start = time.perf_counter()
    for model, name in runs:
        shapes, choices = CONFIGS[name]
        cost = model.network_cost(shapes, choices, batch=args.batch)
        units = engines(model, shapes, choices)
        measured = measure(units)
        eng = f"{len(units)} ({','.join(str(n) for _, n in units)})"
        if measured is None:
            print(f"{name:<44} {model.mapping:>9} {eng:>16} {'Yosys error':>9}")
            continue
        m_lut, m_dsp = measured
        print(f"{name:<44} {model.mapping:>9} {eng:>16} {m_lut:>9} {cost.luts:>10.0f} "
              f"{_rel(cost.luts, m_lut):>7} {m_dsp:>9} {cost.dsps:>10.1f} "
              f"{_rel(cost.dsps, m_dsp):>7} {cost.cycles:>9} {cost.mem_bits:>12}")
        worst[0] = max(worst[0], abs(cost.luts - m_lut) / m_lut)
        worst[1] = max(worst[1], abs(cost.dsps - m_dsp) / m_dsp if m_dsp else 0.0)
    print(f"largest |relative error|: LUT {worst[0]:.1%}, DSP {worst[1]:.1%}"
          f" ({time.perf_counter() - start:.1f} s of synthesis)")
    print()
    print("reproduce: python benchmarks/bench_cost_model.py" + (" --quick" if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
