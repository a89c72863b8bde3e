# amaranth: UnusedElaboratable=no
"""Property harnesses for :class:`fixar_hw.train.scheduler.Scheduler`.

The units are abstract: a unit becomes busy the cycle after its command transfers and stays
busy for any number of cycles (``AnySeq``), the program memory returns any descriptor, the
start stream and the command streams' ``ready`` are free. Proved for every such behaviour:

``scheduler.contract.*`` (prove by k-induction, unbounded)
    * no command is offered while an earlier operation is still running, so an operation never
      starts before the outputs of the ones before it are written (the units report busy
      until their last result is in memory);
    * at most one command stream is valid at a time, and a valid command holds with its
      payload until taken;
    * ``start`` is taken only while idle; the trace's ``issue`` pulses exactly on a command
      transfer of the unit it names.
``scheduler.cover.*`` (cover)
    Two operations run back to back after a stall.
``scheduler.mutant.no_wait`` (prove, must FAIL)
    A scheduler that does not wait for the units is caught.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Cover, Elaboratable, Module, Signal
from amaranth.lib import data

from fixar_hw.formal.runner import ProofJob
from fixar_hw.formal.streams import any_environment, holds_while_stalled
from fixar_hw.train.scheduler import UNIT_CODES, Scheduler

__all__ = ["JOBS", "SchedulerSpec"]

_LAYOUT = data.StructLayout({"unit": 3, "array": 3, "vector": 3, "update": 3})


class SchedulerSpec(Elaboratable):
    """Free units and program around a :class:`Scheduler` (see the module docs)."""

    def __init__(self, depth: int = 4, wait: bool = True) -> None:
        self.depth = depth
        self.wait = wait

    def elaborate(self, platform) -> Module:
        m = Module()
        dut = Scheduler(_LAYOUT, self.depth)
        # elaborated here so that its white-box view (dut._obs) exists
        m.submodules.dut = dut.elaborate(platform)
        streams = {UNIT_CODES["array"]: dut.array, UNIT_CODES["vector"]: dut.vector,
                   UNIT_CODES["update"]: dut.update}
        any_environment(m, sources=[dut.start], sinks=list(streams.values()))
        # program memory: any descriptor, held while the read port is disabled
        word = Signal(_LAYOUT)
        with m.If(dut.prog_rd.en):
            m.d.sync += word.eq(AnySeq(len(word.as_value())))
        m.d.comb += dut.prog_rd.data.eq(word)
        # abstract units: busy from the cycle after a transfer for any number of cycles
        running = Signal()
        finish = Signal()
        m.d.comb += finish.eq(AnySeq(1))
        took = Signal()
        m.d.comb += took.eq(sum(s.valid & s.ready for s in streams.values()) != 0)
        with m.If(took):
            m.d.sync += running.eq(1)
        with m.Elif(finish):
            m.d.sync += running.eq(0)
        m.d.comb += dut.units_busy.eq(running if self.wait else 0)
        valids = [s.valid for s in streams.values()]
        m.d.comb += [
            Assert(~(sum(valids) != 0) | ~running, "no command while a unit runs"),
            Assert(sum(valids) <= 1, "one command at a time"),
            Assert(~dut.start.ready | ~dut.busy, "start only while idle"),
            Assert(dut.trace.issue == took, "issue is a transfer"),
            # strengthening invariants for the induction: the scheduler knows a unit runs,
            # and waits for it
            Assert(~running | dut._obs["running"], "scheduler sees the running unit"),
            Assert(dut._obs["running"] == dut._obs["waiting"], "running means waiting"),
        ]
        for code, s in streams.items():
            m.d.comb += [
                Assert(holds_while_stalled(m, s), f"unit {code} command holds"),
                Assert(~(s.valid & s.ready) | (dut.trace.unit == code), "trace names the unit"),
            ]
        # cover: two operations back to back, the first one stalled
        issued = Signal(2)
        stalled = Signal()
        with m.If(took & (issued != 3)):
            m.d.sync += issued.eq(issued + 1)
        with m.If(sum(s.valid & ~s.ready for s in streams.values()) != 0):
            m.d.sync += stalled.eq(1)
        m.d.comb += Cover((issued == 2) & stalled)
        return m


JOBS = [
    ProofJob("scheduler.contract.d4", "no command while a unit runs; one at a time; stable",
             lambda: SchedulerSpec(4), "prove", 6),
    ProofJob("scheduler.cover.d4", "two operations run back to back after a stall",
             lambda: SchedulerSpec(4), "cover", 14),
    ProofJob("scheduler.mutant.no_wait", "a scheduler that does not wait for the units is "
             "caught", lambda: SchedulerSpec(4, wait=False), "prove", 12, expect="FAIL"),
]
