# amaranth: UnusedElaboratable=no
"""DualPrecisionPE: full-precision composition and half-precision products.

Coverage: Hypothesis up to 32x32 bits here (Amaranth simulator); SMT proofs at 6x6 and 8x8
(two 8x4 multipliers) in ``formal/arith/pe.py``; exhaustive compiled simulation at 12x12 (and 16x16
in
the nightly profile) in ``test_pe_exhaustive``.
"""

import os

import pytest
from amaranth.sim import Simulator
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.arith.pe import DualPrecisionPE
from fixar_hw.flow.export import to_verilog, verilate, verilator_available
from sw_model.numerics.pe import pe_products


def evaluate(dut, inputs):
    out = []

    async def tb(ctx):
        for w, w1, a, half in inputs:
            ctx.set(dut.w, w)
            ctx.set(dut.w1, w1)
            ctx.set(dut.a, a)
            ctx.set(dut.half, half)
            await ctx.delay(1e-9)
            out.append((ctx.get(dut.p), ctx.get(dut.p0), ctx.get(dut.p1)))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    return out


def signed_ints(width):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    return st.one_of(st.sampled_from([lo, -1, 0, 1, hi]), st.integers(lo, hi))


@given(w_width=st.integers(2, 32), half_width=st.integers(1, 16), data=st.data())
def test_pe_equals_golden(w_width, half_width, data):
    a_width = 2 * half_width
    dut = DualPrecisionPE(w_width, a_width)
    inputs = data.draw(st.lists(st.tuples(signed_ints(w_width), signed_ints(w_width),
                                          signed_ints(a_width), st.booleans()),
                                min_size=1, max_size=16))
    got = evaluate(dut, inputs)
    for (w, w1, a, half), (p, p0, p1) in zip(inputs, got, strict=True):
        want = pe_products(w, w1, a, half, a_width)
        assert (p, p0, p1) == want
        if not half:
            assert p == w * a  # the composition is the full product
        else:
            h = a_width // 2
            lo = a & ((1 << h) - 1)
            lo -= (lo >> (h - 1)) << h
            assert (p0, p1) == (w * lo, w1 * (a >> h))


def test_pe_errors():
    with pytest.raises(ValueError, match=r"^a_width must be even, not 7$"):
        DualPrecisionPE(8, 7)
    with pytest.raises(ValueError, match=r"^w_width must be at least 2, not 1$"):
        DualPrecisionPE(1, 8)
    with pytest.raises(TypeError, match=r"^a_width must be an integer, not '8'$"):
        DualPrecisionPE(8, "8")


TESTBENCH = r"""
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include "Vpe.h"
static int64_t sx(uint64_t v, int w) {
    v &= (w == 64) ? ~0ull : ((1ull << w) - 1);
    return (w < 64 && (v >> (w - 1)) & 1) ? (int64_t)(v | ~((1ull << w) - 1)) : (int64_t)v;
}
int main(int argc, char **argv) {
    const int W = atoi(argv[1]), A = atoi(argv[2]), H = A / 2;
    Vpe top;
    uint64_t checked = 0, bad = 0;
    for (int half = 0; half < 2; half++)
    for (uint64_t wr = 0; wr < (1ull << W); wr++)
    for (uint64_t ar = 0; ar < (1ull << A); ar++) {
        int64_t w = sx(wr, W), a = sx(ar, A), w1 = -w - 1;
        top.w = wr; top.w1 = (uint64_t)w1; top.a = ar; top.half = half; top.eval();
        int64_t lo = half ? sx(ar, H) : (int64_t)(ar & ((1ull << H) - 1));
        int64_t hi = a >> H;
        int64_t p0 = w * lo, p1 = (half ? w1 : w) * hi;
        checked++;
        bool ok = sx(top.p0, W + H + 1) == p0 && sx(top.p1, W + H) == p1;
        if (!half) ok = ok && sx(top.p, W + A) == w * a;
        if (!ok && bad++ < 5) printf("mismatch w=%lld a=%lld half=%d\n", (long long)w,
                                     (long long)a, half);
    }
    printf("checked %llu mismatches %llu\n", (unsigned long long)checked,
           (unsigned long long)bad);
    return 0;
}
"""


@pytest.mark.verilator
@pytest.mark.skipif(not verilator_available(), reason="verilator-cli is not installed")
@pytest.mark.parametrize("w_width, a_width", [
    (12, 12), *([(16, 16)] if os.environ.get("FIXAR_HYPOTHESIS_PROFILE") == "nightly" else []),
])
def test_pe_exhaustive(w_width, a_width):
    """Every (w, a) pair in both modes, by compiled simulation of the exported Verilog."""
    model = verilate(to_verilog(DualPrecisionPE(w_width, a_width), name="pe"), "pe", TESTBENCH)
    out = model.run([str(w_width), str(a_width)], timeout=900).stdout.split()
    assert int(out[-3]) == 2 << (w_width + a_width)
    assert int(out[-1]) == 0, " ".join(out)
