"""Board tops: the accelerator with a board's clock, UART and LEDs (installed as
``fixar_hw.platforms``).

:class:`BoardTop` is what :func:`fixar_hw.flow.build.build` hands to a board's amaranth-boards
platform. It holds a :class:`fixar_hw.soc.system.FixarSoC` (the UART-to-Wishbone bridge, the
:class:`~fixar_hw.soc.core.FixarCore`, and on-chip RAM as the DMA's external memory), clocked by the
board oscillator through the platform's default ``sync`` domain (or, on ECP5 boards given a
``clock_mhz``, by a PLL output: :class:`fixar_hw.platforms.clocking.ECP5PLL`), and drives up to
three LEDs:

* busy: the core is running descriptors;
* interrupt: the core's ``irq``;
* heartbeat: blinks at about 1 Hz, to show the bitstream is loaded and clocked.

With ``config=None`` it is the bring-up top: the bridge and the RAM alone
(:class:`fixar_hw.soc.wishbone.WishboneSRAM` at word address 0, behind a
:class:`~fixar_hw.soc.wishbone.WishboneDecoder` so that any other address answers ``err``), which
fits every board and lets a host check the serial link with
:class:`fixar_hw.host.serial_link.SerialBus` before a long build.

The board's external SDRAM / DDR3 is not used: no memory controller for them is installable from
PyPI for Amaranth, so the DMA's external memory is block RAM (see
:class:`fixar_hw.soc.system.FixarSoC`
for its size).
"""

from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal
from amaranth.lib import io, wiring

from fixar_hw._util import silence_on_error
from fixar_hw.config import CoreConfig
from fixar_hw.platforms.boards import Board, get_board
from fixar_hw.platforms.clocking import ECP5PLL, OUT_MHZ, PllSetting, ecp5_pll_setting
from fixar_hw.soc.bridges import UARTWishboneBridge

__all__ = ["BRINGUP_WORDS", "BoardTop"]

#: Words of RAM in the bring-up top.
BRINGUP_WORDS = 1024


class BoardTop(Elaboratable):
    """The accelerator (or the bring-up logic) on one board.

    Parameters
    ----------
    config : CoreConfig or None
        The core; None for the bring-up top.
    board : Board or str
        A board of :data:`fixar_hw.platforms.boards.BOARDS`.
    baud : int
        UART baud rate (the bridge's divisor is ``round(clock / baud)``, at least 4).
    sram_words : int, optional
        Words of the DMA's on-chip memory (default: what the driver needs for ``config``).
    clock_mhz : float, optional
        The run clock. None (default) runs from the board's oscillator. On ECP5 boards any
        other value is made by the PLL (:func:`fixar_hw.platforms.clocking.ecp5_pll_setting`: the
        nearest frequency it can make, :attr:`run_mhz`); other families take only None.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, naming it.
    """

    @silence_on_error
    def __init__(self, config: CoreConfig | None, board: Board | str, *, baud: int = 115200,
                 sram_words: int | None = None, clock_mhz: float | None = None) -> None:
        if config is not None and not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig or None, not {config!r}")
        self.board = get_board(board)
        self.pll: PllSetting | None = None
        if clock_mhz is not None:
            if self.board.family != "ecp5":
                raise ValueError(f"clock_mhz must be None on the {self.board.name} "
                                 f"({self.board.family}: no PLL support), not {clock_mhz!r}")
            if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, int | float):
                raise TypeError(f"clock_mhz must be a number of MHz, not {clock_mhz!r}")
            if not OUT_MHZ[0] <= clock_mhz <= OUT_MHZ[1]:
                raise ValueError(f"clock_mhz must be from {OUT_MHZ[0]:g} to {OUT_MHZ[1]:g} MHz "
                                 f"(the ECP5 PLL's output range), not {clock_mhz!r}")
            self.pll = ecp5_pll_setting(self.board.clock_mhz, clock_mhz)
        if isinstance(baud, bool) or not isinstance(baud, int):
            raise TypeError(f"baud must be an integer, not {baud!r}")
        if not 300 <= baud <= self.run_mhz * 1e6 / 4:
            raise ValueError(f"baud must be from 300 to a quarter of the "
                             f"{self.run_mhz:g} MHz clock, not {baud!r}")
        self.config = config
        self.baud = baud
        self.sram_words = sram_words

    @property
    def run_mhz(self) -> float:
        """The clock the design runs at: the PLL's output, or the board's oscillator."""
        return self.board.clock_mhz if self.pll is None else self.pll.f_out_mhz

    @property
    def divisor(self) -> int:
        """Clock cycles per UART bit."""
        return max(4, round(self.run_mhz * 1e6 / self.baud))

    def _soc(self, m: Module) -> tuple[Signal, Signal, Signal, Signal]:
        """The design inside: returns its (uart_rx, uart_tx, busy, irq)."""
        from fixar_hw.soc.system import FixarSoC
        from fixar_hw.soc.wishbone import WishboneDecoder, WishboneSRAM

        if self.config is not None:
            m.submodules.soc = soc = FixarSoC(self.config, clk_freq=self.run_mhz * 1e6,
                                              baud=self.baud, sram_words=self.sram_words)
            return soc.uart_rx, soc.uart_tx, soc.busy, soc.irq
        m.submodules.bridge = bridge = UARTWishboneBridge(divisor=self.divisor)
        m.submodules.decoder = dec = WishboneDecoder(
            addr_width=len(bridge.bus.adr), windows=[(0, BRINGUP_WORDS)])
        m.submodules.sram = sram = WishboneSRAM(depth=BRINGUP_WORDS)
        wiring.connect(m, bridge.bus, dec.bus)
        wiring.connect(m, dec.slaves[0], sram.bus)
        active = Signal()
        m.d.comb += active.eq(bridge.bus.cyc)
        return bridge.rx, bridge.tx, active, Signal()

    def elaborate(self, platform) -> Module:
        m = Module()
        rx, tx, busy, irq = self._soc(m)
        if platform is None:  # simulation or plain conversion: no pins
            return m
        if self.pll is not None:
            ref = platform.request(platform.default_clk, dir="-")
            m.submodules.clk_in = clk_buf = io.Buffer("i", ref)
            m.domains.sync = ClockDomain("sync")
            m.submodules.pll = ECP5PLL(clk_buf.i, self.pll)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [rx.eq(rx_buf.i), tx_buf.o.eq(tx)]
        heartbeat = Signal(range(max(2, int(self.run_mhz * 1e6))))
        m.d.sync += heartbeat.eq(heartbeat + 1)
        lights = [busy, irq, heartbeat[-1]]
        pins = []
        for name, number in self.board.leds:
            res = platform.request(name, number, dir="-")
            pins += [res.r, res.g, res.b] if name == "rgb_led" else [res]
        for k, (pin, value) in enumerate(zip(pins, lights, strict=False)):
            m.submodules[f"led_{k}"] = buf = io.Buffer("o", pin)
            m.d.comb += buf.o.eq(value)
        return m
