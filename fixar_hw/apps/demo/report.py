"""The demo's report: ``report.md`` and its plots (:func:`write_report`), and the summary
``fixar-hw demo`` prints (:func:`format_summary`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fixar_hw.apps.demo.settings import ENV
from sw_model.numerics.fixed import FixedFormat

if TYPE_CHECKING:
    from fixar_hw.apps.demo.flow import BoardFigures, DemoResult

__all__ = ["fit_statement", "format_summary", "write_report"]

def _q(fmt: FixedFormat) -> str:
    return f"Q{fmt.width - fmt.frac}.{fmt.frac}"


def _ends(values: Sequence[float]) -> tuple[Sequence[float], Sequence[float], int]:
    """The first and last ``n`` values (``n`` up to 5, at most half of them)."""
    n = max(1, min(5, len(values) // 2))
    return values[:n], values[-n:], n


def _mean(values: Sequence[float]) -> str:
    return f"{np.mean(values):.1f}" if len(values) else "-"


def _si(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def _plot_cycles(path: Path, result: DemoResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = ("array", "vector", "update", "sequencing", "bus and DMA")
    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=100)
    rows = []
    for label, c in (("training step", result.core.step_counters[-1]),
                     ("action", result.core.act_counters[-1])):
        seq = c["cycles"] - c["array"] - c["vector"] - c["update"]
        rows.append((label, [c["array"], c["vector"], c["update"], seq,
                             c["busy_cycles"] - c["cycles"]]))
    for i, (_, values) in enumerate(rows):
        total = sum(values)
        left = 0.0
        for j, v in enumerate(values):
            ax.barh(i, 100 * v / total, left=left, color=f"C{j}",
                    label=parts[j] if i == 0 else None)
            left += 100 * v / total
    ax.set_yticks(range(len(rows)), [f"{label}\n{sum(v):,} cycles" for label, v in rows])
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the core's busy cycles (%)")
    ax.set_title("Where the cycles go (core counters, last step / action)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=5, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_utilisation(path: Path, board: BoardFigures) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("lut", "ff", "dsp", "bram") if k in board.utilisation]
    fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
    values = [100 * board.utilisation[k] for k in keys]
    ax.bar(keys, values, color=["C3" if v > 100 else "C0" for v in values])
    for i, k in enumerate(keys):
        ax.text(i, values[i], f"{board.used.get(k, 0):,} / {board.capacity.get(k, 0):,}",
                ha="center", va="bottom", fontsize=8)
    ax.axhline(100, color="k", lw=0.8)
    ax.set_ylabel("utilisation (%)")
    ax.set_title(f"FixarCore on {board.board} ({board.device})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


_NAMES = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram": "BRAM"}


def fit_statement(board: BoardFigures) -> str:
    """Whether the core fits the board, and how much of each resource is left, in a sentence:
    ``"fits the LFE5U-85F with room to spare: LUT 35 % used (54,300 free), ..."``.

    "Room to spare" means at most 75 % of every resource (LUTs, flip-flops, multipliers,
    block RAMs); a core that fits with more of any "fits, with little room", one refused by
    its resource floor "does NOT fit (known before synthesis)".
    """
    verdict, details = _fit_parts(board)
    return f"{verdict}: {details}"


def _fit_parts(board: BoardFigures) -> tuple[str, str]:
    """:func:`fit_statement`'s verdict and its resources."""
    parts = []
    for k in (k for k in _NAMES if board.capacity.get(k, 0)):
        used, cap = board.used.get(k, 0), board.capacity[k]
        left = f"{cap - used:,} free" if used <= cap else f"{used - cap:,} too many"
        parts.append(f"{_NAMES[k]} {100 * used / cap:.0f} % used ({left})")
    where = f"the {board.device}" if board.device else board.board
    if not board.fits:
        verdict = f"does NOT fit {where}" + (" (known before synthesis, from its resource "
                                              "floor)" if board.predicted else "")
    elif max(board.utilisation.values(), default=0.0) <= 0.75:
        verdict = f"fits {where} with room to spare"
    else:
        verdict = f"fits {where}, with little room"
    return verdict, ", ".join(parts)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return lines


def write_report(result: DemoResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``report.md``, the plots, ``returns.csv``, ``weights.fximg`` and
    ``core_config.json`` to ``out_dir``; returns the report's path."""
    from fixar_hw.apps.train import plot_returns, write_returns_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s, d, r = result.settings, result.settings.ddpg, result.training
    e = result.config.engine
    write_returns_csv(out / "returns.csv", r)
    plot_returns(out / "learning_curve.png", r,
                 f"FIXAR-QAT DDPG, Pendulum, hidden {'-'.join(map(str, d.hidden))}, "
                 f"seed {d.seed}")
    r.agent.to_image({"env": ENV, "steps": str(s.steps)}).save(out / "weights.fximg")
    (out / "core_config.json").write_text(result.config.to_json() + "\n")
    _plot_cycles(out / "cycles.png", result)
    if result.board is not None:
        _plot_utilisation(out / "utilisation.png", result.board)

    core = result.core
    L = [f"# fixar-hw demo{' (quick)' if s.quick else ''}", "",
         f"Reproduce: `{result.command}`", "",
         f"Result: **{'all bit-exact checks passed' if result.ok else 'BIT-EXACT CHECKS FAILED'}"
         f"** ({sum(c.compared for c in result.checks):,} values compared).", "",
         "## Configuration", ""]
    L += _table(("what", "value"), [
        ("environment", f"Pendulum ({s.episodes} episodes, {s.steps:,} steps)"),
        ("actor / critic", f"{'-'.join(map(str, e.sizes('actor')))} / "
                           f"{'-'.join(map(str, e.sizes('critic')))}"),
        ("precision", f"FIXAR QAT: {d.act_fmt.width}-bit activations for {d.qat_delay} "
                      f"training steps, then {d.act16_fmt.width}-bit"),
        ("weights, gradients", f"{_q(d.weight_fmt)}, {_q(d.grad_fmt)}"),
        ("batch, warm-up, seed", f"{d.batch_size}, {d.warmup_steps}, {d.seed}"),
        ("core", f"{e.size}x{e.size} PEs x {e.cores} cores, {e.update_units} {e.update_kind} "
                 f"update units"
                 + (f" ({e.update_bits} bits a cycle)" if e.update_kind == "iterative" else "")
                 + f", config id 0x{result.config.config_id:08x} (`core_config.json`)"),
        ("MSQ actor", f"{s.msq_bits}-bit weights, {s.msq_sp2_ratio:.0%} SP2 rows per layer"),
    ])
    first, last, n_ends = _ends(r.episode_returns)
    rets = r.episode_returns
    L += ["", "## Learning curve", "", "![learning curve](learning_curve.png)", "",
          f"{len(rets)} episodes, {r.train_steps:,} training steps in "
          f"{r.seconds:.1f} s. Mean return of the first {n_ends} episodes {_mean(first)}, "
          f"of the last {n_ends} {_mean(last)} (`returns.csv`; trained agent in "
          "`weights.fximg`).",
          "", "## Returns of the trained policy", "",
          f"Noise-free, {s.eval_episodes} episodes each (same initial states):", ""]
    names = {"qat": f"QAT fixed point ({d.act16_fmt.width}-bit activations, "
                    f"{_q(d.weight_fmt)} weights)",
             "float": "same weights, float64 actor",
             "msq": f"MSQ actor ({s.msq_bits}-bit SP2/fixed rows, 16-bit activations)"}
    L += _table(("policy", "mean return", "min", "max"),
                [(names[k], _mean(v), f"{min(v):.1f}", f"{max(v):.1f}")
                 for k, v in result.returns.items()])
    m = result.msq
    L += ["", "MSQ layers: " + "; ".join(
        f"l{k + 1} {qm.shape[0]}x{qm.shape[1]}, {int(qm.sp2_rows.sum())} SP2 rows, "
        f"error {err:.2%}" for k, (qm, err) in enumerate(zip(m.layers, m.errors, strict=True)))
        + " (relative Frobenius error of the weights).", ""]
    ru = result.row_unit
    tname = "VerilatorTransport" if core.transport == "verilator" else "SimTransport"
    L += ["## Bit-exact checks", "",
          f"Actor layer {ru.layer} ({ru.shape[0]}x{ru.shape[1]}, {ru.sp2_rows} SP2 rows) on "
          f"`MixedRowUnit` ({ru.n_fixed} fixed + {ru.n_sp2} SP2 lanes), {ru.vectors} input "
          f"vectors, {ru.cycles:,} cycles, against `sw_model.numerics.msq.matvec`. The core "
          f"(`FixarDriver` over `{tname}`) loaded with the trained state, "
          f"{len(core.step_counters)} training steps on replay batches and "
          f"{len(core.act_counters)} noisy actions, against `sw_model` "
          f"(`fixed_train_step`, `DDPGAgent.explore`, `EngineDescription.cycles`); "
          f"{core.sim_cycles:,} cycles simulated in {core.seconds:.0f} s.", ""]
    L += _table(("check", "values compared", "mismatches", "result"),
                [(c.name, f"{c.compared:,}", c.mismatched,
                  "pass" if c.ok else f"FAIL: {c.detail or 'nothing compared'}")
                 for c in result.checks])
    sc, ac = core.step_counters[-1], core.act_counters[-1]
    L += ["", "## Cycles", "", "![cycles](cycles.png)", ""]
    L += _table(("", "training step", "action"), [
        ("engine cycles (counter `cycles`)", f"{sc['cycles']:,}", f"{ac['cycles']:,}"),
        ("predicted (`EngineDescription.cycles`)", f"{core.step_predicted['cycles']:,}",
         f"{core.act_predicted['cycles']:,}"),
        ("array cycles (counter `array`)", f"{sc['array']:,}", f"{ac['array']:,}"),
        ("array cycle model (`program_cycles`)", f"{core.step_model['array_cycles']:,}",
         f"{core.act_model['array_cycles']:,}"),
        ("vector / update cycles", f"{sc['vector']:,} / {sc['update']:,}",
         f"{ac['vector']:,} / {ac['update']:,}"),
        ("busy cycles incl. DMA (counter `busy_cycles`)", f"{sc['busy_cycles']:,}",
         f"{ac['busy_cycles']:,}"),
        ("useful MACs / PE utilisation of the engine cycles",
         f"{core.step_model['useful_macs']:,} / "
         f"{core.step_model['useful_macs'] / (sc['cycles'] * e.size ** 2 * e.cores):.1%}",
         f"{core.act_model['useful_macs']:,} / "
         f"{core.act_model['useful_macs'] / (ac['cycles'] * e.size ** 2 * e.cores):.1%}"),
    ])
    L += ["", f"## Board: {s.board}", ""]
    b = result.board
    if b is None:
        L += [f"Utilisation: {result.board_note}.", ""]
        mhz, label = result.projection_clock
        tp, ips = result.throughput(mhz)
        L += [f"Projected at {mhz:g} MHz ({label}): {_si(tp)} training samples/s "
              f"(batch {d.batch_size} x f / {result.step_cycles:,} cycles per step), "
              f"{_si(ips)} actions/s (f / {result.act_cycles:,} cycles per action).", ""]
    else:
        L += ["![utilisation](utilisation.png)", ""]
        L += _table(("resource", "at least" if b.predicted else "used", "available",
                     "utilisation"),
                    [(k, f"{b.used.get(k, 0):,}", f"{b.capacity.get(k, 0):,}",
                      f"{b.utilisation.get(k, 0.0):.1%}")
                     for k in ("lut", "ff", "dsp", "bram") if k in b.capacity])
        if b.predicted:
            L += ["", "Refused before synthesis: the core's resource floor (memories written "
                  "through several ports, pipelined update units; `fixar_hw.flow.floor`) is "
                  "beyond the device, so no synthesis was run."]
        verdict, details = _fit_parts(b)
        L += ["", f"**The core {verdict}**: {details}. "
              f"{_synth_time(b).capitalize() + '. ' if _synth_time(b) else ''}Board clock "
              f"{b.clock_mhz:g} MHz; placement Fmax "
              f"{f'{b.fmax_mhz:.1f} MHz' if b.fmax_mhz else 'not estimated (add --fmax)'}.", ""]
        clocks = [b.frequency]
        if b.fmax_mhz:
            clocks.append((b.clock_mhz, "board clock"))
        for mhz, label in clocks:
            tp, ips = result.throughput(mhz)
            L += [f"Projected at {mhz:.1f} MHz ({label}): **{_si(tp)} training samples/s** "
                  f"(batch {d.batch_size} x f / {result.step_cycles:,} cycles per step), "
                  f"**{_si(ips)} actions/s** (f / {result.act_cycles:,} cycles per action).", ""]
        L += ["Cycles are the core's own (`busy_cycles`: DMA of the batch or observation and the "
              "program); the host's time between operations is not included.", ""]
    L += ["## Wall time", ""]
    L += _table(("stage", "seconds"), [(k, f"{v:.1f}") for k, v in result.seconds.items()])
    L += [""]
    path = out / "report.md"
    path.write_text("\n".join(L))
    return path


def _synth_time(board: BoardFigures) -> str:
    """``"synthesized in 175 s (read from the cache)"``, or ``""`` when nothing was
    synthesized."""
    if board.predicted or board.synth_seconds is None:
        return ""
    return (f"synthesized in {board.synth_seconds:.0f} s"
            f"{' (read from the cache)' if board.cached else ''}")


def format_summary(result: DemoResult) -> str:
    """A short plain-text summary of a demo run (what ``fixar-hw demo`` prints)."""
    s, r, d = result.settings, result.training, result.settings.ddpg
    rets = r.episode_returns
    first, last, n = _ends(rets)
    lines = [
        f"trained {len(rets)} episodes ({r.train_steps:,} QAT training steps, {r.seconds:.0f} s):"
        f" return {_mean(first)} (first {n}) -> {_mean(last)} (last {n})",
        "evaluation (no noise): " + ", ".join(
            f"{k} {_mean(v)}" for k, v in result.returns.items()),
    ]
    n = sum(c.compared for c in result.checks)
    bad = [c for c in result.checks if not c.ok]
    lines.append(f"bit-exact checks: {len(result.checks) - len(bad)}/{len(result.checks)} "
                 f"passed, {n:,} values compared")
    for c in bad:
        lines.append(f"  MISMATCH {c.name}: {c.detail or 'nothing compared'}")
    sc, ac = result.core.step_counters[-1], result.core.act_counters[-1]
    lines.append(f"cycles: training step {sc['cycles']:,} engine (predicted "
                 f"{result.core.step_predicted['cycles']:,}), {sc['busy_cycles']:,} with DMA; "
                 f"action {ac['cycles']:,} (predicted {result.core.act_predicted['cycles']:,}),"
                 f" {ac['busy_cycles']:,} with DMA")
    b = result.board
    if b is None:
        mhz, label = result.projection_clock
        tp, ips = result.throughput(mhz)
        lines.append(f"board {s.board}: {result.board_note}; at {mhz:g} MHz ({label}): "
                     f"{_si(tp)} training samples/s, {_si(ips)} actions/s")
    else:
        mhz, label = b.frequency
        tp, ips = result.throughput(mhz)
        lines.append(f"board {b.board}: the core {fit_statement(b)}")
        synth = _synth_time(b)
        lines.append(f"  {synth + '; ' if synth else ''}at {mhz:.0f} MHz ({label}): {_si(tp)} "
                     f"training samples/s, {_si(ips)} actions/s (batch {d.batch_size})")
    return "\n".join(lines)
