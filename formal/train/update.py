# amaranth: UnusedElaboratable=no
"""Property harnesses for :class:`fixar_hw.train.update.UpdateUnit` and
:class:`fixar_hw.train.update.IterativeUpdateUnit`.

Every harness takes ``bits``: ``None`` builds the pipelined unit, 1, 2 or 4 the iterative one
finding that many bits a cycle. Jobs named ``update.*`` check the pipelined unit,
``update_iter.*`` the iterative one.

``update.contract.*`` (prove by k-induction, unbounded)
    For any elements, constants, gaps and backpressure: the number of elements accepted and
    not yet emitted always equals the number of valid pipeline registers (for the iterative
    unit: its ``busy``, so at most one), so each accepted element gives exactly one output,
    and none is invented or lost under stalls; and ``o`` keeps valid and its payload while
    stalled. Outputs leave in input order because the
    pipeline is one shift register with one stall; ``update.order.*`` checks it.
``update.order.*`` (bounded model check, latency plus stalls)
    Soft updates with ``tau = 0`` leave the target unchanged, which makes the unit a delay line
    for ``w``: a tracked element, any one, leaves in its place in the sequence with its own
    ``w``, ``m`` and ``v``, however the environment stalls.
``update.equiv.<op>.*`` (bounded model check, depth ``latency + 2``)
    One element, any one (``AnyConst`` payload and constants), pushed once under any
    backpressure: the output equals a specification written here from the module docs of
    :mod:`sw_model.numerics.optim`, not from the design. The square root and the quotient are
    characterised by free values constrained by ``s*s <= v < (s+1)*(s+1)`` and
    ``q*2D <= n < (q+1)*2D`` (and SGD's half-up step likewise); the half-even rounding of
    ``mul_shift`` by the dropped bits. The pipelined square root is also checked in place
    (white box).

    Domain: a multiplier checked against a different multiplier is intractable for SAT
    beyond a few bits (see ``formal/arith/pe.py``), so the factors that the design and the
    specification multiply independently are restricted: ``c1`` and ``tau`` are ``0 .. 7`` or
    a power of two up to ``2**16`` (so rounding ties occur, and ``2**16`` replaces the
    average); ``c2`` is ``0 .. 7`` or ``2**16``; ``lr`` is ``0 .. 7`` or a power of two (so
    every step size, saturating ones included, is reached); the second moment is reachable
    from gradients of the format (``v <= g_fmt.min_int**2``, which the update keeps). The
    weight, gradient, moment and ``eps`` codes, and the square root, division and saturation
    logic, are unrestricted. The iterative unit's square root and divider are checked by the
    same end-to-end specification (no white-box view). ``update.equiv.adam`` takes over a
    minute and runs nightly (as do the iterative unit's equivalences other than SGD's and
    Adam's at 4 bits a cycle, its order check and its contracts at 1 and 4 bits a cycle);
    ``update.equiv.adam_fast``, run every time, restricts ``c1`` to ``0 .. 7`` or ``2**16``. Every
    code of every constant, and the full 62-bit range of ``v``, are covered by the Hypothesis
    tests in ``tests/test_update.py``.
``update.mutant.*`` (bounded model check, expected to FAIL)
    The same harness with a specification that rounds the moving averages' ties up: the
    proof must find the difference, which shows that ties are reached.
``update.cover.*`` (cover)
    An Adam element completes after a stall, its weight saturated by a large step (so the
    equivalence assumptions are satisfiable where it matters).
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
    Value,
    signed,
)

from fixar_hw.arith.numeric import range_shape
from fixar_hw.formal.runner import ProofJob
from fixar_hw.formal.streams import any_environment, holds_while_stalled
from fixar_hw.train.update import UPDATE_OPS, IterativeUpdateUnit, UpdateUnit
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.optim import BETA_FRAC, LR_EXTRA

__all__ = ["JOBS", "UpdateContractSpec", "UpdateEquivSpec", "UpdateOrderSpec"]

_V_MAX = (1 << 62) - 1


def _sat(v, lo: int, hi: int):
    return Mux(v > hi, hi, Mux(v < lo, lo, v))


def _mul_shift(a, c, ties_up: bool = False):
    """``round_half_even(a * c / 2**16)``: floor, then up if the dropped bits exceed a half,
    or equal it and the floor is odd (or, for the mutant, always on a tie)."""
    p = a * c
    fl = p >> BETA_FRAC
    dropped = p.as_unsigned()[:BETA_FRAC]
    half = 1 << (BETA_FRAC - 1)
    tie_up = 1 if ties_up else fl[0]
    return fl + ((dropped > half) | ((dropped == half) & tie_up))


def _unit(w_fmt: FixedFormat, g_fmt: FixedFormat, lr_width: int, bits: int | None):
    if bits is None:
        return UpdateUnit(w_fmt, g_fmt, lr_width=lr_width, observe=True)
    return IterativeUpdateUnit(w_fmt, g_fmt, lr_width=lr_width, bits=bits)


class UpdateContractSpec(Elaboratable):
    """Free environment around an update unit; see the module docs."""

    def __init__(self, w_fmt: FixedFormat, g_fmt: FixedFormat, lr_width: int,
                 bits: int | None = None) -> None:
        self.w_fmt, self.g_fmt, self.lr_width, self.bits = w_fmt, g_fmt, lr_width, bits

    def elaborate(self, platform) -> Module:
        m = Module()
        dut = _unit(self.w_fmt, self.g_fmt, self.lr_width, self.bits)
        m.submodules.dut = dut
        any_environment(m, sources=[dut.i], sinks=[dut.o])
        for port in (dut.lr, dut.c1, dut.c2, dut.eps, dut.tau):
            m.d.comb += port.eq(AnySeq(len(port)))
        pending = Signal(range(dut.latency + 2))  # elements accepted and not yet emitted
        took = dut.i.valid & dut.i.ready
        gave = dut.o.valid & dut.o.ready
        m.d.sync += pending.eq(pending + took - gave)
        occupancy = dut.busy if self.bits is not None else dut.obs.occupancy
        stalled = Signal()
        m.d.sync += stalled.eq(dut.o.valid & ~dut.o.ready)
        m.d.comb += [
            # one output per accepted element: none lost, none invented
            Assert(pending == occupancy, "in flight == valid stages"),
            # valid/ready: a stalled output keeps valid and its payload
            Assert(holds_while_stalled(m, dut.o), "o holds"),
            Cover(gave & stalled & (pending == (1 if self.bits is not None else 3))),
        ]
        return m


class UpdateOrderSpec(Elaboratable):
    """Soft updates with ``tau = 0`` through a free environment; a tracked element must come
    out in its place with its own payload (see the module docs)."""

    def __init__(self, w_fmt: FixedFormat, g_fmt: FixedFormat, lr_width: int,
                 bits: int | None = None) -> None:
        self.w_fmt, self.g_fmt, self.lr_width, self.bits = w_fmt, g_fmt, lr_width, bits

    def elaborate(self, platform) -> Module:
        m = Module()
        dut = _unit(self.w_fmt, self.g_fmt, self.lr_width, self.bits)
        m.submodules.dut = dut
        any_environment(m, sources=[dut.i], sinks=[dut.o])
        for port in (dut.lr, dut.c1, dut.c2, dut.eps):
            m.d.comb += port.eq(AnySeq(len(port)))
        m.d.comb += [dut.tau.eq(0), Assume(dut.i.payload.op == UPDATE_OPS["soft"])]
        took = dut.i.valid & dut.i.ready
        gave = dut.o.valid & dut.o.ready
        # track one element, any one: the environment picks it when it is accepted
        pick = Signal()
        m.d.comb += pick.eq(AnySeq(1))
        tracking, done = Signal(), Signal()
        ahead = Signal(range(dut.latency + 2))  # outputs still due before the tracked one
        w, mm, v = Signal.like(dut.i.payload.w), Signal.like(dut.i.payload.m), Signal(63)
        pending = Signal(range(dut.latency + 2))
        m.d.sync += pending.eq(pending + took - gave)
        with m.If(took & pick & ~tracking & ~done):
            m.d.sync += [tracking.eq(1), ahead.eq(pending - gave),
                         w.eq(dut.i.payload.w), mm.eq(dut.i.payload.m), v.eq(dut.i.payload.v)]
        with m.Elif(tracking & gave):
            m.d.sync += ahead.eq(ahead - 1)
            with m.If(ahead == 0):
                m.d.sync += [tracking.eq(0), done.eq(1)]
        with m.If(tracking & gave & (ahead == 0)):
            # the tracked element leaves in its place, with its own payload
            m.d.comb += Assert((dut.o.payload.w == w) & (dut.o.payload.m == mm)
                               & (dut.o.payload.v == v), "in order")
        stalled = Signal()
        m.d.sync += stalled.eq(dut.o.valid & ~dut.o.ready)
        m.d.comb += Cover(done & stalled)
        return m


class UpdateEquivSpec(Elaboratable):
    """One element, any one, against the specification (see the module docs)."""

    def __init__(self, w_fmt: FixedFormat, g_fmt: FixedFormat, lr_width: int,
                 ops: tuple[int, ...] = (0, 1, 2, 3), *, ties_up: bool = False,
                 c1_powers: bool = True, bits: int | None = None) -> None:
        self.w_fmt, self.g_fmt, self.lr_width = w_fmt, g_fmt, lr_width
        self.ops, self.ties_up, self.c1_powers, self.bits = ops, ties_up, c1_powers, bits

    def elaborate(self, platform) -> Module:
        m = Module()
        wf, gf = self.w_fmt, self.g_fmt
        dut = _unit(wf, gf, self.lr_width, self.bits)
        m.submodules.dut = dut
        m.d.comb += Assume(ResetSignal() == Initial())

        # one element and its constants, any ones, presented until accepted
        el = Signal(dut.input_layout)
        lr, c1, c2 = Signal.like(dut.lr), Signal.like(dut.c1), Signal.like(dut.c2)
        eps, tau = Signal.like(dut.eps), Signal.like(dut.tau)
        for sig in (el, lr, c1, c2, eps, tau):
            m.d.comb += Value.cast(sig).eq(AnyConst(len(Value.cast(sig))))
        sent = Signal()
        with m.If(dut.i.valid & dut.i.ready):
            m.d.sync += sent.eq(1)
        m.d.comb += [dut.i.valid.eq(~sent & ~Initial()), dut.i.payload.eq(el),
                     dut.lr.eq(lr), dut.c1.eq(c1), dut.c2.eq(c2), dut.eps.eq(eps),
                     dut.tau.eq(tau), dut.o.ready.eq(AnySeq(1))]

        # the contract's domain
        op, w, x, mm, v = el.op, el.w, el.x, el.m, el.v
        adam, sgd, soft = (op == UPDATE_OPS[k] for k in ("adam", "sgd", "soft"))
        one = 1 << BETA_FRAC
        x_is_g = (x >= gf.min_int) & (x <= gf.max_int)
        x_is_w = (x >= wf.min_int) & (x <= wf.max_int)
        m.d.comb += [
            # moving-average weights: small codes and powers of two (see the module docs)
            *(Assume((c <= one) & ((c < 8) | ((c & (c - 1)) == 0)))
              for c in ((c1, tau) if self.c1_powers else (tau,))),
            *(Assume((c < 8) | (c == one)) for c in ((c2,) if self.c1_powers else (c1, c2))),
            # step sizes: small codes and powers of two (see the module docs)
            Assume((lr < 8) | ((lr & (lr - 1)) == 0)),
            Assume(eps >= 1),
            Assume(sum(op == k for k in self.ops) != 0),
            Assume(soft | x_is_g), Assume(~soft | x_is_w),
            Assume(v <= gf.min_int**2),  # reachable second moments (module docs)
        ]

        # Adam, from the module docs of sw_model.numerics.optim
        m_new = Signal(signed(gf.width))
        v_new = Signal(63)
        m.d.comb += [
            m_new.eq(_sat(mm + _mul_shift(x - mm, c1, self.ties_up), gf.min_int, gf.max_int)),
            v_new.eq(_sat(v + _mul_shift(_sat(x * x, 0, _V_MAX) - v, c2, self.ties_up), 0, _V_MAX)),
        ]
        s = Signal(gf.width)  # isqrt(v_new) <= 2**(g.width - 1), by the bracket
        m.d.comb += [s.eq(AnyConst(gf.width)),
                     Assume((s * s <= v_new) & (v_new < (s + 1) * (s + 1)))]
        den = s + eps
        n = 2 * lr * m_new + (den << LR_EXTRA)
        # u = floor(n / 2D), D = den << LR_EXTRA >= 2**16 and |2 * lr * m| < 2**(lr_width +
        # g.width), so |u| <= 2**(lr_width + g.width - 17) + 1
        q_max = (1 << max(self.lr_width + gf.width - LR_EXTRA - 1, 0)) + 1
        q = Signal(range_shape(-q_max, q_max))
        # q*2D <= n < (q+1)*2D, i.e. (floor(x / ab) = floor(floor(x / a) / b) for a, b > 0)
        # q*den <= floor(n / 2**17) < (q+1)*den, which spares the solver 17 bits
        n_hi = n >> (LR_EXTRA + 1)
        m.d.comb += [q.eq(AnyConst(q.shape())),
                     Assume((q * den <= n_hi) & (n_hi < (q + 1) * den))]
        w_adam = _sat(w - q, wf.min_int, wf.max_int)

        # SGD: u = round_half_up(lr * g / 2**S), i.e. u * 2**(S+1) <= 2*lr*g + 2**S < ...
        shift = gf.frac + LR_EXTRA
        u = Signal(signed(self.lr_width + gf.width + 1 + max(-shift, 0)))  # holds any u
        m.d.comb += u.eq(AnyConst(len(u)))
        if shift > 0:
            num = 2 * lr * x + (1 << shift)
            m.d.comb += Assume(((u << (shift + 1)) <= num) & (num < ((u + 1) << (shift + 1))))
        else:
            m.d.comb += Assume(u == (lr * x) << -shift)
        w_sgd = _sat(w - u, wf.min_int, wf.max_int)

        # soft update
        w_soft = _sat(w + _mul_shift(x - w, tau, self.ties_up), wf.min_int, wf.max_int)

        want_w = Signal(signed(wf.width))
        want_m, want_v = Signal(signed(gf.width)), Signal(63)
        m.d.comb += [
            want_w.eq(w),
            want_m.eq(mm),
            want_v.eq(v),
        ]
        with m.If(adam):
            m.d.comb += [want_w.eq(w_adam), want_m.eq(m_new), want_v.eq(v_new)]
        with m.Elif(sgd):
            m.d.comb += want_w.eq(w_sgd)
        with m.Elif(soft):
            m.d.comb += want_w.eq(w_soft)

        if self.bits is None:
            self._white_box(m, dut, adam)
        with m.If(dut.o.valid):
            # the element's result is the specification's
            m.d.comb += [Assert(dut.o.payload.w == want_w, "w"),
                         Assert(dut.o.payload.m == want_m, "m"),
                         Assert(dut.o.payload.v == want_v, "v")]
        stalled = Signal()
        m.d.sync += stalled.eq(dut.o.valid & ~dut.o.ready)
        saturated = (w_adam == wf.min_int) | (w_adam == wf.max_int)
        m.d.comb += Cover(dut.o.valid & dut.o.ready & adam & stalled & saturated
                          & (w != w_adam))
        return m

    def _white_box(self, m: Module, dut: UpdateUnit, adam: Value) -> None:
        """The pipelined square root is the floor square root (which is below
        ``2**(g.width - 1)`` here: bounding it first keeps the squares small for the solver)."""
        obs = dut.obs
        root, root_v = obs.root, obs.root_v
        with m.If(obs.root_valid & adam):
            low = root[: self.g_fmt.width]
            m.d.comb += [Assert(root[self.g_fmt.width:] == 0, "isqrt small"),
                         Assert((low * low <= root_v) & (root_v < (low + 1) * (low + 1)),
                                "isqrt")]


# the equivalence proofs multiply and divide: they run at the smallest formats that still
# reach every case (saturation of u needs lr_width + g.width - 17 >= w.width)
_W, _G, _LR = FixedFormat(8, 4), FixedFormat(6, 4), 20
_WE, _GE, _LRE = FixedFormat(4, 2), FixedFormat(5, 3), 16
_LATENCY = UpdateUnit(_W, _G, lr_width=_LR).latency
_LATENCY_E = UpdateUnit(_WE, _GE, lr_width=_LRE).latency
_ITER_E = {b: IterativeUpdateUnit(_WE, _GE, lr_width=_LRE, bits=b).latency for b in (1, 2, 4)}

JOBS = [
    ProofJob("update.contract.w8g6", "one output per accepted element; o stable",
             lambda: UpdateContractSpec(_W, _G, _LR), "prove", 3),
    ProofJob("update.order.w4g5", "a tracked element leaves in its place with its payload",
             lambda: UpdateOrderSpec(_WE, _GE, _LRE), "bmc", _LATENCY_E + 6),
    *(ProofJob(f"update.equiv.{name}.w4g5", f"one {name} element: w, m, v equal the spec",
               lambda ops=ops: UpdateEquivSpec(_WE, _GE, _LRE, ops), "bmc", _LATENCY_E + 2,
               slow=(name == "adam"))
      for name, ops in (("adam", (0,)), ("sgd", (1,)), ("soft", (2, 3)))),
    # the iterative unit's Adam proof runs in the quick profile; this one (about a minute)
    # with the slow set
    ProofJob("update.equiv.adam_fast.w4g5", "one adam element (c1 without ties): the spec",
             lambda: UpdateEquivSpec(_WE, _GE, _LRE, (0,), c1_powers=False), "bmc",
             _LATENCY_E + 2, slow=True),
    # the mutant and the cover of the iterative unit (the same spec) run in the quick
    # profile; these two (about 20 s each) with the slow set
    ProofJob("update.mutant.ties_up", "a spec rounding ties up differs from the design",
             lambda: UpdateEquivSpec(_WE, _GE, _LRE, (2,), ties_up=True), "bmc",
             _LATENCY_E + 2, expect="FAIL", slow=True),
    ProofJob("update.cover.w4g5", "an Adam element completes after a stall, saturated",
             lambda: UpdateEquivSpec(_WE, _GE, _LRE, (0,)), "cover", _LATENCY_E + 4,
             slow=True),
    # the iterative unit
    *(ProofJob(f"update_iter.contract.b{b}.w8g6", "one output per accepted element; o stable",
               lambda b=b: UpdateContractSpec(_W, _G, _LR, bits=b), "prove", 3, slow=(b != 2))
      for b in (1, 2, 4)),
    ProofJob("update_iter.order.b2.w4g5", "a tracked element leaves in its place",
             lambda: UpdateOrderSpec(_WE, _GE, _LRE, bits=2), "bmc", 3 * 5 + 6, slow=True),
    *(ProofJob(f"update_iter.equiv.{name}.b2.w4g5", f"one {name} element: the spec",
               lambda ops=ops: UpdateEquivSpec(_WE, _GE, _LRE, ops, bits=2), "bmc",
               _ITER_E[2] + 2, slow=True)
      for name, ops in (("adam", (0,)), ("sgd", (1,)), ("soft", (2, 3)))),
    *(ProofJob(f"update_iter.equiv.adam_fast.b{b}.w4g5",
               "one adam element (c1 without ties): the spec",
               lambda b=b: UpdateEquivSpec(_WE, _GE, _LRE, (0,), c1_powers=False, bits=b),
               "bmc", _ITER_E[b] + 2, slow=(b != 4))
      for b in (1, 2, 4)),
    ProofJob("update_iter.mutant.ties_up", "a spec rounding ties up differs from the design",
             lambda: UpdateEquivSpec(_WE, _GE, _LRE, (2,), ties_up=True, bits=2), "bmc",
             _ITER_E[2] + 2, expect="FAIL"),
    ProofJob("update_iter.cover.b2.w4g5", "an Adam element completes after a stall, saturated",
             lambda: UpdateEquivSpec(_WE, _GE, _LRE, (0,), bits=2), "cover", _ITER_E[2] + 4),
]
