"""Property harnesses for :class:`fixar_hw.arith.activation.ActivationUnit`.

``activation.contract.*`` (prove by k-induction, unbounded)
    For any input, gap and backpressure pattern: every emitted code equals the golden model's
    :func:`sw_model.numerics.activation.activate` of the input it came from (a constant table over
    every
    input code of a small format, computed by the golden model), results come out in order, and
    ``o`` keeps valid and its payload while stalled. The ROM is mapped to logic first
    (``memory_map``), so the proof covers its contents.
``activation.cover.*`` (cover)
    A negative tanh result is emitted after a stall.
"""

from amaranth.hdl import Array, Assert, Cover, Elaboratable, Module, Signal

from fixar_hw.arith.activation import ActivationUnit
from fixar_hw.formal.runner import ProofJob
from fixar_hw.formal.streams import any_environment, holds_while_stalled
from sw_model.numerics.activation import TanhTable, activate
from sw_model.numerics.fixed import FixedFormat

__all__ = ["JOBS", "ActivationContractSpec"]


class ActivationContractSpec(Elaboratable):
    """Shadow of the accepted input; the output is the golden activation of it."""

    def __init__(self, unit: ActivationUnit, rounding: str = "half_even") -> None:
        self.unit, self.rounding = unit, rounding

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = self.unit
        in_fmt, out_fmt = dut.i.payload.shape(), dut.o.payload.shape()
        any_environment(m, sources=[dut.i], sinks=[dut.o])

        fmt_in = self._fmt(in_fmt, dut)
        fmt_out = self._fmt(out_fmt, dut, out=True)
        codes = list(range(fmt_in.min_int, fmt_in.max_int + 1))
        golden = activate(codes, fmt_in, fmt_out, dut.kind, rounding=self.rounding,
                          table=dut.table).tolist()
        expected = Array(golden)  # indexed by code - min_int

        accepted = Signal(in_fmt)
        with m.If(dut.i.valid & dut.i.ready):
            m.d.sync += accepted.eq(dut.i.payload)
        o_holds = holds_while_stalled(m, dut.o)
        want = Signal(out_fmt)
        m.d.comb += want.eq(expected[(accepted - fmt_in.min_int).as_unsigned()])
        stalled = Signal()
        m.d.sync += stalled.eq(dut.o.valid & ~dut.o.ready)
        m.d.comb += [
            # every result is the golden activation of the input it came from
            Assert(~dut.o.valid | (dut.o.payload == want), "result correct"),
            # valid/ready: a stalled output keeps valid and its payload
            Assert(o_holds, "o holds"),
            Cover(dut.o.valid & dut.o.ready & (dut.o.payload < 0) & stalled),
        ]
        return m

    @staticmethod
    def _fmt(shape, dut, out=False):
        table = dut.table
        if table is not None:
            return table.out_fmt if out else table.in_fmt
        return dut._out_fmt if out else dut._in_fmt


def _tanh_unit():
    in_fmt, out_fmt = FixedFormat(7, 4), FixedFormat(8, 6)
    return ActivationUnit(in_fmt, out_fmt, "tanh",
                          table=TanhTable(in_fmt, out_fmt, index_bits=5, range_log2=1))


JOBS = [
    ProofJob("activation.contract.tanh_s7", "results equal the golden tanh table; o stable",
             lambda: ActivationContractSpec(_tanh_unit()), "prove", 4, script=("memory_map",)),
    ProofJob("activation.contract.relu_s8", "results equal the golden ReLU; o stable",
             lambda: ActivationContractSpec(ActivationUnit(
                 FixedFormat(8, 4), FixedFormat(6, 2), "relu", rounding="half_up"),
                 rounding="half_up"), "prove", 4),
    ProofJob("activation.cover.tanh_s7", "a negative tanh result after a stall",
             lambda: ActivationContractSpec(_tanh_unit()), "cover", 8,
             script=("memory_map",)),
]
