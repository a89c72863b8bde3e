# amaranth: UnusedElaboratable=no
"""Bus signatures, and the Wishbone memory model and protocol monitor the bus tests rely on."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.sim.testing import BusProtocolError, stall_pattern, wishbone_monitor, wishbone_slave
from fixar_hw.soc.bus import AXILiteSignature, WishboneSignature


def test_wishbone_signature_members_and_validation():
    sig = WishboneSignature(addr_width=10, data_width=32, granularity=8)
    assert sig == WishboneSignature(addr_width=10, data_width=32, granularity=8)
    assert sig != WishboneSignature(addr_width=10, data_width=32)
    assert hash(sig) == hash(WishboneSignature(addr_width=10, data_width=32, granularity=8))
    m = sig.members
    assert m["sel"].shape == 4 and m["adr"].shape == 10
    assert {k for k, v in m.items() if v.flow == In} == {"dat_r", "ack", "err", "stall"}
    assert WishboneSignature(addr_width=4, data_width=16).members["sel"].shape == 1
    with pytest.raises(ValueError, match="data_width"):
        WishboneSignature(addr_width=4, data_width=24)
    with pytest.raises(ValueError, match="granularity"):
        WishboneSignature(addr_width=4, data_width=16, granularity=32)
    with pytest.raises(TypeError, match="addr_width"):
        WishboneSignature(addr_width="4", data_width=16)
    with pytest.raises(ValueError, match="addr_width"):
        WishboneSignature(addr_width=0, data_width=16)
    with pytest.raises(TypeError):
        WishboneSignature(4, 16)  # keyword-only


def test_axi_lite_signature_members_and_validation():
    sig = AXILiteSignature(addr_width=12)
    assert sig.data_width == 32 and sig == AXILiteSignature(addr_width=12, data_width=32)
    m = sig.members
    assert m["wstrb"].shape == 4 and m["awaddr"].shape == 12
    ins = {k for k, v in m.items() if v.flow == In}
    assert ins == {"awready", "wready", "bresp", "bvalid", "arready", "rdata", "rresp",
                   "rvalid"}
    with pytest.raises(ValueError, match="data_width"):
        AXILiteSignature(addr_width=12, data_width=16)
    with pytest.raises(ValueError, match="addr_width"):
        AXILiteSignature(addr_width=65)


class _Master(wiring.Component):
    """A bus master driven entirely by the testbench."""

    def __init__(self):
        super().__init__({"bus": Out(WishboneSignature(addr_width=6, data_width=16,
                                                       granularity=8))})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += Signal().eq(0)  # a clock domain for the testbench
        return m


def _run(requests, *, stall, wait, error, bad=None):
    """Pipelined requests through the memory model; returns the answers and the memory."""
    dut = _Master()
    memory = {}
    answers = []
    log = []

    async def master(ctx):
        bus = dut.bus
        ctx.set(bus.cyc, 1)
        sent = 0
        held = 0  # cycles the current request has been presented
        while len(answers) < len(requests):
            if sent < len(requests):
                we, adr, data, sel = requests[sent]
                ctx.set(bus.stb, 1)
                ctx.set(bus.we, we)
                ctx.set(bus.adr, adr)
                ctx.set(bus.dat_w, data)
                ctx.set(bus.sel, sel)
            else:
                ctx.set(bus.stb, 0)
            if bad == "change" and sent == 1 and held == 1:
                ctx.set(bus.adr, 63)
            _, _, st, ack, err, dat = await ctx.tick().sample(bus.stall, bus.ack, bus.err,
                                                               bus.dat_r)
            if ack or err:
                answers.append((bool(ack), int(dat)))
            held += 1
            if sent < len(requests) and not st:
                sent += 1
                held = 0
        ctx.set(bus.stb, 0)
        ctx.set(bus.cyc, 0)
        await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(wishbone_slave(dut.bus, memory, stall=stall, wait=wait, error=error,
                                     log=log), background=True)
    sim.add_process(wishbone_monitor(dut.bus))
    sim.add_testbench(master)
    sim.run()
    return answers, memory, log


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 7), st.integers(0, 0xFFFF),
                          st.integers(0, 3)), min_size=1, max_size=12),
       st.lists(st.booleans(), max_size=40), st.lists(st.integers(0, 3), max_size=20),
       st.sets(st.integers(0, 7), max_size=2))
def test_memory_model_answers_in_order(requests, stalls, waits, failing):
    """Against a dict model: byte-lane writes, reads of the current word, errors that write
    nothing, and every request answered once, in order."""
    s, w = iter(stalls), iter(waits)
    answers, memory, log = _run(requests, stall=lambda: next(s, False),
                                wait=lambda: next(w, 0),
                                error=lambda adr, we: adr in failing)
    model = {}
    want = []
    for we, adr, data, sel in requests:
        if adr in failing:
            want.append((False, 0))
            continue
        if we:
            old = model.get(adr, 0)
            for lane in range(2):
                if sel >> lane & 1:
                    mask = 0xFF << (8 * lane)
                    old = (old & ~mask) | (data & mask)
            model[adr] = old
            want.append((True, 0))
        else:
            want.append((True, model.get(adr, 0)))
    assert answers == want
    assert memory == model
    assert [(we, adr) for we, adr, _, _ in log] == [(bool(we), adr) for we, adr, _, _ in requests]


def test_monitor_catches_a_request_changed_while_stalled():
    with pytest.raises(BusProtocolError, match="changed while stalled"):
        _run([(0, 1, 0, 3), (0, 2, 0, 3), (0, 3, 0, 3)], stall=stall_pattern([False, True, True]),
             wait=lambda: 0, error=lambda a, w: False, bad="change")
