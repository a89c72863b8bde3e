"""Mixed-scheme row unit: dot products of fixed-point rows (DSP lanes) and SP2 rows (LUT lanes).

:class:`MixedRowUnit` computes ``n_fixed + n_sp2`` rows of a mixed-scheme (MSQ) weight matrix
against one input vector at a time; :func:`plan_passes` maps the rows of a
:class:`sw_model.numerics.msq.QuantizedMatrix` onto the lanes. The golden twin is
:func:`sw_model.numerics.msq.matvec`: every row result of the unit equals it bit for bit.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from amaranth.hdl import Array, Module, Mux, Shape, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import check_bool, check_int, observe, silence_on_error
from fixar_hw.arith.mac import exact_product
from fixar_hw.arith.numeric import check_format, range_shape, requantize, shape_of
from fixar_hw.arith.sp2 import SP2ShiftAdd, sp2_product_range
from sw_model.numerics.fixed import FixedFormat, check_overflow, check_rounding, product_range
from sw_model.numerics.msq import QuantizedMatrix
from sw_model.numerics.sp2 import SP2Format

__all__ = ["MixedRowUnit", "Pass", "pass_columns", "plan_passes"]


class MixedRowUnit(wiring.Component):
    """``n_fixed`` fixed-point lanes and ``n_sp2`` SP2 lanes sharing one input vector.

    Lanes ``0 .. n_fixed-1`` multiply in DSPs (:func:`~fixar_hw.arith.mac.exact_product`), lanes
    ``n_fixed .. n_fixed+n_sp2-1`` with :class:`~fixar_hw.arith.sp2.SP2ShiftAdd` (shifts and one
    add,
    in LUTs). Each input transfer is one column: an activation ``x`` broadcast to every lane and
    each lane's weight code for that column. Each lane accumulates its exact products; on the
    transfer with ``last`` set the lanes' sums close and are emitted on :attr:`o`, one row per
    transfer in lane order, each computed as :func:`sw_model.numerics.msq.matvec` does::

        value = requantize((sum << (w_frac - lane_frac)) * alpha,
                           x_fmt.frac + w_frac + alpha_fmt.frac, out_fmt, rounding, overflow)

    where ``lane_frac`` is ``fix_fmt.frac`` or ``sp2_fmt.frac``, ``w_frac`` the larger of the two,
    and ``alpha`` the lane's scale code, read from the ``last`` transfer. One shared multiplier
    applies the scales. Vectors longer than ``max_cols`` are outside the contract (the
    accumulators are sized for ``max_cols`` terms).

    Timing: one column per cycle while results drain no slower than columns arrive, i.e. a
    vector of ``cols`` columns takes ``max(cols, n_lanes)`` cycles in steady state; the first
    row of a vector is valid :attr:`latency` (3) cycles after its ``last`` transfer, the others
    follow one per cycle. :attr:`o` keeps the valid/ready rules of :mod:`amaranth.lib.stream`.

    Parameters
    ----------
    x_fmt : FixedFormat
        Activation format.
    sp2_fmt : SP2Format
        Code format of SP2 rows.
    fix_fmt : FixedFormat
        Code format of fixed-point rows (signed).
    alpha_fmt : FixedFormat
        Format of the per-row scales (unsigned).
    out_fmt : FixedFormat
        Result format.
    n_fixed, n_sp2 : int
        Number of lanes of each kind (at least one lane in all).
    max_cols : int
        Longest vector.
    rounding, overflow : str
        As for :func:`sw_model.numerics.fixed.requantize`.
    observe : bool
        Add the :attr:`obs` port (for proofs; default False).

    Members
    -------
    i : In(stream.Signature(StructLayout({"x", "w_fixed", "w_sp2", "alpha", "last"})))
        Columns: ``w_fixed`` is an array of ``n_fixed`` codes, ``w_sp2`` of ``n_sp2`` codes,
        ``alpha`` of ``n_fixed + n_sp2`` scale codes (read with ``last``).
    o : Out(stream.Signature(StructLayout({"value", "lane"})))
        Row results.
    obs : Out(observation_layout)
        With ``observe``: the internal registers, for a proof's shadow model.
    """

    latency: int = 3

    @silence_on_error
    def __init__(self, x_fmt: FixedFormat, sp2_fmt: SP2Format, fix_fmt: FixedFormat,
                 alpha_fmt: FixedFormat, out_fmt: FixedFormat, *, n_fixed: int, n_sp2: int,
                 max_cols: int, rounding: str = "half_even",
                 overflow: str = "saturate", observe: bool = False) -> None:
        self._x_fmt = check_format(x_fmt, "x_fmt")
        if not isinstance(sp2_fmt, SP2Format):
            raise TypeError(f"sp2_fmt must be an SP2Format, not {sp2_fmt!r}")
        self._sp2_fmt = sp2_fmt
        self._fix_fmt = check_format(fix_fmt, "fix_fmt")
        if not fix_fmt.signed:
            raise ValueError(f"fix_fmt must be signed, not {fix_fmt!r}")
        self._alpha_fmt = check_format(alpha_fmt, "alpha_fmt")
        if alpha_fmt.signed:
            raise ValueError(f"alpha_fmt must be unsigned, not {alpha_fmt!r}")
        self._out_fmt = check_format(out_fmt, "out_fmt")
        self._n_fixed = check_int(n_fixed, "n_fixed", minimum=0)
        self._n_sp2 = check_int(n_sp2, "n_sp2", minimum=0)
        if n_fixed + n_sp2 < 1:
            raise ValueError(f"n_fixed + n_sp2 must be at least 1, not {n_fixed + n_sp2!r}")
        self._max_cols = check_int(max_cols, "max_cols", minimum=1)
        self._rounding = check_rounding(rounding)
        self._overflow = check_overflow(overflow)
        self._observe = check_bool(observe, "observe")
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
            **({"obs": Out(self.observation_layout)} if observe else {}),
        })

    # --- parameters ---------------------------------------------------------------------------

    @property
    def x_fmt(self) -> FixedFormat:
        """Activation format."""
        return self._x_fmt

    @property
    def sp2_fmt(self) -> SP2Format:
        """SP2 code format."""
        return self._sp2_fmt

    @property
    def fix_fmt(self) -> FixedFormat:
        """Fixed-point code format."""
        return self._fix_fmt

    @property
    def alpha_fmt(self) -> FixedFormat:
        """Scale format."""
        return self._alpha_fmt

    @property
    def out_fmt(self) -> FixedFormat:
        """Result format."""
        return self._out_fmt

    @property
    def n_fixed(self) -> int:
        """Number of fixed-point (DSP) lanes."""
        return self._n_fixed

    @property
    def n_sp2(self) -> int:
        """Number of SP2 (LUT) lanes."""
        return self._n_sp2

    @property
    def n_lanes(self) -> int:
        """``n_fixed + n_sp2``."""
        return self._n_fixed + self._n_sp2

    @property
    def max_cols(self) -> int:
        """Longest vector."""
        return self._max_cols

    @property
    def rounding(self) -> str:
        """Rounding of the results."""
        return self._rounding

    @property
    def overflow(self) -> str:
        """Overflow handling of the results."""
        return self._overflow

    @property
    def w_frac(self) -> int:
        """Common weight fraction bits: ``max(fix_fmt.frac, sp2_fmt.frac)``."""
        return max(self._fix_fmt.frac, self._sp2_fmt.frac)

    @property
    def input_layout(self) -> data.StructLayout:
        """Payload layout of :attr:`i`."""
        return data.StructLayout({
            "x": shape_of(self._x_fmt),
            "w_fixed": data.ArrayLayout(shape_of(self._fix_fmt), self._n_fixed),
            "w_sp2": data.ArrayLayout(unsigned(self._sp2_fmt.m), self._n_sp2),
            "alpha": data.ArrayLayout(shape_of(self._alpha_fmt), self.n_lanes),
            "last": 1,
        })

    @property
    def output_layout(self) -> data.StructLayout:
        """Payload layout of :attr:`o`: ``value`` (an ``out_fmt`` code) and ``lane``."""
        return data.StructLayout({
            "value": shape_of(self._out_fmt), "lane": range(max(self.n_lanes, 2)),
        })

    @property
    def observation_layout(self) -> data.StructLayout:
        """Layout of :attr:`obs`: the product stage (``p_valid``, ``p_last``, and per lane
        ``p`` and ``p_alpha``), the accumulators ``acc``, the closed sums (``s_valid``, per
        lane ``s_sum`` and ``s_alpha``) and the drain index ``idx``; a per-lane field holds
        one field a lane, named by its index (``obs.acc["0"]``)."""
        lanes = range(self.n_lanes)
        alpha = shape_of(self._alpha_fmt)

        def per_lane(shape: Callable[[int], Any]) -> data.StructLayout:
            return data.StructLayout({str(k): shape(k) for k in lanes})

        return data.StructLayout({
            "p_valid": 1, "p_last": 1,
            "p": per_lane(lambda k: range_shape(*self.lane_product_range(k))),
            "p_alpha": per_lane(lambda k: alpha), "acc": per_lane(self.acc_shape),
            "s_valid": 1, "s_sum": per_lane(self.acc_shape),
            "s_alpha": per_lane(lambda k: alpha), "idx": range(self.n_lanes),
        })

    def lane_product_range(self, lane: int) -> tuple[int, int]:
        """Exact range of one product of ``lane``."""
        if lane < self._n_fixed:
            return product_range(self._x_fmt, self._fix_fmt)
        return sp2_product_range(self._x_fmt, self._sp2_fmt)

    def lane_frac(self, lane: int) -> int:
        """Fraction bits of the weights of ``lane``."""
        return self._fix_fmt.frac if lane < self._n_fixed else self._sp2_fmt.frac

    def acc_shape(self, lane: int) -> Shape:
        """Accumulator shape of ``lane``: any sum of ``max_cols`` of its products."""
        pmin, pmax = self.lane_product_range(lane)
        n = self._max_cols
        return range_shape(min(0, pmin * n), max(0, pmax * n))

    # --- hardware -----------------------------------------------------------------------------

    def _multiply(self, m: Module, lane: int, x, w):
        """Lane product; a seam that formal harnesses replace with an abstract product."""
        if lane < self._n_fixed:
            return exact_product(x, w)
        sa = SP2ShiftAdd(self._x_fmt, self._sp2_fmt)
        m.submodules[f"shift_add{lane}"] = sa
        m.d.comb += [sa.x.eq(x), sa.code.eq(w)]
        return sa.p

    def elaborate(self, platform) -> Module:
        m = Module()
        lanes = range(self.n_lanes)
        nf = self._n_fixed
        i, o = self.i, self.o

        p_valid, p_last = Signal(), Signal()
        p = [Signal(range_shape(*self.lane_product_range(k)), name=f"p{k}") for k in lanes]
        p_alpha = [Signal(shape_of(self._alpha_fmt), name=f"p_alpha{k}") for k in lanes]
        acc = [Signal(self.acc_shape(k), name=f"acc{k}") for k in lanes]
        s_valid = Signal()
        s_sum = [Signal(self.acc_shape(k), name=f"s_sum{k}") for k in lanes]
        s_alpha = [Signal(shape_of(self._alpha_fmt), name=f"s_alpha{k}") for k in lanes]
        idx = Signal(range(self.n_lanes))

        o_free = ~o.valid | o.ready
        drain_last = idx == self.n_lanes - 1
        s_free = ~s_valid | (o_free & drain_last)
        p_block = p_valid & p_last & ~s_free
        m.d.comb += i.ready.eq(~p_block)

        weights = [i.payload.w_fixed[k] for k in range(nf)]
        weights += [i.payload.w_sp2[k] for k in range(self._n_sp2)]
        products = [self._multiply(m, k, i.payload.x, weights[k]) for k in lanes]
        with m.If(~p_block):
            m.d.sync += [p_valid.eq(i.valid), p_last.eq(i.payload.last)]
            m.d.sync += [p[k].eq(products[k]) for k in lanes]
            m.d.sync += [p_alpha[k].eq(i.payload.alpha[k]) for k in lanes]
            with m.If(p_valid):
                with m.If(p_last):
                    m.d.sync += [s_sum[k].eq(acc[k] + p[k]) for k in lanes]
                    m.d.sync += [s_alpha[k].eq(p_alpha[k]) for k in lanes]
                    m.d.sync += [acc[k].eq(0) for k in lanes]
                with m.Else():
                    m.d.sync += [acc[k].eq(acc[k] + p[k]) for k in lanes]

        # Drain: one lane per cycle through the shared scale multiplier and requantizer.
        aligned = Array(s_sum[k] << (self.w_frac - self.lane_frac(k)) for k in lanes)
        alphas = Array(s_alpha)
        scaled = aligned[idx] * alphas[idx]
        src_frac = self._x_fmt.frac + self.w_frac + self._alpha_fmt.frac
        with m.If(s_valid & o_free):
            m.d.sync += [
                o.valid.eq(1),
                o.payload.lane.eq(idx),
                o.payload.value.eq(requantize(scaled, src_frac, self._out_fmt, self._rounding,
                                              self._overflow)),
                idx.eq(Mux(drain_last, 0, idx + 1)),
            ]
            with m.If(drain_last):
                m.d.sync += s_valid.eq(0)
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(~p_block & p_valid & p_last):
            m.d.sync += s_valid.eq(1)

        if self._observe:
            observe(m, self.obs, p_valid=p_valid, p_last=p_last, s_valid=s_valid, idx=idx)
            for name, sigs in (("p", p), ("p_alpha", p_alpha), ("acc", acc), ("s_sum", s_sum),
                               ("s_alpha", s_alpha)):
                observe(m, self.obs[name], **{str(k): v for k, v in enumerate(sigs)})
        return m

    def __repr__(self) -> str:
        return (f"MixedRowUnit({self._x_fmt!r}, {self._sp2_fmt!r}, {self._fix_fmt!r}, "
                f"{self._alpha_fmt!r}, {self._out_fmt!r}, n_fixed={self._n_fixed}, "
                f"n_sp2={self._n_sp2}, max_cols={self._max_cols})")


@dataclass(frozen=True)
class Pass:
    """One vector's worth of rows on the lanes: ``rows[lane]`` is a matrix row or ``None``."""

    rows: tuple[int | None, ...]


def plan_passes(sp2_rows: Sequence[bool] | np.ndarray, n_fixed: int, n_sp2: int) -> list[Pass]:
    """Map matrix rows to lanes: fixed rows to fixed lanes, SP2 rows to SP2 lanes, in order.

    Returns as many passes as the busier kind of lane needs; lanes without a row in a pass get
    ``None`` (feed zero weights and a zero scale).

    Raises
    ------
    ValueError
        If rows of a kind exist but there is no lane of that kind.
    """
    mask = np.asarray(sp2_rows, dtype=bool)
    fixed_rows = [int(r) for r in np.flatnonzero(~mask)]
    sp2 = [int(r) for r in np.flatnonzero(mask)]
    if fixed_rows and n_fixed == 0:
        raise ValueError(f"{len(fixed_rows)} fixed-point rows need a fixed lane, but n_fixed is 0")
    if sp2 and n_sp2 == 0:
        raise ValueError(f"{len(sp2)} SP2 rows need an SP2 lane, but n_sp2 is 0")
    n_pass = max(-(-len(fixed_rows) // max(n_fixed, 1)), -(-len(sp2) // max(n_sp2, 1)))
    passes = []
    for k in range(n_pass):
        f = fixed_rows[k * n_fixed:(k + 1) * n_fixed]
        s = sp2[k * n_sp2:(k + 1) * n_sp2]
        rows = tuple(f + [None] * (n_fixed - len(f)) + s + [None] * (n_sp2 - len(s)))
        passes.append(Pass(rows))
    return passes


def pass_columns(qm: QuantizedMatrix, x_q: Sequence[int], p: Pass, n_fixed: int
                 ) -> list[dict]:
    """The input payloads (one per column) that run pass ``p`` of ``qm`` against ``x_q``."""
    cols = qm.shape[1]
    alpha = [int(qm.alpha[r]) if r is not None else 0 for r in p.rows]
    payloads = []
    for j in range(cols):
        w = [int(qm.codes[r, j]) if r is not None else 0 for r in p.rows]
        payloads.append({"x": int(x_q[j]), "w_fixed": w[:n_fixed], "w_sp2": w[n_fixed:],
                         "alpha": alpha, "last": int(j == cols - 1)})
    return payloads
