# amaranth: UnusedElaboratable=no
"""Property harnesses for the Wishbone interconnect of :mod:`fixar_hw.soc.wishbone`.

Environment: every master port is driven by any master that follows the Wishbone B4 pipelined
rules (``stb`` only with ``cyc``; a stalled request held until accepted, unless ``cyc`` drops),
every slave port by any slave that follows them (``stall`` and ``dat_r`` free; ``ack`` or
``err``, never both, only while ``cyc`` and only for a request it accepted and has not
answered). The harness counts each port's outstanding requests from the outside.

``soc.decoder.*`` (prove, k-induction)
    :class:`WishboneDecoder` (4-bit addresses, 16-bit data with 8-bit lanes, windows
    ``(0, 4)``, ``(8, 4)``, ``(13, 1)``: addresses 4-7, 12, 14 and 15 unmapped;
    ``max_outstanding`` 1 or 2). Towards each slave it is a master that follows the rules
    (``stb`` only with ``cyc``, a slave's ``cyc`` only within the master's, requests held
    while stalled, at most ``max_outstanding`` outstanding). Towards the master it is a slave
    that follows them (never ``ack`` with ``err``, only outstanding requests answered, only
    while ``cyc``). Routing: a request is accepted from the master exactly when the slave
    whose window holds its address (by a naive comparison model) accepts it, in the same
    cycle, with the offset in the window as address and the same ``we``, ``dat_w``, ``sel``;
    no slave sees any other request. Answers: the harness keeps the targets of the
    outstanding requests in a FIFO; every answer the master gets is the answer (``ack``,
    ``err``, ``dat_r``) of the oldest one's slave in that cycle, and every slave answer
    reaches the master, so each request is answered exactly once, in order; an unmapped
    request gets ``err`` on the next cycle. White-box invariants (the decoder's counter and
    owner equal the harness's) make the induction close.
``soc.arbiter.*`` (prove, k-induction)
    :class:`WishboneArbiter` (2-bit addresses, 8-bit data, 2 or 3 masters). Towards the slave
    it is a master that follows the rules; towards every master a slave that follows them.
    At most one master has a request accepted per cycle, exactly when the slave accepts one,
    and it is that master's request. Once a master had a request accepted, no other master
    has a request accepted or an answer until it drops ``cyc``; every answer of the slave
    goes to that master and to no other, with its data. The grant register changes only
    after a cycle in which the granted master's ``cyc`` was low.
``soc.*.cover`` (cover)
    Decoder: two requests outstanding to one slave, then answers from another slave and an
    ``err`` for an unmapped address. Arbiter: every master gets an answer.
``soc.mutant.*`` (bmc, must FAIL)
    A decoder that returns the read data of the slave the *current* request addresses (not
    the one owning the outstanding requests), and an arbiter that moves the grant to another
    master while the granted one holds ``cyc`` (between its requests), are caught.
"""

from amaranth.asserts import AnySeq, Initial
from amaranth.hdl import (
    Array,
    Assert,
    Assume,
    Cat,
    Cover,
    Elaboratable,
    Module,
    Mux,
    ResetSignal,
    Signal,
)

from fixar_hw.formal.runner import ProofJob
from fixar_hw.soc.wishbone import WishboneArbiter, WishboneDecoder

__all__ = ["JOBS", "WishboneArbiterSpec", "WishboneDecoderSpec"]

DEC_ADDR_WIDTH = 4
DEC_WINDOWS = ((0, 4), (8, 4), (13, 1))


def _request(bus):
    return Cat(bus.adr, bus.we, bus.dat_w, bus.sel)


def any_master(m: Module, bus) -> None:
    """Drive ``bus``'s master side with any master that follows the rules."""
    for sig in (bus.cyc, bus.stb, bus.we, bus.adr, bus.dat_w, bus.sel):
        m.d.comb += sig.eq(AnySeq(len(sig)))
    m.d.comb += Assume(~bus.stb | bus.cyc)
    stalled = Signal()
    held = Signal.like(_request(bus))
    m.d.sync += [stalled.eq(bus.cyc & bus.stb & bus.stall), held.eq(_request(bus))]
    m.d.comb += Assume(~(stalled & bus.cyc) | (bus.stb & (_request(bus) == held)))


def any_slave(m: Module, bus, limit: int) -> Signal:
    """Drive ``bus``'s slave side with any slave that follows the rules; assert that the master
    follows them (at most ``limit`` outstanding). Returns the outstanding count."""
    out = Signal(range(limit + 2))
    accepted = bus.cyc & bus.stb & ~bus.stall
    answered = bus.ack | bus.err
    m.d.comb += [bus.stall.eq(AnySeq(1)), bus.ack.eq(AnySeq(1)), bus.err.eq(AnySeq(1)),
                 bus.dat_r.eq(AnySeq(len(bus.dat_r))),
                 Assume(~(bus.ack & bus.err)),
                 Assume(~answered | (bus.cyc & (out != 0)))]
    m.d.sync += out.eq(Mux(bus.cyc, out + accepted - answered, 0))
    stalled = Signal()
    held = Signal.like(_request(bus))
    m.d.sync += [stalled.eq(bus.cyc & bus.stb & bus.stall), held.eq(_request(bus))]
    m.d.comb += [
        # stb only inside a bus cycle
        Assert(~bus.stb | bus.cyc, "stb only with cyc"),
        # a stalled request holds until accepted, unless the cycle is abandoned
        Assert(~(stalled & bus.cyc) | (bus.stb & (_request(bus) == held)), "request held"),
        Assert(out <= limit, "outstanding within the limit"),
    ]
    return out


def slave_rules(m: Module, bus, out) -> None:
    """Assert that the design, as a slave on ``bus`` with ``out`` outstanding, follows the
    rules."""
    answered = bus.ack | bus.err
    m.d.comb += [
        Assert(~(bus.ack & bus.err), "never ack with err"),
        # an answer only for an accepted, unanswered request, within the bus cycle
        Assert(~answered | (bus.cyc & (out != 0)), "answers only outstanding requests"),
    ]


def _count(m: Module, bus, limit: int) -> Signal:
    out = Signal(range(limit + 2))
    accepted = bus.cyc & bus.stb & ~bus.stall
    m.d.sync += out.eq(Mux(bus.cyc, out + accepted - (bus.ack | bus.err), 0))
    return out


class _AnswersFromTarget(WishboneDecoder):
    """Broken on purpose: read data from the slave the current request addresses."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        target = self.obs.target
        data = self.slaves[0].dat_r
        for i, s in enumerate(self.slaves):
            data = Mux(target == i, s.dat_r, data)
        m.d.comb += self.bus.dat_r.eq(data)
        return m


class _Preempts(WishboneArbiter):
    """Broken on purpose: the grant moves to a waiting master between the granted master's
    requests, while it still holds ``cyc``."""

    def _releases(self, port):
        return ~port.stb


class WishboneDecoderSpec(Elaboratable):
    """:class:`WishboneDecoder` between any master and any slaves (see the module docs)."""

    def __init__(self, max_outstanding: int = 2, dut_class: type = WishboneDecoder,
                 cover: bool = False) -> None:
        self.max_outstanding = max_outstanding
        self.dut_class = dut_class
        self.cover = cover

    def elaborate(self, platform) -> Module:
        m = Module()
        mo = self.max_outstanding
        dut = self.dut_class(addr_width=DEC_ADDR_WIDTH, data_width=16, granularity=8,
                             windows=DEC_WINDOWS, max_outstanding=mo, observe=True)
        m.submodules.dut = dut
        obs = dut.obs
        m.d.comb += Assume(ResetSignal() == Initial())
        bus = dut.bus
        slaves = dut.slaves
        n = len(slaves)
        any_master(m, bus)
        s_out = [any_slave(m, s, mo) for s in slaves]
        m_out = _count(m, bus, mo)
        slave_rules(m, bus, m_out)
        m.d.comb += Assert(m_out <= mo, "at most max_outstanding outstanding")

        # the naive model of the decoding: which window holds the address
        tgt = Signal(range(n + 1))
        m.d.comb += tgt.eq(n)
        for i, (base, size) in enumerate(DEC_WINDOWS):
            with m.If((bus.adr >= base) & (bus.adr < base + size)):
                m.d.comb += tgt.eq(i)
        accepted = bus.cyc & bus.stb & ~bus.stall
        answered = bus.ack | bus.err

        # the targets of the outstanding requests, oldest first
        fifo = Array(Signal(range(n + 1), name=f"fifo{k}") for k in range(mo))
        with m.If(answered):
            for k in range(mo - 1):
                m.d.sync += fifo[k].eq(fifo[k + 1])
            with m.If(accepted):
                m.d.sync += fifo[m_out - 1].eq(tgt)
        with m.Elif(accepted):
            m.d.sync += fifo[m_out].eq(tgt)
        head = fifo[0]

        # routing of requests
        for i, (s, (base, _)) in enumerate(zip(slaves, DEC_WINDOWS, strict=True)):
            s_acc = s.cyc & s.stb & ~s.stall
            m.d.comb += [
                Assert(~s.cyc | bus.cyc, "a slave's cycle inside the master's"),
                Assert(s_acc == (accepted & (tgt == i)), "accepted by the addressed slave"),
            ]
            with m.If(s_acc):
                m.d.comb += [
                    Assert(s.adr == (bus.adr - base)[:len(s.adr)], "offset in the window"),
                    Assert((s.we == bus.we) & (s.dat_w == bus.dat_w) & (s.sel == bus.sel),
                           "request passed on"),
                ]
        # answers: from the oldest outstanding request's slave, every one passed on
        with m.If(m_out != 0):
            for i, s in enumerate(slaves):
                with m.If(head == i):
                    m.d.comb += [
                        Assert((bus.ack == s.ack) & (bus.err == s.err), "its slave's answer"),
                        Assert(~s.ack | (bus.dat_r == s.dat_r), "its slave's data"),
                    ]
        for i, s in enumerate(slaves):
            m.d.comb += Assert(~(s.ack | s.err) | ((m_out != 0) & (head == i)),
                               "no slave answer lost")
        was_unmapped = Signal()
        m.d.sync += was_unmapped.eq(accepted & (tgt == n))
        m.d.comb += [
            Assert(~((m_out != 0) & (head == n)) | ~bus.ack, "no ack for an unmapped address"),
            Assert(~(was_unmapped & bus.cyc) | bus.err, "err on the next cycle"),
        ]

        # white-box invariants: the decoder's view equals the harness's (for the induction)
        busy_slaves = sum(s_out)
        m.d.comb += [
            Assert(obs.count == m_out, "decoder counts the outstanding requests"),
            Assert(obs.err_due == was_unmapped, "err due"),
            Assert((m_out == 0) | (obs.owner == head), "owner is the oldest's target"),
            Assert(m_out == busy_slaves + obs.err_due, "outstanding = slaves' + err due"),
        ]
        for k in range(1, mo):
            m.d.comb += Assert((m_out <= k) | (fifo[k] == head), "one target at a time")
        for i in range(n):
            m.d.comb += Assert(s_out[i] == Mux((m_out != 0) & (head == i), m_out, 0),
                               "the owner holds every outstanding request")
        m.d.comb += Assert(~((m_out != 0) & (head == n)) | (m_out == 1), "one err due at most")

        if self.cover:
            two = Signal()
            other = Signal()
            unmapped = Signal()
            with m.If((m_out == 2) & (head == 0)):
                m.d.sync += two.eq(1)
            with m.If(two & bus.ack & (head == 1)):
                m.d.sync += other.eq(1)
            with m.If(other & bus.err & (head == n)):
                m.d.sync += unmapped.eq(1)
            m.d.comb += Cover(unmapped)
        return m


class WishboneArbiterSpec(Elaboratable):
    """:class:`WishboneArbiter` between any masters and any slave (see the module docs)."""

    def __init__(self, masters: int = 2, dut_class: type = WishboneArbiter,
                 cover: bool = False) -> None:
        self.masters = masters
        self.dut_class = dut_class
        self.cover = cover

    def elaborate(self, platform) -> Module:
        m = Module()
        n = self.masters
        limit = 3
        dut = self.dut_class(addr_width=2, data_width=8, granularity=8, masters=n,
                             observe=True)
        m.submodules.dut = dut
        grant = dut.obs.grant
        m.d.comb += Assume(ResetSignal() == Initial())
        ports = list(dut.masters)
        bus = dut.bus
        for p in ports:
            any_master(m, p)
        b_out = any_slave(m, bus, limit)
        m_out = [_count(m, p, limit) for p in ports]
        for p, out in zip(ports, m_out, strict=True):
            slave_rules(m, p, out)
        # a master's requests outstanding never exceed what the slave can hold
        for out in m_out:
            m.d.comb += Assume(out <= limit)

        # the master that had a request accepted and still holds cyc (n: none)
        holder = Signal(range(n + 1), init=n)
        holder_cyc = Array([*(p.cyc for p in ports), 0])[holder]
        acc = [p.cyc & p.stb & ~p.stall for p in ports]
        with m.If(~holder_cyc):
            m.d.sync += holder.eq(n)
        for i in range(n):
            with m.If(acc[i]):
                m.d.sync += holder.eq(i)

        b_acc = bus.cyc & bus.stb & ~bus.stall
        m.d.comb += Assert(sum(acc) <= 1, "one master's request per cycle")
        m.d.comb += Assert(b_acc == Cat(*acc).any(), "accepted exactly when the slave accepts")
        for i, p in enumerate(ports):
            with m.If(acc[i]):
                m.d.comb += Assert(_request(p) == _request(bus), "that master's request")
            # no other master while the holder keeps its cycle
            m.d.comb += Assert(~(acc[i] | p.ack | p.err) | (holder == i)
                               | ((holder == n) & ~(p.ack | p.err)), "the holder only")
            with m.If(holder == i):
                m.d.comb += [
                    Assert((p.ack == bus.ack) & (p.err == bus.err), "slave's answer to it"),
                    Assert(~p.ack | (p.dat_r == bus.dat_r), "slave's data to it"),
                ]
        m.d.comb += Assert(~(bus.ack | bus.err) | (holder != n), "every answer delivered")
        # the grant changes only after the granted master's cyc was low
        prev_grant = Signal.like(grant)
        prev_cyc = Signal()
        m.d.sync += [prev_grant.eq(grant), prev_cyc.eq(Array(p.cyc for p in ports)[grant])]
        started = Signal()
        m.d.sync += started.eq(1)
        m.d.comb += Assert(~started | (grant == prev_grant) | ~prev_cyc,
                           "no grant change while cyc")

        # white-box invariants (for the induction)
        m.d.comb += [
            Assert((holder == n) | (grant == holder), "the holder is granted"),
            Assert(b_out == Array([*m_out, 0])[holder], "slave's outstanding are the holder's"),
            Assert(grant < n, "grant in range"),
        ]
        for i in range(n):
            m.d.comb += Assert((holder == i) | (m_out[i] == 0), "only the holder waits")

        if self.cover:
            got = Signal(n)
            for i, p in enumerate(ports):
                with m.If(p.ack | p.err):
                    m.d.sync += got[i].eq(1)
            m.d.comb += Cover(got.all())
        return m


JOBS = [
    ProofJob("soc.decoder.o1", "decoder: bus rules both ways, routing, answers once and in "
             "order (max_outstanding 1)", lambda: WishboneDecoderSpec(1), "prove", 4),
    ProofJob("soc.decoder.o2", "decoder: bus rules both ways, routing, answers once and in "
             "order (max_outstanding 2)", lambda: WishboneDecoderSpec(2), "prove", 4),
    ProofJob("soc.decoder.cover", "decoder: two outstanding, another slave, an unmapped err",
             lambda: WishboneDecoderSpec(2, cover=True), "cover", 10),
    ProofJob("soc.arbiter.m2", "arbiter: bus rules both ways, one master per cycle, answers "
             "to the holder, no grant change while cyc (2 masters)",
             lambda: WishboneArbiterSpec(2), "prove", 4),
    ProofJob("soc.arbiter.m3", "arbiter: bus rules both ways, one master per cycle, answers "
             "to the holder, no grant change while cyc (3 masters)",
             lambda: WishboneArbiterSpec(3), "prove", 4),
    ProofJob("soc.arbiter.cover", "arbiter: every master gets an answer",
             lambda: WishboneArbiterSpec(3, cover=True), "cover", 12),
    ProofJob("soc.mutant.answers_from_target", "a decoder routing data by the current "
             "request is caught", lambda: WishboneDecoderSpec(2, dut_class=_AnswersFromTarget),
             "bmc", 8, expect="FAIL"),
    ProofJob("soc.mutant.preempts", "an arbiter moving the grant during a bus cycle is caught",
             lambda: WishboneArbiterSpec(2, dut_class=_Preempts), "bmc", 8, expect="FAIL"),
]
