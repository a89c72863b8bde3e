"""Stream helpers for Amaranth async testbenches: put, get, and a protocol monitor.

Every stream test in this project drives its ports through these helpers, so gaps on the
producer side and backpressure on the consumer side are exercised the same way everywhere.
Stall decisions come from callables; :func:`stall_pattern` turns a list of decisions drawn by
Hypothesis before the simulation into one, so a failing stall pattern shrinks like any other
input. (Drawing inside a running simulation is not safe: when Hypothesis stops an example
mid-draw, its exception unwinds through the simulator's coroutines.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "StreamProtocolError",
    "simulate_stream",
    "stall_pattern",
    "stream_get",
    "stream_monitor",
    "stream_put",
]


class StreamProtocolError(AssertionError):
    """A stream broke the valid/ready rules (valid dropped or payload changed while stalled)."""


def _never() -> bool:
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
