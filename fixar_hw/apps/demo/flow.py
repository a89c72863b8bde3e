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
   (:class:`~fixar_hw.host.driver.SimTransport`, the quick run) or, for the full run's larger
   networks, as its exported Verilog compiled by Verilator
   (:class:`~fixar_hw.sim.core_verilator.VerilatorTransport`, a few hundred times faster; the
   repository's tests hold the two equal). It is loaded with the trained state, runs training
   steps on batches from the agent's replay buffer and noisy actions, and everything read back
   is compared with the NumPy golden model (``==``): networks, targets, Adam's moments, step
   count, actions (:func:`sw_model.arch.ddpg_step.fixed_train_step` through
   :meth:`sw_model.rl.ddpg.DDPGAgent.train_step` and :meth:`~sw_model.rl.ddpg.DDPGAgent.explore`),
   and the engine's cycle counters against the exact cycle model
   (:meth:`fixar_hw.train.engine.TrainingEngine.cycles`).
4. **Board**: the same :class:`~fixar_hw.config.CoreConfig` is synthesized for a board
   (:func:`fixar_hw.flow.build.estimate`): utilisation, and projected training samples/s
   (``batch * f / cycles per step``) and actions/s (``f / cycles per action``) at the
   placement Fmax when known, else at the board's clock.
5. **Report**: ``report.md``, ``learning_curve.png``, ``cycles.png``, ``utilisation.png`` (when
   synthesized), ``returns.csv``, ``weights.fximg`` and ``core_config.json`` in the output
   directory, and a short summary (:func:`format_summary`).

Any difference in a bit-exact check makes :attr:`DemoResult.ok` false (``fixar-hw demo`` then
exits with status 1 and prints what differed).
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fixar_hw.config import CoreConfig
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.msq import QuantizedMatrix, matvec, quantization_error, quantize_matrix
from sw_model.numerics.prng import seed_state
from sw_model.rl.ddpg import DDPGAgent, DDPGConfig, TrainResult, evaluate, train
from sw_model.rl.envs import make

__all__ = [
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
    "format_summary",
    "msq_quantize_actor",
    "run_core_check",
    "run_demo",
    "run_row_unit_check",
    "write_report",
]

ENV = "pendulum"
#: Pendulum's sizes (observation, action) and episode length.
OBS_DIM, ACT_DIM, EPISODE_STEPS = 3, 1, 200


# --- settings ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoSettings:
    """Everything that sizes one demo run (:func:`demo_settings` picks them).

    Attributes
    ----------
    quick : bool
        The reduced run (CI).
    episodes : int
        Training episodes (``EPISODE_STEPS`` environment steps each).
    ddpg : DDPGConfig
        The agent (``precision="qat"``).
    eval_episodes : int
        Episodes of each noise-free evaluation.
    msq_bits : int
        Weight width of the MSQ actor (both schemes).
    msq_sp2_ratio : float
        Share of each layer's rows that are SP2.
    row_lanes : tuple of (int, int)
        ``(n_fixed, n_sp2)`` lanes of the simulated row unit.
    row_vectors : int
        Input vectors of the row-unit check.
    core_size, core_cores, update_units : int
        PE grid side, AAP cores and update units of the core.
    hw_steps, hw_actions : int
        Training steps and noisy actions run on the simulated core.
    seed : int
    board : str
    synth : bool
        Synthesize for the board (:func:`fixar_hw.flow.build.estimate`).
    fmax : bool
        Also place and route for an Fmax estimate.
    transport : {"sim", "verilator"}
        Where the core runs: Amaranth's simulator (:class:`~fixar_hw.host.driver.SimTransport`)
        or its exported Verilog compiled by Verilator
        (:class:`~fixar_hw.sim.core_verilator.VerilatorTransport`).
    """

    quick: bool
    episodes: int
    ddpg: DDPGConfig
    eval_episodes: int
    msq_bits: int
    msq_sp2_ratio: float
    row_lanes: tuple[int, int]
    row_vectors: int
    core_size: int
    core_cores: int
    update_units: int
    hw_steps: int
    hw_actions: int
    seed: int
    board: str
    synth: bool
    fmax: bool
    transport: str = "sim"

    @property
    def steps(self) -> int:
        """Environment steps of the training run."""
        return self.episodes * EPISODE_STEPS

    def core_config(self) -> CoreConfig:
        """The core built for the trained networks."""
        engine = en.EngineConfig(self.ddpg, OBS_DIM, ACT_DIM, size=self.core_size,
                                 cores=self.core_cores, update_units=self.update_units)
        return CoreConfig(engine, dma_addr_width=24)


def _check_int(value: object, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be at least {lo}, not {value!r}")
    return value


TRANSPORTS = ("sim", "verilator")


def demo_settings(*, quick: bool = False, episodes: int | None = None, seed: int = 0,
                  board: str = "ulx3s-85f", synth: bool | None = None,
                  fmax: bool = False, transport: str | None = None) -> DemoSettings:
    """The demo's sizes.

    Full run: actor 3-64-64-1 and critic 4-64-64-1, batch 64, 50 episodes (10,000 environment
    steps: Pendulum is balanced after about 30), a 4x4 PE grid with 2 cores and 4 update
    units, 10 training steps and 10 actions on the core compiled by Verilator (a step is about
    10^5 cycles: Amaranth's simulator, at a few hundred cycles per second for this core, would
    take many minutes per step; without Verilator the run falls back to it with 2 steps and
    2 actions). Quick run (``quick=True``): 3-8-1 / 4-8-1, batch 8, 3 episodes, a 2x2 grid
    with 2 cores, 2 steps and 2 actions in Amaranth's simulator, no synthesis unless
    ``synth=True``.

    The warm-up (random actions) is a fifth of the run, at most 1000 steps, and the QAT delay
    a third of the remaining steps, at most 3000, so the 16-bit formats are frozen before the
    hardware takes over.

    Parameters
    ----------
    quick : bool
    episodes : int, optional
        Training episodes (default 50, quick 3).
    seed : int
        Seeds training, replay sampling on the core and the noise.
    board : str
        A key of :data:`fixar_hw.platforms.boards.BOARDS`.
    synth : bool, optional
        Synthesize for the board (default: not in quick mode).
    fmax : bool
        Also estimate Fmax by placement (slow).
    transport : {"sim", "verilator"}, optional
        Where the core runs (default: ``"sim"`` in quick mode, else ``"verilator"`` when
        Verilator is installed).

    Raises
    ------
    TypeError, ValueError
        Naming the bad parameter.
    """
    if episodes is not None:
        _check_int(episodes, "episodes", 1)
    _check_int(seed, "seed", 0)
    if not isinstance(board, str) or not board:
        raise ValueError(f"board must be a board name, not {board!r}")
    if synth is None:
        synth = not quick
    if transport is None:
        from fixar_hw.sim.core_verilator import VerilatorTransport

        transport = "verilator" if not quick and VerilatorTransport.available() else "sim"
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not "
                         f"{transport!r}")
    if quick:
        episodes = episodes or 3
        hidden, batch = (8,), 8
    else:
        episodes = episodes or 50
        hidden, batch = (64, 64), 64
    steps = episodes * EPISODE_STEPS
    warmup = max(batch, min(1000, steps // 5))
    delay = max(1, min(3000, (steps - warmup) // 3))
    ddpg = DDPGConfig(hidden=hidden, precision="qat", batch_size=batch,
                      buffer_size=max(batch, min(100_000, steps)), warmup_steps=warmup,
                      qat_delay=delay, seed=seed)
    if quick:
        return DemoSettings(True, episodes, ddpg, 2, 8, 0.5, (2, 2), 2, 2, 2, 4, 2, 2, seed,
                            board, bool(synth), fmax, transport)
    n = 10 if transport == "verilator" else 2
    return DemoSettings(False, episodes, ddpg, 10, 8, 0.5, (4, 4), 4, 4, 2, 4, n, n, seed,
                        board, bool(synth), fmax, transport)


# --- the checker ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """One bit-exact comparison.

    Attributes
    ----------
    name : str
    compared : int
        Values compared.
    mismatched : int
        Values that differ (a missing key or a shape difference counts as one).
    detail : str
        The first difference ("" if none).
    """

    name: str
    compared: int
    mismatched: int
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Something was compared and nothing differed."""
        return self.compared > 0 and self.mismatched == 0


def _flatten(value: Any, path: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(value, Mapping):
        for key in value:
            _flatten(value[key], f"{path}.{key}" if path else str(key), out)
    else:
        out[path] = np.asarray(value)


def compare(name: str, got: Any, want: Any) -> Check:
    """Compare a hardware result with the golden model's, value by value, with ``==``.

    ``got`` and ``want`` are integers, arrays or (nested) mappings of them; mappings must have
    the same keys and arrays the same shapes.

    Parameters
    ----------
    name : str
        What is compared (for the report).
    got, want
        The hardware's and the golden model's results.

    Returns
    -------
    Check
    """
    g: dict[str, np.ndarray] = {}
    w: dict[str, np.ndarray] = {}
    _flatten(got, "", g)
    _flatten(want, "", w)
    compared = mismatched = 0
    details: list[str] = []
    for key in sorted(set(g) | set(w), key=str):
        where = f"{name}[{key}]" if key else name
        if key not in g or key not in w:
            mismatched += 1
            details.append(f"{where} is {'missing' if key not in g else 'unexpected'}")
            continue
        a, b = g[key], w[key]
        if a.shape != b.shape:
            mismatched += 1
            details.append(f"{where} has shape {a.shape}, the golden model {b.shape}")
            continue
        compared += b.size
        diff = a != b
        n = int(np.count_nonzero(diff))
        if n:
            mismatched += n
            idx = tuple(int(i) for i in np.argwhere(diff)[0]) if diff.ndim else ()
            at = f" at {idx}" if idx else ""
            details.append(f"{where}{at} is {np.asarray(a[idx]).item()!r}, the golden model "
                           f"{np.asarray(b[idx]).item()!r} "
                           f"({n} of {b.size} differ)")
    return Check(name, compared, mismatched, details[0] if details else "")


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


@dataclass(frozen=True)
class RowUnitRun:
    """The MSQ layer on :class:`~fixar_hw.arith.row_unit.MixedRowUnit`.

    Attributes
    ----------
    layer : int
        Actor layer (1-based).
    shape : tuple of (int, int)
    sp2_rows : int
    n_fixed, n_sp2 : int
        Lanes of the unit.
    vectors : int
    cycles : int
        Simulated cycles until the last row result.
    check : Check
    """

    layer: int
    shape: tuple[int, int]
    sp2_rows: int
    n_fixed: int
    n_sp2: int
    vectors: int
    cycles: int
    check: Check


def run_row_unit_check(qm: QuantizedMatrix, xs: np.ndarray, x_fmt: FixedFormat,
                       out_fmt: FixedFormat, *, n_fixed: int, n_sp2: int, layer: int = 1
                       ) -> RowUnitRun:
    """Run ``qm`` against every vector of ``xs`` on a simulated row unit; compare with
    :func:`sw_model.numerics.msq.matvec` (``==``).

    Parameters
    ----------
    qm : QuantizedMatrix
    xs : numpy.ndarray of int, shape (vectors, cols)
        ``x_fmt`` codes.
    x_fmt, out_fmt : FixedFormat
    n_fixed, n_sp2 : int
        Lanes of the unit (each at least 1).
    layer : int
        For the report only.
    """
    from fixar_hw.arith.row_unit import MixedRowUnit, pass_columns, plan_passes
    from fixar_hw.sim.testing import simulate_stream

    xs = np.atleast_2d(np.asarray(xs, dtype=np.int64))
    rows, cols = qm.shape
    unit = MixedRowUnit(x_fmt, qm.sp2_fmt, qm.fix_fmt, qm.alpha_fmt, out_fmt, n_fixed=n_fixed,
                        n_sp2=n_sp2, max_cols=cols)
    passes = plan_passes(qm.sp2_rows, n_fixed, n_sp2)
    jobs = [(v, p) for v in range(len(xs)) for p in passes]
    inputs = [payload for v, p in jobs
              for payload in pass_columns(qm, xs[v].tolist(), p, n_fixed)]
    outputs, cycles = simulate_stream(unit, inputs, len(jobs) * unit.n_lanes)
    got = np.zeros((len(xs), rows), dtype=np.int64)
    slots = [(v, row) for v, p in jobs for row in p.rows]
    for (v, row), out in zip(slots, outputs, strict=True):
        if row is not None:
            got[v, row] = out.value
    want = matvec(qm, xs, x_fmt, out_fmt)
    check = compare(f"row unit, actor layer {layer}", got, want)
    return RowUnitRun(layer, (rows, cols), int(qm.sp2_rows.sum()), n_fixed, n_sp2, len(xs),
                      cycles, check)


# --- the core --------------------------------------------------------------------------------

@dataclass(frozen=True)
class CoreRun:
    """Training steps and actions on the simulated core, checked against the golden model.

    Attributes
    ----------
    checks : list of Check
    step_counters : list of dict
        The core's counters after each training step.
    step_predicted : dict of str to int
        :meth:`fixar_hw.train.engine.TrainingEngine.cycles` of the step program.
    step_model : dict of str to int
        :func:`sw_model.arch.engine.program_cycles` of the step program (array cycles, useful MACs).
    act_counters : list of dict
    act_predicted, act_model : dict of str to int
        The same for the action program.
    sim_cycles : int
        Clock cycles simulated (load, steps, actions, read-back).
    seconds : float
    transport : str
        ``"sim"`` or ``"verilator"``.
    """

    checks: list[Check]
    step_counters: list[dict[str, int]]
    step_predicted: dict[str, int]
    step_model: dict[str, int]
    act_counters: list[dict[str, int]]
    act_predicted: dict[str, int]
    act_model: dict[str, int]
    sim_cycles: int
    seconds: float
    transport: str = "sim"


def _golden_copy(agent: DDPGAgent, seed: int) -> DDPGAgent:
    """A NumPy agent with ``agent``'s networks, optimizer state and replay buffer, a fresh
    sampling generator and its noise seeded like the core (``seed_state(seed)``)."""
    c = agent.config
    sw = DDPGAgent(c, agent.obs_dim, agent.act_dim, agent.action_low, agent.action_high)
    sw.weights = {net: {k: v.copy() for k, v in p.items()} for net, p in agent.weights.items()}
    sw.targets = {net: {k: v.copy() for k, v in p.items()} for net, p in agent.targets.items()}
    sw.opt = agent.opt
    sw.buffer = agent.buffer
    sw.rng = np.random.default_rng([seed, 2])
    sw.noise_state = seed_state(seed)
    return sw


def _observations(n: int, seed: int) -> np.ndarray:
    """``n`` Pendulum observations along a random-action trajectory."""
    env = make(ENV, seed=seed + 1)
    rng = np.random.default_rng([seed, 3])
    obs = [env.reset()]
    while len(obs) < n:
        o, _, terminated, truncated = env.step(rng.uniform(env.action_low, env.action_high))
        obs.append(env.reset() if terminated or truncated else o)
    return np.array(obs[:n])


def _array_check(what: str, counters: Mapping[str, int], config: en.EngineConfig,
                 program: Sequence[Any]) -> Check:
    """The ``array`` counter against :func:`sw_model.arch.engine.program_cycles`: the cycle
    model's array cycles plus 2 per array operation (command transfer and settle)."""
    ops = sum(isinstance(op, en.ArrayOp) for op in program)
    want = en.program_cycles(config, program)["array_cycles"] + 2 * ops
    return compare(f"{what} array cycles vs program_cycles", counters["array"], want)


def _state_dict(weights: ds.Weights, targets: ds.Weights, opt: ds.OptState) -> dict[str, Any]:
    return {"weights": weights, "targets": targets, "adam m": opt.m, "adam v": opt.v}


def run_core_check(agent: DDPGAgent, config: CoreConfig, *, steps: int, actions: int,
                   seed: int = 0, transport: str = "sim",
                   log: Callable[[str], None] | None = None) -> CoreRun:
    """Load ``agent``'s trained state into a simulated core, run ``steps`` training steps and
    ``actions`` noisy actions, and compare everything with the golden model.

    The batches come from the agent's replay buffer, the observations from Pendulum. The
    golden model is a copy of the agent (:meth:`sw_model.rl.ddpg.DDPGAgent.train_step`, which
    runs :func:`sw_model.arch.ddpg_step.fixed_train_step`, and
    :meth:`~sw_model.rl.ddpg.DDPGAgent.explore`); the counters are compared with
    :meth:`fixar_hw.train.engine.TrainingEngine.cycles` of the program each step ran.

    Parameters
    ----------
    agent : DDPGAgent
        A fixed-point agent with the sizes of ``config`` (it is not modified).
    config : CoreConfig
    steps, actions : int
        At least 1 each.
    seed : int
        Seeds batch sampling and the exploration noise (of both sides).
    transport : {"sim", "verilator"}
        :class:`~fixar_hw.host.driver.SimTransport` or
        :class:`~fixar_hw.sim.core_verilator.VerilatorTransport`.
    log : callable, optional
        Called with progress messages.

    Raises
    ------
    TypeError, ValueError
        For a bad argument, or an agent whose QAT ranges are being tracked (the core's range
        registers cannot be loaded).
    """
    from fixar_hw.host.driver import FixarDriver, SimTransport

    if not isinstance(agent, DDPGAgent):
        raise TypeError(f"agent must be a DDPGAgent, not {agent!r}")
    if not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig, not {config!r}")
    _check_int(steps, "steps", 1)
    _check_int(actions, "actions", 1)
    _check_int(seed, "seed", 0)
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not "
                         f"{transport!r}")
    e = config.engine
    cfg = e.ddpg
    if agent.config != cfg or (agent.obs_dim, agent.act_dim) != (e.obs_dim, e.act_dim):
        raise ValueError("agent must have the configuration and sizes of the core")
    if cfg.precision == "qat" and agent.opt.act16 is None and agent.opt.ranges:
        raise ValueError("agent is tracking QAT ranges; the core's range registers start "
                         "empty: train past qat_delay first")
    say = log or (lambda message: None)
    start = time.perf_counter()
    sw = _golden_copy(agent, seed)
    grid = f"{e.size}x{e.size} PEs x {e.cores} cores"
    if transport == "verilator":
        from fixar_hw.sim.core_verilator import VerilatorTransport

        say(f"building the core ({grid}) with Verilator (cached after the first build) ...")
        bus: Any = VerilatorTransport(config)
    else:
        say(f"elaborating the core ({grid}) for Amaranth's simulator ...")
        bus = SimTransport(config)
    drv = FixarDriver(bus, config)
    say("loading the trained state ...")
    drv.load_state(en.load_state(e, sw.weights, sw.targets, sw.opt), seed=seed)
    checks = [compare("state loaded and read back", _state_dict(*drv.read_state()),
                      _state_dict(sw.weights, sw.targets, sw.opt))]
    step_counters, counter_got, counter_want, range_got, range_want = [], {}, {}, {}, {}
    step_program = None
    for k in range(steps):
        batch = sw.sample()
        fmts = ds.activation_formats(cfg, sw.opt)
        tracking = cfg.precision == "qat" and sw.opt.act16 is None
        step_program = en.compile_step(e, fmts, tracking=tracking)
        say(f"training step {k + 1}/{steps} on the core ...")
        counters = drv.train_step(fmts, tracking=tracking, batch=batch)
        sw.train_step(batch)
        predicted = drv.engine.cycles(step_program)
        step_counters.append(counters)
        counter_got[f"step {k + 1}"] = {n: counters[n] for n in predicted}
        counter_want[f"step {k + 1}"] = predicted
        if tracking:
            range_got[f"step {k + 1}"] = {p: np.array(r) for p, r in drv.ranges().items()}
            range_want[f"step {k + 1}"] = {p: np.array(r) for p, r in sw.opt.ranges.items()}
    weights, targets, opt = drv.read_state()
    got = _state_dict(weights, targets, opt)
    want = _state_dict(sw.weights, sw.targets, sw.opt)
    for key in got:
        checks.append(compare(f"{key} after {steps} training steps", got[key], want[key]))
    checks.append(compare("step counter", opt.step, sw.opt.step))
    checks.append(compare("training-step counters vs cycle model", counter_got, counter_want))
    checks.append(_array_check("training step", step_counters[-1], e, step_program))
    if range_want:
        checks.append(compare("QAT ranges", range_got, range_want))
    obs = _observations(actions, seed)
    fmts = sw.formats
    act_program = en.compile_act(e, fmts)
    act_got, act_want, act_counters, act_cgot, act_cwant = [], [], [], {}, {}
    act_predicted = drv.engine.cycles(act_program)
    for k, o in enumerate(obs):
        say(f"action {k + 1}/{actions} on the core ...")
        x = cfg.act_fmt.from_float(o)
        act_got.append(drv.act(x, fmts))
        act_want.append(cfg.act_fmt.from_float(sw.explore(o)))
        c = drv.counters()
        act_counters.append(c)
        act_cgot[f"action {k + 1}"] = {n: c[n] for n in act_predicted}
        act_cwant[f"action {k + 1}"] = act_predicted
    checks.append(compare("noisy actions", np.array(act_got), np.array(act_want)))
    checks.append(compare("action counters vs cycle model", act_cgot, act_cwant))
    checks.append(_array_check("action", act_counters[-1], e, act_program))
    return CoreRun(checks, step_counters, drv.engine.cycles(step_program),
                   en.program_cycles(e, step_program), act_counters, act_predicted,
                   en.program_cycles(e, act_program), bus.cycles,
                   time.perf_counter() - start, transport)


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


def board_figures(config: CoreConfig, board: str, *, fmax: bool = False) -> BoardFigures:
    """Synthesize ``config`` for ``board`` (cached on disk by :func:`fixar_hw.flow.build.estimate`).

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
    report = estimate(config, board, fmax=fmax)
    b = BOARDS[board]
    return BoardFigures(board, str(getattr(b, "device", "")), dict(report.used),
                        dict(report.capacity), dict(report.utilisation), bool(report.fits),
                        float(report.clock_mhz), report.fmax_mhz,
                        time.perf_counter() - start)


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
    argv += ["--out", out]
    return shlex.join(argv)


def run_demo(settings: DemoSettings, out_dir: str | os.PathLike[str], *, progress: bool = True,
             log: Callable[[str], None] | None = None) -> DemoResult:
    """Run the demo (module docs) and write its report to ``out_dir``.

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
    xs = msq.forward(_observations(settings.row_vectors, settings.seed))[1][k]
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
                          log=lambda m: say(f"      {m}"))
    seconds["hardware simulation"] = time.perf_counter() - t

    t = time.perf_counter()
    board, note = None, ""
    if settings.synth:
        say(f"[4/5] synthesizing the core for {settings.board}"
            f"{' with placement' if settings.fmax else ''} (cached) ...")
        try:
            board = board_figures(config, settings.board, fmax=settings.fmax)
        except ImportError as exc:
            note = f"synthesis unavailable: {exc}"
            say(f"      {note}")
        except RuntimeError as exc:  # fixar_hw.flow.build.BuildError: a tool failed
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
    clock = None
    try:
        from fixar_hw.platforms.boards import BOARDS

        if settings.board in BOARDS:
            clock = float(BOARDS[settings.board].clock_mhz)
    except ImportError:
        pass
    result = DemoResult(settings, config, training, returns, msq, row_unit, core, board, note,
                        seconds, _command(settings, str(out_dir)), clock)
    write_report(result, out)
    return result


# --- the report ----------------------------------------------------------------------------

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
        ("core", f"{e.size}x{e.size} PEs x {e.cores} cores, {e.update_units} update units, "
                 f"config id 0x{result.config.config_id:08x} (`core_config.json`)"),
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
          f"(`fixed_train_step`, `DDPGAgent.explore`, `TrainingEngine.cycles`); "
          f"{core.sim_cycles:,} cycles simulated in {core.seconds:.0f} s.", ""]
    L += _table(("check", "values compared", "mismatches", "result"),
                [(c.name, f"{c.compared:,}", c.mismatched,
                  "pass" if c.ok else f"FAIL: {c.detail or 'nothing compared'}")
                 for c in result.checks])
    sc, ac = core.step_counters[-1], core.act_counters[-1]
    L += ["", "## Cycles", "", "![cycles](cycles.png)", ""]
    L += _table(("", "training step", "action"), [
        ("engine cycles (counter `cycles`)", f"{sc['cycles']:,}", f"{ac['cycles']:,}"),
        ("predicted (`TrainingEngine.cycles`)", f"{core.step_predicted['cycles']:,}",
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
        L += _table(("resource", "used", "available", "utilisation"),
                    [(k, f"{b.used.get(k, 0):,}", f"{b.capacity.get(k, 0):,}",
                      f"{b.utilisation.get(k, 0.0):.1%}")
                     for k in ("lut", "ff", "dsp", "bram") if k in b.capacity])
        L += ["", f"{'Fits' if b.fits else 'Does NOT fit'} on the {b.device}. Board clock "
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
        util = ", ".join(f"{k} {v:.0%}" for k, v in b.utilisation.items())
        lines.append(f"board {b.board}: {util} ({'fits' if b.fits else 'does NOT fit'}); "
                     f"at {mhz:.0f} MHz ({label}): {_si(tp)} training samples/s, "
                     f"{_si(ips)} actions/s (batch {d.batch_size})")
    return "\n".join(lines)
