# amaranth: UnusedElaboratable=no
"""Property harnesses for :class:`fixar_hw.soc.dma.DMA`.

Configuration: an 8-bit bus with 6 address bits, ``max_outstanding`` 1, 2 or 3, and three
memories: ``a`` (12-bit words, 2 beats with a padded top, depth 4, ``"rw"``), ``p`` (8-bit,
depth 3, ``"w"``) and ``q`` (4-bit, depth 2, ``"r"``); code 3 names no memory. The
environment is free: any command stream (valid and payload, bad commands included), any
``done`` backpressure, any read-port data, and a Wishbone slave with any ``stall``, ``ack``,
``err`` and ``dat_r`` that follows the protocol (answers only requests it accepted and has not
answered, never ``ack`` and ``err`` together, only while ``cyc``). The harness captures each
accepted command and counts requests, answers, reads and writes against it. Proved for every
such environment and any number of commands:

``dma.contract.*`` (prove by k-induction, unbounded)
    (a) ``stb`` only with ``cyc``; ``adr``/``we``/``dat_w``/``sel`` held while ``stb & stall``
    (unless ``cyc`` drops, abandoning); ``sel`` all ones; never more than ``max_outstanding``
    requests outstanding; after an ``err`` no ``stb`` and no ``cyc`` until the next command;
    a bad command makes no request, read or write.
    (b) the ``i``-th accepted request of a command has ``we == dir`` and
    ``adr == ext + (i // beats) * stride + i % beats``, and there are at most
    ``count * beats`` of them.
    (c) ``"in"``: the ``k``-th write has ``addr == local + k`` and the data of the beats
    acknowledged for word ``k`` in its low ``width`` bits (the port's bits above the memory's
    width are not the word's; the memory truncates them); it happens only after all of
    word ``k``'s beats were acknowledged (so never for a word with an errored beat), and only
    while ``busy``; when ``done`` is valid, the writes (including one in that cycle) equal
    ``words``.
    (d) ``"out"``: the ``k``-th read has ``addr == local + k`` (``k < count``), and beat ``j``
    of word ``k`` carries bits ``[8j, 8j+8)`` of the data read for word ``k``, as the port gave
    them (the memory side zero-extends a narrower memory); a word's beats are requested only
    after it was read.
    Report: ``status`` is 2 for a bad command, else 1 after an ``err``, else 0; ``words`` is
    the number of words whose beats were all acknowledged (``count`` when ok, 0 when bad);
    ``addr`` is the address of the errored request (else 0); one report per command, held
    while stalled; a command is taken only while idle.
    White-box invariants (the harness's counters equal the engine's) make the induction go
    through; they are asserted too.
``dma.cover.*`` (cover)
    An ``"in"`` and an ``"out"`` transfer of two 2-beat words complete under a stall with two
    requests outstanding; a bus error is reported after a committed word; a bad command is
    reported.
``dma.mutant.*`` (bmc, 12 cycles, must FAIL)
    An engine that writes on every acknowledged beat (before a word's last beat), and one that
    advances its request counters on a stalled request, are caught.
"""

from dataclasses import dataclass

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
    Value,
)

from fixar_hw.formal.runner import ProofJob
from fixar_hw.formal.streams import holds_while_stalled
from fixar_hw.soc.dma import DMA

__all__ = ["JOBS", "DMASpec"]

MEMORIES = (("a", 12, 4, "rw"), ("p", 8, 3, "w"), ("q", 4, 2, "r"))
ADDR_WIDTH = 6
DATA_WIDTH = 8


class _WritesEveryBeat(DMA):
    """Broken on purpose: writes the word being assembled on every acknowledged beat."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += [self.wr.en.eq(self.bus.ack & ~self.obs.cmd.dir),
                     self.wr.addr.eq(self.obs.cmd.local + self.obs.resp_word)]
        return m


class _IgnoresStall(DMA):
    """Broken on purpose: a stalled request counts as accepted (the beat is skipped)."""

    def _accepted(self, stb):
        return stb


class DMASpec(Elaboratable):
    """A free environment and a slave that follows the protocol around a :class:`DMA`."""

    def __init__(self, max_outstanding: int = 2, dut_class: type = DMA,
                 cover: str | None = None) -> None:
        self.max_outstanding = max_outstanding
        self.dut_class = dut_class
        self.cover = cover

    def elaborate(self, platform) -> Module:
        m = Module()
        dut = self.dut_class(addr_width=ADDR_WIDTH, data_width=DATA_WIDTH, memories=MEMORIES,
                             max_outstanding=self.max_outstanding, observe=True)
        m.submodules.dut = dut
        m.d.comb += Assume(ResetSignal() == Initial())
        h = self._environment(m, dut)
        self._assert_bus(m, dut, h)
        self._assert_memories(m, dut, h)
        self._assert_report(m, dut, h)
        self._assert_engine_state(m, dut, h)
        self._assert_engine_run(m, dut, h)
        self._covers(m, dut, h)
        return m

    def _environment(self, m: Module, dut: DMA) -> "_Harness":
        """The free environment, the protocol-following slave and read port, and the record of
        the command under watch."""
        bus = dut.bus
        dw, ww = DATA_WIDTH, dut.word_width

        # free environment
        m.d.comb += [dut.cmd.valid.eq(AnySeq(1)),
                     dut.cmd.payload.eq(AnySeq(len(Value.cast(dut.cmd.payload)))),
                     dut.done.ready.eq(AnySeq(1))]
        took = dut.cmd.valid & dut.cmd.ready
        gave = dut.done.valid & dut.done.ready

        # the slave: free, but answers only outstanding requests, once each, while cyc
        pend = Signal(range(8))
        accept = bus.cyc & bus.stb & ~bus.stall
        answer = bus.ack | bus.err
        m.d.comb += [bus.stall.eq(AnySeq(1)), bus.ack.eq(AnySeq(1)), bus.err.eq(AnySeq(1)),
                     bus.dat_r.eq(AnySeq(dw)),
                     Assume(~(bus.ack & bus.err)),
                     Assume(~answer | (bus.cyc & (pend != 0)))]
        m.d.sync += pend.eq(Mux(bus.cyc, pend + accept - answer, 0))

        # the on-chip read port: any data, one cycle after en, held while en is low
        fresh = Signal(ww)
        rdata = Signal(ww)
        m.d.comb += [fresh.eq(AnySeq(ww)), dut.rd.data.eq(rdata)]
        with m.If(dut.rd.en):
            m.d.sync += rdata.eq(fresh)
        return self._watch(m, dut, pend, accept, took, gave, fresh, rdata)

    def _watch(self, m: Module, dut: DMA, pend: Signal, accept: Value, took: Value,
               gave: Value, fresh: Signal, rdata: Signal) -> "_Harness":
        """The command under watch, and what happened to it so far."""
        bus = dut.bus
        dw, ww = DATA_WIDTH, dut.word_width
        cap = Signal(dut.command_layout)
        hw, hb = Signal(4), Signal(2)  # next request: word, beat
        rw, rb = Signal(4), Signal(2)  # next answer: word, beat
        wcount, rcount = Signal(4), Signal(4)  # writes and reads so far
        errored = Signal()
        err_at = Signal(ADDR_WIDTH)
        acked = Array(Signal(2 * dw, name=f"acked{k}") for k in range(4))  # beats acked
        read = Array(Signal(2 * dw, name=f"read{k}") for k in range(4))  # data read
        reported = Signal()
        seen = Signal()  # a command was taken

        beats = Signal(2)
        width_mask = Signal(ww)
        depth = Signal(3)
        allowed = Signal()
        with m.Switch(cap.mem):
            for code, (_, width, d, access) in enumerate(MEMORIES):
                with m.Case(code):
                    m.d.comb += [beats.eq(-(-width // dw)), width_mask.eq((1 << width) - 1),
                                 depth.eq(d),
                                 allowed.eq(cap.dir == 1 if access == "r" else
                                            cap.dir == 0 if access == "w" else 1)]
        good = Signal()
        m.d.comb += good.eq(allowed & (cap.local + cap.count <= depth))
        req_last = hb == beats - 1
        resp_last = rb == beats - 1

        with m.If(took):
            m.d.sync += [cap.eq(dut.cmd.payload), hw.eq(0), hb.eq(0), rw.eq(0), rb.eq(0),
                         wcount.eq(0), rcount.eq(0), errored.eq(0), err_at.eq(0),
                         reported.eq(0), seen.eq(1)]
        with m.Else():
            with m.If(accept):
                m.d.sync += [hb.eq(Mux(req_last, 0, hb + 1)), hw.eq(hw + req_last)]
            with m.If(bus.ack):
                m.d.sync += [rb.eq(Mux(resp_last, 0, rb + 1)), rw.eq(rw + resp_last),
                             acked[rw].word_select(rb, dw).eq(bus.dat_r)]
            with m.If(bus.err):
                m.d.sync += [errored.eq(1), err_at.eq(cap.ext + rw * cap.stride + rb)]
            with m.If(dut.wr.en):
                m.d.sync += wcount.eq(wcount + 1)
            with m.If(dut.rd.en):
                m.d.sync += [rcount.eq(rcount + 1), read[rcount].eq(fresh)]
            with m.If(gave):
                m.d.sync += reported.eq(1)
        return _Harness(pend, accept, took, gave, rdata, cap, hw, hb, rw, rb, wcount, rcount,
                        errored, err_at, acked, read, reported, seen, beats, width_mask, good)

    def _assert_bus(self, m: Module, dut: DMA, h: "_Harness") -> None:
        """(a) the bus protocol and (b) the request addresses."""
        bus, cap = dut.bus, h.cap
        stalled = Signal()
        held = Signal(len(bus.adr) + 1 + DATA_WIDTH + len(bus.sel))
        request = Cat(bus.adr, bus.we, bus.dat_w, bus.sel)
        m.d.sync += [stalled.eq(bus.cyc & bus.stb & bus.stall), held.eq(request)]
        m.d.comb += [
            # stb only inside a bus cycle
            Assert(~bus.stb | bus.cyc, "stb implies cyc"),
            # a stalled request holds until accepted, unless the master abandons the cycle
            Assert(~(stalled & bus.cyc) | (bus.stb & (request == held)), "request holds"),
            Assert(bus.sel == (1 << len(bus.sel)) - 1, "sel all ones"),
            Assert(h.pend <= self.max_outstanding, "at most max_outstanding outstanding"),
            # an err ends the command's bus cycle at once
            Assert(~(h.errored & (bus.stb | bus.cyc)), "nothing after an err"),
            Assert(~(bus.cyc & ~h.good), "no bus cycle for a bad command"),
            Assert(~(dut.wr.en | dut.rd.en) | h.good, "no memory access for a bad command"),
        ]
        # (b) addresses as programmed
        with m.If(h.accept):
            m.d.comb += [
                Assert(bus.adr == (cap.ext + h.hw * cap.stride + h.hb)[:ADDR_WIDTH],
                       "request address"),
                Assert(bus.we == cap.dir, "request direction"),
                Assert(h.hw < cap.count, "no request beyond the command"),
            ]

    def _assert_memories(self, m: Module, dut: DMA, h: "_Harness") -> None:
        """(c) the writes of ``"in"`` and (d) the reads and beats of ``"out"``."""
        cap, wcount, rcount = h.cap, h.wcount, h.rcount
        # (c) "in": whole words, in order, as acknowledged
        with m.If(dut.wr.en):
            m.d.comb += [
                Assert(cap.dir == 0, "writes only for 'in'"),
                Assert(dut.wr.addr == cap.local + wcount, "k-th write at local + k"),
                Assert(wcount < h.rw, "a word is written after all its beats were acked"),
                Assert((dut.wr.data & h.width_mask) == (h.acked[wcount] & h.width_mask),
                       "written word as acked"),
                Assert(dut.busy, "writes only while busy"),
            ]
        # (d) "out": reads in order, beats from the word read
        with m.If(dut.rd.en):
            m.d.comb += [
                Assert(cap.dir == 1, "reads only for 'out'"),
                Assert(dut.rd.addr == cap.local + rcount, "k-th read at local + k"),
                Assert(rcount < cap.count, "no read beyond the command"),
            ]
        out_word = h.read[h.hw]
        with m.If(h.accept & cap.dir):
            m.d.comb += [
                Assert(h.hw < rcount, "a word's beats after its read"),
                Assert(dut.bus.dat_w == out_word.word_select(h.hb, DATA_WIDTH), "beat j of word k"),
            ]

    def _assert_report(self, m: Module, dut: DMA, h: "_Harness") -> None:
        """The report: one per command, its fields, and the command handshake."""
        cap, good, errored = h.cap, h.good, h.errored
        with m.If(dut.done.valid):
            p = dut.done.payload
            m.d.comb += [
                Assert(~h.reported, "one report per command"),
                Assert(p.status == Mux(~good, 2, Mux(errored, 1, 0)), "status"),
                Assert(p.words == Mux(good, h.rw, 0), "words: the words fully acked"),
                Assert(errored | ~good | (h.rw == cap.count), "ok means every word"),
                Assert(p.addr == Mux(good & errored, h.err_at, 0), "addr of the err"),
                Assert(cap.dir | ~good | (p.words == h.wcount + dut.wr.en), "writes == words"),
                Assert(~dut.bus.cyc, "done after the bus cycle"),
            ]
        m.d.comb += [
            Assert(holds_while_stalled(m, dut.done), "done holds while stalled"),
            Assert(dut.cmd.ready == ~dut.busy, "a command only while idle"),
        ]

    def _assert_engine_state(self, m: Module, dut: DMA, h: "_Harness") -> None:
        """White-box invariants for the induction: the engine's state and counters equal the
        harness's record, outside and inside a run."""
        obs, bus, cap = dut.obs, dut.bus, h.cap
        hw, hb, rw, rb, wcount, rcount = h.hw, h.hb, h.rw, h.rb, h.wcount, h.rcount
        pend, errored, reported, good = h.pend, h.errored, h.reported, h.good
        ww = dut.word_width
        c = obs.cmd
        nb = obs.nbeats
        m.d.comb += [
            Assert(c.as_value() == cap.as_value(), "engine holds the command"),
            Assert(obs.idle | obs.check | obs.run | obs.report, "a known state"),
            Assert(~obs.idle | reported | ~h.seen, "idle after the report"),
            Assert(obs.idle | (h.seen & ~reported), "busy before the report"),
            Assert(~(obs.idle | obs.check) | (pend == 0), "no request left over"),
            Assert(~obs.idle | ~obs.commit, "no write pending while idle"),
            Assert(~obs.check | ((hw == 0) & (hb == 0) & (rw == 0) & (rb == 0)
                                   & (wcount == 0) & (rcount == 0) & ~errored & ~reported
                                   & (pend == 0) & ~obs.commit), "check: nothing yet"),
            Assert(~obs.check | ~bus.cyc, "check: no bus cycle"),
            Assert(~(obs.run | obs.report) | (good & (cap.count != 0))
                   | (obs.report & (hw == 0) & (rw == 0) & (wcount == 0)
                      & (rcount == 0) & ~errored & (pend == 0)), "bad or empty: no run"),
            Assert(~obs.report | ~bus.cyc, "report: no bus cycle"),
            Assert(~obs.run | ~errored, "run: no err yet"),
            Assert(~obs.report | obs.ok | (obs.status == 2), "bad: status 2"),
            Assert(obs.idle | ~h.seen | (obs.ok == good), "the checks' register"),
            Assert(~obs.check | (obs.rd_addr == cap.local), "check: the first read's "
                   "address"),
        ]
        with m.If(obs.run | (obs.report & good)):
            m.d.comb += [
                Assert(nb == h.beats, "beats"),
                Assert(hb < h.beats, "beat in range"),
                Assert(rb < h.beats, "beat in range"),
                Assert(hw <= cap.count, "requests in range"),
                Assert(rw <= hw, "answers follow requests"),
                Assert(~(hw == cap.count) | (hb == 0), "whole words requested"),
                Assert(cap.dir | (wcount + obs.commit == rw), "writes trail answers"),
                Assert(~cap.dir | ~obs.commit, "no write for 'out'"),
                Assert(~obs.commit | (obs.commit_addr == cap.local + wcount),
                       "pending write address"),
                Assert(~obs.commit | ((obs.word[:ww] & h.width_mask)
                                         == (h.acked[wcount] & h.width_mask)), "pending word"),
            ]

    def _assert_engine_run(self, m: Module, dut: DMA, h: "_Harness") -> None:
        """White-box invariants of a running command (counters, addresses, the word being
        assembled, reads ahead) and of a held report."""
        obs, bus, cap = dut.obs, dut.bus, h.cap
        hw, hb, rw, rb, rcount = h.hw, h.hb, h.rw, h.rb, h.rcount
        beats, good, errored, err_at = h.beats, h.good, h.errored, h.err_at
        dw = DATA_WIDTH
        with m.If(obs.run):
            m.d.comb += [
                Assert(obs.req_word == hw, "engine request word"),
                Assert(obs.req_beat == hb, "engine request beat"),
                Assert(obs.resp_word == rw, "engine answer word"),
                Assert(obs.resp_beat == rb, "engine answer beat"),
                Assert(obs.outstanding == h.pend, "engine outstanding"),
                Assert(obs.req_base == (cap.ext + hw * cap.stride)[:ADDR_WIDTH], "base"),
                Assert(obs.adr == (cap.ext + hw * cap.stride + hb)[:ADDR_WIDTH], "adr"),
                Assert(obs.resp_base == (cap.ext + rw * cap.stride)[:ADDR_WIDTH], "base"),
                Assert(rw < cap.count, "run: words left"),
                Assert(~bus.stb | (hw < cap.count), "stb only for requests left"),
                Assert(bus.cyc, "run: bus cycle"),
                Assert(obs.status == 0, "run: status ok"),
                Assert((obs.words == 0) & (obs.err_addr == 0) & (err_at == 0),
                       "run: nothing to report yet"),
                Assert((hw * beats + hb) - (rw * beats + rb) == h.pend,
                       "outstanding = requested - answered"),
            ]
            for j in range(2):
                with m.If(j < rb):
                    m.d.comb += Assert(obs.word.word_select(j, dw)
                                       == h.acked[rw].word_select(j, dw), "assembled beats")
            with m.If(cap.dir):
                # the request's data register holds beat hb of word hw; the word after it is
                # read as a word's last beat is loaded
                q_full = obs.q_full
                next_read = q_full & (hb == beats - 1) & (hw + 1 != cap.count)
                m.d.comb += [
                    Assert(rcount == Mux(hw == cap.count, cap.count, hw + 1 + next_read),
                           "reads ahead"),
                    Assert(h.rdata == h.read[rcount - 1], "read port holds the last read"),
                    Assert(obs.rd_addr == (cap.local + rcount)[:len(obs.rd_addr)],
                           "the next read's address"),
                    Assert(obs.reads_left == cap.count - rcount, "reads left"),
                    Assert(q_full | (hw == cap.count) | ((hw == 0) & (hb == 0)),
                           "the data register is empty only before the first beat or after "
                           "the last"),
                ]
                with m.If(q_full):
                    m.d.comb += [
                        Assert(hw != cap.count, "a loaded beat is one left to request"),
                        Assert(obs.dat_q == h.read[hw].word_select(hb, dw),
                               "the data register holds the request's beat"),
                    ]
        with m.If(obs.report):
            m.d.comb += [
                Assert(obs.status == Mux(~good, 2, Mux(errored, 1, 0)), "held status"),
                Assert(obs.words == Mux(good, rw, 0), "held words"),
                Assert(obs.err_addr == Mux(good & errored, err_at, 0), "held addr"),
                Assert(~(good & (cap.count != 0)) | errored | (rw == cap.count), "held ok"),
            ]

    def _covers(self, m: Module, dut: DMA, h: "_Harness") -> None:
        """The cover named by :attr:`cover` (none for ``None``)."""
        bus, cap, gave = dut.bus, h.cap, h.gave
        stall_seen = Signal()
        two_out = Signal()
        with m.If(h.took):
            m.d.sync += [stall_seen.eq(0), two_out.eq(0)]
        with m.Else():
            with m.If(bus.stb & bus.stall):
                m.d.sync += stall_seen.eq(1)
            with m.If(h.pend == 2):
                m.d.sync += two_out.eq(1)
        busy_cover = gave & (cap.mem == 0) & (cap.count == 2) & stall_seen & two_out
        if self.cover == "in":
            m.d.comb += Cover(busy_cover & (cap.dir == 0) & (dut.done.payload.status == 0))
        elif self.cover == "out":
            m.d.comb += Cover(busy_cover & (cap.dir == 1) & (dut.done.payload.status == 0))
        elif self.cover == "err":
            m.d.comb += Cover(gave & (dut.done.payload.status == 1)
                              & (dut.done.payload.words == 1) & (cap.dir == 0))
        elif self.cover == "bad":
            m.d.comb += Cover(gave & (dut.done.payload.status == 2) & (cap.mem == 3))


@dataclass(frozen=True, eq=False)
class _Harness:
    """What :class:`DMASpec` records around the engine: the slave's outstanding requests, the
    handshakes, and the command under watch with its counters."""

    pend: Signal         # requests accepted and not yet answered
    accept: Value        # a request is accepted this cycle
    took: Value          # a command is taken this cycle
    gave: Value          # a report is taken this cycle
    rdata: Signal        # the read port's data
    cap: Signal          # the command under watch
    hw: Signal           # next request: word
    hb: Signal           # next request: beat
    rw: Signal           # next answer: word
    rb: Signal           # next answer: beat
    wcount: Signal       # writes so far
    rcount: Signal       # reads so far
    errored: Signal      # an err was answered
    err_at: Signal       # the address of the errored request
    acked: Array         # per word, the beats acknowledged
    read: Array          # per word, the data read
    reported: Signal     # the command's report was taken
    seen: Signal         # a command was taken
    beats: Signal        # beats per word of the command's memory
    width_mask: Signal   # the word width of the command's memory, as a mask
    good: Signal         # the command is valid


JOBS = [
    ProofJob("dma.contract.o1", "bus protocol, addresses, whole words in order, report "
             "(max_outstanding 1)", lambda: DMASpec(1), "prove", 4),
    ProofJob("dma.contract.o2", "bus protocol, addresses, whole words in order, report "
             "(max_outstanding 2)", lambda: DMASpec(2), "prove", 4),
    ProofJob("dma.contract.o3", "bus protocol, addresses, whole words in order, report "
             "(max_outstanding 3)", lambda: DMASpec(3), "prove", 4),
    ProofJob("dma.cover.in", "an 'in' transfer of two 2-beat words completes after a stall",
             lambda: DMASpec(2, cover="in"), "cover", 14),
    ProofJob("dma.cover.out", "an 'out' transfer of two 2-beat words completes after a stall",
             lambda: DMASpec(2, cover="out"), "cover", 14),
    ProofJob("dma.cover.err", "a bus error is reported after one committed word",
             lambda: DMASpec(2, cover="err"), "cover", 12),
    ProofJob("dma.cover.bad", "a bad command is reported", lambda: DMASpec(2, cover="bad"),
             "cover", 6),
    ProofJob("dma.mutant.early_write", "an engine writing before a word's last beat is caught",
             lambda: DMASpec(2, dut_class=_WritesEveryBeat), "bmc", 12, expect="FAIL"),
    ProofJob("dma.mutant.ignores_stall", "an engine skipping a stalled beat is caught",
             lambda: DMASpec(2, dut_class=_IgnoresStall), "bmc", 12, expect="FAIL"),
]
