"""PE array: several AAP cores in lockstep, with intra-batch or intra-layer parallelism per op.

:class:`PEArray` runs ``config.cores`` :class:`~fixar_hw.train.aap.AAPCore` grids from one
sequencer.
Each command picks how an operation is split (``parallelism`` of
:meth:`~fixar_hw.train.aap.AAPCore.command`):

``"batch"`` (intra-batch)
    Core ``k`` takes vectors ``k, k + cores, ...``; all cores read the same weight tile in the
    same cycle (one broadcast read serves them) and each has its own accumulators and output
    stage. One output beat carries the slice of ``cores`` consecutive vectors.
``"layer"`` (intra-layer)
    Core ``k`` takes reduction tiles ``k, k + cores, ...`` of every output slice (FIXAR's
    column interleaving); their column sums are added across cores, then accumulated and
    finished by core 0's output stage. One vector at a time.

Weight gradients always give the cores consecutive gradient tiles (each core sums the batch in
its PEs), whatever the command says; see :class:`sw_model.arch.aap.CycleModel`.

Which is faster (:func:`sw_model.arch.aap.choose_parallelism` applies the rule): intra-batch idles
``cores - batch % cores`` core-slots once per output slice, intra-layer idles
``cores - red % cores`` per output slice of every vector (``red`` the reduction tiles). So
training batches (a multiple of ``cores``) run intra-batch at full occupancy; a single vector
(acting in the environment) runs intra-layer, where intra-batch would leave all cores but one
idle.

Memories: each core has its own read ports, with the addresses of
:class:`~fixar_hw.train.aap.AAPCore` in one shared address space. In intra-batch mode the ``w_rd``
addresses of all active cores are equal in every cycle (a banked or broadcast weight memory can
serve them with one read); in intra-layer mode core ``k`` reads tiles whose reduction index is
``k`` modulo ``cores`` (a memory banked that way serves each core from its own bank).
"""

from amaranth.hdl import Module, Shape, Value, unsigned

from fixar_hw._util import silence_on_error
from fixar_hw.arith.sp2 import SP2ShiftAdd
from fixar_hw.train.aap import AAPCommandSet, AAPCore
from sw_model.arch.aap import AAPConfig
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.sp2 import SP2Format

__all__ = ["PEArray", "SP2CommandSet", "SP2PEArray"]


class SP2CommandSet(AAPCommandSet):
    """The command encoding of an :class:`SP2PEArray`: :class:`~fixar_hw.train.aap.AAPCommandSet`
    without the weight gradient (see :class:`SP2PEArray`)."""

    def command(self, op: str, **kwargs) -> dict:
        """As :meth:`AAPCommandSet.command <fixar_hw.train.aap.AAPCommandSet.command>`;
        ``"wgrad"`` raises ``ValueError``."""
        if op == "wgrad":
            raise ValueError("SP2PEArray runs 'forward' and 'backward', not 'wgrad' (weight "
                             "gradients need multipliers: use a PEArray)")
        return super().command(op, **kwargs)


class PEArray(AAPCore):
    """``config.cores`` AAP cores in lockstep (see the module docs for the two parallelisms).

    Interface, numerics and timing as :class:`~fixar_hw.train.aap.AAPCore`, with one set of read
    ports per core and output beats of ``cores`` slices (``mask`` bit ``k`` set when core
    ``k``'s slice holds a result). Cycle counts equal :meth:`sw_model.arch.aap.CycleModel.cycles`.

    Parameters
    ----------
    config : AAPConfig
        ``config.cores`` cores of ``config.size`` squared PEs.
    """

    _max_cores = 1 << 16

    @silence_on_error
    def __init__(self, config: AAPConfig) -> None:
        super().__init__(config)


class SP2PEArray(PEArray):
    """A PE array whose PEs multiply by SP2 weights with shifts and one add (MSQ's LUT lanes).

    Weight tiles hold SP2 codes of ``sp2_fmt`` (``sp2_fmt.m`` bits per lane, same tile layout);
    every PE is an :class:`~fixar_hw.arith.sp2.SP2ShiftAdd` instead of a multiplier, so the grid
    uses
    no DSP blocks. The level integer of a code is the weight as a ``sp2_fmt.level_fmt`` code, so
    results equal :func:`sw_model.arch.aap.forward` and :func:`~sw_model.arch.aap.backward` on
    ``sp2_fmt.to_int(codes)`` with ``w_fmt = sp2_fmt.level_fmt`` (biases are
    ``level_fmt`` codes too), bit for bit.

    Forward and backward both multiply a weight by a vector lane, so both run on shift-adders.
    The weight gradient multiplies two vectors (``d x^T``) and needs multipliers: this array
    does not run it (SP2 is an inference-time weight scheme: train on a :class:`PEArray`, then
    quantize the rows). Per-row MSQ scales are outside the array (fold a per-layer scale into
    the next format, or use :class:`~fixar_hw.arith.row_unit.MixedRowUnit`).

    Parameters
    ----------
    config : AAPConfig
        With ``w_fmt == sp2_fmt.level_fmt``.
    sp2_fmt : SP2Format
    """

    _command_set = SP2CommandSet

    @silence_on_error
    def __init__(self, config: AAPConfig, sp2_fmt: SP2Format) -> None:
        if not isinstance(sp2_fmt, SP2Format):
            raise TypeError(f"sp2_fmt must be an SP2Format, not {sp2_fmt!r}")
        if isinstance(config, AAPConfig) and config.w_fmt != sp2_fmt.level_fmt:
            raise ValueError(f"config.w_fmt must be {sp2_fmt.level_fmt!r} (the level integers "
                             f"of {sp2_fmt!r}), not {config.w_fmt!r}")
        self._sp2_fmt = sp2_fmt
        super().__init__(config)

    @property
    def sp2_fmt(self) -> SP2Format:
        """The weight code format."""
        return self._sp2_fmt

    def _weight_lane_shape(self) -> Shape:
        return unsigned(self._sp2_fmt.m)

    def _multiply(self, m: Module, left: Value, right: Value) -> Value:
        lane = SP2ShiftAdd(FixedFormat(len(right), 0), self._sp2_fmt)
        m.submodules += lane
        m.d.comb += [lane.x.eq(right), lane.code.eq(left[: self._sp2_fmt.m])]
        return lane.p

    def __repr__(self) -> str:
        return f"SP2PEArray({self._config!r}, {self._sp2_fmt!r})"
