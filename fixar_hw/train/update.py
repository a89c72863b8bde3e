"""On-chip optimizer: fixed-point Adam, SGD and target-network soft updates, one weight a cycle.

:class:`UpdateUnit` applies one update rule of :mod:`sw_model.numerics.optim` to a stream of
weights,
bit for bit: :func:`~sw_model.numerics.optim.adam_fixed`,
:func:`~sw_model.numerics.optim.sgd_fixed` and
:func:`~sw_model.numerics.optim.soft_update_fixed`, elementwise. Every rule is exact integer
arithmetic,
so the unit needs an exact floor square root (of Adam's second moment) and an exact floor
division (of the step by ``sqrt(v) + eps``). Amaranth's library has neither, so both are written
here as pipelines of restoring stages, one result bit per stage; everything else is the
library's and :mod:`fixar_hw.arith.numeric`'s.
"""

from dataclasses import dataclass
from types import SimpleNamespace

from amaranth.hdl import Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error
from fixar_hw.arith.numeric import check_format, range_shape, shape_of, shift_round
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.optim import BETA_FRAC, LR_EXTRA

__all__ = ["UPDATE_OPS", "UpdateCommandSet", "UpdateUnit", "update_latency"]

#: Operation codes of the ``op`` field.
UPDATE_OPS = {"adam": 0, "sgd": 1, "soft": 2}

_V_BITS = 62  # Adam's second moment: codes in [0, 2**62)
_ROOT_BITS = _V_BITS // 2  # isqrt(v) < 2**31
_V_MAX = (1 << _V_BITS) - 1  # v_format(g_fmt).max_int
# registers before the square root, between it and the divider, and after the divider
_FRONT_STAGES = 4
_MID_STAGES = 3
_BACK_STAGES = 1


def update_latency(w_fmt: FixedFormat) -> int:
    """Cycles from an element on :attr:`UpdateUnit.i` to its result on :attr:`UpdateUnit.o`,
    without stalls: ``39 + w_fmt.width`` (the number of pipeline registers).

    Raises
    ------
    TypeError
        If ``w_fmt`` is not a :class:`~sw_model.numerics.fixed.FixedFormat`.
    """
    if not isinstance(w_fmt, FixedFormat):
        raise TypeError(f"w_fmt must be a FixedFormat, not {w_fmt!r}")
    return _FRONT_STAGES + _ROOT_BITS + _MID_STAGES + w_fmt.width + _BACK_STAGES


@dataclass(frozen=True)
class UpdateCommandSet:
    """Commands of a stream of parameter words through ``units`` :class:`UpdateUnit` s in
    lockstep (the engine's :class:`~fixar_hw.train.engine.UpdateSequencer`): their encoding and
    timing, plain Python, shared by the hardware and the host.

    A command ``{op, net, lo, count}`` covers words ``lo .. lo + count - 1`` of ``lanes``
    elements each; each unit takes one element per cycle, so a word costs one read cycle and
    ``lanes / units`` element cycles.

    Parameters
    ----------
    w_fmt : FixedFormat
        The units' weight format (it sets their :func:`update_latency`).
    lanes : int
        Elements per word.
    units : int
        Update units fed in parallel (a power of two dividing ``lanes``).
    addr_width : int
        Width of the word addresses ``lo`` and of ``count``.

    Raises
    ------
    ValueError
        If ``units`` is no power of two dividing ``lanes``.
    """

    w_fmt: FixedFormat
    lanes: int
    units: int
    addr_width: int

    def __post_init__(self) -> None:
        u = self.units
        if isinstance(u, bool) or not isinstance(u, int) or u < 1 or u & (u - 1) \
                or self.lanes % u:
            raise ValueError(f"units must be a power of two dividing {self.lanes}, not {u!r}")

    @property
    def latency(self) -> int:
        """The update units' :func:`update_latency`."""
        return update_latency(self.w_fmt)

    @property
    def layout(self) -> data.StructLayout:
        """Layout of a command: ``op`` (:data:`UPDATE_OPS`), ``net`` (1: the critic), ``lo``,
        ``count``."""
        aw = self.addr_width
        return data.StructLayout({"op": 2, "net": 1, "lo": aw, "count": aw})

    def command(self, op: str, *, net: str, lo: int, count: int) -> dict:
        """The command payload (a dict for :attr:`layout`) of an ``op`` pass over words
        ``lo .. lo + count - 1`` of ``net``'s parameters (``net == "critic"`` sets ``net``).

        Raises
        ------
        ValueError
            For an ``op`` not in :data:`UPDATE_OPS`.
        """
        if op not in UPDATE_OPS:
            raise ValueError(f"update op must be one of {sorted(UPDATE_OPS)}, not {op!r}")
        return {"op": UPDATE_OPS[op], "net": int(net == "critic"), "lo": lo, "count": count}

    def cycles(self, count: int) -> int:
        """Cycles a command over ``count`` words keeps the sequencer busy, without stalls:
        ``count * (lanes / units + 1) + latency + 1``."""
        return count * (self.lanes // self.units + 1) + self.latency + 1


def _clamp(v: Value, lo: int, hi: int) -> Value:
    return Mux(v < lo, lo, Mux(v > hi, hi, v))


class UpdateUnit(wiring.Component):
    """Fixed-point Adam, SGD or soft update of one weight per cycle
    (:mod:`sw_model.numerics.optim`).

    Each element on :attr:`i` names its rule in ``op`` (:data:`UPDATE_OPS`) and leaves on
    :attr:`o` as:

    ``adam``
        ``(w, m, v) <- adam_fixed(w, g=x, m, v)`` elementwise, with the step size code
        ``lr = consts.lr_at(t)`` (``w_fmt.frac + LR_EXTRA`` fraction bits), ``c1``, ``c2`` the
        beta codes and ``eps`` the epsilon code (at least 1) of a
        :class:`~sw_model.numerics.optim.FixedAdamConstants`. ``x`` holds a ``g_fmt`` code, ``m`` a
        ``g_fmt`` code and ``v`` a :func:`~sw_model.numerics.optim.v_format` code in ``[0, 2**62)``.
    ``sgd``
        ``w <- sgd_fixed(w, g=x, lr_q=lr)``; ``m`` and ``v`` pass through.
    ``soft``
        ``w <- soft_update_fixed(target=w, w=x, tau_q=tau)``: ``w`` is the target network's
        weight, ``x`` the online network's (both ``w_fmt``); ``m`` and ``v`` pass through.

    Op code 3 is reserved (the element passes through unchanged). ``c1``, ``c2`` and ``tau``
    are at most ``2**16``. Rounding and saturation are those of the golden model: the moving
    averages round half to even, the SGD and Adam steps half up (Adam's through an exact
    floor division), and every result saturates to its format.

    Timing: fully pipelined, one element per cycle in and out, outputs in input order.
    An element presented on :attr:`i` in cycle ``c`` (and accepted at that cycle's clock edge)
    is valid on :attr:`o` in cycle ``c + latency`` unless the pipeline stalls, so ``n``
    elements back to back take ``n + latency`` cycles. ``latency = 39 + w_fmt.width``
    registers: 4 of products and moving averages, 31 of the square root, 3 forming the
    quotient's numerator and overflow test, ``w_fmt.width`` of the division, the output.
    The pipeline has one global stall: while :attr:`o` is valid and not ready, nothing moves
    and :attr:`i` is not ready; :attr:`o` keeps the valid/ready rules of
    :mod:`amaranth.lib.stream`. The constant inputs (``lr``, ``c1``, ``c2``, ``eps``, ``tau``)
    are sampled at the clock edge that accepts an element, and those needed later travel down
    the pipeline with it; they may change between elements (e.g. ``lr`` between Adam's
    ``lr_t`` and SGD's ``lr_q``).

    Resources: four multipliers (``(x - m) * c1`` shared with the soft update's
    ``(x - w) * tau``; ``x * x``; ``(x**2 - v) * c2``, 63 x 17 bits; ``lr * m`` shared with
    SGD's ``lr * x``, ``lr_width x 32`` bits), 31 square-root stages of at most 35-bit
    subtract-compare, ``w_fmt.width`` divider stages of ``33 + w_fmt.width``-bit
    subtract-compare, and about 300 flip-flops per stage at 32-bit formats (every stage
    carries ``op``, ``w``, ``m``, ``v``; the square-root stages also the step product and
    ``eps``), about 21k in all for ``w_fmt.width = 32`` and ``lr_width = 48``.

    Parameters
    ----------
    w_fmt : FixedFormat
        Signed weight format, at most 32 bits.
    g_fmt : FixedFormat
        Signed gradient (and first-moment) format, at most 32 bits.
    lr_width : int
        Width of the step-size code, 1 to 62.

    Members
    -------
    i : In(stream.Signature(StructLayout({"op", "w", "x", "m", "v"})))
        ``op`` (2 bits), ``w`` (``w_fmt``), ``x`` (gradient or online weight, signed
        ``max(w_fmt.width, g_fmt.width)`` bits), ``m`` (``g_fmt``), ``v`` (unsigned 63 bits).
    lr : In(unsigned(lr_width))
        Adam's bias-corrected step size ``lr_t`` or SGD's ``lr_q``.
    c1, c2 : In(unsigned(17))
        ``round((1 - beta1) * 2**16)``, ``round((1 - beta2) * 2**16)``.
    eps : In(unsigned(g_fmt.width))
        ``eps_q``, at least 1.
    tau : In(unsigned(17))
        ``round(tau * 2**16)``.
    o : Out(stream.Signature(StructLayout({"w", "m", "v"})))
        The updated weight and moments.
    """

    @silence_on_error
    def __init__(self, w_fmt: FixedFormat, g_fmt: FixedFormat, *, lr_width: int = 48) -> None:
        self._w_fmt = check_format(w_fmt, "w_fmt")
        self._g_fmt = check_format(g_fmt, "g_fmt")
        for name, fmt in (("w_fmt", w_fmt), ("g_fmt", g_fmt)):
            if not fmt.signed or fmt.width > 32:
                raise ValueError(f"{name} must be signed and at most 32 bits wide, not {fmt!r}")
        if isinstance(lr_width, bool) or not isinstance(lr_width, int):
            raise TypeError(f"lr_width must be an integer, not {lr_width!r}")
        if not 1 <= lr_width <= 62:
            raise ValueError(f"lr_width must be from 1 to 62, not {lr_width!r}")
        self._lr_width = lr_width
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "lr": In(unsigned(lr_width)),
            "c1": In(unsigned(17)),
            "c2": In(unsigned(17)),
            "eps": In(unsigned(g_fmt.width)),
            "tau": In(unsigned(17)),
            "o": Out(stream.Signature(self.output_layout)),
        })

    @property
    def w_fmt(self) -> FixedFormat:
        """Weight format."""
        return self._w_fmt

    @property
    def g_fmt(self) -> FixedFormat:
        """Gradient and first-moment format."""
        return self._g_fmt

    @property
    def lr_width(self) -> int:
        """Width of the step-size code."""
        return self._lr_width

    @property
    def latency(self) -> int:
        """Cycles from an element on :attr:`i` to its result on :attr:`o`, without stalls:
        ``39 + w_fmt.width`` (the number of pipeline registers)."""
        return update_latency(self._w_fmt)

    @property
    def input_layout(self) -> data.StructLayout:
        """Layout of :attr:`i`'s payload."""
        return data.StructLayout({
            "op": 2,
            "w": shape_of(self._w_fmt),
            "x": signed(max(self._w_fmt.width, self._g_fmt.width)),
            "m": shape_of(self._g_fmt),
            "v": unsigned(63),
        })

    @property
    def output_layout(self) -> data.StructLayout:
        """Layout of :attr:`o`'s payload."""
        return data.StructLayout({
            "w": shape_of(self._w_fmt),
            "m": shape_of(self._g_fmt),
            "v": unsigned(63),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        wf, gf = self._w_fmt, self._g_fmt
        W = wf.width
        go = Signal()  # the whole pipeline moves, or nothing does
        m.d.comb += [go.eq(~self.o.valid | self.o.ready), self.i.ready.eq(go)]
        valids = []

        def stage(prev, **values):
            """Register ``prev``'s fields, replaced, added or (``None``) dropped by ``values``,
            when ``go``."""
            n = len(valids)
            fields = dict(vars(prev))
            fields.update(values)
            fields = {k: v for k, v in fields.items() if v is not None}
            valid = Signal(name=f"s{n}_valid")
            with m.If(go):
                m.d.sync += valid.eq(fields.pop("valid"))
            out = {"valid": valid}
            for name, value in fields.items():
                shape = None
                if isinstance(value, tuple):
                    value, shape = value
                value = Value.cast(value)
                reg = Signal(shape or value.shape(), name=f"s{n}_{name}")
                with m.If(go):
                    m.d.sync += reg.eq(value)
                out[name] = reg
            valids.append(valid)
            return SimpleNamespace(**out)

        i = self.i.payload
        op = i.op
        is_soft = op == UPDATE_OPS["soft"]
        g_min, g_max = gf.min_int, gf.max_int
        ema_lo, ema_hi = min(g_min, wf.min_int), max(g_max, wf.max_int)

        # 1: products of the moving averages (m, or the soft update's target) and g * g
        base = Mux(is_soft, i.w, i.m)
        p = stage(SimpleNamespace(valid=self.i.valid),
                  op=op, w=i.w, x=i.x, m=i.m, v=i.v, lr=self.lr, c2=self.c2, eps=self.eps,
                  base=(base, range_shape(ema_lo, ema_hi)),
                  ema_prod=(i.x - base) * Mux(is_soft, self.tau, self.c1),
                  sq=i.x * i.x)
        adam, sgd, soft = (p.op == UPDATE_OPS[k] for k in ("adam", "sgd", "soft"))

        # 2: the moving average of m or of the target (mul_shift rounds half to even)
        ema = p.base + shift_round(p.ema_prod, BETA_FRAC, "half_even")
        ema = Mux(soft, _clamp(ema, wf.min_int, wf.max_int), _clamp(ema, g_min, g_max))
        g2 = Mux(p.sq > _V_MAX, _V_MAX, p.sq)
        p = stage(p, base=None, ema_prod=None, sq=None, c2=None,
                  ema=(ema, range_shape(ema_lo, ema_hi)),
                  v_prod=(g2 - p.v) * p.c2)
        adam, sgd, soft = (p.op == UPDATE_OPS[k] for k in ("adam", "sgd", "soft"))

        # 3: the moving average of v; the step's product lr * m (Adam) or lr * g (SGD)
        v_new = _clamp(p.v + shift_round(p.v_prod, BETA_FRAC, "half_even"), 0, _V_MAX)
        p = stage(p, v_prod=None, ema=None, x=None, lr=None,
                  v=(Mux(adam, v_new, p.v), unsigned(63)),
                  w_out=(Mux(soft, p.ema, p.w), shape_of(wf)),
                  m=(Mux(adam, p.ema, p.m), shape_of(gf)),
                  step=p.lr * Mux(sgd, p.x, p.ema))
        adam, sgd, soft = (p.op == UPDATE_OPS[k] for k in ("adam", "sgd", "soft"))

        # 4: SGD's result, round half up of lr * g / 2**(g_fmt.frac + LR_EXTRA)
        u_sgd = shift_round(p.step, gf.frac + LR_EXTRA, "half_up")
        p = stage(p, w_out=(Mux(sgd, _clamp(p.w - u_sgd, wf.min_int, wf.max_int), p.w_out),
                            shape_of(wf)))

        # 5 .. 35: s = isqrt(v), restoring, one root bit per stage from the top; after the
        # stage that makes the root k + 1 bits long, rem = v[top bits] - root**2 <= 2 * root
        # fits k + 2 bits
        root, rem = Const(0, 1), Const(0, 1)
        for k in range(_ROOT_BITS):
            b = _ROOT_BITS - 1 - k
            acc = (rem << 2) | p.v[2 * b: 2 * b + 2]
            trial = (root << 2) | 1
            fits = acc >= trial
            p = stage(p, root=(Mux(fits, (root << 1) | 1, root << 1), unsigned(k + 1)),
                      rem=(Mux(fits, acc - trial, acc), unsigned(min(k + 2, _ROOT_BITS + 2))))
            root, rem = p.root, p.rem
        self._obs = {"valids": valids, "root_valid": p.valid, "root_v": p.v, "root": p.root}

        # 36: the divisor d = isqrt(v) + eps >= 1
        d_max = (1 << _ROOT_BITS) - 1 + (1 << gf.width) - 1
        p = stage(p, root=None, rem=None, eps=None,
                  d=(p.root + p.eps, unsigned(d_max.bit_length())))
        # 37: u = floor((2 * lr * m + D) / (2 * D)) with D = d << LR_EXTRA is
        # floor(n / d) with n = floor((lr * m + (d << (LR_EXTRA - 1))) / 2**LR_EXTRA)
        n = (p.step + (p.d << (LR_EXTRA - 1))) >> LR_EXTRA
        p = stage(p, step=None, n=n)
        self._obs.update(n_valid=p.valid, n=p.n, d=p.d)
        # 38: floor(n / d) = ~floor(~n / d) for n < 0, so the divider sees a = n or ~n >= 0.
        # Only |u| < 2**W matters: w - u saturates for every u >= 2**W (to min_int) and every
        # u <= -2**W (to max_int). So the quotient q = floor(a / d) is clamped to 2**W (hence
        # u to [-2**W - 1, 2**W], which saturates alike) when a >= d << W, and otherwise has
        # W bits, found by W restoring stages.
        neg = p.n[-1]
        a = Mux(neg, ~p.n, p.n).as_unsigned()
        rem_bits = d_max.bit_length() + W
        p = stage(p, n=None, neg=neg, over=a >= (p.d << W), rem=(a, unsigned(rem_bits)),
                  q=Const(0, 1))
        # 39 .. 38 + W: one quotient bit per stage, most significant first
        for k in range(W):
            b = W - 1 - k
            fits = p.rem >= (p.d << b)
            p = stage(p, rem=(Mux(fits, p.rem - (p.d << b), p.rem), unsigned(rem_bits)),
                      q=((p.q << 1) | fits, unsigned(k + 1)))
        adam = p.op == UPDATE_OPS["adam"]
        q = Mux(p.over, 1 << W, p.q)
        u = Mux(p.neg, -1 - q, q)
        self._obs.update(u_valid=p.valid, u=u)
        w_adam = _clamp(p.w - u, wf.min_int, wf.max_int)

        # 39 + W: the output register
        with m.If(go):
            m.d.sync += [
                self.o.valid.eq(p.valid),
                self.o.payload.w.eq(Mux(adam, w_adam, p.w_out)),
                self.o.payload.m.eq(p.m),
                self.o.payload.v.eq(p.v),
            ]
        valids.append(self.o.valid)
        if len(valids) != self.latency:  # the documented latency is the built one
            raise RuntimeError(f"UpdateUnit built {len(valids)} stages, not {self.latency}")
        return m

    def __repr__(self) -> str:
        return f"UpdateUnit({self._w_fmt!r}, {self._g_fmt!r}, lr_width={self._lr_width})"
