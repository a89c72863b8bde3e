# amaranth: UnusedElaboratable=no
"""Property harnesses for :class:`fixar_hw.train.vector.VectorUnit`.

The harness gives the unit one command, any one (``AnyConst``) of a fixed op within the spec's
limits (addresses are not limited: they wrap modulo ``2**addr_width`` in the design and in the
check alike), presented at any time; memories returning any data, any ``gamma``, ``sigma``
and seeds (``AnySeq``). The values computed are checked against :mod:`sw_model.arch.vector` by
``tests/test_vector.py``; here, the control.

``vector.contract.<op>.<build>`` (bounded model check; depth covers the longest command of
the op; builds ``s2`` and ``s1``: two lanes a word, or one; the one-lane build is in the slow
set, nightly, except for ``target``, whose ``R`` and ``done`` it places in two words)
    * ``cmd`` is ready exactly when the unit is idle (``busy`` low);
    * the memory ports are enabled only while busy;
    * every write enables exactly one lane, and the ``k``-th write of the command is element
      ``(b, e) = divmod(k, length)`` of the destination region: word ``d_base + b * d_stride +
      (d_off + e) // size``, lane ``(d_off + e) % size``; so writes stay inside the region;
    * when ``busy`` falls, the command made exactly ``batch * length`` writes (none for
      ``range``) and ``busy`` was high for exactly :meth:`VectorUnit.cycles` cycles (written
      out here: ``range`` takes one cycle per word its vectors span).
``vector.cover``
    A two-vector ``loss`` command completes.
``vector.mutant.extra_lane`` (expected to fail)
    A unit that enables lane 0 on every write breaks the one-lane property.
"""

from amaranth.asserts import AnyConst, AnySeq, Initial
from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Elaboratable, Module, Mux, Signal
from amaranth.lib.wiring import In

from fixar_hw.formal.runner import ProofJob
from fixar_hw.formal.streams import any_environment
from fixar_hw.train.vector import OP_CODES, VectorUnit
from sw_model.arch.vector import VECTOR_OPS, VectorSpec
from sw_model.numerics.fixed import FixedFormat

__all__ = ["JOBS", "SPECS", "VectorContractSpec"]

#: The specs of the proofs: 8-bit lanes, 4-bit deltas (3 divider steps); two lanes a word,
#: or one (where ``target``'s ``R`` and ``done`` always sit in two words).
SPECS = {
    f"s{size}": VectorSpec(size=size, word_width=8, addr_width=4, act_fmt=FixedFormat(8, 4),
                           delta_fmt=FixedFormat(4, 2), deriv_fmt=FixedFormat(4, 2),
                           narrow_width=4, rounding="half_even", points=2, max_batch=3,
                           max_len=3)
    for size in (2, 1)
}


class _ExtraLaneUnit(VectorUnit):
    """A broken unit: each write also enables lane 0."""

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.inner = inner = VectorUnit(self.spec)
        for (path, member, outer), (_, _, value) in zip(self.signature.flatten(self),
                                                        inner.signature.flatten(inner),
                                                        strict=True):
            if path == ("d_wr", "en"):
                m.d.comb += outer.eq(value | (value != 0))
            elif member.flow == In:
                m.d.comb += value.eq(outer)
            else:
                m.d.comb += outer.eq(value)
        return m


class VectorContractSpec(Elaboratable):
    """One command of op ``op`` on a ``dut_class`` unit of ``spec`` (see the module docs)."""

    def __init__(self, spec: VectorSpec, op: str, dut_class: type = VectorUnit) -> None:
        self.spec, self.op, self.dut_class = spec, op, dut_class

    def elaborate(self, platform) -> Module:
        m = Module()
        sp = self.spec
        S, L, aw = sp.size, sp.size.bit_length() - 1, sp.addr_width
        m.submodules.dut = dut = self.dut_class(sp)
        any_environment(m, sources=[dut.seed])
        for port in (dut.a_rd, dut.b_rd):
            m.d.comb += port.data.eq(AnySeq(len(port.data.as_value())))
        m.d.comb += [dut.gamma.eq(AnySeq(len(dut.gamma))), dut.sigma.eq(AnySeq(len(dut.sigma)))]

        # one command, any one of the op within the limits, presented when the environment likes
        cmd = Signal(dut.command_layout)
        m.d.comb += cmd.eq(AnyConst(len(cmd.as_value())))
        m.d.comb += [
            Assume(cmd.op == OP_CODES[self.op]),
            Assume(cmd.batch_minus_1 < sp.max_batch),
            Assume(cmd.length_minus_1 < (1 if self.op in ("target", "loss") else sp.max_len)),
            Assume(cmd.point < sp.points),
            *(Assume(getattr(cmd, f"{r}_frac") <= sp.act_fmt.frac) for r in "abd"),
        ]
        sent = Signal()
        with m.If(dut.cmd.valid & dut.cmd.ready):
            m.d.sync += sent.eq(1)
        m.d.comb += [dut.cmd.valid.eq(~sent & ~Initial() & AnySeq(1)), dut.cmd.payload.eq(cmd)]

        # the expected k-th write: element (wb, we) of the destination region
        batch, length = cmd.batch_minus_1 + 1, cmd.length_minus_1 + 1
        n = batch * length
        wb, we = Signal(range(sp.max_batch + 1)), Signal(range(sp.max_len + 1))
        row = Signal(aw)
        writes = Signal(range(sp.max_batch * sp.max_len + 2))
        with m.If(dut.cmd.valid & dut.cmd.ready):
            m.d.sync += row.eq(cmd.d_base)
        idx = cmd.d_off + we
        lane = idx[:L] if L else 0
        word = (row + (idx >> L))[:aw]
        wrote = dut.d_wr.en != 0
        with m.If(wrote):
            m.d.sync += writes.eq(writes + 1)
            with m.If(we + 1 == length):
                m.d.sync += [we.eq(0), wb.eq(wb + 1), row.eq(row + cmd.d_stride)]
            with m.Else():
                m.d.sync += we.eq(we + 1)

        # busy cycles, against VectorUnit.cycles
        k = sp.div_steps
        if self.op == "loss":
            expected = n * (k + 4) + 1
        elif self.op == "fill":
            expected = n + k + 8
        elif self.op == "target":
            straddle = (cmd.b_off[:L] == S - 1) if L else 1
            expected = Mux(straddle, 2 * n + 7, n + 7)
        elif self.op == "range":
            # a word a cycle: the words each vector's elements span
            span = ((cmd.a_off + cmd.length_minus_1) >> L) - (cmd.a_off >> L) + 1
            expected = batch * span + 7
        else:
            expected = n + 7
        # a seed's first state is formed over the two cycles after its transfer
        seed_age = Signal(2)
        m.d.sync += seed_age.eq(Cat(dut.seed.valid & dut.seed.ready, seed_age[0]))
        busy_cycles = Signal(8)
        with m.If(dut.busy):
            m.d.sync += busy_cycles.eq(busy_cycles + 1)
        was_busy = Signal()
        m.d.sync += was_busy.eq(dut.busy)
        finished = was_busy & ~dut.busy

        with m.If(~Initial()):
            m.d.comb += [
                # a command is taken only when idle, and the unit is idle when it takes none
                Assert(dut.cmd.ready == (~dut.busy & ~dut.seed.valid & (seed_age == 0)),
                       "cmd ready exactly when idle and no seed is offered or being formed"),
                # memories are touched only while a command runs
                Assert(~dut.a_rd.en | dut.busy, "a read only while busy"),
                Assert(~dut.b_rd.en | dut.busy, "b read only while busy"),
                Assert(~wrote | dut.busy, "write only while busy"),
            ]
            with m.If(wrote):
                m.d.comb += [
                    # the next element of the destination region, one lane, in order
                    Assert(writes < n, "no more writes than elements"),
                    Assert(dut.d_wr.en == (Const(1, S) << lane)[:S], "one lane: the element's"),
                    Assert(dut.d_wr.addr == word, "the element's word"),
                ]
            with m.If(finished):
                m.d.comb += [
                    # every element written once (range writes nothing)
                    Assert(writes == (0 if self.op == "range" else n), "one write per element"),
                    Assert(busy_cycles == expected, "busy for cycles(cmd)"),
                ]
            m.d.comb += Cover(finished & (cmd.batch_minus_1 == 1))
        return m


def _depth(spec: VectorSpec, op: str) -> int:
    # the longest command of the op, plus room for a late command
    n, k = spec.max_batch * spec.max_len, spec.div_steps
    longest = {"loss": spec.max_batch * (k + 4) + 1, "fill": n + k + 8,
               "target": 2 * spec.max_batch + 7}.get(op, n + 7)
    return longest + 8


JOBS = [
    *(ProofJob(f"vector.contract.{op}.{name}",
               "ready when idle; ports only while busy; one in-region lane write per element, "
               "in order; busy for cycles(cmd)",
               lambda op=op, spec=spec: VectorContractSpec(spec, op), "bmc", _depth(spec, op),
               slow=name == "s1" and op != "target")
      for op in VECTOR_OPS for name, spec in SPECS.items()),
    ProofJob("vector.mutant.extra_lane", "a unit that also writes lane 0 is caught",
             lambda: VectorContractSpec(SPECS["s2"], "convert", _ExtraLaneUnit), "bmc",
             _depth(SPECS["s2"], "convert"), expect="FAIL"),
    ProofJob("vector.cover", "a two-vector loss command completes",
             lambda: VectorContractSpec(SPECS["s2"], "loss"), "cover",
             _depth(SPECS["s2"], "loss")),
]
