"""Control registers of :class:`fixar_hw.soc.core.FixarCore`: the register map and its slave.

The register map (:func:`register_map`) is computed from a :class:`~fixar_hw.config.CoreConfig`
(the QAT range registers and memory sizes depend on it) and written out as JSON, a C header and
Markdown (``fixar-hw export --regmap``); :class:`ControlRegisters` is its hardware, a Wishbone
B4 pipelined slave. All registers are 32 bits wide at consecutive word addresses (byte address
``4 * offset`` on AXI4-Lite).

How a host drives the core
    Write the five descriptor words ``DESC0`` .. ``DESC4`` and then ``PUSH``: the descriptor
    enters the command queue (``STATUS.level`` entries). Writing ``CTRL.start`` runs the queue:
    the core executes the descriptors one at a time, in order (DMA transfers, program runs, step
    counter and seed loads) until the queue is empty, then sets ``STATUS.done`` and the ``done``
    interrupt. Descriptors pushed while it runs are executed too. A fault (a bus error in a DMA
    transfer, a DMA descriptor out of range, an unknown operation, a push into a full queue)
    stops it: ``STATUS.error`` and ``STATUS.cause`` are set, ``ERR_ADDR``/``ERR_WORDS`` tell
    where, the ``error`` interrupt is raised, and the queue is emptied: nothing queued behind
    the fault runs (a program never runs on a half-loaded buffer). Pushes are dropped while
    ``STATUS.error`` is set; ``CTRL.clear`` clears ``done``, ``error`` and ``cause``.

Descriptors (``DESC0`` .. ``DESC4``)
    ``DESC0``: ``op`` (bits 3:0, :data:`OPS`), ``mem`` (bits 11:8, :data:`MEMORIES` order);
    ``DESC1``: ``arg``: the on-chip word address (DMA), the program address (``run``) or the
    value (``set_step``, ``seed``); ``DESC2``: ``count`` (DMA words); ``DESC3``: ``ext``, the
    external bus word address; ``DESC4``: ``stride``, bus words between consecutive on-chip
    words (0: the memory's beats per word, i.e. packed).

Counters
    Each 48-bit counter is a ``<name>_LO``/``<name>_HI`` pair: reading ``_LO`` latches the
    counter's upper 16 bits, which ``_HI`` returns, so read ``_LO`` first. The engine counters
    (``cycles`` .. ``macs``, :data:`fixar_hw.train.scheduler.PERF_COUNTERS`) restart at each program
    run; ``dma_beats``, ``dma_cycles`` and ``busy_cycles`` restart at each ``CTRL.start``.

Bus behaviour
    Every access is answered on the next cycle (``stall`` is never raised); a read returns
    the register's value in the cycle of its answer, which every earlier write has reached
    and no later one. An access to an unmapped address, a write to a read-only register or a
    read of a write-only one is answered with ``err`` and changes nothing. ``sel`` is
    ignored: registers are written whole.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import check_int
from fixar_hw.config import CoreConfig
from fixar_hw.soc.bus import WishboneSignature
from fixar_hw.train.description import EngineDescription

__all__ = [
    "CAUSES",
    "COUNTERS",
    "DESCRIPTOR_LAYOUT",
    "MAGIC",
    "MEMORIES",
    "OPS",
    "STATE_MEMORIES",
    "VERSION",
    "ControlRegisters",
    "Field",
    "Register",
    "RegisterMap",
    "register_map",
    "staging_windows",
]

#: ``ID`` register value: ``"FIXR"`` in ASCII.
MAGIC = 0x46495852
#: ``VERSION`` register: major << 16 | minor.
VERSION = (2, 0)
#: Descriptor operations (``DESC0.op``); 0 is invalid so that a forgotten write is caught.
OPS = {"dma_in": 1, "dma_out": 2, "run": 3, "set_step": 4, "seed": 5}
#: On-chip memories the DMA reaches, by code (``DESC0.mem``): parameters, gradients, Adam's
#: moments, activations (read and write), the program memory and the tanh table (write only).
MEMORIES = ("W", "G", "M", "V", "A", "P", "T")
#: The memories :meth:`~fixar_hw.host.driver.FixarDriver.read_state` reads back together:
#: their staging windows are disjoint. The other memories' windows are disjoint from one
#: another and share the same external memory (see :func:`staging_windows`).
STATE_MEMORIES = ("W", "M", "V")
#: ``STATUS.cause`` codes.
CAUSES = {"none": 0, "bus_error": 1, "bad_dma": 2, "bad_op": 3, "overflow": 4}
#: 48-bit counters, engine first.
COUNTERS = ("cycles", "ops", "array", "vector", "update", "macs", "dma_beats",
            "dma_cycles", "busy_cycles")

#: A queued descriptor.
DESCRIPTOR_LAYOUT = data.StructLayout({
    "op": 4, "mem": 4, "arg": 32, "count": 32, "ext": 32, "stride": 32})


@dataclass(frozen=True)
class Field:
    """A bit field of a register."""

    name: str
    lsb: int
    width: int
    description: str

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Register:
    """A 32-bit register: ``access`` is ``"ro"``, ``"rw"``, ``"wo"`` or ``"rw1c"`` (read,
    write 1 to clear)."""

    name: str
    offset: int
    access: str
    description: str
    fields: tuple[Field, ...] = ()
    reset: int = 0

    @property
    def byte_offset(self) -> int:
        return 4 * self.offset


@dataclass(frozen=True)
class RegisterMap:
    """The registers of one configuration (:func:`register_map`)."""

    config: CoreConfig
    registers: tuple[Register, ...]
    memories: tuple[dict, ...] = field(default=())

    @property
    def addr_width(self) -> int:
        """Word-address bits of the control port."""
        return max(max(r.offset for r in self.registers).bit_length(), 1)

    def __getitem__(self, name: str) -> Register:
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"no register {name!r}")

    def offset(self, name: str) -> int:
        """Word offset of register ``name``."""
        return self[name].offset

    # --- generated documents ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything a driver needs: registers, fields, constants, memories, configuration."""
        return {
            "magic": MAGIC, "version": list(VERSION), "config_id": self.config.config_id,
            "data_width": 32, "addr_width": self.addr_width,
            "ops": dict(OPS), "causes": dict(CAUSES), "memories": list(self.memories),
            "registers": [{
                "name": r.name, "offset": r.offset, "byte_offset": r.byte_offset,
                "access": r.access, "reset": r.reset, "description": r.description,
                "fields": [{"name": f.name, "lsb": f.lsb, "width": f.width,
                            "description": f.description} for f in r.fields]}
                for r in self.registers],
            "config": self.config.to_dict(),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def to_c_header(self, prefix: str = "FIXAR") -> str:
        """A C header: register offsets, field shifts and masks, constants, memory geometry.

        Every register has two offsets: ``<PREFIX>_REG_<NAME>``, in bytes (for a CPU whose
        bus addresses bytes), and ``<PREFIX>_REG_<NAME>_WORD``, in 32-bit words (the value of
        the Wishbone ``csr__adr`` port, which addresses words).
        """
        p = prefix.upper()
        guard = f"{p}_REGS_H"
        cid = self.config.config_id
        lines = [f"/* Register map of a fixar-hw FixarCore (config id 0x{cid:08x}). "
                 "Generated; do not edit. */",
                 f"#ifndef {guard}", f"#define {guard}", "",
                 f"#define {p}_MAGIC 0x{MAGIC:08x}u",
                 f"#define {p}_VERSION_MAJOR {VERSION[0]}",
                 f"#define {p}_VERSION_MINOR {VERSION[1]}",
                 f"#define {p}_CONFIG_ID 0x{self.config.config_id:08x}u", ""]
        lines.append("/* byte offsets of the registers */")
        for r in self.registers:
            lines.append(f"#define {p}_REG_{r.name} 0x{r.byte_offset:03x}u /* {r.access}: "
                         f"{_c_comment(r.description)} */")
        lines.append("")
        lines.append("/* word offsets of the registers (csr__adr, which addresses 32-bit words) */")
        for r in self.registers:
            lines.append(f"#define {p}_REG_{r.name}_WORD 0x{r.offset:02x}u")
        lines.append("")
        lines.append("/* fields */")
        for r in self.registers:
            for f in r.fields:
                name = f"{p}_{r.name}_{f.name.upper()}"
                lines.append(f"#define {name}_SHIFT {f.lsb}")
                lines.append(f"#define {name}_MASK 0x{f.mask:08x}u")
        lines.append("")
        lines.append("/* descriptor operations (DESC0.op) */")
        for name, code in OPS.items():
            lines.append(f"#define {p}_OP_{name.upper()} {code}")
        lines.append("/* STATUS.cause */")
        for name, code in CAUSES.items():
            lines.append(f"#define {p}_CAUSE_{name.upper()} {code}")
        lines.append("/* on-chip memories (DESC0.mem): code, word bits, bus beats per word, "
                     "depth */")
        for mem in self.memories:
            n = f"{p}_MEM_{mem['name']}"
            lines += [f"#define {n} {mem['code']}", f"#define {n}_BITS {mem['bits']}",
                      f"#define {n}_BEATS {mem['beats']}", f"#define {n}_DEPTH {mem['depth']}"]
        lines += ["", f"#endif /* {guard} */", ""]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A Markdown table of the registers and fields, and the constants."""
        c = self.config
        e = c.engine
        out = [f"# FixarCore register map (config id `0x{c.config_id:08x}`)", "",
               f"Engine: {e.size}x{e.size} PEs x {e.cores} cores, {e.update_units} update "
               f"unit(s); actor {'-'.join(map(str, e.sizes('actor')))}, critic "
               f"{'-'.join(map(str, e.sizes('critic')))}; precision {e.ddpg.precision}. "
               f"Control port: {c.csr_bus}, 32-bit registers.", "",
               "| offset | byte | name | access | fields | description |",
               "|---:|---:|---|---|---|---|"]
        for r in self.registers:
            fields = "<br>".join(f"`{f.name}` [{f.lsb + f.width - 1}:{f.lsb}]"
                                 if f.width > 1 else f"`{f.name}` [{f.lsb}]" for f in r.fields)
            out.append(f"| 0x{r.offset:02x} | 0x{r.byte_offset:03x} | `{r.name}` | {r.access} "
                       f"| {fields} | {r.description} |")
        out += ["", "Descriptor operations (`DESC0.op`): "
                + ", ".join(f"`{k}` = {v}" for k, v in OPS.items()) + ".", "",
                "Fault causes (`STATUS.cause`): "
                + ", ".join(f"`{k}` = {v}" for k, v in CAUSES.items()) + ".", "",
                "| memory | code | word bits | bus beats per word | depth (words) | DMA |",
                "|---|---:|---:|---:|---:|---|"]
        for mem in self.memories:
            out.append(f"| `{mem['name']}` | {mem['code']} | {mem['bits']} | {mem['beats']} | "
                       f"{mem['depth']} | {mem['access']} |")
        return "\n".join(out) + "\n"


def _c_comment(text: str) -> str:
    return text.replace("*/", "* /")


def _memory_geometry(config: CoreConfig) -> tuple[dict, ...]:
    """Name, code, word bits, beats, depth and DMA access of every memory."""
    desc = EngineDescription(config.engine, program_depth=config.program_depth)
    e = config.engine
    geo = [(name, desc.layouts[name].size, desc.depths[name], "rw") for name in "WGMVA"]
    geo.append(("P", desc.descriptor_layout.size, config.program_depth, "w"))
    geo.append(("T", e.ddpg.act_fmt.width, 1 << e.tanh_index_bits, "w"))
    return tuple({"name": n, "code": MEMORIES.index(n), "bits": bits,
                  "beats": -(-bits // 32), "depth": depth, "access": access}
                 for n, bits, depth, access in geo)


def register_map(config: CoreConfig) -> RegisterMap:
    """The register map of ``config`` (the memories' word widths and depths from its
    :class:`~fixar_hw.train.description.EngineDescription`; no hardware is built)."""
    if not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig, not {config!r}")
    e = config.engine
    regs: list[Register] = []

    def reg(name, offset, access, description, fields=(), reset=0):
        regs.append(Register(name, offset, access, description, tuple(fields), reset))

    F = Field
    reg("ID", 0x00, "ro", "Magic number 0x46495852 (\"FIXR\").", reset=MAGIC)
    reg("VERSION", 0x01, "ro", "Register-map version.",
        [F("minor", 0, 16, "minor"), F("major", 16, 16, "major")],
        reset=VERSION[0] << 16 | VERSION[1])
    reg("CONFIG_ID", 0x02, "ro", "CRC-32 of the configuration's canonical JSON.",
        reset=config.config_id)
    ulog = e.update_units.bit_length() - 1
    reg("GEOMETRY", 0x03, "ro", "PE grid side, cores, log2(update units), queue depth.",
        [F("size", 0, 8, "PE grid side"), F("cores", 8, 8, "AAP cores"),
         F("update_units_log2", 16, 8, "log2 of the update units"),
         F("queue_depth", 24, 8, "descriptors the queue holds")],
        reset=e.size | e.cores << 8 | ulog << 16 | config.queue_depth << 24)
    reg("DIMS", 0x04, "ro", "Observation and action sizes.",
        [F("obs_dim", 0, 16, "observation size"), F("act_dim", 16, 16, "action size")],
        reset=e.obs_dim | e.act_dim << 16)
    reg("CTRL", 0x05, "wo", "Commands (write 1).",
        [F("start", 0, 1, "run the queued descriptors"),
         F("clear", 1, 1, "clear STATUS.done, error and cause")])
    reg("STATUS", 0x06, "ro", "State of the core.",
        [F("busy", 0, 1, "running the queue"), F("done", 1, 1, "the queue ran empty"),
         F("error", 2, 1, "a fault stopped the queue"), F("cause", 4, 4, "fault cause"),
         F("level", 8, 8, "descriptors in the queue")])
    reg("IRQ_PENDING", 0x07, "rw1c", "Interrupts raised (write 1 to clear).",
        [F("done", 0, 1, "the queue ran empty"), F("error", 1, 1, "a fault")])
    reg("IRQ_ENABLE", 0x08, "rw", "Interrupts that drive the irq output.",
        [F("done", 0, 1, "done"), F("error", 1, 1, "error")])
    reg("ERR_ADDR", 0x09, "ro", "Bus word address of the failing DMA request.")
    reg("ERR_WORDS", 0x0A, "ro", "On-chip words the failing DMA transfer committed.")
    reg("STEP", 0x0B, "ro", "The engine's step counter.")
    reg("DESC0", 0x10, "rw", "Descriptor word 0.",
        [F("op", 0, 4, "operation"), F("mem", 8, 4, "memory (DMA)")])
    reg("DESC1", 0x11, "rw", "Descriptor word 1: on-chip address, program address or value.")
    reg("DESC2", 0x12, "rw", "Descriptor word 2: DMA words.")
    reg("DESC3", 0x13, "rw", "Descriptor word 3: external bus word address.")
    reg("DESC4", 0x14, "rw", "Descriptor word 4: external stride in bus words (0: packed).")
    reg("PUSH", 0x15, "wo", "Write (any value) to queue DESC0..DESC4.")
    for k, name in enumerate(COUNTERS):
        reg(f"{name.upper()}_LO", 0x20 + 2 * k, "ro", f"Counter {name}, bits 31:0 "
            "(latches bits 47:32 for _HI).")
        reg(f"{name.upper()}_HI", 0x21 + 2 * k, "ro", f"Counter {name}, bits 47:32.")
    points = e.points
    base = 0x40
    reg("RANGE_VALID", base, "ro", "QAT range registers holding a range (bit i: point i).",
        [F(p.replace(".", "_"), i, 1, p) for i, p in enumerate(points)])
    for i, p in enumerate(points):
        tag = p.replace(".", "_").upper()
        reg(f"RANGE_{tag}_LO", base + 1 + 2 * i, "ro", f"Least {p} value seen (act_fmt code).")
        reg(f"RANGE_{tag}_HI", base + 2 + 2 * i, "ro", f"Greatest {p} value seen.")
    return RegisterMap(config, tuple(regs), _memory_geometry(config))


class ControlRegisters(wiring.Component):
    """The register file of :func:`register_map` behind a Wishbone slave (module docs).

    It holds the descriptor queue (``queue_depth`` entries, ``amaranth.lib.fifo``), the
    run/done/error state, the interrupt and the counter snapshots; the core's executor takes
    descriptors from :attr:`desc` while :attr:`running` and reports through :attr:`idle` and
    :attr:`fault`.

    Parameters
    ----------
    regmap : RegisterMap

    Members
    -------
    bus : In(WishboneSignature(addr_width=regmap.addr_width, data_width=32, granularity=8))
    desc : Out(stream.Signature(DESCRIPTOR_LAYOUT))
        The queue's head (popped by the executor; drained here after a fault).
    running : Out(1)
        Set by ``CTRL.start``; cleared when the queue is empty and the executor idle (done) or
        by a fault.
    idle : In(1)
        The executor has no descriptor in progress.
    fault : In(stream.Signature(StructLayout({cause, addr, words})))
        A fault report (always ready).
    counters : In(StructLayout({name: 48 for name in COUNTERS}))
    step : In(32)
    ranges : In(ArrayLayout(StructLayout({lo, hi, valid}), points))
    restart : Out(1)
        One-cycle pulse on ``CTRL.start`` (the core clears its own counters).
    irq : Out(1)

    Attributes
    ----------
    state : dict of str to Signal
        ``error``, ``done``, ``pending``, ``enable`` and ``level`` (the queue's): the
        registers behind ``STATUS`` and the interrupt, for proofs and simulations to observe.
    """

    def __init__(self, regmap: RegisterMap, range_layout: data.Layout) -> None:
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        self._map = regmap
        npoints = len(regmap.config.engine.points)
        super().__init__({
            "bus": In(WishboneSignature(addr_width=regmap.addr_width, data_width=32,
                                        granularity=8)),
            "desc": Out(stream.Signature(DESCRIPTOR_LAYOUT)),
            "running": Out(1),
            "idle": In(1),
            "fault": In(stream.Signature(data.StructLayout(
                {"cause": 4, "addr": 32, "words": 32}))),
            "counters": In(data.StructLayout({n: 48 for n in COUNTERS})),
            "step": In(32),
            "ranges": In(data.ArrayLayout(range_layout, npoints)),
            "restart": Out(1),
            "irq": Out(1),
        })
        self.state = {"error": Signal(name="error"), "done": Signal(name="done"),
                      "pending": Signal(2, name="pending"), "enable": Signal(2, name="enable"),
                      "level": Signal(range(regmap.config.queue_depth + 1), name="level")}

    def elaborate(self, platform) -> Module:
        m = Module()
        rm = self._map
        cfg = rm.config
        bus = self.bus
        off = {r.name: r.offset for r in rm.registers}
        regs = {r.name: r for r in rm.registers}

        # buffered: its storage has a registered read port, so it is block RAM on every family
        # (an unbuffered FIFO reads asynchronously: LUT RAM, or flip-flops on iCE40)
        queue = fifo.SyncFIFOBuffered(width=DESCRIPTOR_LAYOUT.size, depth=cfg.queue_depth)
        m.submodules.queue = queue

        st = self.state
        done, error, pending, enable = st["done"], st["error"], st["pending"], st["enable"]
        m.d.comb += st["level"].eq(queue.r_level)
        cause = Signal(4)
        err_addr = Signal(32)
        err_words = Signal(32)
        desc = [Signal(32, name=f"desc{i}") for i in range(5)]
        hi_latch = Signal(16)

        # --- bus decode: answer every request on the next cycle ---
        ack = Signal()
        err = Signal()
        m.d.comb += [bus.stall.eq(0), bus.ack.eq(ack), bus.err.eq(err)]
        req = bus.cyc & bus.stb
        m.d.sync += [ack.eq(0), err.eq(0)]
        writing = req & bus.we
        reading = req & ~bus.we
        hit = {name: bus.adr == o for name, o in off.items()}
        readable = [n for n, r in regs.items() if r.access != "wo"]
        writable = [n for n, r in regs.items() if r.access in ("rw", "wo", "rw1c")]
        ok = Mux(bus.we, Cat(*(hit[n] for n in writable)).any(),
                 Cat(*(hit[n] for n in readable)).any())
        with m.If(req):
            m.d.sync += [ack.eq(ok), err.eq(~ok)]
        wstrobe = {n: writing & hit[n] for n in writable}

        # --- read data ---
        level = Signal(8)
        m.d.comb += level.eq(queue.r_level)
        status = Cat(self.running, done, error, Const(0, 1), cause, level)
        values: dict[str, Any] = {
            "STATUS": status, "IRQ_PENDING": pending, "IRQ_ENABLE": enable,
            "ERR_ADDR": err_addr, "ERR_WORDS": err_words, "STEP": self.step,
            **{f"DESC{i}": desc[i] for i in range(5)},
        }
        for r in rm.registers:
            if r.access == "ro" and r.name not in values and r.reset and \
                    not r.name.startswith("RANGE"):
                values[r.name] = Const(r.reset, 32)
        for name in COUNTERS:
            values[f"{name.upper()}_LO"] = getattr(self.counters, name)[:32]
            values[f"{name.upper()}_HI"] = hi_latch
        points = cfg.engine.points
        values["RANGE_VALID"] = Cat(*(self.ranges[i].valid for i in range(len(points))))
        for i, p in enumerate(points):
            tag = p.replace(".", "_").upper()
            rg = self.ranges[i]
            values[f"RANGE_{tag}_LO"] = rg.lo.as_signed()
            values[f"RANGE_{tag}_HI"] = rg.hi.as_signed()
        # A read's register is selected by a one-hot register loaded at the request, and its
        # value (as it is in the answer's cycle) reaches dat_r through an AND-OR. Read data
        # registered from a Switch on the address was a full 2**addr_width-way multiplexer
        # per bit: 2,575 LUTs for the smallest core's register file synthesized alone.
        chosen = {name: Signal(name=f"read_{name.lower()}") for name in values}
        m.d.sync += [chosen[name].eq(reading & hit[name]) for name in values]
        terms = []
        for name, value in values.items():
            word = Signal(32, name=f"value_{name.lower()}")
            m.d.comb += word.eq(value)  # zero- or sign-extended as the register's value
            terms.append(Mux(chosen[name], word, 0))
        m.d.comb += bus.dat_r.eq(reduce(operator.or_, terms))
        for name in COUNTERS:
            with m.If(chosen[f"{name.upper()}_LO"]):
                m.d.sync += hi_latch.eq(getattr(self.counters, name)[32:48])

        # --- writes ---
        data_w = bus.dat_w
        for i in range(5):
            with m.If(wstrobe[f"DESC{i}"]):
                m.d.sync += desc[i].eq(data_w)
        with m.If(wstrobe["IRQ_ENABLE"]):
            m.d.sync += enable.eq(data_w[:2])

        # --- queue: push, pop, drain ---
        word = Signal(DESCRIPTOR_LAYOUT)
        m.d.comb += [word.op.eq(desc[0][0:4]), word.mem.eq(desc[0][8:12]), word.arg.eq(desc[1]),
                     word.count.eq(desc[2]), word.ext.eq(desc[3]), word.stride.eq(desc[4])]
        push = wstrobe["PUSH"] & ~error
        known = Cat(*(word.op == code for code in OPS.values())).any()
        bad_op = push & ~known
        overflow = push & known & ~queue.w_rdy
        m.d.comb += [queue.w_data.eq(word), queue.w_en.eq(push & known)]
        draining = error
        m.d.comb += [self.desc.payload.eq(queue.r_data),
                     self.desc.valid.eq(queue.r_rdy & self.running & ~draining),
                     queue.r_en.eq(Mux(draining, 1, self.desc.ready & self.running))]

        # --- run state, faults, interrupts ---
        m.d.comb += self.fault.ready.eq(1)
        start = wstrobe["CTRL"] & data_w[0]
        clear = wstrobe["CTRL"] & data_w[1]
        m.d.comb += self.restart.eq(start & ~error)
        raise_done = Signal()
        raise_error = Signal()
        fault_cause = Signal(4)
        m.d.comb += [
            raise_done.eq(self.running & self.idle & (queue.r_level == 0) & ~self.fault.valid),
            raise_error.eq(self.fault.valid | bad_op | overflow),
            fault_cause.eq(Mux(self.fault.valid, self.fault.payload.cause,
                               Mux(bad_op, CAUSES["bad_op"], CAUSES["overflow"]))),
        ]
        with m.If(clear):
            m.d.sync += [done.eq(0), error.eq(0), cause.eq(0)]
        with m.If(start & ~error):
            m.d.sync += [self.running.eq(1), done.eq(0)]
        with m.If(raise_done & ~start):
            m.d.sync += [self.running.eq(0), done.eq(1)]
        # the first fault is kept; one that comes with a clear wins over it
        with m.If(raise_error & (~error | clear)):
            m.d.sync += [self.running.eq(0), error.eq(1), cause.eq(fault_cause),
                         err_addr.eq(Mux(self.fault.valid, self.fault.payload.addr, 0)),
                         err_words.eq(Mux(self.fault.valid, self.fault.payload.words, 0))]
        new = Cat(raise_done & ~start, raise_error & (~error | clear))
        clear_bits = Mux(wstrobe["IRQ_PENDING"], data_w[:2], 0)
        m.d.sync += pending.eq((pending & ~clear_bits) | new)
        m.d.comb += self.irq.eq((pending & enable).any())
        return m


def staging_windows(config: CoreConfig, ext_base: int = 0) -> dict[str, tuple[int, int]]:
    """Where :class:`~fixar_hw.host.driver.FixarDriver` stages each on-chip memory's image in
    external memory: ``{name: (first bus word, bus words)}``, a window of ``depth * beats``
    32-bit words per memory.

    The windows form two groups, each packed from ``ext_base``: the state the driver reads
    back (:data:`STATE_MEMORIES`) and the rest (gradients, activations, program, tanh table).
    A window of one group overlaps windows of the other; the driver never has transfers of
    both groups queued at once (it runs the queue before it stages into the other group), so
    the external memory it needs is the larger group's, not the sum of all windows.

    Raises
    ------
    TypeError, ValueError
        If ``config`` is not a :class:`~fixar_hw.config.CoreConfig` or ``ext_base`` is not a
        non-negative integer.
    """
    if not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig, not {config!r}")
    base = check_int(ext_base, "ext_base", minimum=0)
    ends = {True: base, False: base}
    windows = {}
    for g in register_map(config).memories:
        state = g["name"] in STATE_MEMORIES
        words = g["depth"] * g["beats"]
        windows[g["name"]] = (ends[state], words)
        ends[state] += words
    return windows
