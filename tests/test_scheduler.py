# amaranth: UnusedElaboratable=no
"""The scheduler against a reference: random programs with random wait masks, units with random
latencies and random command backpressure.

Every command must reach its unit in program order with its payload, only while its own unit
and the units of its wait mask are idle; ticks must pulse once per ``tick``, with every unit
idle; the program must stop at its ``end``; the counters must count what happened. Without
backpressure, every command must issue in the cycle the timing rules of the module docs give
(restated here as a reference).
"""

import pytest
from amaranth.hdl import Module
from amaranth.lib import data, memory
from amaranth.sim import Simulator
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.sim.testing import stall_pattern, stream_put
from fixar_hw.train.scheduler import UNIT_CODES, UNITS, Scheduler

from .strategies import stall_lists

LAYOUT = data.StructLayout({"unit": 3, "wait": 3, "array": 8, "vector": 8, "update": 8})


@st.composite
def programs(draw):
    """(unit, payload, latency, wait mask) tuples; ticks have neither payload nor latency."""
    return draw(st.lists(st.one_of(
        st.tuples(st.sampled_from(UNITS), st.integers(0, 255), st.integers(0, 6),
                  st.integers(0, 7)),
        st.just(("tick", 0, 0, 0))), max_size=12))


def reference_issues(ops, start_cycle):
    """Cycles of each command transfer and of ``busy`` falling, by the module docs' rules."""
    free = dict.fromkeys(UNITS, 0)
    fetch = start_cycle + 1
    issues = []
    for unit, _, lat, wait in ops:
        decode = fetch + 1
        if unit == "tick":
            fetch = max(decode, *free.values()) + 1
            continue
        waited = [free[u] for k, u in enumerate(UNITS) if wait >> k & 1]
        t = max(decode + 1, free[unit], *waited)
        issues.append(t)
        free[unit] = t + (lat + 1) + 2  # the units below stay busy lat + 1 cycles
        fetch = t + 1
    return issues, max(fetch + 1, *free.values()) + 1


def run(ops, start, ready_stalls, start_stalls):
    depth = 32
    m = Module()
    dut = Scheduler(LAYOUT, depth)
    m.submodules.dut = dut
    words = [{"unit": 0}] * start + [
        {"unit": UNIT_CODES[u], "wait": wait, **({u: payload} if u != "tick" else {})}
        for u, payload, _, wait in ops] + [{"unit": 0}]
    mem = memory.Memory(shape=LAYOUT, depth=depth, init=words)
    m.submodules.mem = mem
    rp = mem.read_port()
    m.d.comb += [rp.addr.eq(dut.prog_rd.addr), rp.en.eq(dut.prog_rd.en),
                 dut.prog_rd.data.eq(rp.data)]
    seen, issued, ticks = [], [], []
    stall = stall_pattern(ready_stalls)
    busy_left = dict.fromkeys(UNITS, 0)
    latencies = iter([(lat, wait) for u, _, lat, wait in ops if u != "tick"])
    cycle = [0]
    began = []

    async def units(ctx):
        """Take commands (with backpressure), stay busy for their latency."""
        streams = [getattr(dut, name) for name in UNITS]
        probes = [x for st_ in streams for x in (st_.valid, st_.ready, st_.payload)]
        async for _, _, *values in ctx.tick().sample(*probes, dut.tick, dut.start.valid,
                                                     dut.start.ready):
            for name in UNITS:
                busy_left[name] = max(busy_left[name] - 1, 0)
            if values[-2] and values[-1]:
                began.append(cycle[0])
            for k, name in enumerate(UNITS):
                valid, ready, payload = values[3 * k: 3 * k + 3]
                if valid and ready:
                    lat, wait = next(latencies)
                    for j, other in enumerate(UNITS):
                        if other == name or wait >> j & 1:
                            assert busy_left[other] == 0, f"{name} issued while {other} busy"
                    seen.append((name, int(payload)))
                    issued.append(cycle[0])
                    busy_left[name] = lat + 1
            if values[-3]:
                assert not any(busy_left.values()), "a tick while a unit is busy"
                ticks.append(cycle[0])
            ready = not stall()
            for st_ in streams:
                ctx.set(st_.ready, ready)
            ctx.set(dut.units_busy, sum((busy_left[u] > 0) << k for k, u in enumerate(UNITS)))
            cycle[0] += 1

    done = []

    async def host(ctx):
        await stream_put(ctx, dut.start, start, stall=stall_pattern(start_stalls))
        await ctx.tick()
        while ctx.get(dut.busy):
            await ctx.tick()
        done.append(1)
        perf = {name: ctx.get(getattr(dut.perf, name)) for name in ("cycles", "ops")}
        done.append(perf)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_process(units)
    sim.add_testbench(host)
    sim.run_until(1e-8 * (50 + 20 * len(ops) + sum(lat for _, _, lat, _ in ops)
                          + len(ready_stalls) + len(start_stalls)))
    assert done, "the program did not end"
    want = [(u, payload) for u, payload, *_ in ops if u != "tick"]
    assert seen == want
    assert len(ticks) == sum(1 for u, *_ in ops if u == "tick")
    assert done[1]["ops"] == len(ops)
    return began[0], issued, done[1]


@given(programs(), st.integers(0, 3), stall_lists(60), stall_lists(60))
def test_program_runs_in_order(ops, start, ready_stalls, start_stalls):
    run(ops, start, ready_stalls, start_stalls)


@given(programs(), st.integers(0, 3))
def test_issue_cycles(ops, start):
    """Without backpressure, the units run at once as the timing rules say."""
    began, issued, perf = run(ops, start, [], [])
    want, cycles = reference_issues(ops, began)
    assert issued == want
    assert perf["cycles"] == cycles - began - 1


def test_scheduler_errors():
    with pytest.raises(TypeError, match=r"^layout must be a StructLayout, not 3$"):
        Scheduler(3, 4)
    with pytest.raises(ValueError, match=r"^layout lacks the fields \['update'\]$"):
        Scheduler(data.StructLayout({"unit": 3, "wait": 3, "array": 1, "vector": 1}), 4)
    with pytest.raises(ValueError, match=r"^program_depth must be an integer of at least 2"):
        Scheduler(LAYOUT, 1)
