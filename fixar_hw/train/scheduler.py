"""The batch scheduler: runs a training step as a program of layer and element operations.

A program (:func:`sw_model.arch.engine.compile_step`, put in issue order by
:meth:`fixar_hw.train.description.EngineDescription.schedule`) is a list of descriptors in a
program memory; each names one unit (the PE array, the vector unit, the update unit) and carries
that unit's command and a *wait mask*, or is ``tick`` (advance the step counter) or ``end``.
The scheduler fetches the descriptors in order and issues each one's command as soon as its own
unit and every unit named in its mask have no operation in progress; it does not wait for the
other units. So the units run concurrently, and a descriptor issues only after the operations
it depends on have ended.

Ordering. A unit's operation is *in progress* (:attr:`Scheduler.pending`) from its command
transfer until the cycle after the unit's busy signal falls, which it does only after its last
result is in memory. Descriptors issue in program order and a unit takes one operation at a
time, so when a descriptor issues, every earlier operation of a unit in its mask has ended:
the last one issued to that unit has (the mask says to wait for it), and that one issued only
after the ones before it had ended. The masks come from the descriptors' memory footprints
(:func:`sw_model.arch.engine.footprint`): a descriptor waits for a unit whose last earlier
operation writes what it reads or reads or writes what it writes, or with which it shares
memory ports. ``tick`` and ``end`` wait for every unit. ``formal/train/scheduler.py`` proves
against any unit behaviour that no command is offered while its own unit or a unit of its mask
has an operation in progress.

Timing: a descriptor is fetched and decoded in 2 cycles (after the previous one issued), and
its command is offered from the next cycle; a unit busy ``T`` cycles after the transfer has its
operation in progress for ``T + 2`` cycles. ``tick`` takes the 2 cycles of fetch and decode
once every unit is idle; ``end`` the same, after which :attr:`Scheduler.busy` falls.
"""

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error

__all__ = ["FETCH_CYCLES", "ISSUE_CYCLES", "PERF_COUNTERS", "UNITS", "UNIT_CODES", "Scheduler",
           "check_program_depth", "pc_width"]

#: Encoding of a descriptor's ``unit`` field.
UNIT_CODES = {"end": 0, "tick": 1, "array": 2, "vector": 3, "update": 4}
#: The units, in the bit order of a descriptor's ``wait`` mask and of :attr:`Scheduler.pending`.
UNITS = ("array", "vector", "update")
#: Performance counters (48 bits each), cleared when a program starts.
PERF_COUNTERS = ("cycles", "ops", "array", "vector", "update")
#: Cycles to fetch and decode a descriptor (all a ``tick`` or ``end`` takes when every unit is
#: idle).
FETCH_CYCLES = 2
#: Cycles of a unit's operation in progress besides the unit's own busy ones: the command
#: transfer, and the cycle after busy falls.
ISSUE_CYCLES = 2


def _bits(n: int) -> int:
    return max(n.bit_length(), 1)


def check_program_depth(program_depth: object) -> int:
    """Return ``program_depth`` if it is an integer of at least 2 (words of a program
    memory), else raise ``ValueError``."""
    if isinstance(program_depth, bool) or not isinstance(program_depth, int) \
            or program_depth < 2:
        raise ValueError(f"program_depth must be an integer of at least 2, not "
                         f"{program_depth!r}")
    return program_depth


def pc_width(program_depth: int) -> int:
    """Width of a program address into ``program_depth`` words (see
    :func:`check_program_depth`)."""
    return _bits(check_program_depth(program_depth) - 1)


class Scheduler(wiring.Component):
    """Fetches descriptors in order and issues each as soon as the units it waits for are idle
    (see the module docs).

    Parameters
    ----------
    layout : amaranth.lib.data.StructLayout
        Descriptor layout: ``unit`` (3 bits, :data:`UNIT_CODES`), ``wait`` (3 bits, one per
        unit of :data:`UNITS`) and one field per unit, ``array``, ``vector``, ``update``,
        holding that unit's command.
    program_depth : int
        Words of the program memory.

    Members
    -------
    start : In(stream.Signature(unsigned(pc_width)))
        Start the program at this address; accepted only while idle.
    prog_rd : In(memory.ReadPort.Signature(addr_width=pc_width, shape=layout))
    array, vector, update : Out(stream.Signature(...))
        The units' commands (``array``'s payload from a register loaded when the descriptor
        is decoded, the others straight from the program memory's held read data).
    tick : Out(1)
        One-cycle pulse of a ``tick`` descriptor.
    units_busy : In(3)
        One bit per unit of :data:`UNITS`, high while it works or has a result still to write;
        a unit's bit must rise the cycle after its command transfer.
    pending : Out(3)
        One bit per unit of :data:`UNITS`: an operation in progress, from the cycle after its
        command transfer to the cycle after the unit's busy bit falls.
    busy : Out(1)
        High from ``start`` to the ``end`` descriptor (once every unit is idle).
    perf : Out(StructLayout({name: 48 for name in PERF_COUNTERS}))
        ``cycles`` busy, ``ops`` descriptors issued (``tick`` included, ``end`` not),
        ``array``/``vector``/``update`` cycles with an operation of that unit in progress or
        being transferred.
    trace : Out(StructLayout({"issue": 1, "pc": pc_width, "unit": 3, "wait": 3}))
        ``issue`` pulses when a command transfers; ``pc``/``unit``/``wait`` name the
        descriptor (``unit`` and ``wait`` from the cycle after it is fetched).
    """

    @silence_on_error
    def __init__(self, layout: data.StructLayout, program_depth: int) -> None:
        if not isinstance(layout, data.StructLayout):
            raise TypeError(f"layout must be a StructLayout, not {layout!r}")
        missing = {"unit", "wait", "array", "vector", "update"} - {name for name, _ in layout}
        if missing:
            raise ValueError(f"layout lacks the fields {sorted(missing)}")
        pw = pc_width(program_depth)
        self._layout = layout
        self._depth = program_depth
        super().__init__({
            "start": In(stream.Signature(unsigned(pw))),
            "prog_rd": In(memory.ReadPort.Signature(addr_width=pw, shape=layout)),
            "array": Out(stream.Signature(layout["array"].shape)),
            "vector": Out(stream.Signature(layout["vector"].shape)),
            "update": Out(stream.Signature(layout["update"].shape)),
            "tick": Out(1),
            "units_busy": In(len(UNITS)),
            "pending": Out(len(UNITS)),
            "busy": Out(1),
            "perf": Out(data.StructLayout(dict.fromkeys(PERF_COUNTERS, 48))),
            "trace": Out(data.StructLayout({"issue": 1, "pc": pw, "unit": 3,
                                            "wait": len(UNITS)})),
        })

    @property
    def layout(self) -> data.StructLayout:
        """The descriptor layout."""
        return self._layout

    def elaborate(self, platform) -> Module:
        m = Module()
        pc = Signal.like(self.start.payload)
        desc = self.prog_rd.data
        unit = Signal(3)
        wait = Signal(len(UNITS))
        streams = [getattr(self, name) for name in UNITS]
        codes = [UNIT_CODES[name] for name in UNITS]
        # the array decodes its command in the cycle it accepts it: its payload comes from a
        # register loaded in DECODE (not straight from the program memory's read data, whose
        # clock-to-output delay then began the core's critical path); no cycle is added
        array_cmd = Signal.like(desc.array)
        m.d.comb += [self.array.payload.eq(array_cmd), self.vector.payload.eq(desc.vector),
                     self.update.payload.eq(desc.update)]
        m.d.comb += [self.trace.pc.eq(pc), self.trace.unit.eq(unit), self.trace.wait.eq(wait)]
        perf = self.perf
        pending = self.pending
        took = Signal(len(UNITS))
        m.d.comb += took.eq(Cat(s.valid & s.ready for s in streams))
        m.d.comb += self.trace.issue.eq(took.any())
        # an operation is in progress from its transfer while its unit is busy (which it is
        # from the cycle after the transfer)
        m.d.sync += pending.eq(took | (pending & self.units_busy))
        # a read port's enable starts high: hold the fetched descriptor outside FETCH
        m.d.comb += self.prog_rd.en.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.start.ready.eq(1)
                with m.If(self.start.valid):
                    m.d.sync += [pc.eq(self.start.payload)]
                    m.d.sync += [getattr(perf, name).eq(0) for name in PERF_COUNTERS]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += [self.busy.eq(1), self.prog_rd.addr.eq(pc), self.prog_rd.en.eq(1)]
                m.next = "DECODE"
            with m.State("DECODE"):
                # the read data holds while the state waits here
                m.d.comb += self.busy.eq(1)
                m.d.sync += [unit.eq(desc.unit), wait.eq(desc.wait), array_cmd.eq(desc.array)]
                with m.Switch(desc.unit):
                    with m.Case(UNIT_CODES["tick"]), m.If(~pending.any()):
                        m.d.comb += self.tick.eq(1)
                        m.d.sync += [pc.eq(pc + 1), perf.ops.eq(perf.ops + 1)]
                        m.next = "FETCH"
                    with m.Case(*codes):
                        m.next = "ISSUE"
                    with m.Default(), m.If(~pending.any()):  # end, and codes no unit has
                        m.next = "IDLE"
            with m.State("ISSUE"):
                m.d.comb += self.busy.eq(1)
                # pending bits only fall while a descriptor waits here, so a valid holds
                free = ~(pending & wait).any()
                for code, s, bit in zip(codes, streams, pending, strict=True):
                    m.d.comb += s.valid.eq((unit == code) & ~bit & free)
                with m.If(took.any()):
                    m.d.sync += [pc.eq(pc + 1), perf.ops.eq(perf.ops + 1)]
                    m.next = "FETCH"

        with m.If(self.busy):
            m.d.sync += perf.cycles.eq(perf.cycles + 1)
        for name, bit, now in zip(UNITS, pending, took, strict=True):
            with m.If(bit | now):
                m.d.sync += getattr(perf, name).eq(getattr(perf, name) + 1)
        return m
