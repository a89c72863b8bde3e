# amaranth: UnusedElaboratable=no
"""SP2ShiftAdd against the golden model ``SP2Format.mul``; no multiplier after synthesis."""

import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.arith.sp2 import SP2ShiftAdd
from fixar_hw.flow.synth import resources
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.sp2 import SP2Format

from .strategies import codes, fixed_formats


def evaluate(dut: SP2ShiftAdd, pairs):
    """Drive (x, code) pairs combinationally; return the products."""
    out = []

    async def tb(ctx):
        for x, code in pairs:
            ctx.set(dut.x, x)
            ctx.set(dut.code, code)
            await ctx.delay(1e-9)
            out.append(ctx.get(dut.p))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    return out


@st.composite
def sp2_formats(draw):
    m = draw(st.integers(2, 11))
    lo, hi = m // 2, min(m - 1, 5)
    return SP2Format(m, draw(st.integers(lo, hi)))


@given(x_fmt=fixed_formats(max_width=32), sp2_fmt=sp2_formats(), data=st.data())
def test_shift_add_equals_golden(x_fmt, sp2_fmt, data):
    dut = SP2ShiftAdd(x_fmt, sp2_fmt)
    pairs = data.draw(st.lists(st.tuples(codes(x_fmt), st.integers(0, sp2_fmt.max_code)),
                               min_size=1, max_size=20))
    got = evaluate(dut, pairs)
    want = [int(sp2_fmt.mul(x, c)) for x, c in pairs]
    assert got == want


@pytest.mark.parametrize("signed", [True, False])
def test_shift_add_exhaustive_8bit_m4(signed):
    x_fmt, sp2_fmt = FixedFormat(8, 4, signed=signed), SP2Format(4)
    dut = SP2ShiftAdd(x_fmt, sp2_fmt)
    pairs = [(x, c) for x in range(x_fmt.min_int, x_fmt.max_int + 1) for c in range(16)]
    assert evaluate(dut, pairs) == sp2_fmt.mul([x for x, _ in pairs],
                                               [c for _, c in pairs]).tolist()


@pytest.mark.parametrize("family", ["ecp5", "ice40", "xilinx"])
def test_shift_add_uses_no_multiplier(family):
    dut = SP2ShiftAdd(FixedFormat(16, 12), SP2Format(6))
    assert "$mul" not in rtlil.convert(SP2ShiftAdd(FixedFormat(16, 12), SP2Format(6)))
    res = resources(dut, family)
    assert res.dsp == 0 and res.lut > 0


def test_shift_add_shapes_and_errors():
    dut = SP2ShiftAdd(FixedFormat(8, 4), SP2Format(4))
    assert dut.frac == 4 + 3
    # |x| <= 128, level <= 2**3: the product needs 12 bits signed
    assert dut.product_shape.width == 12 and dut.product_shape.signed
    with pytest.raises(TypeError, match=r"^sp2_fmt must be an SP2Format, not 4$"):
        SP2ShiftAdd(FixedFormat(8, 4), 4)
    with pytest.raises(TypeError, match=r"^x_fmt must be a FixedFormat, not None$"):
        SP2ShiftAdd(None, SP2Format(4))
