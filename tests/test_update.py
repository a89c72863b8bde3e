# amaranth: UnusedElaboratable=no
"""UpdateUnit and IterativeUpdateUnit against the golden models of sw_model.numerics.optim (Adam,
SGD, soft update), under stalls; and sgd_fixed against a brute-force rational reference."""

from fractions import Fraction

import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from fixar_hw.sim.testing import stall_pattern, stream_get, stream_monitor, stream_put
from fixar_hw.train.update import UPDATE_OPS, IterativeUpdateUnit, UpdateUnit, update_latency
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.optim import (
    LR_EXTRA,
    FixedAdamConstants,
    adam_fixed,
    sgd_fixed,
    soft_update_fixed,
)

from .strategies import codes, examples, stall_lists

V_MAX = (1 << 62) - 1


def signed_formats(min_width=4, max_width=32):
    return st.integers(min_width, max_width).flatmap(
        lambda w: st.builds(FixedFormat, st.just(w), st.integers(-4, w + 4)))


def beta_codes():
    return st.one_of(st.sampled_from([1, 2, 1 << 15, (1 << 16) - 1, 1 << 16]),
                     st.integers(1, 1 << 16))


def v_codes(g_fmt):
    """Second moments: reachable ones (at most g**2), any 62-bit code, and the corners."""
    return st.one_of(st.sampled_from([0, 1, V_MAX - 1, V_MAX]),
                     st.integers(0, g_fmt.min_int**2), st.integers(0, V_MAX))


def golden(el, consts, t, lr_sgd, tau_q, w_fmt, g_fmt):
    """``(w, m, v)`` of one element by the rules of sw_model.numerics.optim."""
    # one-element arrays: adam_fixed's Python-integer path does not take 0-d arrays
    w, x, m, v = (np.array([el[k]], dtype=np.int64) for k in ("w", "x", "m", "v"))
    if el["op"] == UPDATE_OPS["adam"]:
        return tuple(int(a[0]) for a in adam_fixed(w, x, m, v, t, consts, w_fmt, g_fmt))
    if el["op"] == UPDATE_OPS["sgd"]:
        return int(sgd_fixed(w, x, lr_sgd, w_fmt, g_fmt)[0]), el["m"], el["v"]
    return int(soft_update_fixed(w, x, tau_q, w_fmt)[0]), el["m"], el["v"]


def make_unit(kind, w_fmt, g_fmt, lr_width=48):
    """``"pipelined"``, or ``"iterative1"``/``"iterative2"``/``"iterative4"`` (bits a cycle)."""
    if kind == "pipelined":
        return UpdateUnit(w_fmt, g_fmt, lr_width=lr_width)
    return IterativeUpdateUnit(w_fmt, g_fmt, lr_width=lr_width, bits=int(kind[-1]))


KINDS = ["pipelined", "iterative1", "iterative2", "iterative4"]


def run(dut, elements, consts, t, lr_sgd, tau_q, in_stalls=(), out_stalls=()):
    """Push every element through ``dut``; returns the outputs and the accept/emit cycles."""
    got, took, gave = [], [], []
    cycle = [0]

    async def producer(ctx):
        stall = stall_pattern(in_stalls)
        ctx.set(dut.c1, consts.c1)
        ctx.set(dut.c2, consts.c2)
        ctx.set(dut.eps, consts.eps_q)
        ctx.set(dut.tau, tau_q)
        for el in elements:
            ctx.set(dut.lr, consts.lr_at(t) if el["op"] == UPDATE_OPS["adam"] else lr_sgd)
            await stream_put(ctx, dut.i, el, stall=stall)
            took.append(cycle[0])

    async def consumer(ctx):
        stall = stall_pattern(out_stalls)
        for _ in elements:
            p = await stream_get(ctx, dut.o, stall=stall)
            gave.append(cycle[0])
            got.append((p.w, p.m, p.v))

    async def count(ctx):
        async for _ in ctx.tick():
            cycle[0] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_process(count)
    sim.add_process(stream_monitor(dut.o, name="o"))
    sim.run()
    return got, took, gave


@st.composite
def elements(draw, w_fmt, g_fmt, max_size=24):
    out = []
    for _ in range(draw(st.integers(1, max_size))):
        op = draw(st.sampled_from(sorted(UPDATE_OPS.values())))
        x_fmt = w_fmt if op == UPDATE_OPS["soft"] else g_fmt
        out.append(dict(op=op, w=draw(codes(w_fmt)), x=draw(codes(x_fmt)),
                        m=draw(codes(g_fmt)), v=draw(v_codes(g_fmt))))
    return out


def check_equals_golden(kind, data, w_fmt, g_fmt, in_stalls, out_stalls):
    c1, c2 = data.draw(beta_codes(), label="c1"), data.draw(beta_codes(), label="c2")
    eps_q = data.draw(st.one_of(st.just(1), st.integers(1, (1 << g_fmt.width) - 1)), label="eps")
    lr_q = data.draw(st.one_of(st.sampled_from([0, 1, 1 << LR_EXTRA]),
                               st.integers(0, 1 << 44)), label="lr_q")
    bias_steps = data.draw(st.integers(1, 8), label="bias_steps")
    t = data.draw(st.integers(1, 10), label="t")
    consts = FixedAdamConstants(lr_q, c1, c2, eps_q, bias_steps)
    lr_t = consts.lr_at(t)
    lr_width = data.draw(st.integers(max(lr_t.bit_length(), 1), 62), label="lr_width")
    lr_sgd = data.draw(st.one_of(st.just((1 << lr_width) - 1), st.integers(0, (1 << lr_width) - 1)),
                       label="lr_sgd")
    tau_q = data.draw(st.one_of(st.sampled_from([0, 1, 1 << 16]), st.integers(0, 1 << 16)),
                      label="tau")
    els = data.draw(elements(w_fmt, g_fmt), label="elements")
    dut = make_unit(kind, w_fmt, g_fmt, lr_width)
    got, _, _ = run(dut, els, consts, t, lr_sgd, tau_q, in_stalls, out_stalls)
    assert got == [golden(el, consts, t, lr_sgd, tau_q, w_fmt, g_fmt) for el in els]


@examples(ci=20)
@given(data=st.data(), w_fmt=signed_formats(), g_fmt=signed_formats(), in_stalls=stall_lists(),
       out_stalls=stall_lists())
def test_update_unit_equals_golden(data, w_fmt, g_fmt, in_stalls, out_stalls):
    check_equals_golden("pipelined", data, w_fmt, g_fmt, in_stalls, out_stalls)


@examples(ci=20)
@given(data=st.data(), bits=st.sampled_from([1, 2, 4]), w_fmt=signed_formats(),
       g_fmt=signed_formats(), in_stalls=stall_lists(), out_stalls=stall_lists())
def test_iterative_unit_equals_golden(data, bits, w_fmt, g_fmt, in_stalls, out_stalls):
    check_equals_golden(f"iterative{bits}", data, w_fmt, g_fmt, in_stalls, out_stalls)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("w_fmt, g_fmt", [(FixedFormat(32, 16), FixedFormat(32, 24)),
                                          (FixedFormat(4, 2), FixedFormat(32, 0))])
def test_extremes(kind, w_fmt, g_fmt):
    """Widest codes, the largest step size and second moment, saturation both ways."""
    consts = FixedAdamConstants(1 << 40, 1, 1 << 16, 1, 4)
    t, lr_sgd, tau_q = 1, (1 << 62) - 1, 1 << 16
    corners_w = [w_fmt.min_int, -1, 0, 1, w_fmt.max_int]
    corners_g = [g_fmt.min_int, -1, 0, 1, g_fmt.max_int]
    els = [dict(op=op, w=w, x=x, m=mm, v=v)
           for op in (0, 1) for w in corners_w for x in corners_g
           for mm in (g_fmt.min_int, 0, g_fmt.max_int) for v in (0, V_MAX)]
    els += [dict(op=2, w=w, x=x, m=0, v=0) for w in corners_w for x in corners_w]
    dut = make_unit(kind, w_fmt, g_fmt, lr_width=62)
    assert consts.lr_at(t) < 1 << 62
    got, _, _ = run(dut, els, consts, t, lr_sgd, tau_q)
    assert got == [golden(el, consts, t, lr_sgd, tau_q, w_fmt, g_fmt) for el in els]


@pytest.mark.parametrize("w_fmt, g_fmt", [(FixedFormat(8, 4), FixedFormat(6, 4)),
                                          (FixedFormat(32, 16), FixedFormat(16, 12))])
def test_one_element_per_cycle_at_the_documented_latency(w_fmt, g_fmt):
    dut = UpdateUnit(w_fmt, g_fmt)
    assert dut.latency == 39 + w_fmt.width
    consts = FixedAdamConstants(1 << 20, 6554, 66, 1, 10)
    els = [dict(op=k % 3, w=k % 7, x=-(k % 5), m=k % 3, v=k * k) for k in range(50)]
    got, took, gave = run(dut, els, consts, 2, 1 << 18, 300)
    assert took == list(range(took[0], took[0] + len(els)))  # accepted back to back
    assert gave == [c + dut.latency for c in took]  # each one exactly latency cycles later
    assert gave[-1] + 1 - took[0] == len(els) + dut.latency  # n elements in n + latency cycles
    assert got == [golden(el, consts, 2, 1 << 18, 300, w_fmt, g_fmt) for el in els]


@pytest.mark.parametrize("bits", [1, 2, 4])
@pytest.mark.parametrize("w_fmt, g_fmt", [(FixedFormat(8, 4), FixedFormat(6, 4)),
                                          (FixedFormat(31, 16), FixedFormat(16, 12))])
def test_iterative_unit_timing(bits, w_fmt, g_fmt):
    """Each element leaves exactly its op's latency after it entered, and the next enters as
    it leaves: the closed forms of update_latency."""
    dut = IterativeUpdateUnit(w_fmt, g_fmt, bits=bits)
    lat = {op: 9 + -(-31 // bits) + -(-w_fmt.width // bits) if op == "adam" else 5
           for op in UPDATE_OPS}
    assert {op: dut.op_latency(op) for op in UPDATE_OPS} == lat
    assert {op: update_latency(w_fmt, kind="iterative", bits=bits, op=op)
            for op in UPDATE_OPS} == lat
    names = {code: op for op, code in UPDATE_OPS.items()}
    consts = FixedAdamConstants(1 << 20, 6554, 66, 1, 10)
    els = [dict(op=k % 3, w=k % 7, x=-(k % 5), m=k % 3, v=k * k) for k in range(12)]
    got, took, gave = run(dut, els, consts, 2, 1 << 18, 300)
    assert gave == [c + lat[names[el["op"]]] for c, el in zip(took, els, strict=True)]
    assert took[1:] == gave[:-1]  # the next element enters in the cycle the result leaves
    assert got == [golden(el, consts, 2, 1 << 18, 300, w_fmt, g_fmt) for el in els]


@pytest.mark.parametrize("width", range(1, 9))
def test_clamped_quotient_saturates_alike(width):
    """The divider clamps u to [-2**W - 1, 2**W]; sat_w(w - u) does not change."""
    fmt = FixedFormat(width, 0)

    def sat(z):
        return min(max(z, fmt.min_int), fmt.max_int)

    for w in range(fmt.min_int, fmt.max_int + 1):
        for u in range(-(4 << width), (4 << width) + 1):
            assert sat(w - min(max(u, -(1 << width) - 1), 1 << width)) == sat(w - u)


@pytest.mark.parametrize("args, kwargs, exc, msg", [
    ((3, FixedFormat(8, 4)), {}, TypeError, r"^w_fmt must be a FixedFormat, not 3$"),
    ((FixedFormat(8, 4), "q6"), {}, TypeError, r"^g_fmt must be a FixedFormat, not 'q6'$"),
    ((FixedFormat(8, 4, False), FixedFormat(8, 4)), {}, ValueError,
     r"^w_fmt must be signed and at most 32 bits wide, not "
     r"FixedFormat\(8, 4, signed=False\)$"),
    ((FixedFormat(8, 4), FixedFormat(33, 4)), {}, ValueError,
     r"^g_fmt must be signed and at most 32 bits wide, not FixedFormat\(33, 4\)$"),
    ((FixedFormat(8, 4), FixedFormat(8, 4)), {"lr_width": 63}, ValueError,
     r"^lr_width must be from 1 to 62, not 63$"),
    ((FixedFormat(8, 4), FixedFormat(8, 4)), {"lr_width": 0}, ValueError,
     r"^lr_width must be from 1 to 62, not 0$"),
    ((FixedFormat(8, 4), FixedFormat(8, 4)), {"lr_width": 4.0}, TypeError,
     r"^lr_width must be an integer, not 4\.0$"),
    ((FixedFormat(8, 4), FixedFormat(8, 4)), {"lr_width": True}, TypeError,
     r"^lr_width must be an integer, not True$"),
])
@pytest.mark.parametrize("unit", [UpdateUnit, IterativeUpdateUnit])
def test_update_unit_errors(unit, args, kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        unit(*args, **kwargs)


def test_iterative_unit_bits_errors():
    fmt = FixedFormat(8, 4)
    with pytest.raises(ValueError, match=r"^bits must be one of \(1, 2, 4\), not 8$"):
        IterativeUpdateUnit(fmt, fmt, bits=8)
    with pytest.raises(TypeError, match=r"^bits must be an integer, not True$"):
        IterativeUpdateUnit(fmt, fmt, bits=True)


def test_update_unit_observation_port():
    """``observe=True`` adds the ``obs`` port (occupancy up to the latency, the square root's
    last stage); a non-bool is refused."""
    fmt = FixedFormat(8, 4)
    unit = UpdateUnit(fmt, fmt, observe=True)
    assert "obs" in unit.signature.members and "obs" not in UpdateUnit(fmt, fmt).signature.members
    layout = unit.observation_layout
    assert layout.size == unit.latency.bit_length() + 1 + 63 + 31
    with pytest.raises(TypeError, match=r"^observe must be a bool, not 1$"):
        UpdateUnit(fmt, fmt, observe=1)


def sgd_reference(w, g, lr_q, w_fmt, g_fmt):
    """Round half up of the exact rational ``lr_q * g / 2**(g.frac + LR_EXTRA)``."""
    u = Fraction(lr_q * g) / Fraction(2) ** (g_fmt.frac + LR_EXTRA)
    u_rounded = (u + Fraction(1, 2)).__floor__()
    return min(max(w - u_rounded, w_fmt.min_int), w_fmt.max_int)


@settings(parent=settings(), max_examples=settings().max_examples * 5)
@given(data=st.data(), w_fmt=signed_formats(1, 64), g_fmt=signed_formats(1, 64),
       lr_q=st.one_of(st.integers(0, 1 << 20), st.integers(0, (1 << 62) - 1)))
def test_sgd_fixed_equals_exact_rounding(data, w_fmt, g_fmt, lr_q):
    n = data.draw(st.integers(0, 8))
    w = data.draw(st.lists(codes(w_fmt), min_size=n, max_size=n))
    g = data.draw(st.lists(codes(g_fmt), min_size=n, max_size=n))
    got = sgd_fixed(np.array(w, dtype=np.int64), np.array(g, dtype=np.int64), lr_q, w_fmt,
                    g_fmt)
    assert got.dtype == np.int64
    want = [sgd_reference(a, b, lr_q, w_fmt, g_fmt) for a, b in zip(w, g, strict=True)]
    assert got.tolist() == want


def test_sgd_fixed_left_shift_and_ties():
    w_fmt = FixedFormat(16, 4)
    # g_fmt.frac + LR_EXTRA = -4: u = lr_q * g * 16, exactly
    assert sgd_fixed([0, 100], [1, -2], 3, w_fmt, FixedFormat(8, -20)).tolist() == [-48, 196]
    # g_fmt.frac + LR_EXTRA = 17: ties (+-1/2) round up
    assert sgd_fixed([0, 0, 0], [1, -1, 3], 1 << 16, w_fmt, FixedFormat(8, 1)).tolist() == [
        -1, 0, -2]


def test_sgd_fixed_errors():
    f = FixedFormat(8, 4)
    with pytest.raises(TypeError, match=r"^lr_q must be an integer, not 1\.5$"):
        sgd_fixed([0], [0], 1.5, f, f)
    with pytest.raises(ValueError, match=r"^lr_q must be non-negative, not -1$"):
        sgd_fixed([0], [0], -1, f, f)
    with pytest.raises(ValueError, match=r"^g holds 200"):
        sgd_fixed([0], [200], 1, f, f)
