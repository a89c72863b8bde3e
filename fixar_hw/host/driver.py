"""Host driver of :class:`fixar_hw.soc.core.FixarCore`, and the transports that reach one.

:class:`FixarDriver` speaks to a core through a :class:`Transport`: 32-bit control-register
reads and writes, and reads and writes of the external memory the core's DMA master serves
from. It loads weight images (the trainer's format, :mod:`sw_model.rl.image`), pushes batches of
transitions, runs training steps and noisy actions, and reads networks, actions, the QAT ranges
and the counters back. Everything it sends is validated first: a malformed descriptor, memory
image or weight image raises ``TypeError``/``ValueError`` before the core or its memory is
touched. A fault the core reports (a bus error in a DMA transfer, say) raises
:class:`CoreError` with the cause, the failing bus address and the words committed.

Transports
    :class:`fixar_hw.sim.transport.SimTransport`
        The core in Amaranth's simulator, in process, with the external memory modelled by
        :func:`fixar_hw.sim.testing.wishbone_slave` (optional random stalls, wait states and
        injected bus errors on the DMA port, and gaps between the host's own requests).
    :class:`fixar_hw.sim.core_verilator.VerilatorTransport`
        The exported Verilog compiled by Verilator, loaded in process (``ctypes``).
    :class:`SerialTransport`
        A board: :class:`fixar_hw.host.serial_link.SerialBus` over a serial port to the
        :class:`fixar_hw.soc.bridges.UARTWishboneBridge` of the board top, whose Wishbone bus
        reaches the core's control registers at ``csr_base`` and a memory the DMA also reads
        at ``mem_base``.

:class:`HardwareAgent` is a :class:`sw_model.rl.ddpg.DDPGAgent` whose training steps and noisy
actions run on the core: ``fixar-hw train --backend sim`` trains with it, and its episode
returns equal the NumPy fixed-point run bit for bit.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from fixar_hw._util import check_int
from fixar_hw.config import CoreConfig
from fixar_hw.errors import CoreError
from fixar_hw.soc.csr import (
    CAUSES,
    COUNTERS,
    MAGIC,
    MEMORIES,
    OPS,
    STATE_MEMORIES,
    VERSION,
    RegisterMap,
    register_map,
    staging_windows,
)
from fixar_hw.soc.dma import beats_to_words, words_to_beats
from fixar_hw.train.description import EngineDescription
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.arch.vector import VectorState
from sw_model.numerics.fixed import FixedFormat
from sw_model.rl.ddpg import DDPGAgent

if TYPE_CHECKING:
    from fixar_hw.soc.system import FixarSoC

__all__ = [
    "FixarDriver",
    "HardwareAgent",
    "SerialTransport",
    "Transport",
]

_CAUSE_NAMES = {v: k for k, v in CAUSES.items()}


class Transport(ABC):
    """How a :class:`FixarDriver` reaches a core (subclasses implement the four accesses)."""

    @abstractmethod
    def csr_read(self, offset: int) -> int:
        """Read the control register at word ``offset``."""

    @abstractmethod
    def csr_write(self, offset: int, value: int) -> None:
        """Write the control register at word ``offset``."""

    @abstractmethod
    def mem_write(self, addr: int, words: Sequence[int]) -> None:
        """Write 32-bit ``words`` to the DMA's memory from bus word address ``addr``."""

    @abstractmethod
    def mem_read(self, addr: int, count: int) -> list[int]:
        """Read ``count`` 32-bit words of the DMA's memory from bus word address ``addr``."""

    def idle(self, cycles: int) -> None:  # noqa: B027 (optional: most transports need none)
        """Let about ``cycles`` clock cycles pass while polling (default: nothing)."""

    def close(self) -> None:  # noqa: B027 (optional)
        """Release the transport."""

    def write_cycle(self, addr: int) -> int | None:
        """The clock cycle at which the core's DMA last wrote bus word ``addr`` of the memory,
        or None when the transport does not know (the default; a board cannot tell), the word
        was never written by the DMA, or the host wrote it since.

        The simulated transports count cycles like their ``cycles`` attribute, so the number
        finds the write in a waveform of the run.
        """
        return None


# --- a board over a serial port -----------------------------------------------------------------

class SerialTransport(Transport):
    """A core on a board, through the UART-to-Wishbone bridge of its top.

    Parameters
    ----------
    port : object
        A byte port (``read(n)``, ``write(bytes)``), e.g. ``serial.Serial(...)``.
    csr_base, mem_base : int
        Bus word addresses of the control registers and of the DMA's memory as the bridge
        sees them.
    mem_offset : int
        The DMA's word address of that memory's first word (what descriptors use).
    """

    def __init__(self, port: Any, *, csr_base: int, mem_base: int, mem_offset: int = 0
                 ) -> None:
        from fixar_hw.host.serial_link import SerialBus

        for name, value in (("csr_base", csr_base), ("mem_base", mem_base),
                            ("mem_offset", mem_offset)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
        self.bus = SerialBus(port)
        self.csr_base, self.mem_base, self.mem_offset = csr_base, mem_base, mem_offset

    @classmethod
    def for_soc(cls, port: Any, soc: FixarSoC) -> SerialTransport:
        """A transport to ``soc`` on ``port``, with the SoC's bases.

        Parameters
        ----------
        port : object
            A byte port: ``serial.Serial``, or
            :class:`~fixar_hw.host.serial_link.SimSerialPort` in simulation.
        soc : FixarSoC
            The SoC on the board (its ``csr_base``, ``mem_base`` and ``mem_offset``).
        """
        return cls(port, csr_base=soc.csr_base, mem_base=soc.mem_base,
                   mem_offset=soc.mem_offset)

    def csr_read(self, offset: int) -> int:
        return self.bus.read(self.csr_base + offset, 1)[0]

    def csr_write(self, offset: int, value: int) -> None:
        self.bus.write(self.csr_base + offset, [value])

    def mem_write(self, addr: int, words: Sequence[int]) -> None:
        self.bus.write(self.mem_base + addr - self.mem_offset, list(words))

    def mem_read(self, addr: int, count: int) -> list[int]:
        return self.bus.read(self.mem_base + addr - self.mem_offset, count)

    def idle(self, cycles: int) -> None:
        time.sleep(min(cycles * 1e-8, 0.01))


# --- the driver ---------------------------------------------------------------------------------

class FixarDriver:
    """Drive a :class:`~fixar_hw.soc.core.FixarCore` through a :class:`Transport`.

    Parameters
    ----------
    transport : Transport
    config : CoreConfig
        The core's build (checked against its ``CONFIG_ID`` register).
    ext_base : int
        First bus word of the external memory the driver may use for staging.
    poll : int
        Cycles :meth:`Transport.idle` lets pass between status polls.

    Raises
    ------
    ValueError
        If the core's ``ID``, ``VERSION`` or ``CONFIG_ID`` do not match ``config``.
    """

    def __init__(self, transport: Transport, config: CoreConfig, *, ext_base: int = 0,
                 poll: int = 64) -> None:
        if not isinstance(transport, Transport):
            raise TypeError(f"transport must be a Transport, not {transport!r}")
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        self.transport = transport
        self.config = config
        self.regmap: RegisterMap = register_map(config)
        self.poll = check_int(poll, "poll", minimum=1)
        self._off = {r.name: r.offset for r in self.regmap.registers}
        self._mem = {g["name"]: g for g in self.regmap.memories}
        windows = staging_windows(config, ext_base)
        self._window = {name: base for name, (base, _) in windows.items()}
        end = max(base + words for base, words in windows.values())
        if end > 1 << config.dma_addr_width:
            raise ValueError(f"the staging windows need bus words up to {end}, beyond the "
                             f"DMA's {config.dma_addr_width}-bit addresses")
        self._queued = 0  # descriptors pushed since the last start
        self._staged: bool | None = None  # the staging group of the queued transfers
        self._programs: dict[Any, tuple[int, int]] = {}
        self._next_pc = 0
        self._table: Any = None
        self._description: EngineDescription | None = None
        ident = self.read("ID")
        version = self.read("VERSION")
        cid = self.read("CONFIG_ID")
        if ident != MAGIC:
            raise ValueError(f"no FixarCore answers: ID reads 0x{ident:08x}")
        if version >> 16 != VERSION[0]:
            raise ValueError(f"the core's register map is version {version >> 16}, the driver "
                             f"speaks {VERSION[0]}")
        if cid != config.config_id:
            raise ValueError(f"the core's CONFIG_ID is 0x{cid:08x}, the configuration's is "
                             f"0x{config.config_id:08x}: another build")

    @property
    def description(self) -> EngineDescription:
        """The engine's :class:`~fixar_hw.train.description.EngineDescription`: descriptor
        encoding and the cycle model of programs (:meth:`~EngineDescription.cycles`)."""
        if self._description is None:
            self._description = EngineDescription(self.config.engine,
                                                  program_depth=self.config.program_depth)
        return self._description

    # --- registers ---------------------------------------------------------------------------

    def read(self, name: str) -> int:
        """Read register ``name``."""
        return self.transport.csr_read(self._off[name])

    def write(self, name: str, value: int) -> None:
        """Write register ``name``."""
        self.transport.csr_write(self._off[name], int(value) & 0xFFFFFFFF)

    def status(self) -> dict[str, int]:
        """``STATUS`` fields."""
        s = self.read("STATUS")
        return {f.name: (s >> f.lsb) & ((1 << f.width) - 1) for f in self.regmap["STATUS"].fields}

    def counters(self) -> dict[str, int]:
        """The 48-bit counters (:data:`fixar_hw.soc.csr.COUNTERS`)."""
        out = {}
        for name in COUNTERS:
            lo = self.read(f"{name.upper()}_LO")
            out[name] = lo | self.read(f"{name.upper()}_HI") << 32
        return out

    def ranges(self) -> dict[str, tuple[int, int]]:
        """The QAT range registers that hold a range (point name to ``(lo, hi)`` codes)."""
        valid = self.read("RANGE_VALID")
        out = {}
        for i, p in enumerate(self.config.engine.points):
            if valid >> i & 1:
                tag = p.replace(".", "_").upper()
                lo, hi = self.read(f"RANGE_{tag}_LO"), self.read(f"RANGE_{tag}_HI")
                out[p] = (lo - (1 << 32) if lo >> 31 else lo, hi - (1 << 32) if hi >> 31 else hi)
        return out

    def clear(self) -> None:
        """Clear ``STATUS.done``/``error`` and the pending interrupts."""
        self.write("CTRL", 2)
        self.write("IRQ_PENDING", 3)

    # --- descriptors -------------------------------------------------------------------------

    def check_descriptor(self, op: str, *, mem: str | None = None, arg: int = 0,
                         count: int = 0, ext: int = 0, stride: int = 0) -> dict[str, int]:
        """Validate a descriptor; returns its register fields.

        Raises
        ------
        ValueError, TypeError
            Unknown operation or memory, a direction the memory does not allow, a range
            beyond the memory or the external bus, a program address beyond the program memory.
        """
        if op not in OPS:
            raise ValueError(f"op must be one of {sorted(OPS)}, not {op!r}")
        code = 0
        if op in ("dma_in", "dma_out"):
            if mem not in self._mem:
                raise ValueError(f"mem must be one of {list(MEMORIES)}, not {mem!r}")
            g = self._mem[mem]
            code = g["code"]
            if op == "dma_out" and "r" not in g["access"]:
                raise ValueError(f"memory {mem} cannot be read by the DMA (op dma_out)")
            check_int(arg, "arg", minimum=0, maximum=g["depth"])
            check_int(count, "count", minimum=0, maximum=g["depth"] - arg)
            limit = (1 << self.config.dma_addr_width) - 1
            check_int(ext, "ext", minimum=0, maximum=limit)
            check_int(stride, "stride", minimum=0, maximum=limit)
        elif op == "run":
            check_int(arg, "arg", minimum=0, maximum=self.config.program_depth - 1)
        else:
            check_int(arg, "arg", minimum=0, maximum=0xFFFFFFFF)
        return {"DESC0": OPS[op] | code << 8, "DESC1": arg, "DESC2": count, "DESC3": ext,
                "DESC4": stride}

    def push(self, op: str, **fields: Any) -> None:
        """Validate and queue one descriptor (:meth:`check_descriptor`). When the queue is
        full, it is run first (:meth:`run_queue`)."""
        words = self.check_descriptor(op, **fields)
        if self._queued >= self.config.queue_depth:
            self.run_queue()
        for name, value in words.items():
            self.write(name, value)
        self.write("PUSH", 1)
        self._queued += 1

    def run_queue(self, timeout: int = 10**9) -> None:
        """``CTRL.start``, then wait until the queue ran empty.

        Raises
        ------
        CoreError
            If a fault stopped the queue (the error state is left for inspection; see
            :meth:`clear`).
        TimeoutError
            After ``timeout`` polls.
        """
        self.write("CTRL", 1)
        self._queued = 0
        self._staged = None
        for _ in range(timeout):
            st = self.status()
            if st["error"]:
                raise CoreError(_CAUSE_NAMES.get(st["cause"], str(st["cause"])),
                                self.read("ERR_ADDR"), self.read("ERR_WORDS"))
            if st["done"] and not st["busy"] and st["level"] == 0:
                return
            self.transport.idle(self.poll)
        raise TimeoutError(f"the core did not finish within {timeout} polls")

    # --- memories ----------------------------------------------------------------------------

    def pack_words(self, name: str, words: Any) -> list[int]:
        """Memory words of ``name`` (rows of lane values; flat words for ``P`` and ``T``) as
        unsigned integers of the memory's bits.

        Raises
        ------
        ValueError
            For a wrong number of lanes or a value outside a lane's range.
        """
        g = self._mem[name]
        rows = np.asarray(words)
        if name in ("P", "T"):
            flat = [int(w) for w in rows.reshape(-1)]
            bits = g["bits"]
            for w in flat:
                if not -(1 << bits) <= w < 1 << bits:
                    raise ValueError(f"a word of memory {name} does not fit {bits} bits: {w}")
            return [w & ((1 << bits) - 1) for w in flat]
        lanes = self._lanes(name)
        if rows.ndim != 2 or rows.shape[1] != lanes:
            raise ValueError(f"an image of memory {name} must have {lanes} lanes per word, "
                             f"not shape {rows.shape}")
        lane_bits = g["bits"] // lanes
        signed = name != "V"
        lo = -(1 << (lane_bits - 1)) if signed else 0
        hi = (1 << (lane_bits - 1)) if signed else (1 << lane_bits)
        if rows.size and (rows.min() < lo or rows.max() >= hi):
            raise ValueError(f"a lane of memory {name} is outside {lane_bits}-bit "
                             f"{'signed' if signed else 'unsigned'} range")
        mask = (1 << lane_bits) - 1
        out = []
        for row in rows.tolist():
            word = 0
            for k, v in enumerate(row):
                word |= (int(v) & mask) << (k * lane_bits)
            out.append(word)
        return out

    def _lanes(self, name: str) -> int:
        S = self.config.engine.size
        return S if name == "A" else S * S

    def unpack_words(self, name: str, words: Sequence[int]) -> np.ndarray:
        """Inverse of :meth:`pack_words` for ``W G M V A``: rows of lane values."""
        g = self._mem[name]
        lanes = self._lanes(name)
        lane_bits = g["bits"] // lanes
        mask, half = (1 << lane_bits) - 1, 1 << (lane_bits - 1)
        out = np.zeros((len(words), lanes), dtype=np.int64)
        for i, w in enumerate(words):
            for k in range(lanes):
                v = (w >> (k * lane_bits)) & mask
                out[i, k] = v - (1 << lane_bits) if name != "V" and v >= half else v
        return out

    def write_memory(self, name: str, base: int, words: Any, *, run: bool = True) -> None:
        """Write ``words`` (rows of lanes; flat words for ``P`` and ``T``) to memory ``name``
        from word ``base``, through the staging window and one DMA transfer (queued only,
        with ``run=False``)."""
        if name not in self._mem:
            raise ValueError(f"name must be one of {list(MEMORIES)}, not {name!r}")
        ints = self.pack_words(name, words)
        g = self._mem[name]
        self.check_descriptor("dma_in", mem=name, arg=base, count=len(ints))
        if not ints:
            return
        ext = self._window[name] + base * g["beats"]
        self._stage(name)
        self.transport.mem_write(ext, words_to_beats(ints, g["bits"], 32))
        self.push("dma_in", mem=name, arg=base, count=len(ints), ext=ext)
        self._staged = name in STATE_MEMORIES  # (after push, which may run the queue)
        if run:
            self.run_queue()

    def _stage(self, name: str) -> None:
        """Before a transfer of memory ``name`` is staged: run the queued transfers if they
        are staged in the other group of windows, which this one's overlaps
        (:func:`~fixar_hw.soc.csr.staging_windows`)."""
        if self._queued and self._staged not in (None, name in STATE_MEMORIES):
            self.run_queue()

    def bus_address(self, name: str, word: int, lane: int = 0) -> int:
        """The bus word address in the staging window of memory ``name`` that holds (the low
        bits of) lane ``lane`` of its word ``word``: where :meth:`read_memory` finds it once
        the DMA has written it back, and where :meth:`write_memory` stages it. The windows of
        ``W``, ``M`` and ``V`` are disjoint; the others overlap them
        (:func:`~fixar_hw.soc.csr.staging_windows`), so a word read back from ``G``, ``A``,
        ``P`` or ``T`` stays at its address until the driver next stages ``W``, ``M`` or
        ``V``, and the other way round.

        Raises
        ------
        TypeError, ValueError
            For an unknown memory, or a word or lane outside it.
        """
        if name not in self._mem:
            raise ValueError(f"name must be one of {list(MEMORIES)}, not {name!r}")
        g = self._mem[name]
        check_int(word, "word", minimum=0, maximum=g["depth"] - 1)
        lanes = 1 if name in ("P", "T") else self._lanes(name)
        check_int(lane, "lane", minimum=0, maximum=lanes - 1)
        return self._window[name] + word * g["beats"] + lane * (g["bits"] // lanes) // 32

    def state_addresses(self) -> tuple[ds.Weights, ds.Weights, ds.OptState]:
        """Where :meth:`read_state` reads each value: the same structure, with the bus word
        address (:meth:`bus_address`) of every value instead of the value.

        The step count and the ranges come from registers: the :class:`OptState`'s ``step``
        is 0 and its ranges are empty.
        """
        e = self.config.engine
        plan = e.plan

        def addresses(name: str, words: int) -> np.ndarray:
            lanes = self._lanes(name)
            return np.array([[self.bus_address(name, w, k) for k in range(lanes)]
                             for w in range(words)], dtype=np.int64).reshape(words, lanes)

        W = addresses("W", plan.w_words)
        M = addresses("M", plan.online_words)
        V = addresses("V", plan.online_words)
        A = np.zeros((plan.a_words, e.size), dtype=np.int64)
        state = en.EngineState(W, M, M, V, A, 0, VectorState.initial(e.vector))
        weights, targets = en.read_weights(e, state)
        return weights, targets, en.read_opt(e, state)

    def read_memory(self, name: str, base: int, count: int) -> np.ndarray:
        """Read ``count`` words of memory ``name`` from word ``base`` (rows of lanes)."""
        if name not in self._mem:
            raise ValueError(f"name must be one of {list(MEMORIES)}, not {name!r}")
        g = self._mem[name]
        self.check_descriptor("dma_out", mem=name, arg=base, count=count)
        ext = self._window[name] + base * g["beats"]
        self._stage(name)
        self.push("dma_out", mem=name, arg=base, count=count, ext=ext)
        self.run_queue()
        beats = self.transport.mem_read(ext, count * g["beats"])
        return self.unpack_words(name, beats_to_words(beats, g["bits"], 32))

    # --- engine-level operations -------------------------------------------------------------

    def load_state(self, state: en.EngineState, *, seed: int | None = None) -> None:
        """Write every memory image of ``state`` and its step counter; reseed the noise when
        ``seed`` is given. (The range registers are not loadable: they start empty.)"""
        if not isinstance(state, en.EngineState):
            raise TypeError(f"state must be an EngineState, not {state!r}")
        plan = self.config.engine.plan
        want = {"W": plan.w_words, "G": plan.online_words, "M": plan.online_words,
                "V": plan.online_words, "A": plan.a_words}
        for name, rows in want.items():
            image = getattr(state, name)
            if image.shape[0] != rows:
                raise ValueError(f"state.{name} has {image.shape[0]} words, the plan {rows}")
            self.pack_words(name, image)  # validates before anything is written
        for name in sorted(want, key=lambda name: name not in STATE_MEMORIES):
            self.write_memory(name, 0, getattr(state, name), run=False)
        self.push("set_step", arg=state.t)
        if seed is not None:
            self.push("seed", arg=int(seed) & 0xFFFFFFFF)
        self.run_queue()

    def load_weight_image(self, image: Any) -> ds.OptState:
        """Load a weight image (``.fximg`` path or :class:`~sw_model.rl.image.WeightImage` of the
        trainer): online and target networks from it, Adam's moments zero, step 0. Returns
        the optimizer state the image implies (formats frozen if it carries them).

        Raises
        ------
        ValueError
            If the image does not hold a fixed-point agent of this build's sizes and formats;
            nothing is written then.
        """
        from sw_model.rl.ddpg import weights_from_image
        from sw_model.rl.image import WeightImage

        if not isinstance(image, WeightImage):
            image = WeightImage.load(image)
        contents = weights_from_image(image)
        e = self.config.engine
        cfg = contents.config
        if not cfg.is_fixed:
            raise ValueError(f"the weight image holds a {cfg.precision} agent; the core trains "
                             "fixed-point ones")
        mine = e.ddpg
        for attr in ("hidden", "weight_fmt", "act_fmt", "act16_fmt"):
            if getattr(cfg, attr) != getattr(mine, attr):
                raise ValueError(f"the weight image's {attr} is {getattr(cfg, attr)!r}, the "
                                 f"core's {getattr(mine, attr)!r}")
        w = contents.weights
        if w["actor"]["l1.w"].shape[1] != e.obs_dim or \
                w["actor"][f"l{e.layers}.w"].shape[0] != e.act_dim:
            raise ValueError("the weight image's observation or action size differs from the "
                             f"core's ({e.obs_dim}, {e.act_dim})")
        opt = ds.init_opt_state(w, mine)
        if contents.formats is not None and mine.precision == "qat":
            opt = replace(opt, act16=MappingProxyType(dict(contents.formats)))
        self.load_state(en.load_state(e, w, w, opt))
        return opt

    def push_batch(self, batch: ds.Batch) -> None:
        """Write a batch of transitions (``act_fmt`` codes) to regions ``s``, ``a``, ``rd``,
        ``s2`` of the activation memory."""
        e = self.config.engine
        if not isinstance(batch, ds.Batch):
            raise TypeError(f"batch must be a Batch, not {batch!r}")
        n = np.asarray(batch.obs).shape[0]
        if not 1 <= n <= e.batch_capacity:
            raise ValueError(f"the batch has {n} transitions; the core takes 1 to "
                             f"{e.batch_capacity}")
        shapes = {"obs": (n, e.obs_dim), "action": (n, e.act_dim), "reward": (n,),
                  "next_obs": (n, e.obs_dim), "done": (n,)}
        for field, shape in shapes.items():
            got = np.asarray(getattr(batch, field)).shape
            if got != shape:
                raise ValueError(f"batch.{field} has shape {got}, not {shape}")
        plan = e.plan
        scratch = np.zeros((plan.a_words, e.size), dtype=np.int64)
        state = en.EngineState(scratch, scratch, scratch, scratch, scratch, 0, None)
        image = en.load_batch(e, state, batch).A
        for region in ("s", "a", "rd", "s2"):
            r = plan.regions[region]
            self.write_memory("A", r.base, image[r.base:r.base + n * r.stride], run=False)

    def _program(self, key: Any, program: Sequence) -> int:
        """The program address of ``program`` (loaded once per ``key``)."""
        if key in self._programs:
            return self._programs[key][0]
        words = self.description.encode(program)
        pc = self._next_pc
        if pc + len(words) > self.config.program_depth:
            self._programs.clear()
            pc = 0
        self.write_memory("P", pc, np.array(words, dtype=object), run=False)
        self._programs[key] = (pc, len(words))
        self._next_pc = pc + len(words)
        return pc

    def _load_table(self, fmt: FixedFormat) -> None:
        if self._table == fmt:
            return
        aap = self.config.engine.aap
        self.write_memory("T", 0, aap.table_image(aap.table_for(fmt)), run=False)
        self._table = fmt

    def train_step(self, formats: Mapping[str, FixedFormat], *, tracking: bool = False,
                   batch: ds.Batch | None = None) -> dict[str, int]:
        """One training step in ``formats`` on the batch in the activation memory (or
        ``batch``, pushed first); returns the engine's counters."""
        e = self.config.engine
        if batch is not None:
            self.push_batch(batch)
        key = ("step", tuple(sorted(formats.items())), bool(tracking))
        pc = self._program(key, en.compile_step(e, formats, tracking=tracking))
        self._load_table(formats[f"actor.x{e.layers}"])
        self.push("run", arg=pc)
        self.run_queue()
        return self.counters()

    def act(self, obs: np.ndarray, formats: Mapping[str, FixedFormat]) -> np.ndarray:
        """The noisy action codes (``act_fmt``) for one observation (``act_fmt`` codes)."""
        e = self.config.engine
        obs = np.asarray(obs, dtype=np.int64).reshape(-1)
        if obs.shape != (e.obs_dim,):
            raise ValueError(f"obs must have {e.obs_dim} values, not shape {obs.shape}")
        plan = e.plan
        r = plan.regions["obs1"]
        scratch = np.zeros((plan.a_words, e.size), dtype=np.int64)
        image = en.load_observation(e, en.EngineState(scratch, scratch, scratch, scratch,
                                                      scratch, 0, None), obs).A
        self.write_memory("A", r.base, image[r.base:r.base + r.stride], run=False)
        key = ("act", tuple(sorted(formats.items())))
        pc = self._program(key, en.compile_act(e, formats))
        self._load_table(formats[f"actor.x{e.layers}"])
        self.push("run", arg=pc)
        out = plan.regions["p.out"]
        words = self.read_memory("A", out.base, out.stride)
        A = np.zeros((plan.a_words, e.size), dtype=np.int64)
        A[out.base:out.base + out.stride] = words
        return en.read_action(e, en.EngineState(A, A, A, A, A, 0, None))

    def read_state(self) -> tuple[ds.Weights, ds.Weights, ds.OptState]:
        """Online and target networks and Adam's moments, step and ranges from the core."""
        e = self.config.engine
        plan = e.plan
        W = self.read_memory("W", 0, plan.w_words)
        M = self.read_memory("M", 0, plan.online_words)
        V = self.read_memory("V", 0, plan.online_words)
        A = np.zeros((plan.a_words, e.size), dtype=np.int64)
        ranges = self.ranges()
        vstate = replace(VectorState.initial(e.vector),
                         ranges=tuple(ranges.get(p) for p in e.points))
        state = en.EngineState(W, M, M, V, A, self.read("STEP"), vstate)
        weights, targets = en.read_weights(e, state)
        return weights, targets, en.read_opt(e, state)


# --- the trainer's agent on hardware ------------------------------------------------------------

class HardwareAgent(DDPGAgent):
    """A :class:`~sw_model.rl.ddpg.DDPGAgent` whose training steps and noisy actions run on a
    core (through ``driver``); replay buffer, sampling and warm-up stay on the host.

    The initial networks are the NumPy agent's (same seed); the core is loaded with them and
    seeded like the agent's noise, so actions, steps and returns equal the NumPy fixed-point
    run bit for bit. :attr:`weights`, :attr:`targets` and :attr:`opt` are brought up to date
    from the core by :meth:`sync` (``policy``, ``to_image`` and evaluation need them).
    """

    def __init__(self, config, obs_dim, act_dim, action_low, action_high, *,
                 driver: FixarDriver) -> None:
        super().__init__(config, obs_dim, act_dim, action_low, action_high)
        if not isinstance(driver, FixarDriver):
            raise TypeError(f"driver must be a FixarDriver, not {driver!r}")
        e = driver.config.engine
        if e.ddpg != config or (e.obs_dim, e.act_dim) != (self.obs_dim, self.act_dim):
            raise ValueError("the core's configuration does not match the agent's")
        self.driver = driver
        driver.load_state(en.load_state(e, self.weights, self.targets, self.opt),
                          seed=config.seed)
        self._synced = True

    def train_step(self, batch: ds.Batch | None = None) -> dict[str, Any]:
        if batch is None:
            batch = self.sample()
        c, opt = self.config, self.opt
        fmts = ds.activation_formats(c, opt)
        tracking = c.precision == "qat" and opt.act16 is None
        counters = self.driver.train_step(fmts, tracking=tracking, batch=batch)
        opt = replace(opt, step=opt.step + 1)
        if tracking:
            opt = replace(opt, ranges=MappingProxyType(self.driver.ranges()))
            act16 = en.switch_formats(self.driver.config.engine, opt)
            if act16 is not None:
                opt = replace(opt, act16=act16)
        self.opt = opt
        self._synced = False
        self.last_info = {"counters": counters}
        return self.last_info

    def explore(self, obs: Any) -> np.ndarray:
        c = self.config
        x = c.act_fmt.from_float(np.asarray(obs, dtype=np.float64).reshape(-1))
        codes = self.driver.act(x, self.formats)
        return c.act_fmt.to_float(codes)

    def sync(self) -> None:
        """Read the networks and the optimizer state back from the core."""
        if self._synced:
            return
        weights, targets, opt = self.driver.read_state()
        self.weights, self.targets = weights, targets
        self.opt = replace(opt, ranges=self.opt.ranges, act16=self.opt.act16)
        self._synced = True

    def policy(self, obs: Any) -> np.ndarray:
        self.sync()
        return super().policy(obs)

    def to_image(self, metadata: Mapping[str, str] | None = None):
        self.sync()
        return super().to_image(metadata)
