# amaranth: UnusedElaboratable=no
"""The scheduler against a reference: random programs, units with random latencies and
random command backpressure.

Every command must reach its unit in program order with its payload, only while no unit is
busy; ticks must pulse once per ``tick``; the program must stop at its ``end``; the counters
must count what happened.
"""

import pytest
from amaranth.hdl import Module
from amaranth.lib import data, memory
from amaranth.sim import Simulator
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.sim.testing import stall_pattern, stream_put
from fixar_hw.train.scheduler import UNIT_CODES, Scheduler

from .strategies import stall_lists

LAYOUT = data.StructLayout({"unit": 3, "array": 8, "vector": 8, "update": 8})
UNITS = {"array": UNIT_CODES["array"], "vector": UNIT_CODES["vector"],
         "update": UNIT_CODES["update"]}


@st.composite
def programs(draw):
    ops = draw(st.lists(st.one_of(
        st.tuples(st.sampled_from(sorted(UNITS)), st.integers(0, 255), st.integers(0, 5)),
        st.just(("tick", 0, 0))), max_size=12))
    return ops


@given(programs(), st.integers(0, 3), stall_lists(60), stall_lists(60))
def test_program_runs_in_order(ops, start, ready_stalls, start_stalls):
    depth = 32
    m = Module()
    dut = Scheduler(LAYOUT, depth)
    m.submodules.dut = dut
    words = [{"unit": 0}] * start + [
        {"unit": UNIT_CODES[u] if u != "tick" else UNIT_CODES["tick"],
         **({u: payload} if u != "tick" else {})} for u, payload, _ in ops] + [{"unit": 0}]
    mem = memory.Memory(shape=LAYOUT, depth=depth, init=words)
    m.submodules.mem = mem
    rp = mem.read_port()
    m.d.comb += [rp.addr.eq(dut.prog_rd.addr), rp.en.eq(dut.prog_rd.en),
                 dut.prog_rd.data.eq(rp.data)]
    seen = []
    ticks = []
    stall = stall_pattern(ready_stalls)
    busy_left = [0]
    latencies = iter([lat for u, _, lat in ops if u != "tick"])

    async def units(ctx):
        """Take commands (with backpressure), stay busy for their latency."""
        streams = [getattr(dut, name) for name in UNITS]
        probes = [x for st_ in streams for x in (st_.valid, st_.ready, st_.payload)]
        async for _, _, *values in ctx.tick().sample(*probes, dut.tick):
            if busy_left[0]:
                busy_left[0] -= 1
            for k, name in enumerate(UNITS):
                valid, ready, payload = values[3 * k: 3 * k + 3]
                if valid and ready:
                    assert busy_left[0] == 0, "a command while a unit is busy"
                    seen.append((name, int(payload)))
                    busy_left[0] = next(latencies) + 1
            if values[-1]:
                ticks.append(1)
            ready = not stall()
            for st_ in streams:
                ctx.set(st_.ready, ready)
            ctx.set(dut.units_busy, busy_left[0] > 0)

    async def host(ctx):
        await stream_put(ctx, dut.start, start, stall=stall_pattern(start_stalls))
        await ctx.tick()
        while ctx.get(dut.busy):
            await ctx.tick()
        await ctx.tick()
        assert not ctx.get(dut.busy)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_process(units)
    sim.add_testbench(host)
    sim.run_until(1e-8 * (50 + 20 * len(ops) + sum(lat for *_, lat in ops)
                          + len(ready_stalls) + len(start_stalls)))
    want = [(u, payload) for u, payload, _ in ops if u != "tick"]
    assert seen == want
    assert len(ticks) == sum(1 for u, *_ in ops if u == "tick")


def test_scheduler_errors():
    with pytest.raises(TypeError, match=r"^layout must be a StructLayout, not 3$"):
        Scheduler(3, 4)
    with pytest.raises(ValueError, match=r"^layout lacks the fields \['update'\]$"):
        Scheduler(data.StructLayout({"unit": 3, "array": 1, "vector": 1}), 4)
    with pytest.raises(ValueError, match=r"^program_depth must be an integer of at least 2"):
        Scheduler(LAYOUT, 1)
