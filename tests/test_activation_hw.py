# amaranth: UnusedElaboratable=no
"""ActivationUnit against the golden model ``sw_model.numerics.activation.activate``, under
stalls."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.arith.activation import ActivationUnit
from fixar_hw.sim.testing import simulate_stream, stall_pattern
from sw_model.numerics.activation import TanhTable, activate
from sw_model.numerics.fixed import FixedFormat

from .strategies import codes, fixed_formats, rounding_modes, stall_lists


@given(in_fmt=fixed_formats(min_width=2, max_width=20, signed=True),
       out_fmt=fixed_formats(min_width=2, max_width=20, signed=True),
       kind=st.sampled_from(["identity", "relu", "tanh"]), rounding=rounding_modes,
       data=st.data())
def test_activation_unit_equals_golden(in_fmt, out_fmt, kind, rounding, data):
    table = None
    if kind == "tanh":
        index_bits = data.draw(st.integers(1, 8), label="index_bits")
        lo = max(index_bits - in_fmt.frac, -8)
        range_log2 = data.draw(st.integers(lo, 4) if lo <= 4 else st.just(None))
        if range_log2 is None:
            return
        table = TanhTable(in_fmt, out_fmt, index_bits=index_bits, range_log2=range_log2)
    unit = ActivationUnit(in_fmt, out_fmt, kind, rounding=rounding, table=table)
    zs = data.draw(st.lists(codes(in_fmt), min_size=1, max_size=24), label="inputs")
    outputs, _ = simulate_stream(unit, zs, len(zs),
                                 in_stall=stall_pattern(data.draw(stall_lists(60))),
                                 out_stall=stall_pattern(data.draw(stall_lists(60))))
    want = activate(zs, in_fmt, out_fmt, kind, rounding=rounding, table=table).tolist()
    assert outputs == want


def test_tanh_unit_exhaustive_10_bit():
    in_fmt, out_fmt = FixedFormat(10, 6), FixedFormat(16, 14)
    table = TanhTable(in_fmt, out_fmt, index_bits=8, range_log2=2)
    unit = ActivationUnit(in_fmt, out_fmt, "tanh", table=table)
    zs = list(range(in_fmt.min_int, in_fmt.max_int + 1))
    outputs, cycles = simulate_stream(unit, zs, len(zs))
    assert outputs == table.lookup(zs).tolist()
    assert cycles == len(zs) + ActivationUnit.latency  # one per cycle


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(kind="gelu"), ValueError,
     r"^kind must be one of 'identity', 'relu', 'tanh', not 'gelu'$"),
    (dict(kind="tanh", table=3), TypeError, r"^table must be a TanhTable, not 3$"),
    (dict(kind="tanh", table=TanhTable(FixedFormat(12, 8), FixedFormat(16, 15))), ValueError,
     r"^table formats FixedFormat\(12, 8\) -> FixedFormat\(16, 15\) differ from "),
])
def test_activation_unit_errors(kwargs, exc, msg):
    args = dict(kind="relu") | kwargs
    with pytest.raises(exc, match=msg):
        ActivationUnit(FixedFormat(12, 8), FixedFormat(16, 14), **args)
