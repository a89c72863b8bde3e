# amaranth: UnusedElaboratable=no
"""Property harnesses for :mod:`fixar_hw.soc.bridges`.

Shared Wishbone master rules (:func:`wishbone_master_rules`), checked on both bridges against
any Wishbone slave that answers only outstanding requests (``stall``, ``ack``/``err`` and
``dat_r`` free otherwise):

* ``stb`` only with ``cyc``;
* while ``stb & stall``, the request (``adr``, ``we``, ``dat_w``, ``sel``) holds;
* at most one request outstanding, and no new request while one is.

``bridges.axi.*`` (prove, ``abc pdr``)
    :class:`AXILiteToWishbone` (addr_width 4, data_width 32) with any AXI4-Lite master that
    follows the protocol (each valid held with its payload until its handshake; ``bready``
    and ``rready`` free). AXI side: a response (``bvalid``/``rvalid``) holds with a stable
    payload until taken; no response without its request (``aw`` and ``w`` for ``b``, ``ar``
    for ``r``); one transaction at a time (no request handshake while one is open); ``bresp``
    and ``rresp`` are ``OKAY`` or ``SLVERR``, ``SLVERR`` exactly after ``err``, ``rdata`` the
    ``ack``'s data. Translation: a Wishbone request carries the open transaction's word
    address, data and ``wstrb`` (reads: ``sel`` all ones), and the bus is idle while no
    transaction is open. Plus the Wishbone master rules.
``bridges.axi.cover`` (cover)
    A read and a write both complete, one of them with ``SLVERR``.
``bridges.uart.*`` (prove, k-induction)
    :class:`UARTWishboneBridge` (divisor 4, addr_width 4, data_width 8) with any bit sequence
    on ``rx``: the Wishbone master rules.
``bridges.uart.cover`` (cover)
    Two accesses, each answered.
``bridges.mutant.*`` (must FAIL)
    A bridge that keeps ``stb`` up while waiting for the answer (two outstanding requests),
    and an AXI bridge that takes a read request while another transaction is open.
"""

from amaranth.asserts import AnySeq, Initial
from amaranth.hdl import Assert, Assume, Cat, Cover, Elaboratable, Module, Mux, ResetSignal, Signal

from fixar_hw.formal.runner import ProofJob
from fixar_hw.formal.streams import holds_while_stalled
from fixar_hw.soc.bridges import AXILiteToWishbone, BridgeEngine, UARTWishboneBridge

__all__ = ["JOBS", "AXILiteToWishboneSpec", "BridgeEngineSpec", "UARTWishboneBridgeSpec",
           "wishbone_master_rules"]


def wishbone_master_rules(m: Module, bus) -> tuple[Signal, Signal]:
    """Drive ``bus``'s slave side with any legal slave and assert the master rules on it.

    Returns ``(answered, outstanding)``: a one-cycle strobe of an ``ack``/``err``, and the
    count of outstanding requests.
    """
    outstanding = Signal(2)
    m.d.comb += [bus.stall.eq(AnySeq(1)), bus.ack.eq(AnySeq(1)), bus.err.eq(AnySeq(1)),
                 bus.dat_r.eq(AnySeq(len(bus.dat_r)))]
    # the slave: answers only an outstanding request, while cyc is high, never ack with err
    m.d.comb += Assume(~(bus.ack & bus.err))
    m.d.comb += Assume(~(bus.ack | bus.err) | (bus.cyc & (outstanding != 0)))
    accepted = Signal()
    answered = Signal()
    m.d.comb += [accepted.eq(bus.cyc & bus.stb & ~bus.stall), answered.eq(bus.ack | bus.err)]
    with m.If(~bus.cyc):
        m.d.sync += outstanding.eq(0)
    with m.Elif(accepted & ~answered & (outstanding != 3)):
        m.d.sync += outstanding.eq(outstanding + 1)
    with m.Elif(~accepted & answered):
        m.d.sync += outstanding.eq(outstanding - 1)
    # master rules
    m.d.comb += Assert(~bus.stb | bus.cyc, "stb only with cyc")
    m.d.comb += Assert(outstanding <= 1, "at most one request outstanding")
    m.d.comb += Assert(~bus.stb | (outstanding == 0), "no new request while one is outstanding")
    stalled = Signal()
    held = Signal(len(bus.adr) + len(bus.dat_w) + len(bus.sel) + 1)
    now = Signal.like(held)
    m.d.comb += now.eq(bus.adr | (bus.we << len(bus.adr))
                       | (bus.sel << (len(bus.adr) + 1))
                       | (bus.dat_w << (len(bus.adr) + 1 + len(bus.sel))))
    m.d.sync += [stalled.eq(bus.cyc & bus.stb & bus.stall), held.eq(now)]
    m.d.comb += Assert(~stalled | (bus.stb & (now == held)), "request held while stalled")
    return answered, outstanding


def _axi_master(m: Module, axi) -> None:
    """Any AXI4-Lite master that holds each valid and its payload until the handshake."""
    channels = {
        "aw": (axi.awvalid, axi.awready, [axi.awaddr, axi.awprot]),
        "w": (axi.wvalid, axi.wready, [axi.wdata, axi.wstrb]),
        "ar": (axi.arvalid, axi.arready, [axi.araddr, axi.arprot]),
    }
    for valid, ready, payload in channels.values():
        m.d.comb += valid.eq(AnySeq(1))
        past_wait = Signal()
        m.d.sync += past_wait.eq(valid & ~ready)
        m.d.comb += Assume(~past_wait | valid)
        for p in payload:
            m.d.comb += p.eq(AnySeq(len(p)))
            old = Signal.like(p)
            m.d.sync += old.eq(p)
            m.d.comb += Assume(~past_wait | (p == old))
    m.d.comb += [axi.bready.eq(AnySeq(1)), axi.rready.eq(AnySeq(1))]


def _response_holds(m: Module, valid, ready, payload) -> object:
    waiting = Signal()
    old = Signal.like(payload)
    m.d.sync += [waiting.eq(valid & ~ready), old.eq(payload)]
    return ~waiting | (valid & (payload == old))


class _StbWhileWaiting(AXILiteToWishbone):
    """Broken on purpose: ``stb`` stays up until the answer (a second request)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.bus.stb.eq(self.bus.cyc)
        return m


class _GreedyRead(AXILiteToWishbone):
    """Broken on purpose: a read request is taken even while a transaction is open."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.axi.arready.eq(1)
        return m


class _EngineStbWhileWaiting(BridgeEngine):
    """Broken on purpose: ``stb`` stays up until the answer (a second request)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.bus.stb.eq(self.bus.cyc)
        return m


class AXILiteToWishboneSpec(Elaboratable):
    """:class:`AXILiteToWishbone` against any legal master and slave (see the module docs)."""

    def __init__(self, addr_width: int = 4, data_width: int = 32,
                 dut_class: type = AXILiteToWishbone, cover: bool = False) -> None:
        self.addr_width = addr_width
        self.data_width = data_width
        self.dut_class = dut_class
        self.cover = cover

    def elaborate(self, platform) -> Module:
        m = Module()
        dut = self.dut_class(addr_width=self.addr_width, data_width=self.data_width,
                             observe=True)
        shift = (self.data_width // 8).bit_length() - 1
        all_lanes = (1 << (self.data_width // 8)) - 1
        m.submodules.dut = dut
        axi, bus = dut.axi, dut.bus
        m.d.comb += Assume(ResetSignal() == Initial())
        _axi_master(m, axi)
        answered, outstanding = wishbone_master_rules(m, bus)

        aw_hs = axi.awvalid & axi.awready
        w_hs = axi.wvalid & axi.wready
        ar_hs = axi.arvalid & axi.arready
        b_hs = axi.bvalid & axi.bready
        r_hs = axi.rvalid & axi.rready
        # the open transaction, as the master sees it
        aw_open = Signal()
        w_open = Signal()
        ar_open = Signal()
        addr = Signal(self.addr_width)
        wdata = Signal.like(axi.wdata)
        wstrb = Signal.like(axi.wstrb)
        with m.If(aw_hs):
            m.d.sync += [aw_open.eq(1), addr.eq(axi.awaddr)]
        with m.If(w_hs):
            m.d.sync += [w_open.eq(1), wdata.eq(axi.wdata), wstrb.eq(axi.wstrb)]
        with m.If(ar_hs):
            m.d.sync += [ar_open.eq(1), addr.eq(axi.araddr)]
        with m.If(b_hs):
            m.d.sync += [aw_open.eq(0), w_open.eq(0)]
        with m.If(r_hs):
            m.d.sync += ar_open.eq(0)
        # what the bus answered last
        answer_err = Signal()
        answer_dat = Signal.like(bus.dat_r)
        with m.If(answered):
            m.d.sync += [answer_err.eq(bus.err), answer_dat.eq(bus.dat_r)]
        resp = Mux(answer_err, 2, 0)
        writing = aw_open & w_open

        m.d.comb += [
            Assert(_response_holds(m, axi.bvalid, axi.bready, axi.bresp), "b held until taken"),
            Assert(_response_holds(m, axi.rvalid, axi.rready, Cat(axi.rdata, axi.rresp)),
                   "r held until taken"),
            Assert(~axi.bvalid | writing, "no b without aw and w"),
            Assert(~axi.rvalid | ar_open, "no r without ar"),
            Assert(~(ar_open & (aw_open | w_open)), "one transaction at a time"),
            Assert(~(aw_hs & (aw_open | ar_open)), "one transaction at a time"),
            Assert(~(w_hs & (w_open | ar_open)), "one transaction at a time"),
            Assert(~(ar_hs & (aw_open | w_open | ar_open)), "one transaction at a time"),
            Assert(~axi.bvalid | (axi.bresp == resp), "bresp reports the answer"),
            Assert(~axi.rvalid | ((axi.rresp == resp)
                                  & (axi.rdata == Mux(answer_err, 0, answer_dat))),
                   "rresp and rdata report the answer"),
            Assert(~bus.cyc | writing | ar_open, "bus idle without a transaction"),
            Assert(~bus.stb | (bus.adr == addr[shift:]), "word address of the transaction"),
            Assert(~bus.stb | (bus.we == writing), "direction of the transaction"),
            Assert(~(bus.stb & bus.we) | ((bus.dat_w == wdata) & (bus.sel == wstrb)),
                   "write data and strobes of the transaction"),
            Assert(~(bus.stb & ~bus.we) | (bus.sel == all_lanes), "reads select every byte"),
        ]
        if self.cover:
            reads = Signal(2)
            writes = Signal(2)
            slverr = Signal()
            with m.If(r_hs):
                m.d.sync += reads.eq(reads + (reads != 3))
            with m.If(b_hs):
                m.d.sync += writes.eq(writes + (writes != 3))
            with m.If((r_hs & (axi.rresp == 2)) | (b_hs & (axi.bresp == 2))):
                m.d.sync += slverr.eq(1)
            m.d.comb += Cover((reads != 0) & (writes != 0) & slverr)
        # white-box invariants: the bridge's state matches the open transaction (they make
        # the properties inductive)
        obs = dut.obs
        idle = obs.idle
        we = obs.we
        m.d.comb += [
            Assert(~idle | ((aw_open == obs.have_aw) & (w_open == obs.have_w)
                            & ~ar_open), "idle: the accepted halves of a write"),
            Assert(idle | Mux(we, writing & ~ar_open, ar_open & ~aw_open & ~w_open),
                   "busy: one whole transaction"),
            Assert(idle | ~(obs.have_aw | obs.have_w), "busy: no half write kept"),
            Assert(~obs.have_aw | (bus.adr == addr[shift:]), "kept address"),
            Assert(~(obs.have_w | (~idle & we)) | ((bus.dat_w == wdata) & (bus.sel == wstrb)),
                   "kept data"),
            Assert(idle | (bus.adr == addr[shift:]), "kept address"),
            Assert(idle | we | (bus.sel == all_lanes), "read strobes"),
            Assert((outstanding == 1) == obs.wait, "waiting for the answer"),
            Assert(~obs.respond | ((obs.resp_err == answer_err)
                                   & (obs.rdata == Mux(answer_err, 0, answer_dat))),
                   "kept answer"),
        ]
        return m


class UARTWishboneBridgeSpec(Elaboratable):
    """:class:`UARTWishboneBridge` with any ``rx`` bits: the Wishbone master rules."""

    def __init__(self, divisor: int = 4) -> None:
        self.divisor = divisor

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = UARTWishboneBridge(divisor=self.divisor, addr_width=4,
                                                    data_width=8)
        m.d.comb += Assume(ResetSignal() == Initial())
        m.d.comb += dut.rx.eq(AnySeq(1))
        wishbone_master_rules(m, dut.bus)
        return m


class BridgeEngineSpec(Elaboratable):
    """:class:`BridgeEngine` with any command bytes and reply backpressure.

    The Wishbone master rules, and the reply stream's payload held while stalled.
    """

    def __init__(self, data_width: int = 8, dut_class: type = BridgeEngine,
                 cover: bool = False) -> None:
        self.data_width = data_width
        self.dut_class = dut_class
        self.cover = cover

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = self.dut_class(addr_width=4, data_width=self.data_width)
        m.d.comb += Assume(ResetSignal() == Initial())
        m.d.comb += [dut.rx.valid.eq(AnySeq(1)), dut.rx.payload.eq(AnySeq(8)),
                     dut.tx.ready.eq(AnySeq(1))]
        answered, _ = wishbone_master_rules(m, dut.bus)
        m.d.comb += Assert(holds_while_stalled(m, dut.tx), "reply byte held while stalled")
        if self.cover:
            n = Signal(2)
            with m.If(answered & (n != 3)):
                m.d.sync += n.eq(n + 1)
            m.d.comb += Cover((n == 2) & dut.bus.cyc & dut.bus.stb)
        return m


JOBS = [
    ProofJob("bridges.axi.a4d32", "AXI4-Lite rules, translation and Wishbone master rules",
             lambda: AXILiteToWishboneSpec(4), "prove", 8),
    ProofJob("bridges.axi.a5d64", "AXI4-Lite rules, translation and Wishbone master rules",
             lambda: AXILiteToWishboneSpec(5, 64), "prove", 8),
    ProofJob("bridges.axi.cover", "a read and a write complete, one with SLVERR",
             lambda: AXILiteToWishboneSpec(4, cover=True), "cover", 14),
    ProofJob("bridges.uart.d4", "UART bridge: Wishbone master rules for any rx bits",
             lambda: UARTWishboneBridgeSpec(4), "prove", 4),
    ProofJob("bridges.engine.d8", "UART bridge engine: Wishbone master rules, replies held",
             lambda: BridgeEngineSpec(8), "prove", 4),
    ProofJob("bridges.engine.d32", "UART bridge engine: Wishbone master rules, replies held",
             lambda: BridgeEngineSpec(32), "prove", 4),
    ProofJob("bridges.engine.cover", "UART bridge engine: a third access after two answered",
             lambda: BridgeEngineSpec(8, cover=True), "cover", 30),
    ProofJob("bridges.mutant.stb_while_waiting", "a second outstanding request is caught",
             lambda: AXILiteToWishboneSpec(4, dut_class=_StbWhileWaiting), "bmc", 8,
             expect="FAIL"),
    ProofJob("bridges.mutant.greedy_read", "a read taken during a write is caught",
             lambda: AXILiteToWishboneSpec(4, dut_class=_GreedyRead), "bmc", 8,
             expect="FAIL"),
    ProofJob("bridges.mutant.engine_stb_while_waiting", "a second outstanding request is caught",
             lambda: BridgeEngineSpec(8, dut_class=_EngineStbWhileWaiting), "bmc", 16,
             expect="FAIL"),
]
