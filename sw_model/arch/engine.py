"""Golden model of the on-chip training engine: memory plan, step programs and their execution.

The training engine (:class:`fixar_hw.train.scheduler.TrainingEngine`) runs a whole fixed-point DDPG
training step (:func:`sw_model.arch.ddpg_step.fixed_train_step`) from a *program*: a list of
descriptors, each one operation of one unit, executed in order.

Units and descriptors
---------------------
:class:`ArrayOp`
    A layer operation on the PE array (:mod:`sw_model.arch.aap`): forward, backward or weight
    gradient, with its parallelism mode and the run-time activation formats of the
    quantization phase. Results go to the activation memory (forward, backward) or the
    gradient memory (weight gradient). A bias gradient is the weight gradient of the layer's
    deltas against a vector of ones (``x_fmt = FixedFormat(act16_fmt.width, 0)``, code 1, a
    narrow format so that a build with dual-precision PEs runs it in half mode in both QAT
    phases): the sum ``sum_b d_b * 1`` is the bias gradient exactly, rounded once as
    :func:`sw_model.arch.aap.bias_gradient` rounds it.
:class:`VectorOp`
    An element-wise operation of the vector unit (:mod:`sw_model.arch.vector`): format conversions,
    the TD target, the loss delta, the actor's output delta, QAT range tracking, exploration
    noise.
:class:`UpdateOp`
    Adam or SGD over a contiguous range of parameter words (weights, gradients and moments at
    the same addresses), or the soft update of the targets (at ``+ online_words``).
:class:`TickOp`
    Advances the step counter ``t`` (Adam's bias correction reads it).

Memories (the layout :class:`MemoryPlan` fixes, shared by the hardware)
-----------------------------------------------------------------------
``W``
    Parameter words of ``size**2`` lanes (``weight_fmt``): every weight matrix as
    :func:`sw_model.arch.aap.tile_weights` tiles, every bias as the tiles of an ``(M, 1)`` matrix
    (element ``i*S + r`` at word ``i``, lane ``r*S``, the PE column-0 lane the array's bias
    port reads). The online networks (actor, then critic, layer by layer, weight then bias)
    fill words ``0 .. P-1``; the target networks the same layout at ``P .. 2P-1``.
``G``, ``M``, ``V``
    Gradients (``grad_fmt``), Adam's first and second moments (``grad_fmt``,
    :func:`sw_model.numerics.optim.v_format`), ``P`` words each, at the online parameters'
    addresses.
``A``
    Activation words of ``size`` lanes (``act_fmt.width`` bits): named regions
    (:class:`Region`), each ``batch`` vectors of ``ceil(length / size)`` words.

The golden :func:`execute` runs a program on memory images with the golden functions;
:func:`compile_step` and :func:`compile_act` write the programs of a training step and of
one noisy action. ``execute(compile_step(...))`` equals :func:`~sw_model.arch.ddpg_step.
fixed_train_step` bit for bit (``tests/test_engine.py``), and the hardware equals
:func:`execute`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from sw_model.arch import aap
from sw_model.arch.aap import AAPConfig, choose_parallelism
from sw_model.arch.ddpg_config import DDPGConfig
from sw_model.arch.ddpg_step import NETS, Batch, OptState, Weights, layer_kinds
from sw_model.arch.vector import VectorCommand, VectorSpec, VectorState
from sw_model.arch.vector import execute as vector_execute
from sw_model.checks import check_int
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.optim import FixedAdamConstants, adam_fixed, sgd_fixed, soft_update_fixed
from sw_model.numerics.prng import sigma_code
from sw_model.numerics.qat import range_format

__all__ = [
    "STORES",
    "ArrayOp",
    "EngineConfig",
    "EngineState",
    "Footprint",
    "MemoryPlan",
    "Region",
    "TensorSlot",
    "TickOp",
    "UpdateOp",
    "VectorOp",
    "compile_act",
    "compile_step",
    "execute",
    "footprint",
    "load_batch",
    "load_observation",
    "load_state",
    "program_cycles",
    "read_action",
    "read_opt",
    "read_weights",
    "switch_formats",
]

UPDATE_OPS: tuple[str, ...] = ("adam", "sgd", "soft")

#: Update unit kinds a build may take (:attr:`EngineConfig.update_kind`).
UPDATE_KINDS: tuple[str, ...] = ("pipelined", "iterative")

#: Result bits a cycle an iterative update unit may find (:attr:`EngineConfig.update_bits`).
UPDATE_BITS: tuple[int, ...] = (1, 2, 4)

#: How the update unit reaches the parameter memory (:attr:`EngineConfig.update_ports`).
UPDATE_PORTS: tuple[str, ...] = ("own", "shared")


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


# --- configuration -------------------------------------------------------------------------

@dataclass(frozen=True)
class EngineConfig:
    """One build of the training engine: the agent it trains and the array that runs it.

    Parameters
    ----------
    ddpg : DDPGConfig
        A fixed-point configuration (``"fixed"``, ``"fixed16"`` or ``"qat"``): network sizes,
        formats, hyperparameters; ``ddpg.batch_size`` is the batch of every training step.
    obs_dim, act_dim : int
        Observation and action sizes.
    size : int
        PE grid side (a power of two).
    cores : int
        AAP cores.
    tanh_index_bits : int
        log2 of the tanh table memory (10: the trainer's tables fit).
    w_words, a_words : int or None
        Capacities of the parameter and activation memories in words; None sizes them to the
        plan. A plan that does not fit raises ``ValueError``.
    max_batch : int or None
        Largest batch the build takes (sizes the activation memory and counters); default
        ``ddpg.batch_size``. Programs may use any batch up to it.
    update_units : int
        Update units working in parallel (a power of two up to ``size**2``).
    update_kind : {"pipelined", "iterative"}
        ``"pipelined"`` units take an element a cycle (an optimizer pass takes ``size**2 /
        update_units`` cycles per parameter word) in about 300 flip-flops per pipeline
        stage; ``"iterative"`` units hold one element at a time in a few hundred flip-flops
        (an Adam element takes ``9 + ceil(31 / update_bits) + ceil(weight_width /
        update_bits)`` cycles, an SGD or soft update 5). Both are bit-exact with
        :mod:`sw_model.numerics.optim`.
    update_bits : int
        Square-root and quotient bits an iterative unit finds a cycle: 1, 2 or 4.
    update_ports : {"own", "shared"}
        ``"own"``: the update unit reads the parameter memory through two read ports of its
        own (two more block-RAM copies of that memory), so it runs beside the PE array;
        ``"shared"``: it borrows two of the array's ports and never runs beside the array
        (it still runs beside the vector unit). For devices whose block RAM is the limit.
    half : bool
        Dual-precision PEs (:attr:`sw_model.arch.aap.AAPConfig.half`): after the switch to
        ``act16_fmt``, forward and weight-gradient operations run two products a PE per cycle
        when ``act16_fmt`` fits half a PE operand.
    """

    ddpg: DDPGConfig
    obs_dim: int
    act_dim: int
    size: int = 16
    cores: int = 2
    tanh_index_bits: int = 10
    w_words: int | None = None
    a_words: int | None = None
    max_batch: int | None = None
    update_units: int = 1
    update_kind: str = "pipelined"
    update_bits: int = 2
    update_ports: str = "own"
    half: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.ddpg, DDPGConfig):
            raise TypeError(f"EngineConfig ddpg must be a DDPGConfig, not {self.ddpg!r}")
        if not self.ddpg.is_fixed:
            raise ValueError(f"EngineConfig ddpg must have a fixed-point precision, not "
                             f"{self.ddpg.precision!r}")
        for name in ("obs_dim", "act_dim", "size", "cores", "tanh_index_bits", "update_units"):
            check_int(getattr(self, name), name, minimum=1, owner="EngineConfig")
        if self.size & (self.size - 1):
            raise ValueError(f"EngineConfig size must be a power of two, not {self.size!r}")
        u = self.update_units
        if u & (u - 1) or u > self.size ** 2:
            raise ValueError(f"EngineConfig update_units must be a power of two up to size**2 = "
                             f"{self.size ** 2}, not {u!r}")
        if self.update_kind not in UPDATE_KINDS:
            raise ValueError(f"EngineConfig update_kind must be one of {UPDATE_KINDS}, not "
                             f"{self.update_kind!r}")
        check_int(self.update_bits, "update_bits", minimum=1, owner="EngineConfig")
        if self.update_bits not in UPDATE_BITS:
            raise ValueError(f"EngineConfig update_bits must be one of {UPDATE_BITS}, not "
                             f"{self.update_bits!r}")
        if self.update_ports not in UPDATE_PORTS:
            raise ValueError(f"EngineConfig update_ports must be one of {UPDATE_PORTS}, not "
                             f"{self.update_ports!r}")
        if not isinstance(self.half, bool):
            raise TypeError(f"EngineConfig half must be a bool, not {self.half!r}")
        for name in ("w_words", "a_words", "max_batch"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, minimum=1, owner="EngineConfig")
        if self.max_batch is not None and self.max_batch < self.ddpg.batch_size:
            raise ValueError(f"EngineConfig max_batch must be at least ddpg.batch_size "
                             f"({self.ddpg.batch_size}), not {self.max_batch!r}")
        d = self.ddpg
        if d.act16_fmt.width > d.act_fmt.width or d.act16_fmt.frac > d.act_fmt.frac:
            raise ValueError(f"EngineConfig needs act16_fmt {d.act16_fmt!r} within act_fmt "
                             f"{d.act_fmt!r} (width and fraction bits)")
        if d.act_fmt.frac < 0 or d.act16_fmt.frac < 0:
            raise ValueError("EngineConfig needs activation formats with frac >= 0")
        self.plan  # raises when the networks do not fit  # noqa: B018

    @property
    def batch(self) -> int:
        """Transitions per training step (``ddpg.batch_size``)."""
        return self.ddpg.batch_size

    @property
    def batch_capacity(self) -> int:
        """The largest batch of the build (``max_batch`` or ``ddpg.batch_size``)."""
        return self.max_batch or self.ddpg.batch_size

    def sizes(self, net: str) -> list[int]:
        """Layer sizes of ``net`` (``"actor"`` or ``"critic"``), input first."""
        if net == "actor":
            return [self.obs_dim, *self.ddpg.hidden, self.act_dim]
        return [self.obs_dim + self.act_dim, *self.ddpg.hidden, 1]

    @property
    def layers(self) -> int:
        """Layers per network."""
        return len(self.ddpg.hidden) + 1

    @property
    def aap(self) -> AAPConfig:
        """The PE array's build."""
        d = self.ddpg
        dims = [n for net in NETS for n in self.sizes(net)]
        return AAPConfig(
            size=self.size, cores=self.cores, w_fmt=d.weight_fmt, a_fmt=d.act_fmt,
            d_fmt=d.delta_fmt, g_fmt=d.deriv_fmt, grad_fmt=d.grad_fmt, rounding=d.rounding,
            max_m=max(dims), max_n=max(dims), max_batch=self.batch_capacity,
            addr_width=self.addr_width, tanh_index_bits=self.tanh_index_bits,
            narrow_width=d.act16_fmt.width, half=self.half)

    @property
    def vector(self) -> VectorSpec:
        """The vector unit's build."""
        d = self.ddpg
        return VectorSpec(
            size=self.size, word_width=max(d.act_fmt.width, d.delta_fmt.width),
            addr_width=self.addr_width, act_fmt=d.act_fmt, delta_fmt=d.delta_fmt,
            deriv_fmt=d.deriv_fmt, narrow_width=d.act16_fmt.width, rounding=d.rounding,
            points=len(self.points), max_batch=self.batch_capacity,
            max_len=max(n for net in NETS for n in self.sizes(net)))

    @property
    def points(self) -> tuple[str, ...]:
        """QAT range registers: ``actor.x0 .. actor.xL``, ``critic.x0 .. critic.x(L-1)``."""
        n = self.layers
        return (*(f"actor.x{k}" for k in range(n + 1)), *(f"critic.x{k}" for k in range(n)))

    @property
    def plan(self) -> MemoryPlan:
        """The memory layout."""
        return MemoryPlan.build(self)

    @property
    def addr_width(self) -> int:
        """Width of every memory address."""
        p = MemoryPlan.build(self, check=False)
        return max((max(p.w_words, p.a_words, 2) - 1).bit_length(), 1)

    def adam_constants(self, net: str) -> FixedAdamConstants:
        """Fixed-point Adam constants of ``net``."""
        d = self.ddpg
        lr = d.actor_lr if net == "actor" else d.critic_lr
        return FixedAdamConstants.from_floats(lr, d.beta1, d.beta2, d.eps, d.weight_fmt,
                                              d.grad_fmt, d.adam_bias_steps)

    def lr_table(self, net: str) -> list[int]:
        """Adam's bias-corrected step-size codes of ``net`` for ``t = 1 .. adam_bias_steps``."""
        consts = self.adam_constants(net)
        return [consts.lr_at(t) for t in range(1, self.ddpg.adam_bias_steps + 1)]

    @property
    def lr_width(self) -> int:
        """Bits of a step-size code (Adam's table entries and SGD's ``lr_q``)."""
        return max(max(*self.lr_table(net), self.adam_constants(net).lr_q).bit_length()
                   for net in NETS)

    @property
    def sigma_q(self) -> int:
        """The exploration noise scale code."""
        return sigma_code(self.ddpg.noise_sigma)


# --- memory plan ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorSlot:
    """A parameter tensor in the parameter memories: ``rows x cols`` codes at ``base``."""

    net: str
    name: str
    rows: int
    cols: int
    base: int
    words: int


@dataclass(frozen=True)
class Region:
    """An activation memory region: ``batch`` vectors of ``length`` codes, ``stride`` words
    each, from word ``base``."""

    name: str
    length: int
    batch: int
    base: int
    stride: int

    @property
    def words(self) -> int:
        """Words the region takes."""
        return self.batch * self.stride


@dataclass(frozen=True)
class MemoryPlan:
    """Where everything lives (see the module docs); built by :meth:`build`."""

    tensors: Mapping[str, TensorSlot]
    regions: Mapping[str, Region]
    online_words: int
    a_words: int

    @property
    def w_words(self) -> int:
        """Parameter memory words (online and target networks)."""
        return 2 * self.online_words

    def net_range(self, net: str) -> tuple[int, int]:
        """``(first word, words)`` of the online ``net``'s parameters."""
        slots = [t for t in self.tensors.values() if t.net == net]
        lo = min(t.base for t in slots)
        return lo, max(t.base + t.words for t in slots) - lo

    @classmethod
    def build(cls, config: EngineConfig, check: bool = True) -> MemoryPlan:
        """The plan of ``config``.

        Raises
        ------
        ValueError
            When ``check`` and the plan exceeds ``config.w_words`` or ``config.a_words``.
        """
        S, B = config.size, config.batch_capacity
        tensors: dict[str, TensorSlot] = {}
        base = 0
        for net in NETS:
            sizes = config.sizes(net)
            for k in range(1, len(sizes)):
                rows, cols = sizes[k], sizes[k - 1]
                for name, shape in ((f"l{k}.w", (rows, cols)), (f"l{k}.b", (rows, 1))):
                    words = _ceil(shape[0], S) * _ceil(shape[1], S)
                    tensors[f"{net}.{name}"] = TensorSlot(net, name, *shape, base, words)
                    base += words
        regions: dict[str, Region] = {}
        a_base = 0

        def region(name: str, length: int, batch: int = B) -> None:
            nonlocal a_base
            r = Region(name, length, batch, a_base, _ceil(length, S))
            regions[name] = r
            a_base += r.words

        obs, act, n = config.obs_dim, config.act_dim, config.layers
        region("s", obs)
        region("a", act)
        region("rd", 2)
        region("s2", obs)
        region("ones", 1)
        region("y", 1)
        region("obs1", obs, 1)
        a_sizes, c_sizes = config.sizes("actor"), config.sizes("critic")
        for prefix, sizes, batch in (("at", a_sizes, B), ("a", a_sizes, B), ("p", a_sizes, 1),
                                     ("ct", c_sizes, B), ("c", c_sizes, B),
                                     ("cm", c_sizes, B)):
            for k, length in enumerate(sizes):
                region(f"{prefix}.x{k}", length, batch)
        region("a.z", act)
        region("p.noisy", act, 1)
        region("p.out", act, 1)
        for prefix, sizes in (("c", c_sizes), ("cm", c_sizes), ("a", a_sizes)):
            for k in range(n + 1):
                region(f"{prefix}.d{k}", sizes[k])
        plan = cls(MappingProxyType(tensors), MappingProxyType(regions), base, a_base)
        if check:
            for mem, need, have in (("parameter", plan.w_words, config.w_words),
                                    ("activation", plan.a_words, config.a_words)):
                if have is not None and need > have:
                    raise ValueError(
                        f"the networks do not fit: the {mem} memory needs {need} words, "
                        f"EngineConfig gives {have}")
        return plan


# --- descriptors ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ArrayOp:
    """A PE array operation (see :meth:`fixar_hw.train.array.PEArray.command`).

    ``out_base`` is the destination: an activation-memory word (forward, backward) or a
    gradient-memory word (weight gradient). ``x_fmt``/``out_fmt`` are run-time formats;
    ``half`` runs the operation in half mode (:meth:`sw_model.arch.aap.AAPConfig.half_for`).
    """

    op: str
    m: int
    n: int
    batch: int
    kind: str = "identity"
    parallelism: str = "batch"
    w_base: int = 0
    b_base: int = 0
    v_base: int = 0
    u_base: int = 0
    out_base: int = 0
    x_fmt: FixedFormat | None = None
    out_fmt: FixedFormat | None = None
    half: bool = False


@dataclass(frozen=True)
class VectorOp:
    """A vector-unit command."""

    cmd: VectorCommand


@dataclass(frozen=True)
class UpdateOp:
    """An optimizer pass over parameter words ``lo .. lo + count - 1``.

    ``op``: ``"adam"``/``"sgd"`` (step size of ``net``) or ``"soft"`` (targets at ``+
    online_words``).
    """

    op: str
    lo: int
    count: int
    net: str = "actor"


@dataclass(frozen=True)
class TickOp:
    """``t <- t + 1``."""


Descriptor = ArrayOp | VectorOp | UpdateOp | TickOp


# --- footprints ----------------------------------------------------------------------------

#: The stores a descriptor reads and writes: the memories, the step counter ``t`` and the
#: vector unit's registers (its QAT ranges and noise state), one word each.
STORES: tuple[str, ...] = ("W", "G", "M", "V", "A", "t", "vector")


@dataclass(frozen=True)
class Footprint:
    """What a descriptor reads and writes: ``(store, first, end)`` word ranges of
    :data:`STORES` (``end`` excluded)."""

    reads: tuple[tuple[str, int, int], ...]
    writes: tuple[tuple[str, int, int], ...]

    def conflicts(self, other: Footprint) -> bool:
        """Whether the two may give other results when run in the other order, or at once:
        one writes a word the other reads or writes."""

        def meet(xs: tuple[tuple[str, int, int], ...],
                 ys: tuple[tuple[str, int, int], ...]) -> bool:
            return any(a == b and lo < end and lo2 < hi for a, lo, hi in xs
                       for b, lo2, end in ys)

        return (meet(self.writes, other.reads) or meet(self.writes, other.writes)
                or meet(other.writes, self.reads))


def footprint(config: EngineConfig, op: Descriptor) -> Footprint:
    """The words ``op`` reads and writes when :func:`execute` runs it.

    Array operations read their weight tiles (and a forward pass its bias tiles) and the
    activation vectors of their operands, and write their output vectors (a weight gradient
    its gradient tiles). Update operations read and write their word range of the parameter,
    gradient and moment memories (the soft update the online range and its target copy; Adam
    reads ``t``). A vector operation is taken to read and write the whole activation memory
    and the vector unit's registers; ``tick`` writes ``t``.

    Raises
    ------
    TypeError
        For an object that is no descriptor.
    """
    S = config.size
    if isinstance(op, TickOp):
        return Footprint((), (("t", 0, 1),))
    if isinstance(op, VectorOp):
        whole = (("A", 0, config.plan.a_words), ("vector", 0, 1))
        return Footprint(whole, whole)
    if isinstance(op, UpdateOp):
        lo, hi = op.lo, op.lo + op.count
        if op.op == "soft":
            P = config.plan.online_words
            return Footprint((("W", lo, hi), ("W", P + lo, P + hi)), (("W", P + lo, P + hi),))
        if op.op == "sgd":
            return Footprint((("W", lo, hi), ("G", lo, hi)), (("W", lo, hi),))
        return Footprint((("W", lo, hi), ("G", lo, hi), ("M", lo, hi), ("V", lo, hi),
                          ("t", 0, 1)), (("W", lo, hi), ("M", lo, hi), ("V", lo, hi)))
    if not isinstance(op, ArrayOp):
        raise TypeError(f"not a descriptor: {op!r}")
    ti, tj = _ceil(op.m, S), _ceil(op.n, S)
    rows, cols = op.batch * ti, op.batch * tj  # words of m- and n-long vectors
    if op.op == "wgrad":
        return Footprint((("A", op.v_base, op.v_base + rows), ("A", op.u_base, op.u_base + cols)),
                         (("G", op.out_base, op.out_base + ti * tj),))
    tiles = ("W", op.w_base, op.w_base + ti * tj)
    if op.op == "forward":
        return Footprint((tiles, ("W", op.b_base, op.b_base + ti),
                          ("A", op.v_base, op.v_base + cols)),
                         (("A", op.out_base, op.out_base + rows),))
    return Footprint((tiles, ("A", op.v_base, op.v_base + rows),
                      ("A", op.u_base, op.u_base + cols)),
                     (("A", op.out_base, op.out_base + cols),))


# --- program compiler ----------------------------------------------------------------------

class _Builder:
    def __init__(self, config: EngineConfig, fmts: Mapping[str, FixedFormat],
                 batch: int | None = None) -> None:
        if batch is None:
            batch = config.batch
        if isinstance(batch, bool) or not isinstance(batch, int | np.integer):
            raise TypeError(f"batch must be an integer, not {batch!r}")
        if not 1 <= batch <= config.batch_capacity:
            raise ValueError(f"batch must be from 1 to {config.batch_capacity}, not {batch!r}")
        self.B = int(batch)
        self.c = config
        self.plan = config.plan
        self.fmts = fmts
        self.ops: list[Descriptor] = []
        self.model = config.aap.cycle_model

    def fmt(self, net: str, k: int) -> FixedFormat:
        return self.fmts[f"{net}.x{k}"]

    def vec(self, op: str, *, batch: int, length: int, a: str | None = None, a_off: int = 0,
            a_fmt: FixedFormat | None = None, b: str | None = None, b_off: int = 0,
            b_fmt: FixedFormat | None = None, d: str | None = None, d_off: int = 0,
            d_fmt: FixedFormat | None = None, point: int = 0) -> None:
        aap_cfg = self.c.aap
        fields: dict[str, Any] = {}
        for key, name, off, fmt in (("a", a, a_off, a_fmt), ("b", b, b_off, b_fmt),
                                    ("d", d, d_off, d_fmt)):
            r = self.plan.regions[name] if name else None
            # run-time formats are the array's: (frac, narrow), validated; unused operands 0
            frac, narrow = (0, False) if fmt is None else aap_cfg.act_fields(fmt)
            fields.update({f"{key}_base": r.base if r else 0,
                           f"{key}_stride": r.stride if r else 1, f"{key}_off": off,
                           f"{key}_frac": frac, f"{key}_narrow": narrow})
        self.ops.append(VectorOp(VectorCommand(op=op, batch=batch, length=length, point=point,
                                               **fields)))

    def convert(self, src: str, src_fmt: FixedFormat, dst: str, dst_fmt: FixedFormat,
                length: int, batch: int, d_off: int = 0) -> None:
        self.vec("convert", batch=batch, length=length, a=src, a_fmt=src_fmt, d=dst,
                 d_off=d_off, d_fmt=dst_fmt)

    def array(self, op: str, slot: TensorSlot, *, batch: int, kind: str = "identity",
              v: str, u: str | None = None, out: str | int, bias: TensorSlot | None = None,
              x_fmt: FixedFormat | None = None, out_fmt: FixedFormat | None = None,
              target: bool = False, m: int | None = None, n: int | None = None) -> None:
        regions = self.plan.regions
        off = self.plan.online_words if target else 0
        m = slot.rows if m is None else m
        n = slot.cols if n is None else n
        half = self.c.aap.half_for(op, x_fmt)
        par = choose_parallelism(self.model, op, m, n, batch, half)
        self.ops.append(ArrayOp(
            op, m, n, batch, kind, par, w_base=slot.base + off,
            b_base=(bias.base + off) if bias else 0, v_base=regions[v].base,
            u_base=regions[u].base if u else 0,
            out_base=out if isinstance(out, int) else regions[out].base,
            x_fmt=x_fmt, out_fmt=out_fmt, half=half))

    def forward(self, net: str, prefix: str, batch: int, target: bool = False) -> None:
        kinds = layer_kinds(self.c.ddpg, net)
        t = self.plan.tensors
        for k in range(1, self.c.layers + 1):
            self.array("forward", t[f"{net}.l{k}.w"], batch=batch, kind=kinds[k - 1],
                       v=f"{prefix}.x{k - 1}", out=f"{prefix}.x{k}", bias=t[f"{net}.l{k}.b"],
                       x_fmt=self.fmt(net, k - 1), out_fmt=self.fmt(net, k), target=target)

    def critic_input(self, src_s: str, src_a: str, a_fmt: FixedFormat, dst: str) -> None:
        c, act = self.c, self.c.ddpg.act_fmt
        f0 = self.fmt("critic", 0)
        self.convert(src_s, act, dst, f0, c.obs_dim, self.B)
        self.convert(src_a, a_fmt, dst, f0, c.act_dim, self.B, d_off=c.obs_dim)

    def backprop(self, net: str, prefix: str, update: str | None = None,
                 through_input: bool = False) -> None:
        """Deltas at ``prefix.d{L}`` back to ``prefix.d1`` (or ``d0``); with ``update``, the
        gradients too, and each layer's parameters updated by that optimizer as soon as the
        layer's last operation that reads them has been written."""
        c, t, B = self.c, self.plan.tensors, self.B
        kinds = layer_kinds(c.ddpg, net)
        ones_fmt = FixedFormat(c.ddpg.act16_fmt.width, 0)   # 1 fits a narrow code
        for k in range(c.layers, 0, -1):
            w = t[f"{net}.l{k}.w"]
            bias = t[f"{net}.l{k}.b"]
            if update:
                self.array("wgrad", w, batch=B, v=f"{prefix}.d{k}", u=f"{prefix}.x{k - 1}",
                           out=w.base, x_fmt=self.fmt(net, k - 1))
                self.array("wgrad", bias, batch=B, v=f"{prefix}.d{k}", u="ones",
                           out=bias.base, x_fmt=ones_fmt, n=1)
            if k > 1 or through_input:
                kind = kinds[k - 2] if k > 1 else "identity"
                self.array("backward", w, batch=B, kind=kind, v=f"{prefix}.d{k}",
                           u=f"{prefix}.x{k - 1}", out=f"{prefix}.d{k - 1}",
                           x_fmt=self.fmt(net, k - 1))
            if update:
                # a layer's weight and bias words are contiguous
                self.ops.append(UpdateOp(update, w.base, bias.base + bias.words - w.base, net))

    def ranges(self, prefix: str, net: str, upto: int) -> None:
        pts = self.c.points
        for k in range(upto):
            name = f"{prefix}.x{k}"
            self.vec("range", batch=self.B, length=self.plan.regions[name].length,
                     a=name, a_fmt=self.fmt(net, k), point=pts.index(f"{net}.x{k}"))


def compile_step(config: EngineConfig, formats: Mapping[str, FixedFormat],
                 tracking: bool = False, batch: int | None = None,
                 optimizer: str = "adam") -> list[Descriptor]:
    """The program of one training step (the order of :func:`~sw_model.arch.ddpg_step.
    fixed_train_step`'s module docs).

    Parameters
    ----------
    formats : Mapping[str, FixedFormat]
        Activation formats of the step (:func:`sw_model.arch.ddpg_step.activation_formats`).
    tracking : bool
        QAT before the switch: also track the activation ranges (the actor's output layer runs
        a second time with the identity, for its pre-activation range). The range registers
        merge into what they hold (empty after reset, like the trainer's first step).
    batch : int, optional
        Transitions of the step (default ``ddpg.batch_size``; at most the build's
        :attr:`~EngineConfig.batch_capacity`).
    optimizer : {"adam", "sgd"}
        The update rule of both networks (the trainer uses Adam; SGD takes the same step
        sizes without bias correction, :func:`sw_model.numerics.optim.sgd_fixed`).
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', not {optimizer!r}")
    b = _Builder(config, formats, batch)
    c, d, plan = config, config.ddpg, config.plan
    B, n, act = b.B, c.layers, d.act_fmt
    t = plan.tensors
    a_out = b.fmt("actor", n)
    b.ops.append(TickOp())
    # 3. target
    b.convert("s2", act, "at.x0", b.fmt("actor", 0), c.obs_dim, B)
    b.forward("actor", "at", B, target=True)
    b.critic_input("s2", f"at.x{n}", a_out, "ct.x0")
    b.forward("critic", "ct", B, target=True)
    b.vec("target", batch=B, length=1, a=f"ct.x{n}", b="rd", d="y")
    # 4. critic
    b.critic_input("s", "a", act, "c.x0")
    b.forward("critic", "c", B)
    b.vec("loss", batch=B, length=1, a=f"c.x{n}", b="y", d=f"c.d{n}")
    b.backprop("critic", "c", update=optimizer)
    lo, count = plan.net_range("critic")
    b.ops.append(UpdateOp("soft", lo, count, "critic"))
    # 5. actor
    b.convert("s", act, "a.x0", b.fmt("actor", 0), c.obs_dim, B)
    b.forward("actor", "a", B)
    if tracking:
        last = t[f"actor.l{n}.w"]
        b.array("forward", last, batch=B, v=f"a.x{n - 1}", out="a.z",
                bias=t[f"actor.l{n}.b"], x_fmt=b.fmt("actor", n - 1), out_fmt=a_out)
    b.critic_input("s", f"a.x{n}", a_out, "cm.x0")
    b.forward("critic", "cm", B)
    b.vec("fill", batch=B, length=1, d=f"cm.d{n}")
    b.backprop("critic", "cm", through_input=True)
    b.vec("tanh_delta", batch=B, length=c.act_dim, a="cm.d0", a_off=c.obs_dim,
          b=f"a.x{n}", b_fmt=a_out, d=f"a.d{n}")
    b.backprop("actor", "a", update=optimizer)
    # 6. targets (the critic's follows its update in 4.)
    lo, count = plan.net_range("actor")
    b.ops.append(UpdateOp("soft", lo, count, "actor"))
    # 7. QAT ranges: actor.x0 .. x(L-1), the output layer's z, critic inputs and hidden
    # outputs of both critic passes
    if tracking:
        b.ranges("a", "actor", n)
        pts = c.points
        b.vec("range", batch=B, length=c.act_dim, a="a.z", a_fmt=a_out,
              point=pts.index(f"actor.x{n}"))
        b.ranges("c", "critic", n)
        b.ranges("cm", "critic", n)
    return b.ops


def compile_act(config: EngineConfig, formats: Mapping[str, FixedFormat]
                ) -> list[Descriptor]:
    """The program of one noisy action for the observation in region ``obs1``: the actor
    (intra-layer parallelism), exploration noise, and the conversion to ``act_fmt`` in region
    ``p.out`` (:meth:`sw_model.rl.ddpg.DDPGAgent.explore`)."""
    b = _Builder(config, formats, 1)
    c, n, act = config, config.layers, config.ddpg.act_fmt
    a_out = b.fmt("actor", n)
    b.convert("obs1", act, "p.x0", b.fmt("actor", 0), c.obs_dim, 1)
    b.forward("actor", "p", 1)
    b.vec("noise", batch=1, length=c.act_dim, a=f"p.x{n}", a_fmt=a_out, d="p.noisy",
          d_fmt=a_out)
    b.convert("p.noisy", a_out, "p.out", act, c.act_dim, 1)
    return b.ops


# --- state and golden execution --------------------------------------------------------------

@dataclass(frozen=True)
class EngineState:
    """Memory images (``int64`` arrays, one row per word) and registers of the engine."""

    W: np.ndarray
    G: np.ndarray
    M: np.ndarray
    V: np.ndarray
    A: np.ndarray
    t: int
    vector: VectorState

    def replace(self, **changes: Any) -> EngineState:
        """A copy with ``changes``."""
        return replace(self, **changes)


def _tiles(matrix: np.ndarray, S: int) -> np.ndarray:
    return aap.tile_weights(np.asarray(matrix, dtype=np.int64), S)


def _write_params(mem: np.ndarray, plan: MemoryPlan, params: Weights, S: int,
                  offset: int = 0) -> None:
    for key, slot in plan.tensors.items():
        net, name = key.split(".", 1)
        value = np.asarray(params[net][name], dtype=np.int64).reshape(slot.rows, slot.cols)
        mem[offset + slot.base: offset + slot.base + slot.words] = _tiles(value, S)


def _read_params(mem: np.ndarray, plan: MemoryPlan, S: int, offset: int = 0) -> Weights:
    out: Weights = {net: {} for net in NETS}
    for key, slot in plan.tensors.items():
        net, name = key.split(".", 1)
        words = mem[offset + slot.base: offset + slot.base + slot.words]
        value = aap.untile_weights(words, (slot.rows, slot.cols), S)
        out[net][name] = value[:, 0].copy() if name.endswith(".b") else value
    return out


def _write_region(mem: np.ndarray, region: Region, values: np.ndarray, S: int) -> None:
    v = np.asarray(values, dtype=np.int64).reshape(-1, region.length)
    if v.shape[0] > region.batch:
        raise ValueError(f"region {region.name} holds {region.batch} vectors, not {v.shape[0]}")
    words = aap.slice_vectors(v, S)
    mem[region.base: region.base + len(words)] = words


def _read_region(mem: np.ndarray, region: Region, S: int, batch: int | None = None
                 ) -> np.ndarray:
    b = region.batch if batch is None else batch
    words = mem[region.base: region.base + b * region.stride]
    return aap.unslice_vectors(words, b, region.length, S)


def load_state(config: EngineConfig, weights: Weights, targets: Weights, opt: OptState,
               batch: Batch | None = None, noise_state: int | None = None) -> EngineState:
    """Memory images holding the networks, Adam's moments, the step count and a batch."""
    S, plan = config.size, config.plan
    W = np.zeros((plan.w_words, S * S), dtype=np.int64)
    _write_params(W, plan, weights, S)
    _write_params(W, plan, targets, S, plan.online_words)
    G = np.zeros((plan.online_words, S * S), dtype=np.int64)
    M, V = np.zeros_like(G), np.zeros_like(G)
    _write_params(M, plan, opt.m, S)
    _write_params(V, plan, opt.v, S)
    A = np.zeros((plan.a_words, S), dtype=np.int64)
    _write_region(A, plan.regions["ones"], np.ones((config.batch_capacity, 1)), S)
    ranges = tuple(opt.ranges.get(p) for p in config.points)
    vstate = VectorState.initial(config.vector)
    vstate = replace(vstate, ranges=ranges,
                     noise=vstate.noise if noise_state is None else noise_state)
    state = EngineState(W, G, M, V, A, opt.step, vstate)
    if batch is not None:
        state = load_batch(config, state, batch)
    return state


def load_batch(config: EngineConfig, state: EngineState, batch: Batch) -> EngineState:
    """``state`` with ``batch`` (``act_fmt`` codes) in regions ``s``, ``a``, ``rd``, ``s2``."""
    S, r = config.size, config.plan.regions
    A = state.A.copy()
    _write_region(A, r["s"], batch.obs, S)
    _write_region(A, r["a"], batch.action, S)
    _write_region(A, r["rd"], np.stack([batch.reward, batch.done], axis=1), S)
    _write_region(A, r["s2"], batch.next_obs, S)
    return state.replace(A=A)


def load_observation(config: EngineConfig, state: EngineState, obs: np.ndarray
                     ) -> EngineState:
    """``state`` with one ``act_fmt`` observation in region ``obs1`` (for :func:`compile_act`)."""
    A = state.A.copy()
    _write_region(A, config.plan.regions["obs1"], np.asarray(obs).reshape(1, -1), config.size)
    return state.replace(A=A)


def read_weights(config: EngineConfig, state: EngineState) -> tuple[Weights, Weights]:
    """Online and target networks from the parameter memory."""
    plan, S = config.plan, config.size
    return _read_params(state.W, plan, S), _read_params(state.W, plan, S, plan.online_words)


def read_opt(config: EngineConfig, state: EngineState, act16: Mapping | None = None
             ) -> OptState:
    """Adam's moments, the step count and the tracked ranges as an :class:`OptState`."""
    plan, S = config.plan, config.size
    ranges = {p: r for p, r in zip(config.points, state.vector.ranges, strict=True)
              if r is not None}
    return OptState(_read_params(state.M, plan, S), _read_params(state.V, plan, S), state.t,
                    MappingProxyType(ranges), act16)


def read_action(config: EngineConfig, state: EngineState) -> np.ndarray:
    """The ``act_fmt`` action codes :func:`compile_act` left in region ``p.out``."""
    return _read_region(state.A, config.plan.regions["p.out"], config.size)[0]


def switch_formats(config: EngineConfig, opt: OptState) -> Mapping[str, FixedFormat] | None:
    """QAT: the frozen 16-bit formats once the step count reaches ``qat_delay`` while
    tracking (what :func:`~sw_model.arch.ddpg_step.fixed_train_step` freezes), else None."""
    d = config.ddpg
    if d.precision != "qat" or opt.act16 is not None or opt.step < d.qat_delay:
        return None
    return MappingProxyType({key: range_format(lo, hi, d.act_fmt, d.act16_fmt.width)
                             for key, (lo, hi) in sorted(opt.ranges.items())})


def _array_golden(config: EngineConfig, op: ArrayOp, state: EngineState) -> EngineState:
    cfg, S = config.aap, config.size
    ti, tj = _ceil(op.m, S), _ceil(op.n, S)
    W, A = state.W, state.A

    def vectors(base: int, length: int) -> np.ndarray:
        stride = _ceil(length, S)
        return aap.unslice_vectors(A[base: base + op.batch * stride], op.batch, length, S)

    def put(base: int, values: np.ndarray) -> np.ndarray:
        out = A.copy()
        words = aap.slice_vectors(values, S)
        out[base: base + len(words)] = words
        return out

    if op.op == "wgrad":
        d = vectors(op.v_base, op.m)
        x = vectors(op.u_base, op.n)
        g = cfg.weight_gradient(d, x, x_fmt=op.x_fmt)
        G = state.G.copy()
        G[op.out_base: op.out_base + ti * tj] = _tiles(g, S)
        return state.replace(G=G)
    w = aap.untile_weights(W[op.w_base: op.w_base + ti * tj], (op.m, op.n), S)
    if op.op == "forward":
        b = aap.untile_weights(W[op.b_base: op.b_base + ti], (op.m, 1), S)[:, 0]
        x = vectors(op.v_base, op.n)
        y = cfg.forward(w, b, x, op.kind, x_fmt=op.x_fmt, out_fmt=op.out_fmt)
        return state.replace(A=put(op.out_base, y))
    d = vectors(op.v_base, op.m)
    y_prev = vectors(op.u_base, op.n)
    e = cfg.backward(w, d, y_prev, op.kind, y_fmt=op.x_fmt)
    return state.replace(A=put(op.out_base, e))


def _update_golden(config: EngineConfig, op: UpdateOp, state: EngineState) -> EngineState:
    d = config.ddpg
    lo, hi = op.lo, op.lo + op.count
    W = state.W.copy()
    if op.op == "soft":
        P = config.plan.online_words
        W[P + lo: P + hi] = soft_update_fixed(W[P + lo: P + hi], W[lo:hi], d.tau_q, d.weight_fmt)
        return state.replace(W=W)
    if op.op == "sgd":
        W[lo:hi] = sgd_fixed(W[lo:hi], state.G[lo:hi], config.adam_constants(op.net).lr_q,
                             d.weight_fmt, d.grad_fmt)
        return state.replace(W=W)
    if op.op != "adam":
        raise ValueError(f"update op must be one of {', '.join(UPDATE_OPS)}, not {op.op!r}")
    M, V = state.M.copy(), state.V.copy()
    W[lo:hi], M[lo:hi], V[lo:hi] = adam_fixed(
        W[lo:hi], state.G[lo:hi], M[lo:hi], V[lo:hi], state.t, config.adam_constants(op.net),
        d.weight_fmt, d.grad_fmt)
    return state.replace(W=W, M=M, V=V)


def execute(config: EngineConfig, program: Sequence[Descriptor], state: EngineState
            ) -> EngineState:
    """Run ``program`` on ``state`` with the golden functions; returns the new state."""
    spec = config.vector
    for index, op in enumerate(program):
        if isinstance(op, TickOp):
            state = state.replace(t=state.t + 1)
        elif isinstance(op, ArrayOp):
            state = _array_golden(config, op, state)
        elif isinstance(op, VectorOp):
            A, vstate = vector_execute(spec, op.cmd, state.A, state.vector,
                                       gamma_q=config.ddpg.gamma_q, sigma_q=config.sigma_q)
            state = state.replace(A=A, vector=vstate)
        elif isinstance(op, UpdateOp):
            state = _update_golden(config, op, state)
        else:
            raise TypeError(f"program[{index}] is not a descriptor: {op!r}")
    return state


def program_cycles(config: EngineConfig, program: Sequence[Descriptor]) -> dict[str, int]:
    """Array passes-and-fill cycles and useful MACs of ``program`` (:class:`CycleModel`)."""
    model = config.aap.cycle_model
    cycles = macs = 0
    for op in program:
        if isinstance(op, ArrayOp):
            cycles += model.cycles(op.op, op.m, op.n, op.batch, op.parallelism, op.half)
            macs += aap.useful_macs(op.m, op.n, op.batch)
    return {"array_cycles": cycles, "useful_macs": macs}

