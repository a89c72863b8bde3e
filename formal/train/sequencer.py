# amaranth: UnusedElaboratable=no
"""Property harnesses for :class:`fixar_hw.train.engine.UpdateSequencer`.

The update units are abstract: they take elements whenever they are ready (``AnySeq``, the
same for all, as units in lockstep are) and return one result per element, in order, after
any delay. Memory data is free. For one command of any op, base and count (``AnyConst``):

``sequencer.contract.*`` (bmc)
    * the command is taken only while idle, and ``busy`` stays high until the last write;
    * every word read and written lies inside the command's range (the targets' range,
      ``+ soft_offset``, for the soft update's weights); a soft update writes no moments;
    * the words are written once each, in address order, and exactly ``count`` of them;
    * the element streams keep their payload while stalled.
``sequencer.cover.*`` (cover)
    A two-word command completes.
``sequencer.mutant.*`` (bmc, must FAIL)
    A sequencer that also writes the moments during a soft update is caught.
"""

from amaranth.asserts import AnyConst, AnySeq, Initial
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, ResetSignal, Signal
from amaranth.hdl import signed as _signed
from amaranth.lib import data

from fixar_hw.formal.runner import ProofJob
from fixar_hw.formal.streams import holds_while_stalled
from fixar_hw.train.engine import UpdateSequencer
from fixar_hw.train.update import UPDATE_OPS, UpdateCommandSet, UpdateUnit
from sw_model.numerics.fixed import FixedFormat

__all__ = ["JOBS", "SequencerSpec"]


class _SoftWritesMoments(UpdateSequencer):
    """Broken on purpose: the moments are written whenever the weights are."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += [self.m_wr.en.eq(self.w_wr.en), self.v_wr.en.eq(self.w_wr.en)]
        return m


class SequencerSpec(Elaboratable):
    """One command to an :class:`UpdateSequencer` with abstract units (see the module docs)."""

    def __init__(self, lanes: int = 4, units: int = 2, offset: int = 8, max_count: int = 2,
                 dut_class: type = UpdateSequencer) -> None:
        self.lanes, self.units, self.offset, self.max_count = lanes, units, offset, max_count
        self.dut_class = dut_class

    def elaborate(self, platform) -> Module:
        m = Module()
        fmt = FixedFormat(4, 2)
        unit = UpdateUnit(fmt, fmt, lr_width=4)
        unit._MustUse__silence = True
        aw = 5
        layouts = {k: data.ArrayLayout(_signed(4) if k != "V" else 63, self.lanes)
                   for k in "WGMV"}
        commands = UpdateCommandSet(fmt, self.lanes, self.units, aw)
        dut = self.dut_class(unit, commands, self.offset, layouts)
        m.submodules.dut = dut
        m.d.comb += Assume(ResetSignal() == Initial())
        # one command, any one, presented until taken
        op = Signal(2)
        lo = Signal(aw)
        count = Signal(aw)
        m.d.comb += [op.eq(AnyConst(2)), lo.eq(AnyConst(aw)), count.eq(AnyConst(aw)),
                     Assume(op <= UPDATE_OPS["soft"]), Assume((count >= 1)
                                                            & (count <= self.max_count)),
                     Assume(lo + count + self.offset < (1 << aw))]
        sent = Signal()
        m.d.comb += [dut.cmd.valid.eq(~sent), dut.cmd.payload.op.eq(op),
                     dut.cmd.payload.lo.eq(lo), dut.cmd.payload.count.eq(count),
                     dut.cmd.payload.net.eq(AnyConst(1))]
        took = dut.cmd.valid & dut.cmd.ready
        with m.If(took):
            m.d.sync += sent.eq(1)
        soft = op == UPDATE_OPS["soft"]
        # memories: any data
        for port in (dut.w_rd, dut.t_rd, dut.g_rd, dut.m_rd, dut.v_rd):
            m.d.comb += port.data.eq(AnySeq(len(port.data.as_value())))
        # abstract units in lockstep: ready together; results in order after any delay
        ready = Signal()
        m.d.comb += ready.eq(AnySeq(1))
        inflight = Signal(range(64))
        give = Signal()
        m.d.comb += give.eq(AnySeq(1) & (inflight != 0))
        for i, o in zip(dut.i, dut.o, strict=True):
            m.d.comb += [i.ready.eq(ready), o.valid.eq(give),
                         o.payload.eq(AnySeq(len(o.payload.as_value())))]
        took_el = dut.i[0].valid & dut.i[0].ready
        m.d.sync += inflight.eq(inflight + took_el - give)
        m.d.comb += Assume(inflight < 60)
        # the contract
        writes = Signal(aw + 1)
        with m.If(dut.w_wr.en):
            m.d.sync += writes.eq(writes + 1)
        expect_w = lo + writes + soft * self.offset
        done = sent & ~dut.busy & ~took
        m.d.comb += [
            Assert(~dut.cmd.ready | ~dut.busy, "command only while idle"),
            Assert(~dut.w_wr.en | (dut.w_wr.addr == expect_w), "weights written in order"),
            Assert(~dut.m_wr.en | (~soft & (dut.m_wr.addr == lo + writes)), "moments in order"),
            Assert(~dut.v_wr.en | (~soft & (dut.v_wr.addr == lo + writes)), "moments in order"),
            Assert(dut.m_wr.en == (dut.w_wr.en & ~soft), "moments with the weights"),
            Assert(writes <= count, "no extra writes"),
            Assert(~(sent & ~dut.busy) | (writes == count), "busy until the last write"),
        ]
        for port, base in ((dut.w_rd, lo + soft * self.offset), (dut.t_rd, lo),
                           (dut.g_rd, lo), (dut.m_rd, lo), (dut.v_rd, lo)):
            m.d.comb += Assert(~port.en | ((port.addr >= base) & (port.addr < base + count)),
                               "reads inside the range")
        for i in dut.i:
            m.d.comb += Assert(holds_while_stalled(m, i), "elements hold")
        m.d.comb += Cover(done & (count == 2))
        return m


def _depth(lanes: int, units: int, count: int) -> int:
    return count * (lanes // units + 1) + 12


JOBS = [
    ProofJob("sequencer.contract.l4u2", "reads and writes inside the range, in order, once",
             lambda: SequencerSpec(4, 2), "bmc", _depth(4, 2, 2)),
    ProofJob("sequencer.contract.l4u1", "reads and writes inside the range, in order, once",
             lambda: SequencerSpec(4, 1), "bmc", _depth(4, 1, 2)),
    ProofJob("sequencer.cover.l4u2", "a two-word command completes",
             lambda: SequencerSpec(4, 2), "cover", _depth(4, 2, 2)),
    ProofJob("sequencer.mutant.soft_moments", "a soft update that writes moments is caught",
             lambda: SequencerSpec(4, 2, dut_class=_SoftWritesMoments), "bmc",
             _depth(4, 2, 2), expect="FAIL"),
]
