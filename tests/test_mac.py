# amaranth: UnusedElaboratable=no
"""FixedMAC against the golden model ``sw_model.numerics.fixed.dot``, under random stalls."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator
from hypothesis import given, target
from hypothesis import strategies as st

from fixar_hw.arith.mac import FixedMAC
from fixar_hw.sim.testing import simulate_stream, stall_pattern
from sw_model.numerics.fixed import FixedFormat, dot

from .strategies import codes, fixed_formats, overflow_modes, rounding_modes, stall_lists


def run_mac(mac: FixedMAC, vectors, *, in_stall=None, out_stall=None, vcd=None):
    """Push ``vectors`` (lists of (a, b)) through ``mac``; return the results and cycle count."""
    inputs = [{"a": a, "b": b, "last": int(k == len(vec) - 1)}
              for vec in vectors for k, (a, b) in enumerate(vec)]
    outputs, cycles = simulate_stream(mac, inputs, len(vectors),
                                      in_stall=in_stall or (lambda: False),
                                      out_stall=out_stall or (lambda: False), vcd=vcd)
    return [(out.value, out.overrun) for out in outputs], cycles


@given(
    a_fmt=fixed_formats(max_width=32),
    b_fmt=fixed_formats(max_width=32),
    out_fmt=fixed_formats(max_width=40),
    rounding=rounding_modes,
    overflow=overflow_modes,
    data=st.data(),
)
def test_mac_equals_golden_under_stalls(a_fmt, b_fmt, out_fmt, rounding, overflow, data):
    max_terms = data.draw(st.integers(1, 12), label="max_terms")
    mac = FixedMAC(a_fmt, b_fmt, out_fmt, max_terms=max_terms, rounding=rounding,
                   overflow=overflow)
    n_vec = data.draw(st.integers(1, 4), label="vectors")
    vectors = [
        data.draw(st.lists(st.tuples(codes(a_fmt), codes(b_fmt)), min_size=1,
                           max_size=max_terms), label="vector")
        for _ in range(n_vec)
    ]
    in_stall = stall_pattern(data.draw(stall_lists(), label="input gaps"))
    out_stall = stall_pattern(data.draw(stall_lists(), label="output stalls"))
    results, _ = run_mac(mac, vectors, in_stall=in_stall, out_stall=out_stall)
    want = [int(dot([a for a, _ in v], [b for _, b in v], a_fmt, b_fmt, out_fmt, rounding,
                    overflow)) for v in vectors]
    assert results == [(w, 0) for w in want]
    # steer toward saturated accumulators
    pmin, pmax = mac.product_range
    total = max(abs(sum(a * b for a, b in v)) for v in vectors)
    target(total / max(1, max_terms * max(abs(pmin), abs(pmax))), label="acc fill")


@pytest.mark.parametrize("rounding", ["floor", "half_up", "half_even"])
@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_mac_exhaustive_small(rounding, overflow):
    """Every pair of 4-bit codes, as one- and two-term vectors: all rounding ties are hit."""
    s4, u4 = FixedFormat(4, 2), FixedFormat(4, 1, signed=False)
    out = FixedFormat(5, 1)  # drops 2 fraction bits: ties at .5 in both directions, and saturates
    mac = FixedMAC(s4, u4, out, max_terms=2, rounding=rounding, overflow=overflow)
    pairs = [(a, b) for a in range(-8, 8) for b in range(16)]
    vectors = [[p] for p in pairs] + [[p, (a, 15 - b)] for p in pairs[::7] for a, b in [p]]
    results, _ = run_mac(mac, vectors)
    want = [int(dot([a for a, _ in v], [b for _, b in v], s4, u4, out, rounding, overflow))
            for v in vectors]
    assert results == [(w, 0) for w in want]


@pytest.mark.parametrize("signed", [True, False])
def test_mac_extreme_full_accumulator(signed):
    """max_terms extreme products: the accumulator is exactly wide enough, nothing wraps."""
    fmt = FixedFormat(8, 7 if signed else 8, signed=signed)
    out = FixedFormat(24, 14)
    big = fmt.min_int if signed else fmt.max_int
    mac = FixedMAC(fmt, fmt, out, max_terms=7, rounding="floor", overflow="wrap")
    vectors = [[(big, big)] * 7, [(fmt.min_int, fmt.max_int)] * 7, [(big, big)]]
    results, _ = run_mac(mac, vectors)
    want = [int(dot([a for a, _ in v], [b for _, b in v], fmt, fmt, out, "floor", "wrap"))
            for v in vectors]
    assert results == [(w, 0) for w in want]
    # 7 * 2**14 needs 18 bits (signed); product 2**14 needs 16: 2 guard bits, not 3
    assert mac.acc_shape.width == (18 if signed else 19)


def test_mac_overrun_flag():
    fmt = FixedFormat(4, 0)
    mac = FixedMAC(fmt, fmt, FixedFormat(12, 0), max_terms=3)
    vectors = [[(1, 1)] * 3, [(1, 1)] * 4, [(2, 3)] * 2, [(7, 7)] * 9, [(1, 2)]]
    results, _ = run_mac(mac, vectors)
    assert [ov for _, ov in results] == [0, 1, 0, 1, 0]
    assert [v for v, ov in results if not ov] == [3, 12, 2]


def test_mac_latency_and_throughput():
    """One term per cycle; the result is valid `latency` cycles after the last transfer."""
    fmt = FixedFormat(8, 4)
    mac = FixedMAC(fmt, fmt, fmt, max_terms=16)
    sim = Simulator(mac)
    sim.add_clock(1e-6)
    log = {}

    async def tb(ctx):
        ctx.set(mac.o.ready, 1)
        ctx.set(mac.i.valid, 1)
        for k in range(16):
            ctx.set(mac.i.payload, {"a": k, "b": 3, "last": int(k == 15)})
            _, _, ready = await ctx.tick().sample(mac.i.ready)
            assert ready, "input stalled with a free output"
        ctx.set(mac.i.valid, 0)
        for cycle in range(1, 10):
            if ctx.get(mac.o.valid):
                log["latency"] = cycle
                break
            await ctx.tick()

    sim.add_testbench(tb)
    sim.run()
    assert log["latency"] == FixedMAC.latency == 3


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        (dict(a_fmt=8), TypeError, r"^a_fmt must be a FixedFormat, not 8$"),
        (dict(max_terms=0), ValueError, r"^max_terms must be at least 1, not 0$"),
        (dict(max_terms=2.0), TypeError, r"^max_terms must be an integer, not 2\.0$"),
        (dict(rounding="trunc"), ValueError,
         r"^rounding must be one of 'floor', 'half_up', 'half_even', not 'trunc'$"),
        (dict(overflow=None), TypeError, r"^overflow must be a string, not None$"),
        (dict(observe=1), TypeError, r"^observe must be a bool, not 1$"),
    ],
)
def test_mac_construction_errors(kwargs, exc, msg):
    f = FixedFormat(8, 4)
    args = dict(a_fmt=f, b_fmt=f, out_fmt=f, max_terms=4) | kwargs
    a_fmt, b_fmt, out_fmt = args.pop("a_fmt"), args.pop("b_fmt"), args.pop("out_fmt")
    with pytest.raises(exc, match=msg):
        FixedMAC(a_fmt, b_fmt, out_fmt, **args)


def test_mac_shapes():
    s16 = FixedFormat(16, 15)
    mac = FixedMAC(s16, s16, s16, max_terms=1024)
    assert mac.product_range == (-(2**15) * (2**15 - 1), 2**30)
    assert mac.product_shape.width == 32 and mac.product_shape.signed
    assert mac.acc_shape.width == 42 and mac.guard_bits == 10
    assert mac.src_frac == 30
