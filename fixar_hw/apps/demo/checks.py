"""The demo's bit-exact checks: hardware results against the golden model, value by value.

:func:`compare` makes a :class:`Check` of any two (nested) results; :func:`run_row_unit_check`
runs an MSQ layer on the simulated mixed-scheme row unit (:class:`RowUnitRun`) and
:func:`run_core_check` training steps and actions on the simulated core (:class:`CoreRun`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fixar_hw._util import check_int
from fixar_hw.apps.demo.settings import ENV, TRANSPORTS, check_waveforms
from fixar_hw.config import CoreConfig
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.msq import QuantizedMatrix, matvec
from sw_model.numerics.prng import seed_state
from sw_model.rl.ddpg import DDPGAgent
from sw_model.rl.envs import make

__all__ = ["Check", "CoreRun", "RowUnitRun", "compare", "observations", "run_core_check",
           "run_row_unit_check"]


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
        The first difference ("" if none): the value's name and index, the hardware's and the
        golden model's values, and where it was read from when that is known.
    address : int or None
        The bus word address the first differing value was read from, when known.
    cycle : int or None
        The clock cycle at which the core's DMA wrote that word, when the transport knows
        (:meth:`fixar_hw.host.driver.Transport.write_cycle`); look there in the waveform.
    """

    name: str
    compared: int
    mismatched: int
    detail: str = ""
    address: int | None = None
    cycle: int | None = None

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


def compare(name: str, got: Any, want: Any, *, addresses: Any = None,
            write_cycle: Callable[[int], int | None] | None = None) -> Check:
    """Compare a hardware result with the golden model's, value by value, with ``==``.

    ``got`` and ``want`` are integers, arrays or (nested) mappings of them; mappings must have
    the same keys and arrays the same shapes.

    Parameters
    ----------
    name : str
        What is compared (for the report).
    got, want
        The hardware's and the golden model's results.
    addresses : optional
        The structure of ``got`` with the bus word address each value was read from (e.g.
        :meth:`fixar_hw.host.driver.FixarDriver.state_addresses`): the first difference then
        names its word.
    write_cycle : callable, optional
        The cycle at which the DMA last wrote a bus word, or None
        (:meth:`fixar_hw.host.driver.Transport.write_cycle`); called at once, so compare
        right after the read-back: the first difference then says when its word was written,
        e.g. ``"...; written at cycle 40,112 (bus word 0x1a30)"``.

    Returns
    -------
    Check
    """
    g: dict[str, np.ndarray] = {}
    w: dict[str, np.ndarray] = {}
    _flatten(got, "", g)
    _flatten(want, "", w)
    where_read: dict[str, np.ndarray] = {}
    if addresses is not None:
        _flatten(addresses, "", where_read)
    compared = mismatched = 0
    details: list[str] = []
    first: tuple[int | None, int | None] = (None, None)
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
            text = (f"{where}{at} is {np.asarray(a[idx]).item()!r}, the golden model "
                    f"{np.asarray(b[idx]).item()!r} ({n} of {b.size} differ)")
            if not details:
                first = _origin(where_read.get(key), idx, write_cycle)
                address, cycle = first
                if cycle is not None:
                    text += f"; written at cycle {cycle:,} (bus word 0x{address:x})"
                elif address is not None:
                    text += f"; read from bus word 0x{address:x}"
            details.append(text)
    return Check(name, compared, mismatched, details[0] if details else "", *first)


def _origin(addresses: np.ndarray | None, idx: tuple[int, ...],
            write_cycle: Callable[[int], int | None] | None) -> tuple[int | None, int | None]:
    """``(bus word, cycle of its DMA write)`` of a value, each None when unknown."""
    if addresses is None:
        return None, None
    try:
        address = int(addresses[idx])
    except (IndexError, TypeError, ValueError):
        return None, None
    cycle = write_cycle(address) if write_cycle is not None else None
    return address, cycle



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
        :meth:`fixar_hw.train.description.EngineDescription.cycles` of the step program.
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


def observations(n: int, seed: int) -> np.ndarray:
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
    model's array cycles plus 2 per array operation (the command transfer, and the cycle after
    the array's busy falls)."""
    ops = sum(isinstance(op, en.ArrayOp) for op in program)
    want = en.program_cycles(config, program)["array_cycles"] + 2 * ops
    return compare(f"{what} array cycles vs program_cycles", counters["array"], want)


def _state_dict(weights: ds.Weights, targets: ds.Weights, opt: ds.OptState) -> dict[str, Any]:
    return {"weights": weights, "targets": targets, "adam m": opt.m, "adam v": opt.v}


def run_core_check(agent: DDPGAgent, config: CoreConfig, *, steps: int, actions: int,
                   seed: int = 0, transport: str = "sim",
                   log: Callable[[str], None] | None = None,
                   vcd: str | os.PathLike[str] | None = None,
                   trace: str | os.PathLike[str] | None = None) -> CoreRun:
    """Load ``agent``'s trained state into a simulated core, run ``steps`` training steps and
    ``actions`` noisy actions, and compare everything with the golden model.

    The batches come from the agent's replay buffer, the observations from Pendulum. The
    golden model is a copy of the agent (:meth:`sw_model.rl.ddpg.DDPGAgent.train_step`, which
    runs :func:`sw_model.arch.ddpg_step.fixed_train_step`, and
    :meth:`~sw_model.rl.ddpg.DDPGAgent.explore`); the counters are compared with
    :meth:`fixar_hw.train.description.EngineDescription.cycles` of the program each step ran.
    The first difference in a network or in Adam's moments names the bus word it was read
    from and the cycle at which the core's DMA wrote it (:attr:`Check.cycle`): the place to
    look in the waveform (``vcd`` or ``trace``).

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
        :class:`~fixar_hw.sim.transport.SimTransport` or
        :class:`~fixar_hw.sim.core_verilator.VerilatorTransport`.
    log : callable, optional
        Called with progress messages.
    vcd : path, optional
        ``transport="sim"``: write a VCD file of the core for the whole run.
    trace : path, optional
        ``transport="verilator"``: write an FST file of the core for the whole run.

    Raises
    ------
    TypeError, ValueError
        For a bad argument (``vcd`` with Verilator, ``trace`` with Amaranth's simulator), or
        an agent whose QAT ranges are being tracked (the core's range registers cannot be
        loaded).
    OSError
        If the waveform file cannot be written.
    """
    from fixar_hw.sim.transport import SimTransport

    if not isinstance(agent, DDPGAgent):
        raise TypeError(f"agent must be a DDPGAgent, not {agent!r}")
    if not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig, not {config!r}")
    check_int(steps, "steps", minimum=1)
    check_int(actions, "actions", minimum=1)
    check_int(seed, "seed", minimum=0)
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not "
                         f"{transport!r}")
    check_waveforms(transport, vcd, trace)
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
        # -O1: on the demo's core a build of about 100 s and 10 steps in about 35 s, against
        # 225 s and 26 s at -O2 (docs/results.md, "The demo")
        bus: Any = VerilatorTransport(config, cflags=("-O1",), trace=trace)
    else:
        say(f"elaborating the core ({grid}) for Amaranth's simulator ...")
        bus = SimTransport(config, vcd=vcd)
    if vcd is not None or trace is not None:
        say(f"writing the waveform to {os.fspath(vcd if trace is None else trace)}")
    try:
        return _run_core(bus, sw, config, steps, actions, seed, transport, say, start)
    finally:
        bus.close()


def _run_core(bus: Any, sw: DDPGAgent, config: CoreConfig, steps: int,
              actions: int, seed: int, transport: str, say: Callable[[str], None],
              start: float) -> CoreRun:
    """The body of :func:`run_core_check` on an open transport."""
    from fixar_hw.host.driver import FixarDriver

    e = config.engine
    cfg = e.ddpg
    drv = FixarDriver(bus, config)
    addresses = _state_dict(*drv.state_addresses())
    say("loading the trained state ...")
    drv.load_state(en.load_state(e, sw.weights, sw.targets, sw.opt), seed=seed)
    checks = [compare("state loaded and read back", _state_dict(*drv.read_state()),
                      _state_dict(sw.weights, sw.targets, sw.opt), addresses=addresses,
                      write_cycle=bus.write_cycle)]
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
        predicted = drv.description.cycles(step_program)
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
        checks.append(compare(f"{key} after {steps} training steps", got[key], want[key],
                              addresses=addresses[key], write_cycle=bus.write_cycle))
    checks.append(compare("step counter", opt.step, sw.opt.step))
    checks.append(compare("training-step counters vs cycle model", counter_got, counter_want))
    checks.append(_array_check("training step", step_counters[-1], e, step_program))
    if range_want:
        checks.append(compare("QAT ranges", range_got, range_want))
    obs = observations(actions, seed)
    fmts = sw.formats
    act_program = en.compile_act(e, fmts)
    act_got, act_want, act_counters, act_cgot, act_cwant = [], [], [], {}, {}
    act_predicted = drv.description.cycles(act_program)
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
    return CoreRun(checks, step_counters, drv.description.cycles(step_program),
                   en.program_cycles(e, step_program), act_counters, act_predicted,
                   en.program_cycles(e, act_program), bus.cycles,
                   time.perf_counter() - start, transport)

