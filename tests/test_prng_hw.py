# amaranth: UnusedElaboratable=no
"""ExplorationNoise against the trainer's fixed-point exploration (sw_model.numerics.prng)."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.arith.prng import (
    ExplorationNoise,
    gaussian_sum,
    seed_to_state,
    tree_sum,
    xorshift32_power,
    xorshift32_step,
)
from fixar_hw.sim.testing import stall_pattern, stream_get, stream_monitor, stream_put
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.prng import gaussian_codes, seed_state, xorshift32, xorshift32_stream

from .strategies import codes, examples, stall_lists


def golden(y, seed, sigma_q, fmt):
    """The trainer's rule (DDPGAgent.explore): clip(y + noise, -1, 1) in ``fmt`` codes."""
    noise, _ = gaussian_codes(seed_state(seed), len(y), sigma_q / 2**16, fmt)
    one = min(1 << fmt.frac, fmt.max_int)
    return np.clip(np.asarray(y, dtype=np.int64) + noise, -one, one)


def run(dut, seed, sigma_q, ys, in_stalls=(), out_stalls=()):
    got = []

    async def producer(ctx):
        ctx.set(dut.sigma, sigma_q)
        await stream_put(ctx, dut.seed, seed)
        for y in ys:
            await stream_put(ctx, dut.i, y, stall=stall_pattern(in_stalls))

    async def consumer(ctx):
        stall = stall_pattern(out_stalls)
        for _ in ys:
            got.append(await stream_get(ctx, dut.o, stall=stall))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_process(stream_monitor(dut.o, name="o"))
    sim.run()
    return got


@examples(ci=15)
@given(st.data(), st.integers(0, 2**32 - 1), st.integers(0, 2**31 - 1), stall_lists(),
       stall_lists())
def test_noisy_actions_equal_the_trainer(data, seed, sigma_q, in_stalls, out_stalls):
    width = data.draw(st.integers(2, 32))
    fmt = FixedFormat(width, data.draw(st.integers(0, width - 1)))
    ys = data.draw(st.lists(codes(fmt), min_size=1, max_size=12))
    got = run(ExplorationNoise(fmt), seed, sigma_q, ys, in_stalls, out_stalls)
    assert got == golden(ys, seed, sigma_q, fmt).tolist()


@given(st.integers(1, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_step_and_seed_expressions(state, seed):
    s, sd = Signal(32), Signal(32)
    out_s, out_sd = Signal(32), Signal(32)
    m = Module()
    m.d.comb += [out_s.eq(xorshift32_step(s)), out_sd.eq(seed_to_state(sd))]
    result = {}

    async def tb(ctx):
        ctx.set(s, state)
        ctx.set(sd, seed)
        result["s"], result["sd"] = ctx.get(out_s), ctx.get(out_sd)

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    assert result["s"] == xorshift32(state)
    assert result["sd"] == seed_state(seed)


@examples(ci=10)
@given(st.integers(1, 2**32 - 1), st.integers(0, 30),
       st.lists(st.integers(-2**15, 2**15 - 1), min_size=1, max_size=13))
def test_power_sum_and_gaussian_sum_expressions(state, k, terms):
    """The flat XOR trees equal k golden steps; the adder tree equals the sum; the sample's
    sum equals the golden model's 12 outputs, centred and added."""
    from amaranth.hdl import signed

    s, power, last = Signal(32), Signal(32), Signal(32)
    total, tsum = Signal(signed(24)), Signal(signed(24))
    ins = [Signal(signed(16), name=f"t{n}") for n in range(len(terms))]
    m = Module()
    nxt, gsum = gaussian_sum(m, s)
    chained, gsum2 = gaussian_sum(m, s, flat_state=False)
    last2, total2 = Signal(32), Signal(signed(24))
    m.d.comb += [power.eq(xorshift32_power(s, k)), last.eq(nxt), total.eq(gsum),
                 tsum.eq(tree_sum(ins)), last2.eq(chained), total2.eq(gsum2)]
    result = {}

    async def tb(ctx):
        ctx.set(s, state)
        for sig, v in zip(ins, terms, strict=True):
            ctx.set(sig, v)
        result.update(power=ctx.get(power), last=ctx.get(last), total=ctx.get(total),
                      tsum=ctx.get(tsum), last2=ctx.get(last2), total2=ctx.get(total2))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    want = state
    for _ in range(k):
        want = xorshift32(want)
    assert result["power"] == want
    outputs, final = xorshift32_stream(state, 12)
    assert result["last"] == result["last2"] == final
    assert result["total2"] == result["total"]
    assert result["total"] == int(sum((int(w) >> 16) - 2**15 for w in outputs))
    assert result["tsum"] == sum(terms)


def test_power_errors():
    with pytest.raises(ValueError, match=r"^k must be a non-negative integer, not -1$"):
        xorshift32_power(Signal(32), -1)
    with pytest.raises(ValueError, match="at least one"):
        tree_sum([])


def test_reseeding_restarts_the_sequence():
    fmt = FixedFormat(16, 12)
    ys = [0] * 5
    dut = ExplorationNoise(fmt)
    got = []

    async def tb(ctx):
        ctx.set(dut.sigma, 1 << 16)
        ctx.set(dut.o.ready, 1)
        for _ in range(2):
            await stream_put(ctx, dut.seed, 7)
            for y in ys:
                await stream_put(ctx, dut.i, y)
                got.append(ctx.get(dut.o.payload))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    want = golden(ys, 7, 1 << 16, fmt).tolist()
    assert got == want + want
    assert len(set(want)) > 1  # sigma = 1 gives varied noise


def test_errors():
    with pytest.raises(TypeError, match=r"^fmt must be a FixedFormat, not 3$"):
        ExplorationNoise(3)
    with pytest.raises(ValueError, match=r"^fmt must be signed with frac >= 0"):
        ExplorationNoise(FixedFormat(8, -1))
