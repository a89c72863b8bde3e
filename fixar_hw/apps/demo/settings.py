"""The sizes of a demo run: :class:`DemoSettings` and :func:`demo_settings`."""

from __future__ import annotations

import os
from dataclasses import dataclass

from fixar_hw._util import check_int
from fixar_hw.config import CoreConfig
from sw_model.arch import engine as en
from sw_model.rl.ddpg import DDPGConfig

__all__ = ["ACT_DIM", "ENV", "EPISODE_STEPS", "FULL_BATCH", "FULL_CORE", "FULL_CRITIC_LR",
           "FULL_HIDDEN", "OBS_DIM", "TRANSPORTS", "DemoSettings", "check_waveforms",
           "demo_settings"]

ENV = "pendulum"
#: Pendulum's sizes (observation, action) and episode length.
OBS_DIM, ACT_DIM, EPISODE_STEPS = 3, 1, 200
#: The full run's hidden layers and batch (the core's memories grow with both) and its
#: critic's learning rate.
FULL_HIDDEN, FULL_BATCH, FULL_CRITIC_LR = (32, 32), 16, 2e-3
#: The full run's core: PE grid side, AAP cores, update units, their kind and bits a cycle
#: (:class:`sw_model.arch.engine.EngineConfig`); it fits the ULX3S-85F.
FULL_CORE = (2, 1, 4, "iterative", 2)

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
    update_kind : {"pipelined", "iterative"}
        The update units' kind (:class:`sw_model.arch.engine.EngineConfig`).
    update_bits : int
        Square-root and quotient bits an iterative update unit finds a cycle.
    hw_steps, hw_actions : int
        Training steps and noisy actions run on the simulated core.
    seed : int
    board : str
    synth : bool
        Synthesize for the board (:func:`fixar_hw.flow.build.estimate`).
    fmax : bool
        Also place and route for an Fmax estimate.
    transport : {"sim", "verilator"}
        Where the core runs: Amaranth's simulator (:class:`~fixar_hw.sim.transport.SimTransport`)
        or its exported Verilog compiled by Verilator
        (:class:`~fixar_hw.sim.core_verilator.VerilatorTransport`).
    vcd : str or None
        A VCD file of the core's run in Amaranth's simulator.
    trace : str or None
        An FST file of the core's run in Verilator.
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
    update_kind: str
    update_bits: int
    hw_steps: int
    hw_actions: int
    seed: int
    board: str
    synth: bool
    fmax: bool
    transport: str = "sim"
    vcd: str | None = None
    trace: str | None = None

    @property
    def steps(self) -> int:
        """Environment steps of the training run."""
        return self.episodes * EPISODE_STEPS

    def core_config(self) -> CoreConfig:
        """The core built for the trained networks: block RAM is what limits it on the
        LFE5U-85F, so its update unit shares the PE array's parameter-memory ports
        (``update_ports="shared"``) instead of two more copies of that memory."""
        engine = en.EngineConfig(self.ddpg, OBS_DIM, ACT_DIM, size=self.core_size,
                                 cores=self.core_cores, update_units=self.update_units,
                                 update_kind=self.update_kind, update_bits=self.update_bits,
                                 update_ports="shared")
        return CoreConfig(engine, dma_addr_width=24)


TRANSPORTS = ("sim", "verilator")


def check_waveforms(transport: str, vcd: object = None, trace: object = None) -> None:
    """Check the waveform options of a run on ``transport``: a VCD file comes from Amaranth's
    simulator (``"sim"``), an FST trace from Verilator (``"verilator"``); one file at most.

    Raises
    ------
    TypeError
        If ``vcd`` or ``trace`` is neither None nor a path.
    ValueError
        For a waveform the transport does not write, both at once, or a trace whose name does
        not end in ``.fst``.
    """
    for name, value in (("vcd", vcd), ("trace", trace)):
        if value is not None and not isinstance(value, str | os.PathLike):
            raise TypeError(f"{name} must be a path, not {value!r}")
    if vcd is not None and trace is not None:
        raise ValueError("give vcd (Amaranth's simulator) or trace (Verilator), not both")
    if vcd is not None and transport != "sim":
        raise ValueError(f"vcd is written by Amaranth's simulator (transport 'sim'), not by "
                         f"transport {transport!r}: give trace=FILE.fst for Verilator")
    if trace is not None and transport != "verilator":
        raise ValueError(f"trace is written by Verilator (transport 'verilator'), not by "
                         f"transport {transport!r}: give vcd=FILE for Amaranth's simulator")
    if isinstance(trace, str | os.PathLike) and not os.fspath(trace).endswith(".fst"):
        raise ValueError(f"trace must name an .fst file, not {os.fspath(trace)!r}")


def demo_settings(*, quick: bool = False, episodes: int | None = None, seed: int = 0,
                  board: str = "ulx3s-85f", synth: bool | None = None,
                  fmax: bool = False, transport: str | None = None,
                  vcd: str | os.PathLike[str] | None = None,
                  trace: str | os.PathLike[str] | None = None) -> DemoSettings:
    """The demo's sizes.

    Full run: actor 3-32-32-1 and critic 4-32-32-1, batch 16, discount 0.98, critic
    learning rate 0.002, 50 episodes (10,000 environment steps), and a core that fits the
    ULX3S-85F (LFE5U-85F): a 2x2 PE grid, one AAP core and four iterative update units
    finding two bits a cycle (:data:`FULL_CORE`). The core is checked with 10 training steps
    and 10 actions compiled by Verilator with ``-O1`` (a step is about 81,000 cycles:
    Amaranth's simulator would take minutes per step; without Verilator the run falls back
    to it with 2 steps and 2 actions). Quick run (``quick=True``): 3-8-1 / 4-8-1, batch 8,
    3 episodes, a 2x2 grid with 2 cores and 4 iterative update units (two bits a cycle), 2
    steps and 2 actions in Amaranth's simulator, no synthesis unless ``synth=True`` (the
    simulator takes about half the time per cycle with iterative units than with the
    pipelined ones, whose 40-odd stages it evaluates every cycle, and a quick step is short).

    Why this core: the LFE5U-85F has 156 multipliers and 208 block RAMs (3.8 Mbit), and a
    board top holds the engine's memories (the parameter and activation memories once per
    read port) and, as the DMA's external memory, on-chip RAM for every image the driver
    stages (a power of two of 32-bit words, about as large again). A 4x4 grid of 32-bit PEs
    with four update units took 166 multipliers, and its 512-bit memory words would need
    about 230 block RAMs even for these networks (estimated from the memories' shapes); a
    second AAP core gives the activation and gradient
    memories a write port each, which no block RAM has (:mod:`fixar_hw.flow.floor`);
    pipelined update units take about 19,000 flip-flops each; and 64-64 networks with batch
    64 need 4.25 Mbit in the engine alone. The 32-32 networks with batch 16 still learn
    Pendulum (noise-free evaluation -112.7 with seed 0, against -110.8 for the earlier
    64-64 networks with batch 64), and the core synthesizes to 41 % of the LUTs, 104 of the
    156 multipliers and 195 of the 208 block RAMs in about 4 minutes and under 1 GB
    (docs/results.md, "The demo").

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
        Where the core runs (default: ``"sim"`` with ``vcd``, ``"verilator"`` with ``trace``,
        else ``"sim"`` in quick mode and ``"verilator"`` when Verilator is installed).
    vcd : path, optional
        Write a VCD file of the core's run (Amaranth's simulator).
    trace : path, optional
        Write an FST file of the core's run (Verilator; the name ends in ``.fst``).

    Raises
    ------
    TypeError, ValueError
        Naming the bad parameter.
    """
    if episodes is not None:
        check_int(episodes, "episodes", minimum=1)
    check_int(seed, "seed", minimum=0)
    if not isinstance(board, str) or not board:
        raise ValueError(f"board must be a board name, not {board!r}")
    if synth is None:
        synth = not quick
    if transport is None and vcd is not None:
        transport = "sim"
    elif transport is None and trace is not None:
        transport = "verilator"
    elif transport is None:
        from fixar_hw.sim.core_verilator import VerilatorTransport

        transport = "verilator" if not quick and VerilatorTransport.available() else "sim"
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not "
                         f"{transport!r}")
    check_waveforms(transport, vcd, trace)
    waves = (None if vcd is None else os.fspath(vcd), None if trace is None else os.fspath(trace))
    if quick:
        episodes = episodes or 3
        hidden, batch = (8,), 8
    else:
        episodes = episodes or 50
        hidden, batch = FULL_HIDDEN, FULL_BATCH
    steps = episodes * EPISODE_STEPS
    warmup = max(batch, min(1000, steps // 5))
    delay = max(1, min(3000, (steps - warmup) // 3))
    # the full run discounts with 0.98: its 50 episodes then learn the swing-up (with 0.99 the
    # 64-64 networks had ended at -461); the critic of the 32-32 networks with batch 16 learns
    # at twice the default rate (evaluation -112.7 with seed 0, -125.4 at the default rate)
    ddpg = DDPGConfig(hidden=hidden, precision="qat", batch_size=batch,
                      buffer_size=max(batch, min(100_000, steps)), warmup_steps=warmup,
                      qat_delay=delay, seed=seed, gamma=0.99 if quick else 0.98,
                      critic_lr=1e-3 if quick else FULL_CRITIC_LR)
    if quick:
        return DemoSettings(True, episodes, ddpg, 2, 8, 0.5, (2, 2), 2, 2, 2, 4, "iterative", 2,
                            2, 2, seed, board, bool(synth), fmax, transport, *waves)
    n = 10 if transport == "verilator" else 2
    size, cores, units, kind, bits = FULL_CORE
    return DemoSettings(False, episodes, ddpg, 10, 8, 0.5, (4, 4), 4, size, cores, units, kind,
                        bits, n, n, seed, board, bool(synth), fmax, transport, *waves)

