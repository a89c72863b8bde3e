# amaranth: UnusedElaboratable=no
"""Property harnesses for :class:`fixar_hw.train.array.PEArray`.

The harness gives the design one command, any one (``AnyConst``, within the build's limits,
of a fixed op), memories returning any data (``AnySeq``), any backpressure on both outputs,
and products that are any value in the exact product range (``AnySeq``: multipliers are proved
elsewhere, see ``formal/arith/pe.py``; the control and the sums around them are proved here).

``aap.contract.<op>.<build>`` (bounded model check; depth covers the longest operation of
the build plus stalls)
    * ``o`` and ``g`` keep the valid/ready rules (valid and payload hold while stalled);
    * the command stream is accepted once, and only when the array is idle;
    * every weight read is of a tile of the layer, and each tile of the layer is read exactly
      ``batch`` times over the operation (once per vector; never for a weight gradient);
    * results leave in order: the operation emits exactly its number of beats, ``last`` on the
      final one only, and nothing on the other output stream;
    * no accumulator (column or PE) ever wraps: every exact sum written to one fits it (the
      PEs' and output stages' own assertions, built with ``platform="formal"``).
    * the registered occupancy flag (``in_flight``) equals the OR of every stage's valid bit
      in every cycle (the array's own assertion), so the retimed command acceptance is exact.
    Builds ending in ``h`` have dual-precision PEs and take a command in either mode (half
    mode for forward and weight gradient): the reads count both weight ports, and each tile
    is still read once per vector.
``aap.cover.<op>.<build>``
    An operation of each kind completes (its final beat transfers).
``aap.half_grid.s2`` (bounded model check, real products)
    A 2x2 dual-precision grid's column sums and closed PE sums equal the golden sums of its
    operands in every op and both modes (:class:`HalfGridSpec`), over 6 cycles: two
    passes through the 4-stage pipeline (the multipliers make deeper checks slow for the
    solver; the array's contract covers the control over whole operations).
``aap.mutant.swapped_halves``
    The same grid with dual PEs whose two half products take each other's activation half:
    must FAIL.
"""

from amaranth.asserts import AnyConst, AnySeq, Initial
from amaranth.hdl import (
    Assert,
    Assume,
    Cat,
    Cover,
    Elaboratable,
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
    signed,
)

from fixar_hw.arith.pe import DualPrecisionPE
from fixar_hw.formal.runner import ProofJob
from fixar_hw.formal.streams import holds_while_stalled
from fixar_hw.train._stages import delay
from fixar_hw.train.aap import OP_CODES
from fixar_hw.train.aap_sequencer import read_ports
from fixar_hw.train.array import PEArray
from fixar_hw.train.pe_grid import PEGrid, combine
from sw_model.arch.aap import AAPConfig, CycleModel
from sw_model.numerics.fixed import FixedFormat

__all__ = ["JOBS", "AAPContractSpec"]


class _AbstractProductArray(PEArray):
    """PEArray whose PE products are any value in the exact product range (a dual PE's two
    products any values whose sum, in either mode, lies in it)."""

    def _multiply(self, m: Module, left, right):
        p = Signal(self.product_shape)
        m.d.comb += p.eq(AnySeq(self.product_shape))
        lo, hi = self.product_range
        m.d.comb += Assume((p >= lo) & (p <= hi))
        return p

    def _multiply_dual(self, m: Module, left, left1, right, half):
        h = len(right) // 2
        p0 = Signal(signed(len(left) + h + 1))
        p1 = Signal(signed(len(left) + h))
        m.d.comb += [p0.eq(AnySeq(p0.shape())), p1.eq(AnySeq(p1.shape()))]
        p = combine(p0, p1, half, h)
        lo, hi = self.product_range
        m.d.comb += Assume((p >= lo) & (p <= hi))
        return p0, p1


class _NarrowAccArray(_AbstractProductArray):
    """A broken array: its column accumulators are one bit short."""

    @property
    def acc_shape(self):
        return signed(super().acc_shape.width - 1)


class AAPContractSpec(Elaboratable):
    """One command of op ``op`` on ``dut`` under a free environment (see the module docs)."""

    def __init__(self, config: AAPConfig, op: str, dut_class: type = _AbstractProductArray
                 ) -> None:
        self.config, self.op, self.dut_class = config, op, dut_class
        self.ports = read_ports(config)

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self.config
        dut = self.dut_class(c)
        # the accumulators' no-wrap assertions are the design's own (platform="formal")
        m.submodules.dut = dut
        S, N = c.size, c.cores
        m.d.comb += Assume(ResetSignal() == Initial())

        # one command, any one, within the limits; presented until accepted
        cmd = Signal(dut.command_layout)
        m.d.comb += cmd.eq(AnyConst(len(cmd.as_value())))
        m.d.comb += [
            Assume(cmd.op == OP_CODES[self.op]),
            Assume(cmd.m_minus_1 < c.max_m),
            Assume(cmd.n_minus_1 < c.max_n),
            Assume(cmd.batch_minus_1 < c.max_batch),
            Assume(cmd.kind < 3),
            # run-time formats within the build's (any t_shift is allowed)
            Assume(cmd.x_frac <= c.a_fmt.frac),
            Assume(cmd.o_frac <= c.a_fmt.frac),
            Assume((cmd.w_base == 0) & (cmd.v_base == 0) & (cmd.u_base == 0)
                   & (cmd.b_base == 0)),
            # either mode in a half-mode build (backward has only full mode)
            Assume(~cmd.half | (c.half_mode & (self.op != "backward"))),
        ]
        sent = Signal()
        with m.If(dut.cmd.valid & dut.cmd.ready):
            m.d.sync += sent.eq(1)
        m.d.comb += [dut.cmd.valid.eq(~sent & ~Initial()), dut.cmd.payload.eq(cmd)]
        for q in self.ports:
            for port in getattr(dut, f"{q}_rd"):
                m.d.comb += port.data.eq(AnySeq(len(port.data.as_value())))
        m.d.comb += [dut.o.ready.eq(AnySeq(1)), dut.g.ready.eq(AnySeq(1))]

        # what the operation must do, from the command
        ti = (cmd.m_minus_1 >> (S.bit_length() - 1)) + 1
        tj = (cmd.n_minus_1 >> (S.bit_length() - 1)) + 1
        batch = cmd.batch_minus_1 + 1
        groups = cmd.batch_minus_1 // N + 1
        if self.op == "wgrad":
            beats = (ti * tj - 1) // N + 1
            reads_per_tile = 0
        else:
            t_out = ti if self.op == "forward" else tj
            beats = Mux(cmd.layer, batch * t_out, groups * t_out)
            reads_per_tile = batch
        stream = dut.g if self.op == "wgrad" else dut.o
        other = dut.o if self.op == "wgrad" else dut.g

        # a tile of the layer, any one: count its reads
        tile = Signal(range(ti.shape().width and (1 << 8)))
        m.d.comb += tile.eq(AnyConst(8))
        m.d.comb += Assume(tile < ti * tj)
        reads = Signal(8)
        weight_ports = [*dut.w_rd, *(dut.w1_rd if c.half_mode else ())]
        hits = [port.en & (port.addr == tile) for port in weight_ports]
        m.d.sync += reads.eq(reads + sum(hits))
        out_beats = Signal(8)
        done = Signal()
        with m.If(stream.valid & stream.ready):
            m.d.sync += out_beats.eq(out_beats + 1)
            with m.If(stream.payload.last):
                m.d.sync += done.eq(1)

        with m.If(~Initial()):
            # o and g keep the stream rules
            m.d.comb += [
                Assert(holds_while_stalled(m, dut.o), "o holds while stalled"),
                Assert(holds_while_stalled(m, dut.g), "g holds while stalled"),
                Assert(~other.valid, "nothing on the other output"),
            ]
            # a command is taken only when idle; memories are read only while busy
            m.d.comb += Assert(dut.cmd.ready == ~dut.busy, "cmd ready exactly when idle")
            for q in self.ports:
                for port in getattr(dut, f"{q}_rd"):
                    m.d.comb += Assert(~port.en | dut.busy, "reads only while busy")
            # weight reads stay inside the layer
            for port in weight_ports:
                m.d.comb += Assert(~port.en | (port.addr < ti * tj), "weight read in range")
            # beats: in order, last on the final one only
            with m.If(stream.valid & stream.ready):
                m.d.comb += [
                    Assert(~done, "no beat after the final one"),
                    Assert(stream.payload.last == (out_beats + 1 == beats),
                           "last marks the final beat"),
                ]
            # at the end, each tile was read once per vector
            with m.If(done):
                m.d.comb += [Assert(reads == reads_per_tile, "each tile read once per vector"),
                             Assert(out_beats == beats, "every beat emitted")]
            m.d.comb += Cover(done)
        return m


def _swapped_halves(m: Module, left, left1, right, half):
    """A broken dual PE: in half mode each weight meets the other weight's activation."""
    pe = DualPrecisionPE(len(left), len(right))
    m.submodules.dual = pe
    h = len(right) // 2
    swapped = Cat(right[h:], right[:h]).as_signed()
    m.d.comb += [pe.w.eq(left), pe.w1.eq(left1), pe.a.eq(Mux(half, swapped, right)),
                 pe.half.eq(half)]
    return pe.p0, pe.p1


class HalfGridSpec(Elaboratable):
    """A dual-precision :class:`~fixar_hw.train.pe_grid.PEGrid` against the golden sums.

    Any operands every cycle (any op, mode, masks, enable and accumulator tags), half-mode
    activation lanes holding ``h``-bit codes sign-extended (as narrow activations are). The
    reference is computed from the operands of each cycle and delayed alongside the grid:

    * forward (full mode): ``col[c] == sum_r tile[c*S + r] * x[r]``; half mode adds
      ``tile1[c*S + r] * x1[r]`` (the next reduction tile and slice);
    * backward: ``col[c] == sum_r tile[r*S + c] * d[r]``;
    * weight gradient: each PE's closed sum equals the sum over the accumulated passes of
      ``d[r] * x[c]`` (full) or ``d[r] * x[c] + d1[r] * x1[c]`` (half), masked lanes zero.

    The products are real (the widths are small); the PEs' own no-wrap assertions hold.
    """

    def __init__(self, size: int = 2, w_width: int = 3, a_width: int = 4,
                 multiply_dual=None) -> None:
        self.size, self.w_width, self.a_width = size, w_width, a_width
        self.multiply_dual = multiply_dual

    def elaborate(self, platform) -> Module:
        m = Module()
        S, h = self.size, self.a_width // 2
        wsh, ash = signed(self.w_width), signed(self.a_width)
        prod = signed(self.w_width + self.a_width + 1)
        acc = signed(prod.width + 3)
        kw = {} if self.multiply_dual is None else {"multiply_dual": self.multiply_dual}
        dut = PEGrid(S, weight=wsh, vector=ash, second=ash, left=signed(max(self.w_width,
                     self.a_width)), right=ash, product=prod, acc=acc, dual=h, **kw)
        m.submodules.dut = dut
        m.d.comb += Assume(ResetSignal() == Initial())
        ins = [dut.en, dut.is_fwd, dut.is_wg, dut.acc, dut.first, dut.close, dut.tile,
               dut.vec, dut.uvec, dut.vmask, dut.umask, dut.tile1, dut.vec1, dut.uvec1,
               dut.v1mask, dut.u1mask, dut.half]
        for sig in ins:
            m.d.comb += sig.eq(AnySeq(len(Value.cast(sig))))
        # an op is one of three; half mode only with narrow codes in the activation lanes
        m.d.comb += Assume(~(dut.is_fwd & dut.is_wg))
        m.d.comb += Assume(~dut.half | ~(~dut.is_fwd & ~dut.is_wg))

        def fits_half(lane):
            return (lane >= -(1 << (h - 1))) & (lane < (1 << (h - 1)))

        with m.If(dut.half):
            for lane in [*dut.vec, *dut.vec1, *dut.uvec, *dut.uvec1]:
                with m.If(dut.is_fwd | dut.is_wg):
                    m.d.comb += Assume(fits_half(lane))
        en = dut.en

        def masked(lanes, mask, r):
            return Mux(mask[r], lanes[r], 0)

        # the reference: each PE's product (or pair of products) from this cycle's operands
        want_p = [[Signal(prod, name=f"want_p_{r}_{c}") for c in range(S)] for r in range(S)]
        for r in range(S):
            x, x1 = masked(dut.vec, dut.vmask, r), masked(dut.vec1, dut.v1mask, r)
            for c in range(S):
                fwd = dut.tile[c * S + r] * x + Mux(dut.half, dut.tile1[c * S + r] * x1, 0)
                bwd = dut.tile[r * S + c] * x
                u, u1 = masked(dut.uvec, dut.umask, c), masked(dut.uvec1, dut.u1mask, c)
                wg = x * u + Mux(dut.half, x1 * u1, 0)
                m.d.comb += want_p[r][c].eq(Mux(dut.is_wg, wg, Mux(dut.is_fwd, fwd, bwd)))
        lat = dut.pe_latency
        p_at = [[delay(m, en, want_p[r][c], lat, f"ref_p_{r}_{c}") for c in range(S)]
                for r in range(S)]
        col_ref = [delay(m, en, sum(p_at[r][c] for r in range(S)), dut.col_latency - lat,
                         f"ref_col_{c}") for c in range(S)]
        # the accumulators' reference, with the tags of the products in the PEs' outputs
        total = [[Signal(acc, name=f"ref_total_{r}_{c}") for c in range(S)] for r in range(S)]
        closed = [[Signal(acc, name=f"ref_sum_{r}_{c}") for c in range(S)] for r in range(S)]
        for r in range(S):
            for c in range(S):
                new = Mux(dut.first, 0, total[r][c]) + p_at[r][c]
                with m.If(en & dut.acc):
                    m.d.sync += total[r][c].eq(new)
                    with m.If(dut.close):
                        m.d.sync += closed[r][c].eq(new)
        with m.If(~Initial()):
            for c in range(S):
                m.d.comb += Assert(dut.col[c] == col_ref[c], "column sum is the golden sum")
            for r in range(S):
                for c in range(S):
                    m.d.comb += Assert(dut.sum[r * S + c] == closed[r][c],
                                       "closed PE sum is the golden sum")
        return m


def _build(size: int, cores: int, width: int = 4, half: bool = False) -> AAPConfig:
    fmt = FixedFormat(width, width // 2)
    return AAPConfig(size=size, cores=cores, w_fmt=fmt, a_fmt=fmt, d_fmt=fmt,
                     g_fmt=FixedFormat(width, width - 2), grad_fmt=fmt, max_m=4, max_n=4,
                     max_batch=3, addr_width=5, tanh_index_bits=2,
                     narrow_width=width // 2, half=half)


# size, cores, dual-precision PEs
_BUILDS = {"s2c1": (2, 1, False), "s2c2": (2, 2, False), "s1c3": (1, 3, False),
           "s2c1h": (2, 1, True), "s2c2h": (2, 2, True)}


def _depth(size: int, cores: int, half: bool = False) -> int:
    # the longest operation: forward/backward in batch mode with one core, 3 vectors of
    # ceil(4/size)**2 tiles, plus the pipeline, plus room for stalls
    tiles = -(-4 // size)
    fill = CycleModel(size, cores, half).fill("forward")
    return 3 * tiles * tiles + fill + 6


def _slow(name: str, op: str) -> bool:
    """The quick set proves forward with two cores (the cross-core sum) and the other
    operations with one, and the half-mode ops (forward, weight gradient) with one core; the
    rest is thoroughness."""
    if name.endswith("h"):
        return op == "backward" or name != "s2c1h"
    return name == "s1c3" or (name == "s2c2") != (op == "forward")


JOBS = [
    *(ProofJob(f"aap.contract.{op}.{name}",
               "stream rules; each tile read once per vector; beats in order; no wrap"
               + (" (dual-precision PEs, either mode)" if h else ""),
               lambda op=op, s=s, k=k, h=h: AAPContractSpec(_build(s, k, half=h), op), "bmc",
               _depth(s, k, h), script=("memory_map",), slow=_slow(name, op))
      for op in ("forward", "backward", "wgrad") for name, (s, k, h) in _BUILDS.items()),
    *(ProofJob(f"aap.cover.{op}", f"a {op} operation completes",
               lambda op=op: AAPContractSpec(_build(2, 2), op), "cover", _depth(2, 2),
               script=("memory_map",))
      for op in ("forward", "backward", "wgrad")),
    ProofJob("aap.half_grid.s2", "a dual-precision grid's column and PE sums equal the "
             "golden sums in both modes", lambda: HalfGridSpec(), "bmc", 6),
    ProofJob("aap.mutant.swapped_halves", "a dual PE whose half products swap their "
             "activations is caught", lambda: HalfGridSpec(
                 multiply_dual=_swapped_halves), "bmc", 6, expect="FAIL"),
    ProofJob("aap.mutant.narrow_acc", "a one-bit-short column accumulator is caught",
             lambda: AAPContractSpec(_build(2, 2), "forward", _NarrowAccArray), "bmc",
             _depth(2, 2), script=("memory_map",), expect="FAIL"),
]
