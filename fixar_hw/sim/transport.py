"""The core in Amaranth's simulator, as a host :class:`~fixar_hw.host.driver.Transport`.

:class:`SimTransport` runs a :class:`~fixar_hw.soc.core.FixarCore` in Amaranth's simulator, in
process: a :class:`~fixar_hw.host.driver.FixarDriver` on it drives the gateware itself, one
clock cycle at a time, with the external memory modelled by
:func:`fixar_hw.sim.testing.wishbone_slave` (optional random stalls, wait states and injected bus
errors on the DMA port, and gaps between the host's own requests) and
:func:`fixar_hw.sim.testing.wishbone_monitor` checking the Wishbone protocol on both ports.
:class:`fixar_hw.sim.core_verilator.VerilatorTransport` runs the exported Verilog instead, a few
hundred times faster.

With ``vcd=PATH`` the transport writes every signal of the core to a VCD file for its whole
life, until :meth:`SimTransport.close`; the clock's period is 10 ns, so the edge that ends
cycle ``N`` (as :attr:`SimTransport.cycles` and :meth:`SimTransport.write_cycle` count them)
is at ``10 * N - 5`` ns.
"""

from __future__ import annotations

import contextlib
import os
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
    vcd : path, optional
        Write a VCD file of the whole core here, from the first cycle until :meth:`close`.

    Attributes
    ----------
    core : FixarCore
    cycles : int
        Clock cycles simulated so far.
    vcd : str or None
        The VCD file being written.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~fixar_hw.config.CoreConfig` or ``vcd`` not a path.
    OSError
        If the VCD file cannot be created.
    """

    def __init__(self, config: CoreConfig, *, memory: dict | None = None,
                 stall: Callable[[], bool] | None = None,
                 wait: Callable[[], int] | None = None,
                 error: Callable[[int, bool], bool] | None = None,
                 host_gap: Callable[[], int] | None = None,
                 vcd: str | os.PathLike[str] | None = None) -> None:
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        if vcd is not None and not isinstance(vcd, str | os.PathLike):
            raise TypeError(f"vcd must be a path, not {vcd!r}")
        self.vcd = None if vcd is None else os.fspath(vcd)
        self._closed = False
        self._waveform: contextlib.ExitStack | None = None
        waveform = contextlib.ExitStack()
        vcd_file = None
        if self.vcd is not None:  # opened first: a bad path fails before the elaboration
            vcd_file = waveform.enter_context(open(self.vcd, "w"))  # noqa: SIM115 (the stack closes it)
        try:
            self._start(config, memory, stall, wait, error, host_gap)
            if vcd_file is not None:
                waveform.enter_context(self._sim.write_vcd(vcd_file))
        except BaseException:
            waveform.close()
            raise
        self._waveform = waveform

    def _start(self, config: CoreConfig, memory: dict | None,
               stall: Callable[[], bool] | None, wait: Callable[[], int] | None,
               error: Callable[[int, bool], bool] | None,
               host_gap: Callable[[], int] | None) -> None:
        """Elaborate the core and set up the simulation (the body of ``__init__``)."""
        self.config = config
        self.core = FixarCore(config)
        self.memory: dict[int, int] = {} if memory is None else memory
        self.cycles = 0
        self._written: dict[int, int] = {}
        self._requests: deque = deque()
        self._results: dict[int, Any] = {}
        self._serial = 0
        gap = host_gap or (lambda: 0)
        kw = {k: v for k, v in (("stall", stall), ("wait", wait), ("error", error))
              if v is not None}
        core = self.core
        sim = Simulator(core)
        sim.add_clock(1e-8)
        sim.add_testbench(wishbone_slave(core.dma, self.memory, write_cycles=self._written,
                                         **kw), background=True)
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

    def _live(self) -> None:
        if self._closed:
            raise RuntimeError("the SimTransport is closed")

    def _call(self, kind: str, offset: int, value: int = 0) -> int:
        self._live()
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
            self._written.pop(addr + i, None)

    def mem_read(self, addr: int, count: int) -> list[int]:
        return [self.memory.get(addr + i, 0) for i in range(count)]

    def write_cycle(self, addr: int) -> int | None:
        """The cycle (counted like :attr:`cycles`) at which the DMA last wrote word ``addr``;
        None if it never did or :meth:`mem_write` wrote the word since."""
        return self._written.get(addr)

    def idle(self, cycles: int) -> None:
        self._live()
        target = self.cycles + cycles
        while self.cycles < target:
            self._sim.advance()

    def close(self) -> None:
        """Finish the VCD file (if one is written); the transport cannot be used after."""
        self._closed = True
        waveform, self._waveform = self._waveform, None
        if waveform is not None:
            waveform.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


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
