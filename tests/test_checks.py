"""sw_model.checks: the shared parameter checks and their messages."""

from __future__ import annotations

import numpy as np
import pytest

from fixar_hw._util import check_int as util_check_int
from sw_model.checks import check_bool, check_choice, check_int


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
