# amaranth: UnusedElaboratable=no
"""Property harnesses for :class:`fixar_hw.train.scheduler.Scheduler`.

The units are abstract: each becomes busy the cycle after its command transfers and stays
busy for any number of cycles (``AnySeq``), independently of the others; the program memory
returns any descriptor (any unit, any wait mask), the start stream and the command streams'
``ready`` are free. Proved for every such behaviour:

``scheduler.contract.*`` (prove by k-induction, unbounded)
    * the concurrency contract: a command is offered only while its own unit and every unit
      its descriptor's wait mask names are idle, so an operation never starts before the
      operations it depends on have ended (the units report busy until their last result is
      written); a ``tick`` pulses only while every unit is idle;
    * a command stream is valid only for the unit its descriptor names, so at most one at a
      time, and a valid command holds with its payload until taken;
    * ``start`` is taken only while idle, and ``busy`` falls only with every unit idle; the
      trace's ``issue`` pulses exactly on a command transfer of the unit it names.
``scheduler.cover.*`` (cover)
    Two units working at once, the second command issued after a stall.
``scheduler.mutant.*`` (prove, must FAIL)
    A scheduler that does not see the units' busy signals, and one that is given descriptors
    without their wait masks, are caught.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Cat, Cover, Elaboratable, Module, Signal
from amaranth.lib import data

from fixar_hw.formal.runner import ProofJob
from fixar_hw.formal.streams import any_environment, holds_while_stalled
from fixar_hw.train.scheduler import UNIT_CODES, UNITS, Scheduler

__all__ = ["JOBS", "SchedulerSpec"]

_LAYOUT = data.StructLayout({"unit": 3, "wait": 3, "array": 3, "vector": 3, "update": 3})


class SchedulerSpec(Elaboratable):
    """Free units and program around a :class:`Scheduler` (see the module docs).

    Parameters
    ----------
    depth : int
        Program memory words.
    mutant : {None, "blind", "no_wait"}
        ``"blind"``: the scheduler sees no unit busy; ``"no_wait"``: it is given every
        descriptor with an empty wait mask (the properties still read the real one).
    """

    def __init__(self, depth: int = 4, mutant: str | None = None) -> None:
        self.depth = depth
        self.mutant = mutant

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = Scheduler(_LAYOUT, self.depth)
        streams = [getattr(dut, name) for name in UNITS]
        any_environment(m, sources=[dut.start], sinks=streams)
        # program memory: any descriptor, held while the read port is disabled
        word = Signal(_LAYOUT)
        with m.If(dut.prog_rd.en):
            m.d.sync += word.eq(AnySeq(len(word.as_value())))
        m.d.comb += dut.prog_rd.data.eq(word)
        if self.mutant == "no_wait":
            m.d.comb += [dut.prog_rd.data.unit.eq(word.unit), dut.prog_rd.data.wait.eq(0),
                         *(getattr(dut.prog_rd.data, n).eq(getattr(word, n)) for n in UNITS)]
        # abstract units: busy from the cycle after a transfer for any number of cycles
        running = Signal(len(UNITS))
        took = Signal(len(UNITS))
        for k, s in enumerate(streams):
            m.d.comb += took[k].eq(s.valid & s.ready)
            with m.If(took[k]):
                m.d.sync += running[k].eq(1)
            with m.Elif(AnySeq(1)):
                m.d.sync += running[k].eq(0)
        m.d.comb += dut.units_busy.eq(0 if self.mutant == "blind" else running)
        for k, (name, s) in enumerate(zip(UNITS, streams, strict=True)):
            own = word.unit == UNIT_CODES[name]
            m.d.comb += [
                Assert(~s.valid | own, f"{name}: offered for its own descriptors only"),
                Assert(~s.valid | ~running[k], f"{name}: offered only while idle"),
                Assert(~s.valid | ~(running & word.wait).any(),
                       f"{name}: offered only while the units it waits for are idle"),
                Assert(holds_while_stalled(m, s), f"{name}: command holds"),
                Assert(~took[k] | (dut.trace.unit == UNIT_CODES[name]),
                       f"{name}: trace names the unit"),
            ]
        if self.mutant is None:
            # strengthening invariants for the induction (left out of the mutants, so that
            # they fail the contract itself): the scheduler knows a unit runs; it holds the
            # fetched descriptor's unit and mask from the cycle after it is fetched, and
            # offers nothing in that cycle
            fetched = Signal()
            m.d.sync += fetched.eq(dut.prog_rd.en)
            m.d.comb += [
                *(Assert(~running[k] | dut.pending[k], f"{name}: the scheduler sees it run")
                  for k, name in enumerate(UNITS)),
                Assert(fetched | ((dut.trace.unit == word.unit)
                                  & (dut.trace.wait == dut.prog_rd.data.wait)),
                       "the scheduler holds the descriptor"),
                Assert(~fetched | ~Cat(s.valid for s in streams).any(),
                       "nothing offered at decode"),
            ]
        m.d.comb += [
            Assert(~dut.tick | ~running.any(), "a tick only while every unit is idle"),
            Assert(dut.busy | ~running.any(), "busy until every unit is idle"),
            Assert(~dut.start.ready | ~dut.busy, "start only while idle"),
            Assert(dut.trace.issue == took.any(), "issue is a transfer"),
        ]
        # cover: two units at once, the second command stalled first
        stalled = Signal()
        with m.If((dut.update.valid | dut.vector.valid) & ~took.any()):
            m.d.sync += stalled.eq(1)
        m.d.comb += Cover(running[0] & running[2] & stalled)
        return m


JOBS = [
    ProofJob("scheduler.contract.d4", "a command only while its unit and the units its wait "
             "mask names are idle; one unit at a time offered; stable",
             lambda: SchedulerSpec(4), "prove", 6),
    ProofJob("scheduler.cover.d4", "two units work at once, after a stall",
             lambda: SchedulerSpec(4), "cover", 14),
    ProofJob("scheduler.mutant.blind", "a scheduler that does not see the units is caught",
             lambda: SchedulerSpec(4, "blind"), "prove", 12, expect="FAIL"),
    ProofJob("scheduler.mutant.no_wait", "a scheduler given no wait masks is caught",
             lambda: SchedulerSpec(4, "no_wait"), "prove", 12, expect="FAIL"),
]
