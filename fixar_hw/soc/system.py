"""The board SoC around :class:`~fixar_hw.soc.core.FixarCore`.

:class:`FixarSoC`
    A UART pin pair to the host (:class:`~fixar_hw.soc.bridges.UARTWishboneBridge`; or, with
    ``link="stream"``, the bridge's byte streams), the core, and a
    :class:`~fixar_hw.soc.wishbone.WishboneSRAM` that the core's DMA uses as its external
    memory, joined by the interconnect of :mod:`fixar_hw.soc.wishbone`. Board tops wrap it.

:func:`driver_memory_words` is the external memory :class:`~fixar_hw.host.driver.FixarDriver`
stages its images in, which sizes the SoC's RAM.
"""

import math

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import check_int, silence_on_error
from fixar_hw.config import CoreConfig
from fixar_hw.soc.bridges import BridgeEngine, UARTWishboneBridge
from fixar_hw.soc.core import FixarCore
from fixar_hw.soc.csr import staging_windows
from fixar_hw.soc.wishbone import WindowMap, WishboneArbiter, WishboneDecoder, WishboneSRAM

__all__ = ["FixarSoC", "driver_memory_words"]


def driver_memory_words(config: CoreConfig) -> int:
    """Bus words of external memory :class:`~fixar_hw.host.driver.FixarDriver` stages images in.

    The driver gives every on-chip memory (``W G M V A P T``) a window of ``depth * beats``
    32-bit bus words in two overlapping groups from its ``ext_base``
    (:func:`~fixar_hw.soc.csr.staging_windows`); this is the end of the last window, the
    smallest external memory that lets a driver with ``ext_base=0`` use every operation.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~fixar_hw.config.CoreConfig`.
    """
    return max(base + words for base, words in staging_windows(config).values())


# --- the SoC -------------------------------------------------------------------------------------

class FixarSoC(wiring.Component):
    """A board's SoC: UART to the host, a :class:`~fixar_hw.soc.core.FixarCore`, on-chip RAM.

    Topology::

        uart_rx/tx -- UARTWishboneBridge --> host decoder --+--> core.csr   (control registers)
                                                            +--> arbiter[0] --+
        core.dma ------------------------> DMA decoder ------->  arbiter[1] --+--> WishboneSRAM

    The host (over the UART, :class:`~fixar_hw.host.driver.SerialTransport`) reaches the control
    registers and the RAM; the DMA reaches the RAM only, through its own decoder, so a DMA
    address beyond the RAM is a bus error the core reports (a ``bus_error`` fault) rather
    than an alias. The arbiter grants the RAM to one master per bus cycle, round robin; the
    DMA holds it for a whole transfer, the bridge for one word. Control-register accesses
    never wait for the DMA.

    Memory map
        Word addresses as the bridge sees them (byte addresses are 4 times these):

        ================================================  =================  ===================
        bridge word addresses                             what               DMA word addresses
        ================================================  =================  ===================
        ``CSR_BASE`` (0x0) + ``[0, csr_words)``           control registers  --
        ``MEM_BASE`` (0x1000_0000) + ``[0, sram_words)``  the RAM            ``[0, sram_words)``
        anything else                                     ``err``            ``err``
        ================================================  =================  ===================

        ``csr_words`` is ``2**regmap.addr_width`` (:func:`fixar_hw.soc.csr.register_map`; the
        holes in it answer ``err`` too).

        So ``SerialTransport(port, csr_base=CSR_BASE, mem_base=MEM_BASE, mem_offset=0)``
        (:meth:`SerialTransport.for_soc <fixar_hw.host.driver.SerialTransport.for_soc>`) and
        ``FixarDriver(..., ext_base=0)`` drive it.

    Timing
        The UART runs at ``clk_freq / divisor`` baud, ``divisor = round(clk_freq / baud)``
        clock cycles per bit: a bus word costs ``40 * divisor`` cycles on the line
        (:class:`~fixar_hw.soc.bridges.UARTWishboneBridge`). Interconnect latency: none added
        on the control path; on the RAM path one cycle when the arbiter switches masters;
        the RAM answers one cycle after each request and never stalls, so DMA transfers run
        at one beat per cycle when ``config.max_outstanding >= 2``. The bridge's 16-byte
        receive FIFO absorbs a wait for the RAM while a DMA transfer holds it
        (``16 * 10 * divisor`` cycles); :class:`~fixar_hw.host.driver.FixarDriver` never writes
        the RAM while its queue runs.

    Parameters
    ----------
    config : CoreConfig
        The core's build; its ``csr_bus`` must be ``"wishbone"``.
    clk_freq : float
        Clock frequency in Hz.
    baud : int
        UART bit rate; ``round(clk_freq / baud)`` must be at least 4, and the actual rate
        within 2 % of ``baud``.
    sram_words : int, optional
        RAM words (32-bit), a power of two, at least :func:`driver_memory_words`
        ``(config)`` and at most ``min(2**28, 2**config.dma_addr_width)``; by default the
        smallest such power of two.
    link : {"uart", "stream"}
        The host link. ``"uart"``: a serial pin pair
        (:class:`~fixar_hw.soc.bridges.UARTWishboneBridge`).
        ``"stream"``: the bridge's command and reply byte streams as ports, without the UART
        (:class:`~fixar_hw.soc.bridges.BridgeEngine`, same byte protocol), for a byte-FIFO host
        link (an FT245-style USB FIFO, say) and for fast simulation: a byte per cycle instead
        of one per ``10 * divisor`` cycles. ``baud`` does not matter then (it is still
        checked).

    Members
    -------
    uart_rx : In(1)
        Serial line from the host (asynchronous, idle high); ``link="uart"`` only.
    uart_tx : Out(1)
        Serial line to the host (idle high); ``link="uart"`` only.
    host_rx : In(stream.Signature(8))
        Command bytes from the host; ``link="stream"`` only.
    host_tx : Out(stream.Signature(8))
        Reply bytes to the host; ``link="stream"`` only.
    irq : Out(1)
        The core's interrupt (level).
    busy : Out(1)
        The core is running its descriptor queue (``STATUS.busy``): for a LED.

    Attributes
    ----------
    core : FixarCore
    bridge : UARTWishboneBridge or BridgeEngine
    sram : WishboneSRAM
    host_decoder, dma_decoder : WishboneDecoder
    arbiter : WishboneArbiter

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, naming it.
    """

    #: Bridge word address of the control registers.
    CSR_BASE = 0x0000_0000
    #: Bridge word address of the RAM's first word (byte address 0x4000_0000).
    MEM_BASE = 0x1000_0000
    #: Word-address bits the bridge drives (every address outside the map is an ``err``).
    BRIDGE_ADDR_WIDTH = 32

    #: Host links :class:`FixarSoC` accepts.
    LINKS = ("uart", "stream")

    @silence_on_error
    def __init__(self, config: CoreConfig, *, clk_freq: float, baud: int = 115200,
                 sram_words: int | None = None, link: str = "uart") -> None:
        owner = "FixarSoC"
        if not isinstance(link, str):
            raise TypeError(f"{owner} link must be a string, not {link!r}")
        if link not in self.LINKS:
            raise ValueError(f"{owner} link must be 'uart' or 'stream', not {link!r}")
        if not isinstance(config, CoreConfig):
            raise TypeError(f"{owner} config must be a CoreConfig, not {config!r}")
        if config.csr_bus != "wishbone":
            raise ValueError(f"{owner} config.csr_bus must be 'wishbone', not "
                             f"{config.csr_bus!r}")
        if isinstance(clk_freq, bool) or not isinstance(clk_freq, (int, float)):
            raise TypeError(f"{owner} clk_freq must be a number (Hz), not {clk_freq!r}")
        if not (math.isfinite(clk_freq) and clk_freq > 0):
            raise ValueError(f"{owner} clk_freq must be a positive number (Hz), not "
                             f"{clk_freq!r}")
        check_int(baud, "baud", owner=owner, minimum=1)
        divisor = round(clk_freq / baud)
        if divisor < 4:
            raise ValueError(f"{owner} baud must be at most clk_freq / 4 ({clk_freq / 4:g}), "
                             f"not {baud!r}")
        if abs(clk_freq / divisor - baud) > 0.02 * baud:
            raise ValueError(f"{owner} baud {baud!r} is more than 2 % away from the nearest "
                             f"rate clk_freq / {divisor} = {clk_freq / divisor:g}")
        need = driver_memory_words(config)
        limit = min(1 << 28, 1 << config.dma_addr_width)
        if sram_words is None:
            sram_words = 1 << max(1, (need - 1).bit_length())
            if sram_words > limit:
                raise ValueError(f"{owner} config needs {need} words of RAM for the driver, "
                                 f"more than the {limit} the map allows")
        else:
            check_int(sram_words, "sram_words", owner=owner)
            if sram_words & (sram_words - 1) or not max(2, need) <= sram_words <= limit:
                raise ValueError(f"{owner} sram_words must be a power of two from {need} (what "
                                 f"FixarDriver stages) to {limit}, not {sram_words!r}")
        self._config = config
        self._clk_freq = clk_freq
        self._baud = baud
        self._divisor = divisor
        self._sram_words = sram_words
        self._link = link
        self.core = FixarCore(config)
        if link == "uart":
            self.bridge = UARTWishboneBridge(divisor=divisor, addr_width=self.BRIDGE_ADDR_WIDTH)
            members = {"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1)}
        else:
            self.bridge = BridgeEngine(addr_width=self.BRIDGE_ADDR_WIDTH)
            members = {"host_rx": In(stream.Signature(8)), "host_tx": Out(stream.Signature(8))}
        members |= {"irq": Out(1), "busy": Out(1)}
        self.sram = WishboneSRAM(depth=sram_words)
        csr_words = 1 << self.core.regmap.addr_width
        self._csr_words = csr_words
        self.host_decoder = WishboneDecoder(
            addr_width=self.BRIDGE_ADDR_WIDTH,
            windows=[(self.CSR_BASE, csr_words), (self.MEM_BASE, sram_words)],
            max_outstanding=1)
        self.dma_decoder = WishboneDecoder(addr_width=config.dma_addr_width,
                                           windows=[(0, sram_words)],
                                           max_outstanding=config.max_outstanding)
        self.arbiter = WishboneArbiter(addr_width=sram_words.bit_length() - 1, masters=2)
        super().__init__(members)

    @property
    def config(self) -> CoreConfig:
        return self._config

    @property
    def clk_freq(self) -> float:
        """Clock frequency in Hz."""
        return self._clk_freq

    @property
    def baud(self) -> int:
        """The requested UART bit rate."""
        return self._baud

    @property
    def link(self) -> str:
        """The host link: ``"uart"`` or ``"stream"``."""
        return self._link

    @property
    def divisor(self) -> int:
        """Clock cycles per UART bit."""
        return self._divisor

    @property
    def csr_base(self) -> int:
        """Bridge word address of the control registers (``SerialTransport(csr_base=)``)."""
        return self.CSR_BASE

    @property
    def csr_words(self) -> int:
        """Words of the control-register window."""
        return self._csr_words

    @property
    def mem_base(self) -> int:
        """Bridge word address of the RAM (``SerialTransport(mem_base=)``)."""
        return self.MEM_BASE

    @property
    def mem_offset(self) -> int:
        """The DMA's word address of the RAM's first word (``SerialTransport(mem_offset=)``)."""
        return 0

    @property
    def sram_words(self) -> int:
        """RAM words (32-bit)."""
        return self._sram_words

    @property
    def address_map(self) -> WindowMap:
        """The bridge's view: window 0 the control registers, window 1 the RAM."""
        return self.host_decoder.window_map

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.bridge = bridge = self.bridge
        m.submodules.core = core = self.core
        m.submodules.sram = sram = self.sram
        m.submodules.host_decoder = hdec = self.host_decoder
        m.submodules.dma_decoder = ddec = self.dma_decoder
        m.submodules.arbiter = arb = self.arbiter
        if self._link == "uart":
            m.d.comb += [bridge.rx.eq(self.uart_rx), self.uart_tx.eq(bridge.tx)]
        else:
            wiring.connect(m, wiring.flipped(self.host_rx), bridge.rx)
            wiring.connect(m, bridge.tx, wiring.flipped(self.host_tx))
        m.d.comb += [self.irq.eq(core.irq), self.busy.eq(core.control.running)]
        wiring.connect(m, bridge.bus, hdec.bus)
        wiring.connect(m, hdec.slaves[0], core.csr)
        wiring.connect(m, hdec.slaves[1], arb.masters[0])
        wiring.connect(m, core.dma, ddec.bus)
        wiring.connect(m, ddec.slaves[0], arb.masters[1])
        wiring.connect(m, arb.bus, sram.bus)
        return m
