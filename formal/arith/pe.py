"""Property harnesses for :class:`fixar_hw.arith.pe.DualPrecisionPE`.

``pe.compose.*`` (prove, combinational, all inputs)
    Full precision: the composed product ``(w * a_hi << h) + w * a_lo`` equals a direct
    ``w * a``; half precision: the two products equal ``w * sext(a_lo)`` and ``w1 * a_hi``.
    A multiplier checked against a different multiplier is intractable for SMT beyond about
    8 bits, so the proofs run at 6x6 and 8x8 (two 8x4 multipliers); wider PEs are checked by
    exhaustive compiled simulation (12x12) and Hypothesis (up to 32x32) in ``tests/test_pe.py``.
"""

from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Elaboratable, Module, Signal, signed

from fixar_hw.arith.pe import DualPrecisionPE
from fixar_hw.formal.runner import ProofJob

__all__ = ["JOBS", "PEComposeSpec"]


class PEComposeSpec(Elaboratable):
    def __init__(self, w_width: int, a_width: int) -> None:
        self.w_width, self.a_width = w_width, a_width

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = DualPrecisionPE(self.w_width, self.a_width)
        h = self.a_width // 2
        w, w1 = Signal(signed(self.w_width)), Signal(signed(self.w_width))
        a, half = Signal(signed(self.a_width)), Signal()
        m.d.comb += [w.eq(AnyConst(w.shape())), w1.eq(AnyConst(w1.shape())),
                     a.eq(AnyConst(a.shape())), half.eq(AnyConst(1)),
                     dut.w.eq(w), dut.w1.eq(w1), dut.a.eq(a), dut.half.eq(half)]
        with m.If(~half):
            # full precision: the composition is the direct product
            m.d.comb += Assert(dut.p == w * a, "full product")
        with m.Else():
            # half precision: two independent signed products
            m.d.comb += [Assert(dut.p0 == w * a[:h].as_signed(), "low half product"),
                         Assert(dut.p1 == w1 * a[h:].as_signed(), "high half product")]
        return m


JOBS = [
    ProofJob(f"pe.compose.w{w}_a{a}", "full product composed from halves; half products",
             lambda w=w, a=a: PEComposeSpec(w, a), "prove", 1, slow=w > 6)
    for w, a in [(6, 6), (8, 8)]
]
