# amaranth: UnusedElaboratable=no
"""Property harnesses for :class:`fixar_hw.soc.csr.ControlRegisters`.

Every input is free (``AnySeq``): the bus master, the executor's ``idle``, ``ready`` and fault
reports, the counters, the step and the range registers. For the register map of a small
configuration (a queue of 3):

``csr.contract`` (bmc)
    * bus: ``stall`` never rises; every request is answered exactly once, on the next cycle,
      by ``ack`` or ``err``, never both, and no answer comes without a request; a request to
      an unmapped address, a write to a read-only register or a read of a write-only one is
      answered with ``err``, every other with ``ack``;
    * a fault report stops the run and sets the error state on the next cycle; the queue
      offers descriptors only while running without a fault; while the error state stands,
      pushes do not enter the queue (it only drains); it never holds more than its depth;
    * ``irq`` is high exactly when an enabled interrupt is pending.
``csr.cover`` (cover)
    A descriptor is pushed, started and taken by the executor.
``csr.mutant.ack_all`` (bmc, must FAIL)
    A register file that acknowledges every address is caught.
"""

from amaranth.asserts import AnySeq, Initial
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, ResetSignal, Signal, signed
from amaranth.lib import data

from fixar_hw.formal.runner import ProofJob

__all__ = ["JOBS", "ControlSpec"]


def _regmap():
    from fixar_hw.config import CoreConfig
    from fixar_hw.soc.csr import register_map
    from sw_model.arch.ddpg_config import DDPGConfig
    from sw_model.arch.engine import EngineConfig

    cfg = DDPGConfig(hidden=(2,), precision="fixed", batch_size=1, buffer_size=4)
    return register_map(CoreConfig(EngineConfig(cfg, 1, 1, size=1, cores=1), queue_depth=3,
                                   dma_addr_width=8))


def _control_class(mutant: bool):
    from fixar_hw.soc.csr import ControlRegisters

    if not mutant:
        return ControlRegisters

    class AckAll(ControlRegisters):
        """Broken on purpose: every request is acknowledged."""

        def elaborate(self, platform):
            m = super().elaborate(platform)
            ack = Signal()
            m.d.sync += ack.eq(self.bus.cyc & self.bus.stb)
            m.d.comb += [self.bus.ack.eq(ack), self.bus.err.eq(0)]
            return m

    return AckAll


class ControlSpec(Elaboratable):
    """:class:`ControlRegisters` with free inputs (see the module docs)."""

    def __init__(self, mutant: bool = False) -> None:
        self.mutant = mutant

    def elaborate(self, platform) -> Module:
        m = Module()
        rm = _regmap()
        ranges = data.StructLayout({"lo": signed(4), "hi": signed(4), "valid": 1})
        dut = _control_class(self.mutant)(rm, ranges)
        m.submodules.dut = dut
        m.d.comb += Assume(ResetSignal() == Initial())
        bus = dut.bus
        for sig in (bus.adr, bus.dat_w, bus.sel, bus.cyc, bus.stb, bus.we, dut.idle,
                    dut.fault.valid, dut.fault.payload, dut.counters, dut.step, dut.ranges,
                    dut.desc.ready):
            value = sig.as_value() if hasattr(sig, "as_value") else sig
            m.d.comb += value.eq(AnySeq(len(value)))
        st = dut.state

        req = bus.cyc & bus.stb
        legal_read = Signal()
        legal_write = Signal()
        m.d.comb += [
            legal_read.eq(sum((bus.adr == r.offset) for r in rm.registers
                              if r.access != "wo") != 0),
            legal_write.eq(sum((bus.adr == r.offset) for r in rm.registers
                               if r.access in ("rw", "wo", "rw1c")) != 0),
        ]
        legal = Signal()
        m.d.comb += legal.eq(bus.we & legal_write | ~bus.we & legal_read)
        push = req & bus.we & (bus.adr == rm.offset("PUSH"))

        started = Signal()  # one cycle after reset
        m.d.sync += started.eq(1)
        past = {name: Signal(name=f"past_{name}") for name in
                ("req", "legal", "fault", "push_in_error")}
        past_level = Signal.like(st["level"])
        m.d.sync += [past["req"].eq(req), past["legal"].eq(legal),
                     past["fault"].eq(dut.fault.valid),
                     past["push_in_error"].eq(push & st["error"]),
                     past_level.eq(st["level"])]
        m.d.comb += [
            Assert(bus.stall == 0, "never stalls"),
            Assert(~(bus.ack & bus.err), "ack and err never together"),
            Assert(~started | ((bus.ack | bus.err) == past["req"]), "answered next cycle"),
            Assert(~(started & past["req"] & ~past["legal"]) | bus.err, "illegal: err"),
            Assert(~(started & past["req"] & past["legal"]) | bus.ack, "legal: ack"),
            Assert(~(started & past["fault"]) | (st["error"] & ~dut.running),
                   "a fault stops the run"),
            Assert(~dut.desc.valid | (dut.running & ~st["error"]),
                   "descriptors only while running without a fault"),
            Assert(~(started & past["push_in_error"]) | (st["level"] <= past_level),
                   "no push while the error stands"),
            Assert(st["level"] <= 3, "the queue within its depth"),
            Assert(dut.irq == (st["pending"] & st["enable"]).any(), "irq"),
        ]
        m.d.comb += Cover(dut.desc.valid & dut.desc.ready)
        return m


JOBS = [
    ProofJob("csr.contract", "bus answers, run state, queue and interrupt rules",
             lambda: ControlSpec(), "bmc", 10),
    ProofJob("csr.cover", "a descriptor is pushed, started and taken", lambda: ControlSpec(),
             "cover", 10),
    ProofJob("csr.mutant.ack_all", "a register file that acknowledges everything is caught",
             lambda: ControlSpec(mutant=True), "bmc", 6, expect="FAIL"),
]
