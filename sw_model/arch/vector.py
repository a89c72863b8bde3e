"""The vector unit's golden model: the element-wise glue of the fixed-point DDPG training step.

The matrix operations of :func:`sw_model.arch.ddpg_step.fixed_train_step` run on the PE array; what
is left between them (format conversions, the TD target, the loss delta, the actor's output
delta, range tracking and exploration noise) runs on a vector unit that reads and writes the
*activation memory*. :func:`execute` is the bit-exact model of one command of
:class:`fixar_hw.train.vector.VectorUnit`.

Memory and regions
------------------
The memory holds words of ``size`` lanes, each a ``word_width``-bit two's complement integer. A
vector region is ``(base, stride)``: element ``e`` of vector ``b`` is at word ``base + b *
stride + e // size``, lane ``e % size``. A command works on elements ``off .. off + length - 1``
of vectors ``0 .. batch - 1`` of up to three regions: operands ``a`` and ``b``, destination
``d``. A write replaces one lane and leaves the word's other lanes unchanged.

Formats
-------
Activation formats are chosen at run time (QAT switches from the wide ``act_fmt`` to narrow
formats): a command names one by ``(frac, narrow)``, :meth:`VectorSpec.fmt`, the format
``FixedFormat(narrow_width if narrow else act_fmt.width, frac)`` with ``0 <= frac <=
act_fmt.frac``. Codes are stored sign-extended to the lane width. An operand is read as the low
bits of its lane, sign-extended: ``act_fmt.width`` bits for activations (whatever their
runtime format; a narrow code sign-extended reads as itself), ``delta_fmt.width`` bits for
deltas, and the whole lane for ``range``. Results are written sign-extended.

Operations (``A = a[b, a_off + e]``, ``B = b[b, b_off + e]``, result to ``d[b, d_off + e]``)
------------------------------------------------------------------------------------------------
``convert``
    ``shift_quantize(A, fmt(a), fmt(d))``: floor, saturate
    (:func:`sw_model.numerics.qat.shift_quantize`).
``target`` (``length == 1``)
    ``clip(R + (1 - done) * mul_shift(A, gamma_q), act_fmt)``, ``R = b[b, b_off]``, ``done =
    b[b, b_off + 1]`` (any nonzero ``done`` counts as 1); ``mul_shift`` of
    :mod:`sw_model.numerics.optim` (16 fraction bits, half even). Step 3's ``y``.
``loss`` (``length == 1``)
    :func:`loss_delta` ``(A - B, batch, act_fmt, delta_fmt)``: step 4's output delta.
``fill``
    ``clip(div_round(-2**delta_fmt.frac, batch), delta_fmt)`` everywhere (reads nothing): step
    5's output delta ``-1 / B``.
``tanh_delta``
    ``requantize(A * g, delta_fmt.frac + deriv_fmt.frac, delta_fmt, rounding, "saturate")``
    with ``g`` the ``deriv_fmt`` code of ``1 - y**2`` for ``y = B`` in ``fmt(b)``
    (:func:`sw_model.numerics.activation.derivative`, ``"tanh"``): step 5's ``d_a`` (``A`` a
    ``delta_fmt`` code).
``range``
    Range register ``point`` becomes :func:`sw_model.numerics.qat.track_range` ``(prev, every A)``,
    ``prev`` the register (``None`` if empty or ``clear``). Writes nothing.
``noise``
    ``clip(A + noise, -one, one)`` in ``fmt(a)``, ``one = min(2**a_frac, max_int)``, ``noise``
    :func:`sw_model.numerics.prng.gaussian_codes` ``(state, 1, sigma_q / 2**16, fmt(a))`` per
    element,
    vector-major; the generator state carries over from command to command. This is
    :meth:`sw_model.rl.ddpg.DDPGAgent.explore` before its final conversion.

All operands of a command are read before any result is written: a command whose writes hit
lanes that a *later* element reads is outside the hardware's contract (in place, element by
element, is fine).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sw_model.checks import check_int
from sw_model.numerics.activation import derivative
from sw_model.numerics.fixed import FixedFormat, check_rounding, requantize
from sw_model.numerics.optim import mul_shift
from sw_model.numerics.prng import gaussian_codes, seed_state
from sw_model.numerics.qat import shift_quantize, track_range

__all__ = [
    "VECTOR_OPS",
    "VectorCommand",
    "VectorSpec",
    "VectorState",
    "div_round",
    "execute",
    "loss_delta",
]

#: Operations of the vector unit, in the order of their hardware encoding.
VECTOR_OPS: tuple[str, ...] = ("convert", "target", "loss", "fill", "tanh_delta", "range",
                               "noise")

#: Regions each operation reads (``a``, ``b``) and writes (``d``).
_REGIONS = {
    "convert": "ad", "target": "abd", "loss": "abd", "fill": "d", "tanh_delta": "abd",
    "range": "a", "noise": "ad",
}

_COMMAND_INTS = ("batch", "length", "a_base", "a_stride", "a_off", "a_frac", "b_base",
                 "b_stride", "b_off", "b_frac", "d_base", "d_stride", "d_off", "d_frac", "point")
_COMMAND_BOOLS = ("a_narrow", "b_narrow", "d_narrow", "clear")
_MAX_FMT_WIDTH = 32
# default formats, those of sw_model.arch.ddpg_config (FixedFormat is frozen: sharing is safe)
_ACT_FMT = FixedFormat(32, 16)
_DELTA_FMT = FixedFormat(32, 24)
_DERIV_FMT = FixedFormat(32, 30)


def div_round(n: npt.ArrayLike, d: int) -> np.ndarray:
    """``n / d`` rounded half up (``d > 0``): ``floor((2n + d) / (2d))``."""
    return (2 * np.asarray(n) + d) // (2 * d)


def loss_delta(diff: npt.ArrayLike, batch: int, act_fmt: FixedFormat,
               delta_fmt: FixedFormat) -> np.ndarray:
    """``round_half_up(2 * diff / batch)``: ``act_fmt`` codes to ``delta_fmt`` codes, saturated.

    The mean-squared-error gradient of step 4 of :func:`sw_model.arch.ddpg_step.fixed_train_step`;
    the exact rational is rounded with :func:`div_round`.
    """
    shift = delta_fmt.frac - act_fmt.frac
    n = (2 * np.asarray(diff, dtype=np.int64)) << max(shift, 0)
    q = div_round(n, batch << max(-shift, 0))
    return np.clip(q, delta_fmt.min_int, delta_fmt.max_int).astype(np.int64)


def _bits(n: int) -> int:
    return max(int(n).bit_length(), 1)


@dataclass(frozen=True)
class VectorSpec:
    """Build-time parameters of a vector unit (and of its golden model).

    Parameters
    ----------
    size : int
        Lanes per memory word, a power of two (1 to 64).
    word_width : int
        Bits per lane, at least ``act_fmt.width`` and ``delta_fmt.width`` (at most 64).
    addr_width : int
        Memory address bits (1 to 32).
    act_fmt : FixedFormat
        The wide activation format (signed, 2 to 32 bits, ``frac >= 0``); runtime formats are
        :meth:`fmt`.
    delta_fmt : FixedFormat
        Back-propagated deltas (signed, 2 to 32 bits, ``frac >= 0``).
    deriv_fmt : FixedFormat
        Activation derivatives (signed, 2 to 32 bits, ``frac >= 0``).
    narrow_width : int
        Width of the narrow activation formats, 2 to ``act_fmt.width``.
    rounding : str
        Rounding of ``tanh_delta`` (:data:`sw_model.numerics.fixed.ROUNDING_MODES`).
    points : int
        Number of range registers (1 to 64).
    max_batch, max_len : int
        Largest ``batch`` and ``length`` of a command (1 to ``2**16``).

    Raises
    ------
    TypeError, ValueError
        Naming the field and the value.
    """

    size: int = 4
    word_width: int = 32
    addr_width: int = 10
    act_fmt: FixedFormat = _ACT_FMT
    delta_fmt: FixedFormat = _DELTA_FMT
    deriv_fmt: FixedFormat = _DERIV_FMT
    narrow_width: int = 16
    rounding: str = "half_even"
    points: int = 1
    max_batch: int = 256
    max_len: int = 256

    def __post_init__(self) -> None:
        own = "VectorSpec"
        check_int(self.size, "size", minimum=1, maximum=64, owner=own)
        if self.size & (self.size - 1):
            raise ValueError(f"{own} size must be a power of two, not {self.size!r}")
        for name in ("act_fmt", "delta_fmt", "deriv_fmt"):
            fmt = getattr(self, name)
            if not isinstance(fmt, FixedFormat):
                raise TypeError(f"{own} {name} must be a FixedFormat, not {fmt!r}")
            if not fmt.signed or not 2 <= fmt.width <= _MAX_FMT_WIDTH or fmt.frac < 0:
                raise ValueError(f"{own} {name} must be signed, 2 to {_MAX_FMT_WIDTH} bits wide "
                                 f"with frac >= 0, not {fmt!r}")
        lo = max(self.act_fmt.width, self.delta_fmt.width)
        check_int(self.word_width, "word_width", minimum=lo, maximum=64, owner=own)
        check_int(self.addr_width, "addr_width", minimum=1, maximum=32, owner=own)
        check_int(self.narrow_width, "narrow_width", minimum=2, maximum=self.act_fmt.width,
                  owner=own)
        try:
            check_rounding(self.rounding)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{own} {exc}") from None
        check_int(self.points, "points", minimum=1, maximum=64, owner=own)
        check_int(self.max_batch, "max_batch", minimum=1, maximum=1 << 16, owner=own)
        check_int(self.max_len, "max_len", minimum=1, maximum=1 << 16, owner=own)
        for name in ("size", "word_width", "addr_width", "narrow_width", "points", "max_batch",
                     "max_len"):
            object.__setattr__(self, name, int(getattr(self, name)))

    def fmt(self, frac: int, narrow: bool = False) -> FixedFormat:
        """The runtime activation format ``(frac, narrow)``.

        Raises
        ------
        TypeError, ValueError
            If ``frac`` is not an integer from 0 to ``act_fmt.frac``.
        """
        check_int(frac, "frac", minimum=0, maximum=self.act_fmt.frac, owner="VectorSpec.fmt")
        return FixedFormat(self.narrow_width if narrow else self.act_fmt.width, int(frac))

    @property
    def offset_bits(self) -> int:
        """Bits of a command's element offsets: ``addr_width + log2(size)``."""
        return self.addr_width + self.size.bit_length() - 1

    @property
    def div_steps(self) -> int:
        """Quotient bits of the ``loss``/``fill`` division: ``delta_fmt.width - 1``."""
        return self.delta_fmt.width - 1


@dataclass(frozen=True)
class VectorCommand:
    """One vector-unit command (see the module docs for the operations).

    Parameters
    ----------
    op : str
        One of :data:`VECTOR_OPS`.
    batch, length : int
        Vectors and elements per vector.
    a_base, a_stride, a_off, b_base, b_stride, b_off, d_base, d_stride, d_off : int
        Regions (word address, words per vector) and first element of each operand.
    a_frac, a_narrow, b_frac, b_narrow, d_frac, d_narrow : int, bool
        Runtime formats (:meth:`VectorSpec.fmt`): ``a`` of ``convert`` and ``noise``, ``b`` of
        ``tanh_delta`` (``y``), ``d`` of ``convert``; ignored elsewhere.
    point : int
        Range register of ``range``.
    clear : bool
        ``range`` starts the register afresh.

    Raises
    ------
    TypeError, ValueError
        For a field of the wrong kind, an unknown ``op`` or a negative number;
        :meth:`validate` checks the rest against a :class:`VectorSpec`.
    """

    op: str
    batch: int = 1
    length: int = 1
    a_base: int = 0
    a_stride: int = 0
    a_off: int = 0
    a_frac: int = 0
    a_narrow: bool = False
    b_base: int = 0
    b_stride: int = 0
    b_off: int = 0
    b_frac: int = 0
    b_narrow: bool = False
    d_base: int = 0
    d_stride: int = 0
    d_off: int = 0
    d_frac: int = 0
    d_narrow: bool = False
    point: int = 0
    clear: bool = False

    def __post_init__(self) -> None:
        own = "VectorCommand"
        if not isinstance(self.op, str):
            raise TypeError(f"{own} op must be a string, not {self.op!r}")
        if self.op not in VECTOR_OPS:
            raise ValueError(f"{own} op must be one of {', '.join(map(repr, VECTOR_OPS))}, "
                             f"not {self.op!r}")
        for name in _COMMAND_INTS:
            object.__setattr__(self, name,
                               check_int(getattr(self, name), name, minimum=0, owner=own))
        for name in _COMMAND_BOOLS:
            value = getattr(self, name)
            if not isinstance(value, bool | np.bool_) and value not in (0, 1):
                raise TypeError(f"{own} {name} must be a bool, not {value!r}")
            object.__setattr__(self, name, bool(value))

    @property
    def regions(self) -> str:
        """The regions the operation uses: letters of ``"abd"``."""
        return _REGIONS[self.op]

    @property
    def elements(self) -> int:
        """``batch * length``."""
        return self.batch * self.length

    def validate(self, spec: VectorSpec) -> VectorCommand:
        """Return the command if it fits ``spec``, else raise ``ValueError`` naming the field.

        Checks: ``batch`` and ``length`` within the spec's limits (``length == 1`` for
        ``target`` and ``loss``); fractions from 0 to ``act_fmt.frac``; ``point`` below
        ``points``; bases and strides below ``2**addr_width``, offsets below ``2**offset_bits``;
        the last word of each region the operation uses below ``2**addr_width`` (``target``
        reads ``b`` elements ``b_off`` and ``b_off + 1``).
        """
        if not isinstance(spec, VectorSpec):
            raise TypeError(f"spec must be a VectorSpec, not {spec!r}")
        own = "VectorCommand"
        check_int(self.batch, "batch", minimum=1, maximum=spec.max_batch, owner=own)
        check_int(self.length, "length", minimum=1, maximum=spec.max_len, owner=own)
        if self.op in ("target", "loss") and self.length != 1:
            raise ValueError(f"{own} length must be 1 for {self.op!r}, not {self.length!r}")
        for name in ("a_frac", "b_frac", "d_frac"):
            check_int(getattr(self, name), name, minimum=0, maximum=spec.act_fmt.frac, owner=own)
        check_int(self.point, "point", minimum=0, maximum=spec.points - 1, owner=own)
        top = (1 << spec.addr_width) - 1
        for r in "abd":
            for field, hi in (("base", top), ("stride", top), ("off", (1 << spec.offset_bits) - 1)):
                name = f"{r}_{field}"
                check_int(getattr(self, name), name, minimum=0, maximum=hi, owner=own)
        for r in self.regions:
            last = self._last_word(spec, r)
            if last > top:
                raise ValueError(
                    f"{own} region {r} (base {getattr(self, f'{r}_base')}, stride "
                    f"{getattr(self, f'{r}_stride')}, off {getattr(self, f'{r}_off')}) ends at "
                    f"word {last}, beyond addr_width {spec.addr_width}")
        return self

    def _last_word(self, spec: VectorSpec, r: str) -> int:
        n = 2 if (self.op == "target" and r == "b") else self.length
        return (getattr(self, f"{r}_base") + (self.batch - 1) * getattr(self, f"{r}_stride")
                + (getattr(self, f"{r}_off") + n - 1) // spec.size)

    def words(self, spec: VectorSpec, region: str) -> np.ndarray:
        """Word address of element ``(b, e)`` of ``region`` as a ``(batch, length)`` array."""
        base, stride, off = (getattr(self, f"{region}_{k}") for k in ("base", "stride", "off"))
        b = np.arange(self.batch)[:, None]
        e = np.arange(self.length)[None, :]
        return base + b * stride + (off + e) // spec.size

    def lanes(self, spec: VectorSpec, region: str) -> np.ndarray:
        """Lane of element ``(b, e)`` of ``region`` as a ``(batch, length)`` array."""
        off = getattr(self, f"{region}_off")
        e = np.arange(self.length)[None, :]
        return np.broadcast_to((off + e) % spec.size, (self.batch, self.length))


@dataclass(frozen=True)
class VectorState:
    """What a vector unit keeps between commands.

    Parameters
    ----------
    ranges : tuple
        Per range register, ``(lo, hi)`` codes or ``None`` (empty).
    noise : int
        The xorshift32 state of the noise generator (nonzero, 32 bits).
    """

    ranges: tuple[tuple[int, int] | None, ...]
    noise: int

    @classmethod
    def initial(cls, spec: VectorSpec) -> VectorState:
        """The state after reset: every range empty, the generator at ``seed_state(0)``."""
        return cls((None,) * spec.points, seed_state(0))

    def reseed(self, seed: int) -> VectorState:
        """The state after a transfer of ``seed`` (modulo ``2**32``) on the unit's seed stream."""
        return dataclasses.replace(self, noise=seed_state(int(seed) & 0xFFFFFFFF))


def _wrap(v: np.ndarray, width: int) -> np.ndarray:
    """The low ``width`` bits of ``v``, sign-extended."""
    half = 1 << (width - 1)
    return ((v + half) & ((1 << width) - 1)) - half


def _tanh_derivative(y: np.ndarray, y_frac: int, width: int, d_fmt: FixedFormat,
                     rounding: str) -> np.ndarray:
    """``1 - y**2`` as ``d_fmt`` codes, :func:`sw_model.numerics.activation.derivative` for
    ``"tanh"``, on
    any ``width``-bit lane value ``y`` (the result depends only on ``y_frac``, so the lane's
    full width stands in for a narrow format)."""
    fmt = FixedFormat(width, y_frac)
    return derivative(y, y, fmt, fmt, d_fmt, "tanh", rounding=rounding)


def execute(spec: VectorSpec, cmd: VectorCommand, mem: npt.ArrayLike, state: VectorState, *,
            gamma_q: int = 0, sigma_q: int = 0) -> tuple[np.ndarray, VectorState]:
    """Run one command on a memory image; pure (the inputs are not modified).

    Parameters
    ----------
    spec : VectorSpec
    cmd : VectorCommand
        Validated against ``spec``.
    mem : array_like of int
        Memory image, shape ``(words, size)``, ``word_width``-bit signed lanes; every word a
        region of ``cmd`` uses must be below ``words``.
    state : VectorState
        Range registers and noise state.
    gamma_q : int
        Discount code (16 fraction bits), 0 to ``2**16``; used by ``target``.
    sigma_q : int
        Noise scale code (:func:`sw_model.numerics.prng.sigma_code`), 0 to ``2**31 - 1``; used by
        ``noise``.

    Returns
    -------
    mem : numpy.ndarray of int64
        The new image.
    state : VectorState
    """
    if not isinstance(spec, VectorSpec):
        raise TypeError(f"spec must be a VectorSpec, not {spec!r}")
    if not isinstance(cmd, VectorCommand):
        raise TypeError(f"cmd must be a VectorCommand, not {cmd!r}")
    if not isinstance(state, VectorState):
        raise TypeError(f"state must be a VectorState, not {state!r}")
    cmd.validate(spec)
    check_int(gamma_q, "gamma_q", minimum=0, maximum=1 << 16, owner="execute")
    check_int(sigma_q, "sigma_q", minimum=0, maximum=(1 << 31) - 1, owner="execute")
    if len(state.ranges) != spec.points:
        raise ValueError(f"state ranges must have {spec.points} entries, not "
                         f"{len(state.ranges)!r}")
    word = FixedFormat(spec.word_width, 0)
    img = word.check_codes(mem, "mem").copy()
    if img.ndim != 2 or img.shape[1] != spec.size:
        raise ValueError(f"mem must have shape (words, {spec.size}), not {img.shape!r}")
    for r in cmd.regions:
        last = cmd._last_word(spec, r)
        if last >= img.shape[0]:
            raise ValueError(f"region {r} of the command ends at word {last}, beyond the "
                             f"{img.shape[0]} words of mem")

    def read(r: str, extra: int = 0) -> np.ndarray:
        words = cmd.words(spec, r) + (cmd.lanes(spec, r) + extra) // spec.size
        lanes = (cmd.lanes(spec, r) + extra) % spec.size
        return img[words, lanes]

    aw, dw = spec.act_fmt.width, spec.delta_fmt.width
    act, delta = spec.act_fmt, spec.delta_fmt
    op = cmd.op
    ranges, noise_state = state.ranges, state.noise
    if op == "convert":
        out = shift_quantize(_wrap(read("a"), aw), spec.fmt(cmd.a_frac, cmd.a_narrow),
                             spec.fmt(cmd.d_frac, cmd.d_narrow))
    elif op == "target":
        q, r, done = (_wrap(v, aw) for v in (read("a"), read("b"), read("b", 1)))
        out = np.clip(r + np.where(done != 0, 0, mul_shift(q, gamma_q)), act.min_int,
                      act.max_int)
    elif op == "loss":
        out = loss_delta(_wrap(read("a"), aw) - _wrap(read("b"), aw), cmd.batch, act, delta)
    elif op == "fill":
        value = div_round(-(1 << delta.frac), cmd.batch)
        out = np.full((cmd.batch, cmd.length), np.clip(value, delta.min_int, delta.max_int))
    elif op == "tanh_delta":
        g = _tanh_derivative(_wrap(read("b"), aw), cmd.b_frac, aw, spec.deriv_fmt,
                             spec.rounding)
        prod = _wrap(read("a"), dw).astype(object) * g.astype(object)
        out = requantize(prod, delta.frac + spec.deriv_fmt.frac, delta, spec.rounding,
                         "saturate")
    elif op == "range":
        out = None
        prev = None if cmd.clear else ranges[cmd.point]
        ranges = (*ranges[:cmd.point], track_range(prev, read("a")), *ranges[cmd.point + 1:])
    else:  # noise
        fmt = spec.fmt(cmd.a_frac, cmd.a_narrow)
        noise, noise_state = gaussian_codes(noise_state, cmd.elements, sigma_q / 2**16, fmt)
        one = min(1 << fmt.frac, fmt.max_int)
        y = _wrap(read("a"), aw)
        out = np.clip(y + noise.reshape(y.shape), -one, one)
    if out is not None:
        values = np.broadcast_to(np.asarray(out, dtype=np.int64), (cmd.batch, cmd.length))
        # element by element, in order: with overlapping destinations the last write wins
        for w, lane, v in zip(cmd.words(spec, "d").flat, cmd.lanes(spec, "d").flat,
                              values.flat, strict=True):
            img[w, lane] = v
    return img, VectorState(tuple(ranges), noise_state)
