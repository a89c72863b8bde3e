"""On-chip optimizer: fixed-point Adam, SGD and target-network soft updates.

Two units apply one update rule of :mod:`sw_model.numerics.optim` to a stream of weights, bit
for bit: :func:`~sw_model.numerics.optim.adam_fixed`, :func:`~sw_model.numerics.optim.sgd_fixed`
and :func:`~sw_model.numerics.optim.soft_update_fixed`, elementwise.

* :class:`UpdateUnit` is fully pipelined: one element per cycle, ``39 + w_fmt.width`` stages,
  about 300 flip-flops a stage at 32-bit formats. For large arrays, whose update pass must keep
  up with many PEs.
* :class:`IterativeUpdateUnit` holds one element at a time and reuses one set of registers for
  every step: its square root and divider find ``bits`` result bits a cycle. An Adam element
  takes ``9 + ceil(31 / bits) + ceil(w_fmt.width / bits)`` cycles, an SGD or soft update 5, in
  600 to 800 flip-flops. For small arrays, where the update pass is a small part of the step.

Every rule is exact integer arithmetic, so both units need an exact floor square root (of Adam's
second moment) and an exact floor division (of the step by ``sqrt(v) + eps``). Amaranth's
library has neither, so both are written here as restoring steps, one result bit each; the
steps and the rest of the arithmetic are shared by the two units, everything else is the
library's and :mod:`fixar_hw.arith.numeric`'s.
"""

from dataclasses import dataclass
from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import check_bool, observe, silence_on_error
from fixar_hw.arith.numeric import check_format, range_shape, shape_of, shift_round
from sw_model.arch.engine import UPDATE_BITS, UPDATE_KINDS
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.optim import BETA_FRAC, LR_EXTRA

__all__ = ["UPDATE_OPS", "IterativeUpdateUnit", "UpdateCommandSet", "UpdateUnit",
           "update_latency"]

#: Operation codes of the ``op`` field.
UPDATE_OPS = {"adam": 0, "sgd": 1, "soft": 2}

_V_BITS = 62  # Adam's second moment: codes in [0, 2**62)
_ROOT_BITS = _V_BITS // 2  # isqrt(v) < 2**31
_V_MAX = (1 << _V_BITS) - 1  # v_format(g_fmt).max_int
# registers before the square root, between it and the divider, and after the divider
_FRONT_STAGES = 4
_MID_STAGES = 3
_BACK_STAGES = 1
# the iterative unit's cycles after the one that accepts an element, before the square root
_ITER_FRONT = 4


def _check_kind(kind: str, bits: int) -> None:
    if kind not in UPDATE_KINDS:
        raise ValueError(f"kind must be one of {UPDATE_KINDS}, not {kind!r}")
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError(f"bits must be an integer, not {bits!r}")
    if bits not in UPDATE_BITS:
        raise ValueError(f"bits must be one of {UPDATE_BITS}, not {bits!r}")


def _root_cycles(bits: int) -> int:
    return -(-_ROOT_BITS // bits)


def update_latency(w_fmt: FixedFormat, *, kind: str = "pipelined", bits: int = 2,
                   op: str = "adam") -> int:
    """Cycles from an element on the unit's input to its result on the output, without stalls.

    ``"pipelined"`` (:class:`UpdateUnit`): ``39 + w_fmt.width`` for every ``op``; a new element
    enters every cycle. ``"iterative"`` (:class:`IterativeUpdateUnit` finding ``bits`` result
    bits a cycle): ``9 + ceil(31 / bits) + ceil(w_fmt.width / bits)`` for ``"adam"`` and 5 for
    ``"sgd"`` and ``"soft"``; the next element enters as the result leaves.

    Raises
    ------
    TypeError
        If ``w_fmt`` is not a :class:`~sw_model.numerics.fixed.FixedFormat` or ``bits`` is not
        an integer.
    ValueError
        For a ``kind`` not in :data:`sw_model.arch.engine.UPDATE_KINDS`, ``bits`` not in
        :data:`sw_model.arch.engine.UPDATE_BITS` or an ``op`` not in :data:`UPDATE_OPS`.
    """
    if not isinstance(w_fmt, FixedFormat):
        raise TypeError(f"w_fmt must be a FixedFormat, not {w_fmt!r}")
    _check_kind(kind, bits)
    if op not in UPDATE_OPS:
        raise ValueError(f"op must be one of {sorted(UPDATE_OPS)}, not {op!r}")
    if kind == "pipelined":
        return _FRONT_STAGES + _ROOT_BITS + _MID_STAGES + w_fmt.width + _BACK_STAGES
    if op != "adam":
        return _ITER_FRONT + 1
    return _ITER_FRONT + _root_cycles(bits) + _MID_STAGES + -(-w_fmt.width // bits) + 2


@dataclass(frozen=True)
class UpdateCommandSet:
    """Commands of a stream of parameter words through ``units`` update units in lockstep (the
    engine's :class:`~fixar_hw.train.engine.UpdateSequencer`): their encoding and timing, plain
    Python, shared by the hardware and the host.

    A command ``{op, net, lo, count}`` covers words ``lo .. lo + count - 1`` of ``lanes``
    elements each; each unit takes the word's elements ``u, u + units, ...`` one after another.

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
    kind : {"pipelined", "iterative"}
        :class:`UpdateUnit` or :class:`IterativeUpdateUnit`.
    bits : int
        An iterative unit's result bits a cycle (1, 2 or 4).

    Raises
    ------
    ValueError
        If ``units`` is no power of two dividing ``lanes``, or for a ``kind`` or ``bits`` that
        :func:`update_latency` refuses.
    """

    w_fmt: FixedFormat
    lanes: int
    units: int
    addr_width: int
    kind: str = "pipelined"
    bits: int = 2

    def __post_init__(self) -> None:
        u = self.units
        if isinstance(u, bool) or not isinstance(u, int) or u < 1 or u & (u - 1) \
                or self.lanes % u:
            raise ValueError(f"units must be a power of two dividing {self.lanes}, not {u!r}")
        _check_kind(self.kind, self.bits)

    @property
    def latency(self) -> int:
        """The update units' :func:`update_latency` of an Adam element (their longest)."""
        return self.element_latency("adam")

    def element_latency(self, op: str) -> int:
        """The units' :func:`update_latency` of an ``op`` element."""
        return update_latency(self.w_fmt, kind=self.kind, bits=self.bits, op=op)

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

    def cycles(self, count: int, op: str = "adam") -> int:
        """Cycles an ``op`` command over ``count`` words keeps the sequencer busy, without
        stalls.

        Pipelined units take element groups on consecutive cycles from the first word's read
        on (each next word is read with the previous word's last group): ``count * lanes /
        units + latency + 2``. Iterative units take a group every element latency ``L`` (the
        next word is read while they work): ``count * lanes / units * L + 3``.
        """
        steps = self.lanes // self.units
        if self.kind == "pipelined":
            return count * steps + self.latency + 2
        return count * steps * self.element_latency(op) + 3


def _clamp(v: Value, lo: int, hi: int) -> Value:
    return Mux(v < lo, lo, Mux(v > hi, hi, v))


# --- the arithmetic both units share ------------------------------------------------------

def _ema(base: Value, prod: Value, soft: Value, wf: FixedFormat, gf: FixedFormat) -> Value:
    """The moving average ``base + mul_shift(x - base, c)`` from ``prod = (x - base) * c``
    (half to even), saturated to the weight format (soft update) or the gradient format."""
    ema = base + shift_round(prod, BETA_FRAC, "half_even")
    return Mux(soft, _clamp(ema, wf.min_int, wf.max_int), _clamp(ema, gf.min_int, gf.max_int))


def _v_difference(sq: Value, v: Value) -> Value:
    """``min(g * g, V_MAX) - v`` from ``sq = g * g``."""
    return Mux(sq > _V_MAX, _V_MAX, sq) - v


def _v_product(sq: Value, v: Value, c2: Value) -> Value:
    """``(min(g * g, V_MAX) - v) * c2`` from ``sq = g * g`` (:func:`_v_difference`)."""
    return _v_difference(sq, v) * c2


def _v_average(v: Value, v_prod: Value) -> Value:
    """Adam's new second moment from :func:`_v_product`, saturated to ``[0, V_MAX]``."""
    return _clamp(v + shift_round(v_prod, BETA_FRAC, "half_even"), 0, _V_MAX)


def _sgd_weight(w: Value, step: Value, wf: FixedFormat, gf: FixedFormat) -> Value:
    """SGD's weight from ``step = lr * g``: ``w`` less the step rounded half up, saturated."""
    return _clamp(w - shift_round(step, gf.frac + LR_EXTRA, "half_up"), wf.min_int, wf.max_int)


def _root_step(root: Value, rem: Value, pair: Value) -> tuple[Value, Value]:
    """One restoring square-root step: the next two bits ``pair`` of the radicand, from the
    top, make the root one bit longer; ``rem`` (radicand so far less ``root**2``) stays at most
    ``2 * root``."""
    acc = (rem << 2) | pair
    trial = (root << 2) | 1
    fits = acc >= trial
    return Mux(fits, (root << 1) | 1, root << 1), Mux(fits, acc - trial, acc)


def _numerator(step: Value, d: Value) -> Value:
    """Adam's ``u = floor((2 * lr * m + D) / (2 * D))`` with ``D = d << LR_EXTRA`` is
    ``floor(n / d)`` with this ``n = floor((lr * m + (d << (LR_EXTRA - 1))) / 2**LR_EXTRA)``."""
    return (step + (d << (LR_EXTRA - 1))) >> LR_EXTRA


def _dividend(n: Value) -> tuple[Value, Value]:
    """``floor(n / d) = ~floor(~n / d)`` for ``n < 0``: the sign and the dividend ``>= 0``."""
    neg = n[-1]
    return neg, Mux(neg, ~n, n).as_unsigned()


def _adam_weight(w: Value, q: Value, over: Value, neg: Value, wf: FixedFormat) -> Value:
    """Adam's weight from the quotient ``q = floor(a / d)`` of :func:`_dividend`'s ``a``.

    Only ``|u| < 2**W`` matters: ``w - u`` saturates for every ``u >= 2**W`` (to ``min_int``)
    and every ``u <= -2**W`` (to ``max_int``). So when ``over`` (``a >= d << W``) the quotient
    is taken as ``2**W`` (hence ``u`` in ``[-2**W - 1, 2**W]``, which saturates alike) and
    otherwise has ``W`` bits."""
    q = Mux(over, 1 << wf.width, q)
    return _clamp(w - Mux(neg, -1 - q, q), wf.min_int, wf.max_int)


class _UpdateComponent(wiring.Component):
    """The ports, formats and argument checks both update units share."""

    def __init__(self, w_fmt: FixedFormat, g_fmt: FixedFormat, lr_width: int) -> None:
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
            **self._members(),
        })

    def _members(self) -> dict:
        """A unit's own ports beside the shared ones (the formats are checked by then)."""
        return {}

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


class UpdateUnit(_UpdateComponent):
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
    observe : bool
        Add the :attr:`obs` port (for proofs; default False).

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
    obs : Out(observation_layout)
        With ``observe``: the elements in flight and the square root's last stage.
    """

    @silence_on_error
    def __init__(self, w_fmt: FixedFormat, g_fmt: FixedFormat, *, lr_width: int = 48,
                 observe: bool = False) -> None:
        self._observe = check_bool(observe, "observe")
        super().__init__(w_fmt, g_fmt, lr_width)

    def _members(self) -> dict:
        return {"obs": Out(self.observation_layout)} if self._observe else {}

    @property
    def observation_layout(self) -> data.StructLayout:
        """Layout of :attr:`obs`: ``occupancy``, the elements in flight (valid stages, the
        output included), and the square root's last stage (``root_valid``, its ``root_v``
        and ``root = isqrt(root_v)``)."""
        return data.StructLayout({
            "occupancy": range(update_latency(self._w_fmt) + 1),
            "root_valid": 1, "root_v": unsigned(63), "root": unsigned(_ROOT_BITS),
        })

    @property
    def latency(self) -> int:
        """Cycles from an element on :attr:`i` to its result on :attr:`o`, without stalls:
        ``39 + w_fmt.width`` (the number of pipeline registers)."""
        return update_latency(self._w_fmt)

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
        p = stage(p, base=None, ema_prod=None, sq=None, c2=None,
                  ema=(_ema(p.base, p.ema_prod, soft, wf, gf), range_shape(ema_lo, ema_hi)),
                  v_prod=_v_product(p.sq, p.v, p.c2))
        adam, sgd, soft = (p.op == UPDATE_OPS[k] for k in ("adam", "sgd", "soft"))

        # 3: the moving average of v; the step's product lr * m (Adam) or lr * g (SGD)
        p = stage(p, v_prod=None, ema=None, x=None, lr=None,
                  v=(Mux(adam, _v_average(p.v, p.v_prod), p.v), unsigned(63)),
                  w_out=(Mux(soft, p.ema, p.w), shape_of(wf)),
                  m=(Mux(adam, p.ema, p.m), shape_of(gf)),
                  step=p.lr * Mux(sgd, p.x, p.ema))
        adam, sgd, soft = (p.op == UPDATE_OPS[k] for k in ("adam", "sgd", "soft"))

        # 4: SGD's result, round half up of lr * g / 2**(g_fmt.frac + LR_EXTRA)
        p = stage(p, w_out=(Mux(sgd, _sgd_weight(p.w, p.step, wf, gf), p.w_out), shape_of(wf)))

        # 5 .. 35: s = isqrt(v), restoring, one root bit per stage from the top; after the
        # stage that makes the root k + 1 bits long, rem = v[top bits] - root**2 <= 2 * root
        # fits k + 2 bits
        root, rem = Const(0, 1), Const(0, 1)
        for k in range(_ROOT_BITS):
            b = _ROOT_BITS - 1 - k
            root, rem = _root_step(root, rem, p.v[2 * b: 2 * b + 2])
            p = stage(p, root=(root, unsigned(k + 1)),
                      rem=(rem, unsigned(min(k + 2, _ROOT_BITS + 2))))
            root, rem = p.root, p.rem
        root_obs = {"root_valid": p.valid, "root_v": p.v, "root": p.root}

        # 36: the divisor d = isqrt(v) + eps >= 1
        d_max = (1 << _ROOT_BITS) - 1 + (1 << gf.width) - 1
        p = stage(p, root=None, rem=None, eps=None,
                  d=(p.root + p.eps, unsigned(d_max.bit_length())))
        # 37: Adam's step is floor(n / d) (_numerator)
        p = stage(p, step=None, n=_numerator(p.step, p.d))
        # 38: the divider sees a = n or ~n >= 0 (_dividend); the quotient q = floor(a / d)
        # is clamped when a >= d << W (_adam_weight), and otherwise has W bits, found by W
        # restoring stages
        neg, a = _dividend(p.n)
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
        w_adam = _adam_weight(p.w, p.q, p.over, p.neg, wf)

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
        if self._observe:
            observe(m, self.obs, occupancy=sum(valids), **root_obs)
        return m

    def __repr__(self) -> str:
        return f"UpdateUnit({self._w_fmt!r}, {self._g_fmt!r}, lr_width={self._lr_width})"


class IterativeUpdateUnit(_UpdateComponent):
    """Fixed-point Adam, SGD or soft update of one weight at a time, in few registers
    (:mod:`sw_model.numerics.optim`).

    The element's rules, formats, rounding, constants and ports are :class:`UpdateUnit`'s,
    and its results are the same, bit for bit; only the timing and the cost differ.

    Timing: the unit holds one element. It accepts an element while idle, or in the cycle
    its previous result leaves (so a stream of elements needs no idle cycle between them);
    an element accepted in cycle ``c`` is valid on :attr:`o` from cycle ``c + latency(op)``
    until taken, and :attr:`i` is not ready meanwhile. ``latency("adam") = 9 + ceil(31 /
    bits) + ceil(w_fmt.width / bits)``: 4 cycles of products and moving averages (one
    multiplication a cycle, each with registered operands and a registered result), the
    square root, 3 cycles forming the quotient's numerator, divisor and overflow test, the
    division, the weight; ``latency("sgd") = latency("soft") = 5``. Timing depends on ``op``
    only, never on the data. The constants are sampled when the element is accepted.

    Resources: the multiplications of :class:`UpdateUnit` on registered operands; a square
    root and a divider each of ``bits`` chained restoring steps (34- and 35-bit
    subtract-compare), with the radicand rotated and the dividend shifted through registers
    instead of barrel shifters; about 590 flip-flops in all at 16-bit formats and 810 at
    32-bit ones (``benchmarks/bench_update.py``; the pipelined unit: 10,250 and 19,225).

    Parameters
    ----------
    w_fmt : FixedFormat
        Signed weight format, at most 32 bits.
    g_fmt : FixedFormat
        Signed gradient (and first-moment) format, at most 32 bits.
    lr_width : int
        Width of the step-size code, 1 to 62.
    bits : int
        Square-root and quotient bits found a cycle: 1, 2 or 4.

    Members
    -------
    i, lr, c1, c2, eps, tau, o
        As :class:`UpdateUnit`'s.
    busy : Out(1)
        The unit holds an element (accepted, its result not yet taken).
    """

    @silence_on_error
    def __init__(self, w_fmt: FixedFormat, g_fmt: FixedFormat, *, lr_width: int = 48,
                 bits: int = 2) -> None:
        _check_kind("iterative", bits)
        self._bits = bits
        super().__init__(w_fmt, g_fmt, lr_width)

    def _members(self) -> dict:
        return {"busy": Out(1)}

    @property
    def bits(self) -> int:
        """Square-root and quotient bits found a cycle."""
        return self._bits

    @property
    def latency(self) -> int:
        """Cycles from an Adam element on :attr:`i` to its result on :attr:`o` (the longest
        :meth:`op_latency`)."""
        return self.op_latency("adam")

    def op_latency(self, op: str) -> int:
        """Cycles from an ``op`` element on :attr:`i` to its result on :attr:`o`
        (:func:`update_latency`)."""
        return update_latency(self._w_fmt, kind="iterative", bits=self._bits, op=op)

    def elaborate(self, platform) -> Module:
        m = Module()
        wf, gf, B = self._w_fmt, self._g_fmt, self._bits
        W = wf.width
        root_cycles, div_cycles = _root_cycles(B), -(-W // B)
        v_bits = 2 * B * root_cycles  # the radicand rotates through v[:v_bits]
        q_bits = B * div_cycles
        ema_lo, ema_hi = min(gf.min_int, wf.min_int), max(gf.max_int, wf.max_int)
        d_max = (1 << _ROOT_BITS) - 1 + (1 << gf.width) - 1

        # the element, its constants, and the registers of every step
        ip = self.i.payload
        op = Signal(2)
        w = Signal(shape_of(wf))
        x = Signal.like(ip.x)
        mm = Signal(shape_of(gf))
        v = Signal(max(63, v_bits))
        lr = Signal(self._lr_width)
        k1 = Signal(17)  # c1, or tau for the soft update
        c2 = Signal(17)
        eps = Signal(gf.width)
        base = Signal(range_shape(ema_lo, ema_hi))
        adam, sgd, soft = (op == UPDATE_OPS[k] for k in ("adam", "sgd", "soft"))
        prod = Signal(((x - base) * k1).shape())
        ema = Signal(range_shape(ema_lo, ema_hi))
        # g * g, then v's difference (_v_difference), then its product with c2 (_v_product),
        # in one register
        v_prod = Signal(_v_product(x * x, v[:63], c2).shape())
        sq = v_prod[:len(x * x)].as_signed()
        v_diff = v_prod[:len(_v_difference(x * x, v[:63]))].as_signed()
        step = Signal((lr * ema).shape())
        w_out = Signal(shape_of(wf))
        root = Signal(B * root_cycles)
        rem = Signal(_ROOT_BITS + 2)  # at most 2 * root
        d = Signal(d_max.bit_length())
        n = Signal(_numerator(step, d).shape())
        neg, over = Signal(), Signal()
        part = Signal(len(d) + 1)  # the division's partial remainder, below d (or 2 * d)
        low = Signal(q_bits)  # the dividend's bits still to shift in, then the quotient
        count = Signal(range(max(root_cycles, div_cycles)))

        def accept():
            is_soft = ip.op == UPDATE_OPS["soft"]
            m.d.sync += [op.eq(ip.op), w.eq(ip.w), x.eq(ip.x), mm.eq(ip.m), v.eq(ip.v),
                         lr.eq(self.lr), k1.eq(Mux(is_soft, self.tau, self.c1)),
                         c2.eq(self.c2), eps.eq(self.eps),
                         base.eq(Mux(is_soft, ip.w, ip.m))]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    accept()
                    m.next = "PRODUCTS"
            with m.State("PRODUCTS"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [prod.eq((x - base) * k1), v_prod.eq(x * x)]
                m.next = "AVERAGE"
            with m.State("AVERAGE"):  # the moving average of m or the target; v's difference
                m.d.comb += self.busy.eq(1)
                # (SGD has no average: its gradient takes the register, so that the step's
                # product below has one operand register and no multiplexer before it)
                m.d.sync += [ema.eq(Mux(sgd, x, _ema(base, prod, soft, wf, gf))),
                             v_prod.eq(_v_difference(sq, v[:63]))]
                m.next = "STEP"
            with m.State("STEP"):  # v's product; the step's product lr * m or lr * g
                m.d.comb += self.busy.eq(1)
                m.d.sync += [v_prod.eq(v_diff * c2),
                             w_out.eq(Mux(soft, ema, w)), mm.eq(Mux(adam, ema, mm)),
                             step.eq(lr * ema)]
                m.next = "SGD"
            with m.State("SGD"):  # SGD's weight; v's average (the square root reads it next)
                m.d.comb += self.busy.eq(1)
                m.d.sync += [w_out.eq(Mux(sgd, _sgd_weight(w, step, wf, gf), w_out)),
                             v.eq(Mux(adam, _v_average(v[:63], v_prod), v)),
                             root.eq(0), rem.eq(0), count.eq(0)]
                with m.If(adam):
                    m.next = "ROOT"
                with m.Else():
                    m.next = "OUT"
            with m.State("ROOT"):
                # B root bits from the radicand's top pairs; v[:v_bits] rotates by 2 * B bits
                # a cycle, back to where it was after the last (the top pairs beyond 62 bits
                # are zero and leave the root alone)
                m.d.comb += self.busy.eq(1)
                r, s = root, rem
                for k in range(B):
                    top = v_bits - 2 * k
                    r, s = _root_step(r, s, v[top - 2: top])
                rotated = Cat(v[v_bits - 2 * B: v_bits], v[:v_bits - 2 * B])
                m.d.sync += [root.eq(r), rem.eq(s), v[:v_bits].eq(rotated),
                             count.eq(count + 1)]
                with m.If(count == root_cycles - 1):
                    m.next = "DIVISOR"
            with m.State("DIVISOR"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += d.eq(root + eps)
                m.next = "NUMERATOR"
            with m.State("NUMERATOR"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += n.eq(_numerator(step, d))
                m.next = "DIVIDEND"
            with m.State("DIVIDEND"):
                # unless over, a < d << W <= d << q_bits: its top bits start below d
                m.d.comb += self.busy.eq(1)
                sign, a = _dividend(n)
                m.d.sync += [neg.eq(sign), over.eq(a >= (d << W)), part.eq(a >> q_bits),
                             low.eq(a[:q_bits]), count.eq(0)]
                m.next = "DIVIDE"
            with m.State("DIVIDE"):
                # B restoring steps: shift the dividend's next bit into the partial remainder,
                # subtract d if it fits, shift the quotient bit into low
                m.d.comb += self.busy.eq(1)
                r, lo = part, low
                for _ in range(B):
                    r = Cat(lo[-1], r)
                    fits = r >= d
                    r = Mux(fits, r - d, r)
                    lo = Cat(fits, lo[:-1])
                m.d.sync += [part.eq(r), low.eq(lo), count.eq(count + 1)]
                with m.If(count == div_cycles - 1):
                    m.next = "WEIGHT"
            with m.State("WEIGHT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += w_out.eq(_adam_weight(w, low[:W], over, neg, wf))
                m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += [self.busy.eq(1), self.o.valid.eq(1),
                             self.o.payload.w.eq(w_out), self.o.payload.m.eq(mm),
                             self.o.payload.v.eq(v[:63]), self.i.ready.eq(self.o.ready)]
                with m.If(self.o.ready):
                    with m.If(self.i.valid):
                        accept()
                        m.next = "PRODUCTS"
                    with m.Else():
                        m.next = "IDLE"
        return m

    def __repr__(self) -> str:
        return (f"IterativeUpdateUnit({self._w_fmt!r}, {self._g_fmt!r}, "
                f"lr_width={self._lr_width}, bits={self._bits})")
