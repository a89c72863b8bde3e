"""SP2 codes against independent references: the definition enumerated with Fractions."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sw_model.numerics.sp2 import MAX_M, MIN_M, SP2Format

# Every valid (m, m1): m1 from ceil((m-1)/2) to min(m-1, 5).
ALL_SPLITS = [(m, m1) for m in range(MIN_M, MAX_M + 1)
              for m1 in range(math.ceil((m - 1) / 2), min(m - 1, 5) + 1)]
SMALL_SPLITS = [(m, m1) for m, m1 in ALL_SPLITS if m <= 7]

sp2_formats = st.sampled_from(ALL_SPLITS).map(lambda s: SP2Format(*s))
small_formats = st.sampled_from(SMALL_SPLITS).map(lambda s: SP2Format(*s))


def term(c: int) -> Fraction:
    """The definition: a sub-code selects 0 when it is 0, else 2**-c."""
    return Fraction(0) if c == 0 else Fraction(1, 2**c)


def ref_decode(code: int, m: int, m1: int) -> Fraction:
    """Level of a code from the documented layout ``sign << (m-1) | c1 << m2 | c2``."""
    m2 = m - 1 - m1
    sign = code >> (m - 1)
    c1 = (code >> m2) % 2**m1
    c2 = code % 2**m2
    mag = term(c1) + term(c2)
    return -mag if sign else mag


def ref_levels(m: int, m1: int) -> list[Fraction]:
    m2 = m - 1 - m1
    return sorted({term(c1) + term(c2) for c1 in range(2**m1) for c2 in range(2**m2)})


@functools.cache
def ref_canonical(m: int, m1: int) -> dict[Fraction, int]:
    """The smallest code of each level (so zero is code 0, never a negative zero)."""
    out: dict[Fraction, int] = {}
    for c in range(2**m):
        out.setdefault(ref_decode(c, m, m1), c)
    return out


def ref_nearest(r: Fraction, levels: list[Fraction]) -> Fraction:
    """Nearest level to ``r >= 0``; ties to the smaller level."""
    return min(levels, key=lambda lv: (abs(r - lv), lv))


# --- format ---------------------------------------------------------------------------------


def test_format_properties():
    f = SP2Format(4)
    assert (f.m, f.m1, f.m2, f.shift, f.frac, f.max_level_int, f.max_code) == (
        4, 2, 1, 3, 3, 8, 15)
    g = SP2Format(2)
    assert (g.m1, g.m2, g.shift, g.max_level_int) == (1, 0, 1, 1)  # levels 0 and 1/2
    assert (SP2Format(8).m1, SP2Format(8).m2, SP2Format(8).shift) == (4, 3, 15)
    assert (SP2Format(11).m1, SP2Format(11).shift) == (5, 31)
    assert SP2Format(7, 4).m2 == 2


def test_format_is_frozen_hashable_and_normalised():
    f = SP2Format(6)
    with pytest.raises(AttributeError):
        f.m = 5
    assert {f: 1}[SP2Format(np.int64(6), 3)] == 1
    assert f == SP2Format(6, 3) and f != SP2Format(6, 4)
    assert repr(f) == "SP2Format(6, m1=3)"
    assert type(SP2Format(np.int64(6)).m) is int


@pytest.mark.parametrize(
    "args, exc, msg",
    [
        ((1,), ValueError, r"^SP2Format m must be from 2 to 11, not 1$"),
        ((12,), ValueError, r"^SP2Format m must be from 2 to 11, not 12$"),
        ((4.0,), TypeError, r"^SP2Format m must be an integer, not 4\.0$"),
        ((True,), TypeError, r"^SP2Format m must be an integer, not True$"),
        ((6, 2), ValueError, r"^SP2Format m1 must be from 3 to 5 for m=6, not 2$"),
        ((6, 6), ValueError, r"^SP2Format m1 must be from 3 to 5 for m=6, not 6$"),
        ((9, 6), ValueError, r"^SP2Format m1 must be from 4 to 5 for m=9, not 6$"),
        ((4, "2"), TypeError, r"^SP2Format m1 must be an integer, not '2'$"),
        ((4, False), TypeError, r"^SP2Format m1 must be an integer, not False$"),
    ],
)
def test_format_errors(args, exc, msg):
    with pytest.raises(exc, match=msg):
        SP2Format(*args)


# --- levels ---------------------------------------------------------------------------------


@pytest.mark.parametrize("m, m1", ALL_SPLITS)
def test_levels_match_enumeration(m, m1):
    f = SP2Format(m, m1)
    want = ref_levels(m, m1)
    k = 2**m1 - 1
    assert [Fraction(v) for v in f.levels()] == want
    assert f.level_ints().tolist() == [int(lv * 2**k) for lv in want]
    assert all((lv * 2**k).denominator == 1 for lv in want)  # K is enough fraction bits
    assert f.max_level_int == int(max(want) * 2**k)
    assert max(want) == (1 if m - 1 - m1 >= 1 else Fraction(1, 2))


def test_levels_example_and_readonly_tables():
    f = SP2Format(4)
    assert f.levels().tolist() == [0, 0.125, 0.25, 0.5, 0.625, 0.75, 1.0]
    lv = f.levels()
    lv[0] = 5.0  # a copy: the cached tables are not touched
    assert f.levels()[0] == 0.0


@pytest.mark.parametrize("m, m1", ALL_SPLITS)
def test_to_int_matches_definition_for_every_code(m, m1):
    f = SP2Format(m, m1)
    codes = np.arange(2**m)
    got = f.to_int(codes).tolist()
    k = 2**m1 - 1
    assert got == [int(ref_decode(c, m, m1) * 2**k) for c in range(2**m)]


# --- layout ---------------------------------------------------------------------------------


def test_layout_example():
    f = SP2Format(8)  # m1 = 4, m2 = 3
    assert f.pack(1, 0b1010, 0b011).tolist() == 0b1_1010_011
    sign, c1, c2 = f.unpack([0b1_1010_011, 0b0_0001_111])
    assert (sign.tolist(), c1.tolist(), c2.tolist()) == ([1, 0], [10, 1], [3, 7])
    g = SP2Format(2)  # m2 = 0: no c2 bits
    assert g.pack([0, 1], [1, 1], [0, 0]).tolist() == [1, 3]
    assert [a.tolist() for a in g.unpack([3])] == [[1], [1], [0]]


@given(f=sp2_formats, data=st.data())
def test_pack_unpack_roundtrip(f, data):
    n = data.draw(st.integers(1, 8))
    sign = data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    c1 = data.draw(st.lists(st.integers(0, 2**f.m1 - 1), min_size=n, max_size=n))
    c2 = data.draw(st.lists(st.integers(0, 2**f.m2 - 1), min_size=n, max_size=n))
    codes = f.pack(sign, c1, c2)
    assert codes.tolist() == [s << (f.m - 1) | a << f.m2 | b for s, a, b in zip(
        sign, c1, c2, strict=True)]
    assert [a.tolist() for a in f.unpack(codes)] == [sign, c1, c2]
    assert f.pack(*f.unpack(np.arange(2**f.m))).tolist() == list(range(2**f.m))


def test_layout_errors():
    f = SP2Format(4)
    with pytest.raises(ValueError, match=r"^codes holds 16, outside SP2Format\(4, m1=2\) codes "
                                         r"\[0, 15\]$"):
        f.unpack([3, 16])
    with pytest.raises(ValueError, match=r"^codes holds -1, outside SP2Format\(4, m1=2\) codes "
                                         r"\[0, 15\]$"):
        f.to_int([-1])
    with pytest.raises(ValueError, match=r"^c1 holds 4, outside \[0, 3\]$"):
        f.pack(0, 4, 0)
    with pytest.raises(ValueError, match=r"^c2 holds 2, outside \[0, 1\]$"):
        f.pack(0, 0, 2)
    with pytest.raises(ValueError, match=r"^sign holds -1, outside \[0, 1\]$"):
        f.pack(-1, 0, 0)
    with pytest.raises(TypeError, match=r"^codes must hold integers, not an array of float64$"):
        f.decode([1.0])


# --- quantize and decode --------------------------------------------------------------------


@st.composite
def weights_and_alpha(draw, f: SP2Format):
    """A scale and weights near levels, midpoints (and one ulp either side) and beyond."""
    alpha = draw(st.one_of(st.sampled_from([1.0, 0.25, 3.0]),
                           st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)))
    levels = f.levels()
    mids = (levels[:-1] + levels[1:]) / 2
    specials = np.concatenate([levels, mids, np.nextafter(mids, 0), np.nextafter(mids, 9),
                               [levels[-1] * 1.5, 1e300, np.inf, 0.0]])
    special = st.sampled_from(specials.tolist()).map(lambda v: v * alpha)
    one = st.one_of(special, st.floats(-2 * alpha, 2 * alpha, allow_nan=False))
    sign = st.sampled_from([1.0, -1.0])
    w = draw(st.lists(st.tuples(one, sign).map(lambda t: t[0] * t[1]), min_size=1, max_size=10))
    return w, alpha


@given(f=sp2_formats, data=st.data())
def test_quantize_is_nearest_ties_to_smaller(f, data):
    w, alpha = data.draw(weights_and_alpha(f))
    codes = f.quantize(w, alpha)
    assert codes.dtype == np.int64
    levels = ref_levels(f.m, f.m1)
    k = f.shift
    for v, code in zip(w, codes.tolist(), strict=True):
        ratio = abs(v) / alpha  # the documented float64 ratio
        want = ref_nearest(Fraction(ratio) if math.isfinite(ratio) else levels[-1] * 2, levels)
        got = ref_decode(code, f.m, f.m1)
        assert abs(got) == want
        assert (got < 0) == (v < 0 and want != 0)
        assert code == ref_canonical(f.m, f.m1)[got]  # the smallest code of that level
        assert f.to_int(code) == int(got * 2**k)


def test_quantize_ties_and_specials():
    f = SP2Format(4)  # levels 0, 1/8, 1/4, 1/2, 5/8, 3/4, 1
    w = [1 / 16, 3 / 16, 3 / 8, 9 / 16, 11 / 16, 7 / 8, -7 / 8, -1 / 16, -0.0, 2.0, -np.inf]
    got = [float(ref_decode(c, 4, 2)) for c in f.quantize(w).tolist()]
    assert got == [0, 1 / 8, 1 / 4, 1 / 2, 5 / 8, 3 / 4, -3 / 4, 0, 0, 1, -1]
    assert f.quantize([-0.0, -1e-9]).tolist() == [0, 0]  # never a negative zero
    # per-row scales broadcast
    got = f.quantize([[1.0, -0.5], [1.0, -0.5]], [[1.0], [2.0]])
    assert got.tolist() == [[3, 8 + 1], [1, 8 + 4]]
    with pytest.raises(ValueError, match=r"^w holds NaN, which has no SP2 code$"):
        f.quantize([0.0, np.nan])
    with pytest.raises(ValueError, match=r"^alpha must be positive and finite, not 0\.0$"):
        f.quantize([1.0], [[1.0], [0.0]])
    with pytest.raises(ValueError, match=r"^alpha must be positive and finite, not inf$"):
        f.quantize([1.0], np.inf)
    with pytest.raises(ValueError, match=r"^alpha must be positive and finite, not -2\.0$"):
        f.quantize([1.0], -2.0)


@given(f=sp2_formats, alpha=st.floats(1e-6, 1e6))
def test_decode_quantize_roundtrip_every_level(f, alpha):
    levels = f.levels()
    for w in (levels * alpha, -levels * alpha):
        codes = f.quantize(w, alpha)
        assert f.decode(codes, alpha).tolist() == w.tolist()


@given(f=sp2_formats, alpha=st.floats(1e-6, 1e6), data=st.data())
def test_decode_is_rounded_exact_product(f, alpha, data):
    codes = data.draw(st.lists(st.integers(0, 2**f.m - 1), min_size=1, max_size=8))
    got = f.decode(codes, alpha).tolist()
    assert got == [float(ref_decode(c, f.m, f.m1) * Fraction(alpha)) for c in codes]


# --- the shift-add product ------------------------------------------------------------------

X_CORNERS = [0, 1, -1, 2**31 - 1, -(2**31), 2**32 - 1, -(2**32) + 1, 12345]


@pytest.mark.parametrize("m, m1", SMALL_SPLITS)
def test_mul_every_code_at_32_bit_extremes(m, m1):
    f = SP2Format(m, m1)
    k = 2**m1 - 1
    rng = np.random.default_rng(m * 10 + m1)
    xs = X_CORNERS + rng.integers(-(2**31), 2**32, 8).tolist()
    codes = np.arange(2**m)
    got = f.mul(np.array(xs)[:, None], codes[None, :])
    assert got.dtype == np.int64
    want = [[int(x * ref_decode(c, m, m1) * 2**k) for c in range(2**m)] for x in xs]
    assert got.tolist() == want


@given(f=sp2_formats, data=st.data())
def test_mul_matches_reference(f, data):
    """Every format including K = 31, 32-bit activations: int64 suffices and is exact."""
    n = data.draw(st.integers(1, 8))
    x = data.draw(st.lists(st.one_of(st.sampled_from(X_CORNERS),
                                     st.integers(-(2**31), 2**32 - 1)), min_size=n, max_size=n))
    codes = data.draw(st.lists(st.one_of(st.sampled_from([0, 2**(f.m - 1), 2**f.m - 1]),
                                         st.integers(0, 2**f.m - 1)), min_size=n, max_size=n))
    got = f.mul(x, codes)
    assert got.dtype == np.int64
    want = [int(v * ref_decode(c, f.m, f.m1) * 2**f.shift) for v, c in zip(x, codes, strict=True)]
    assert got.tolist() == want


@example(x=-(2**62) - 5)
@example(x=2**200 + 1)
@given(x=st.integers(-(2**100), 2**100))
def test_mul_wide_activations_switch_to_python_ints(x):
    f = SP2Format(11)  # K = 31
    codes = [f.pack(1, 1, 1).item(), f.pack(0, 31, 16).item(), 2**10, 0]
    got = f.mul([x] * 4, codes)
    want = [int(x * ref_decode(c, 11, 5) * 2**31) for c in codes]
    assert got.tolist() == want
    assert got.dtype == (np.int64 if abs(x) < 2**32 else object)


def test_mul_negative_zero_and_broadcast():
    f = SP2Format(4)
    assert f.mul([7, -7], [8, 8]).tolist() == [0, 0]  # sign set, c1 = c2 = 0
    assert f.mul(3, [[1], [2]]).shape == (2, 1)
    with pytest.raises(TypeError, match=r"^x_q must hold integers, not an array of float64$"):
        f.mul([1.5], [1])
