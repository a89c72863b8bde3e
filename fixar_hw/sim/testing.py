"""Stream helpers for Amaranth async testbenches: put, get, and a protocol monitor.

Every stream test in this project drives its ports through these helpers, so gaps on the
producer side and backpressure on the consumer side are exercised the same way everywhere.
Stall decisions come from callables; :func:`stall_pattern` turns a list of decisions drawn by
Hypothesis before the simulation into one, so a failing stall pattern shrinks like any other
input. (Drawing inside a running simulation is not safe: when Hypothesis stops an example
mid-draw, its exception unwinds through the simulator's coroutines.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

__all__ = [
    "BusProtocolError",
    "StreamProtocolError",
    "simulate_stream",
    "stall_pattern",
    "stream_get",
    "stream_monitor",
    "stream_put",
    "wishbone_monitor",
    "wishbone_slave",
]


class StreamProtocolError(AssertionError):
    """A stream broke the valid/ready rules (valid dropped or payload changed while stalled)."""


class BusProtocolError(AssertionError):
    """A bus master or slave broke the Wishbone B4 pipelined rules."""


def _never() -> bool:
    return False


def _no_wait() -> int:
    return 0


def _no_error(addr: int, we: bool) -> bool:
    return False


def stall_pattern(decisions: Sequence[bool]) -> Callable[[], bool]:
    """A stall callable that returns ``decisions`` in order, then ``False`` forever."""
    it = iter(list(decisions))
    return lambda: next(it, False)


async def stream_put(ctx, stream, payload: Any, *, stall: Callable[[], bool] = _never) -> None:
    """Send one payload on ``stream`` (driven by the testbench).

    Before raising ``valid``, idles one cycle for each consecutive ``True`` from ``stall()``
    (a producer gap). Returns after the transfer's clock edge, with ``valid`` low again.
    """
    while stall():
        await ctx.tick()
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, *, stall: Callable[[], bool] = _never) -> Any:
    """Receive one payload from ``stream`` (driven by the design).

    Each cycle, ``ready`` is low while ``stall()`` returns ``True`` (consumer backpressure).
    Returns the payload sampled at the transfer's clock edge, with ``ready`` low again.
    """
    while True:
        ready = not stall()
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if ready and valid:
            ctx.set(stream.ready, 0)
            return payload


def stream_monitor(stream, *, name: str = "stream") -> Callable:
    """A simulator process checking the valid/ready rules of ``stream`` at every clock edge.

    Once ``valid`` is high without ``ready``, ``valid`` must stay high and ``payload`` must not
    change until a transfer. Add it with ``sim.add_process(stream_monitor(dut.o))``; it raises
    :class:`StreamProtocolError` on the first violation.
    """

    async def monitor(ctx) -> None:
        held = None
        async for _, rst, valid, ready, payload in ctx.tick().sample(
                stream.valid, stream.ready, stream.payload):
            if rst:
                held = None
                continue
            if held is not None:
                if not valid:
                    raise StreamProtocolError(f"{name}: valid dropped while stalled")
                if payload != held:
                    raise StreamProtocolError(
                        f"{name}: payload changed while stalled: {held!r} -> {payload!r}")
            held = payload if (valid and not ready) else None

    return monitor


def simulate_stream(dut, inputs: Sequence[Any], n_outputs: int, *,
                    in_stall: Callable[[], bool] = _never,
                    out_stall: Callable[[], bool] = _never,
                    vcd: str | None = None) -> tuple[list[Any], int]:
    """Run ``dut`` (with streams ``i`` and ``o``) in the Amaranth simulator.

    Sends every payload of ``inputs`` on ``dut.i`` (with producer gaps from ``in_stall``),
    receives ``n_outputs`` payloads from ``dut.o`` (with backpressure from ``out_stall``),
    checks ``o``'s valid/ready rules with :func:`stream_monitor`, and optionally writes a VCD.

    Returns
    -------
    tuple of (list, int)
        The received payloads in order, and the clock cycles until the last one.
    """
    from amaranth.sim import Simulator

    outputs: list[Any] = []
    cycles = [0]

    async def producer(ctx) -> None:
        for payload in inputs:
            await stream_put(ctx, dut.i, payload, stall=in_stall)

    async def consumer(ctx) -> None:
        for _ in range(n_outputs):
            outputs.append(await stream_get(ctx, dut.o, stall=out_stall))

    async def count(ctx) -> None:
        async for _ in ctx.tick():
            cycles[0] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_process(count)
    sim.add_process(stream_monitor(dut.o, name="o"))
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return outputs, cycles[0]


def wishbone_slave(bus, memory: MutableMapping[int, int], *,
                   stall: Callable[[], bool] = _never,
                   wait: Callable[[], int] = _no_wait,
                   error: Callable[[int, bool], bool] = _no_error,
                   log: list | None = None,
                   write_cycles: MutableMapping[int, int] | None = None) -> Callable:
    """A testbench modelling a memory behind a Wishbone B4 pipelined slave port.

    Add it with ``sim.add_testbench(wishbone_slave(dut.bus, mem), background=True)``.
    ``memory`` maps word addresses to words (absent words read as 0). Each cycle, ``stall()``
    decides the ``stall`` output; an accepted request (``cyc & stb & ~stall``) is answered,
    in order, after ``wait()`` further cycles (0: on the next cycle) with ``ack`` or, when
    ``error(adr, we)`` is true, with ``err`` (and then a write is not performed). Writes honour
    ``sel`` (``granularity``-bit lanes) and take effect when accepted; reads return the word at
    acceptance. Dropping ``cyc`` abandons the outstanding requests (their writes stay done).
    ``log``, if given, receives ``(we, adr, data, ok)`` for every accepted request.
    ``write_cycles``, if given, maps the address of every performed write to the clock cycle
    that accepted it (the number of clock edges since the slave started, counting that
    cycle's edge: 1 for the first), the last write's when there are several.
    """
    dw, gran = len(bus.dat_w), len(bus.dat_w) // len(bus.sel)
    mask = (1 << dw) - 1

    async def slave(ctx) -> None:
        pending: deque = deque()  # [cycles left, ok, data]
        cycle = 0
        ctx.set(bus.ack, 0)
        ctx.set(bus.err, 0)
        while True:
            st = bool(stall())
            ctx.set(bus.stall, st)
            head = pending[0] if pending and pending[0][0] <= 0 else None
            answer = head is not None and ctx.get(bus.cyc)
            ctx.set(bus.ack, answer and head[1])
            ctx.set(bus.err, answer and not head[1])
            ctx.set(bus.dat_r, head[2] if answer and head[1] else 0)
            _, _, cyc, stb, adr, we, dat_w, sel = await ctx.tick().sample(
                bus.cyc, bus.stb, bus.adr, bus.we, bus.dat_w, bus.sel)
            cycle += 1
            if answer:
                pending.popleft()
            for entry in pending:
                entry[0] -= 1
            if not cyc:
                pending.clear()
                continue
            if stb and not st:
                ok = not error(adr, bool(we))
                data = 0
                if ok and we:
                    old = memory.get(adr, 0)
                    for lane in range(len(bus.sel)):
                        if (sel >> lane) & 1:
                            lm = ((1 << gran) - 1) << (lane * gran)
                            old = (old & ~lm) | (dat_w & lm)
                    memory[adr] = old & mask
                    if write_cycles is not None:
                        write_cycles[adr] = cycle
                elif ok:
                    data = memory.get(adr, 0) & mask
                if log is not None:
                    log.append((bool(we), adr, dat_w if we else data, ok))
                pending.append([int(wait()), ok, data])

    return slave


def wishbone_monitor(bus, *, name: str = "bus") -> Callable:
    """A simulator process checking Wishbone B4 pipelined rules at every clock edge.

    Master side: ``stb`` only with ``cyc``; ``adr``, ``we``, ``dat_w`` and ``sel`` held while
    ``stb & stall`` (unless the master drops ``cyc``, abandoning its requests). Slave side:
    ``ack`` and ``err`` never together, only with ``cyc``, and never more answers than
    accepted requests. Raises :class:`BusProtocolError`. Add it with
    ``sim.add_process(wishbone_monitor(dut.bus))``; its ``peak`` attribute is the most
    requests that were outstanding at once.
    """

    async def monitor(ctx) -> None:
        held = None
        outstanding = 0
        async for _, rst, cyc, stb, stall_, adr, we, dat_w, sel, ack, err in ctx.tick().sample(
                bus.cyc, bus.stb, bus.stall, bus.adr, bus.we, bus.dat_w, bus.sel, bus.ack,
                bus.err):
            if rst:
                held, outstanding = None, 0
                continue
            if stb and not cyc:
                raise BusProtocolError(f"{name}: stb without cyc")
            if held is not None and cyc and (not stb or (adr, we, dat_w, sel) != held):
                raise BusProtocolError(f"{name}: request changed while stalled: {held!r} -> "
                                       f"{(stb, adr, we, dat_w, sel)!r}")
            if ack and err:
                raise BusProtocolError(f"{name}: ack and err together")
            if (ack or err) and not cyc:
                raise BusProtocolError(f"{name}: answer without cyc")
            if ack or err:
                if outstanding == 0:
                    raise BusProtocolError(f"{name}: answer without an outstanding request")
                outstanding -= 1
            if cyc and stb and not stall_:
                outstanding += 1
            if not cyc:
                outstanding = 0
            monitor.peak = max(monitor.peak, outstanding)
            held = (adr, we, dat_w, sel) if (cyc and stb and stall_) else None

    monitor.peak = 0
    return monitor
