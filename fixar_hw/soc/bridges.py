"""Bus bridges: AXI4-Lite to Wishbone, and a UART to Wishbone bridge for board tops.

:class:`AXILiteToWishbone`
    An AXI4-Lite slave that performs each transaction as one Wishbone B4 pipelined access,
    one transaction at a time.

:class:`UARTWishboneBridge`
    A Wishbone master driven by a host over a serial line (8N1), so that a board's control
    registers and memories can be reached from a PC with nothing but a USB-UART cable.
    :mod:`fixar_hw.host.serial_link` is the host side
    (:class:`~fixar_hw.host.serial_link.SerialBus`).

UART byte protocol
------------------
Every multi-byte field is little-endian. ``B = data_width // 8`` bytes per data word.

Write: host sends ``0x01``, ``addr`` (4 bytes), ``count`` (2 bytes), then ``count`` data words
(``B`` bytes each). Word ``i`` is written to Wishbone word address ``addr + i`` (``sel`` all
ones), one access at a time, as soon as its bytes have arrived. The bridge replies with a
status byte and the count of words done (2 bytes): 3 bytes in all. Status ``0x00``: every
word was written. Status ``0x01``: the access of word ``done`` ended with ``err``; the transfer
stopped there (that word and the following ones are not written), and the bridge discarded
the remaining ``(count - done - 1) * B`` data bytes of the command before replying, so that
the byte stream stays in step with the host.

Read: host sends ``0x02``, ``addr`` (4 bytes), ``count`` (2 bytes). The bridge replies with
``count`` data words (``B`` bytes each, word ``i`` read from ``addr + i``), then the status
byte and the count of words done (2 bytes): ``count * B + 3`` bytes in all. On an ``err``,
the failing word and all the following ones are sent as 0 and not read from the bus.

Any other command byte: the bridge replies ``0xFF`` (one byte) and waits for the next command
byte, so a host can resynchronise by sending a byte that is not a command and reading until
``0xFF`` arrives.

``count`` is 1 to 65535 (a count of 0 is accepted and does nothing: status ok, 0 words).
Address bits above ``addr_width`` are ignored, and ``addr + i`` wraps at ``2**addr_width``.

Timing
------
A byte takes ``10 * divisor`` clock cycles on the line. A write costs ``7 + count * B`` bytes
from the host and 3 bytes back; a read 7 bytes and ``count * B + 3`` back; so a stream of
words moves at ``B`` bytes, i.e. ``10 * B * divisor`` cycles, per word. The bridge starts a
word's access 2 cycles after the word's last stop bit has been sampled (write) or after the
previous word's last byte has been handed to the transmitter (read), and its first reply byte
starts about 2 cycles after the last access ends.

Received bytes pass through a 16-byte FIFO (:data:`UARTWishboneBridge.RX_FIFO_DEPTH`); while
the bridge waits for a slow access, the host's following bytes queue there. A byte that finds
the FIFO full is lost, so the bus must keep up with the line on average: each write access
should end within ``10 * B * divisor`` cycles (e.g. 160 cycles at 4 bytes per word and
``divisor = 4``), and a longer stall must be made up before 16 bytes have piled up.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from fixar_hw._util import check_bool, observe, silence_on_error
from fixar_hw.soc.bus import (
    AXI_RESP,
    AXILiteSignature,
    WishboneSignature,
    check_int,
    check_width,
)

__all__ = [
    "CMD_READ",
    "CMD_WRITE",
    "REPLY_UNKNOWN",
    "STATUS_BUS_ERROR",
    "STATUS_OK",
    "AXILiteToWishbone",
    "BridgeEngine",
    "UARTReceiver",
    "UARTTransmitter",
    "UARTWishboneBridge",
]

#: Command bytes of the UART protocol.
CMD_WRITE = 0x01
CMD_READ = 0x02
#: Status bytes.
STATUS_OK = 0x00
STATUS_BUS_ERROR = 0x01
#: The one-byte reply to a byte that is not a command.
REPLY_UNKNOWN = 0xFF


class AXILiteToWishbone(wiring.Component):
    """An AXI4-Lite slave that forwards each transaction to a Wishbone B4 master port.

    Byte addresses become word addresses (``awaddr >> log2(data_width // 8)``; the low address
    bits are ignored); ``wstrb`` becomes ``sel`` and reads use all ones. One transaction runs
    at a time: the bridge accepts a write's ``aw`` and ``w`` (in either order or together) or
    a read's ``ar``, performs one Wishbone access (``cyc`` from the request to its answer,
    ``stb`` until accepted), and presents ``b`` or ``r`` until the master takes it: ``OKAY``
    (0) after ``ack``, ``SLVERR`` (2) after ``err`` (with ``rdata`` 0). When a read and a write
    are both requested, they take turns. No ready depends on a ready; every valid and
    response is a register.

    Latency from the last request handshake to the response valid: 2 cycles plus the
    Wishbone slave's stall and wait cycles (at least 1).

    Parameters
    ----------
    addr_width : int
        AXI byte address bits: at least 3 (``data_width`` 32) or 4 (64), at most 64.
    data_width : int
        32 or 64.
    observe : bool
        Add the :attr:`obs` port (for proofs; default False).

    Members
    -------
    axi : In(AXILiteSignature(addr_width=addr_width, data_width=data_width))
    bus : Out(WishboneSignature(addr_width=addr_width - log2(data_width // 8),
        data_width=data_width, granularity=8))
    obs : Out(observation_layout)
        With ``observe``: the bridge's state, for a proof's inductive invariants.
    """

    @silence_on_error
    def __init__(self, *, addr_width: int, data_width: int = 32, observe: bool = False
                 ) -> None:
        owner = "AXILiteToWishbone"
        check_width(data_width, "data_width", owner=owner, choices=(32, 64))
        shift = (data_width // 8).bit_length() - 1
        check_int(addr_width, "addr_width", owner=owner, minimum=shift + 1, maximum=64)
        self._addr_width = addr_width
        self._data_width = data_width
        self._shift = shift
        self._observe = check_bool(observe, "observe", owner=owner)
        super().__init__({
            "axi": In(AXILiteSignature(addr_width=addr_width, data_width=data_width)),
            "bus": Out(WishboneSignature(addr_width=addr_width - shift, data_width=data_width,
                                         granularity=8)),
            **({"obs": Out(self.observation_layout)} if observe else {}),
        })

    @property
    def observation_layout(self) -> data.StructLayout:
        """Layout of :attr:`obs`: the state (``idle``, ``wait``: the Wishbone access open,
        ``respond``), the halves of a write accepted while idle (``have_aw``, ``have_w``),
        the open transaction's direction ``we`` and its answer (``resp_err``, ``rdata``)."""
        return data.StructLayout({"idle": 1, "wait": 1, "respond": 1, "have_aw": 1,
                                  "have_w": 1, "we": 1, "resp_err": 1,
                                  "rdata": self._data_width})

    @property
    def addr_width(self) -> int:
        """AXI byte address bits."""
        return self._addr_width

    @property
    def data_width(self) -> int:
        """Data bits."""
        return self._data_width

    def elaborate(self, platform) -> Module:
        m = Module()
        axi, bus = self.axi, self.bus
        have_aw = Signal()
        have_w = Signal()
        write_first = Signal()  # the arbiter's turn: set after a read, cleared after a write
        adr = Signal.like(bus.adr)
        dat_w = Signal.like(bus.dat_w)
        sel = Signal.like(bus.sel)
        we = Signal()
        m.d.comb += [bus.adr.eq(adr), bus.dat_w.eq(dat_w), bus.sel.eq(sel), bus.we.eq(we)]
        resp_err = Signal()
        rdata = Signal.like(axi.rdata)
        m.d.comb += [axi.bresp.eq(Mux(resp_err, AXI_RESP["slverr"], AXI_RESP["okay"])),
                     axi.rresp.eq(Mux(resp_err, AXI_RESP["slverr"], AXI_RESP["okay"])),
                     axi.rdata.eq(rdata)]

        with m.FSM(name="axi2wb") as fsm:
            with m.State("IDLE"):
                writing = have_aw | have_w
                write_asked = axi.awvalid | axi.wvalid
                take_read = ~writing & axi.arvalid & (~write_first | ~write_asked)
                m.d.comb += [axi.arready.eq(~writing & (~write_first | ~write_asked)),
                             axi.awready.eq(~have_aw & ~take_read),
                             axi.wready.eq(~have_w & ~take_read)]
                with m.If(take_read):
                    m.d.sync += [adr.eq(axi.araddr[self._shift:]), sel.eq(-1), we.eq(0),
                                 write_first.eq(1)]
                    m.next = "REQUEST"
                with m.Else():
                    got_aw = have_aw | axi.awvalid
                    got_w = have_w | axi.wvalid
                    with m.If(axi.awvalid & ~have_aw):
                        m.d.sync += [adr.eq(axi.awaddr[self._shift:]), have_aw.eq(1)]
                    with m.If(axi.wvalid & ~have_w):
                        m.d.sync += [dat_w.eq(axi.wdata), sel.eq(axi.wstrb), have_w.eq(1)]
                    with m.If(got_aw & got_w):
                        m.d.sync += [we.eq(1), have_aw.eq(0), have_w.eq(0),
                                     write_first.eq(0)]
                        m.next = "REQUEST"
            with m.State("REQUEST"):
                m.d.comb += [bus.cyc.eq(1), bus.stb.eq(1)]
                with m.If(~bus.stall):
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += bus.cyc.eq(1)
                with m.If(bus.ack | bus.err):
                    m.d.sync += [resp_err.eq(bus.err), rdata.eq(Mux(bus.err, 0, bus.dat_r))]
                    m.next = "RESPOND"
            with m.State("RESPOND"):
                m.d.comb += [axi.bvalid.eq(we), axi.rvalid.eq(~we)]
                with m.If(Mux(we, axi.bready, axi.rready)):
                    m.next = "IDLE"
        if self._observe:
            observe(m, self.obs, idle=fsm.ongoing("IDLE"), wait=fsm.ongoing("WAIT"),
                    respond=fsm.ongoing("RESPOND"), have_aw=have_aw, have_w=have_w, we=we,
                    resp_err=resp_err, rdata=rdata)
        return m


class UARTReceiver(wiring.Component):
    """An 8N1 UART receiver: a 2-flop synchronizer, mid-bit sampling, resync on each start bit.

    A falling edge on the (synchronized) line starts a byte; the start bit is checked
    ``divisor // 2`` cycles later (a shorter low pulse is ignored), then each data bit
    (LSB first) and the stop bit are sampled ``divisor`` cycles apart, near their middles.
    A byte whose stop bit is low (a framing error) is dropped, and the receiver waits for the
    line to go high again. After the stop bit's sample the receiver looks for the next start
    bit at once, so a sender whose bit period is a few percent off ``divisor`` is tolerated.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.

    Members
    -------
    rx : In(1)
        The serial line (asynchronous; idle high).
    data : Out(stream.Signature(8))
        Received bytes. ``valid`` is a one-cycle pulse and ``ready`` is ignored: a byte that
        is not taken is lost.
    """

    @silence_on_error
    def __init__(self, *, divisor: int) -> None:
        check_int(divisor, "divisor", owner="UARTReceiver", minimum=4, maximum=1 << 24)
        self._divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(8))})

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform) -> Module:
        m = Module()
        d = self._divisor
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1, stages=2)
        timer = Signal(range(d))
        bit = Signal(range(9))
        shreg = Signal(8)
        m.d.comb += self.data.payload.eq(shreg)
        with m.FSM(name="uart_rx"):
            with m.State("IDLE"), m.If(~line):
                m.d.sync += timer.eq(d // 2 - 1)
                m.next = "START"
            with m.State("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(line):
                        m.next = "IDLE"  # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), bit.eq(bit + 1)]
                    with m.If(bit == 8):
                        with m.If(line):
                            m.d.comb += self.data.valid.eq(1)
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "BREAK"
                    with m.Else():
                        m.d.sync += shreg.eq(Cat(shreg[1:], line))
            with m.State("BREAK"), m.If(line):
                m.next = "IDLE"
        return m


class UARTTransmitter(wiring.Component):
    """An 8N1 UART transmitter: start bit, 8 data bits LSB first, stop bit.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.

    Members
    -------
    data : In(stream.Signature(8))
        Bytes to send; taken while the transmitter is idle.
    tx : Out(1)
        The serial line, idle high, driven from a register.
    """

    @silence_on_error
    def __init__(self, *, divisor: int) -> None:
        check_int(divisor, "divisor", owner="UARTTransmitter", minimum=4, maximum=1 << 24)
        self._divisor = divisor
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform) -> Module:
        m = Module()
        d = self._divisor
        timer = Signal(range(d))
        bits = Signal(range(11))
        shreg = Signal(10, init=0x3FF)
        m.d.comb += self.tx.eq(shreg[0])
        with m.If(bits == 0):
            m.d.comb += self.data.ready.eq(1)
            with m.If(self.data.valid):
                m.d.sync += [shreg.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))),
                             bits.eq(10), timer.eq(d - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [timer.eq(d - 1), bits.eq(bits - 1),
                             shreg.eq(Cat(shreg[1:], Const(1, 1)))]
        return m


class UARTWishboneBridge(wiring.Component):
    """A Wishbone master driven over a UART by a host (see the module docs for the protocol).

    The UART is written here by hand (:class:`UARTReceiver`, :class:`UARTTransmitter`):
    amaranth-stdio, which has one, is not published on PyPI.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4 (e.g. ``round(clock_hz / baud)``).
    addr_width : int
        Wishbone word address bits, 1 to 32.
    data_width : int
        8, 16, 32 or 64.

    Members
    -------
    rx : In(1)
        Serial line from the host (asynchronous, idle high).
    tx : Out(1)
        Serial line to the host (idle high).
    bus : Out(WishboneSignature(addr_width=addr_width, data_width=data_width, granularity=8))
        One access at a time: ``cyc`` from the request to its answer, ``sel`` all ones.
    """

    #: Bytes the receive FIFO holds while an access is slow.
    RX_FIFO_DEPTH = 16

    @silence_on_error
    def __init__(self, *, divisor: int, addr_width: int = 30, data_width: int = 32) -> None:
        owner = "UARTWishboneBridge"
        check_int(divisor, "divisor", owner=owner, minimum=4, maximum=1 << 24)
        check_int(addr_width, "addr_width", owner=owner, minimum=1, maximum=32)
        check_width(data_width, "data_width", owner=owner)
        self._divisor = divisor
        self._addr_width = addr_width
        self._data_width = data_width
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "bus": Out(WishboneSignature(addr_width=addr_width, data_width=data_width,
                                         granularity=8)),
        })

    @property
    def divisor(self) -> int:
        """Clock cycles per bit."""
        return self._divisor

    @property
    def addr_width(self) -> int:
        """Wishbone word address bits."""
        return self._addr_width

    @property
    def data_width(self) -> int:
        """Data bits."""
        return self._data_width

    @property
    def cycles_per_byte(self) -> int:
        """Clock cycles a byte takes on the line: ``10 * divisor``."""
        return 10 * self._divisor

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.rxd = rxd = UARTReceiver(divisor=self._divisor)
        m.submodules.txd = txd = UARTTransmitter(divisor=self._divisor)
        m.submodules.fifo = rxf = fifo.SyncFIFOBuffered(width=8, depth=self.RX_FIFO_DEPTH)
        m.submodules.engine = engine = BridgeEngine(addr_width=self._addr_width,
                                                    data_width=self._data_width)
        m.d.comb += [rxd.rx.eq(self.rx), self.tx.eq(txd.tx),
                     rxf.w_data.eq(rxd.data.payload), rxf.w_en.eq(rxd.data.valid),
                     engine.rx.payload.eq(rxf.r_data), engine.rx.valid.eq(rxf.r_rdy),
                     rxf.r_en.eq(engine.rx.ready)]
        wiring.connect(m, engine.tx, txd.data)
        wiring.connect(m, wiring.flipped(self.bus), engine.bus)
        return m


class BridgeEngine(wiring.Component):
    """The command engine of :class:`UARTWishboneBridge`, on byte streams (no UART).

    Parameters
    ----------
    addr_width : int
        Wishbone word address bits, 1 to 32.
    data_width : int
        8, 16, 32 or 64.

    Members
    -------
    rx : In(stream.Signature(8))
        Command bytes from the host.
    tx : Out(stream.Signature(8))
        Reply bytes to the host.
    bus : Out(WishboneSignature(addr_width=addr_width, data_width=data_width, granularity=8))
    """

    @silence_on_error
    def __init__(self, *, addr_width: int = 30, data_width: int = 32) -> None:
        owner = "BridgeEngine"
        check_int(addr_width, "addr_width", owner=owner, minimum=1, maximum=32)
        check_width(data_width, "data_width", owner=owner)
        self._data_width = data_width
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "bus": Out(WishboneSignature(addr_width=addr_width, data_width=data_width,
                                         granularity=8)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        bpw = self._data_width // 8
        byte = self.rx.payload
        have = self.rx.valid
        pop = self.rx.ready

        bus = self.bus
        is_write = Signal()
        addr = Signal(32)
        count = Signal(16)  # words left
        done = Signal(16)
        failed = Signal()
        word = Signal(self._data_width)
        idx = Signal(range(max(bpw, 4) + 1))  # bytes of the current field so far
        out = Signal(max(8 * bpw, 24))  # bytes to send, LSB first
        m.d.comb += [bus.adr.eq(addr), bus.dat_w.eq(word), bus.sel.eq(-1), bus.we.eq(is_write),
                     self.tx.payload.eq(out[:8])]

        with m.FSM(name="bridge"):
            with m.State("CMD"):
                m.d.comb += pop.eq(1)
                with m.If(have):
                    m.d.sync += [idx.eq(0), done.eq(0), failed.eq(0),
                                 is_write.eq(byte == CMD_WRITE)]
                    with m.If((byte == CMD_WRITE) | (byte == CMD_READ)):
                        m.next = "ADDR"
                    with m.Else():
                        m.d.sync += [out.eq(REPLY_UNKNOWN), idx.eq(1)]
                        m.next = "SEND_STATUS"
            with m.State("ADDR"):
                m.d.comb += pop.eq(1)
                with m.If(have):
                    m.d.sync += [addr.eq(Cat(addr[8:], byte)), idx.eq(idx + 1)]
                    with m.If(idx == 3):
                        m.d.sync += idx.eq(0)
                        m.next = "COUNT"
            with m.State("COUNT"):
                m.d.comb += pop.eq(1)
                with m.If(have):
                    m.d.sync += [count.eq(Cat(count[8:], byte)), idx.eq(idx + 1)]
                    with m.If(idx == 1):
                        m.d.sync += idx.eq(0)
                        m.next = "NEXT"
            with m.State("NEXT"):
                with m.If(count == 0):
                    m.d.sync += [out.eq(Cat(failed, Const(0, 7), done)), idx.eq(3)]
                    m.next = "SEND_STATUS"
                with m.Elif(failed):
                    m.d.sync += idx.eq(0)
                    m.next = "SKIP"
                with m.Elif(is_write):
                    m.next = "WDATA"
                with m.Else():
                    m.next = "REQUEST"
            with m.State("WDATA"):
                m.d.comb += pop.eq(1)
                with m.If(have):
                    if bpw == 1:
                        m.d.sync += word.eq(byte)
                    else:
                        m.d.sync += word.eq(Cat(word[8:], byte))
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == bpw - 1):
                        m.d.sync += idx.eq(0)
                        m.next = "REQUEST"
            with m.State("REQUEST"):
                m.d.comb += [bus.cyc.eq(1), bus.stb.eq(1)]
                with m.If(~bus.stall):
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += bus.cyc.eq(1)
                with m.If(bus.ack):
                    m.d.sync += [done.eq(done + 1), out.eq(bus.dat_r)]
                with m.If(bus.err):
                    m.d.sync += [failed.eq(1), out.eq(0)]
                with m.If(bus.ack | bus.err):
                    m.d.sync += idx.eq(0)
                    m.next = "STEP"
            with m.State("STEP"):
                # a read sends its word; a write goes on (or, after an error, skips the rest)
                with m.If(is_write):
                    m.d.sync += [count.eq(count - 1), addr.eq(addr + 1)]
                    m.next = "NEXT"
                with m.Else():
                    m.next = "SEND_WORD"
            with m.State("SKIP"):
                # an error: a write discards its remaining data bytes, a read sends zeros
                with m.If(is_write):
                    m.d.comb += pop.eq(1)
                    with m.If(have):
                        m.d.sync += idx.eq(idx + 1)
                        with m.If(idx == bpw - 1):
                            m.d.sync += [idx.eq(0), count.eq(count - 1)]
                            m.next = "NEXT"
                with m.Else():
                    m.d.sync += out.eq(0)
                    m.next = "SEND_WORD"
            with m.State("SEND_WORD"):
                m.d.comb += self.tx.valid.eq(1)
                with m.If(self.tx.ready):
                    m.d.sync += [out.eq(out >> 8), idx.eq(idx + 1)]
                    with m.If(idx == bpw - 1):
                        m.d.sync += [idx.eq(0), count.eq(count - 1),
                                     addr.eq(Mux(failed, addr, addr + 1))]
                        m.next = "NEXT"
            with m.State("SEND_STATUS"):
                # ``idx`` bytes of ``out`` left to send
                m.d.comb += self.tx.valid.eq(1)
                with m.If(self.tx.ready):
                    m.d.sync += [out.eq(out >> 8), idx.eq(idx - 1)]
                    with m.If(idx == 1):
                        m.next = "CMD"
        return m
