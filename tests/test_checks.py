"""sw_model.checks: the shared parameter checks and their messages."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw._util import check_int as util_check_int
from sw_model.checks import check_bool, check_choice, check_int, check_real


def test_check_int_accepts_and_returns_ints():
    assert check_int(3, "n") == 3
    assert check_int(np.int64(5), "n", minimum=0, maximum=5) == 5
    assert type(check_int(np.int16(2), "n")) is int
    assert util_check_int is check_int


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    ({"value": True}, TypeError, r"^n must be an integer, not True$"),
    ({"value": 2.0}, TypeError, r"^n must be an integer, not 2\.0$"),
    ({"value": 0, "minimum": 1}, ValueError, r"^n must be at least 1, not 0$"),
    ({"value": 9, "maximum": 8}, ValueError, r"^n must be at most 8, not 9$"),
    ({"value": 9, "minimum": 0, "maximum": 8}, ValueError, r"^n must be from 0 to 8, not 9$"),
    ({"value": -1, "minimum": 0, "owner": "FIFO"}, ValueError,
     r"^FIFO n must be at least 0, not -1$"),
])
def test_check_int_messages(kwargs, exc, message):
    value = kwargs.pop("value")
    with pytest.raises(exc, match=message):
        check_int(value, "n", **kwargs)


def test_check_choice():
    assert check_choice("b", "mode", ("a", "b")) == "b"
    assert check_choice(7, "speed", (6, 7, 8)) == 7
    with pytest.raises(ValueError, match=r"^mode must be one of 'a', 'b', not 'c'$"):
        check_choice("c", "mode", ("a", "b"))
    with pytest.raises(TypeError, match=r"^Core mode must be a str, not 1$"):
        check_choice(1, "mode", ("a", "b"), owner="Core")
    with pytest.raises(ValueError, match=r"^speed must be one of 6, 7, 8, not True$"):
        check_choice(True, "speed", (1, 6, 7, 8)[1:])
    with pytest.raises(ValueError, match=r"^speed must be one of 0, 1, not \[1\]$"):
        check_choice([1], "speed", {0, 1})


def test_check_bool():
    assert check_bool(False, "route") is False
    with pytest.raises(TypeError, match=r"^route must be a bool, not 1$"):
        check_bool(1, "route")


def _reference_ok(x: float, lo: float | None, hi: float | None, lo_open: bool,
                  hi_open: bool) -> bool:
    """The interval test written out plainly."""
    if x != x or x in (math.inf, -math.inf):
        return False
    if lo is not None:
        if lo_open and not lo < x:
            return False
        if not lo_open and not lo <= x:
            return False
    if hi is not None:
        if hi_open and not x < hi:
            return False
        if not hi_open and not x <= hi:
            return False
    return True


_bounds = st.one_of(st.none(), st.integers(-5, 5), st.floats(-5.0, 5.0, allow_nan=False))
_values = st.one_of(st.integers(-7, 7), st.floats(-7.0, 7.0), st.floats(),
                    st.integers(-7, 7).map(np.int32), st.floats(-7.0, 7.0).map(np.float64),
                    st.sampled_from([0.0, -0.0, 1.0, -1.0, 5.0, -5.0, math.inf, -math.inf,
                                     math.nan, 10 ** 400, -(10 ** 400)]))


@given(_values, _bounds, _bounds, st.booleans(), st.booleans())
def test_check_real_matches_reference(value, lo, hi, lo_open, hi_open):
    try:
        expected = float(value)
    except OverflowError:
        expected = math.inf
    kwargs = {"minimum": lo, "maximum": hi, "min_open": lo_open, "max_open": hi_open}
    if _reference_ok(expected, lo, hi, lo_open, hi_open):
        result = check_real(value, "x", **kwargs)
        assert type(result) is float
        assert result == expected or (result == 0.0 and expected == 0.0)
    else:
        with pytest.raises(ValueError, match=r"^x must be finite"):
            check_real(value, "x", **kwargs)


@given(st.one_of(st.booleans(), st.text(max_size=3), st.none(), st.complex_numbers(),
                 st.just(np.bool_(True)), st.lists(st.integers(), max_size=2)))
def test_check_real_rejects_non_reals(value):
    with pytest.raises(TypeError, match=r"^x must be a real number, not "):
        check_real(value, "x", minimum=0)


def test_check_real_accepts_and_returns_floats():
    assert check_real(3, "x") == 3.0
    assert type(check_real(3, "x")) is float
    assert type(check_real(np.float32(0.5), "x", minimum=0, maximum=1)) is float
    assert check_real(Fraction(1, 4), "x", maximum=1) == 0.25
    assert check_real(0.0, "x", minimum=0.0) == 0.0
    assert check_real(1.0, "x", maximum=1.0) == 1.0


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    ({"value": "1"}, TypeError, r"^x must be a real number, not '1'$"),
    ({"value": True}, TypeError, r"^x must be a real number, not True$"),
    ({"value": math.nan}, ValueError, r"^x must be finite, not nan$"),
    ({"value": 10 ** 400}, ValueError, r"^x must be finite, not 1000*$"),
    ({"value": 1.5, "minimum": 0, "maximum": 1, "max_open": True, "owner": "DDPGConfig"},
     ValueError, r"^DDPGConfig x must be finite and in \[0, 1\), not 1\.5$"),
    ({"value": 0.0, "minimum": 0.0, "min_open": True}, ValueError,
     r"^x must be finite and in \(0\.0, inf\), not 0\.0$"),
    ({"value": 2, "maximum": 1.0}, ValueError, r"^x must be finite and in \(-inf, 1\.0\], not 2$"),
    ({"value": -math.inf, "minimum": np.float64(-1.5)}, ValueError,
     r"^x must be finite and in \[-1\.5, inf\), not -inf$"),
    ({"value": math.inf, "minimum": 0}, ValueError,
     r"^x must be finite and in \[0, inf\), not inf$"),
])
def test_check_real_messages(kwargs, exc, message):
    value = kwargs.pop("value")
    with pytest.raises(exc, match=message):
        check_real(value, "x", **kwargs)
