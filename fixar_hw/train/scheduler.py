"""The batch scheduler: runs a training step as a program of layer and element operations.

A program (:func:`sw_model.arch.engine.compile_step`) is a list of descriptors in a program
memory; each names one unit (the PE array, the vector unit, the update unit), carries that
unit's command, or is ``tick`` (advance the step counter) or ``end``. The scheduler fetches a
descriptor, sends its command, waits until every unit is idle, and fetches the next one.

Ordering. One operation runs at a time, and the next is fetched only after the units report
idle, which they do only after their last result has been written to memory. So an operation
never starts before every earlier operation's outputs (its inputs) are in memory
(``formal/train/scheduler.py`` proves it against any unit behaviour: no command is offered while a
unit is busy). The parallelism inside an operation is the array's: each array descriptor
carries the intra-batch or intra-layer mode that :func:`sw_model.arch.aap.choose_parallelism`
picked for it, and the activation formats of the quantization phase.

Timing: 2 cycles to fetch and decode a descriptor, then the command transfer, one settling
cycle, and the unit's own time; a ``tick`` takes the 2 fetch cycles.
"""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error

__all__ = ["FETCH_CYCLES", "ISSUE_CYCLES", "PERF_COUNTERS", "UNIT_CODES", "Scheduler",
           "check_program_depth", "pc_width"]

#: Encoding of a descriptor's ``unit`` field.
UNIT_CODES = {"end": 0, "tick": 1, "array": 2, "vector": 3, "update": 4}
#: Performance counters (48 bits each), cleared when a program starts.
PERF_COUNTERS = ("cycles", "ops", "array", "vector", "update", "last")
#: Cycles to fetch and decode a descriptor (all a ``tick`` or ``end`` takes).
FETCH_CYCLES = 2
#: Cycles of a unit's operation besides the unit's own: the command transfer and one settling
#: cycle (counted in the unit's counter, which runs from the transfer to the operation's end).
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
    """Fetches descriptors and runs them one at a time (see the module docs).

    Parameters
    ----------
    layout : amaranth.lib.data.StructLayout
        Descriptor layout: ``unit`` (3 bits, :data:`UNIT_CODES`) and one field per unit,
        ``array``, ``vector``, ``update``, holding that unit's command.
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
    units_busy : In(1)
        High while any unit works or has a result still to write; must rise the cycle after a
        command transfer.
    busy : Out(1)
        High from ``start`` to the ``end`` descriptor.
    perf : Out(StructLayout({name: 48 for name in PERF_COUNTERS}))
        ``cycles`` busy, ``ops`` descriptors finished, ``array``/``vector``/``update`` cycles
        from issuing an operation of that unit to its end, ``last`` those of the most recent
        operation.
    trace : Out(StructLayout({"issue": 1, "pc": pc_width, "unit": 3}))
        ``issue`` pulses when a command transfers; ``pc``/``unit`` name the descriptor.
    """

    @silence_on_error
    def __init__(self, layout: data.StructLayout, program_depth: int) -> None:
        if not isinstance(layout, data.StructLayout):
            raise TypeError(f"layout must be a StructLayout, not {layout!r}")
        missing = {"unit", "array", "vector", "update"} - {name for name, _ in layout}
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
            "units_busy": In(1),
            "busy": Out(1),
            "perf": Out(data.StructLayout(dict.fromkeys(PERF_COUNTERS, 48))),
            "trace": Out(data.StructLayout({"issue": 1, "pc": pw, "unit": 3})),
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
        streams = {UNIT_CODES["array"]: self.array, UNIT_CODES["vector"]: self.vector,
                   UNIT_CODES["update"]: self.update}
        # the array decodes its command in the cycle it accepts it: its payload comes from a
        # register loaded in DECODE (not straight from the program memory's read data, whose
        # clock-to-output delay then began the core's critical path); no cycle is added
        array_cmd = Signal.like(desc.array)
        for code, s in streams.items():
            m.d.comb += s.payload.eq(array_cmd if s is self.array else
                                     getattr(desc, {3: "vector", 4: "update"}[code]))
        m.d.comb += [self.trace.pc.eq(pc), self.trace.unit.eq(unit)]
        perf = self.perf
        running = Signal()  # a unit's operation is in progress
        op_cycles = Signal(48)  # cycles of the running operation so far
        # a read port's enable starts high: hold the fetched descriptor outside FETCH
        m.d.comb += self.prog_rd.en.eq(0)
        # (before the FSM, whose reset of op_cycles must take precedence)
        with m.If(running | self.trace.issue):
            m.d.sync += op_cycles.eq(op_cycles + 1)

        with m.FSM() as fsm:
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
                m.d.comb += self.busy.eq(1)
                m.d.sync += [unit.eq(desc.unit), array_cmd.eq(desc.array)]
                with m.Switch(desc.unit):
                    with m.Case(UNIT_CODES["tick"]):
                        m.d.comb += self.tick.eq(1)
                        m.d.sync += [pc.eq(pc + 1), perf.ops.eq(perf.ops + 1)]
                        m.next = "FETCH"
                    with m.Case(*streams):
                        m.next = "ISSUE"
                    with m.Default():  # end, and codes no unit has
                        m.next = "IDLE"
            with m.State("ISSUE"):
                m.d.comb += self.busy.eq(1)
                for code, s in streams.items():
                    with m.If(unit == code):
                        m.d.comb += s.valid.eq(1)
                        with m.If(s.ready):
                            m.d.comb += self.trace.issue.eq(1)
                            m.d.sync += running.eq(1)
                            m.next = "SETTLE"
            with m.State("SETTLE"):
                m.d.comb += self.busy.eq(1)
                m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(~self.units_busy):
                    m.d.sync += [pc.eq(pc + 1), perf.ops.eq(perf.ops + 1), running.eq(0),
                                 perf.last.eq(op_cycles + 1), op_cycles.eq(0)]
                    m.next = "FETCH"

        # white-box view for the property harness
        self._obs = {"running": running,
                     "waiting": fsm.ongoing("SETTLE") | fsm.ongoing("WAIT")}
        with m.If(self.busy):
            m.d.sync += perf.cycles.eq(perf.cycles + 1)
        with m.If(self.busy & ~self.start.ready):
            for code, name in ((2, "array"), (3, "vector"), (4, "update")):
                with m.If((unit == code) & (running | self.trace.issue)):
                    m.d.sync += getattr(perf, name).eq(getattr(perf, name) + 1)
        return m
