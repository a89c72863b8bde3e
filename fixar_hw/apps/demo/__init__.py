"""The end-to-end demo: train a FIXAR-QAT DDPG agent, quantize it, run it on the simulated core.

``fixar-hw demo`` (:func:`run_demo`) goes through the whole flow the library is for:

1. **Train** a DDPG agent on Pendulum in NumPy with FIXAR quantization-aware training
   (:func:`sw_model.rl.ddpg.train`, ``precision="qat"``): 32-bit activations while their ranges
   are tracked, then frozen 16-bit activation formats (:mod:`sw_model.numerics.qat`).
2. **Quantize**: the QAT agent is already fixed point (its weight image, :mod:`sw_model.rl.image`);
   its actor is also quantized row by row with mixed schemes (:mod:`sw_model.numerics.msq`: SP2
   rows and
   fixed-point rows, per-row scales). The QAT policy, the same weights in float64 and the MSQ
   actor are evaluated without noise. One MSQ actor layer runs on the mixed-scheme row unit
   (:class:`fixar_hw.arith.row_unit.MixedRowUnit`) in simulation and is compared with
   :func:`sw_model.numerics.msq.matvec` (``==``).
3. **Hardware**: a :class:`~fixar_hw.soc.core.FixarCore` built for the trained networks runs
   behind its buses (:class:`fixar_hw.host.driver.FixarDriver`) in Amaranth's simulator
   (:class:`~fixar_hw.sim.transport.SimTransport`, the quick run) or, for the full run's larger
   networks, as its exported Verilog compiled by Verilator
   (:class:`~fixar_hw.sim.core_verilator.VerilatorTransport`, a few hundred times faster; the
   repository's tests hold the two equal). It is loaded with the trained state, runs training
   steps on batches from the agent's replay buffer and noisy actions, and everything read back
   is compared with the NumPy golden model (``==``): networks, targets, Adam's moments, step
   count, actions (:func:`sw_model.arch.ddpg_step.fixed_train_step` through
   :meth:`sw_model.rl.ddpg.DDPGAgent.train_step` and :meth:`~sw_model.rl.ddpg.DDPGAgent.explore`),
   and the engine's cycle counters against the exact cycle model
   (:meth:`fixar_hw.train.description.EngineDescription.cycles`).
4. **Board**: the same :class:`~fixar_hw.config.CoreConfig` is synthesized for a board
   (:func:`fixar_hw.flow.build.estimate`): utilisation, and projected training samples/s
   (``batch * f / cycles per step``) and actions/s (``f / cycles per action``) at the
   placement Fmax when known, else at the board's clock.
5. **Report**: ``report.md``, ``learning_curve.png``, ``cycles.png``, ``utilisation.png`` (when
   synthesized), ``returns.csv``, ``weights.fximg`` and ``core_config.json`` in the output
   directory, and a short summary (:func:`format_summary`).

Any difference in a bit-exact check makes :attr:`DemoResult.ok` false (``fixar-hw demo`` then
exits with status 1 and prints what differed).

The modules: :mod:`~fixar_hw.apps.demo.settings` (the sizes of a run),
:mod:`~fixar_hw.apps.demo.flow` (the steps and :func:`run_demo`),
:mod:`~fixar_hw.apps.demo.checks` (the bit-exact comparisons with the golden model) and
:mod:`~fixar_hw.apps.demo.report` (``report.md``, the plots and the summary).
"""

from fixar_hw.apps.demo.checks import (
    Check,
    CoreRun,
    RowUnitRun,
    compare,
    run_core_check,
    run_row_unit_check,
)
from fixar_hw.apps.demo.flow import (
    BoardFigures,
    DemoResult,
    MSQActor,
    board_figures,
    board_names,
    msq_quantize_actor,
    run_demo,
)
from fixar_hw.apps.demo.report import fit_statement, format_summary, write_report
from fixar_hw.apps.demo.settings import ENV, DemoSettings, demo_settings

__all__ = [
    "ENV",
    "BoardFigures",
    "Check",
    "CoreRun",
    "DemoResult",
    "DemoSettings",
    "MSQActor",
    "RowUnitRun",
    "board_figures",
    "board_names",
    "compare",
    "demo_settings",
    "fit_statement",
    "format_summary",
    "msq_quantize_actor",
    "run_core_check",
    "run_demo",
    "run_row_unit_check",
    "write_report",
]
