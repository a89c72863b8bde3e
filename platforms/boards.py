"""The boards :mod:`fixar_hw.flow.build` targets: their FPGA, its capacity, and the board's clock.

Each :class:`Board` names an `amaranth-boards <https://github.com/amaranth-lang/amaranth-boards>`_
platform, and records what the open flow needs on top of it: the FPGA family, the device's
capacity in the units :mod:`fixar_hw.flow.synth` counts (LUT4s on Lattice parts, LUT6s on Xilinx
7-series; flip-flops; DSP multipliers; block RAMs), and whether the flow can place and route for
it. The capacities are the device data sheets' figures; for Lattice parts the build checks them
against what nextpnr reports as available.

================  ============  ==================  ========  =======  ====  =====  ======
Name              Family        Device              LUTs      FFs      DSPs  BRAMs  Clock
================  ============  ==================  ========  =======  ====  =====  ======
``ulx3s-85f``     ECP5          LFE5U-85F-6BG381    83,640    83,640   156   208    25 MHz
``ulx3s-45f``     ECP5          LFE5U-45F-6BG381    43,848    43,848   72    108    25 MHz
``orangecrab-85f`` ECP5         LFE5U-85F-8MG285    83,640    83,640   156   208    48 MHz
``orangecrab-25f`` ECP5         LFE5U-25F-8MG285    24,288    24,288   28    56     48 MHz
``icebreaker``    iCE40         iCE40UP5K-SG48      5,280     5,280    8     30+4   12 MHz
``arty-a7-35``    Xilinx 7      XC7A35T-1CSG324     20,800    41,600   90     50    100 MHz
``arty-a7-100``   Xilinx 7      XC7A100T-1CSG324    63,400    126,800  240   135    100 MHz
================  ============  ==================  ========  =======  ====  =====  ======

Block RAMs count ``DP16KD`` (18 kbit) on ECP5, ``SB_RAM40_4K`` (4 kbit; the iCE40UP5K's four
256 kbit ``SB_SPRAM256KA`` are counted apart as ``spram``) and RAMB36 equivalents on Xilinx.

The Xilinx boards are synthesis-only: Vivado cannot be installed with ``pip``, and the open
Xilinx place-and-route (nextpnr-xilinx) is not packaged, so their reports carry the resource
use that Yosys's ``synth_xilinx`` gives and no Fmax.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BOARDS", "Board", "get_board"]

#: Resource kinds of :attr:`Board.capacity`, in report order.
RESOURCE_KINDS: tuple[str, ...] = ("lut", "ff", "dsp", "bram", "spram")


def _ulx3s(device: str) -> Callable[[], Any]:
    def make() -> Any:
        from amaranth_boards import ulx3s
        return {"85F": ulx3s.ULX3S_85F_Platform, "45F": ulx3s.ULX3S_45F_Platform}[device]()
    return make


def _orangecrab(device: str) -> Callable[[], Any]:
    def make() -> Any:
        from amaranth_boards import orangecrab_r0_2
        from amaranth_boards.resources import UARTResource

        cls = {"85F": orangecrab_r0_2.OrangeCrabR0_2_85FPlatform,
               "25F": orangecrab_r0_2.OrangeCrabR0_2_25FPlatform}[device]
        platform = cls()
        # The OrangeCrab has no UART on board: the Feather header's RX/TX pins (0 and 1) carry
        # it, for a 3.3 V USB-serial cable.
        platform.add_resources([UARTResource(0, rx="0", tx="1", conn=("io", 0),
                                             attrs=_lattice_33())])
        return platform
    return make


def _lattice_33() -> Any:
    from amaranth.build import Attrs
    return Attrs(IO_TYPE="LVCMOS33")


def _icebreaker() -> Any:
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    return ICEBreakerPlatform()


def _arty(device: str) -> Callable[[], Any]:
    def make() -> Any:
        from amaranth_boards import arty_a7
        cls = {"35": arty_a7.ArtyA7_35Platform, "100": arty_a7.ArtyA7_100Platform}[device]
        # Only the Verilog netlist of the plan is used (no vendor tool runs); "Xray" is the
        # amaranth toolchain whose plan carries it without needing Vivado.
        return cls(toolchain="Xray")
    return make


@dataclass(frozen=True)
class Board:
    """One target board.

    Parameters
    ----------
    name : str
        The name ``fixar-hw build --board`` takes.
    title : str
        Human-readable board and device.
    family : {"ecp5", "ice40", "xilinx"}
        FPGA family (the :mod:`fixar_hw.flow.synth` family name).
    device : str
        The FPGA part as amaranth-boards spells it.
    capacity : Mapping[str, int]
        Available ``lut``, ``ff``, ``dsp``, ``bram`` and ``spram`` (see the module table).
    clock_mhz : float
        The board oscillator that clocks the design.
    routable : bool
        Whether the flow places, routes and packs a bitstream (False: synthesis only).
    make_platform : callable
        Returns a fresh amaranth-boards platform instance (with the UART added where the board
        has none).
    leds : tuple of (str, int)
        ``(resource, number)`` of the LEDs the top drives, in the order busy, interrupt,
        heartbeat (an ``rgb_led`` resource takes all three on its red, green and blue).
    """

    name: str
    title: str
    family: str
    device: str
    capacity: Mapping[str, int]
    clock_mhz: float
    routable: bool
    make_platform: Callable[[], Any] = field(repr=False, compare=False)
    leds: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "capacity", types.MappingProxyType(
            {k: int(self.capacity.get(k, 0)) for k in RESOURCE_KINDS}))

    def platform(self) -> Any:
        """A fresh amaranth-boards platform of the board."""
        return self.make_platform()


_ECP5_85 = {"lut": 83_640, "ff": 83_640, "dsp": 156, "bram": 208}
_ECP5_45 = {"lut": 43_848, "ff": 43_848, "dsp": 72, "bram": 108}
_ECP5_25 = {"lut": 24_288, "ff": 24_288, "dsp": 28, "bram": 56}

BOARDS: Mapping[str, Board] = types.MappingProxyType({b.name: b for b in (
    Board("ulx3s-85f", "Radiona ULX3S, Lattice LFE5U-85F", "ecp5", "LFE5U-85F", _ECP5_85, 25.0,
          True, _ulx3s("85F"), (("led", 0), ("led", 1), ("led", 7))),
    Board("ulx3s-45f", "Radiona ULX3S, Lattice LFE5U-45F", "ecp5", "LFE5U-45F", _ECP5_45, 25.0,
          True, _ulx3s("45F"), (("led", 0), ("led", 1), ("led", 7))),
    Board("orangecrab-85f", "Good Stuff Department OrangeCrab r0.2, Lattice LFE5U-85F", "ecp5",
          "LFE5U-85F", _ECP5_85, 48.0, True, _orangecrab("85F"), (("rgb_led", 0),)),
    Board("orangecrab-25f", "Good Stuff Department OrangeCrab r0.2, Lattice LFE5U-25F", "ecp5",
          "LFE5U-25F", _ECP5_25, 48.0, True, _orangecrab("25F"), (("rgb_led", 0),)),
    Board("icebreaker", "1BitSquared iCEBreaker, Lattice iCE40UP5K", "ice40", "iCE40UP5K",
          {"lut": 5_280, "ff": 5_280, "dsp": 8, "bram": 30, "spram": 4}, 12.0, True,
          _icebreaker, (("led_r", 0), ("led_g", 0))),
    Board("arty-a7-35", "Digilent Arty A7-35T, Xilinx XC7A35T", "xilinx", "xc7a35ti",
          {"lut": 20_800, "ff": 41_600, "dsp": 90, "bram": 50}, 100.0, False, _arty("35"),
          (("led", 0), ("led", 1), ("led", 3))),
    Board("arty-a7-100", "Digilent Arty A7-100T, Xilinx XC7A100T", "xilinx", "xc7a100ti",
          {"lut": 63_400, "ff": 126_800, "dsp": 240, "bram": 135}, 100.0, False, _arty("100"),
          (("led", 0), ("led", 1), ("led", 3))),
)})
"""Every supported board, by name."""


def get_board(board: Board | str) -> Board:
    """The :class:`Board` of ``board`` (a name or a Board).

    Raises
    ------
    TypeError
        If ``board`` is neither.
    ValueError
        For an unknown name; the message lists the known ones.
    """
    if isinstance(board, Board):
        return board
    if not isinstance(board, str):
        raise TypeError(f"board must be a board name or Board, not {board!r}")
    try:
        return BOARDS[board]
    except KeyError:
        raise ValueError(f"board must be one of {', '.join(BOARDS)}, not {board!r}") from None
