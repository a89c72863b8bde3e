# amaranth: UnusedElaboratable=no
"""``requantize_runtime`` against :func:`sw_model.numerics.fixed.requantize`, shift by shift, and
``saturate`` against a clamp."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.arith.numeric import requantize_runtime, saturate
from sw_model.numerics.fixed import FixedFormat, requantize

from .strategies import rounding_modes


@given(st.integers(2, 24), st.integers(-6, 6), st.integers(0, 12), st.integers(2, 20),
       rounding_modes, st.data())
def test_requantize_runtime_equals_requantize(in_width, lo, span, width, rounding, data):
    hi = lo + span
    narrow_width = data.draw(st.integers(2, width))
    m = Module()
    v = Signal(signed(in_width))
    shift = Signal(range(span + 1))
    narrow = Signal()
    out = Signal(signed(width))
    m.d.comb += out.eq(requantize_runtime(v, shift, lo, hi, width, rounding, narrow=narrow,
                                          narrow_width=narrow_width))
    cases = data.draw(st.lists(st.tuples(
        st.integers(-(1 << (in_width - 1)), (1 << (in_width - 1)) - 1),
        st.integers(0, span), st.booleans()), min_size=1, max_size=40))

    async def bench(ctx):
        for value, s, n in cases:
            ctx.set(v, value)
            ctx.set(shift, s)
            ctx.set(narrow, n)
            fmt = FixedFormat(narrow_width if n else width, 0)
            want = int(requantize(np.array([value]), lo + s, fmt, rounding, "saturate")[0])
            assert ctx.get(out) == want, (value, lo + s, n)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_requantize_runtime_errors():
    v = Signal(signed(8))
    with pytest.raises(ValueError, match="lo <= hi"):
        requantize_runtime(v, Signal(2), 3, 1, 8, "floor")
    with pytest.raises(ValueError, match="both narrow and narrow_width"):
        requantize_runtime(v, Signal(2), 0, 1, 8, "floor", narrow=Signal())


@given(st.integers(2, 24), st.integers(2, 20), st.data())
def test_saturate_is_a_clamp(in_width, width, data):
    narrow_width = data.draw(st.integers(2, width))
    m = Module()
    v = Signal(signed(in_width))
    narrow = Signal()
    out = Signal(signed(width))
    m.d.comb += out.eq(saturate(v, width, narrow=narrow, narrow_width=narrow_width))
    lo_in, hi_in = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    cases = data.draw(st.lists(st.tuples(st.one_of(st.integers(lo_in, hi_in),
                                                   st.sampled_from([lo_in, hi_in, 0, -1])),
                                         st.booleans()), min_size=1, max_size=40))

    async def bench(ctx):
        for value, n in cases:
            ctx.set(v, value)
            ctx.set(narrow, n)
            bits = narrow_width if n else width
            want = min(max(value, -(1 << (bits - 1))), (1 << (bits - 1)) - 1)
            assert ctx.get(out) == want, (value, n)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_saturate_errors():
    with pytest.raises(ValueError, match="both narrow and narrow_width"):
        saturate(Signal(signed(8)), 4, narrow_width=2)
