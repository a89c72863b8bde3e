"""The numeric contract against an independent reference: Python integers and Fractions."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, target
from hypothesis import strategies as st

from sw_model.numerics.fixed import (
    FixedFormat,
    dot,
    exact_matmul,
    matmul,
    product_range,
    requantize,
)

from . import fixed_oracle
from .strategies import codes, fixed_formats, overflow_modes, rounding_modes


def ref_round(x: Fraction, rounding: str) -> int:
    if rounding == "floor":
        return math.floor(x)
    if rounding == "half_up":
        return math.floor(x + Fraction(1, 2))
    return round(x)  # Fraction.__round__ rounds ties to even


def ref_overflow(v: int, fmt: FixedFormat, overflow: str) -> int:
    if overflow == "saturate":
        return min(max(v, fmt.min_int), fmt.max_int)
    return (v - fmt.min_int) % (1 << fmt.width) + fmt.min_int


def ref_requantize(q: int, src_frac: int, dst: FixedFormat, rounding: str, overflow: str) -> int:
    value = Fraction(q) / Fraction(2) ** src_frac
    return ref_overflow(ref_round(value * Fraction(2) ** dst.frac, rounding), dst, overflow)


# --- FixedFormat ----------------------------------------------------------------------------


def test_format_ranges():
    f = FixedFormat(16, 8)
    assert (f.min_int, f.max_int, f.resolution) == (-32768, 32767, 2.0**-8)
    u = FixedFormat(8, 0, signed=False)
    assert (u.min_int, u.max_int) == (0, 255)
    assert FixedFormat(1, 0).min_int == -1 and FixedFormat(1, 0).max_int == 0
    assert FixedFormat(64, 0).max_int == 2**63 - 1


def test_format_is_frozen_and_hashable():
    f = FixedFormat(16, 8)
    with pytest.raises(AttributeError):
        f.width = 3
    assert {f: 1}[FixedFormat(np.int64(16), 8)] == 1
    assert repr(FixedFormat(8, 3, signed=False)) == "FixedFormat(8, 3, signed=False)"


@pytest.mark.parametrize(
    "args, exc, msg",
    [
        ((16.0, 8), TypeError, r"^FixedFormat width must be an integer, not 16\.0$"),
        ((True, 8), TypeError, r"^FixedFormat width must be an integer, not True$"),
        ((16, "8"), TypeError, r"^FixedFormat frac must be an integer, not '8'$"),
        ((16, 8, 1), TypeError, r"^FixedFormat signed must be a bool, not 1$"),
        ((0, 0), ValueError,
         r"^FixedFormat width must be from 1 to 64 for signed formats, not 0$"),
        ((65, 0), ValueError,
         r"^FixedFormat width must be from 1 to 64 for signed formats, not 65$"),
        ((64, 0, False), ValueError,
         r"^FixedFormat width must be from 1 to 63 for unsigned formats, not 64$"),
        ((8, 300), ValueError, r"^FixedFormat frac must be from -256 to 256, not 300$"),
    ],
)
def test_format_errors(args, exc, msg):
    with pytest.raises(exc, match=msg):
        FixedFormat(*args)


@given(fmt=fixed_formats(max_width=40), data=st.data())
def test_to_float_from_float_roundtrip(fmt, data):
    q = data.draw(st.lists(codes(fmt), min_size=1, max_size=8))
    x = fmt.to_float(q)
    for rounding in ("floor", "half_up", "half_even"):
        assert fmt.from_float(x, rounding=rounding).tolist() == q


@given(fmt=fixed_formats(max_width=24), rounding=rounding_modes, overflow=overflow_modes,
       x=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=8))
def test_from_float_matches_reference(fmt, rounding, overflow, x):
    got = fmt.from_float(x, rounding=rounding, overflow=overflow).tolist()
    want = [ref_overflow(ref_round(Fraction(v) * Fraction(2) ** fmt.frac, rounding), fmt, overflow)
            for v in x]
    assert got == want


def test_from_float_specials():
    f = FixedFormat(8, 4)
    assert f.from_float([np.inf, -np.inf, 1e300]).tolist() == [127, -128, 127]
    assert FixedFormat(64, 0).from_float([2.0**62, 2.0**63, -(2.0**63)]).tolist() == [
        2**62, 2**63 - 1, -(2**63)]
    # ties: +-0.5 code steps
    assert f.from_float([1 / 32, -1 / 32, 3 / 32], "half_up").tolist() == [1, 0, 2]
    assert f.from_float([1 / 32, -1 / 32, 3 / 32], "half_even").tolist() == [0, 0, 2]
    assert f.from_float([1 / 32, -1 / 32], "floor").tolist() == [0, -1]
    assert FixedFormat(8, 0).from_float([2.0**70 + 2.0**20 + 3], overflow="wrap").tolist() == [0]
    with pytest.raises(ValueError, match=r"^x holds NaN, which has no fixed-point code$"):
        f.from_float([1.0, np.nan])
    with pytest.raises(ValueError, match=r"^x holds an infinity, which cannot wrap$"):
        f.from_float([np.inf], overflow="wrap")
    with pytest.raises(ValueError, match=r"^rounding must be one of 'floor', 'half_up', "
                                         r"'half_even', not 'nearest'$"):
        f.from_float([1.0], rounding="nearest")


# --- requantize -----------------------------------------------------------------------------


@given(dst=fixed_formats(max_width=64), rounding=rounding_modes, overflow=overflow_modes,
       src_frac=st.integers(-8, 80), data=st.data())
def test_requantize_matches_reference(dst, rounding, overflow, src_frac, data):
    bits = data.draw(st.integers(1, 100))
    lim = 1 << bits
    q = data.draw(st.lists(st.one_of(st.sampled_from([-lim, -1, 0, 1, lim - 1]),
                                     st.integers(-lim, lim - 1)), min_size=1, max_size=6))
    arr = np.array(q, dtype=object) if bits > 62 else np.array(q, dtype=np.int64)
    got = requantize(arr, src_frac, dst, rounding, overflow)
    assert got.dtype == np.int64
    want = [ref_requantize(v, src_frac, dst, rounding, overflow) for v in q]
    assert got.tolist() == want
    # 0-d inputs (Python integers of any size) take the same path
    assert [int(requantize(v, src_frac, dst, rounding, overflow)) for v in q] == want


def test_requantize_errors():
    f = FixedFormat(8, 0)
    with pytest.raises(TypeError, match=r"^dst must be a FixedFormat, not 8$"):
        requantize([1], 0, 8)
    with pytest.raises(ValueError,
                       match=r"^overflow must be one of 'saturate', 'wrap', not 'clip'$"):
        requantize([1], 0, f, "floor", "clip")
    with pytest.raises(TypeError, match=r"^q must hold integers, not an array of float64$"):
        requantize([1.5], 0, f)


# --- dot and matmul -------------------------------------------------------------------------


def ref_dot(a, b, a_fmt, b_fmt, out_fmt, rounding, overflow):
    exact = sum(int(x) * int(y) for x, y in zip(a, b, strict=True))
    return ref_requantize(exact, a_fmt.frac + b_fmt.frac, out_fmt, rounding, overflow)


@given(a_fmt=fixed_formats(), b_fmt=fixed_formats(), out_fmt=fixed_formats(max_width=64),
       rounding=rounding_modes, overflow=overflow_modes, data=st.data())
def test_dot_matches_reference(a_fmt, b_fmt, out_fmt, rounding, overflow, data):
    batch = data.draw(st.integers(1, 3))
    n = data.draw(st.integers(1, 12))
    a = [data.draw(st.lists(codes(a_fmt), min_size=n, max_size=n)) for _ in range(batch)]
    b = [data.draw(st.lists(codes(b_fmt), min_size=n, max_size=n)) for _ in range(batch)]
    got = dot(a, b, a_fmt, b_fmt, out_fmt, rounding, overflow)
    want = [ref_dot(x, y, a_fmt, b_fmt, out_fmt, rounding, overflow)
            for x, y in zip(a, b, strict=True)]
    assert got.tolist() == want
    # steer toward saturation of the result
    exact = [sum(x * y for x, y in zip(r, s, strict=True)) for r, s in zip(a, b, strict=True)]
    target(float(max(abs(v) for v in exact)) / 2.0**60, label="|sum|")


@given(a_fmt=fixed_formats(), b_fmt=fixed_formats(), out_fmt=fixed_formats(max_width=64),
       rounding=rounding_modes, overflow=overflow_modes, data=st.data())
def test_matmul_agrees_with_dot(a_fmt, b_fmt, out_fmt, rounding, overflow, data):
    m, n, k = (data.draw(st.integers(1, 5)) for _ in range(3))
    a = np.array([data.draw(st.lists(codes(a_fmt), min_size=n, max_size=n)) for _ in range(m)])
    b = np.array([data.draw(st.lists(codes(b_fmt), min_size=k, max_size=k)) for _ in range(n)])
    got = matmul(a, b, a_fmt, b_fmt, out_fmt, rounding, overflow)
    want = dot(a[:, None, :], b.T[None, :, :], a_fmt, b_fmt, out_fmt, rounding, overflow)
    assert got.shape == (m, k)
    assert np.array_equal(got, want)
    assert matmul(a[0], b, a_fmt, b_fmt, out_fmt, rounding, overflow).tolist() == got[0].tolist()


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("fn", ["dot", "matmul"])
def test_dot_exact_at_32x32_extremes_over_many_terms(signed, fn):
    """Thousands of extreme 32x32-bit terms: far past int64, still exact."""
    fmt = FixedFormat(32, 31 if signed else 32, signed=signed)
    out = FixedFormat(64, 20)
    n = 5000
    rng = np.random.default_rng(1)
    a = np.where(rng.random((4, n)) < 0.5, fmt.min_int, fmt.max_int)
    b = np.where(rng.random((4, n)) < 0.5, fmt.min_int, fmt.max_int)
    big = fmt.min_int if signed else fmt.max_int
    a[0], b[0] = big, big  # the largest positive sum: n * 2**62 (signed), ~n * 2**64 (unsigned)
    a[1], b[1] = fmt.min_int, fmt.max_int  # the most negative sum (signed)
    for rounding in ("floor", "half_up", "half_even"):
        want = [ref_dot(x, y, fmt, fmt, out, rounding, "wrap") for x, y in zip(a, b, strict=True)]
        if fn == "dot":
            got = dot(a, b, fmt, fmt, out, rounding, "wrap")
        else:
            got = np.diagonal(matmul(a, b.T, fmt, fmt, out, rounding, "wrap"))
        assert got.tolist() == want
    exact = sum(int(x) * int(y) for x, y in zip(a[0], b[0], strict=True))
    assert abs(exact) > 2**63  # the point of the test: int64 alone would have overflowed


def test_dot_single_vector_at_32_bit_extremes():
    """A 1-D vector whose exact sum needs Python integers (regression: 0-d half_even)."""
    q31 = FixedFormat(32, 31)
    for rounding in ("floor", "half_up", "half_even"):
        got = dot([-(2**31)] * 3, [-(2**31)] * 3, q31, q31, q31, rounding)
        assert got.shape == () and int(got) == q31.max_int
    assert int(requantize(2**70 + 2**8, 9, FixedFormat(64, 0), "half_even")) == 2**61


def test_dot_errors():
    f = FixedFormat(8, 0)
    with pytest.raises(ValueError, match=r"^a_q holds 200, outside FixedFormat\(8, 0\) codes "
                                         r"\[-128, 127\]$"):
        dot([200], [1], f, f, f)
    with pytest.raises(ValueError, match=r"^a_q and b_q must have the same number of terms, "
                                         r"not 2 and 3$"):
        dot([1, 2], [1, 2, 3], f, f, f)
    with pytest.raises(TypeError, match=r"^out_fmt must be a FixedFormat, not None$"):
        dot([1], [1], f, f, None)
    with pytest.raises(ValueError, match=r"^a_q has 2 columns but b_q has 3 rows$"):
        matmul([[1, 2]], [[1], [2], [3]], f, f, f)


def test_product_range():
    s8, u8 = FixedFormat(8, 0), FixedFormat(8, 0, signed=False)
    assert product_range(s8, s8) == (-128 * 127, 128 * 128)
    assert product_range(s8, u8) == (-128 * 255, 127 * 255)
    assert product_range(u8, u8) == (0, 255 * 255)


def test_wide_formats_with_small_codes_stay_on_int64():
    """Limbs and bounds follow the codes, not the formats: exact, and no Python integers."""
    rng = np.random.default_rng(5)
    f32 = FixedFormat(32, 16)
    a = rng.integers(-(1 << 20), 1 << 20, (3, 400))
    b = rng.integers(-(1 << 20), 1 << 20, (400, 5))
    want = np.array([[sum(int(x) * int(y) for x, y in zip(row, col, strict=True))
                      for col in b.T] for row in a], dtype=object)
    got = exact_matmul(a, b, f32, f32)
    assert got.dtype == np.int64 and (got == want).all()
    wide = exact_matmul(np.full((1, 400), f32.min_int), np.full((400, 1), f32.min_int), f32, f32)
    assert wide.dtype == object and wide[0, 0] == 400 * f32.min_int**2


# --- the fast paths against the previous implementation and Python integers ------------------

fast_widths = st.integers(2, 32)


@st.composite
def operand_formats(draw):
    width = draw(fast_widths)
    signed = draw(st.booleans())
    return FixedFormat(width, draw(st.integers(-4, width + 4)), signed)


def extreme_matrix(draw, fmt, shape):
    """Codes of ``fmt``: all extremes, all random, or a mix (the sums' worst cases)."""
    kind = draw(st.sampled_from(["mixed", "max", "min", "alternating"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "max":
        return np.full(shape, fmt.max_int, dtype=np.int64)
    if kind == "min":
        return np.full(shape, fmt.min_int, dtype=np.int64)
    if kind == "alternating":
        return np.where(rng.random(shape) < 0.5, fmt.min_int, fmt.max_int).astype(np.int64)
    return rng.integers(fmt.min_int, fmt.max_int, shape, endpoint=True, dtype=np.int64)


def python_matmul(a, b):
    return np.array([[sum(int(x) * int(y) for x, y in zip(row, col, strict=True))
                      for col in np.asarray(b).T] for row in a], dtype=object)


@given(a_fmt=operand_formats(), b_fmt=operand_formats(), out_fmt=fixed_formats(max_width=64),
       rounding=rounding_modes, overflow=overflow_modes, data=st.data())
def test_fast_products_equal_oracle_and_python_integers(a_fmt, b_fmt, out_fmt, rounding,
                                                        overflow, data):
    m, k = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    n = data.draw(st.sampled_from([1, 2, 3, 17, 300, 2000]))
    a = extreme_matrix(data.draw, a_fmt, (m, n))
    b = extreme_matrix(data.draw, b_fmt, (n, k))
    exact = python_matmul(a, b)
    got_exact = exact_matmul(a, b, a_fmt, b_fmt)
    assert (np.asarray(got_exact, dtype=object) == exact).all()
    assert (np.asarray(fixed_oracle.exact_matmul(a, b, a_fmt, b_fmt), dtype=object)
            == exact).all()
    args = (a_fmt, b_fmt, out_fmt, rounding, overflow)
    want = fixed_oracle.matmul(a, b, *args)
    assert np.array_equal(matmul(a, b, *args), want)
    assert np.array_equal(dot(a[:, None, :], b.T[None, :, :], *args), want)
    assert want.tolist() == [[ref_requantize(int(v), a_fmt.frac + b_fmt.frac, out_fmt, rounding,
                                             overflow) for v in row] for row in exact]


@given(a_fmt=operand_formats(), b_fmt=operand_formats(), out_fmt=fixed_formats(max_width=64),
       rounding=rounding_modes, overflow=overflow_modes, data=st.data())
def test_matmul_addend_is_added_before_the_one_rounding(a_fmt, b_fmt, out_fmt, rounding,
                                                        overflow, data):
    n, k = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 3))
    a = extreme_matrix(data.draw, a_fmt, (2, n))
    b = extreme_matrix(data.draw, b_fmt, (n, k))
    src = a_fmt.frac + b_fmt.frac
    addend_frac = data.draw(st.integers(src - 40, src))
    c = np.array(data.draw(st.lists(st.integers(-(2**40), 2**40), min_size=k, max_size=k)))
    got = matmul(a, b, a_fmt, b_fmt, out_fmt, rounding, overflow, addend=c,
                 addend_frac=addend_frac)
    exact = python_matmul(a, b) + np.array([int(x) << (src - addend_frac) for x in c],
                                           dtype=object)
    assert got.tolist() == [[ref_requantize(int(v), src, out_fmt, rounding, overflow)
                             for v in row] for row in exact]


@pytest.mark.parametrize("width", range(23, 33))
def test_wide_sums_requantize_without_python_integers(width, monkeypatch):
    """Sums past int64 round from their limb sums, never via Python integers.

    (Narrower formats need over 2**21 terms to pass int64; the Hypothesis tests above cover
    every width from 2.)
    """
    from sw_model.numerics import fixed

    monkeypatch.setattr(fixed._ExactSum, "integers", lambda self: pytest.fail("objects"))
    fmt = FixedFormat(width, width - 1)
    n = 2 ** (64 - 2 * (width - 1)) + 3
    rng = np.random.default_rng(width)
    a = np.where(rng.random((4, n)) < 0.9, fmt.min_int, fmt.max_int).astype(np.int64)
    b = np.full((n, 3), fmt.min_int, dtype=np.int64)
    b[:, 1] = rng.integers(fmt.min_int, fmt.max_int, n)
    a[3] = np.where(a[3] < 0, fmt.max_int, fmt.min_int)
    b[:, 2] = -b[:, 2] - 1  # max_int: the most negative sums with row 0
    src = 2 * width - 2
    base = python_matmul(a, b)
    assert max(abs(int(v)) for v in base.flat) >= 1 << 62
    for out, overflow in ((FixedFormat(48, 2 * width - 40), "saturate"),
                          (FixedFormat(64, width), "wrap"), (FixedFormat(16, 0), "saturate"),
                          (FixedFormat(61, 4), "saturate"), (FixedFormat(40, 2), "wrap")):
        shift = src - out.frac
        # an addend that puts every sum of column 0 exactly halfway between two results
        # (addends stay below 2**53)
        tie = (1 << (shift - 1)) - int(base[0, 0]) % (1 << shift) if shift <= 52 else 0
        addend = np.array([tie, 0, 1])
        exact = base + np.array([tie, 0, 1], dtype=object)
        for rounding in ("floor", "half_up", "half_even"):
            got = matmul(a, b, fmt, fmt, out, rounding, overflow, addend=addend,
                         addend_frac=src)
            assert got.tolist() == [[ref_requantize(int(v), src, out, rounding, overflow)
                                     for v in row] for row in exact]


def test_matmul_addend_errors():
    f = FixedFormat(8, 4)
    with pytest.raises(TypeError, match=r"^addend_frac must be given with addend$"):
        matmul([[1]], [[1]], f, f, f, addend=[1])
    with pytest.raises(ValueError, match=r"addend_frac"):
        matmul([[1]], [[1]], f, f, f, addend=[1], addend_frac=9)


@pytest.mark.parametrize("rounding", ["floor", "half_up", "half_even"])
def test_requantize_int64_extremes_at_every_shift(rounding):
    """Codes at the ends of int64 round without overflow (half_up once wrapped at 2**63 - 1)."""
    extremes = [-(2**63), -(2**63) + 1, -(2**62) - 1, -1, 0, 1, 2**62 + 2**61, 2**63 - 1]
    out = FixedFormat(64, 0)
    for shift in range(1, 64):
        got = requantize(np.array(extremes, dtype=np.int64), shift, out, rounding, "saturate")
        assert got.tolist() == [ref_requantize(v, shift, out, rounding, "saturate")
                                for v in extremes]
