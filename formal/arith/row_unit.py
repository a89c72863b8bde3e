"""Property harnesses for :class:`fixar_hw.arith.row_unit.MixedRowUnit`.

``row_unit.contract.*`` (prove by k-induction, unbounded)
    With every lane's product replaced by an abstract product (``AnySeq`` in that lane's exact
    range; the products themselves are proved in ``mac.product.*`` and ``sp2.shift_add.*``)
    and any input, gap and backpressure pattern, for vectors of up to ``max_cols`` columns:
    every lane's accumulator equals an exact, wider shadow sum (no wrap); the closed sums and
    scales are those of the vector; the rows come out in lane order, each the requantized
    ``aligned sum * alpha`` of its lane (equivalence with a shadow model of
    :func:`sw_model.numerics.msq.matvec`); ``o`` keeps valid and its payload while stalled.
``row_unit.cover.*`` (cover)
    The last lane of a vector is emitted, and a second vector's first row after a stall.
``row_unit.mutant.*`` (prove, expected to FAIL)
    A unit that does not align SP2 lanes to the common weight fraction is caught.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import (
    Array,
    Assert,
    Assume,
    Cover,
    Elaboratable,
    Module,
    Mux,
    ResetSignal,
    Signal,
    signed,
)

from fixar_hw.arith.numeric import range_shape, shape_of
from fixar_hw.arith.row_unit import MixedRowUnit
from fixar_hw.formal.arith.mac import requantized_ok
from fixar_hw.formal.runner import ProofJob
from fixar_hw.formal.streams import any_environment, at_most_terms, holds_while_stalled
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.sp2 import SP2Format

__all__ = ["JOBS", "RowUnitContractSpec"]


class _AbstractLaneRowUnit(MixedRowUnit):
    """MixedRowUnit whose lane products are any values in their exact ranges."""

    def _multiply(self, m, lane, x, w):
        lo, hi = self.lane_product_range(lane)
        p = Signal(range_shape(lo, hi), name=f"any_p{lane}")
        m.d.comb += [p.eq(AnySeq(p.shape())), Assume((p >= lo) & (p <= hi))]
        return p


class _MisalignedRowUnit(_AbstractLaneRowUnit):
    """A broken row unit: it forgets to align the SP2 lanes' fraction bits."""

    def lane_frac(self, lane: int) -> int:
        return self.w_frac


class RowUnitContractSpec(Elaboratable):
    """Lockstep shadow model of accumulate, close, scale, requantize and drain."""

    def __init__(self, unit: MixedRowUnit) -> None:
        self.unit = unit

    def elaborate(self, platform) -> Module:
        m = Module()
        dut = self.unit
        m.submodules.dut = dut
        obs = dut.obs  # its internal registers (built with observe=True)
        i, o = dut.i, dut.o
        lanes = range(dut.n_lanes)
        n = dut.max_cols

        any_environment(m, sources=[i], sinks=[o])
        in_count = at_most_terms(m, i, n)

        # Shadow sums (wide), the count of terms in them, and the scales of the closed vector.
        wide = [signed(dut.acc_shape(k).width + 4) for k in lanes]
        sh_acc = [Signal(wide[k], name=f"sh_acc{k}") for k in lanes]
        sh_s = [Signal(wide[k], name=f"sh_s{k}") for k in lanes]
        sh_count = Signal(range(n + 1))
        sh_p_alpha = [Signal(shape_of(dut.alpha_fmt), name=f"sh_p_alpha{k}") for k in lanes]
        sh_s_alpha = [Signal(shape_of(dut.alpha_fmt), name=f"sh_s_alpha{k}") for k in lanes]
        advance = i.ready
        with m.If(advance):
            m.d.sync += [sh_p_alpha[k].eq(i.payload.alpha[k]) for k in lanes]
            with m.If(obs.p_valid):
                with m.If(obs.p_last):
                    m.d.sync += [sh_s[k].eq(sh_acc[k] + obs.p[str(k)]) for k in lanes]
                    m.d.sync += [sh_s_alpha[k].eq(sh_p_alpha[k]) for k in lanes]
                    m.d.sync += [sh_acc[k].eq(0) for k in lanes]
                    m.d.sync += sh_count.eq(0)
                with m.Else():
                    m.d.sync += [sh_acc[k].eq(sh_acc[k] + obs.p[str(k)]) for k in lanes]
                    m.d.sync += sh_count.eq(sh_count + 1)

        # Shadow drain: its own lane counter, and the expected value of each emitted row.
        sh_idx = Signal(range(dut.n_lanes))
        o_free = ~o.valid | o.ready
        with m.If(obs.s_valid & o_free):
            m.d.sync += sh_idx.eq(Mux(sh_idx == dut.n_lanes - 1, 0, sh_idx + 1))
        # fraction bits from the formats, as sw_model.numerics.msq defines them (not from the
        # design)
        lane_frac = [dut.fix_fmt.frac if k < dut.n_fixed else dut.sp2_fmt.frac for k in lanes]
        w_frac = max(dut.fix_fmt.frac, dut.sp2_fmt.frac)
        src_frac = dut.x_fmt.frac + w_frac + dut.alpha_fmt.frac
        exp_width = max(w.width for w in wide) + w_frac + dut.alpha_fmt.width + 2
        expected = Signal(signed(exp_width))
        aligned = Array(sh_s[k] << (w_frac - lane_frac[k]) for k in lanes)
        m.d.comb += expected.eq(aligned[sh_idx] * Array(sh_s_alpha)[sh_idx])
        out_expected = Signal(signed(exp_width))
        out_lane = Signal(range(dut.n_lanes))
        with m.If(obs.s_valid & o_free):
            m.d.sync += [out_expected.eq(expected), out_lane.eq(sh_idx)]

        o_holds = holds_while_stalled(m, o)
        stalled = Signal()
        m.d.sync += stalled.eq(o.valid & ~o.ready)

        with m.If(~ResetSignal()):
            for k in lanes:
                lo, hi = dut.lane_product_range(k)
                m.d.comb += [
                    # a registered product lies in its lane's exact range
                    Assert(~obs.p_valid | ((obs.p[str(k)] >= lo) & (obs.p[str(k)] <= hi)),
                           f"product {k} in range"),
                    # the lane's accumulator equals the exact sum: it has not wrapped
                    Assert(obs.acc[str(k)] == sh_acc[k], f"accumulator {k} exact"),
                    Assert((sh_acc[k] >= sh_count * lo) & (sh_acc[k] <= sh_count * hi),
                           f"sum {k} bounded"),
                    # the scale travels with the last column
                    Assert(obs.p_alpha[str(k)] == sh_p_alpha[k], f"scale {k} tracked"),
                    # a closed vector's sum and scale are the vector's
                    Assert(~obs.s_valid | ((obs.s_sum[str(k)] == sh_s[k])
                                              & (obs.s_alpha[str(k)] == sh_s_alpha[k])),
                           f"closed lane {k} exact"),
                ]
            m.d.comb += [
                # the open vector's terms are counted, and never reach max_cols
                Assert(Mux(obs.p_valid & obs.p_last, in_count == 0,
                           in_count == sh_count + obs.p_valid), "count tracks"),
                Assert(sh_count <= n - 1, "count bounded"),
                # the drain walks the lanes in order
                Assert(obs.idx == sh_idx, "drain order"),
                # an emitted row is its lane's requantized, scaled exact sum
                Assert(~o.valid | ((o.payload.lane == out_lane)
                                   & requantized_ok(m, o.payload.value, out_expected,
                                                    src_frac - dut.out_fmt.frac, dut.out_fmt,
                                                    dut.rounding, dut.overflow)),
                       "row correct"),
                # valid/ready: a stalled output keeps valid and its payload
                Assert(o_holds, "o holds"),
            ]

        rows = Signal(range(2 * dut.n_lanes + 1))
        with m.If(o.valid & o.ready & (rows != 2 * dut.n_lanes)):
            m.d.sync += rows.eq(rows + 1)
        m.d.comb += [
            Cover(o.valid & o.ready & (o.payload.lane == dut.n_lanes - 1)),
            Cover(o.valid & o.ready & (rows == dut.n_lanes) & stalled),
        ]
        return m


def _unit(n_fixed, n_sp2, max_cols, **kw):
    return _AbstractLaneRowUnit(FixedFormat(4, 2), SP2Format(3), FixedFormat(3, 2),
                                FixedFormat(3, 1, signed=False), FixedFormat(6, 2),
                                n_fixed=n_fixed, n_sp2=n_sp2, max_cols=max_cols, observe=True,
                                **kw)


JOBS = [
    ProofJob("row_unit.contract.f1_s1_c3", "lanes never wrap; rows exact and in order; o stable",
             lambda: RowUnitContractSpec(_unit(1, 1, 3)), "prove", 8),
    ProofJob("row_unit.contract.f2_s1_c2_wrap", "as above, fewer columns than lanes, wrap",
             lambda: RowUnitContractSpec(_unit(2, 1, 2, rounding="half_up", overflow="wrap")),
             "prove", 8),
    ProofJob("row_unit.contract.s2_c4_floor", "as above, SP2 lanes only",
             lambda: RowUnitContractSpec(_unit(0, 2, 4, rounding="floor")), "prove", 8),
    ProofJob("row_unit.cover.f1_s1_c3", "last lane emitted; a second vector after a stall",
             lambda: RowUnitContractSpec(_unit(1, 1, 3)), "cover", 20),
    ProofJob("row_unit.mutant.misaligned", "a missing SP2 alignment is caught",
             lambda: RowUnitContractSpec(_MisalignedRowUnit(
                 FixedFormat(4, 2), SP2Format(3), FixedFormat(3, 2),
                 FixedFormat(3, 1, signed=False), FixedFormat(8, 4),
                 n_fixed=1, n_sp2=1, max_cols=3, observe=True)),
             "prove", 8, expect="FAIL"),
]
