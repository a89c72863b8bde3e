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
``aap.cover.<op>.<build>``
    An operation of each kind completes (its final beat transfers).
"""

from amaranth.asserts import AnyConst, AnySeq, Initial
from amaranth.hdl import (
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

from fixar_hw.formal.runner import ProofJob
from fixar_hw.formal.streams import holds_while_stalled
from fixar_hw.train.aap import OP_CODES
from fixar_hw.train.array import PEArray
from sw_model.arch.aap import AAPConfig, CycleModel
from sw_model.numerics.fixed import FixedFormat

__all__ = ["JOBS", "AAPContractSpec"]


class _AbstractProductArray(PEArray):
    """PEArray whose PE products are any value in the exact product range."""

    def _multiply(self, m: Module, left, right):
        p = Signal(self.product_shape)
        m.d.comb += p.eq(AnySeq(self.product_shape))
        lo, hi = self.product_range
        m.d.comb += Assume((p >= lo) & (p <= hi))
        return p


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
        ]
        sent = Signal()
        with m.If(dut.cmd.valid & dut.cmd.ready):
            m.d.sync += sent.eq(1)
        m.d.comb += [dut.cmd.valid.eq(~sent & ~Initial()), dut.cmd.payload.eq(cmd)]
        for q in ("w", "v", "u", "b"):
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
        hits = [port.en & (port.addr == tile) for port in dut.w_rd]
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
            for q in ("w", "v", "u", "b"):
                for port in getattr(dut, f"{q}_rd"):
                    m.d.comb += Assert(~port.en | dut.busy, "reads only while busy")
            # weight reads stay inside the layer
            for port in dut.w_rd:
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


def _build(size: int, cores: int, width: int = 4) -> AAPConfig:
    fmt = FixedFormat(width, width // 2)
    return AAPConfig(size=size, cores=cores, w_fmt=fmt, a_fmt=fmt, d_fmt=fmt,
                     g_fmt=FixedFormat(width, width - 2), grad_fmt=fmt, max_m=4, max_n=4,
                     max_batch=3, addr_width=5, tanh_index_bits=2,
                     narrow_width=width // 2)


_BUILDS = {"s2c1": (2, 1), "s2c2": (2, 2), "s1c3": (1, 3)}


def _depth(size: int, cores: int) -> int:
    # the longest operation: forward/backward in batch mode with one core, 3 vectors of
    # ceil(4/size)**2 tiles, plus the pipeline, plus room for stalls
    tiles = -(-4 // size)
    fill = CycleModel(size, cores).fill("forward")
    return 3 * tiles * tiles + fill + 6


JOBS = [
    *(ProofJob(f"aap.contract.{op}.{name}",
               "stream rules; each tile read once per vector; beats in order; no wrap",
               lambda op=op, s=s, k=k: AAPContractSpec(_build(s, k), op), "bmc",
               _depth(s, k), script=("memory_map",),
               # the quick set proves forward with two cores (the cross-core sum) and the
               # other operations with one; the rest is thoroughness
               slow=name == "s1c3" or (name == "s2c2") != (op == "forward"))
      for op in ("forward", "backward", "wgrad") for name, (s, k) in _BUILDS.items()),
    *(ProofJob(f"aap.cover.{op}", f"a {op} operation completes",
               lambda op=op: AAPContractSpec(_build(2, 2), op), "cover", _depth(2, 2),
               script=("memory_map",))
      for op in ("forward", "backward", "wgrad")),
    ProofJob("aap.mutant.narrow_acc", "a one-bit-short column accumulator is caught",
             lambda: AAPContractSpec(_build(2, 2), "forward", _NarrowAccArray), "bmc",
             _depth(2, 2), script=("memory_map",), expect="FAIL"),
]
