"""``FixarCore``: the whole accelerator behind a control slave and a DMA master.

:class:`FixarCore` puts together, for one :class:`~fixar_hw.config.CoreConfig`:

* :class:`fixar_hw.soc.csr.ControlRegisters`, the control port (Wishbone B4 pipelined, or AXI4-Lite
  through :class:`fixar_hw.soc.bridges.AXILiteToWishbone`): descriptor queue, start, status,
  interrupt, counters, configuration ID (register map: :func:`fixar_hw.soc.csr.register_map`);
* :class:`fixar_hw.soc.dma.DMA`, a Wishbone master that moves memory words between external memory
  and the on-chip memories (``W``, ``G``, ``M``, ``V``, ``A`` both ways; the program memory
  ``P`` and the tanh table ``T`` inwards);
* :class:`fixar_hw.train.engine.TrainingEngine`: the scheduler, the PE array, the vector and update
  units and the memories;
* an executor that takes descriptors from the queue and runs them one at a time: a DMA
  transfer, a program run (until the engine is idle again), a step-counter or seed load.

The DMA touches the engine's memories only between program runs (one descriptor at a time), so
it shares their first ports with the units instead of adding ports.

Ports (Verilog names after ``fixar-hw export``)
    ``clk``, ``rst``; the control slave ``csr__*`` (Wishbone: ``adr`` ``dat_w`` ``dat_r`` ``sel``
    ``cyc`` ``stb`` ``we`` ``ack`` ``err`` ``stall``; AXI4-Lite: ``awaddr`` ... ``rready``); the
    DMA master ``dma__*`` (Wishbone, 32-bit data, byte ``sel``); ``irq``.

Timing
    A descriptor costs a few cycles of dispatch on top of its work: a DMA transfer as
    :class:`~fixar_hw.soc.dma.DMA` documents, a program run :meth:`EngineDescription.cycles
    <fixar_hw.train.description.EngineDescription.cycles>` cycles.
"""

from amaranth.hdl import Const, Module, Mux, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error
from fixar_hw.config import CoreConfig
from fixar_hw.soc.bus import AXILiteSignature, WishboneSignature
from fixar_hw.soc.csr import (
    CAUSES,
    COUNTERS,
    MEMORIES,
    OPS,
    ControlRegisters,
    RegisterMap,
    register_map,
)
from fixar_hw.soc.dma import DMA
from fixar_hw.train.engine import HOST_MEMORIES, TrainingEngine
from fixar_hw.train.scheduler import PERF_COUNTERS

__all__ = ["FixarCore"]

_ENGINE_COUNTERS = (*PERF_COUNTERS, "macs")


class FixarCore(wiring.Component):
    """The accelerator top (see the module docs).

    Parameters
    ----------
    config : CoreConfig

    Members
    -------
    csr : In(WishboneSignature(addr_width=regmap.addr_width, data_width=32, granularity=8))
        or In(AXILiteSignature(addr_width=regmap.addr_width + 2)) when ``config.csr_bus`` is
        ``"axi-lite"``.
    dma : Out(WishboneSignature(addr_width=config.dma_addr_width, data_width=32,
        granularity=8))
    irq : Out(1)

    Attributes
    ----------
    regmap : RegisterMap
    engine : TrainingEngine
    """

    @silence_on_error
    def __init__(self, config: CoreConfig) -> None:
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        self._config = config
        self.engine = TrainingEngine(config.engine, program_depth=config.program_depth)
        self.regmap: RegisterMap = register_map(config)
        self.dma_unit = DMA(addr_width=config.dma_addr_width, data_width=32,
                            memories=[(g["name"], g["bits"], g["depth"], g["access"])
                                      for g in self.regmap.memories],
                            max_outstanding=config.max_outstanding)
        self.control = ControlRegisters(self.regmap, self.engine.vector.range_layout)
        aw = self.regmap.addr_width
        if config.csr_bus == "wishbone":
            csr_sig = WishboneSignature(addr_width=aw, data_width=32, granularity=8)
        else:
            csr_sig = AXILiteSignature(addr_width=aw + 2, data_width=32)
        super().__init__({
            "csr": In(csr_sig),
            "dma": Out(WishboneSignature(addr_width=config.dma_addr_width, data_width=32,
                                         granularity=8)),
            "irq": Out(1),
        })

    @property
    def config(self) -> CoreConfig:
        """The build."""
        return self._config

    def port_table(self) -> list[tuple[str, str, int, str]]:
        """The exported module's ports: ``(verilog name, "input"/"output", width, role)``."""
        roles = {
            "adr": "word address", "dat_w": "write data", "dat_r": "read data",
            "sel": "byte selects", "cyc": "bus cycle", "stb": "request strobe",
            "we": "write enable", "ack": "acknowledge", "err": "error", "stall": "stall",
        }
        out = [("clk", "input", 1, "clock (rising edge)"),
               ("rst", "input", 1, "synchronous reset, active high")]
        for path, member, _ in self.signature.flatten(self):
            name = "__".join(str(p) for p in path)
            direction = "input" if member.flow == In else "output"
            leaf = str(path[-1])
            if path[0] == "csr":
                role = "control slave: " + roles.get(leaf, f"AXI4-Lite {leaf}")
            elif path[0] == "dma":
                role = "DMA master: " + roles[leaf]
            else:
                role = "interrupt (level, high while an enabled interrupt is pending)"
            out.append((name, direction, Shape.cast(member.shape).width, role))
        return out

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        eng, dma, csr = self.engine, self.dma_unit, self.control
        m.submodules.engine = eng
        m.submodules.dma = dma
        m.submodules.control = csr

        # control port
        if cfg.csr_bus == "wishbone":
            wiring.connect(m, wiring.flipped(self.csr), csr.bus)
        else:
            from fixar_hw.soc.bridges import AXILiteToWishbone

            bridge = AXILiteToWishbone(addr_width=self.regmap.addr_width + 2, data_width=32)
            m.submodules.axi_bridge = bridge
            wiring.connect(m, wiring.flipped(self.csr), bridge.axi)
            wiring.connect(m, bridge.bus, csr.bus)
        wiring.connect(m, dma.bus, wiring.flipped(self.dma))
        m.d.comb += self.irq.eq(csr.irq)

        # DMA <-> memories: the selected memory's host port (zero-extended reads)
        geo = {g["name"]: g for g in self.regmap.memories}
        sel = dma.mem
        rd_data = Const(0, len(dma.rd.data))
        for name in HOST_MEMORIES:
            code = MEMORIES.index(name)
            rd = getattr(eng, f"host_rd_{name.lower()}")
            wr = getattr(eng, f"host_wr_{name.lower()}")
            bits = geo[name]["bits"]
            m.d.comb += [rd.addr.eq(dma.rd.addr), rd.en.eq(dma.rd.en & (sel == code)),
                         wr.addr.eq(dma.wr.addr), wr.data.eq(dma.wr.data[:bits]),
                         wr.en.eq(dma.wr.en & (sel == code))]
            rd_data = Mux(sel == code, rd.data.as_value(), rd_data)
        m.d.comb += dma.rd.data.eq(rd_data)
        for name, port in (("P", eng.prog_wr), ("T", eng.tbl_wr)):
            code = MEMORIES.index(name)
            m.d.comb += [port.addr.eq(dma.wr.addr),
                         port.data.eq(dma.wr.data[:geo[name]["bits"]]),
                         port.en.eq(dma.wr.en & (sel == code))]

        # executor: one descriptor at a time
        d = csr.desc.payload
        beats = Signal(8)
        with m.Switch(d.mem):
            for g in self.regmap.memories:
                with m.Case(g["code"]):
                    m.d.comb += beats.eq(g["beats"])
        op = Signal(4)
        arg = Signal(32)
        fault_cause = Signal(4)  # of a descriptor the executor rejects itself
        fault = csr.fault.payload
        m.d.comb += [fault.cause.eq(fault_cause), fault.addr.eq(0), fault.words.eq(0)]
        pc_limit = cfg.program_depth
        with m.FSM(name="executor"):
            with m.State("IDLE"):
                m.d.comb += [csr.idle.eq(1), csr.desc.ready.eq(1)]
                with m.If(csr.desc.valid):
                    m.d.sync += [op.eq(d.op), arg.eq(d.arg),
                                 dma.cmd.payload.dir.eq(d.op == OPS["dma_out"]),
                                 dma.cmd.payload.mem.eq(d.mem),
                                 dma.cmd.payload.local.eq(d.arg),
                                 dma.cmd.payload.count.eq(d.count),
                                 dma.cmd.payload.ext.eq(d.ext),
                                 dma.cmd.payload.stride.eq(Mux(d.stride == 0, beats, d.stride))]
                    with m.If((d.op == OPS["dma_in"]) | (d.op == OPS["dma_out"])):
                        # a word address or count beyond the DMA's fields is out of range
                        too_big = ((d.arg >> len(dma.cmd.payload.local)) != 0) | \
                                  ((d.count >> len(dma.cmd.payload.count)) != 0)
                        with m.If(too_big):
                            m.d.sync += fault_cause.eq(CAUSES["bad_dma"])
                            m.next = "FAULT"
                        with m.Else():
                            m.next = "DMA_CMD"
                    with m.Elif(d.op == OPS["run"]):
                        with m.If(d.arg >= pc_limit):
                            m.d.sync += fault_cause.eq(CAUSES["bad_op"])
                            m.next = "FAULT"
                        with m.Else():
                            m.next = "RUN_CMD"
                    with m.Else():
                        m.next = "LOAD"
            with m.State("DMA_CMD"):
                m.d.comb += dma.cmd.valid.eq(1)
                with m.If(dma.cmd.ready):
                    m.next = "DMA_WAIT"
            with m.State("DMA_WAIT"):
                m.d.comb += dma.done.ready.eq(1)
                with m.If(dma.done.valid):
                    with m.If(dma.done.payload.status != 0):
                        m.d.comb += [csr.fault.valid.eq(1),
                                     fault.cause.eq(dma.done.payload.status),
                                     fault.addr.eq(dma.done.payload.addr),
                                     fault.words.eq(dma.done.payload.words)]
                    m.next = "IDLE"
            with m.State("RUN_CMD"):
                m.d.comb += [eng.start.valid.eq(1), eng.start.payload.eq(arg)]
                with m.If(eng.start.ready):
                    m.next = "RUN_WAIT"
            with m.State("RUN_WAIT"), m.If(~eng.busy):
                m.next = "IDLE"
            with m.State("LOAD"):
                is_step = op == OPS["set_step"]
                m.d.comb += [eng.t_load.payload.eq(arg), eng.seed.payload.eq(arg),
                             eng.t_load.valid.eq(is_step), eng.seed.valid.eq(~is_step)]
                with m.If(Mux(is_step, eng.t_load.ready, eng.seed.ready)):
                    m.next = "IDLE"
            with m.State("FAULT"):
                m.d.comb += csr.fault.valid.eq(1)
                m.next = "IDLE"

        # counters
        m.d.comb += [csr.step.eq(eng.t), csr.ranges.eq(eng.ranges)]
        for name in _ENGINE_COUNTERS:
            m.d.comb += getattr(csr.counters, name).eq(getattr(eng.perf, name))
        own = {"dma_beats": dma.bus.cyc & (dma.bus.ack | dma.bus.err),
               "dma_cycles": dma.busy, "busy_cycles": csr.running}
        for name in COUNTERS:
            if name in own:
                counter = getattr(csr.counters, name)
                reg = Signal(48, name=f"count_{name}")
                m.d.comb += counter.eq(reg)
                with m.If(csr.restart):
                    m.d.sync += reg.eq(0)
                with m.Elif(own[name]):
                    m.d.sync += reg.eq(reg + 1)
        return m
