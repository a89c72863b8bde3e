"""The demo's steps: train, quantize, run on the core, synthesize (:func:`run_demo`)."""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fixar_hw.apps.demo.checks import (
    Check,
    CoreRun,
    RowUnitRun,
    observations,
    run_core_check,
    run_row_unit_check,
)
from fixar_hw.apps.demo.report import fit_statement, write_report
from fixar_hw.apps.demo.settings import ENV, DemoSettings
from fixar_hw.config import CoreConfig
from sw_model.arch import ddpg_step as ds
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.msq import QuantizedMatrix, matvec, quantization_error, quantize_matrix
from sw_model.rl.ddpg import DDPGAgent, TrainResult, evaluate, train

__all__ = ["BoardFigures", "DemoResult", "MSQActor", "board_figures", "board_names",
           "msq_quantize_actor", "run_demo"]

# --- training ------------------------------------------------------------------------------

def _train(settings: DemoSettings, progress: bool) -> TrainResult:
    from tqdm import tqdm

    bar = tqdm(total=settings.steps, desc=f"training qat {ENV}", unit="step",
               disable=not progress, mininterval=0.5)
    recent: list[float] = []

    def callback(step: int, agent: DDPGAgent, finished: float | None) -> None:
        bar.update(1)
        if finished is not None:
            recent.append(finished)
            bar.set_postfix(ret=f"{np.mean(recent[-10:]):.0f}", refresh=False)

    try:
        return train(settings.ddpg, ENV, settings.steps, callback=callback)
    finally:
        bar.close()


class _Policy:
    """Enough of an agent for :func:`sw_model.rl.ddpg.evaluate`: ``policy`` and ``scale_action``."""

    def __init__(self, policy: Callable[[np.ndarray], np.ndarray], agent: DDPGAgent) -> None:
        self.policy = policy
        self.scale_action = agent.scale_action


def _float_policy(agent: DDPGAgent) -> Callable[[np.ndarray], np.ndarray]:
    """The QAT agent's weights (as reals) in a float64 actor, no activation quantization."""
    c = agent.config
    actor = {k: c.weight_fmt.to_float(v) for k, v in agent.weights["actor"].items()}
    return lambda obs: ds.float_actor_forward(actor, np.atleast_2d(obs), c.replace(
        precision="float64"))


# --- MSQ -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MSQActor:
    """The trained actor with mixed-scheme (SP2 + fixed point) weight rows.

    Layer ``k`` computes ``z = matvec(layers[k-1], x, formats[k-1], acc_formats[k-1]) +
    biases[k-1]`` (saturating), then ReLU (hidden layers) or tanh (output) into
    ``formats[k]``: the QAT agent's frozen activation formats, so every layer input is the
    16-bit code the hardware would see.

    Attributes
    ----------
    layers : tuple of QuantizedMatrix
    biases : tuple of numpy.ndarray
        Bias codes of ``acc_formats``.
    formats : tuple of FixedFormat
        ``actor.x0 .. actor.xL`` formats.
    acc_formats : tuple of FixedFormat
        ``FixedFormat(32, formats[k].frac)``: the pre-activation of layer ``k``.
    errors : tuple of float
        Relative Frobenius quantization error of each layer's weights.
    """

    layers: tuple[QuantizedMatrix, ...]
    biases: tuple[np.ndarray, ...]
    formats: tuple[FixedFormat, ...]
    acc_formats: tuple[FixedFormat, ...]
    errors: tuple[float, ...]

    def forward(self, obs: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Normalized actions ``(B, act_dim)`` of observations ``(B, obs_dim)``, and the
        codes at every layer input (``formats[k]``)."""
        x = self.formats[0].from_float(np.atleast_2d(np.asarray(obs, dtype=np.float64)))
        inputs = [x]
        n = len(self.layers)
        for k, (qm, b) in enumerate(zip(self.layers, self.biases, strict=True)):
            acc = self.acc_formats[k]
            z = matvec(qm, x, self.formats[k], acc)
            z = np.clip(z + b, acc.min_int, acc.max_int)
            y = np.tanh(acc.to_float(z)) if k == n - 1 else acc.to_float(np.maximum(z, 0))
            x = self.formats[k + 1].from_float(y)
            inputs.append(x)
        return self.formats[-1].to_float(x), inputs

    def policy(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic normalized action."""
        return np.clip(self.forward(obs)[0], -1.0, 1.0)


def msq_quantize_actor(agent: DDPGAgent, bits: int, sp2_ratio: float) -> MSQActor:
    """Quantize the actor of a fixed-point agent with :func:`sw_model.numerics.msq.quantize_matrix`.

    Parameters
    ----------
    agent : DDPGAgent
        A fixed-point (``"qat"``, ``"fixed"``, ``"fixed16"``) agent.
    bits : int
        Weight width of both schemes (2 to 11).
    sp2_ratio : float
        Share of each layer's rows that are SP2, in ``[0, 1]``.

    Raises
    ------
    TypeError, ValueError
        For a float agent or a bad ``bits``/``sp2_ratio``.
    """
    if not isinstance(agent, DDPGAgent):
        raise TypeError(f"agent must be a DDPGAgent, not {agent!r}")
    c = agent.config
    if not c.is_fixed:
        raise ValueError(f"agent must be a fixed-point agent, not {c.precision!r}")
    fmts = agent.formats
    n = len(c.hidden) + 1
    formats = tuple(fmts[f"actor.x{k}"] for k in range(n + 1))
    accs = tuple(FixedFormat(32, f.frac) for f in formats[1:])
    layers, biases, errors = [], [], []
    for k in range(1, n + 1):
        w = c.weight_fmt.to_float(agent.weights["actor"][f"l{k}.w"])
        b = c.weight_fmt.to_float(agent.weights["actor"][f"l{k}.b"])
        qm = quantize_matrix(w, bits, sp2_ratio=sp2_ratio)
        layers.append(qm)
        biases.append(accs[k - 1].from_float(b))
        errors.append(quantization_error(w, qm))
    return MSQActor(tuple(layers), tuple(biases), formats, accs, tuple(errors))



# --- the board -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BoardFigures:
    """Synthesis of the core for a board (:func:`fixar_hw.flow.build.estimate`).

    Attributes
    ----------
    board : str
    device : str
    used, capacity : dict of str to int
        ``lut``, ``ff``, ``dsp``, ``bram``.
    utilisation : dict of str to float
        ``used / capacity``.
    fits : bool
    clock_mhz : float
        The board's oscillator.
    fmax_mhz : float or None
        Placement estimate, when made.
    seconds : float
        Wall time of this call (short when the estimate came from the cache).
    predicted : bool
        ``used`` is the resource floor of a core refused before synthesis
        (:func:`fixar_hw.flow.build.floor_check`): it needs at least that.
    synth_seconds : float or None
        Wall time of the synthesis that made the figures (None when none ran).
    cached : bool
        The figures came from :func:`fixar_hw.flow.build.estimate`'s cache.
    """

    board: str
    device: str
    used: dict[str, int]
    capacity: dict[str, int]
    utilisation: dict[str, float]
    fits: bool
    clock_mhz: float
    fmax_mhz: float | None
    seconds: float
    predicted: bool = False
    synth_seconds: float | None = None
    cached: bool = False

    @property
    def frequency(self) -> tuple[float, str]:
        """``(MHz, label)``: the Fmax when known, else the board clock."""
        if self.fmax_mhz:
            return self.fmax_mhz, "placement Fmax"
        return self.clock_mhz, "board clock"


def board_names() -> list[str]:
    """Names of the boards :func:`board_figures` knows
    (:data:`fixar_hw.platforms.boards.BOARDS`)."""
    from fixar_hw.platforms.boards import BOARDS

    return sorted(BOARDS)


#: Seconds the demo allows each tool of its board step (synthesis, placement).
SYNTH_TIMEOUT = 20 * 60


def board_figures(config: CoreConfig, board: str, *, fmax: bool = False) -> BoardFigures:
    """Synthesize ``config`` for ``board`` (cached on disk by :func:`fixar_hw.flow.build.estimate`).

    Each tool may run :data:`SYNTH_TIMEOUT` seconds, and synthesis within
    :func:`fixar_hw.flow.build.synthesis_memory_limit`; beyond either it stops with a
    :class:`~fixar_hw.errors.BuildError` that says which.

    Raises
    ------
    ValueError
        For an unknown board.
    """
    from fixar_hw.flow.build import estimate
    from fixar_hw.platforms.boards import BOARDS

    if board not in BOARDS:
        raise ValueError(f"board must be one of {', '.join(sorted(BOARDS))}, not {board!r}")
    start = time.perf_counter()
    report = estimate(config, board, fmax=fmax, timeout=SYNTH_TIMEOUT)
    seconds = time.perf_counter() - start
    b = BOARDS[board]
    synth = report.seconds.get("synth")
    tools = sum(report.seconds.values())
    return BoardFigures(board, str(getattr(b, "device", "")), dict(report.used),
                        dict(report.capacity), dict(report.utilisation), bool(report.fits),
                        float(report.clock_mhz), report.fmax_mhz, seconds, report.predicted,
                        None if synth is None else float(synth),
                        bool(tools) and seconds < tools)


# --- the whole run -------------------------------------------------------------------------

@dataclass
class DemoResult:
    """Everything :func:`run_demo` measured.

    Attributes
    ----------
    settings : DemoSettings
    config : CoreConfig
    training : TrainResult
    returns : dict of str to list of float
        Noise-free evaluation returns: ``"qat"`` (the fixed-point policy), ``"float"`` (its
        weights in a float64 actor), ``"msq"`` (the MSQ actor).
    msq : MSQActor
    row_unit : RowUnitRun
    core : CoreRun
    board : BoardFigures or None
        None when not synthesized (``board_note`` says why).
    board_note : str
    seconds : dict of str to float
        Wall time of each stage.
    command : str
        The command that reproduces the run.
    board_clock_mhz : float or None
        The board's clock from :data:`fixar_hw.platforms.boards.BOARDS` (when known) for the
        projection of an unsynthesized run.
    """

    settings: DemoSettings
    config: CoreConfig
    training: TrainResult
    returns: dict[str, list[float]]
    msq: MSQActor
    row_unit: RowUnitRun
    core: CoreRun
    board: BoardFigures | None
    board_note: str
    seconds: dict[str, float] = field(default_factory=dict)
    command: str = ""
    board_clock_mhz: float | None = None

    @property
    def checks(self) -> list[Check]:
        """Every bit-exact check: the row unit's, then the core's."""
        return [self.row_unit.check, *self.core.checks]

    @property
    def ok(self) -> bool:
        """Every check compared something and found no difference."""
        return all(c.ok for c in self.checks)

    @property
    def step_cycles(self) -> int:
        """Core cycles of the last training step from ``CTRL.start``: batch DMA and program."""
        return self.core.step_counters[-1]["busy_cycles"]

    @property
    def act_cycles(self) -> int:
        """Core cycles of the last action: observation in, program, action out."""
        return self.core.act_counters[-1]["busy_cycles"]

    @property
    def projection_clock(self) -> tuple[float, str]:
        """``(MHz, label)`` of the projections: the Fmax when known, else the board clock
        (an assumed 100 MHz when the board is unknown)."""
        if self.board is not None:
            return self.board.frequency
        if self.board_clock_mhz:
            return self.board_clock_mhz, "board clock"
        return 100.0, "assumed clock"

    def throughput(self, mhz: float) -> tuple[float, float]:
        """``(training samples/s, actions/s)`` at ``mhz``: ``batch * f / step_cycles`` and
        ``f / act_cycles``."""
        f = mhz * 1e6
        return (self.settings.ddpg.batch_size * f / self.step_cycles, f / self.act_cycles)


def _command(settings: DemoSettings, out: str) -> str:
    argv = ["fixar-hw", "demo"]
    if settings.quick:
        argv.append("--quick")
    default_episodes = 3 if settings.quick else 50
    if settings.episodes != default_episodes:
        argv += ["--episodes", str(settings.episodes)]
    if settings.seed:
        argv += ["--seed", str(settings.seed)]
    if settings.board != "ulx3s-85f":
        argv += ["--board", settings.board]
    if settings.synth != (not settings.quick):
        argv.append("--synth" if settings.synth else "--no-synth")
    if settings.fmax:
        argv.append("--fmax")
    if settings.transport != ("sim" if settings.quick else "verilator"):
        argv += ["--transport", settings.transport]
    if settings.vcd is not None:
        argv += ["--vcd", settings.vcd]
    if settings.trace is not None:
        argv += ["--trace", settings.trace]
    argv += ["--out", out]
    return shlex.join(argv)


def run_demo(settings: DemoSettings, out_dir: str | os.PathLike[str], *, progress: bool = True,
             log: Callable[[str], None] | None = None) -> DemoResult:
    """Run the demo (:mod:`fixar_hw.apps.demo`) and write its report to ``out_dir``.

    Parameters
    ----------
    settings : DemoSettings
        From :func:`demo_settings`.
    out_dir : path
        Created if missing.
    progress : bool
        A progress bar (stderr) while training.
    log : callable, optional
        Called with a line for each stage.

    Returns
    -------
    DemoResult
        Check :attr:`DemoResult.ok`.
    """
    if not isinstance(settings, DemoSettings):
        raise TypeError(f"settings must be DemoSettings, not {settings!r}")
    say = log or (lambda message: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    config = settings.core_config()
    d = settings.ddpg
    sizes = "-".join(map(str, config.engine.sizes("actor")))

    t = time.perf_counter()
    say(f"[1/5] training a FIXAR-QAT DDPG agent on Pendulum: actor {sizes}, batch "
        f"{d.batch_size}, {settings.episodes} episodes ({settings.steps} steps)")
    training = _train(settings, progress)
    agent = training.agent
    seconds["training"] = time.perf_counter() - t

    t = time.perf_counter()
    say(f"[2/5] quantizing and evaluating ({settings.eval_episodes} episodes each)")
    msq = msq_quantize_actor(agent, settings.msq_bits, settings.msq_sp2_ratio)
    n_eval = settings.eval_episodes
    returns = {
        "qat": evaluate(agent, ENV, n_eval),
        "float": evaluate(_Policy(_float_policy(agent), agent), ENV, n_eval),  # type: ignore[arg-type]
        "msq": evaluate(_Policy(msq.policy, agent), ENV, n_eval),  # type: ignore[arg-type]
    }
    k = max(range(len(msq.layers)), key=lambda i: msq.layers[i].codes.size)
    xs = msq.forward(observations(settings.row_vectors, settings.seed))[1][k]
    n_fixed, n_sp2 = settings.row_lanes
    say(f"      actor layer {k + 1} on the mixed-scheme row unit ({n_fixed} fixed + {n_sp2} "
        f"SP2 lanes, {len(xs)} vectors) ...")
    row_unit = run_row_unit_check(msq.layers[k], xs, msq.formats[k], msq.acc_formats[k],
                                  n_fixed=n_fixed, n_sp2=n_sp2, layer=k + 1)
    seconds["quantization"] = time.perf_counter() - t

    t = time.perf_counter()
    where = "Verilator" if settings.transport == "verilator" else "Amaranth's simulator"
    say(f"[3/5] the core in {where}: {settings.hw_steps} training steps and "
        f"{settings.hw_actions} actions from the trained state")
    core = run_core_check(agent, config, steps=settings.hw_steps, actions=settings.hw_actions,
                          seed=settings.seed, transport=settings.transport,
                          log=lambda m: say(f"      {m}"), vcd=settings.vcd,
                          trace=settings.trace)
    seconds["hardware simulation"] = time.perf_counter() - t

    t = time.perf_counter()
    board, note = None, ""
    if settings.synth:
        say(f"[4/5] synthesizing the core for {settings.board}"
            f"{' with placement' if settings.fmax else ''} (cached) ...")
        try:
            board = board_figures(config, settings.board, fmax=settings.fmax)
            say(f"      the core {fit_statement(board)}")
        except RuntimeError as exc:  # fixar_hw.errors.BuildError: a tool failed
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            note = f"synthesis failed: {lines[0].rstrip(':')}"
            if len(lines) > 1:
                note += f" ({lines[-1].strip()})"
            say(f"      {note}")
    else:
        note = "not synthesized (--no-synth; the quick run skips synthesis)"
        say("[4/5] synthesis skipped")
    seconds["synthesis"] = time.perf_counter() - t

    say(f"[5/5] writing the report to {out}")
    from fixar_hw.platforms.boards import BOARDS

    clock = float(BOARDS[settings.board].clock_mhz) if settings.board in BOARDS else None
    result = DemoResult(settings, config, training, returns, msq, row_unit, core, board, note,
                        seconds, _command(settings, str(out_dir)), clock)
    write_report(result, out)
    return result

