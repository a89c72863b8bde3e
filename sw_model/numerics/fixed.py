"""The numeric contract: fixed-point formats, rounding, overflow and exact dot products.

Every hardware part of ``fixar_hw`` and every fixed-point operation of the NumPy trainer
reads this module, so that the two agree bit for bit.

Representation
--------------
A fixed-point number is an integer ``q`` (the *code*) together with a :class:`FixedFormat`
``(width, frac, signed)``; its real value is ``q * 2**-frac``. Codes are held in NumPy
``int64`` arrays (every supported format fits), and all arithmetic on codes is exact
integer arithmetic: no floating point takes part in any result except :meth:`FixedFormat.to_float`
and :meth:`FixedFormat.from_float`.

Rounding modes (applied when bits are dropped by a right shift of ``s > 0`` bits)
---------------------------------------------------------------------------------
``"floor"``
    Toward minus infinity: an arithmetic shift right, ``q >> s``. Costs nothing in hardware.
``"half_up"``
    To nearest, ties toward plus infinity: ``(q + 2**(s-1)) >> s``.
``"half_even"``
    To nearest, ties to the even neighbour (convergent rounding, no bias).

Overflow handling (applied after rounding)
------------------------------------------
``"saturate"``
    Clamp to ``[min_int, max_int]`` of the destination format.
``"wrap"``
    Keep the low ``width`` bits (two's complement for signed formats).

Exact dot products
------------------
:func:`dot` and :func:`matmul` compute the exact sum of exact products and round once at the end,
which is what the hardware MAC does with its guard-bit accumulator. Products are summed in
``float64`` (BLAS for :func:`matmul`), whose partial sums are exact in any order while they are
integers below 2**53: operands are split into limbs only as far as their largest codes require
for that (often not at all), and all limb products of a matrix product are one BLAS call. A
32x32-bit product needs 64 bits and a sum of thousands of them more than ``int64``: such sums
are kept as their limb sums and rounded straight from them, the bits above the rounding point
in ``int64`` modulo 2**64 and the dropped bits carried (Python integers only beyond 2**100).
Rounding everywhere reads the dropped bits (the first one, and whether any below it is set),
never adding half a step first. Requantization and range checks of large arrays run as
compiled one-pass kernels (:mod:`sw_model.numerics.kernels`).
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from sw_model.checks import check_int
from sw_model.numerics import kernels

__all__ = [
    "OVERFLOW_MODES",
    "ROUNDING_MODES",
    "FixedFormat",
    "Overflow",
    "Rounding",
    "check_overflow",
    "check_rounding",
    "dot",
    "exact_matmul",
    "matmul",
    "product_range",
    "requantize",
    "shift_round",
]

Rounding = Literal["floor", "half_up", "half_even"]
Overflow = Literal["saturate", "wrap"]

ROUNDING_MODES: tuple[str, ...] = ("floor", "half_up", "half_even")
OVERFLOW_MODES: tuple[str, ...] = ("saturate", "wrap")

#: Widest supported format: every code fits in an ``int64``.
MAX_WIDTH = 64
#: Largest ``|frac|``; larger shifts would only ever produce zero or saturate.
MAX_FRAC = 256

# Products are summed in float64 BLAS in blocks of at most 2**20 terms; limbs are sized so that
# every partial sum stays within 2**53, the exact-integer range of float64.
_BLOCK_TERMS = 1 << 20
_F64_EXACT = 1 << 53
# Exact sums below this bound are recombined in int64 (with room for a carry).
_INT64_SAFE = 1 << 62
# Wider sums are requantized from their terms up to this bound (the float64 estimate that
# decides saturation is then off by far less than 2**61); beyond it, Python integers.
_PAIR_LIMIT = 1 << 100


def check_rounding(rounding: object, name: str = "rounding") -> str:
    """Validate a rounding-mode name and return it.

    Raises
    ------
    TypeError
        If ``rounding`` is not a string.
    ValueError
        If it is not one of :data:`ROUNDING_MODES`.
    """
    if not isinstance(rounding, str):
        raise TypeError(f"{name} must be a string, not {rounding!r}")
    if rounding not in ROUNDING_MODES:
        raise ValueError(
            f"{name} must be one of 'floor', 'half_up', 'half_even', not {rounding!r}"
        )
    return rounding


def check_overflow(overflow: object, name: str = "overflow") -> str:
    """Validate an overflow-mode name and return it.

    Raises
    ------
    TypeError
        If ``overflow`` is not a string.
    ValueError
        If it is not one of :data:`OVERFLOW_MODES`.
    """
    if not isinstance(overflow, str):
        raise TypeError(f"{name} must be a string, not {overflow!r}")
    if overflow not in OVERFLOW_MODES:
        raise ValueError(f"{name} must be one of 'saturate', 'wrap', not {overflow!r}")
    return overflow


@dataclass(frozen=True)
class FixedFormat:
    """A binary fixed-point format: ``width`` bits, ``frac`` of them after the binary point.

    The real value of a code ``q`` is ``q * 2**-frac``. Signed formats are two's complement.

    Parameters
    ----------
    width : int
        Total number of bits, including the sign bit of a signed format. 1 to 64 for signed
        formats, 1 to 63 for unsigned ones (codes are held in ``int64``).
    frac : int
        Number of fraction bits, -256 to 256. It may exceed ``width`` (a format for small
        magnitudes) or be negative (a format for large magnitudes with a coarse step).
    signed : bool
        Two's complement (``True``, the default) or unsigned.

    Raises
    ------
    TypeError
        If ``width`` or ``frac`` is not an integer or ``signed`` is not a bool.
    ValueError
        If ``width`` or ``frac`` is out of range.

    Examples
    --------
    >>> fmt = FixedFormat(16, 8)
    >>> fmt.min_int, fmt.max_int, fmt.resolution
    (-32768, 32767, 0.00390625)
    >>> int(fmt.from_float(1.5)), float(fmt.to_float(384))
    (384, 1.5)
    """

    width: int
    frac: int
    signed: bool = True

    def __post_init__(self) -> None:
        width = check_int(self.width, "FixedFormat width")
        frac = check_int(self.frac, "FixedFormat frac")
        if not isinstance(self.signed, bool | np.bool_):
            raise TypeError(f"FixedFormat signed must be a bool, not {self.signed!r}")
        max_width = MAX_WIDTH if self.signed else MAX_WIDTH - 1
        if not 1 <= width <= max_width:
            kind = "signed" if self.signed else "unsigned"
            raise ValueError(
                f"FixedFormat width must be from 1 to {max_width} for {kind} formats, "
                f"not {self.width!r}"
            )
        if not -MAX_FRAC <= frac <= MAX_FRAC:
            raise ValueError(
                f"FixedFormat frac must be from {-MAX_FRAC} to {MAX_FRAC}, not {self.frac!r}"
            )
        # Normalise NumPy scalars to plain Python values so formats compare and hash alike.
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "frac", frac)
        object.__setattr__(self, "signed", bool(self.signed))

    @property
    def min_int(self) -> int:
        """Smallest code: ``-2**(width-1)`` if signed, else 0."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        """Largest code: ``2**(width-1) - 1`` if signed, else ``2**width - 1``."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def resolution(self) -> float:
        """Value of one code step, ``2**-frac``."""
        return math.ldexp(1.0, -self.frac)

    @property
    def min_value(self) -> float:
        """Smallest representable real value."""
        return math.ldexp(float(self.min_int), -self.frac)

    @property
    def max_value(self) -> float:
        """Largest representable real value (rounded to float64 for widths above 53)."""
        return math.ldexp(float(self.max_int), -self.frac)

    def contains(self, q: npt.ArrayLike) -> bool:
        """Whether every code in ``q`` lies in ``[min_int, max_int]``."""
        arr = np.asarray(q)
        if arr.size == 0:
            return True
        lo, hi = _min_max(arr) if arr.dtype == np.int64 else (int(arr.min()), int(arr.max()))
        return bool(lo >= self.min_int and hi <= self.max_int)

    def check_codes(self, q: npt.ArrayLike, name: str = "q") -> np.ndarray:
        """Return ``q`` as an ``int64`` array, or raise if it is not a valid code array.

        Raises
        ------
        TypeError
            If ``q`` does not hold integers.
        ValueError
            If a code lies outside ``[min_int, max_int]``.
        """
        arr = _as_code_array(q, name)
        if not self.contains(arr):
            lo, hi = int(arr.min()), int(arr.max())
            bad = lo if lo < self.min_int else hi
            raise ValueError(
                f"{name} holds {bad!r}, outside {self!r} codes "
                f"[{self.min_int}, {self.max_int}]"
            )
        return arr.astype(np.int64, copy=False)

    def to_float(self, q: npt.ArrayLike) -> np.ndarray:
        """Real values ``q * 2**-frac`` as ``float64`` (exact for widths up to 53)."""
        arr = _as_code_array(q, "q")
        return np.ldexp(arr.astype(np.float64), -self.frac)

    def from_float(
        self,
        x: npt.ArrayLike,
        rounding: Rounding = "half_even",
        overflow: Overflow = "saturate",
    ) -> np.ndarray:
        """Nearest codes of real values ``x`` (an ``int64`` array).

        ``x * 2**frac`` is rounded with ``rounding`` (ties as documented in the module), then
        overflow is handled with ``overflow``. Infinities saturate; NaN is an error.

        Raises
        ------
        ValueError
            If ``x`` holds NaN, or an infinity with ``overflow="wrap"``.
        """
        rounding = check_rounding(rounding)
        overflow = check_overflow(overflow)
        xf = np.asarray(x, dtype=np.float64)
        if np.isnan(xf).any():
            raise ValueError("x holds NaN, which has no fixed-point code")
        if overflow == "wrap" and np.isinf(xf).any():
            raise ValueError("x holds an infinity, which cannot wrap")
        y = np.ldexp(xf, self.frac)
        if rounding == "floor":
            r = np.floor(y)
        elif rounding == "half_up":
            # Above 2**52 every float is an integer and y + 0.5 would itself round.
            r = np.where(np.abs(y) >= 2.0**52, y, np.floor(y + 0.5))
        else:
            r = np.rint(y)
        if r.size == 0 or float(np.abs(r).max()) < 2.0**62:
            codes = r.astype(np.int64)
        else:
            # Python integers keep far-out values exact; infinities (saturate only) become
            # a value beyond every format so that they clamp.
            if overflow == "saturate":
                r = np.clip(r, -(2.0**64), 2.0**64)
            codes = np.frompyfunc(int, 1, 1)(r)
        return _overflow(np.asarray(codes), self, overflow)

    def __repr__(self) -> str:
        sign = "" if self.signed else ", signed=False"
        return f"FixedFormat({self.width}, {self.frac}{sign})"


def _as_code_array(q: npt.ArrayLike, name: str) -> np.ndarray:
    if type(q) is np.ndarray and q.dtype == np.int64:
        return q  # the common case, as it is
    arr = np.asarray(q)
    if arr.dtype == object:
        if arr.size and not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in arr.flat
        ):
            raise TypeError(f"{name} must hold integers, not {arr!r}")
        return arr
    if arr.dtype == np.uint64:
        if arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            return arr.astype(object)
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, not an array of {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _fits_int64(lo: int, hi: int) -> bool:
    return lo >= -(1 << 62) and hi < (1 << 62)


def shift_round(q: npt.ArrayLike, shift: int, rounding: Rounding) -> np.ndarray:
    """Exact ``q * 2**-shift`` rounded to an integer with ``rounding``.

    ``shift <= 0`` is an exact left shift. Works on ``int64`` and on object (Python integer)
    arrays; the result has the same kind.
    """
    rounding = check_rounding(rounding)
    shift = check_int(shift, "shift")
    v = np.asarray(q)
    if shift <= 0:
        return v << (-shift)
    if v.dtype != object:
        if shift < 63:
            return np.asarray(_shift_round_int64(v, shift, rounding))
        # Python integers keep the rounding exact for any shift.
        v = v.astype(object)
    if rounding == "floor":
        return v >> shift
    half = 1 << (shift - 1)
    if rounding == "half_up":
        return (v + half) >> shift
    # On 0-d object arrays NumPy returns bare Python integers: keep them Python integers.
    q_floor = np.asarray(v >> shift, dtype=v.dtype)
    rem = np.asarray(v - (q_floor << shift), dtype=v.dtype)
    round_up = np.asarray((rem > half) | ((rem == half) & ((q_floor & 1) == 1)))
    return q_floor + round_up.astype(v.dtype if v.dtype != object else np.int64)


def _round_dropped(q: np.ndarray, dropped: np.ndarray, shift: int, rounding: str
                   ) -> np.ndarray:
    """``q``, a floor, plus the rounding increment of its ``shift >= 1`` dropped bits
    ``0 <= dropped < 2**shift``: the first dropped bit, and for half-even whether any bit below
    it is set. Nothing leaves ``int64`` (adding half a step first could overflow). ``q`` is
    updated in place when it is an array."""
    if rounding == "floor":
        return q
    first = dropped >> (shift - 1)
    if rounding == "half_up":
        q += first
        return q
    sticky = (dropped & ((1 << (shift - 1)) - 1)) != 0
    q += first & (sticky | (q & 1))
    return q


def _shift_round_int64(v: np.ndarray, shift: int, rounding: str) -> np.ndarray:
    """:func:`shift_round` of ``int64`` codes by ``1 <= shift <= 62``."""
    q = v >> shift
    if rounding == "floor":
        return q
    return _round_dropped(q, v & ((1 << shift) - 1), shift, rounding)


def _overflow(v: np.ndarray, dst: FixedFormat, overflow: str) -> np.ndarray:
    v = np.asarray(v)
    if v.dtype == object:
        # Python integers (values beyond int64): clamp or wrap each one exactly.
        if overflow == "saturate":
            def one(x):
                return min(max(int(x), dst.min_int), dst.max_int)
        else:
            def one(x):
                return (int(x) - dst.min_int) % (1 << dst.width) + dst.min_int
        return np.asarray(np.frompyfunc(one, 1, 1)(v)).astype(np.int64)
    if overflow == "saturate":
        out = np.minimum(np.maximum(v, dst.min_int), dst.max_int)
    elif dst.width == 64:
        out = v  # an int64 already is its own 64-bit two's complement wrap
    else:
        low = v & ((1 << dst.width) - 1)
        if dst.signed:
            sign = 1 << (dst.width - 1)
            # ``low - 2 * sign`` written so that no constant exceeds int64
            out = np.where(low >= sign, low - sign - sign, low)
        else:
            out = low
    return np.asarray(out).astype(np.int64, copy=False)


def requantize(
    q: npt.ArrayLike,
    src_frac: int,
    dst: FixedFormat,
    rounding: Rounding = "half_even",
    overflow: Overflow = "saturate",
) -> np.ndarray:
    """Convert exact codes with ``src_frac`` fraction bits to format ``dst``.

    The value ``q * 2**-src_frac`` is shifted to ``dst.frac`` fraction bits (exactly when
    ``dst.frac >= src_frac``, otherwise with ``rounding``), then overflow is handled with
    ``overflow``. ``q`` may hold any integers (``int64`` or Python integers of any size).

    Parameters
    ----------
    q : array_like of int
        Source codes.
    src_frac : int
        Fraction bits of the source codes.
    dst : FixedFormat
        Destination format.
    rounding : {"floor", "half_up", "half_even"}
        Rounding of dropped bits.
    overflow : {"saturate", "wrap"}
        Handling of values outside ``dst``.

    Returns
    -------
    numpy.ndarray of int64
        Codes of ``dst``, the shape of ``q``.
    """
    if not isinstance(dst, FixedFormat):
        raise TypeError(f"dst must be a FixedFormat, not {dst!r}")
    src_frac = check_int(src_frac, "src_frac")
    rounding = check_rounding(rounding)
    overflow = check_overflow(overflow)
    v = _as_code_array(q, "q")
    shift = src_frac - dst.frac
    if v.dtype != object and v.size and shift < 0:
        lo, hi = int(v.min()), int(v.max())
        grown = max(abs(lo), abs(hi)) << -shift
        if not _fits_int64(-grown, grown):
            v = v.astype(object)
    if v.dtype != object and 0 < shift < 63 and overflow == "saturate":
        out = np.empty(v.shape, dtype=np.int64)
        kernels.shift_round_clamp(np.ascontiguousarray(v).reshape(-1), shift,
                                  ROUNDING_MODES.index(rounding), dst.min_int, dst.max_int,
                                  out.reshape(-1))
        return out
    return _overflow(np.asarray(shift_round(v, shift, rounding)), dst, overflow)


def _min_max(arr: np.ndarray) -> tuple[int, int]:
    """``(min, max)`` of a non-empty ``int64`` array as Python integers (one pass)."""
    if arr.flags.c_contiguous:
        lo, hi = kernels.min_max(arr.reshape(-1))
    else:
        lo, hi = arr.min(), arr.max()
    return int(lo), int(hi)


def product_range(a_fmt: FixedFormat, b_fmt: FixedFormat) -> tuple[int, int]:
    """Exact ``(min, max)`` of the integer product of an ``a_fmt`` code and a ``b_fmt`` code."""
    a_ends, b_ends = (a_fmt.min_int, a_fmt.max_int), (b_fmt.min_int, b_fmt.max_int)
    corners = [x * y for x in a_ends for y in b_ends]
    return min(corners), max(corners)


def _magnitude(x: np.ndarray) -> int:
    """Largest ``|code|`` of an ``int64`` array, as a Python integer (0 when empty)."""
    if not x.size:
        return 0
    lo, hi = _min_max(x)
    return max(-lo, hi)


class _Known:
    """What is known of a read-only ``int64`` array: its ``(min, max)`` and ``float64`` copy."""

    __slots__ = ("__weakref__", "f64", "hi", "lo", "ref")

    def __init__(self, arr: np.ndarray) -> None:
        self.ref = weakref.ref(arr)
        self.lo, self.hi = _min_max(arr) if arr.size else (0, 0)
        self.f64: np.ndarray | None = None


# Read-only int64 arrays that own their data (the optimizer's new weights) by id: a step's
# forward and backward passes read each weight matrix several times between two updates. An
# entry is used only for the very array it was made from (a weak reference) while that array is
# still read-only; it goes when the array goes. (Writes through a view made before the array was
# made read-only would not be noticed: the optimizer's arrays have no such view.)
_KNOWN: dict[int, _Known] = {}


def _known(arr: np.ndarray) -> _Known | None:
    """The cache entry of a read-only ``int64`` array that owns its data (made on first use),
    else None."""
    if arr.flags.writeable or arr.base is not None or arr.dtype != np.int64:
        return None
    key = id(arr)
    entry = _KNOWN.get(key)
    if entry is not None and entry.ref() is arr:
        return entry
    entry = _Known(arr)
    _KNOWN[key] = entry
    weakref.finalize(arr, _forget, key, weakref.ref(entry))
    return entry


# float64 copies of arrays that are gone, by shape, for the next arrays of that shape (the next
# step's weights): reusing them spares the page faults of fresh megabytes every step.
_F64_POOL: dict[tuple[int, ...], list[np.ndarray]] = {}
_POOL_DEPTH = 4
_POOL_SHAPES = 16


def _forget(key: int, entry_ref: weakref.ref) -> None:
    entry = entry_ref()
    if entry is None or _KNOWN.get(key) is not entry:
        return
    del _KNOWN[key]
    if entry.f64 is not None:
        pool = _F64_POOL.pop(entry.f64.shape, [])
        if len(pool) < _POOL_DEPTH:
            pool.append(entry.f64)
        _F64_POOL[entry.f64.shape] = pool  # most recent last
        if len(_F64_POOL) > _POOL_SHAPES:
            del _F64_POOL[next(iter(_F64_POOL))]
        entry.f64 = None


def _copy_f64(x: np.ndarray) -> np.ndarray:
    """``x.astype(float64)`` of a C-contiguous array, into a pooled buffer when there is one."""
    try:
        out = _F64_POOL[x.shape].pop()
    except (KeyError, IndexError):
        return x.astype(np.float64)
    np.copyto(out, x, casting="unsafe")
    return out


def _as_float64(x: np.ndarray) -> np.ndarray:
    """``x.astype(float64)``, from the cache for a read-only array or the transpose of one."""
    entry = _known(x)
    if entry is None:
        base = x.base
        if (isinstance(base, np.ndarray) and x.ndim == 2 and base.ndim == 2
                and x.shape == base.shape[::-1] and x.strides == base.strides[::-1]
                and x.ctypes.data == base.ctypes.data):
            entry = _known(base)
            if entry is not None:
                if entry.f64 is None:
                    entry.f64 = _copy_f64(base)
                return entry.f64.T
        return x.astype(np.float64)
    if entry.f64 is None:
        entry.f64 = _copy_f64(x)
    return entry.f64


# Per thread, the float64 matrix products of the last few shapes: a product is consumed
# (requantized) before the next one, and reusing its memory spares the page faults of a fresh
# allocation.
_SCRATCH = threading.local()
_SCRATCH_SHAPES = 8


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` of ``float64`` matrices into a scratch buffer of this thread (valid until the
    next call with the same shape)."""
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None:
        bufs = _SCRATCH.bufs = {}
    shape = (a.shape[0], b.shape[1])
    out = bufs.pop(shape, None)
    if out is None:
        out = np.empty(shape)
        if len(bufs) >= _SCRATCH_SHAPES:
            del bufs[next(iter(bufs))]
    bufs[shape] = out  # most recent last
    return np.matmul(a, b, out=out)


def _checked(q: npt.ArrayLike, fmt: FixedFormat, name: str) -> tuple[np.ndarray, int]:
    """:meth:`FixedFormat.check_codes` and the largest ``|code|``, from one min/max pass
    (none for a read-only ``int64`` array seen before)."""
    arr = _as_code_array(q, name)
    if arr.dtype == object:
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
    elif (entry := _known(arr)) is not None:
        lo, hi = entry.lo, entry.hi
    else:
        lo, hi = _min_max(arr) if arr.size else (0, 0)
    if lo < fmt.min_int or hi > fmt.max_int:
        bad = lo if lo < fmt.min_int else hi
        raise ValueError(f"{name} holds {bad!r}, outside {fmt!r} codes "
                         f"[{fmt.min_int}, {fmt.max_int}]")
    return arr.astype(np.int64, copy=False), max(-lo, hi)


def _limb_plan(a_max: int, b_max: int, n: int) -> tuple[int, int, int, int]:
    """Fewest limb products whose ``n``-term sums are exact in ``float64``.

    Splits ``|a| <= a_max`` into ``na`` limbs of ``la`` bits and ``|b| <= b_max`` into ``nb`` of
    ``lb`` bits (the low limbs in ``[0, 2**l)``, the top one signed and no larger), so that
    ``n`` times the largest limb product stays within ``2**53``: every partial sum of a limb
    product, in any order BLAS adds them, is then an integer ``float64`` holds exactly.
    Returns ``(na, la, nb, lb)`` with the fewest products ``na * nb``.
    """
    if n * a_max * b_max <= _F64_EXACT:
        return 1, 0, 1, 0
    return _split_plan(a_max.bit_length(), b_max.bit_length(), a_max, b_max, n)


@functools.lru_cache(maxsize=1024)
def _split_plan(a_bits: int, b_bits: int, a_max: int, b_max: int, n: int
                ) -> tuple[int, int, int, int]:
    best = None
    for na in range(1, 9):
        la = -(-a_bits // na)
        a_lim = a_max if na == 1 else 1 << la
        for nb in range(1, 9):
            lb = -(-b_bits // nb)
            b_lim = b_max if nb == 1 else 1 << lb
            if n * a_lim * b_lim <= _F64_EXACT and (best is None or na * nb < best[0] * best[2]):
                best = (na, la, nb, lb)
    if best is None:  # unreachable for codes below 2**64 and n <= 2**20 (8-bit limbs suffice)
        raise ValueError(f"no exact limb split for |a| <= {a_max}, |b| <= {b_max}, n = {n}")
    return best


def _split(x: np.ndarray, parts: int, bits: int) -> list[np.ndarray]:
    """``parts`` limbs of ``bits`` bits, least significant first; the top one keeps the sign."""
    if parts == 1:
        return [x]
    mask = (1 << bits) - 1
    return [(x >> (k * bits)) & mask for k in range(parts - 1)] + [x >> ((parts - 1) * bits)]


def _blocks(n: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + _BLOCK_TERMS, n)) for lo in range(0, max(n, 1), _BLOCK_TERMS)]


def _check_dot_args(a_fmt, b_fmt, out_fmt, rounding, overflow) -> None:
    for name, fmt in (("a_fmt", a_fmt), ("b_fmt", b_fmt), ("out_fmt", out_fmt)):
        if not isinstance(fmt, FixedFormat):
            raise TypeError(f"{name} must be a FixedFormat, not {fmt!r}")
    check_rounding(rounding)
    check_overflow(overflow)


class _ExactSum:
    """An exact integer array held as ``sum(S << shift)`` over ``int64`` terms ``S``.

    ``bound`` is a Python integer no smaller than the sum of the terms' ``|S| << shift``, so
    that every partial sum is at most ``bound`` in magnitude. Sums below ``2**62`` become one
    ``int64`` array; wider ones are requantized straight from their terms
    (:func:`_requantize_sum`) without Python integers.
    """

    __slots__ = ("bound", "terms")

    def __init__(self) -> None:
        self.terms: list[tuple[np.ndarray, int]] = []
        self.bound = 0

    def add(self, s: np.ndarray, shift: int, bound: int) -> None:
        self.terms.append((s, shift))
        self.bound += bound << shift

    def integers(self) -> np.ndarray:
        """The exact sums: ``int64`` below ``2**62``, otherwise Python integers."""
        if self.bound < _INT64_SAFE:
            total = None
            for s, shift in self.terms:
                term = s << shift if shift else s
                total = term if total is None else total + term
            return np.asarray(total, dtype=np.int64)
        total = None
        for s, shift in self.terms:
            term = s.astype(object) << shift
            total = term if total is None else total + term
        return np.asarray(total)


def _requantize_sum(acc: _ExactSum, src_frac: int, dst: FixedFormat, rounding: str,
                    overflow: str) -> np.ndarray:
    """:func:`requantize` of an :class:`_ExactSum`, exact, without recombining wide sums.

    A sum below ``2**62`` is recombined in ``int64``. A wider one is split at the rounding
    point: ``T = H * 2**s + L`` with ``0 <= L < 2**s``, each term contributing its bits above
    the point to ``H`` and those below to ``L`` (carried into ``H`` as they add up). ``H`` is
    computed modulo ``2**64``, which is exact for wrapping (the result keeps at most 64 low
    bits) and, for saturation, whenever a ``float64`` estimate of ``T * 2**-s`` shows that
    ``H`` lies well inside ``int64``; an estimate beyond that saturates by its sign.
    """
    shift = src_frac - dst.frac
    if acc.bound < _INT64_SAFE or acc.bound >= _PAIR_LIMIT or shift > 62 \
            or (overflow == "saturate" and dst.max_int >= 1 << 61):
        return requantize(acc.integers(), src_frac, dst, rounding, overflow)
    h = None
    low = None
    estimate = None
    mask = (1 << shift) - 1 if shift > 0 else 0
    for s, k in acc.terms:
        e = np.ldexp(s.astype(np.float64), k - shift)
        estimate = e if estimate is None else estimate + e
        up = k - shift  # this term's bits at or above the rounding point
        if up >= 0:  # int64 products wrap modulo 2**64, which is all H needs here
            hi_part = s * _wrapped_power(up) if up < 64 else np.zeros_like(s)
            h = hi_part if h is None else h + hi_part
            continue
        d = -up  # 0 < d <= shift <= 62: S << k = (S >> d) << shift + (S mod 2**d) << k
        h = s >> d if h is None else h + (s >> d)
        lo_part = (s & ((1 << d) - 1)) << k
        low = lo_part if low is None else low + lo_part
        h = h + (low >> shift)
        low = low & mask
    q = np.asarray(h if low is None else _round_dropped(h, low, shift, rounding),
                   dtype=np.int64)
    if overflow == "wrap":
        return _overflow(q, dst, "wrap")
    big = np.abs(estimate) >= 2.0**62
    out = np.clip(q, dst.min_int, dst.max_int)
    return np.where(big, np.where(estimate > 0, dst.max_int, dst.min_int), out).astype(np.int64)


def _wrapped_power(k: int) -> np.int64:
    """``2**k`` modulo ``2**64`` as an ``int64`` (``k`` from 0 to 63)."""
    return np.int64(1 << k) if k < 63 else np.int64(-(1 << 63))


def _exact_dot(a: np.ndarray, b: np.ndarray, a_max: int, b_max: int) -> _ExactSum:
    """Exact sums along the last axis of ``a * b`` (broadcast int64 arrays)."""
    acc = _ExactSum()
    n = a.shape[-1]
    for lo, hi in _blocks(n):
        na, la, nb, lb = _limb_plan(a_max, b_max, hi - lo)
        a_limbs = [x.astype(np.float64) for x in _split(a[..., lo:hi], na, la)]
        b_limbs = [x.astype(np.float64) for x in _split(b[..., lo:hi], nb, lb)]
        lim_a = a_max if na == 1 else 1 << la
        lim_b = b_max if nb == 1 else 1 << lb
        for i, al in enumerate(a_limbs):
            for j, bl in enumerate(b_limbs):
                s = np.einsum("...k,...k->...", al, bl).astype(np.int64)
                acc.add(np.asarray(s), i * la + j * lb, lim_a * lim_b * (hi - lo))
    return acc


def _exact_matmul(a: np.ndarray, b: np.ndarray, a_max: int, b_max: int) -> _ExactSum:
    """Exact ``a @ b`` of 2-D ``int64`` arrays: every limb product in one ``float64`` BLAS call.

    The limbs of ``a`` are stacked as row blocks and those of ``b`` as column blocks, so one
    ``(na*m, n) @ (n, nb*k)`` product holds all ``na * nb`` limb products (BLAS is most
    efficient on one large product, and a single limb, the common case, costs one plain
    ``matmul``).
    """
    acc = _ExactSum()
    m, n = a.shape
    k = b.shape[1]
    for lo, hi in _blocks(n):
        na, la, nb, lb = _limb_plan(a_max, b_max, hi - lo)
        a_limbs = _split(a[:, lo:hi], na, la)
        b_limbs = _split(b[lo:hi], nb, lb)
        a_st = a_limbs[0].astype(np.float64) if na == 1 else \
            np.concatenate(a_limbs, axis=0).astype(np.float64)
        b_st = b_limbs[0].astype(np.float64) if nb == 1 else \
            np.concatenate(b_limbs, axis=1).astype(np.float64)
        p = (a_st @ b_st).astype(np.int64)
        lim_a = a_max if na == 1 else 1 << la
        lim_b = b_max if nb == 1 else 1 << lb
        for i in range(na):
            for j in range(nb):
                acc.add(p[i * m:(i + 1) * m, j * k:(j + 1) * k], i * la + j * lb,
                        lim_a * lim_b * (hi - lo))
    return acc


def dot(
    a_q: npt.ArrayLike,
    b_q: npt.ArrayLike,
    a_fmt: FixedFormat,
    b_fmt: FixedFormat,
    out_fmt: FixedFormat,
    rounding: Rounding = "half_even",
    overflow: Overflow = "saturate",
) -> np.ndarray:
    """Exact fixed-point dot product along the last axis, rounded once.

    Computes ``sum(a_q[..., k] * b_q[..., k])`` exactly, with ``a_fmt.frac + b_fmt.frac``
    fraction bits, then :func:`requantize` to ``out_fmt``. Leading axes broadcast (a batch of
    dot products). This is the golden model of :class:`fixar_hw.arith.mac.FixedMAC`.

    Parameters
    ----------
    a_q, b_q : array_like of int
        Codes of ``a_fmt`` and ``b_fmt``; shapes ``(..., n)`` that broadcast.
    a_fmt, b_fmt, out_fmt : FixedFormat
        Operand and result formats.
    rounding, overflow : str
        As for :func:`requantize`.

    Returns
    -------
    numpy.ndarray of int64
        ``out_fmt`` codes of shape ``broadcast(a_q.shape[:-1], b_q.shape[:-1])``.

    Raises
    ------
    TypeError, ValueError
        For a bad format or mode, non-integer codes, codes outside their format, or operands
        without a term axis or whose term axes differ.
    """
    _check_dot_args(a_fmt, b_fmt, out_fmt, rounding, overflow)
    a, a_max = _checked(a_q, a_fmt, "a_q")
    b, b_max = _checked(b_q, b_fmt, "b_q")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("a_q and b_q must have a term axis (at least one dimension)")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"a_q and b_q must have the same number of terms, not {a.shape[-1]} and {b.shape[-1]}"
        )
    a, b = np.broadcast_arrays(a, b)
    acc = _exact_dot(a, b, a_max, b_max)
    return _requantize_sum(acc, a_fmt.frac + b_fmt.frac, out_fmt, rounding, overflow)


def _matmul_operands(a_q, b_q, a_fmt, b_fmt) -> tuple[np.ndarray, np.ndarray, int, int, tuple]:
    for name, fmt in (("a_fmt", a_fmt), ("b_fmt", b_fmt)):
        if not isinstance(fmt, FixedFormat):
            raise TypeError(f"{name} must be a FixedFormat, not {fmt!r}")
    a, a_max = _checked(a_q, a_fmt, "a_q")
    b, b_max = _checked(b_q, b_fmt, "b_q")
    if a.ndim not in (1, 2) or b.ndim not in (1, 2):
        raise ValueError(
            f"a_q and b_q must be 1-D or 2-D, not of shapes {a.shape} and {b.shape}"
        )
    n = a.shape[-1]
    if b.shape[0] != n:
        raise ValueError(f"a_q has {n} columns but b_q has {b.shape[0]} rows")
    shape = a.shape[:-1] + b.shape[1:]  # numpy.matmul's result shape for 1-D and 2-D operands
    return np.atleast_2d(a), b if b.ndim == 2 else b[:, None], a_max, b_max, shape


def exact_matmul(
    a_q: npt.ArrayLike, b_q: npt.ArrayLike, a_fmt: FixedFormat, b_fmt: FixedFormat
) -> np.ndarray:
    """Exact integer matrix product ``a_q @ b_q`` of codes, with no rounding.

    The entries have ``a_fmt.frac + b_fmt.frac`` fraction bits. The products run through
    ``float64`` BLAS, exact because every partial sum is an integer below ``2**53``: operands
    are split into as few limbs as their largest codes allow (often none).

    Parameters
    ----------
    a_q : array_like of int, shape (m, n) or (n,)
    b_q : array_like of int, shape (n, k) or (n,)
    a_fmt, b_fmt : FixedFormat

    Returns
    -------
    numpy.ndarray
        ``int64`` when every possible sum of codes as large as the operands' fits, otherwise
        an object array of Python integers;
        shape as for ``numpy.matmul`` of the operands.
    """
    a, b, a_max, b_max, shape = _matmul_operands(a_q, b_q, a_fmt, b_fmt)
    return _exact_matmul(a, b, a_max, b_max).integers().reshape(shape)


def matmul(
    a_q: npt.ArrayLike,
    b_q: npt.ArrayLike,
    a_fmt: FixedFormat,
    b_fmt: FixedFormat,
    out_fmt: FixedFormat,
    rounding: Rounding = "half_even",
    overflow: Overflow = "saturate",
    *,
    addend: npt.ArrayLike | None = None,
    addend_frac: int | None = None,
) -> np.ndarray:
    """Exact fixed-point matrix product ``a_q @ b_q``, each entry rounded once.

    Each entry is the exact dot product of a row of ``a_q`` and a column of ``b_q``
    (:func:`exact_matmul`), requantized to ``out_fmt`` exactly as :func:`dot` does; the two
    functions agree entry for entry. With ``addend``, the exact value ``addend *
    2**-addend_frac`` is added to every product (broadcast) before the one rounding: a layer's
    bias.

    Parameters
    ----------
    a_q : array_like of int, shape (m, n) or (n,)
    b_q : array_like of int, shape (n, k) or (n,)
    a_fmt, b_fmt, out_fmt : FixedFormat
    rounding, overflow : str
    addend : array_like of int, optional
        Integers that broadcast against the product, with ``addend_frac`` fraction bits.
    addend_frac : int, optional
        At most ``a_fmt.frac + b_fmt.frac`` (the addend aligns by an exact left shift);
        required with ``addend``.

    Returns
    -------
    numpy.ndarray of int64
        Shape as for ``numpy.matmul`` of the operands.
    """
    _check_dot_args(a_fmt, b_fmt, out_fmt, rounding, overflow)
    a, b, a_max, b_max, shape = _matmul_operands(a_q, b_q, a_fmt, b_fmt)
    return _matmul_checked(a, b, a_max, b_max, a_fmt.frac + b_fmt.frac, out_fmt, rounding,
                           overflow, addend, addend_frac).reshape(shape)


_NO_ADDEND = np.zeros(0, dtype=np.int64)


def _matmul_checked(a: np.ndarray, b: np.ndarray, a_max: int, b_max: int, src_frac: int,
                    out_fmt: FixedFormat, rounding: str, overflow: str,
                    addend: npt.ArrayLike | None = None, addend_frac: int | None = None
                    ) -> np.ndarray:
    """:func:`matmul` of validated 2-D ``int64`` operands with ``|a| <= a_max``, ``|b| <= b_max``.

    For the golden model's layers (:mod:`sw_model.arch.aap`), which check their operands under
    their own names. When one ``float64`` product is exact and the result saturates, the
    product is requantized (with the addend) straight from ``float64`` in one compiled pass;
    otherwise through the limb sums of :func:`_exact_matmul`.
    """
    c, c_shift, c_max = None, 0, 0
    if addend is not None:
        if addend_frac is None:
            raise TypeError("addend_frac must be given with addend")
        addend_frac = check_int(addend_frac, "addend_frac", maximum=src_frac)
        c = _as_code_array(addend, "addend")
        if c.dtype == object:
            raise ValueError("addend must hold int64 integers")
        c_max = _magnitude(c)
        if c_max >= 1 << 53:  # keep every term below 2**53, as the limb sums are
            raise ValueError(f"addend must hold integers below 2**53, not {c_max}")
        c_shift = src_frac - addend_frac
    m, n = a.shape
    k = b.shape[1]
    shift = src_frac - out_fmt.frac
    bound = n * a_max * b_max
    if (bound <= _F64_EXACT and 0 < shift < 63 and overflow == "saturate"
            and (c is None or c.shape in ((k,), (1, k)))
            and bound + (c_max << c_shift) < _INT64_SAFE):
        p = _product(a.astype(np.float64), _as_float64(b))
        out = np.empty((m, k), dtype=np.int64)
        kernels.requantize_product(p, _NO_ADDEND if c is None else c.reshape(-1), c_shift,
                                   shift, ROUNDING_MODES.index(rounding), out_fmt.min_int,
                                   out_fmt.max_int, out)
        return out
    acc = _exact_matmul(a, b, a_max, b_max)
    if c is not None:
        acc.add(np.broadcast_to(c, (m, k)).astype(np.int64), c_shift, c_max)
    return _requantize_sum(acc, src_frac, out_fmt, rounding, overflow)
