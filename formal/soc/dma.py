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
    acknowledged for word ``k`` (bits above the word width 0); it happens only after all of
    word ``k``'s beats were acknowledged (so never for a word with an errored beat), and only
    while ``busy``; when ``done`` is valid, the writes (including one in that cycle) equal
    ``words``.
    (d) ``"out"``: the ``k``-th read has ``addr == local + k`` (``k < count``), and beat ``j``
    of word ``k`` carries bits ``[8j, 8j+8)`` of the data read for word ``k``, zero above the
    word width; a word's beats are requested only after it was read.
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
        m.d.comb += [self.wr.en.eq(self.bus.ack & ~self._obs["cmd"].dir),
                     self.wr.addr.eq(self._obs["cmd"].local + self._obs["resp_word"])]
        return m


class _IgnoresStall(DMA):
    """Broken on purpose: a stalled request counts as accepted (the beat is skipped)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self._obs["accept"].eq(self.bus.stb)
        return m


class DMASpec(Elaboratable):
    """A free environment and a slave that follows the protocol around a :class:`DMA`."""

    def __init__(self, max_outstanding: int = 2, dut_class: type = DMA,
                 cover: str | None = None) -> None:
        self.max_outstanding = max_outstanding
        self.dut_class = dut_class
        self.cover = cover

    def elaborate(self, platform) -> Module:
        m = Module()
        mo = self.max_outstanding
        dut = self.dut_class(addr_width=ADDR_WIDTH, data_width=DATA_WIDTH, memories=MEMORIES,
                             max_outstanding=mo)
        # elaborated here so that its white-box view (dut._obs) exists
        m.submodules.dut = dut.elaborate(platform)
        obs = dut._obs
        bus = dut.bus
        dw, ww = DATA_WIDTH, dut.word_width
        m.d.comb += Assume(ResetSignal() == Initial())

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

        # the command under watch, and what happened to it so far
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

        # (a) bus protocol
        stalled = Signal()
        held = Signal(len(bus.adr) + 1 + dw + len(bus.sel))
        request = Cat(bus.adr, bus.we, bus.dat_w, bus.sel)
        m.d.sync += [stalled.eq(bus.cyc & bus.stb & bus.stall), held.eq(request)]
        m.d.comb += [
            # stb only inside a bus cycle
            Assert(~bus.stb | bus.cyc, "stb implies cyc"),
            # a stalled request holds until accepted, unless the master abandons the cycle
            Assert(~(stalled & bus.cyc) | (bus.stb & (request == held)), "request holds"),
            Assert(bus.sel == (1 << len(bus.sel)) - 1, "sel all ones"),
            Assert(pend <= mo, "at most max_outstanding outstanding"),
            # an err ends the command's bus cycle at once
            Assert(~(errored & (bus.stb | bus.cyc)), "nothing after an err"),
            Assert(~(bus.cyc & ~good), "no bus cycle for a bad command"),
            Assert(~(dut.wr.en | dut.rd.en) | good, "no memory access for a bad command"),
        ]
        # (b) addresses as programmed
        with m.If(accept):
            m.d.comb += [
                Assert(bus.adr == (cap.ext + hw * cap.stride + hb)[:ADDR_WIDTH],
                       "request address"),
                Assert(bus.we == cap.dir, "request direction"),
                Assert(hw < cap.count, "no request beyond the command"),
            ]
        # (c) "in": whole words, in order, as acknowledged
        with m.If(dut.wr.en):
            m.d.comb += [
                Assert(cap.dir == 0, "writes only for 'in'"),
                Assert(dut.wr.addr == cap.local + wcount, "k-th write at local + k"),
                Assert(wcount < rw, "a word is written after all its beats were acked"),
                Assert(dut.wr.data == (acked[wcount] & width_mask), "written word as acked"),
                Assert(dut.busy, "writes only while busy"),
            ]
        # (d) "out": reads in order, beats from the word read
        with m.If(dut.rd.en):
            m.d.comb += [
                Assert(cap.dir == 1, "reads only for 'out'"),
                Assert(dut.rd.addr == cap.local + rcount, "k-th read at local + k"),
                Assert(rcount < cap.count, "no read beyond the command"),
            ]
        out_word = read[hw] & width_mask
        with m.If(accept & cap.dir):
            m.d.comb += [
                Assert(hw < rcount, "a word's beats after its read"),
                Assert(bus.dat_w == out_word.word_select(hb, dw), "beat j of word k"),
            ]
        # the report
        with m.If(dut.done.valid):
            p = dut.done.payload
            m.d.comb += [
                Assert(~reported, "one report per command"),
                Assert(p.status == Mux(~good, 2, Mux(errored, 1, 0)), "status"),
                Assert(p.words == Mux(good, rw, 0), "words: the words fully acked"),
                Assert(errored | ~good | (rw == cap.count), "ok means every word"),
                Assert(p.addr == Mux(good & errored, err_at, 0), "addr of the err"),
                Assert(cap.dir | ~good | (p.words == wcount + dut.wr.en), "writes == words"),
                Assert(~bus.cyc, "done after the bus cycle"),
            ]
        m.d.comb += [
            Assert(holds_while_stalled(m, dut.done), "done holds while stalled"),
            Assert(dut.cmd.ready == ~dut.busy, "a command only while idle"),
        ]

        # white-box invariants for the induction: the engine's view equals the harness's
        c = obs["cmd"]
        nb = obs["nbeats"]
        m.d.comb += [
            Assert(c.as_value() == cap.as_value(), "engine holds the command"),
            Assert(obs["idle"] | obs["check"] | obs["run"] | obs["report"], "a known state"),
            Assert(~obs["idle"] | reported | ~seen, "idle after the report"),
            Assert(obs["idle"] | (seen & ~reported), "busy before the report"),
            Assert(~(obs["idle"] | obs["check"]) | (pend == 0), "no request left over"),
            Assert(~obs["idle"] | ~obs["commit"], "no write pending while idle"),
            Assert(~obs["check"] | ((hw == 0) & (hb == 0) & (rw == 0) & (rb == 0)
                                   & (wcount == 0) & (rcount == 0) & ~errored & ~reported
                                   & (pend == 0) & ~obs["commit"]), "check: nothing yet"),
            Assert(~obs["check"] | ~bus.cyc, "check: no bus cycle"),
            Assert(~(obs["run"] | obs["report"]) | (good & (cap.count != 0))
                   | (obs["report"] & (hw == 0) & (rw == 0) & (wcount == 0)
                      & (rcount == 0) & ~errored & (pend == 0)), "bad or empty: no run"),
            Assert(~obs["report"] | ~bus.cyc, "report: no bus cycle"),
            Assert(~obs["run"] | ~errored, "run: no err yet"),
            Assert(~obs["report"] | obs["ok"] | (obs["status"] == 2), "bad: status 2"),
        ]
        with m.If(obs["run"] | (obs["report"] & good)):
            m.d.comb += [
                Assert(nb == beats, "beats"),
                Assert(obs["wmask"] == width_mask, "width mask"),
                Assert(hb < beats, "beat in range"),
                Assert(rb < beats, "beat in range"),
                Assert(hw <= cap.count, "requests in range"),
                Assert(rw <= hw, "answers follow requests"),
                Assert(~(hw == cap.count) | (hb == 0), "whole words requested"),
                Assert(cap.dir | (wcount + obs["commit"] == rw), "writes trail answers"),
                Assert(~cap.dir | ~obs["commit"], "no write for 'out'"),
                Assert(~obs["commit"] | (obs["commit_addr"] == cap.local + wcount),
                       "pending write address"),
                Assert(~obs["commit"] | ((obs["word"][:ww] & width_mask)
                                         == (acked[wcount] & width_mask)), "pending word"),
            ]
        with m.If(obs["run"]):
            m.d.comb += [
                Assert(obs["req_word"] == hw, "engine request word"),
                Assert(obs["req_beat"] == hb, "engine request beat"),
                Assert(obs["resp_word"] == rw, "engine answer word"),
                Assert(obs["resp_beat"] == rb, "engine answer beat"),
                Assert(obs["outstanding"] == pend, "engine outstanding"),
                Assert(obs["req_base"] == (cap.ext + hw * cap.stride)[:ADDR_WIDTH], "base"),
                Assert(obs["adr"] == (cap.ext + hw * cap.stride + hb)[:ADDR_WIDTH], "adr"),
                Assert(obs["resp_base"] == (cap.ext + rw * cap.stride)[:ADDR_WIDTH], "base"),
                Assert(rw < cap.count, "run: words left"),
                Assert(~bus.stb | (hw < cap.count), "stb only for requests left"),
                Assert(bus.cyc, "run: bus cycle"),
                Assert(obs["status"] == 0, "run: status ok"),
                Assert((obs["words"] == 0) & (obs["err_addr"] == 0) & (err_at == 0),
                       "run: nothing to report yet"),
                Assert((hw * beats + hb) - (rw * beats + rb) == pend,
                       "outstanding = requested - answered"),
            ]
            for j in range(2):
                with m.If(j < rb):
                    m.d.comb += Assert(obs["word"].word_select(j, dw)
                                       == acked[rw].word_select(j, dw), "assembled beats")
            with m.If(cap.dir):
                m.d.comb += [
                    Assert(rcount == Mux(hw == cap.count, cap.count, hw + 1), "reads ahead"),
                    Assert(rdata == read[rcount - 1], "read port holds the last read"),
                ]
        with m.If(obs["report"]):
            m.d.comb += [
                Assert(obs["status"] == Mux(~good, 2, Mux(errored, 1, 0)), "held status"),
                Assert(obs["words"] == Mux(good, rw, 0), "held words"),
                Assert(obs["err_addr"] == Mux(good & errored, err_at, 0), "held addr"),
                Assert(~(good & (cap.count != 0)) | errored | (rw == cap.count), "held ok"),
            ]

        # covers
        stall_seen = Signal()
        two_out = Signal()
        with m.If(took):
            m.d.sync += [stall_seen.eq(0), two_out.eq(0)]
        with m.Else():
            with m.If(bus.stb & bus.stall):
                m.d.sync += stall_seen.eq(1)
            with m.If(pend == 2):
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
        return m


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
