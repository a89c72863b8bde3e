# amaranth: UnusedElaboratable=no
"""The board SoC (:mod:`fixar_hw.soc.system`) and its Wishbone interconnect
(:mod:`fixar_hw.soc.wishbone`).

The decoder, the arbiter and the RAM run in Amaranth's simulator against the Python twins
(:class:`fixar_hw.soc.wishbone.MemoryMapModel`), with random stalls, wait states and bus errors on
every
slave port, random gaps on every master port, several requests outstanding, and
:func:`fixar_hw.sim.testing.wishbone_monitor` checking the protocol on every port. The whole
:class:`fixar_hw.soc.system.FixarSoC` runs under :class:`fixar_hw.host.driver.FixarDriver`: over
its UART
pins (bring-up, RAM, bus errors and a DMA round trip), and over its byte-stream link (a
training step and an action, compared with ``==`` against the NumPy trainer). A whole action
through the UART moves about 10 kB at 40 cycles a byte, about 400 k cycles: minutes in the
simulator, so it runs in the ``nightly`` profile only.
"""

import os
from collections import deque

import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from fixar_hw._util import never_elaborated
from fixar_hw.config import CoreConfig
from fixar_hw.host.driver import FixarDriver, HardwareAgent, SerialTransport
from fixar_hw.host.serial_link import BusError, SerialBus, SimSerialPort
from fixar_hw.sim.testing import stream_get, stream_put, wishbone_monitor, wishbone_slave
from fixar_hw.soc.csr import MAGIC
from fixar_hw.soc.system import FixarSoC, driver_memory_words
from fixar_hw.soc.wishbone import (
    MemoryMapModel,
    WindowMap,
    WishboneArbiter,
    WishboneDecoder,
    WishboneSRAM,
)
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.arch.ddpg_config import DDPGConfig
from sw_model.rl.ddpg import DDPGAgent

from .test_core import assert_agents_equal, fill

PROFILE = os.environ.get("FIXAR_HYPOTHESIS_PROFILE", "ci")
MAX_EXAMPLES = {"ci": 3, "nightly": 30}.get(PROFILE, 3)
SOC_EXAMPLES = {"ci": 1, "nightly": 3}.get(PROFILE, 1)
BUS_EXAMPLES = {"ci": 20, "nightly": 300}.get(PROFILE, 20)
PERIOD = 1e-6


def tiny(hidden=(5,), batch=4, **kw) -> CoreConfig:
    # an iterative update unit: the simulator evaluates the pipelined unit's 40-odd stages
    # every cycle, which doubles these tests' time (the pipelined unit in a whole core is
    # tested by test_engine_hw and test_core_verilog)
    cfg = DDPGConfig(hidden=hidden, precision="fixed", batch_size=batch, buffer_size=16)
    engine = en.EngineConfig(cfg, 3, 1, size=2, cores=1, update_kind="iterative")
    return CoreConfig(engine, **kw)


# --- simulation helpers --------------------------------------------------------------------------

def master(bus, bursts, results, *, gap, max_out: int = 4):
    """A testbench: a pipelined Wishbone master running ``bursts`` (lists of
    ``(we, adr, dat_w, sel)``), one bus cycle each, with up to ``max_out`` requests
    outstanding and gaps where ``gap()`` is true. Appends ``(ok, data)`` per answer (data 0
    but for an acknowledged read) to ``results["answers"]`` and
    ``("accept", cycle)``/``("answer", cycle)`` to ``results["timing"]``."""

    async def tb(ctx) -> None:
        cycle = 0
        for burst in bursts:
            while gap():
                await ctx.tick()
                cycle += 1
            ctx.set(bus.cyc, 1)
            issued = answered = 0
            holding = False
            reads = deque()  # per outstanding request: is it a read (its data counts)
            while answered < len(burst):
                offer = holding or (issued < len(burst) and issued - answered < max_out
                                    and not gap())
                if offer:
                    we, adr, dat, sel = burst[issued]
                    ctx.set(bus.stb, 1)
                    ctx.set(bus.adr, adr)
                    ctx.set(bus.we, we)
                    ctx.set(bus.dat_w, dat)
                    ctx.set(bus.sel, sel)
                else:
                    ctx.set(bus.stb, 0)
                _, _, stall, ack, err, dat_r = await ctx.tick().sample(
                    bus.stall, bus.ack, bus.err, bus.dat_r)
                if offer and not stall:
                    reads.append(not burst[issued][0])
                    issued += 1
                    holding = False
                    results["timing"].append(("accept", cycle))
                else:
                    holding = offer
                if ack or err:
                    is_read = reads.popleft()
                    results["answers"].append((bool(ack), int(dat_r) if ack and is_read else 0))
                    results["timing"].append(("answer", cycle))
                    answered += 1
                cycle += 1
            ctx.set(bus.stb, 0)
            ctx.set(bus.cyc, 0)
            await ctx.tick()
            cycle += 1
        results["done"] = True

    return tb


def new_results() -> dict:
    return {"answers": [], "timing": [], "done": False}


def acceptance_log(ports, log):
    """A process recording, in order, ``(port index, (we, adr, dat_w, sel))`` of every request
    accepted on ``ports``; at most one per cycle."""

    async def proc(ctx) -> None:
        signals = [(p.cyc, p.stb, p.stall, p.we, p.adr, p.dat_w, p.sel) for p in ports]
        flat = [s for group in signals for s in group]
        async for sample in ctx.tick().sample(*flat):
            values = sample[2:]
            hits = []
            for i in range(len(ports)):
                cyc, stb, stall, we, adr, dat, sel = values[7 * i:7 * i + 7]
                if cyc and stb and not stall:
                    hits.append((i, (bool(we), int(adr), int(dat), int(sel))))
            assert len(hits) <= 1, f"two masters accepted in one cycle: {hits}"
            log.extend(hits)

    return proc


def rng_stalls(r, p):
    return {"stall": lambda: r.random() < p,
            "wait": lambda: int(r.integers(0, 4)) if r.random() < p else 0}


@st.composite
def bus_widths(draw):
    return draw(st.sampled_from([(8, 8), (16, 8), (32, 8), (32, 32), (64, 16)]))


@st.composite
def request(draw, addr_width, data_width, granularity):
    corner = [0, (1 << addr_width) - 1]
    adr = draw(st.one_of(st.sampled_from(corner), st.integers(0, (1 << addr_width) - 1)))
    dat = draw(st.one_of(st.sampled_from([0, (1 << data_width) - 1]),
                         st.integers(0, (1 << data_width) - 1)))
    sel = draw(st.integers(0, (1 << (data_width // granularity)) - 1))
    return (draw(st.booleans()), adr, dat, sel)


def bursts_of(addr_width, data_width, granularity, max_bursts=5, max_len=6):
    return st.lists(st.lists(request(addr_width, data_width, granularity), min_size=1,
                             max_size=max_len), min_size=1, max_size=max_bursts)


# --- the decoder ---------------------------------------------------------------------------------

@st.composite
def decoder_setups(draw):
    dw, gran = draw(bus_widths())
    aw = draw(st.integers(2, 6))
    windows = []
    for _ in range(draw(st.integers(1, 4))):
        k = draw(st.integers(0, aw - 1))
        base = draw(st.integers(0, (1 << (aw - k)) - 1)) << k
        if all(base + (1 << k) <= b or b + s <= base for b, s in windows):
            windows.append((base, 1 << k))
    bad = [draw(st.sets(st.integers(0, s - 1), max_size=2)) for _, s in windows]
    return aw, dw, gran, windows, bad


@settings(max_examples=BUS_EXAMPLES)
@given(decoder_setups(), st.data(), st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.3, 0.7]),
       st.integers(1, 4))
def test_decoder_against_model(setup, data, seed, p, mo):
    aw, dw, gran, windows, bad = setup
    bursts = data.draw(bursts_of(aw, dw, gran))
    r = np.random.default_rng(seed)
    dut = WishboneDecoder(addr_width=aw, data_width=dw, granularity=gran, windows=windows,
                          max_outstanding=mo)
    mems = [{} for _ in windows]
    logs = [[] for _ in windows]
    errors = [(lambda bad_set: lambda a, we: a in bad_set)(b) for b in bad]
    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    for s, mem, log, error in zip(dut.slaves, mems, logs, errors, strict=True):
        sim.add_testbench(wishbone_slave(s, mem, error=error, log=log, **rng_stalls(r, p)),
                          background=True)
        sim.add_process(wishbone_monitor(s, name="slave"))
    mon = wishbone_monitor(dut.bus, name="master")
    sim.add_process(mon)
    res = new_results()
    sim.add_testbench(master(dut.bus, bursts, res, gap=lambda: r.random() < p, max_out=4))
    n = sum(len(b) for b in bursts)
    sim.run_until(PERIOD * (60 * n + 200))
    assert res["done"], "the decoder hung"

    model = MemoryMapModel(WindowMap(addr_width=aw, windows=windows), data_width=dw,
                           granularity=gran, error=errors)
    want_logs = [[] for _ in windows]
    want = []
    for burst in bursts:
        for we, adr, dat, sel in burst:
            ok, got = model.access(we, adr, dat, sel)
            want.append((ok, got))
            hit = model.windows.decode(adr)
            if hit is not None:
                i, off = hit
                want_logs[i].append((we, off, dat if we else got, ok))
    assert res["answers"] == want
    assert logs == want_logs
    assert mems == model.memories


def test_decoder_pipelines_and_switches_in_order():
    """Back-to-back requests to one slave stream at one per cycle; a request to another slave
    waits for the outstanding answers; an unmapped one is answered with err at once."""
    dut = WishboneDecoder(addr_width=4, windows=[(0, 4), (8, 8)])
    mems = [{1: 11, 2: 22}, {0: 80, 5: 85}]
    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    for s, mem in zip(dut.slaves, mems, strict=True):
        sim.add_testbench(wishbone_slave(s, mem, wait=lambda: 2), background=True)
    mon = wishbone_monitor(dut.bus)
    sim.add_process(mon)
    res = new_results()
    burst = [(False, 1, 0, 15), (False, 2, 0, 15), (False, 13, 0, 15), (False, 5, 0, 15),
             (False, 8, 0, 15)]
    sim.add_testbench(master(dut.bus, [burst], res, gap=lambda: False, max_out=8))
    sim.run()
    assert res["answers"] == [(True, 11), (True, 22), (True, 85), (False, 0), (True, 80)]
    accepts = [c for kind, c in res["timing"] if kind == "accept"]
    assert accepts[1] == accepts[0] + 1  # pipelined
    assert accepts[2] > accepts[1] + 2  # waits for the first slave's answers
    assert mon.peak >= 2


# --- the arbiter ---------------------------------------------------------------------------------

@settings(max_examples=BUS_EXAMPLES)
@given(st.integers(2, 3), st.data(), st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.3, 0.7]))
def test_arbiter_against_model(n, data, seed, p):
    aw, dw, gran = 3, 16, 8
    programs = [data.draw(bursts_of(aw, dw, gran, max_bursts=4, max_len=4)) for _ in range(n)]
    bad = data.draw(st.sets(st.integers(0, 7), max_size=2))
    r = np.random.default_rng(seed)
    dut = WishboneArbiter(addr_width=aw, data_width=dw, granularity=gran, masters=n)
    mem: dict[int, int] = {}
    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    sim.add_testbench(wishbone_slave(dut.bus, mem, error=lambda a, we: a in bad,
                                     **rng_stalls(r, p)), background=True)
    sim.add_process(wishbone_monitor(dut.bus, name="slave"))
    log: list = []
    sim.add_process(acceptance_log(list(dut.masters), log))
    results = []
    for i, (port, program) in enumerate(zip(dut.masters, programs, strict=True)):
        sim.add_process(wishbone_monitor(port, name=f"master{i}"))
        res = new_results()
        results.append(res)
        sim.add_testbench(master(port, program, res, gap=lambda: r.random() < p, max_out=3))
    total = sum(len(b) for prog in programs for b in prog)
    sim.run_until(PERIOD * (60 * total + 300))
    assert all(res["done"] for res in results), "a master starved"

    # replay the requests in the order the slave accepted them
    model = MemoryMapModel(WindowMap(addr_width=aw, windows=[(0, 1 << aw)]), [{}],
                           data_width=dw, granularity=gran, error=[lambda a, we: a in bad])
    want = [[] for _ in range(n)]
    for i, (we, adr, dat, sel) in log:
        want[i].append(model.access(we, adr, dat, sel))
    for i in range(n):
        assert [q for b in programs[i] for q in b] == \
            [req for j, req in log if j == i], "requests passed on in each master's order"
        assert results[i]["answers"] == want[i]
    assert mem == model.memories[0]


def test_arbiter_round_robin():
    """Three masters that always want the bus take turns, one bus cycle each."""
    n = 3
    dut = WishboneArbiter(addr_width=4, masters=n)
    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    sim.add_testbench(wishbone_slave(dut.bus, {}), background=True)
    log: list = []
    sim.add_process(acceptance_log(list(dut.masters), log))
    for i, port in enumerate(dut.masters):
        bursts = [[(True, i, k, 15), (False, i, 0, 15)] for k in range(3)]
        sim.add_testbench(master(port, bursts, new_results(), gap=lambda: False))
    sim.run()
    assert [i for i, _ in log] == [0, 0, 1, 1, 2, 2] * 3


# --- the RAM -------------------------------------------------------------------------------------

@settings(max_examples=BUS_EXAMPLES)
@given(bus_widths(), st.integers(1, 6), st.data(), st.integers(0, 2**32 - 1),
       st.sampled_from([0.0, 0.5]))
def test_sram_against_model(widths, k, data, seed, p):
    dw, gran = widths
    depth = 1 << k
    init = data.draw(st.lists(st.integers(0, (1 << dw) - 1), max_size=depth))
    bursts = data.draw(bursts_of(k, dw, gran, max_len=8))
    r = np.random.default_rng(seed)
    dut = WishboneSRAM(depth=depth, data_width=dw, granularity=gran, init=init)
    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    mon = wishbone_monitor(dut.bus)
    sim.add_process(mon)
    res = new_results()
    sim.add_testbench(master(dut.bus, bursts, res, gap=lambda: r.random() < p, max_out=8))
    sim.run()
    model = MemoryMapModel(WindowMap(addr_width=k, windows=[(0, depth)]),
                           [dict(enumerate(init))], data_width=dw, granularity=gran)
    want = [model.access(*req) for b in bursts for req in b]
    assert res["answers"] == want
    # never stalls; each answer one cycle after its request
    accepts = [c for kind, c in res["timing"] if kind == "accept"]
    answers = [c for kind, c in res["timing"] if kind == "answer"]
    assert answers == [c + 1 for c in accepts]
    if p == 0.0 and any(len(b) > 1 for b in bursts):
        assert mon.peak == 1


# --- models and parameters -----------------------------------------------------------------------

def test_window_map_and_model():
    wm = WindowMap(addr_width=8, windows=[(0x10, 16), (0x80, 128), (0x05, 1)])
    assert [wm.decode(a) for a in (0x10, 0x1F, 0x20, 0x80, 0xFF, 0x05, 0x04, 0x105)] == \
        [(0, 0), (0, 15), None, (1, 0), (1, 127), (2, 0), None, (2, 0)]
    assert [wm.offset_width(i) for i in range(3)] == [4, 7, 1]
    assert wm == WindowMap(addr_width=8, windows=[(16, 16), (128, 128), (5, 1)])
    assert repr(wm) == "WindowMap(addr_width=8, windows=[(16, 16), (128, 128), (5, 1)])"
    model = MemoryMapModel(wm, error=[None, lambda a, we: we and a == 3, None])
    assert model.write(0x11, 0xAABBCCDD)
    assert model.write(0x11, 0x11223344, sel=0b0101)
    assert model.read(0x11) == 0xAA22CC44
    assert not model.write(0x83, 1) and model.read(0x83) == 0
    assert model.read(0x40) is None and not model.write(0x40, 1)
    assert model.memories == [{1: 0xAA22CC44}, {}, {}]


BAD = [
    (lambda: WishboneDecoder(addr_width=4, windows=[(0, 4)], observe="no"), TypeError,
     r"^WishboneDecoder observe must be a bool, not 'no'$"),
    (lambda: WishboneArbiter(addr_width=4, masters=2, observe=0), TypeError,
     r"^WishboneArbiter observe must be a bool, not 0$"),
    (lambda: WishboneDecoder(addr_width=4, windows=[(0, 3)]), ValueError,
     r"^WishboneDecoder windows\[0\] size must be a power of two, not 3$"),
    (lambda: WishboneDecoder(addr_width=4, windows=[(0, 4), (2, 2)]), ValueError,
     r"^WishboneDecoder windows\[0\] \(0x0, 0x4\) and windows\[1\] \(0x2, 0x2\) overlap$"),
    (lambda: WishboneDecoder(addr_width=4, windows=[(6, 4)]), ValueError,
     r"^WishboneDecoder windows\[0\] base must be a non-negative multiple of its size 0x4, "
     r"not 0x6$"),
    (lambda: WishboneDecoder(addr_width=4, windows=[(16, 16)]), ValueError,
     r"^WishboneDecoder windows\[0\] \(0x10, 0x10\) does not fit 4-bit addresses$"),
    (lambda: WishboneDecoder(addr_width=4, windows=[]), ValueError,
     r"^WishboneDecoder windows must hold at least one window, not \[\]$"),
    (lambda: WishboneDecoder(addr_width=4, windows=[(0, "4")]), TypeError,
     r"^WishboneDecoder windows\[0\] must be a \(base, size\) pair of integers, not "
     r"\(0, '4'\)$"),
    (lambda: WishboneDecoder(addr_width=4, windows=5), TypeError,
     r"^WishboneDecoder windows must be a sequence of \(base, size\) pairs, not 5$"),
    (lambda: WishboneDecoder(addr_width=0, windows=[(0, 1)]), ValueError,
     r"^WishboneDecoder addr_width must be from 1 to 64, not 0$"),
    (lambda: WishboneDecoder(addr_width=4, data_width=24, windows=[(0, 1)]), ValueError,
     r"^WishboneDecoder data_width must be 8, 16, 32 or 64, not 24$"),
    (lambda: WishboneDecoder(addr_width=4, windows=[(0, 1)], max_outstanding=0), ValueError,
     r"^WishboneDecoder max_outstanding must be from 1 to 256, not 0$"),
    (lambda: WishboneArbiter(addr_width=4, masters=0), ValueError,
     r"^WishboneArbiter masters must be from 1 to 64, not 0$"),
    (lambda: WishboneArbiter(addr_width=4, masters=True), TypeError,
     r"^WishboneArbiter masters must be an integer, not True$"),
    (lambda: WishboneArbiter(addr_width=4, granularity=64, masters=2), ValueError,
     r"^WishboneArbiter granularity must be 8, 16, 32 or 64 and at most data_width \(32\), "
     r"not 64$"),
    (lambda: WishboneSRAM(depth=12), ValueError,
     r"^WishboneSRAM depth must be a power of two, not 12$"),
    (lambda: WishboneSRAM(depth=1.5), TypeError,
     r"^WishboneSRAM depth must be an integer, not 1.5$"),
    (lambda: WishboneSRAM(depth=4, init=[1] * 5), ValueError,
     r"^WishboneSRAM init has 5 words, more than depth 4$"),
    (lambda: WishboneSRAM(depth=4, data_width=8, init=[256]), ValueError,
     r"^WishboneSRAM init\[0\] must be in \[0, 2\*\*8\), not 256$"),
    (lambda: FixarSoC("cfg", clk_freq=25e6), TypeError,
     r"^FixarSoC config must be a CoreConfig, not 'cfg'$"),
    (lambda: FixarSoC(tiny(csr_bus="axi-lite"), clk_freq=25e6), ValueError,
     r"^FixarSoC config.csr_bus must be 'wishbone', not 'axi-lite'$"),
    (lambda: FixarSoC(tiny(), clk_freq=-1.0), ValueError,
     r"^FixarSoC clk_freq must be a positive number \(Hz\), not -1.0$"),
    (lambda: FixarSoC(tiny(), clk_freq="25e6"), TypeError,
     r"^FixarSoC clk_freq must be a number \(Hz\), not '25e6'$"),
    (lambda: FixarSoC(tiny(), clk_freq=1e6, baud=400000), ValueError,
     r"^FixarSoC baud must be at most clk_freq / 4 \(250000\), not 400000$"),
    (lambda: FixarSoC(tiny(), clk_freq=1e6, baud=220000), ValueError,
     r"^FixarSoC baud 220000 is more than 2 % away from the nearest rate clk_freq / 5 = "
     r"200000$"),
    (lambda: FixarSoC(tiny(), clk_freq=25e6, sram_words=2048), ValueError,
     r"^FixarSoC sram_words must be a power of two from 3396 \(what FixarDriver stages\) to "
     r"268435456, not 2048$"),
    (lambda: FixarSoC(tiny(), clk_freq=25e6, sram_words=5000), ValueError,
     r"^FixarSoC sram_words must be a power of two from 3396 \(what FixarDriver stages\) to "
     r"268435456, not 5000$"),
    (lambda: FixarSoC(tiny(dma_addr_width=11), clk_freq=25e6), ValueError,
     r"^FixarSoC config needs 3396 words of RAM for the driver, more than the 2048 the map "
     r"allows$"),
    (lambda: FixarSoC(tiny(), clk_freq=25e6, link="usb"), ValueError,
     r"^FixarSoC link must be 'uart' or 'stream', not 'usb'$"),
]


@pytest.mark.parametrize(("call", "exc", "message"), BAD)
def test_bad_parameters(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_soc_map_and_signatures():
    c = tiny()
    soc = never_elaborated(FixarSoC(c, clk_freq=25e6))
    assert (soc.csr_base, soc.mem_base, soc.mem_offset) == (0, 0x1000_0000, 0)
    assert soc.divisor == 217 and soc.link == "uart"
    assert soc.sram_words == 4096 >= driver_memory_words(c)
    assert soc.address_map.windows == ((0, soc.csr_words), (0x1000_0000, 4096))
    assert soc.csr_words == 1 << soc.core.regmap.addr_width
    assert set(soc.signature.members) == {"uart_rx", "uart_tx", "irq", "busy"}
    big = never_elaborated(FixarSoC(c, clk_freq=25e6, sram_words=1 << 14, link="stream"))
    assert big.sram_words == 1 << 14 and big.sram.depth == 1 << 14
    assert set(big.signature.members) == {"host_rx", "host_tx", "irq", "busy"}
    t = SerialTransport.for_soc(SerialBusPortStub(), soc)
    assert (t.csr_base, t.mem_base, t.mem_offset) == (0, 0x1000_0000, 0)
    dec = WishboneDecoder(addr_width=8, windows=[(0, 1), (128, 64)])
    assert [len(s.adr) for s in dec.slaves] == [1, 6]
    assert dec.windows == ((0, 1), (128, 64))
    assert len(WishboneArbiter(addr_width=4, masters=3).masters) == 3


class SerialBusPortStub:
    def write(self, data):
        return len(data)

    def read(self, n):
        return b""


# --- the SoC -------------------------------------------------------------------------------------

class SimStreamPort:
    """A byte port onto :class:`FixarSoC`'s ``link="stream"`` ports in a running simulation
    (the byte-stream twin of :class:`fixar_hw.host.serial_link.SimSerialPort`)."""

    def __init__(self, sim, rx, tx, *, timeout_cycles: int = 4000) -> None:
        self._sim = sim
        self._to_send: deque[int] = deque()
        self._received = bytearray()
        self._timeout = timeout_cycles
        self.cycles = 0

        async def sender(ctx) -> None:
            while True:
                if self._to_send:
                    await stream_put(ctx, rx, self._to_send.popleft())
                else:
                    await ctx.tick()

        async def receiver(ctx) -> None:
            while True:
                self._received.append(await stream_get(ctx, tx))

        sim.add_testbench(sender, background=True)
        sim.add_testbench(receiver, background=True)

    def write(self, data: bytes) -> int:
        self._to_send.extend(bytes(data))
        return len(data)

    def read(self, n: int) -> bytes:
        idle = 0
        while len(self._received) < n and idle < self._timeout:
            have = len(self._received)
            self.cycles += 16
            self._sim.run_until(self.cycles * PERIOD)
            idle = 0 if len(self._received) != have or self._to_send else idle + 16
        out = bytes(self._received[:n])
        del self._received[:n]
        return out


def uart_soc(config):
    soc = FixarSoC(config, clk_freq=4 * 115200, baud=115200)
    sim = Simulator(soc)
    sim.add_clock(PERIOD)
    port = SimSerialPort(sim, soc.uart_rx, soc.uart_tx, divisor=soc.divisor,
                         clock_period=PERIOD)
    return soc, sim, port


def test_soc_over_the_uart():
    """Bring-up, RAM, bus errors and a DMA round trip through the UART pins (divisor 4)."""
    c = tiny(dma_addr_width=16)
    soc, _, port = uart_soc(c)
    assert soc.divisor == 4
    drv = FixarDriver(SerialTransport.for_soc(port, soc), c)  # checks ID, VERSION and CONFIG_ID
    assert drv.read("ID") == MAGIC
    # the driver's staging windows are inside the RAM
    ends = [drv._window[g["name"]] + g["depth"] * g["beats"] for g in drv.regmap.memories]
    assert max(ends) == driver_memory_words(c) <= soc.sram_words
    bus = SerialBus(port)
    bus.write(soc.mem_base + soc.sram_words - 2, [0x12345678, 0xCAFEF00D])
    assert bus.read(soc.mem_base + soc.sram_words - 2, 2) == [0x12345678, 0xCAFEF00D]
    for addr in (soc.mem_base + soc.sram_words, soc.csr_words, 0xFFFF_FFFF):
        with pytest.raises(BusError):
            bus.read(addr, 1)
    # host -> RAM -> DMA -> activation memory -> DMA -> RAM -> host
    rows = np.array([[1, -2], [32767, -32768]])
    drv.write_memory("A", 0, rows)
    assert np.array_equal(drv.read_memory("A", 0, 2), rows)


@pytest.mark.skipif(PROFILE != "nightly", reason="about 400 k simulated cycles: nightly only")
def test_soc_action_over_the_uart():
    """A whole action through the UART pins equals the NumPy agent's."""
    c = tiny(dma_addr_width=16)
    soc, _, port = uart_soc(c)
    drv = FixarDriver(SerialTransport.for_soc(port, soc), c)
    e = c.engine
    agent = DDPGAgent(e.ddpg, e.obs_dim, e.act_dim, [-2.0], [2.0])
    drv.load_state(en.load_state(e, agent.weights, agent.targets, agent.opt), seed=e.ddpg.seed)
    obs = np.array([0.25, -0.5, 0.75])
    got = drv.act(e.ddpg.act_fmt.from_float(obs), ds.activation_formats(e.ddpg))
    assert np.array_equal(e.ddpg.act_fmt.to_float(got), agent.explore(obs))


@settings(max_examples=SOC_EXAMPLES)
@given(st.integers(0, 2**32 - 1))
def test_soc_training_step_and_action_equal_the_numpy_trainer(seed):
    """The same SoC with its byte-stream link: load, one training step, one action, state
    read back; everything equals the NumPy fixed-point trainer. Every word of the state goes
    through the link twice, so the quick profile trains a 3-2-1 actor at batch 2 (nightly:
    3-5-1 at batch 4)."""
    c = tiny(*(((5,), 4) if PROFILE == "nightly" else ((2,), 2)), dma_addr_width=16)
    soc = FixarSoC(c, clk_freq=4 * 115200, baud=115200, link="stream")
    sim = Simulator(soc)
    sim.add_clock(PERIOD)
    port = SimStreamPort(sim, soc.host_rx, soc.host_tx)
    seen = {"busy": False}

    async def watch(ctx) -> None:
        async for _, _, busy in ctx.tick().sample(soc.busy):
            seen["busy"] = seen["busy"] or bool(busy)

    sim.add_process(watch)
    drv = FixarDriver(SerialTransport.for_soc(port, soc), c)
    cfg, e = c.engine.ddpg, c.engine
    hw = HardwareAgent(cfg, e.obs_dim, e.act_dim, [-2.0], [2.0], driver=drv)
    sw = DDPGAgent(cfg, e.obs_dim, e.act_dim, [-2.0], [2.0])
    data = np.random.default_rng(seed)
    fill((hw, sw), data, cfg.batch_size + 1)
    hw.train_step()
    sw.train_step()
    obs = data.uniform(-1, 1, e.obs_dim)
    assert np.array_equal(hw.explore(obs), sw.explore(obs))
    assert_agents_equal(hw, sw)
    assert seen["busy"]
