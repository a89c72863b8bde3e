"""Fixed-point activations against independent references (float tanh, Fractions)."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sw_model.numerics.activation import TanhTable, activate, derivative
from sw_model.numerics.fixed import FixedFormat

from .strategies import codes, fixed_formats, rounding_modes
from .test_fixed import ref_requantize


def test_tanh_table_exhaustive_12_bit_error_and_symmetry():
    in_fmt, out_fmt = FixedFormat(12, 8), FixedFormat(16, 14)
    table = TanhTable(in_fmt, out_fmt, index_bits=8, range_log2=2)
    z = np.arange(in_fmt.min_int, in_fmt.max_int + 1)
    y = table.lookup(z)
    err = np.abs(out_fmt.to_float(y) - np.tanh(in_fmt.to_float(z)))
    assert err.max() <= table.error_bound()
    assert table.error_bound() < 0.01
    inside = z[(z > -in_fmt.max_int) & (z < in_fmt.max_int)]
    assert np.array_equal(table.lookup(-inside), -table.lookup(inside))  # odd
    assert np.all(np.diff(y) >= 0)  # monotone


@given(in_fmt=fixed_formats(min_width=2, max_width=24, signed=True),
       index_bits=st.integers(1, 10), range_log2=st.integers(-2, 4), data=st.data())
def test_tanh_lookup_is_the_defined_entry(in_fmt, index_bits, range_log2, data):
    if in_fmt.frac + range_log2 < index_bits:
        return
    out_fmt = FixedFormat(16, 14)
    table = TanhTable(in_fmt, out_fmt, index_bits=index_bits, range_log2=range_log2)
    zs = data.draw(st.lists(codes(in_fmt), min_size=1, max_size=20))
    step = Fraction(2) ** (range_log2 - index_bits)
    for z, y in zip(zs, table.lookup(zs).tolist(), strict=True):
        x = abs(Fraction(z) / 2**in_fmt.frac)
        k = min(math.floor(x / step), table.size - 1)  # interval of |x|, clamped
        mid = float((k + Fraction(1, 2)) * step)
        want = int(out_fmt.from_float(math.tanh(mid)))
        assert y == (-want if z < 0 else want if z > 0 else 0)


@given(in_fmt=fixed_formats(max_width=24, signed=True), out_fmt=fixed_formats(max_width=24),
       rounding=rounding_modes, data=st.data())
def test_identity_and_relu(in_fmt, out_fmt, rounding, data):
    zs = data.draw(st.lists(codes(in_fmt), min_size=1, max_size=10))
    ident = activate(zs, in_fmt, out_fmt, "identity", rounding=rounding).tolist()
    relu = activate(zs, in_fmt, out_fmt, "relu", rounding=rounding).tolist()
    assert ident == [ref_requantize(z, in_fmt.frac, out_fmt, rounding, "saturate") for z in zs]
    assert relu == [ref_requantize(max(z, 0), in_fmt.frac, out_fmt, rounding, "saturate")
                    for z in zs]


@given(y_fmt=fixed_formats(min_width=2, max_width=40, signed=True),
       d_fmt=fixed_formats(max_width=24), rounding=rounding_modes, data=st.data())
def test_derivatives(y_fmt, d_fmt, rounding, data):
    in_fmt = FixedFormat(12, 6)
    n = data.draw(st.integers(1, 10))
    zs = data.draw(st.lists(codes(in_fmt), min_size=n, max_size=n))
    ys = data.draw(st.lists(codes(y_fmt), min_size=n, max_size=n))
    one = ref_requantize(1, 0, d_fmt, rounding, "saturate")
    tanh_d = derivative(zs, ys, in_fmt, y_fmt, d_fmt, "tanh", rounding=rounding).tolist()
    f2 = max(2 * y_fmt.frac, 0)  # exact 1 - y**2 in units of 2**-f2
    assert tanh_d == [
        ref_requantize(int((1 - Fraction(y * y) / Fraction(2) ** (2 * y_fmt.frac)) * 2**f2),
                       f2, d_fmt, rounding, "saturate")
        for y in ys]
    relu_d = derivative(zs, ys, in_fmt, y_fmt, d_fmt, "relu", rounding=rounding).tolist()
    assert relu_d == [one if z > 0 else 0 for z in zs]
    assert derivative(zs, ys, in_fmt, y_fmt, d_fmt, "identity").tolist() == [
        ref_requantize(1, 0, d_fmt, "half_even", "saturate")] * n


def test_tanh_derivative_of_a_wide_coarse_format_does_not_overflow():
    """``y * y`` scaled up by a negative ``frac`` (here 2**8) exceeds an int64: the derivative
    stays exact (1 - 2**64 saturates to the unsigned 1-bit format's 0, not 1)."""
    y_fmt, d_fmt = FixedFormat(29, -4), FixedFormat(1, 0, signed=False)
    ys = [-(1 << 28), (1 << 28) - 1, 0]
    got = derivative([0, 0, 0], ys, FixedFormat(12, 6), y_fmt, d_fmt, "tanh",
                     rounding="floor").tolist()
    assert got == [ref_requantize(1 - y * y * 2**8, 0, d_fmt, "floor", "saturate") for y in ys]
    assert got == [0, 0, 1]


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(index_bits=0), ValueError, r"^TanhTable index_bits must be from 1 to 16, not 0$"),
    (dict(in_fmt=FixedFormat(8, 4, signed=False)), ValueError,
     r"^TanhTable in_fmt must be signed, not FixedFormat\(8, 4, signed=False\)$"),
    (dict(index_bits=12), ValueError,
     r"^TanhTable needs in_fmt.frac \+ range_log2 >= index_bits, not 8 \+ 2 < 12$"),
])
def test_table_errors(kwargs, exc, msg):
    args = dict(in_fmt=FixedFormat(12, 8), out_fmt=FixedFormat(16, 14)) | kwargs
    with pytest.raises(exc, match=msg):
        TanhTable(**args)


def test_activate_errors():
    f = FixedFormat(8, 4)
    with pytest.raises(ValueError, match=r"^kind must be one of 'identity', 'relu', 'tanh', "
                                         r"not 'sigmoid'$"):
        activate([1], f, f, "sigmoid")
