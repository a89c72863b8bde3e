# amaranth: UnusedElaboratable=no
"""Property harnesses for :class:`fixar_hw.arith.prng.ExplorationNoise`.

``prng.contract.*`` (prove by k-induction, unbounded)
    For any seeds, scales, values, gaps and backpressure: the generator state is never 0
    (xorshift32 would stick there; the design's own assertion, built under
    ``platform="formal"``), each accepted value gives exactly one output, in order, and
    ``o`` keeps valid and its payload while stalled. The noise values themselves are checked
    against :func:`sw_model.numerics.prng.gaussian_codes` by ``tests/test_prng_hw.py``.
``prng.cover.*`` (cover)
    A value leaves after a reseed and a stall.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Cover, Elaboratable, Module, Signal

from fixar_hw.arith.prng import ExplorationNoise
from fixar_hw.formal.runner import ProofJob
from fixar_hw.formal.streams import any_environment, holds_while_stalled
from sw_model.numerics.fixed import FixedFormat

__all__ = ["JOBS", "NoiseContractSpec"]


class NoiseContractSpec(Elaboratable):
    """Free environment around an :class:`ExplorationNoise`; see the module docs."""

    def __init__(self, fmt: FixedFormat) -> None:
        self.fmt = fmt

    def elaborate(self, platform) -> Module:
        m = Module()
        dut = ExplorationNoise(self.fmt)
        # the design asserts its state never 0 itself under platform="formal"
        m.submodules.dut = dut
        any_environment(m, sources=[dut.i, dut.seed], sinks=[dut.o])
        m.d.comb += dut.sigma.eq(AnySeq(len(dut.sigma)))
        pending = Signal(2)  # values accepted and not yet emitted
        took = dut.i.valid & dut.i.ready
        gave = dut.o.valid & dut.o.ready
        m.d.sync += pending.eq(pending + took - gave)
        reseeded = Signal()
        with m.If(dut.seed.valid & dut.seed.ready):
            m.d.sync += reseeded.eq(1)
        stalled = Signal()
        m.d.sync += stalled.eq(dut.o.valid & ~dut.o.ready)
        m.d.comb += [
            # one output per accepted value, none invented
            Assert(pending == dut.o.valid, "one output per value"),
            # valid/ready: a stalled output keeps valid and its payload
            Assert(holds_while_stalled(m, dut.o), "o holds"),
            Cover(gave & reseeded & stalled),
        ]
        return m


JOBS = [
    ProofJob("prng.contract.q8", "state never 0; one output per value; o stable",
             lambda: NoiseContractSpec(FixedFormat(8, 6)), "prove", 3),
    ProofJob("prng.cover.q8", "a value leaves after a reseed and a stall",
             lambda: NoiseContractSpec(FixedFormat(8, 6)), "cover", 8),
]
