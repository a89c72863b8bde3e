"""Property harnesses for :class:`fixar_hw.arith.sp2.SP2ShiftAdd`.

``sp2.shift_add.*`` (prove, combinational, all inputs)
    For every activation ``x`` and every code, the shift-adder's output equals ``x`` times the
    code's level integer, taken from the golden model's table
    (:meth:`sw_model.numerics.sp2.SP2Format.to_int`): one assertion per code, each a multiplication
    by
    that constant (written as a sum of ``x`` shifted to the constant's set bits, which keeps the
    SMT problem linear), so the reference shares nothing with the code-driven shifters.
    Unbounded (the design has no state).
"""

import numpy as np
from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Const, Elaboratable, Module, Signal

from fixar_hw.arith.numeric import shape_of
from fixar_hw.arith.sp2 import SP2ShiftAdd
from fixar_hw.formal.runner import ProofJob
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.sp2 import SP2Format

__all__ = ["JOBS", "SP2ShiftAddSpec"]


def _times_constant(x, constant: int):
    """``x * constant`` as a sum of shifted copies of ``x``, one per set bit of ``|constant|``."""
    magnitude = abs(constant)
    total = sum((x << i for i in range(magnitude.bit_length()) if (magnitude >> i) & 1),
                start=Const(0))
    return -total if constant < 0 else total


class SP2ShiftAddSpec(Elaboratable):
    """``p == x * level_int(code)`` for all ``x`` and all codes."""

    def __init__(self, x_fmt: FixedFormat, sp2_fmt: SP2Format) -> None:
        self.x_fmt, self.sp2_fmt = x_fmt, sp2_fmt

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = SP2ShiftAdd(self.x_fmt, self.sp2_fmt)
        x = Signal(shape_of(self.x_fmt))
        code = Signal(self.sp2_fmt.m)
        m.d.comb += [x.eq(AnyConst(x.shape())), code.eq(AnyConst(code.shape())),
                     dut.x.eq(x), dut.code.eq(code)]
        levels = self.sp2_fmt.to_int(np.arange(1 << self.sp2_fmt.m)).tolist()
        with m.Switch(code):
            for c, level in enumerate(levels):
                with m.Case(c):
                    # the output is exactly x times this code's level integer
                    m.d.comb += Assert(dut.p == _times_constant(x, level), f"code {c}")
        return m


#: (name, activation format, SP2 format, slow): slow proofs (nightly profile and ``fixar-hw
#: prove`` only) take minutes, or repeat a quicker case's coverage at a larger size (6-bit
#: codes on 16-bit activations: the 4- and 5-bit cases cover the same code paths).
_CASES = [
    ("x8_m4", FixedFormat(8, 4), SP2Format(4), False),
    ("u8_m5", FixedFormat(8, 0, signed=False), SP2Format(5), False),
    ("x12_m2", FixedFormat(12, 0), SP2Format(2), False),
    ("x16_m4", FixedFormat(16, 12), SP2Format(4), False),
    ("x16_m6", FixedFormat(16, 12), SP2Format(6), True),
    ("x32_m4", FixedFormat(32, 24), SP2Format(4), False),
    ("x32_m6", FixedFormat(32, 24), SP2Format(6), True),
    ("x16_m8", FixedFormat(16, 12), SP2Format(8), True),
]

JOBS = [
    ProofJob(f"sp2.shift_add.{name}", "shift-adder equals x * level for all x and codes",
             lambda x=x, f=f: SP2ShiftAddSpec(x, f), "prove", 1, slow=slow)
    for name, x, f, slow in _CASES
]
