# amaranth: UnusedElaboratable=no
"""MixedRowUnit against the golden model ``sw_model.numerics.msq.matvec``, under random stalls."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.arith.row_unit import MixedRowUnit, pass_columns, plan_passes
from fixar_hw.sim.testing import simulate_stream, stall_pattern
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.msq import QuantizedMatrix, matvec
from sw_model.numerics.sp2 import SP2Format

from .strategies import codes, fixed_formats, overflow_modes, rounding_modes, stall_lists


def run_unit(unit: MixedRowUnit, qm: QuantizedMatrix, xs, *, in_stall=None, out_stall=None):
    """Run every vector of ``xs`` through every pass; return {(vector, row): value}."""
    passes = plan_passes(qm.sp2_rows, unit.n_fixed, unit.n_sp2)
    jobs = [(v, p) for v in range(len(xs)) for p in passes]
    inputs = [payload for v, p in jobs for payload in pass_columns(qm, xs[v], p, unit.n_fixed)]
    outputs, cycles = simulate_stream(unit, inputs, len(jobs) * unit.n_lanes,
                                      in_stall=in_stall or (lambda: False),
                                      out_stall=out_stall or (lambda: False))
    results = {}
    slots = [(v, lane, row) for v, p in jobs for lane, row in enumerate(p.rows)]
    for (v, lane, row), out in zip(slots, outputs, strict=True):
        assert out.lane == lane
        if row is not None:
            results[(v, row)] = out.value
    return results, cycles


@st.composite
def mixed_matrices(draw, x_fmt):
    m = draw(st.integers(2, 6), label="m")
    sp2_fmt = SP2Format(m)
    fix_fmt = FixedFormat(m, m - 1)
    alpha_fmt = FixedFormat(draw(st.integers(1, 10)), draw(st.integers(0, 8)), signed=False)
    rows = draw(st.integers(1, 5), label="rows")
    cols = draw(st.integers(1, 6), label="cols")
    sp2_rows = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
    mat = []
    for r in range(rows):
        if sp2_rows[r]:
            mat.append(draw(st.lists(st.integers(0, sp2_fmt.max_code), min_size=cols,
                                     max_size=cols)))
        else:
            mat.append(draw(st.lists(codes(fix_fmt), min_size=cols, max_size=cols)))
    alpha = draw(st.lists(codes(alpha_fmt), min_size=rows, max_size=rows))
    return QuantizedMatrix(np.array(mat, dtype=np.int64), np.array(sp2_rows), np.array(alpha),
                           alpha_fmt, sp2_fmt, fix_fmt)


@given(x_fmt=fixed_formats(max_width=16), out_fmt=fixed_formats(max_width=24),
       rounding=rounding_modes, overflow=overflow_modes, data=st.data())
def test_row_unit_equals_matvec_under_stalls(x_fmt, out_fmt, rounding, overflow, data):
    qm = data.draw(mixed_matrices(x_fmt), label="matrix")
    rows, cols = qm.shape
    n_sp2_rows = int(qm.sp2_rows.sum())
    n_fixed = data.draw(st.integers(1 if n_sp2_rows < rows else 0, 3), label="n_fixed")
    n_sp2 = data.draw(st.integers(1 if n_sp2_rows else 0, 3), label="n_sp2")
    unit = MixedRowUnit(x_fmt, qm.sp2_fmt, qm.fix_fmt, qm.alpha_fmt, out_fmt, n_fixed=n_fixed,
                        n_sp2=n_sp2, max_cols=cols + data.draw(st.integers(0, 3)),
                        rounding=rounding, overflow=overflow)
    xs = data.draw(st.lists(st.lists(codes(x_fmt), min_size=cols, max_size=cols), min_size=1,
                            max_size=2), label="vectors")
    results, _ = run_unit(
        unit, qm, xs,
        in_stall=stall_pattern(data.draw(stall_lists(), label="input gaps")),
        out_stall=stall_pattern(data.draw(stall_lists(), label="output stalls")))
    want = matvec(qm, np.array(xs), x_fmt, out_fmt, rounding, overflow)
    assert results == {(v, r): int(want[v, r]) for v in range(len(xs)) for r in range(rows)}


@pytest.mark.parametrize("rounding", ["floor", "half_up", "half_even"])
def test_row_unit_extremes(rounding):
    """Full-length vectors of extreme codes on both lane kinds: accumulators never wrap."""
    x_fmt, sp2_fmt, fix_fmt = FixedFormat(8, 7), SP2Format(4), FixedFormat(4, 3)
    alpha_fmt, out_fmt = FixedFormat(8, 4, signed=False), FixedFormat(12, 6)
    cols = 9
    neg_one_sp2 = sp2_fmt.pack(1, 1, 1)  # level -1 (the largest magnitude)
    mat = np.array([[fix_fmt.min_int] * cols, [fix_fmt.max_int] * cols,
                    [int(neg_one_sp2)] * cols, [int(sp2_fmt.pack(0, 1, 1))] * cols])
    qm = QuantizedMatrix(mat, np.array([False, False, True, True]),
                         np.array([alpha_fmt.max_int, 1, alpha_fmt.max_int, 3]), alpha_fmt,
                         sp2_fmt, fix_fmt)
    unit = MixedRowUnit(x_fmt, sp2_fmt, fix_fmt, alpha_fmt, out_fmt, n_fixed=2, n_sp2=2,
                        max_cols=cols, rounding=rounding)
    xs = [[x_fmt.min_int] * cols, [x_fmt.max_int] * cols, list(range(-4, 5))]
    results, _ = run_unit(unit, qm, xs)
    want = matvec(qm, np.array(xs), x_fmt, out_fmt, rounding, "saturate")
    assert results == {(v, r): int(want[v, r]) for v in range(3) for r in range(4)}


def test_row_unit_throughput():
    """With no stalls, a vector of cols >= lanes takes cols cycles per pass."""
    x_fmt, sp2_fmt, fix_fmt = FixedFormat(8, 4), SP2Format(4), FixedFormat(4, 3)
    alpha_fmt = FixedFormat(8, 4, signed=False)
    rng = np.random.default_rng(0)
    cols, n_vec = 16, 6
    qm = QuantizedMatrix(
        np.concatenate([rng.integers(-8, 8, (2, cols)), rng.integers(0, 16, (2, cols))]),
        np.array([False, False, True, True]), np.array([16, 16, 16, 16]), alpha_fmt, sp2_fmt,
        fix_fmt)
    unit = MixedRowUnit(x_fmt, sp2_fmt, fix_fmt, alpha_fmt, FixedFormat(16, 8), n_fixed=2,
                        n_sp2=2, max_cols=cols)
    xs = rng.integers(-128, 128, (n_vec, cols)).tolist()
    results, cycles = run_unit(unit, qm, xs)
    assert len(results) == 4 * n_vec
    # n_vec vectors of `cols` columns, then the latency and the drain of the last vector's lanes
    assert cycles == n_vec * cols + MixedRowUnit.latency + unit.n_lanes - 1


def test_plan_passes():
    passes = plan_passes([True, False, False, True, True, False], n_fixed=2, n_sp2=1)
    assert [p.rows for p in passes] == [(1, 2, 0), (5, None, 3), (None, None, 4)]
    with pytest.raises(ValueError, match=r"^2 SP2 rows need an SP2 lane, but n_sp2 is 0$"):
        plan_passes([True, True], n_fixed=1, n_sp2=0)


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(n_fixed=0, n_sp2=0), ValueError, r"^n_fixed \+ n_sp2 must be at least 1, not 0$"),
    (dict(n_fixed=-1), ValueError, r"^n_fixed must be at least 0, not -1$"),
    (dict(max_cols=0), ValueError, r"^max_cols must be at least 1, not 0$"),
    (dict(sp2_fmt=4), TypeError, r"^sp2_fmt must be an SP2Format, not 4$"),
    (dict(alpha_fmt=FixedFormat(8, 4)), ValueError,
     r"^alpha_fmt must be unsigned, not FixedFormat\(8, 4\)$"),
    (dict(fix_fmt=FixedFormat(4, 3, signed=False)), ValueError,
     r"^fix_fmt must be signed, not FixedFormat\(4, 3, signed=False\)$"),
    (dict(observe="yes"), TypeError, r"^observe must be a bool, not 'yes'$"),
])
def test_row_unit_construction_errors(kwargs, exc, msg):
    args = dict(x_fmt=FixedFormat(8, 4), sp2_fmt=SP2Format(4), fix_fmt=FixedFormat(4, 3),
                alpha_fmt=FixedFormat(8, 4, signed=False), out_fmt=FixedFormat(8, 4),
                n_fixed=1, n_sp2=1, max_cols=4) | kwargs
    pos = [args.pop(k) for k in ("x_fmt", "sp2_fmt", "fix_fmt", "alpha_fmt", "out_fmt")]
    with pytest.raises(exc, match=msg):
        MixedRowUnit(*pos, **args)
