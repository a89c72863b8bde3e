"""The vector unit: element-wise glue of the DDPG training step on the activation memory.

:class:`VectorUnit` runs the commands of :mod:`sw_model.arch.vector` (format conversion, TD target,
loss delta, constant fill, tanh output delta, range tracking, exploration noise) one element
per cycle (range tracking one memory word per cycle), reading its operands through two memory
read ports and writing each result into one lane through a write port with per-lane enables.
Results, range registers and noise are those of :func:`sw_model.arch.vector.execute` bit for
bit.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error
from fixar_hw.arith.numeric import align_runtime, range_shape, requantize, saturate, shift_round
from fixar_hw.arith.prng import gaussian_sum, seed_product, state_from_product
from sw_model.arch.vector import VECTOR_OPS, VectorCommand, VectorSpec
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.prng import SIGMA_FRAC, seed_state

__all__ = ["OP_CODES", "VectorCommandSet", "VectorUnit"]

#: Encoding of the ``op`` field of a command.
OP_CODES = {op: code for code, op in enumerate(VECTOR_OPS)}


def _bits(n: int) -> int:
    return max(int(n).bit_length(), 1)


@dataclass(frozen=True)
class VectorCommandSet:
    """The command encoding and timing of a :class:`VectorUnit` for one
    :class:`~sw_model.arch.vector.VectorSpec`: plain Python, shared by the hardware and the
    host (a program's descriptors are encoded and timed without building the unit).

    Parameters
    ----------
    spec : VectorSpec

    Raises
    ------
    TypeError
        If ``spec`` is not a :class:`~sw_model.arch.vector.VectorSpec`.
    """

    spec: VectorSpec

    def __post_init__(self) -> None:
        if not isinstance(self.spec, VectorSpec):
            raise TypeError(f"spec must be a VectorSpec, not {self.spec!r}")

    @property
    def word_layout(self) -> data.ArrayLayout:
        """A memory word: ``size`` lanes of ``signed(word_width)``."""
        return data.ArrayLayout(signed(self.spec.word_width), self.spec.size)

    @property
    def range_layout(self) -> data.StructLayout:
        """One range register."""
        w = self.spec.word_width
        return data.StructLayout({"lo": signed(w), "hi": signed(w), "valid": 1})

    @property
    def layout(self) -> data.StructLayout:
        """Layout of a command (``op`` per :data:`OP_CODES`; sizes stored minus one)."""
        s = self.spec
        fields = {
            "op": 3,
            "batch_minus_1": _bits(s.max_batch - 1),
            "length_minus_1": _bits(s.max_len - 1),
        }
        for r in "abd":
            fields.update({f"{r}_base": s.addr_width, f"{r}_stride": s.addr_width,
                           f"{r}_off": s.offset_bits, f"{r}_frac": _bits(s.act_fmt.frac),
                           f"{r}_narrow": 1})
        fields.update({"point": _bits(s.points - 1), "clear": 1})
        return data.StructLayout(fields)

    def command(self, c: VectorCommand) -> dict:
        """The command payload (a dict for :attr:`layout`) of ``c``, validated against the
        spec.

        Raises
        ------
        TypeError, ValueError
            As :meth:`sw_model.arch.vector.VectorCommand.validate`.
        """
        if not isinstance(c, VectorCommand):
            raise TypeError(f"c must be a VectorCommand, not {c!r}")
        c.validate(self.spec)
        out = {"op": OP_CODES[c.op], "batch_minus_1": c.batch - 1,
               "length_minus_1": c.length - 1, "point": c.point, "clear": int(c.clear)}
        for r in "abd":
            for k in ("base", "stride", "off", "frac", "narrow"):
                out[f"{r}_{k}"] = int(getattr(c, f"{r}_{k}"))
        return out

    def cycles(self, c: VectorCommand) -> int:
        """Cycles the unit is busy for ``c`` after the command transfer (see
        :class:`VectorUnit`'s timing).

        Raises
        ------
        TypeError, ValueError
            As :meth:`command`.
        """
        if not isinstance(c, VectorCommand):
            raise TypeError(f"c must be a VectorCommand, not {c!r}")
        c.validate(self.spec)
        n, k, s = c.elements, self.spec.div_steps, self.spec.size
        if c.op == "loss":
            return n * (k + 4) + 1
        if c.op == "fill":
            return n + k + 8
        if c.op == "target" and c.b_off % s == s - 1:
            return 2 * n + 7
        if c.op == "range":
            # a word a cycle: the words each vector's elements span
            return c.batch * ((c.a_off + c.length - 1) // s - c.a_off // s + 1) + 7
        return n + 7


class VectorUnit(wiring.Component):
    """Element-serial vector unit on the activation memory (:mod:`sw_model.arch.vector`);
    range tracking takes a word a cycle.

    A command on :attr:`cmd` (payload from :meth:`command`) is accepted only when the unit is
    idle; the unit then visits the elements ``(b, e)``, vector-major, reads ``A`` through
    :attr:`a_rd` and ``B`` through :attr:`b_rd` (``amaranth.lib.memory`` read ports: the unit
    drives ``addr`` and ``en``, data arrives one cycle later; ``en`` is low when a port is not
    read) and writes the result into one lane through :attr:`d_wr` (``en`` has one bit per
    lane; exactly one is set per write). The golden model reads every operand of a command
    before it writes; the unit agrees as long as no element reads a lane that an earlier
    element of the same command writes (in place, element by element, is fine).

    Pipeline, a register after each step: issue (addresses) -> lane selection (read data) ->
    products -> barrel shifts (or the divider) -> rounding and saturation of the shifted
    values -> the operands of the results -> the sums and clips of ``target`` and ``noise``,
    and ``tanh_delta``'s product -> that product's rounding, and the write. No step holds
    more than one multiplier, one barrel shifter or one adder with its rounding and
    saturation. The noise generator runs ahead: the
    sums of the next two samples and the next one's product with :attr:`sigma` are registers,
    refilled as samples are used, so a noise element costs no more logic depth than a
    conversion. Operands are the low
    ``act_fmt.width`` bits of their lanes (``delta_fmt.width`` for the ``A`` of
    ``tanh_delta``, the whole lane for ``range``); results are written sign-extended to
    ``word_width``.

    Numerics (formats as in :mod:`sw_model.arch.vector`): conversions of runtime formats use
    :func:`fixar_hw.arith.numeric.requantize_runtime` (floor for ``convert`` and ``noise``,
    ``spec.rounding`` for the tanh derivative), the TD target rounds half even
    (``mul_shift``), the loss and fill deltas divide by the batch size with a restoring divider
    (round half up, saturating), and ``tanh_delta`` rounds with ``spec.rounding``.

    Timing: with ``n = batch * length`` elements and ``K = delta_fmt.width - 1`` divider steps,
    :meth:`cycles` gives the exact number of cycles :attr:`busy` is high after the command
    transfer (the last of them issues the final write or range update; the next command can
    transfer in the cycle after):

    * ``convert``, ``tanh_delta``, ``noise``, and ``target`` when ``R`` and ``done`` share a
      word: ``n + 7`` (one element per cycle, :attr:`latency` 7 from read to write);
    * ``range``: ``batch * w + 7`` with ``w = (a_off + length - 1) // size - a_off // size +
      1`` the words a vector's elements span (a word per cycle: the least and greatest of the
      word's lanes in the region, by a tree of compares over stages 2p and 2b, then the
      range register);
    * ``target`` with ``b_off % size == size - 1`` (``R`` and ``done`` in two words, always
      for ``size == 1``): ``2 n + 7``;
    * ``loss``: ``n (K + 4) + 1`` (one division of ``K`` cycles per element);
    * ``fill``: ``n + K + 8`` (one division, then one write per cycle).

    :attr:`gamma` and :attr:`sigma` must hold still while a command runs. A transfer on
    :attr:`seed` (accepted while idle) restarts the noise generator at
    :func:`sw_model.numerics.prng.seed_state` of the seed, formed in two registered steps: a
    command waits while a seed is offered and for the two cycles after its transfer, so every
    command after a seed sees the new generator. After reset the state is ``seed_state(0)``
    (:meth:`sw_model.arch.vector.VectorState.initial`).

    Parameters
    ----------
    spec : VectorSpec

    Members
    -------
    cmd : In(stream.Signature(command_layout))
    a_rd, b_rd : In(memory.ReadPort.Signature(addr_width=spec.addr_width, shape=word_layout))
    d_wr : In(memory.WritePort.Signature(addr_width=spec.addr_width, shape=word_layout,
        granularity=1))
    gamma : In(unsigned(17))
        Discount code, 16 fraction bits (0 to ``2**16``).
    sigma : In(unsigned(31))
        Noise scale code, 16 fraction bits (:func:`sw_model.numerics.prng.sigma_code`).
    seed : In(stream.Signature(32))
    ranges : Out(data.ArrayLayout(StructLayout({lo, hi, valid}), spec.points))
        The range registers (``valid`` low: empty); ``lo``/``hi`` are lane values.
    busy : Out(1)
        High from the command transfer until the final write has been issued.
    """

    #: Cycles from a read to the write of its result (elements without division).
    latency: int = 7

    @silence_on_error
    def __init__(self, spec: VectorSpec) -> None:
        if not isinstance(spec, VectorSpec):
            raise TypeError(f"spec must be a VectorSpec, not {spec!r}")
        self._spec = spec
        self._commands = VectorCommandSet(spec)
        aw = spec.addr_width
        super().__init__({
            "cmd": In(stream.Signature(self.command_layout)),
            "a_rd": In(memory.ReadPort.Signature(addr_width=aw, shape=self.word_layout)),
            "b_rd": In(memory.ReadPort.Signature(addr_width=aw, shape=self.word_layout)),
            "d_wr": In(memory.WritePort.Signature(addr_width=aw, shape=self.word_layout,
                                                  granularity=1)),
            "gamma": In(unsigned(17)),
            "sigma": In(unsigned(31)),
            "seed": In(stream.Signature(32)),
            "ranges": Out(data.ArrayLayout(self.range_layout, spec.points)),
            "busy": Out(1),
        })

    # --- build-time description ------------------------------------------------------------

    @property
    def spec(self) -> VectorSpec:
        """The build parameters."""
        return self._spec

    @property
    def commands(self) -> "VectorCommandSet":
        """The command encoding and timing of this unit."""
        return self._commands

    @property
    def word_layout(self) -> data.ArrayLayout:
        """A memory word (:attr:`VectorCommandSet.word_layout`)."""
        return self._commands.word_layout

    @property
    def range_layout(self) -> data.StructLayout:
        """One range register (:attr:`VectorCommandSet.range_layout`)."""
        return self._commands.range_layout

    @property
    def command_layout(self) -> data.StructLayout:
        """Layout of a command (:attr:`VectorCommandSet.layout`)."""
        return self._commands.layout

    def command(self, c: VectorCommand) -> dict:
        """The :attr:`cmd` payload of ``c`` (:meth:`VectorCommandSet.command`)."""
        return self._commands.command(c)

    def cycles(self, c: VectorCommand) -> int:
        """Cycles :attr:`busy` is high for ``c`` (:meth:`VectorCommandSet.cycles`)."""
        return self._commands.cycles(c)

    # --- hardware ----------------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        ctl = self._accept(m)
        s1, a_val, b_val, done_val, r_hold, lanes = self._issue_and_select(m, ctl)
        x, x_a, x_b, x_r, x_done, x_sq, x_disc = self._operands(m, ctl, s1, a_val, b_val,
                                                                done_val, r_hold)
        word_lo, word_hi = self._word_range(m, lanes)
        aligned = self._products(m, ctl, x_a, x_sq, x_disc)
        n_aligned = self._noise(m, ctl, x.valid)
        w, w_a, w_r, w_done, conv, disc, g, n_code = self._rounding(m, x, x_a, x_r, x_done,
                                                                    aligned, n_aligned)
        z3_valid, z, z_res, tanh_d = self._results(m, ctl, w, w_a, w_r, w_done, conv, disc,
                                                   g, n_code)
        div_done, quotient = self._divider(m, ctl, x.valid, x_a, x_b)
        self._write(m, ctl, x, z, z_res, tanh_d, div_done, quotient, z3_valid, word_lo,
                    word_hi)
        return m

    def _accept(self, m: Module) -> "_Control":
        """The command and seed handshakes, and the registers a command starts."""
        sp = self._spec
        S, L, aw = sp.size, sp.size.bit_length() - 1, sp.addr_width
        codes = OP_CODES

        p = self.cmd.payload
        c = Signal(self.command_layout)  # the running command

        def is_op(name: str) -> Value:
            return c.op == codes[name]

        uses_a = ~is_op("fill")
        uses_b = is_op("target") | is_op("loss") | is_op("tanh_delta")
        straddle = is_op("target") if S == 1 else is_op("target") & (c.b_off[:L] == S - 1)

        active = Signal()     # busy
        issuing = Signal()    # elements left to issue
        loss_wait = Signal()  # a loss element is in the divider
        fill_start = Signal()  # start the fill division
        phase = Signal()      # target with straddle: the R word has been read
        vb = Signal.like(c.batch_minus_1)
        e = Signal.like(c.length_minus_1)
        rows = {r: Signal(aw, name=f"{r}_row") for r in "abd"}

        accept = Signal()
        # a seed's first state is formed in two registered steps (the seed, then its product
        # with the seeding multiplier); commands wait for it, so they see the new generator
        seed_q = Signal(32)
        seed_prod = Signal(32)
        seeding = Signal(2)   # the seed, then its product, in flight
        m.d.comb += [
            self.busy.eq(active),
            self.cmd.ready.eq(~active & ~self.seed.valid & (seeding == 0)),
            accept.eq(self.cmd.valid & self.cmd.ready),
            self.seed.ready.eq(~active & (seeding == 0)),
        ]
        m.d.sync += [seeding.eq(Cat(self.seed.valid & self.seed.ready, seeding[0])),
                     seed_prod.eq(seed_product(seed_q))]
        with m.If(self.seed.valid & self.seed.ready):
            m.d.sync += seed_q.eq(self.seed.payload)
        with m.If(accept):
            m.d.sync += [
                c.eq(p), active.eq(1), issuing.eq(p.op != codes["fill"]),
                fill_start.eq(p.op == codes["fill"]), vb.eq(0), e.eq(0), phase.eq(0),
                *(rows[r].eq(getattr(p, f"{r}_base")) for r in "abd"),
            ]
            with m.If((p.op == codes["range"]) & p.clear):
                for k in range(sp.points):
                    with m.If(p.point == k):
                        m.d.sync += self.ranges[k].valid.eq(0)
        return _Control(c, uses_a, uses_b, straddle, active, issuing, loss_wait, fill_start,
                        phase, vb, e, rows, seeding[1], state_from_product(seed_prod))

    def _lane(self, view, index) -> Value:
        """Lane ``index`` of the memory word ``view``."""
        return Value.cast(view[0] if self._spec.size == 1 else view[index])

    def _issue_and_select(self, m: Module, ctl: "_Control"
                          ) -> tuple["_Element", Value, Value, Value, Signal,
                                     tuple[Signal, Signal]]:
        """Issue: the read addresses of element ``(vb, e)``; stage 1: the read data arrives and
        the operands' lanes are picked. Returns the stage-1 element, ``A``, ``B``, the ``done``
        lane next to ``B``, ``R`` held from the first word of a straddling target, and the
        first and last lane of ``A``'s word that the element stands for (``range`` issues a
        word a cycle: the element is the first of its vector in that word, and stands for the
        vector's elements up to the word's end; other ops: one lane)."""
        sp = self._spec
        L, aw = sp.size.bit_length() - 1, sp.addr_width
        W = sp.act_fmt.width
        c, e, vb, rows, phase = ctl.c, ctl.e, ctl.vb, ctl.rows, ctl.phase
        straddle = ctl.straddle

        # ---- issue: addresses of element (vb, e) ----
        pre = straddle & ~phase
        go = ctl.issuing & ~ctl.loss_wait
        el = go & ~pre

        def place(r: str) -> tuple[Value, Value]:
            idx = getattr(c, f"{r}_off") + e
            return (rows[r] + (idx >> L))[:aw], (idx[:L] if L else Const(0, 1))

        a_word, a_lane = place("a")
        b_word, b_lane = place("b")
        d_word, d_lane = place("d")
        m.d.comb += [
            self.a_rd.addr.eq(a_word),
            self.a_rd.en.eq(el & ctl.uses_a),
            self.b_rd.addr.eq(b_word + (straddle & phase)),
            self.b_rd.en.eq(go & ctl.uses_b),
        ]
        # range: the vector's elements left after this one, and the word's lanes after it
        by_word = ctl.is_op("range")
        left = c.length_minus_1 - e
        room = Const(sp.size - 1, max(L, 1)) - a_lane
        fits = left <= room  # the vector ends in this word
        vec_end = Mux(by_word, fits, e == c.length_minus_1)
        hi_lane = Mux(fits, a_lane + left, sp.size - 1)[:max(L, 1)]  # (read by range only)
        last = vec_end & (vb == c.batch_minus_1)
        with m.If(go):
            with m.If(pre):
                m.d.sync += phase.eq(1)
            with m.Else():
                m.d.sync += phase.eq(0)
                with m.If(vec_end):
                    m.d.sync += [e.eq(0), vb.eq(vb + 1),
                                 *(rows[r].eq(rows[r] + getattr(c, f"{r}_stride"))
                                   for r in "abd")]
                    with m.If(vb == c.batch_minus_1):
                        m.d.sync += ctl.issuing.eq(0)
                with m.Else():
                    m.d.sync += e.eq(e + Mux(by_word, room + 1, 1))
                with m.If(ctl.is_op("loss")):
                    m.d.sync += ctl.loss_wait.eq(1)

        # ---- stage 1: read data arrives; pick the lanes ----
        s1_valid, s1_pre, s1_last = Signal(), Signal(), Signal()
        s1_la, s1_lb, s1_dl = (Signal.like(a_lane), Signal.like(b_lane), Signal.like(d_lane))
        s1_ha = Signal.like(a_lane)
        s1_da = Signal(aw)
        m.d.sync += [s1_valid.eq(el), s1_pre.eq(go & pre), s1_last.eq(last), s1_la.eq(a_lane),
                     s1_ha.eq(hi_lane), s1_lb.eq(b_lane), s1_dl.eq(d_lane), s1_da.eq(d_word)]
        a_val = self._lane(self.a_rd.data, s1_la)
        b_val = self._lane(self.b_rd.data, s1_lb)
        done_val = self._lane(self.b_rd.data, (s1_lb + 1)[:L] if L else 0)
        r_hold = Signal(signed(W))
        with m.If(s1_pre):
            m.d.sync += r_hold.eq(b_val[:W])
        return (_Element(s1_valid, s1_last, s1_da, s1_dl), a_val, b_val, done_val, r_hold,
                (s1_la, s1_ha))

    def _word_range(self, m: Module, lanes: tuple[Signal, Signal]) -> tuple[Signal, Signal]:
        """The least and the greatest of ``A``'s lanes ``lanes[0] .. lanes[1]`` (of the word
        read in stage 1), registered in stage 3 like the element they belong to.

        Stage 2 registers the word's lanes and which of them are in the span; lanes outside
        it take the identity of each side (the largest lane value for the minimum, the
        smallest for the maximum), and a tree of compares reduces the word, its first half of
        levels in stage 2p, the rest in stage 2b (at most three compares deep a stage up to
        64 lanes); stage 3 registers the result.
        """
        sp = self._spec
        S, ww = sp.size, sp.word_width
        first, final = lanes
        top, bottom = (1 << (ww - 1)) - 1, -(1 << (ww - 1))
        # stage 2: the word's lanes and which of them are inside, registered once
        lanes_q = [Signal(signed(ww), name=f"range_lane_{k}") for k in range(S)]
        inside_q = Signal(S, name="range_inside")
        for k in range(S):
            # (no compare whose outcome the lane number already fixes: lint-clean Verilog)
            inside = Const(1)
            if k < S - 1:
                inside &= first <= k
            if k > 0:
                inside &= k <= final
            m.d.sync += [lanes_q[k].eq(self._lane(self.a_rd.data, k).as_signed()),
                         inside_q[k].eq(inside)]
        lo_level = [Mux(inside_q[k], lanes_q[k], top) for k in range(S)]
        hi_level = [Mux(inside_q[k], lanes_q[k], bottom) for k in range(S)]

        def reduce(level: list[Value], pick_lo: bool) -> list[Value]:
            out = []
            for a, b in zip(level[::2], level[1::2], strict=True):
                out.append(Mux(a < b, a, b) if pick_lo else Mux(a > b, a, b))
            return out

        levels = (S - 1).bit_length()
        for stage, count in (("2p", (levels + 1) // 2), ("2b", levels // 2), ("3", 0)):
            for _ in range(count):
                lo_level, hi_level = reduce(lo_level, True), reduce(hi_level, False)
            regs_lo = [Signal(signed(ww), name=f"range_lo{stage}_{i}")
                       for i in range(len(lo_level))]
            regs_hi = [Signal(signed(ww), name=f"range_hi{stage}_{i}")
                       for i in range(len(hi_level))]
            m.d.sync += [r.eq(v) for r, v in zip(regs_lo + regs_hi, lo_level + hi_level,
                                                 strict=True)]
            lo_level, hi_level = regs_lo, regs_hi
        (word_lo,), (word_hi,) = lo_level, hi_level
        return word_lo, word_hi

    def _operands(self, m: Module, ctl: "_Control", s1: "_Element", a_val: Value,
                  b_val: Value, done_val: Value, r_hold: Signal
                  ) -> tuple["_Element", Signal, Signal, Signal, Signal, Signal, Signal]:
        """Stages 2 and 2p. Stage 2 registers the element, the lanes picked from the read
        data (``A``, ``B``, ``R``, ``done``), so that no multiplier follows the memory's read
        data and the lane multiplexer in one cycle. Stage 2p registers them again with the
        square of ``B``'s activation lane and ``A``'s times ``gamma`` (the products and
        shifts after it read them, see :meth:`_products`: they start from a multiplier's
        registered output rather than running through it)."""
        sp = self._spec
        aw, W = sp.addr_width, sp.act_fmt.width

        def element(name: str) -> tuple[Signal, ...]:
            return (Signal(name=f"{name}_valid"), Signal(name=f"{name}_last"),
                    Signal(name=f"{name}_done"), Signal(signed(sp.word_width), name=f"{name}_a"),
                    Signal(signed(sp.word_width), name=f"{name}_b"),
                    Signal(signed(W), name=f"{name}_r"), Signal(aw, name=f"{name}_da"),
                    Signal.like(s1.lane, name=f"{name}_dl"))

        # ---- stage 2: the picked lanes ----
        o_valid, o_last, o_done, o_a, o_b, o_r, o_da, o_dl = element("op")
        m.d.sync += o_valid.eq(s1.valid)
        with m.If(s1.valid):
            m.d.sync += [o_a.eq(a_val), o_b.eq(b_val),
                         o_r.eq(Mux(ctl.straddle, r_hold, b_val[:W].as_signed())),
                         o_done.eq(done_val[:W] != 0), o_last.eq(s1.last), o_da.eq(s1.addr),
                         o_dl.eq(s1.lane)]
        # ---- stage 2p: the products ----
        x_valid, x_last, x_done, x_a, x_b, x_r, x_da, x_dl = element("x")
        a_act, b_act = o_a[:W].as_signed(), o_b[:W].as_signed()
        x_sq = Signal((b_act * b_act).shape())
        x_disc = Signal((a_act * self.gamma).shape())
        m.d.sync += x_valid.eq(o_valid)
        with m.If(o_valid):
            m.d.sync += [x_a.eq(o_a), x_b.eq(o_b), x_sq.eq(b_act * b_act),
                         x_disc.eq(a_act * self.gamma), x_r.eq(o_r), x_done.eq(o_done),
                         x_last.eq(o_last), x_da.eq(o_da), x_dl.eq(o_dl)]
        return _Element(x_valid, x_last, x_da, x_dl), x_a, x_b, x_r, x_done, x_sq, x_disc

    def _noise(self, m: Module, ctl: "_Control", x_valid: Signal) -> "_Requant":
        """The noise sample of the element in stage 2, in ``fmt(a)`` codes, aligned (its
        rounding and saturation follow in the next stage).

        The sums of the next two samples are computed ahead (a two-entry queue filled from the
        generator state ``gstate``), and the head's product with sigma is a register, so stage
        2 only shifts and rounds it. The queue is a shift register: a new sum always enters
        ``second`` and moves on to ``head`` (no multiplexer after the generator's adder tree).
        After a reset or a seed the queue fills in two cycles and the product follows in the
        third; no element reaches stage 2 sooner than three cycles after its command's
        transfer, which comes no earlier than the seeded state (commands wait for it, see
        :meth:`_accept`). ``pop`` therefore always finds two sums.
        """
        sp = self._spec
        act, NW, c = sp.act_fmt, sp.narrow_width, ctl.c
        gstate = Signal(32, init=seed_state(0))
        g_next, g_sum = gaussian_sum(m, gstate)
        head, second = Signal(g_sum.shape(), name="noise_head"), Signal(g_sum.shape())
        queued = Signal(range(3))
        n_prod = Signal((head * self.sigma).shape())
        pop = x_valid & ctl.is_op("noise")
        with m.If(ctl.reseed):
            m.d.sync += [gstate.eq(ctl.seed_state), queued.eq(0)]
        with m.Elif(pop):
            m.d.sync += [head.eq(second), second.eq(g_sum), gstate.eq(g_next),
                         n_prod.eq(second * self.sigma)]
        with m.Else():
            # the head's product; while the queue fills, that of the sum moving into it
            m.d.sync += n_prod.eq(Mux(queued == 1, second, head) * self.sigma)
            with m.If(queued == 0):
                m.d.sync += [second.eq(g_sum), gstate.eq(g_next), queued.eq(1)]
            with m.Elif(queued == 1):
                m.d.sync += [head.eq(second), second.eq(g_sum), gstate.eq(g_next),
                             queued.eq(2)]
        return _Requant(align_runtime(n_prod, act.frac - c.a_frac, 16 + SIGMA_FRAC - act.frac,
                                      16 + SIGMA_FRAC),
                        16 + SIGMA_FRAC, act.width, "floor", c.a_narrow, NW)

    def _products(self, m: Module, ctl: "_Control", x_a: Signal, x_sq: Signal,
                  x_disc: Signal) -> tuple["_Requant", Value, "_Requant"]:
        """Stage 2's products and barrel shifts: the result of ``convert`` and the tanh
        derivative of ``tanh_delta``, aligned (rounded and saturated in the next stage), and
        the discounted ``A`` of ``target``."""
        sp = self._spec
        act, deriv = sp.act_fmt, sp.deriv_fmt
        W, NW = act.width, sp.narrow_width
        c = ctl.c
        a_act = x_a[:W].as_signed()

        # convert: floor, saturate to fmt(d)
        conv = _Requant(align_runtime(a_act, c.a_frac + act.frac - c.d_frac, -act.frac,
                                      act.frac),
                        act.frac, W, "floor", c.d_narrow, NW)
        # target: mul_shift(A, gamma), half even
        disc = shift_round(x_disc, 16, "half_even")
        # tanh_delta: g = 1 - y**2 for y in fmt(b), as deriv_fmt codes
        f2 = Cat(Const(0, 1), c.b_frac)
        one_minus = Signal(range_shape(-(1 << 2 * W - 2), 1 << 2 * act.frac))
        m.d.comb += one_minus.eq((Const(1, 1) << f2) - x_sq)
        g = _Requant(align_runtime(one_minus, f2, -deriv.frac, 2 * act.frac - deriv.frac),
                     2 * act.frac - deriv.frac, deriv.width, sp.rounding)
        return conv, disc, g

    def _rounding(self, m: Module, x: "_Element", x_a: Signal, x_r: Signal, x_done: Signal,
                  aligned: tuple["_Requant", Value, "_Requant"], n_aligned: "_Requant"
                  ) -> tuple["_Element", Signal, Signal, Signal, Value, Signal, Value, Value]:
        """Stage 2b: the element, its operands and the barrel shifters' outputs registered;
        the shifted values rounded and saturated (:func:`shift_round`, :func:`saturate`: the
        two halves of :func:`requantize_runtime`). Returns the element and ``A``, ``R`` and
        ``done`` of this stage, and the results of ``convert``, the discounted ``A``, the tanh
        derivative and the noise code."""
        conv, disc, g = aligned
        w_valid, w_last, w_done = Signal(), Signal(), Signal()
        w_da, w_dl = Signal.like(x.addr), Signal.like(x.lane)
        w_a, w_r = Signal.like(x_a), Signal.like(x_r)
        w_disc = Signal.like(disc)
        m.d.sync += w_valid.eq(x.valid)
        with m.If(x.valid):
            m.d.sync += [w_last.eq(x.last), w_da.eq(x.addr), w_dl.eq(x.lane),
                         w_done.eq(x_done), w_a.eq(x_a), w_r.eq(x_r), w_disc.eq(disc)]
        done = [rq.finish(m, x.valid, name) for rq, name in ((conv, "conv"), (g, "deriv"),
                                                               (n_aligned, "noise"))]
        return (_Element(w_valid, w_last, w_da, w_dl), w_a, w_r, w_done, done[0], w_disc,
                done[1], done[2])

    def _results(self, m: Module, ctl: "_Control", x: "_Element", x_a: Signal, x_r: Signal,
                 x_done: Signal, conv: Value, disc: Value, g: Value, n_code: Value
                 ) -> tuple[Signal, "_Element", Signal, Value]:
        """Stage 3's registers (from stage 2b's element and operands, ``x`` and ``x_*`` here),
        the sums and clips of ``target`` and ``noise`` from them, stage 3b's registers (the
        results of ``convert``, ``target`` and ``noise``, and ``tanh_delta``'s product), and
        that product's rounding. Returns whether stage 3 holds an element (``range`` updates
        its register then: :meth:`_word_range`), the stage-3b element, its result (``convert``,
        ``target``, ``noise``) and the result of ``tanh_delta``."""
        sp = self._spec
        aw = sp.addr_width
        delta, deriv = sp.delta_fmt, sp.deriv_fmt
        W, NW = sp.act_fmt.width, sp.narrow_width
        codes, c = OP_CODES, ctl.c
        a_act = x_a[:W].as_signed()
        a_delta = x_a[:delta.width].as_signed()

        # ---- stage 3: the operands of the sums, clips and the final rounding ----
        z_valid, z_last, z_done = Signal(), Signal(), Signal()
        z_da, z_dl = Signal(aw), Signal.like(x.lane)
        z_p = Signal(signed(sp.word_width))  # the main operand or result
        z_q = Signal(signed(max(W + 2, deriv.width)))  # the second one
        m.d.sync += z_valid.eq(x.valid & ~ctl.is_op("loss"))
        with m.If(x.valid):
            m.d.sync += [z_last.eq(x.last), z_da.eq(x.addr), z_dl.eq(x.lane), z_done.eq(x_done)]
            with m.Switch(c.op):
                with m.Case(codes["convert"]):
                    m.d.sync += z_p.eq(conv)
                with m.Case(codes["target"]):
                    m.d.sync += [z_p.eq(x_r), z_q.eq(disc)]
                with m.Case(codes["tanh_delta"]):
                    m.d.sync += [z_p.eq(a_delta), z_q.eq(g)]
                with m.Case(codes["noise"]):
                    m.d.sync += [z_p.eq(a_act), z_q.eq(n_code)]
        # target: sat(R + (1 - done) * mul_shift(A, gamma))
        target = requantize(z_p[:W].as_signed() + Mux(z_done, 0, z_q), 0, FixedFormat(W, 0),
                            "floor", "saturate")
        # noise: clip(A + noise, -one, one), one = min(2**frac, max_int)
        pow_f = Const(1, 1) << c.a_frac
        one = Mux(c.a_narrow,
                  Mux(c.a_frac >= NW - 1, (1 << (NW - 1)) - 1, pow_f),
                  Mux(c.a_frac >= W - 1, (1 << (W - 1)) - 1, pow_f))
        raw = z_p[:W].as_signed() + z_q[:W].as_signed()
        noisy = Mux(raw > one, one, Mux(raw < -one, -one, raw))
        # ---- stage 3b: the results of convert, target and noise, and tanh_delta's product
        # (rounded and saturated after it) ----
        t_valid, t_last = Signal(), Signal()
        t_da, t_dl = Signal(aw), Signal.like(x.lane)
        t_res = Signal.like(z_p)
        t_prod = Signal((z_p[:delta.width].as_signed() * z_q[:deriv.width].as_signed()).shape())
        m.d.sync += t_valid.eq(z_valid)
        with m.If(z_valid):
            m.d.sync += [t_last.eq(z_last), t_da.eq(z_da), t_dl.eq(z_dl),
                         t_res.eq(Mux(ctl.is_op("target"), target,
                                      Mux(ctl.is_op("noise"), noisy, z_p))),
                         t_prod.eq(z_p[:delta.width].as_signed() * z_q[:deriv.width].as_signed())]
        # tanh_delta: A * g
        tanh_d = requantize(t_prod, delta.frac + deriv.frac, delta, sp.rounding, "saturate")
        return z_valid, _Element(t_valid, t_last, t_da, t_dl), t_res, tanh_d

    def _divider(self, m: Module, ctl: "_Control", x_valid: Signal, x_a: Signal,
                 x_b: Signal) -> tuple[Value, Value]:
        """Loss and fill: ``floor((2n + d) / 2d)`` by restoring division, ``K`` quotient bits.
        Returns whether the division ends this cycle, and its saturated quotient."""
        sp = self._spec
        act, delta = sp.act_fmt, sp.delta_fmt
        W, K = act.width, sp.div_steps
        c, fill_start = ctl.c, ctl.fill_start
        a_act, b_act = x_a[:W].as_signed(), x_b[:W].as_signed()
        up, down = max(delta.frac - act.frac, 0), max(act.frac - delta.frac, 0)
        d_max = sp.max_batch << down
        n_lo = min(2 * (act.min_int - act.max_int) << up, -(1 << delta.frac))
        n_hi = 2 * (act.max_int - act.min_int) << up
        num = Signal(range_shape(2 * n_lo + 1, 2 * n_hi + d_max))
        den = Signal(range(2 * d_max + 1))
        batch = c.batch_minus_1 + 1
        m.d.comb += [
            num.eq(Mux(fill_start, -(2 << delta.frac) + batch,
                       ((a_act - b_act) << (up + 2)) + (batch << down))),
            den.eq(Mux(fill_start, batch << 1, batch << (down + 1))),
        ]
        rem = Signal(max(2 * n_hi + d_max, -2 * n_lo).bit_length())
        dsh = Signal(len(den) + K)
        q = Signal(K)
        cnt = Signal(range(K + 1))
        neg, ovf, running = Signal(), Signal(), Signal()
        mag = Mux(num < 0, ~num, num)
        with m.If(fill_start | (x_valid & ctl.is_op("loss"))):
            m.d.sync += [rem.eq(mag), dsh.eq(den << (K - 1)), q.eq(0), neg.eq(num < 0),
                         ovf.eq(mag >= (den << K)), cnt.eq(K), running.eq(1)]
        with m.If(fill_start):
            m.d.sync += fill_start.eq(0)
        ge = rem >= dsh
        q_next = Cat(ge, q[:K - 1])
        with m.If(running):
            m.d.sync += [rem.eq(Mux(ge, rem - dsh, rem)), q.eq(q_next), dsh.eq(dsh >> 1),
                         cnt.eq(cnt - 1)]
            with m.If(cnt == 1):
                m.d.sync += running.eq(0)
        div_done = running & (cnt == 1)
        u = Cat(q_next, Const(0, 1)).as_signed()
        quotient = Mux(ovf, Mux(neg, delta.min_int, delta.max_int), Mux(neg, ~u, u))
        return div_done, quotient

    def _write(self, m: Module, ctl: "_Control", x: "_Element", z: "_Element", z_res: Signal,
               tanh_d: Value, div_done: Value, quotient: Value, z3_valid: Signal,
               word_lo: Signal, word_hi: Signal) -> None:
        """Stage 4: the write of a result, and the end of the command; the range update from
        stage 3 (``z3_valid``, with the word's least and greatest lanes ``word_lo`` and
        ``word_hi`` of :meth:`_word_range`)."""
        sp = self._spec
        S, aw = sp.size, sp.addr_width
        codes, c = OP_CODES, ctl.c
        fill_val = Signal(signed(sp.delta_fmt.width))

        y_wr, y_rng, y_last = Signal(), Signal(), Signal()
        y_addr, y_lane = Signal(aw), Signal.like(x.lane)
        y_data = Signal(signed(sp.word_width))
        m.d.sync += [y_wr.eq(0), y_rng.eq(0)]
        with m.If(z.valid):
            m.d.sync += [y_wr.eq(~ctl.is_op("range")), y_rng.eq(ctl.is_op("range")),
                         y_last.eq(z.last), y_addr.eq(z.addr), y_lane.eq(z.lane)]
            with m.Switch(c.op):
                with m.Case(codes["convert"], codes["target"], codes["noise"]):
                    m.d.sync += y_data.eq(z_res)
                with m.Case(codes["fill"]):
                    m.d.sync += y_data.eq(fill_val)
                with m.Case(codes["tanh_delta"]):
                    m.d.sync += y_data.eq(tanh_d)
        with m.If(div_done):
            with m.If(ctl.is_op("fill")):
                m.d.sync += [fill_val.eq(quotient), ctl.issuing.eq(1)]
            with m.Else():
                m.d.sync += [y_wr.eq(1), y_last.eq(x.last), y_addr.eq(x.addr),
                             y_lane.eq(x.lane), y_data.eq(quotient), ctl.loss_wait.eq(0)]

        m.d.comb += [
            self.d_wr.addr.eq(y_addr),
            self.d_wr.en.eq(Mux(y_wr, Const(1, S) << y_lane, 0)),
            *(self.d_wr.data[k].eq(y_data) for k in range(S)),
        ]
        # (two cycles before the element's end in stage 4: the range is final when busy falls)
        with m.If(z3_valid & ctl.is_op("range")):
            for k in range(sp.points):
                r = self.ranges[k]
                with m.If(c.point == k):
                    m.d.sync += [
                        r.lo.eq(Mux(r.valid & (r.lo < word_lo), r.lo, word_lo)),
                        r.hi.eq(Mux(r.valid & (r.hi > word_hi), r.hi, word_hi)),
                        r.valid.eq(1),
                    ]
        with m.If((y_wr | y_rng) & y_last):
            m.d.sync += ctl.active.eq(0)

    def __repr__(self) -> str:
        return f"VectorUnit({self._spec!r})"


@dataclass(frozen=True, eq=False)
class _Control:
    """The running command and the issue state of :meth:`VectorUnit.elaborate`."""

    c: data.View           # the running command (``command_layout``)
    uses_a: Value          # the command reads ``A``
    uses_b: Value          # the command reads ``B``
    straddle: Value        # a target whose ``R`` and ``done`` are in two words
    active: Signal         # busy
    issuing: Signal        # elements left to issue
    loss_wait: Signal      # a loss element is in the divider
    fill_start: Signal     # start the fill division
    phase: Signal          # target with straddle: the R word has been read
    vb: Signal             # the element's vector
    e: Signal              # the element's index in its vector
    rows: dict[str, Signal]  # the word addresses of the current vectors of A, B and D
    reseed: Value          # the noise generator takes ``seed_state`` now
    seed_state: Value      # the first state of the last seed

    def is_op(self, name: str) -> Value:
        """Whether the running command is ``name``."""
        return self.c.op == OP_CODES[name]


@dataclass(frozen=True, eq=False)
class _Requant:
    """A run-time requantization split over two stages: the barrel shifter's output
    (:func:`~fixar_hw.arith.numeric.align_runtime`), then, from its register, the rounding of
    the constant right shift ``hi`` and the saturation (their composition is
    :func:`~fixar_hw.arith.numeric.requantize_runtime`)."""

    aligned: Value
    hi: int
    width: int
    rounding: str
    narrow: Value | None = None
    narrow_width: int | None = None

    def finish(self, m: Module, valid: Value, name: str) -> Value:
        """Register the aligned value while ``valid``; the rounded, saturated code from it."""
        reg = Signal(self.aligned.shape(), name=f"{name}_aligned")
        with m.If(valid):
            m.d.sync += reg.eq(self.aligned)
        return saturate(shift_round(reg, self.hi, self.rounding), self.width,
                        narrow=self.narrow, narrow_width=self.narrow_width)


@dataclass(frozen=True, eq=False)
class _Element:
    """An element in a pipeline stage of :meth:`VectorUnit.elaborate`, with its destination."""

    valid: Signal
    last: Signal   # the command's last element
    addr: Signal   # the word its result is written to
    lane: Signal   # the lane of that word
