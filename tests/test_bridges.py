# amaranth: UnusedElaboratable=no
"""The bus bridges in simulation, against a Wishbone memory with stalls, waits and errors.

:class:`AXILiteToWishbone`: a writer and a reader run at once (so the arbiter is exercised),
with random valid delays (``aw`` and ``w`` in either order) and response backpressure; the
responses and the memory must match a model, and both buses are checked for protocol.

:class:`UARTWishboneBridge`: commands encoded with :mod:`fixar_hw.host.serial_link` go over the
simulated serial line (:class:`~fixar_hw.host.serial_link.SimSerialPort`), and the replies
(decoded by the functions :class:`~fixar_hw.host.serial_link.SerialBus` uses) and the memory must
match a Python model of the protocol.
"""

import itertools
import os

import pytest
from amaranth.hdl import Cat
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from fixar_hw.host.serial_link import (
    BusError,
    SerialBus,
    SimSerialPort,
    decode_read_reply,
    decode_write_reply,
    encode_read,
    encode_write,
    read_reply_length,
    uart_send,
)
from fixar_hw.sim.testing import stall_pattern, wishbone_monitor, wishbone_slave
from fixar_hw.soc.bridges import AXILiteToWishbone, UARTReceiver, UARTWishboneBridge

from .strategies import stall_lists

PROFILE = os.environ.get("FIXAR_HYPOTHESIS_PROFILE", "ci")
MAX_EXAMPLES = {"ci": 3, "nightly": 30}.get(PROFILE, 3)
AXI_EXAMPLES = {"ci": 15, "nightly": 200}.get(PROFILE, 15)
PERIOD = 1e-6


def waits(values):
    it = iter(list(values))
    return lambda: next(it, 0)


# --- parameters ---------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "exc", "message"), [
    (lambda: AXILiteToWishbone(addr_width=2), ValueError,
     r"^AXILiteToWishbone addr_width must be from 3 to 64, not 2$"),
    (lambda: AXILiteToWishbone(addr_width=3, data_width=64), ValueError,
     r"^AXILiteToWishbone addr_width must be from 4 to 64, not 3$"),
    (lambda: AXILiteToWishbone(addr_width="8"), TypeError,
     r"^AXILiteToWishbone addr_width must be an integer, not '8'$"),
    (lambda: AXILiteToWishbone(addr_width=8, data_width=16), ValueError,
     r"^AXILiteToWishbone data_width must be 32 or 64, not 16$"),
    (lambda: AXILiteToWishbone(addr_width=8, data_width=32.0), TypeError,
     r"^AXILiteToWishbone data_width must be an integer, not 32.0$"),
    (lambda: AXILiteToWishbone(addr_width=8, observe=None), TypeError,
     r"^AXILiteToWishbone observe must be a bool, not None$"),
    (lambda: UARTWishboneBridge(divisor=3), ValueError,
     r"^UARTWishboneBridge divisor must be from 4 to 16777216, not 3$"),
    (lambda: UARTWishboneBridge(divisor=True), TypeError,
     r"^UARTWishboneBridge divisor must be an integer, not True$"),
    (lambda: UARTWishboneBridge(divisor=4, addr_width=33), ValueError,
     r"^UARTWishboneBridge addr_width must be from 1 to 32, not 33$"),
    (lambda: UARTWishboneBridge(divisor=4, data_width=24), ValueError,
     r"^UARTWishboneBridge data_width must be 8, 16, 32 or 64, not 24$"),
])
def test_bad_parameters(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_signatures():
    dut = AXILiteToWishbone(addr_width=12, data_width=64)
    assert (dut.bus.adr.shape().width, len(dut.bus.sel), dut.addr_width) == (9, 8, 12)
    with pytest.raises(TypeError):
        AXILiteToWishbone(12)
    bridge = UARTWishboneBridge(divisor=5, data_width=16)
    assert (len(bridge.bus.adr), len(bridge.bus.sel), bridge.cycles_per_byte) == (30, 2, 50)


# --- AXI4-Lite to Wishbone ----------------------------------------------------------------

def axi_response_monitor(valid, ready, payload, name):
    async def monitor(ctx):
        held = None
        async for _, _, v, r, p in ctx.tick().sample(valid, ready, payload):
            if held is not None:
                assert v and p == held, f"{name} changed before its handshake"
            held = p if (v and not r) else None
    return monitor


async def axi_write(ctx, axi, addr, data, strb, aw_delay, w_delay, b_stall):
    aw_done = w_done = False
    t = 0
    ctx.set(axi.awaddr, addr)
    ctx.set(axi.wdata, data)
    ctx.set(axi.wstrb, strb)
    while not (aw_done and w_done):
        ctx.set(axi.awvalid, not aw_done and t >= aw_delay)
        ctx.set(axi.wvalid, not w_done and t >= w_delay)
        _, _, awv, awr, wv, wr = await ctx.tick().sample(axi.awvalid, axi.awready,
                                                         axi.wvalid, axi.wready)
        aw_done |= bool(awv and awr)
        w_done |= bool(wv and wr)
        t += 1
    ctx.set(axi.awvalid, 0)
    ctx.set(axi.wvalid, 0)
    while True:
        ready = not b_stall()
        ctx.set(axi.bready, ready)
        _, _, bv, bresp = await ctx.tick().sample(axi.bvalid, axi.bresp)
        if bv and ready:
            ctx.set(axi.bready, 0)
            return bresp


async def axi_read(ctx, axi, addr, delay, r_stall):
    await ctx.tick().repeat(delay) if delay else None
    ctx.set(axi.araddr, addr)
    ctx.set(axi.arvalid, 1)
    await ctx.tick().until(axi.arready)
    ctx.set(axi.arvalid, 0)
    while True:
        ready = not r_stall()
        ctx.set(axi.rready, ready)
        _, _, rv, rdata, rresp = await ctx.tick().sample(axi.rvalid, axi.rdata, axi.rresp)
        if rv and ready:
            ctx.set(axi.rready, 0)
            return rdata, rresp


writes = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 2**64 - 1), st.integers(0, 255),
                            st.integers(0, 3), st.integers(0, 3)), max_size=6)
reads = st.lists(st.tuples(st.integers(8, 15), st.integers(0, 3)), max_size=6)


@settings(max_examples=AXI_EXAMPLES)
@given(st.sampled_from([32, 64]), writes, reads, st.sets(st.integers(0, 15), max_size=4),
       stall_lists(60), st.lists(st.integers(0, 3), max_size=20), stall_lists(40),
       stall_lists(40))
def test_axi_to_wishbone(dw, wr, rd, bad, bus_stalls, bus_waits, b_stalls, r_stalls):
    nbytes = dw // 8
    dut = AXILiteToWishbone(addr_width=8, data_width=dw)
    mask = (1 << dw) - 1
    mem = {a: (a * 0x0123456789ABCDEF) & mask for a in range(16)}
    model = dict(mem)
    expect_w = []
    for a, data, strb, _, _ in wr:
        data &= mask
        strb &= (1 << nbytes) - 1
        if a in bad:
            expect_w.append(2)
            continue
        expect_w.append(0)
        for lane in range(nbytes):
            if (strb >> lane) & 1:
                lm = 0xFF << (8 * lane)
                model[a] = (model[a] & ~lm) | (data & lm)
    expect_r = [(0, 2) if a in bad else (mem[a], 0) for a, _ in rd]
    got_w, got_r = [], []

    async def writer(ctx):
        stall = stall_pattern(b_stalls)
        for a, data, strb, d1, d2 in wr:
            # byte address: low bits are ignored by the bridge
            got_w.append(await axi_write(ctx, dut.axi, a * nbytes + (d1 & (nbytes - 1)),
                                         data & mask, strb & ((1 << nbytes) - 1), d1, d2, stall))

    async def reader(ctx):
        stall = stall_pattern(r_stalls)
        for a, delay in rd:
            got_r.append(await axi_read(ctx, dut.axi, a * nbytes, delay, stall))

    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    sim.add_testbench(writer)
    sim.add_testbench(reader)
    sim.add_testbench(wishbone_slave(dut.bus, mem, stall=stall_pattern(bus_stalls),
                                     wait=waits(bus_waits), error=lambda a, we: a in bad),
                      background=True)
    sim.add_process(wishbone_monitor(dut.bus))
    sim.add_process(axi_response_monitor(dut.axi.bvalid, dut.axi.bready, dut.axi.bresp, "b"))
    sim.add_process(axi_response_monitor(dut.axi.rvalid, dut.axi.rready,
                                         Cat(dut.axi.rdata, dut.axi.rresp), "r"))
    sim.run()
    assert got_w == expect_w
    assert got_r == expect_r
    assert mem == model


def test_axi_reads_and_writes_take_turns():
    """With both always requested, the bridge alternates."""
    dut = AXILiteToWishbone(addr_width=8)
    mem = {}
    log = []

    async def master(ctx):
        axi = dut.axi
        for s in (axi.awvalid, axi.wvalid, axi.arvalid, axi.bready, axi.rready):
            ctx.set(s, 1)
        ctx.set(axi.wstrb, 0xF)
        await ctx.tick().repeat(60)

    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    sim.add_testbench(master)
    sim.add_testbench(wishbone_slave(dut.bus, mem, log=log), background=True)
    sim.run()
    kinds = [we for we, *_ in log]
    assert len(kinds) >= 6
    assert all(a != b for a, b in itertools.pairwise(kinds))


# --- UART receiver ------------------------------------------------------------------------

@pytest.mark.parametrize("skew", [-0.03, 0.0, 0.03])
def test_uart_receiver_tolerates_baud_error(skew):
    divisor = 16
    data = bytes([0x00, 0xFF, 0x55, 0xAA, 0x01, 0x80, 0x3C])
    dut = UARTReceiver(divisor=divisor)
    got = []

    async def sender(ctx):
        await ctx.tick().repeat(3)
        # a glitch shorter than half a bit is not a start bit
        ctx.set(dut.rx, 0)
        await ctx.tick().repeat(divisor // 2 - 4)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(2 * divisor)
        await uart_send(ctx, dut.rx, data, divisor * (1 + skew))
        await ctx.tick().repeat(2 * divisor)

    async def receiver(ctx):
        async for _, _, valid, payload in ctx.tick().sample(dut.data.valid, dut.data.payload):
            if valid:
                got.append(payload)

    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    sim.add_testbench(sender)
    sim.add_process(receiver)
    sim.run()
    assert bytes(got) == data


def test_uart_receiver_drops_a_framing_error():
    divisor = 8
    dut = UARTReceiver(divisor=divisor)
    got = []

    async def sender(ctx):
        ctx.set(dut.rx, 0)  # a break: 12 bit times low
        await ctx.tick().repeat(12 * divisor)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(divisor)
        await uart_send(ctx, dut.rx, b"\x5a", divisor)
        await ctx.tick().repeat(divisor)

    async def receiver(ctx):
        async for _, _, valid, payload in ctx.tick().sample(dut.data.valid, dut.data.payload):
            if valid:
                got.append(payload)

    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    sim.add_testbench(sender)
    sim.add_process(receiver)
    sim.run()
    assert got == [0x5A]


# --- UART to Wishbone ---------------------------------------------------------------------

def bridge_sim(dut, mem, bad, *, stalls=(), wait_list=(), divisor=4):
    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    sim.add_testbench(wishbone_slave(dut.bus, mem, stall=stall_pattern(stalls),
                                     wait=waits(wait_list), error=lambda a, we: a in bad),
                      background=True)
    sim.add_process(wishbone_monitor(dut.bus))
    port = SimSerialPort(sim, dut.rx, dut.tx, divisor=divisor, clock_period=PERIOD)
    return sim, port


def model_command(model, bad, op, addr, arg, amask):
    """The reply the protocol specifies, applying writes to ``model``."""
    span = [(addr + i) & amask for i in range(len(arg) if op == "w" else arg)]
    done, status, data = 0, 0, []
    for i, a in enumerate(span):
        if status or a in bad:
            status = 1
            if op == "r":
                data.append(0)
            continue
        if op == "w":
            model[a] = arg[i]
        else:
            data.append(model.get(a, 0))
        done += 1
    return data, status, done


uart_ops = st.lists(st.one_of(
    st.tuples(st.just("w"), st.integers(0, 20), st.lists(st.integers(0, 2**64 - 1),
                                                         max_size=3)),
    st.tuples(st.just("r"), st.integers(0, 20), st.integers(0, 3))), min_size=1, max_size=4)


@settings(max_examples=MAX_EXAMPLES)
@given(st.sampled_from([8, 16, 32]), st.integers(4, 6), uart_ops,
       st.sets(st.integers(0, 23), max_size=3), stall_lists(40),
       st.lists(st.integers(0, 4), max_size=20))
def test_uart_bridge_against_model(dw, divisor, ops, bad, stalls, wait_list):
    aw = 5
    amask = (1 << aw) - 1
    mask = (1 << dw) - 1
    dut = UARTWishboneBridge(divisor=divisor, addr_width=aw, data_width=dw)
    mem = {a: (a * 0x9E3779B97F4A7C15) & mask for a in range(0, 32, 3)}
    model = dict(mem)
    _, port = bridge_sim(dut, mem, bad, stalls=stalls, wait_list=wait_list, divisor=divisor)
    for op, addr, arg in ops:
        if op == "w":
            words = [w & mask for w in arg]
            port.write(encode_write(addr, words, dw))
            status, done = decode_write_reply(port.read(3), len(words))
            assert ([], status, done) == model_command(model, bad, "w", addr, words, amask)
        else:
            port.write(encode_read(addr, arg))
            reply = port.read(read_reply_length(arg, dw))
            assert decode_read_reply(reply, arg, dw) == model_command(
                model, bad, "r", addr, arg, amask)
        assert mem == model
    # the line is in step after all that: an unknown command is answered alone
    port.write(b"\x00")
    assert port.read(2) == b"\xff"


def test_uart_bridge_with_serial_bus():
    """SerialBus itself, through the simulated line: chunks, bus errors, resync."""
    mem = {}
    bad = {0x13}
    dut = UARTWishboneBridge(divisor=4, addr_width=8)
    _, port = bridge_sim(dut, mem, bad, stalls=[True, False] * 8, wait_list=[2, 0, 3])
    bus = SerialBus(port, max_count=2)
    bus.write(0x10, [1, 2, 0xDEADBEEF])
    assert mem == {0x10: 1, 0x11: 2, 0x12: 0xDEADBEEF}
    assert bus.read(0x10, 3) == [1, 2, 0xDEADBEEF]
    with pytest.raises(BusError) as info:
        bus.write(0x11, [7, 8, 9, 10])  # fails at 0x13, in the second chunk
    assert (info.value.addr, info.value.words_done) == (0x13, 2)
    assert mem == {0x10: 1, 0x11: 7, 0x12: 8}
    with pytest.raises(BusError) as info:
        bus.read(0x12, 2)
    assert (info.value.addr, info.value.words_done) == (0x13, 1)
    port.write(b"\x07\x08")
    assert port.read(2) == b"\xff\xff"
    assert bus.read(0xFF, 1) == [0]


def test_uart_bridge_discards_the_rest_of_a_failed_write():
    """After an error at the first word, the remaining data bytes are not read as commands."""
    mem = {}
    dut = UARTWishboneBridge(divisor=4, addr_width=8, data_width=8)
    _, port = bridge_sim(dut, mem, {0x20})
    # data bytes that look like commands: a read of address 1, and a write
    port.write(encode_write(0x20, [0x02, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01], 8))
    assert decode_write_reply(port.read(3), 8) == (1, 0)
    assert port.read(1) == b""  # nothing more comes
    assert mem == {}
    port.write(encode_write(0x21, [0x42], 8))
    assert decode_write_reply(port.read(3), 1) == (0, 1)
    assert mem == {0x21: 0x42}


def test_uart_bridge_count_zero_and_timing():
    dut = UARTWishboneBridge(divisor=5, addr_width=8, data_width=8)
    _, port = bridge_sim(dut, {}, set(), divisor=5)
    port.write(encode_read(3, 0))
    assert decode_read_reply(port.read(3), 0, 8) == ([], 0, 0)
    start = port.cycles
    port.write(encode_read(3, 1))
    assert decode_read_reply(port.read(4), 1, 8) == ([0], 0, 1)
    # 7 bytes in, 4 bytes out, 10 * divisor cycles each, plus a few cycles of latency
    assert port.cycles - start <= 11 * 10 * 5 + 40
