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
    check_program_depth,
    pc_width,
)
from fixar_hw.train.update import UpdateCommandSet
from fixar_hw.train.vector import VectorCommandSet
from sw_model.arch.engine import ArrayOp, EngineConfig, TickOp, UpdateOp, VectorOp

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
    of ``W`` and two operands of ``A`` per core, and writes ``A`` and ``G`` per core.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~sw_model.arch.engine.EngineConfig`.
    """
    n = _check_config(config).cores
    return {"W": (2 * n, 1), "G": (1, n), "M": (1, 1), "V": (1, 1), "A": (2 * n, n)}


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

    def descriptor(self, op: object) -> dict:
        """The program-memory word (a dict for :attr:`descriptor_layout`) of one descriptor of
        :mod:`sw_model.arch.engine`.

        Raises
        ------
        TypeError
            For an object that is no descriptor.
        ValueError
            For a command the units reject (see the command sets' ``command`` methods).
        """
        if isinstance(op, TickOp):
            return {"unit": UNIT_CODES["tick"]}
        if isinstance(op, ArrayOp):
            cmd = self.array_commands.command(
                op.op, m=op.m, n=op.n, batch=op.batch, kind=op.kind,
                parallelism=op.parallelism, w_base=op.w_base, v_base=op.v_base,
                u_base=op.u_base, b_base=op.b_base, x_fmt=op.x_fmt, out_fmt=op.out_fmt)
            return {"unit": UNIT_CODES["array"], "array": {"cmd": cmd, "out_base": op.out_base}}
        if isinstance(op, VectorOp):
            return {"unit": UNIT_CODES["vector"], "vector": self.vector_commands.command(op.cmd)}
        if isinstance(op, UpdateOp):
            return {"unit": UNIT_CODES["update"], "update": self.update_commands.command(
                op.op, net=op.net, lo=op.lo, count=op.count)}
        raise TypeError(f"not a descriptor: {op!r}")

    def encode(self, program: Iterable) -> list[int]:
        """Program-memory words (integers) of ``program`` followed by ``end``.

        Raises
        ------
        TypeError, ValueError
            As :meth:`descriptor`; ``ValueError`` also for a program longer than the program
            memory.
        """
        words = [self.descriptor(op) for op in program] + [{"unit": UNIT_CODES["end"]}]
        if len(words) > self._program_depth:
            raise ValueError(f"the program needs {len(words)} descriptors, the program memory "
                             f"holds {self._program_depth}")
        return [self._descriptor_layout.const(w).as_value().value for w in words]

    def cycles(self, program: Iterable) -> dict[str, int]:
        """The performance counters ``program`` leaves (no host activity while it runs):
        :data:`~fixar_hw.train.scheduler.PERF_COUNTERS` and ``macs``.

        Exact: every unit's time is independent of the data. An operation whose unit is busy
        ``T`` cycles takes ``T + 4`` (fetch, decode, command transfer, settle) and adds
        ``T + 2`` to its unit's counter; ``tick`` and the final ``end`` take 2. ``macs`` counts
        ``size**2`` per core and array pass: ``size**2`` for every (weight tile, vector) pair
        of an array operation.

        Raises
        ------
        TypeError, ValueError
            As :meth:`descriptor`.
        """
        c = self._config
        out = dict.fromkeys((*PERF_COUNTERS, "macs"), 0)
        for op in program:
            self.descriptor(op)  # validates
            if isinstance(op, TickOp):
                out["cycles"] += FETCH_CYCLES
                out["ops"] += 1
                continue
            if isinstance(op, ArrayOp):
                busy = self.array_commands.cycles(op.op, op.m, op.n, op.batch, op.parallelism)
                # every (tile, vector) pair is one core-pass, whichever core takes it
                ti, tj = -(-op.m // c.size), -(-op.n // c.size)
                out["macs"] += op.batch * ti * tj * c.size ** 2
                unit = "array"
            elif isinstance(op, VectorOp):
                busy, unit = self.vector_commands.cycles(op.cmd), "vector"
            else:
                busy, unit = self.update_commands.cycles(op.count, op.op), "update"
            out[unit] += busy + ISSUE_CYCLES
            out["last"] = busy + ISSUE_CYCLES
            out["cycles"] += busy + FETCH_CYCLES + ISSUE_CYCLES
            out["ops"] += 1
        out["cycles"] += FETCH_CYCLES
        return out

    def __repr__(self) -> str:
        return f"EngineDescription({self._config!r}, program_depth={self._program_depth!r})"
