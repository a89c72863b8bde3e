"""A run clock other than the board's oscillator: the ECP5 PLL (``EHXPLLL``) and its settings.

A core that misses the board's clock still runs, slower, from a PLL output. Neither Amaranth
nor amaranth-boards has a PLL helper for ECP5 (amaranth's Lattice platform only instantiates the
``EHXPLLL`` a user writes), so the divider search and the instance are written here. The search
is the one Lattice's and ``ecppll``'s tools do: every input divider, feedback divider and output
divider whose phase-detector and VCO frequencies lie in the data-sheet ranges, keeping the
output closest to the request.

The ECP5 ``EHXPLLL`` with feedback from ``CLKOP`` gives

    f_out = f_in * CLKFB_DIV / CLKI_DIV,    f_vco = f_out * CLKOP_DIV,

with ``f_in / CLKI_DIV`` (the phase-detector frequency) in [3.125, 400] MHz, ``f_vco`` in
[400, 800] MHz and ``f_out`` in [3.125, 400] MHz (Lattice FPGA-DS-02012, ``sysCLOCK PLL``
timing; the same limits as ``ecppll``).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib.cdc import ResetSynchronizer

from fixar_hw._util import silence_on_error

__all__ = ["ECP5PLL", "PllSetting", "ecp5_pll_setting"]

PFD_MHZ = (3.125, 400.0)
VCO_MHZ = (400.0, 800.0)
OUT_MHZ = (3.125, 400.0)
_CLKI_DIVS = range(1, 129)
_CLKFB_DIVS = range(1, 81)
_CLKOP_DIVS = range(1, 129)


@dataclass(frozen=True)
class PllSetting:
    """One ``EHXPLLL`` divider setting (feedback from ``CLKOP``).

    Attributes
    ----------
    f_in_mhz : float
        Reference clock.
    clki_div, clkfb_div, clkop_div : int
        Input, feedback and output dividers.
    """

    f_in_mhz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def f_out_mhz(self) -> float:
        """``f_in * CLKFB_DIV / CLKI_DIV``."""
        return self.f_in_mhz * self.clkfb_div / self.clki_div

    @property
    def f_pfd_mhz(self) -> float:
        """Phase-detector frequency ``f_in / CLKI_DIV``."""
        return self.f_in_mhz / self.clki_div

    @property
    def f_vco_mhz(self) -> float:
        """``f_out * CLKOP_DIV``."""
        return self.f_out_mhz * self.clkop_div

    @property
    def valid(self) -> bool:
        """Whether every frequency is in its data-sheet range."""
        return (PFD_MHZ[0] <= self.f_pfd_mhz <= PFD_MHZ[1]
                and VCO_MHZ[0] <= self.f_vco_mhz <= VCO_MHZ[1]
                and OUT_MHZ[0] <= self.f_out_mhz <= OUT_MHZ[1])


def ecp5_pll_setting(f_in_mhz: float, f_out_mhz: float) -> PllSetting:
    """The valid ``EHXPLLL`` setting whose output is closest to ``f_out_mhz``.

    Ties go to the VCO closest to 600 MHz (the middle of its range), then to the smallest
    dividers.

    Parameters
    ----------
    f_in_mhz : float
        Reference clock, 8 to 400 MHz.
    f_out_mhz : float
        Wanted output clock, 3.125 to 400 MHz.

    Raises
    ------
    TypeError, ValueError
        If a frequency is not a number or out of range.
    """
    for name, value, (lo, hi) in (("f_in_mhz", f_in_mhz, (8.0, 400.0)),
                                  ("f_out_mhz", f_out_mhz, OUT_MHZ)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{name} must be a number, not {value!r}")
        if not lo <= value <= hi:
            raise ValueError(f"{name} must be from {lo:g} to {hi:g} MHz, not {value!r}")
    best: tuple[tuple[float, float, int, int, int], PllSetting] | None = None
    for clki in _CLKI_DIVS:
        if f_in_mhz / clki < PFD_MHZ[0]:
            break
        for clkfb in _CLKFB_DIVS:
            out = f_in_mhz * clkfb / clki
            if out > OUT_MHZ[1]:
                break
            if out < OUT_MHZ[0]:
                continue
            # the output divider only moves the VCO: take the one nearest 600 MHz
            clkop = min(max(round(600.0 / out), 1), _CLKOP_DIVS[-1])
            setting = PllSetting(float(f_in_mhz), clki, clkfb, clkop)
            if not setting.valid:
                continue
            key = (abs(out - f_out_mhz), abs(setting.f_vco_mhz - 600.0), clki, clkfb, clkop)
            if best is None or key < best[0]:
                best = (key, setting)
    if best is None:  # cannot happen for in-range inputs; kept as a clear error
        raise ValueError(f"no EHXPLLL setting makes {f_out_mhz!r} MHz from {f_in_mhz!r} MHz")
    return best[1]


class ECP5PLL(Elaboratable):
    """Drives a clock domain from an ECP5 ``EHXPLLL`` and a reference clock.

    The domain's reset is held while the PLL is not locked (and for two cycles after, through
    :class:`amaranth.lib.cdc.ResetSynchronizer`). The caller defines the domain, in the top
    module or a parent of every user (``m.domains.sync = ClockDomain("sync")``), as Amaranth
    asks.

    Parameters
    ----------
    clk_in : Signal
        The reference clock (an input buffer's output).
    setting : PllSetting
        From :func:`ecp5_pll_setting`.
    domain : str
        The clock domain it drives (default ``"sync"``).

    Members
    -------
    clk_out : Signal
        The PLL output, also the domain's clock. nextpnr derives its timing constraint
        (``setting.f_out_mhz``) from the reference clock's.
    locked : Signal
        The PLL's ``LOCK``.
    """

    @silence_on_error
    def __init__(self, clk_in: Signal, setting: PllSetting, *, domain: str = "sync") -> None:
        if not isinstance(setting, PllSetting):
            raise TypeError(f"setting must be a PllSetting, not {setting!r}")
        if not setting.valid:
            raise ValueError(f"setting must be valid, not {setting!r}")
        if not isinstance(domain, str) or not domain:
            raise TypeError(f"domain must be a non-empty string, not {domain!r}")
        self.clk_in = clk_in
        self.setting = setting
        self.domain = domain
        self.clk_out = Signal()
        self.locked = Signal()

    def elaborate(self, platform) -> Module:
        m = Module()
        s = self.setting
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{s.f_in_mhz:g}",
            a_FREQUENCY_PIN_CLKOP=f"{s.f_out_mhz:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=s.clki_div, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=s.clkop_div,
            p_CLKOP_CPHASE=s.clkop_div // 2, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=s.clkfb_div,
            i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, i_CLKFB=self.clk_out,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=self.clk_out, o_LOCK=self.locked,
        )
        m.d.comb += ClockSignal(self.domain).eq(self.clk_out)
        m.submodules.reset = ResetSynchronizer(~self.locked, domain=self.domain)
        # No clock constraint on clk_out: nextpnr derives it from the PLL's dividers and the
        # reference clock's constraint (and the net's name does not survive synthesis).
        return m
