"""What the host needs to know about a training engine, without building one.

:class:`EngineDescription` describes the :class:`~fixar_hw.train.engine.TrainingEngine` of one
:class:`~sw_model.arch.engine.EngineConfig` in plain Python: the program memory's descriptor
layout and the encoding of a program (:meth:`~EngineDescription.encode`), the word layouts and
depths of the memories, and the performance counters a program leaves
(:meth:`~EngineDescription.cycles`). It holds no ``wiring.Component``: the host (a driver
encoding programs, a register map reading word widths, a sweep predicting step times) builds
no hardware.

The pieces come from the units' own modules, which the components use too:
:class:`~fixar_hw.train.aap.AAPCommandSet` (the PE array's commands and cycle counts),
:class:`~fixar_hw.train.vector.VectorCommandSet` (the vector unit's),
:class:`~fixar_hw.train.update.UpdateCommandSet` (the update sequencer's), and the scheduler's
codes and timing (:data:`~fixar_hw.train.scheduler.UNIT_CODES`,
:data:`~fixar_hw.train.scheduler.FETCH_CYCLES`, :data:`~fixar_hw.train.scheduler.ISSUE_CYCLES`).
"""

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from fixar_hw.train.aap import AAPCommandSet
from fixar_hw.train.scheduler import (
    FETCH_CYCLES,
    ISSUE_CYCLES,
    PERF_COUNTERS,
    UNIT_CODES,
    UNITS,
    check_program_depth,
    pc_width,
)
from fixar_hw.train.update import UpdateCommandSet
from fixar_hw.train.vector import VectorCommandSet
from sw_model.arch.engine import ArrayOp, EngineConfig, TickOp, UpdateOp, VectorOp, footprint

__all__ = ["MEMORIES", "EngineDescription", "memory_depths", "memory_layouts", "memory_ports"]

#: The engine's data memories (:class:`sw_model.arch.engine.MemoryPlan`).
MEMORIES = ("W", "G", "M", "V", "A")


def _check_config(config: object) -> EngineConfig:
    if not isinstance(config, EngineConfig):
        raise TypeError(f"config must be an EngineConfig, not {config!r}")
    return config


def memory_layouts(config: EngineConfig) -> dict[str, data.ArrayLayout]:
    """The word layout of each memory of :data:`MEMORIES`: ``size**2`` lanes of the weight,
    gradient and moment formats (``V``: unsigned 63 bits), ``size`` lanes of
    ``vector.word_width`` (``A``).

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~sw_model.arch.engine.EngineConfig`.
    """
    d, S = _check_config(config).ddpg, config.size
    return {
        "W": data.ArrayLayout(signed(d.weight_fmt.width), S * S),
        "G": data.ArrayLayout(signed(d.grad_fmt.width), S * S),
        "M": data.ArrayLayout(signed(d.grad_fmt.width), S * S),
        "V": data.ArrayLayout(unsigned(63), S * S),
        "A": data.ArrayLayout(signed(config.vector.word_width), S),
    }


def memory_ports(config: EngineConfig) -> dict[str, tuple[int, int]]:
    """``name -> (read ports, write ports)`` of each memory of :data:`MEMORIES`
    (:class:`fixar_hw.train.buffers.Buffers` builds these): the array reads tiles and biases
    of ``W`` and two operands of ``A`` per core, and writes ``A`` and ``G`` per core; the
    update sequencer has two read ports of ``W`` of its own (online and target words), so that
    it runs while the array does, unless ``config.update_ports`` is ``"shared"``. A half-mode
    build's array reads a second tile of ``W`` and two second operands of ``A`` per core.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~sw_model.arch.engine.EngineConfig`.
    """
    n = _check_config(config).cores
    own = 2 if config.update_ports == "own" else 0
    half = int(config.aap.half_mode)   # the array's second tile and two second operands
    return {"W": (2 * n + own + half * n, 1), "G": (1, n), "M": (1, 1), "V": (1, 1),
            "A": (2 * n + 2 * half * n, n)}


def memory_depths(config: EngineConfig) -> dict[str, int]:
    """The words of each memory of :data:`MEMORIES` that the config's
    :class:`~sw_model.arch.engine.MemoryPlan` uses.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~sw_model.arch.engine.EngineConfig`.
    ValueError
        If the networks do not fit the configured capacities (the plan's error).
    """
    plan = _check_config(config).plan
    return {"W": plan.w_words, "G": plan.online_words, "M": plan.online_words,
            "V": plan.online_words, "A": plan.a_words}


class EngineDescription:
    """The host's view of a :class:`~fixar_hw.train.engine.TrainingEngine` (see the module
    docs): layouts, program encoding and the cycle model, in plain Python.

    Parameters
    ----------
    config : EngineConfig
    program_depth : int
        Descriptors the program memory holds (at least 2).

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~sw_model.arch.engine.EngineConfig`.
    ValueError
        For a ``program_depth`` below 2, or networks the memory plan cannot hold.

    Attributes
    ----------
    array_commands : AAPCommandSet
        The PE array's commands and cycle counts.
    vector_commands : VectorCommandSet
        The vector unit's.
    update_commands : UpdateCommandSet
        The update sequencer's.
    """

    def __init__(self, config: EngineConfig, program_depth: int = 256) -> None:
        self._config = c = _check_config(config)
        self._program_depth = check_program_depth(program_depth)
        self.array_commands = AAPCommandSet(c.aap)
        self.vector_commands = VectorCommandSet(c.vector)
        self.update_commands = UpdateCommandSet(c.ddpg.weight_fmt, c.size ** 2,
                                                c.update_units, c.addr_width,
                                                kind=c.update_kind, bits=c.update_bits)
        self._layouts = MappingProxyType(memory_layouts(c))
        self._depths = MappingProxyType(memory_depths(c))
        self._descriptor_layout = data.StructLayout({
            "unit": 3,
            "wait": len(UNITS),
            "array": data.StructLayout({"cmd": self.array_commands.layout,
                                        "out_base": c.addr_width}),
            "vector": self.vector_commands.layout,
            "update": self.update_commands.layout,
        })

    @property
    def config(self) -> EngineConfig:
        """The build."""
        return self._config

    @property
    def program_depth(self) -> int:
        """Descriptors the program memory holds."""
        return self._program_depth

    @property
    def pc_width(self) -> int:
        """Width of a program address."""
        return pc_width(self._program_depth)

    @property
    def descriptor_layout(self) -> data.StructLayout:
        """A program-memory word: ``unit`` (:data:`~fixar_hw.train.scheduler.UNIT_CODES`) and
        one field per unit holding its command (``array`` also the output base address)."""
        return self._descriptor_layout

    @property
    def layouts(self) -> Mapping[str, data.ArrayLayout]:
        """Word layout of each memory of :data:`MEMORIES` (:func:`memory_layouts`)."""
        return self._layouts

    @property
    def depths(self) -> Mapping[str, int]:
        """Words of each memory of :data:`MEMORIES` the plan uses (:func:`memory_depths`)."""
        return self._depths

    # --- programs ------------------------------------------------------------------------------

    def descriptor(self, op: object, wait: Iterable[str] = ()) -> dict:
        """The program-memory word (a dict for :attr:`descriptor_layout`) of one descriptor of
        :mod:`sw_model.arch.engine`, waiting for the units named in ``wait`` (of
        :data:`~fixar_hw.train.scheduler.UNITS`).

        Raises
        ------
        TypeError
            For an object that is no descriptor, or a ``wait`` that is a single string.
        ValueError
            For a command the units reject (see the command sets' ``command`` methods), or a
            unit in ``wait`` that is not one of :data:`~fixar_hw.train.scheduler.UNITS`.
        """
        if isinstance(wait, str):
            raise TypeError(f"wait must be a collection of unit names, not {wait!r}")
        mask = 0
        for name in wait:
            if name not in UNITS:
                raise ValueError(f"wait must name units of {UNITS!r}, not {name!r}")
            mask |= 1 << UNITS.index(name)
        if isinstance(op, TickOp):
            return {"unit": UNIT_CODES["tick"], "wait": mask}
        if isinstance(op, ArrayOp):
            cmd = self.array_commands.command(
                op.op, m=op.m, n=op.n, batch=op.batch, kind=op.kind,
                parallelism=op.parallelism, w_base=op.w_base, v_base=op.v_base,
                u_base=op.u_base, b_base=op.b_base, x_fmt=op.x_fmt, out_fmt=op.out_fmt,
                half=op.half)
            return {"unit": UNIT_CODES["array"], "wait": mask,
                    "array": {"cmd": cmd, "out_base": op.out_base}}
        if isinstance(op, VectorOp):
            return {"unit": UNIT_CODES["vector"], "wait": mask,
                    "vector": self.vector_commands.command(op.cmd)}
        if isinstance(op, UpdateOp):
            return {"unit": UNIT_CODES["update"], "wait": mask,
                    "update": self.update_commands.command(op.op, net=op.net, lo=op.lo,
                                                           count=op.count)}
        raise TypeError(f"not a descriptor: {op!r}")

    # --- concurrency ---------------------------------------------------------------------------

    @staticmethod
    def unit(op: object) -> str:
        """The unit of :data:`~fixar_hw.train.scheduler.UNITS` that runs ``op`` (``"tick"``
        for a :class:`~sw_model.arch.engine.TickOp`).

        Raises
        ------
        TypeError
            For an object that is no descriptor.
        """
        for cls, name in ((ArrayOp, "array"), (VectorOp, "vector"), (UpdateOp, "update"),
                          (TickOp, "tick")):
            if isinstance(op, cls):
                return name
        raise TypeError(f"not a descriptor: {op!r}")

    def busy_cycles(self, op: object) -> int:
        """Cycles ``op``'s unit is busy after its command transfer (0 for ``tick``).

        Raises
        ------
        TypeError, ValueError
            As :meth:`descriptor`.
        """
        self.descriptor(op)  # validates
        if isinstance(op, ArrayOp):
            return self.array_commands.cycles(op.op, op.m, op.n, op.batch, op.parallelism,
                                              op.half)
        if isinstance(op, VectorOp):
            return self.vector_commands.cycles(op.cmd)
        if isinstance(op, UpdateOp):
            return self.update_commands.cycles(op.count, op.op)
        return 0

    def _clash(self, a: object, b: object) -> bool:
        """Whether ``a`` and ``b`` must not run at once: they share a unit, or memory ports
        (the array and the vector unit share the activation memory's; the array and the update
        unit the parameter memory's with ``update_ports="shared"``), or one writes what the
        other reads or writes."""
        ua, ub = self.unit(a), self.unit(b)
        if ua == ub or "tick" in (ua, ub) or {ua, ub} == {"array", "vector"}:
            return True
        if {ua, ub} == {"array", "update"} and self._config.update_ports == "shared":
            return True
        c = self._config
        return footprint(c, a).conflicts(footprint(c, b))

    def waits(self, program: Iterable) -> list[frozenset[str]]:
        """Each descriptor's wait mask, for ``program`` run in the given order: the units whose
        last earlier operation clashes with it (shares its unit or memory ports with it, or
        writes what it reads or reads or writes what it writes,
        :func:`sw_model.arch.engine.footprint`). ``tick`` waits for every unit.

        Raises
        ------
        TypeError
            For an object that is no descriptor.
        """
        last: dict[str, object] = {}
        out = []
        for op in program:
            out.append(self._mask(last, op))
            self._issued(last, op)
        return out

    def _mask(self, last: Mapping[str, object], op: object) -> frozenset[str]:
        """The wait mask of ``op`` given ``last``, each unit's last operation since the last
        ``tick`` (every unit for a ``tick``)."""
        unit = self.unit(op)
        if unit == "tick":
            return frozenset(UNITS)
        return frozenset(u for u, prev in last.items() if u != unit and self._clash(prev, op))

    def _issued(self, last: dict[str, object], op: object) -> None:
        """Update ``last`` (see :meth:`_mask`) for ``op`` issued next."""
        unit = self.unit(op)
        if unit == "tick":
            last.clear()
        else:
            last[unit] = op

    def schedule(self, program: Iterable) -> list:
        """``program`` in the order the engine issues it: the same operations, each pair that
        clashes (see :meth:`waits`) in the same order, so the result is the same as running
        ``program`` one operation at a time (:func:`sw_model.arch.engine.execute`).

        A list scheduler on the cycle model (:meth:`cycles`): the operations of the update
        unit form one queue and those of the array and vector unit (which share ports)
        another; a queue's head may go next once every operation of the other queue that comes
        before it in ``program`` and clashes with it has gone, and of the two heads that may
        go, the one that could issue first goes (on a tie, the one first in ``program``).
        ``tick`` separates: everything before it goes before it.

        Raises
        ------
        TypeError, ValueError
            As :meth:`descriptor`.
        """
        ops = list(program)
        out: list = []
        clock = _Clock()
        last: dict[str, object] = {}
        segment: list[int] = []

        def emit(op: object) -> None:
            clock.run(self, op, self._mask(last, op))
            self._issued(last, op)
            out.append(op)

        def flush() -> None:
            queues = {q: [i for i in segment if (self.unit(ops[i]) == "update") == (q == 1)]
                      for q in (0, 1)}
            while queues[0] or queues[1]:
                best = None
                for q in (0, 1):
                    if not queues[q]:
                        continue
                    i = queues[q][0]
                    if any(j < i and self._clash(ops[j], ops[i]) for j in queues[1 - q]):
                        continue
                    key = (clock.issue_time(self, ops[i], self._mask(last, ops[i])), i)
                    if best is None or key < best[0]:
                        best = (key, q)
                emit(ops[queues[best[1]].pop(0)])
            segment.clear()

        for index, op in enumerate(ops):
            if self.unit(op) == "tick":
                flush()
                emit(op)
            else:
                self.descriptor(op)  # validates
                segment.append(index)
        flush()
        return out

    def words(self, program: Iterable) -> list[dict]:
        """Program-memory words (dicts for :attr:`descriptor_layout`) of :meth:`schedule`
        ``(program)``, each with its wait mask (:meth:`waits`), followed by ``end``.

        Raises
        ------
        TypeError, ValueError
            As :meth:`descriptor`.
        """
        ops = self.schedule(program)
        words = [self.descriptor(op, wait) for op, wait in zip(ops, self.waits(ops), strict=True)]
        words.append({"unit": UNIT_CODES["end"], "wait": (1 << len(UNITS)) - 1})
        return words

    def encode(self, program: Iterable) -> list[int]:
        """:meth:`words` as integers.

        Raises
        ------
        TypeError, ValueError
            As :meth:`descriptor`; ``ValueError`` also for a program longer than the program
            memory.
        """
        words = self.words(program)
        if len(words) > self._program_depth:
            raise ValueError(f"the program needs {len(words)} descriptors, the program memory "
                             f"holds {self._program_depth}")
        return [self._descriptor_layout.const(w).as_value().value for w in words]

    def timeline(self, program: Iterable) -> list[tuple[object, str, int, int]]:
        """When each operation of :meth:`schedule` ``(program)`` runs: ``(op, unit, issue,
        end)``, ``issue`` the cycle of its command transfer (of its pulse for ``tick``) and
        ``end`` the first cycle after its operation is in progress (``issue + 1`` for
        ``tick``), counted from the program's first cycle of ``busy``.

        Raises
        ------
        TypeError, ValueError
            As :meth:`descriptor`.
        """
        return self._run(program)[0]

    def _run(self, program: Iterable) -> tuple[list[tuple[object, str, int, int]], "_Clock"]:
        """:meth:`timeline` and the clock after it."""
        ops = self.schedule(program)
        clock = _Clock()
        out = []
        for op, wait in zip(ops, self.waits(ops), strict=True):
            unit = self.unit(op)
            issue = clock.run(self, op, wait)
            out.append((op, unit, issue, issue + 1 if unit == "tick" else clock.free[unit]))
        return out, clock

    def cycles(self, program: Iterable) -> dict[str, int]:
        """The performance counters :meth:`encode` ``(program)`` leaves (no host activity
        while it runs): :data:`~fixar_hw.train.scheduler.PERF_COUNTERS` and ``macs``.

        Exact: every unit's time is independent of the data. A descriptor is fetched and
        decoded in 2 cycles after the previous one issued; it issues the next cycle, or once
        its unit and the units of its wait mask have no operation in progress. An operation
        whose unit is busy ``T`` cycles is in progress ``T + 2`` cycles (its unit's counter);
        ``tick`` and the final ``end`` take their 2 cycles once every unit is idle.
        ``macs`` counts ``size**2`` per core and array pass: ``size**2`` for every (weight
        tile, vector) pair of an array operation.

        Raises
        ------
        TypeError, ValueError
            As :meth:`descriptor`.
        """
        c = self._config
        line, clock = self._run(program)
        out = dict.fromkeys((*PERF_COUNTERS, "macs"), 0)
        for op, unit, issue, end in line:
            out["ops"] += 1
            if unit == "tick":
                continue
            out[unit] += end - issue  # the busy cycles and ISSUE_CYCLES
            if isinstance(op, ArrayOp):
                # every (tile, vector) pair is one core-pass, whichever core takes it
                ti, tj = -(-op.m // c.size), -(-op.n // c.size)
                out["macs"] += op.batch * ti * tj * c.size ** 2
        out["cycles"] = clock.end()
        return out

    def __repr__(self) -> str:
        return f"EngineDescription({self._config!r}, program_depth={self._program_depth!r})"


class _Clock:
    """The scheduler's timing (:mod:`fixar_hw.train.scheduler`), cycle 0 being the first
    ``FETCH``: when each unit is next free, when the next descriptor is fetched."""

    def __init__(self) -> None:
        self.fetch = 0
        self.free = dict.fromkeys(UNITS, 0)

    def issue_time(self, desc: EngineDescription, op: object, wait: frozenset[str]) -> int:
        decode = self.fetch + FETCH_CYCLES - 1
        unit = desc.unit(op)
        if unit == "tick":
            return max(decode, *self.free.values())
        return max(decode + 1, self.free[unit], *(self.free[u] for u in wait))

    def run(self, desc: EngineDescription, op: object, wait: frozenset[str]) -> int:
        """Issue ``op``; returns the cycle it issues in."""
        t = self.issue_time(desc, op, wait)
        unit = desc.unit(op)
        if unit != "tick":
            self.free[unit] = t + desc.busy_cycles(op) + ISSUE_CYCLES
        self.fetch = t + 1
        return t

    def end(self) -> int:
        """Cycles from ``start`` to ``busy`` falling after the final ``end``."""
        return max(self.fetch + FETCH_CYCLES - 1, *self.free.values()) + 1
