"""The core in Amaranth's simulator, as a host :class:`~fixar_hw.host.driver.Transport`.

:class:`SimTransport` runs a :class:`~fixar_hw.soc.core.FixarCore` in Amaranth's simulator, in
process: a :class:`~fixar_hw.host.driver.FixarDriver` on it drives the gateware itself, one
clock cycle at a time, with the external memory modelled by
:func:`fixar_hw.sim.testing.wishbone_slave` (optional random stalls, wait states and injected bus
errors on the DMA port, and gaps between the host's own requests) and
:func:`fixar_hw.sim.testing.wishbone_monitor` checking the Wishbone protocol on both ports.
:class:`fixar_hw.sim.core_verilator.VerilatorTransport` runs the exported Verilog instead, a few
hundred times faster.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from amaranth.sim import Simulator

from fixar_hw.config import CoreConfig
from fixar_hw.host.driver import Transport
from fixar_hw.sim.testing import wishbone_monitor, wishbone_slave
from fixar_hw.soc.core import FixarCore

__all__ = ["SimTransport"]


class SimTransport(Transport):
    """A :class:`~fixar_hw.soc.core.FixarCore` in Amaranth's simulator, in process.

    Parameters
    ----------
    config : CoreConfig
    memory : dict, optional
        The external memory (word address to word); a new one by default. Attribute
        :attr:`memory`.
    stall, wait, error : callable, optional
        The DMA port's slave behaviour (:func:`fixar_hw.sim.testing.wishbone_slave`).
    host_gap : callable, optional
        Returns the idle cycles before each control-port request.

    Attributes
    ----------
    core : FixarCore
    cycles : int
        Clock cycles simulated so far.
    """

    def __init__(self, config: CoreConfig, *, memory: dict | None = None,
                 stall: Callable[[], bool] | None = None,
                 wait: Callable[[], int] | None = None,
                 error: Callable[[int, bool], bool] | None = None,
                 host_gap: Callable[[], int] | None = None) -> None:
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        self.config = config
        self.core = FixarCore(config)
        self.memory: dict[int, int] = {} if memory is None else memory
        self.cycles = 0
        self._requests: deque = deque()
        self._results: dict[int, Any] = {}
        self._serial = 0
        gap = host_gap or (lambda: 0)
        kw = {k: v for k, v in (("stall", stall), ("wait", wait), ("error", error))
              if v is not None}
        core = self.core
        sim = Simulator(core)
        sim.add_clock(1e-8)
        sim.add_testbench(wishbone_slave(core.dma, self.memory, **kw), background=True)
        sim.add_process(wishbone_monitor(core.dma, name="dma"))
        if config.csr_bus == "wishbone":
            sim.add_process(wishbone_monitor(core.csr, name="csr"))
        axi = config.csr_bus == "axi-lite"

        async def host(ctx) -> None:
            bus = core.csr
            while True:
                if not self._requests:
                    await ctx.tick()
                    continue
                key, kind, offset, value = self._requests.popleft()
                for _ in range(int(gap())):
                    await ctx.tick()
                if kind == "irq":
                    self._results[key] = (True, int(ctx.get(core.irq)))
                elif axi:
                    self._results[key] = await _axi_access(ctx, bus, kind, offset, value)
                else:
                    self._results[key] = await _wishbone_access(ctx, bus, kind, offset, value)

        async def count(ctx) -> None:
            async for _ in ctx.tick():
                self.cycles += 1

        sim.add_testbench(host, background=True)
        sim.add_process(count)
        self._sim = sim

    def _call(self, kind: str, offset: int, value: int = 0) -> int:
        key = self._serial
        self._serial += 1
        self._requests.append((key, kind, offset, value))
        while key not in self._results:
            self._sim.advance()
        ok, data = self._results.pop(key)
        if not ok:
            raise OSError(f"control-port {kind} of word 0x{offset:x} answered with a bus error")
        return data

    def csr_read(self, offset: int) -> int:
        return self._call("read", offset)

    def csr_write(self, offset: int, value: int) -> None:
        self._call("write", offset, value)

    def irq(self) -> bool:
        """The core's interrupt output now."""
        return bool(self._call("irq", 0))

    def mem_write(self, addr: int, words: Sequence[int]) -> None:
        for i, w in enumerate(words):
            self.memory[addr + i] = int(w) & 0xFFFFFFFF

    def mem_read(self, addr: int, count: int) -> list[int]:
        return [self.memory.get(addr + i, 0) for i in range(count)]

    def idle(self, cycles: int) -> None:
        target = self.cycles + cycles
        while self.cycles < target:
            self._sim.advance()


async def _wishbone_access(ctx, bus, kind: str, offset: int, value: int) -> tuple[bool, int]:
    ctx.set(bus.cyc, 1)
    ctx.set(bus.stb, 1)
    ctx.set(bus.adr, offset)
    ctx.set(bus.we, kind == "write")
    ctx.set(bus.dat_w, value if kind == "write" else 0)
    ctx.set(bus.sel, (1 << len(bus.sel)) - 1)
    await ctx.tick().until(~bus.stall)
    ctx.set(bus.stb, 0)
    while True:
        _, _, ack, err, data = await ctx.tick().sample(bus.ack, bus.err, bus.dat_r)
        if ack or err:
            break
    ctx.set(bus.cyc, 0)
    return bool(ack), int(data)


async def _axi_access(ctx, bus, kind: str, offset: int, value: int) -> tuple[bool, int]:
    addr = offset * 4
    if kind == "write":
        ctx.set(bus.awaddr, addr)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wdata, value)
        ctx.set(bus.wstrb, 0xF)
        ctx.set(bus.wvalid, 1)
        ctx.set(bus.bready, 1)
        aw = w = False
        while not (aw and w):
            _, _, awr, wr = await ctx.tick().sample(bus.awready, bus.wready)
            aw = aw or bool(awr)
            w = w or bool(wr)
            if aw:
                ctx.set(bus.awvalid, 0)
            if w:
                ctx.set(bus.wvalid, 0)
        while True:
            _, _, bvalid, bresp = await ctx.tick().sample(bus.bvalid, bus.bresp)
            if bvalid:
                break
        ctx.set(bus.bready, 0)
        return bresp == 0, 0
    ctx.set(bus.araddr, addr)
    ctx.set(bus.arvalid, 1)
    ctx.set(bus.rready, 1)
    await ctx.tick().until(bus.arready)
    ctx.set(bus.arvalid, 0)
    while True:
        _, _, rvalid, rresp, rdata = await ctx.tick().sample(bus.rvalid, bus.rresp, bus.rdata)
        if rvalid:
            break
    ctx.set(bus.rready, 0)
    return rresp == 0, int(rdata)
